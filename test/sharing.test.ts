import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { DiskImage, LicenseType, VmImageImport, VmImageImportProps } from '../src';

const ORG = 'arn:aws:organizations::111111111111:organization/o-a1b2c3d4e5';
const OU = 'arn:aws:organizations::111111111111:ou/o-a1b2c3d4e5/ou-ab12-11111111';

function newStack(): Stack {
  return new Stack(new App(), 'Test', { env: { account: '123456789012', region: 'us-east-1' } });
}

function imageIn(stack: Stack, extra: Partial<VmImageImportProps> = {}): VmImageImport {
  return new VmImageImport(stack, 'Image', {
    diskImages: [DiskImage.fromBucket(s3.Bucket.fromBucketName(stack, 'Source', 'my-images'), 'builds/web.vmdk')],
    licenseType: LicenseType.BYOL,
    ...extra,
  });
}

/** The key policy statements of the import's key whose Sid starts with a prefix. */
function keyStatements(t: Template, prefix: string): any[] {
  return Object.entries(t.findResources('AWS::KMS::Key'))
    .filter(([id]) => !id.startsWith('CdkVmImportEngine'))
    .flatMap(([, key]) => key.Properties.KeyPolicy.Statement.filter((s: any) => String(s.Sid ?? '').startsWith(prefix)));
}

describe('sharing', () => {
  test('launch permissions reach the result resource; the key lets the principals launch it', () => {
    const stack = newStack();
    imageIn(stack, { shareWithAccounts: ['111122223333'], shareWithOrganizations: [ORG], shareWithOrganizationalUnits: [OU] });
    const t = Template.fromStack(stack);
    t.hasResourceProperties('Custom::VmImageImportResult', {
      LaunchPermissions: { UserIds: ['111122223333'], OrganizationArns: [ORG], OrganizationalUnitArns: [OU] },
    });
    const launch = ['kms:DescribeKey', 'kms:Decrypt', 'kms:ReEncryptFrom', 'kms:ReEncryptTo', 'kms:GenerateDataKey', 'kms:GenerateDataKeyWithoutPlaintext'];
    const grant = { Bool: { 'kms:GrantIsForAWSResource': true } };
    expect(keyStatements(t, 'LaunchFrom').concat(keyStatements(t, 'GrantFor'))).toEqual([
      expect.objectContaining({ Sid: expect.stringMatching(/^LaunchFromSharedAccounts[0-9a-f]{10}$/), Action: launch, Principal: { AWS: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':iam::111122223333:root']] } } }),
      expect.objectContaining({ Sid: expect.stringMatching(/^LaunchFromSharedOrganizations[0-9a-f]{10}$/), Action: launch, Principal: { AWS: '*' }, Condition: { StringEquals: { 'aws:PrincipalOrgID': ['o-a1b2c3d4e5'] } } }),
      expect.objectContaining({
        Sid: expect.stringMatching(/^LaunchFromSharedOrganizationalUnits[0-9a-f]{10}$/),
        Action: launch,
        Principal: { AWS: '*' },
        Condition: { 'ForAnyValue:StringLike': { 'aws:PrincipalOrgPaths': ['o-a1b2c3d4e5/*/ou-ab12-11111111/*'] } },
      }),
      expect.objectContaining({ Sid: expect.stringMatching(/^GrantForSharedAccounts[0-9a-f]{10}$/), Action: 'kms:CreateGrant', Condition: grant }),
      expect.objectContaining({ Sid: expect.stringMatching(/^GrantForSharedOrganizations[0-9a-f]{10}$/), Action: 'kms:CreateGrant', Condition: { StringEquals: { 'aws:PrincipalOrgID': ['o-a1b2c3d4e5'] }, ...grant } }),
      expect.objectContaining({
        Sid: expect.stringMatching(/^GrantForSharedOrganizationalUnits[0-9a-f]{10}$/),
        Action: 'kms:CreateGrant',
        Condition: { 'ForAnyValue:StringLike': { 'aws:PrincipalOrgPaths': ['o-a1b2c3d4e5/*/ou-ab12-11111111/*'] }, ...grant },
      }),
    ]);
  });

  test('two imports sharing the stack\'s key with different accounts get statements of their own', () => {
    const stack = newStack();
    const source = s3.Bucket.fromBucketName(stack, 'Src', 'my-images');
    for (const [id, account] of [['A', '111122223333'], ['B', '444455556666']]) {
      new VmImageImport(stack, id, { diskImages: [DiskImage.fromBucket(source, `${id}.vmdk`)], licenseType: LicenseType.BYOL, shareWithAccounts: [account] });
    }
    const statements = keyStatements(Template.fromStack(stack), 'LaunchFrom');
    expect(statements).toHaveLength(2);
    expect(new Set(statements.map((st) => st.Sid)).size).toBe(2);
  });

  test('no sharing: no launch permissions, no key statements for anyone else', () => {
    const stack = newStack();
    imageIn(stack);
    const t = Template.fromStack(stack);
    t.hasResourceProperties('Custom::VmImageImportResult', { LaunchPermissions: Match.absent(), ImdsSupport: Match.absent() });
    expect(keyStatements(t, 'LaunchFrom')).toEqual([]);
  });

  test('an unencrypted AMI is shared without a key', () => {
    const stack = newStack();
    imageIn(stack, { encrypted: false, bucket: s3.Bucket.fromBucketName(stack, 'Own', 'my-own-images'), shareWithAccounts: ['111122223333'] });
    Template.fromStack(stack).hasResourceProperties('Custom::VmImageImportResult', { LaunchPermissions: { UserIds: ['111122223333'] } });
  });

  test.each([
    ['an account ID of 11 digits', { shareWithAccounts: ['11112222333'] }, "'shareWithAccounts' has \"11112222333\", which is not an AWS account ID (12 digits)."],
    ['this stack\'s own account', { shareWithAccounts: ['123456789012'] }, "'shareWithAccounts' has this stack's own account \"123456789012\""],
    ['an OU ARN as organization', { shareWithOrganizations: [OU] }, `'shareWithOrganizations' has "${OU}", which is not an organization ARN`],
    ['an organization ARN as OU', { shareWithOrganizationalUnits: [ORG] }, `'shareWithOrganizationalUnits' has "${ORG}", which is not an organizational unit ARN`],
  ])('%s is refused', (_name, extra, message) => {
    expect(() => imageIn(newStack(), extra as Partial<VmImageImportProps>)).toThrow(message);
  });

  test('an encrypted AMI whose key this stack does not control is not shared: the key policy is not its to write', () => {
    const stack = newStack();
    const key = kms.Key.fromKeyArn(stack, 'Theirs', 'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab');
    expect(() => imageIn(stack, { encryptionKey: key, shareWithAccounts: ['111122223333'] }))
      .toThrow(/Test\/Image: an encrypted AMI is shared only with the key's use, and the key Test\/Theirs is not a customer managed key whose policy this stack writes/);
  });
});

describe('publishing and hardening', () => {
  test('ssmParameterName publishes the AMI ID as an aws:ec2:image parameter, after the AMI exists', () => {
    const stack = newStack();
    const image = imageIn(stack, { ssmParameterName: '/images/web-server' });
    const t = Template.fromStack(stack);
    const [resultId] = Object.keys(t.findResources('Custom::VmImageImportResult'));
    t.hasResourceProperties('AWS::SSM::Parameter', {
      Name: '/images/web-server', Type: 'String', DataType: 'aws:ec2:image', Value: { 'Fn::GetAtt': [resultId, 'ImageId'] },
    });
    expect(image.parameter).toBeDefined();
  });

  test.each(['aws-images', '/ssm/x', 'white space', ''])('the parameter name %j is refused', (name) => {
    expect(() => imageIn(newStack(), { ssmParameterName: name })).toThrow(/'ssmParameterName' is .*; a parameter name has 1 to 1,011 letters/);
  });

  test('requireImdsv2 sets ImdsSupport v2.0 on the result resource; off by default', () => {
    const stack = newStack();
    imageIn(stack, { requireImdsv2: true });
    Template.fromStack(stack).hasResourceProperties('Custom::VmImageImportResult', { ImdsSupport: 'v2.0' });
  });

  test('grantLaunch: RunInstances on the AMI and the key actions EC2 performs, only through EC2 in this Region', () => {
    const stack = newStack();
    const image = imageIn(stack);
    const role = new iam.Role(stack, 'Launcher', { assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com') });
    image.grantLaunch(role);
    const t = Template.fromStack(stack);
    const [resultId] = Object.keys(t.findResources('Custom::VmImageImportResult'));
    const [keyId] = Object.keys(t.findResources('AWS::KMS::Key')).filter((id) => !id.startsWith('CdkVmImportEngine'));
    t.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: Match.stringLikeRegexp('^Launcher') }],
      PolicyDocument: {
        Statement: [
          {
            Effect: 'Allow',
            Action: 'ec2:RunInstances',
            Resource: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':ec2:us-east-1::image/', { 'Fn::GetAtt': [resultId, 'ImageId'] }]] },
          },
          {
            Effect: 'Allow',
            Action: ['kms:CreateGrant', 'kms:Decrypt', 'kms:DescribeKey', 'kms:GenerateDataKeyWithoutPlaintext', 'kms:ReEncryptFrom', 'kms:ReEncryptTo'],
            Resource: { 'Fn::GetAtt': [keyId, 'Arn'] },
            Condition: { StringEquals: { 'kms:ViaService': { 'Fn::Join': ['', ['ec2.us-east-1.', { Ref: 'AWS::URLSuffix' }]] } } },
          },
        ],
      },
    });
  });

  test('another stack launches from the parameter with ec2.MachineImage.fromSsmParameter', () => {
    const app = new App();
    const images = new Stack(app, 'Images', { env: { account: '123456789012', region: 'us-east-1' } });
    imageIn(images, { ssmParameterName: '/images/web-server' });
    const servers = new Stack(app, 'Servers', { env: { account: '123456789012', region: 'us-east-1' } });
    const machineImage = ec2.MachineImage.fromSsmParameter('/images/web-server');
    expect(servers.resolve(machineImage.getImage(servers).imageId)).toEqual({ Ref: expect.stringMatching(/^SsmParameterValueimageswebserver/) });
  });
});
