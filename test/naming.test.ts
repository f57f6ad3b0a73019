import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { DiskImage, LicenseType, VmImageImport, VmImageImportProps } from '../src';

function newStack(): Stack {
  return new Stack(new App(), 'Test', { env: { account: '123456789012', region: 'us-east-1' } });
}

function imageIn(stack: Stack, extra: Partial<VmImageImportProps> = {}, id = 'Image'): VmImageImport {
  return new VmImageImport(stack, id, {
    diskImages: [DiskImage.fromBucket(s3.Bucket.fromBucketName(stack, `${id}Source`, 'my-images'), 'builds/web.vmdk')],
    licenseType: LicenseType.BYOL,
    ...extra,
  });
}

/** The statements of the state machine role's policy. */
function stateMachineStatements(t: Template): any[] {
  const policies = t.findResources('AWS::IAM::Policy', {
    Properties: { Roles: [{ Ref: Match.stringLikeRegexp('^CdkVmImportEngineStateMachineRole') }] },
  });
  return Object.values(policies).flatMap((p: any) => p.Properties.PolicyDocument.Statement);
}

const EBS_KEY_ACTIONS = ['kms:CreateGrant', 'kms:Decrypt', 'kms:DescribeKey', 'kms:GenerateDataKeyWithoutPlaintext', 'kms:ReEncryptFrom', 'kms:ReEncryptTo'];

describe('imageName', () => {
  test('reaches the start resource with the description; the state machine copies with the key named and may use that key only through EC2', () => {
    const stack = newStack();
    const image = imageIn(stack, { imageName: 'web-server-1.0', imageDescription: 'Web server' });
    const t = Template.fromStack(stack);
    t.hasResourceProperties('Custom::VmImageImport', { ImageName: 'web-server-1.0', ImageDescription: 'Web server' });

    const statements = stateMachineStatements(t);
    expect(statements).toContainEqual(expect.objectContaining({
      Action: 'ec2:CopyImage',
      Effect: 'Allow',
      Resource: [
        { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':ec2:', { Ref: 'AWS::Region' }, '::image/*']] },
        { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':ec2:', { Ref: 'AWS::Region' }, '::snapshot/*']] },
      ],
    }));
    const keyArn = stack.resolve(image.encryptionKey!.keyArn);
    expect(statements).toContainEqual({
      Action: EBS_KEY_ACTIONS,
      Effect: 'Allow',
      Resource: keyArn,
      Condition: { StringEquals: { 'kms:ViaService': { 'Fn::Join': ['', ['ec2.us-east-1.', { Ref: 'AWS::URLSuffix' }]] } } },
    });

    // The definition copies with Encrypted and KmsKeyId explicit, tags the copy and its snapshots as they are made.
    const [machine] = Object.values(t.findResources('AWS::StepFunctions::StateMachine')) as any[];
    const definition = JSON.stringify(stack.resolve(machine.Properties.DefinitionString));
    expect(definition).toContain('\\"Encrypted\\":true,\\"KmsKeyId.$\\":\\"$.Import.Copy.KmsKeyId\\"');
    expect(definition).toContain('\\"TagSpecifications\\":[{\\"ResourceType\\":\\"image\\",\\"Tags.$\\":\\"$.Import.Copy.Tags\\"},{\\"ResourceType\\":\\"snapshot\\",\\"Tags.$\\":\\"$.Import.Copy.Tags\\"}]');
  });

  test('a key passed in is granted to the state machine the same way; no name, no key grant to it', () => {
    const stack = newStack();
    const key = new kms.Key(stack, 'MyKey');
    imageIn(stack, { encryptionKey: key, imageName: 'named' }, 'Named');
    imageIn(stack, {}, 'Unnamed');
    const grants = stateMachineStatements(Template.fromStack(stack)).filter((s) => JSON.stringify(s.Action).includes('kms:'));
    expect(grants).toEqual([expect.objectContaining({ Action: EBS_KEY_ACTIONS, Resource: stack.resolve(key.keyArn) })]);
  });

  test('an unencrypted named import grants no key to the state machine', () => {
    const stack = newStack();
    imageIn(stack, { encrypted: false, imageName: 'public-image' });
    const statements = stateMachineStatements(Template.fromStack(stack));
    expect(statements.filter((s) => JSON.stringify(s.Action).includes('kms:'))).toEqual([]);
  });

  test('the name and description shape the image: changing either names a new WaitCondition (a new import); the tags do not', () => {
    const waitOf = (extra: Partial<VmImageImportProps>) => {
      const stack = newStack();
      imageIn(stack, extra);
      return Object.keys(Template.fromStack(stack).findResources('AWS::CloudFormation::WaitCondition'));
    };
    const named = waitOf({ imageName: 'web-1' });
    expect(waitOf({ imageName: 'web-2' })).not.toEqual(named);
    expect(waitOf({ imageName: 'web-1', imageDescription: 'x' })).not.toEqual(named);
    expect(waitOf({ imageName: 'web-1', tags: { team: 'web' } })).toEqual(named);
    expect(waitOf({})).not.toEqual(named);
  });

  test('a name from a token is checked at deploy time only', () => {
    const stack = newStack();
    expect(() => imageIn(stack, { imageName: stack.stackName })).not.toThrow();
  });
});
