import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { DiskImage, LicenseType, VmImageImport, VmImportRole } from '../src';

function newStack(): Stack {
  return new Stack(new App(), 'Test', { env: { account: '123456789012', region: 'eu-west-1' } });
}

test('trusts vmie.amazonaws.com with the vmimport external ID and this account, in any Region as the VM Import guide says', () => {
  const stack = newStack();
  new VmImportRole(stack, 'Role');
  Template.fromStack(stack).hasResourceProperties('AWS::IAM::Role', {
    AssumeRolePolicyDocument: {
      Statement: [{
        Effect: 'Allow',
        Action: 'sts:AssumeRole',
        Principal: { Service: 'vmie.amazonaws.com' },
        Condition: {
          StringEquals: { 'sts:Externalid': 'vmimport', 'aws:SourceAccount': '123456789012' },
          ArnLike: { 'aws:SourceArn': { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':vmie:*:123456789012:*']] } },
        },
      }],
    },
  });
});

test('has a generated name, never vmimport', () => {
  const stack = newStack();
  new VmImportRole(stack, 'Role');
  Template.fromStack(stack).hasResourceProperties('AWS::IAM::Role', { RoleName: Match.absent() });
});

test('may register the AMI: the EC2 actions VM Import performs', () => {
  const stack = newStack();
  new VmImportRole(stack, 'Role');
  Template.fromStack(stack).hasResourceProperties('AWS::IAM::Policy', {
    PolicyDocument: {
      Statement: [{
        Sid: 'RegisterImportedImage',
        Effect: 'Allow',
        Action: ['ec2:ModifySnapshotAttribute', 'ec2:CopySnapshot', 'ec2:RegisterImage', 'ec2:Describe*'],
        Resource: '*',
      }],
    },
  });
});

test('grantReadDiskImage grants bucket listing, the object, and the bucket key', () => {
  const stack = newStack();
  const role = new VmImportRole(stack, 'Role');
  const key = new kms.Key(stack, 'BucketKey');
  const bucket = new s3.Bucket(stack, 'Images', { encryptionKey: key });
  role.grantReadDiskImage(bucket, 'images/*');
  const t = Template.fromStack(stack);
  const bucketId = stack.getLogicalId(bucket.node.defaultChild as s3.CfnBucket);
  const keyId = stack.getLogicalId(key.node.defaultChild as kms.CfnKey);
  t.hasResourceProperties('AWS::IAM::Policy', {
    PolicyDocument: {
      Statement: Match.arrayWith([
        { Effect: 'Allow', Action: ['s3:GetBucketLocation', 's3:ListBucket'], Resource: { 'Fn::GetAtt': [bucketId, 'Arn'] } },
        { Effect: 'Allow', Action: 's3:GetObject', Resource: { 'Fn::Join': ['', [{ 'Fn::GetAtt': [bucketId, 'Arn'] }, '/images/*']] } },
        { Effect: 'Allow', Action: 'kms:Decrypt', Resource: { 'Fn::GetAtt': [keyId, 'Arn'] } },
      ]),
    },
  });
});

test('grantEncryptSnapshots grants exactly the KMS actions VM Import needs on that key', () => {
  const stack = newStack();
  const role = new VmImportRole(stack, 'Role');
  const key = new kms.Key(stack, 'AmiKey');
  role.grantEncryptSnapshots(key);
  const keyId = stack.getLogicalId(key.node.defaultChild as kms.CfnKey);
  Template.fromStack(stack).hasResourceProperties('AWS::IAM::Policy', {
    PolicyDocument: {
      Statement: Match.arrayWith([{
        Effect: 'Allow',
        Action: [
          'kms:CreateGrant', 'kms:Decrypt', 'kms:DescribeKey', 'kms:Encrypt',
          'kms:GenerateDataKey', 'kms:GenerateDataKeyWithoutPlaintext', 'kms:ReEncryptFrom', 'kms:ReEncryptTo',
        ],
        Resource: { 'Fn::GetAtt': [keyId, 'Arn'] },
      }]),
    },
  });
});

test('a VmImportRole shared by two imports is passed by the engine\'s function only, and each start resource waits for its policy', () => {
  const stack = newStack();
  const role = new VmImportRole(stack, 'Shared');
  for (const id of ['A', 'B']) {
    new VmImageImport(stack, id, { diskImages: [DiskImage.fromImportBucket(`${id}.vmdk`)], licenseType: LicenseType.BYOL, role });
  }
  const t = Template.fromStack(stack);
  const roleId = stack.getLogicalId(role.node.defaultChild as any);
  const passes = Object.entries(t.findResources('AWS::IAM::Policy'))
    .flatMap(([id, p]) => (p.Properties.PolicyDocument.Statement as any[]).filter((st) => st.Action === 'iam:PassRole').map((st) => [id.replace(/[0-9A-F]{8}$/, ''), st.Resource]));
  expect(passes).toEqual([['CdkVmImportEngineHandlerRoleDefaultPolicy', { 'Fn::GetAtt': [roleId, 'Arn'] }]]);
  for (const start of Object.values(t.findResources('Custom::VmImageImport'))) {
    expect(start.Properties.RoleName).toEqual({ Ref: roleId });
    expect(start.DependsOn).toEqual(expect.arrayContaining([roleId, expect.stringMatching(/^SharedDefaultPolicy[0-9A-F]{8}$/)]));
  }
});
