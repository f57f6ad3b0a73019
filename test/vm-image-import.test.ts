import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App, Duration, Fn, RemovalPolicy, Size, Stack, Tags, Token } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import {
  Architecture,
  BootMode,
  DiskImage,
  DiskImageFormat,
  Hypervisor,
  LicenseType,
  Platform,
  VmImageImport,
  VmImageImportProps,
  VmImportRole,
} from '../src';
import { writeDiskFixture } from './support/disk-fixtures';

const EXAMPLE_VMDK = path.join(__dirname, '..', 'examples', 'images', 'web-server.vmdk');
const LICENSE_ARN = 'arn:aws:license-manager:us-east-1:123456789012:license-configuration:lic-0123456789abcdef0123456789abcdef';

/** Flattens a template value, writing pseudo parameters as ${Name}. */
function flat(value: any): string {
  if (typeof value === 'string') return value;
  if (value?.Ref?.startsWith('AWS::')) return `\${${value.Ref.slice(5)}}`;
  if (value?.Ref) return `\${${value.Ref}}`;
  if (value?.['Fn::Join']) return value['Fn::Join'][1].map(flat).join(value['Fn::Join'][0]);
  return JSON.stringify(value);
}

/** The object ARNs that s3:GetObject statements grant, optionally only in policies of one role. */
function objectReads(t: Template, roleName?: string): string[] {
  return Object.values(t.findResources('AWS::IAM::Policy'))
    .filter((p) => !roleName || JSON.stringify(p.Properties.Roles) === JSON.stringify([roleName]))
    .flatMap((p) => p.Properties.PolicyDocument.Statement)
    .filter((st: any) => st.Action === 's3:GetObject')
    .flatMap((st: any) => [st.Resource].flat().map(flat));
}

function newStack(): Stack {
  return new Stack(new App(), 'Test', { env: { account: '123456789012', region: 'us-east-1' } });
}

function bucketImport(stack: Stack, id = 'Import', extra: Partial<ConstructorParameters<typeof VmImageImport>[2]> = {}): VmImageImport {
  const bucket = s3.Bucket.fromBucketName(stack, `${id}Source`, 'my-images');
  return new VmImageImport(stack, id, {
    diskImages: [DiskImage.fromBucket(bucket, 'builds/web.vmdk')],
    licenseType: LicenseType.BYOL,
    ...extra,
  });
}

/** The one resource of a type, with its logical ID. */
function only(t: Template, type: string): [string, any] {
  const found = Object.entries(t.findResources(type));
  expect(found).toHaveLength(1);
  return found[0];
}

/** The KMS keys of the imports, without the engine's log group key. */
function importKeys(t: Template): Record<string, any> {
  return Object.fromEntries(Object.entries(t.findResources('AWS::KMS::Key')).filter(([id]) => !id.startsWith('CdkVmImportEngine')));
}

/** The logical ID of the import's WaitCondition. */
function waitConditionId(stack: Stack): string {
  return only(Template.fromStack(stack), 'AWS::CloudFormation::WaitCondition')[0];
}

describe('VmImageImport resources', () => {
  test('creates the stack\'s role and key (no bucket: no disk reads it), the engine, a WaitCondition and the start and result custom resources', () => {
    const stack = newStack();
    bucketImport(stack);
    const t = Template.fromStack(stack);
    t.resourceCountIs('Custom::VmImageImport', 1);
    t.resourceCountIs('Custom::VmImageImportResult', 1);
    t.resourceCountIs('AWS::CloudFormation::WaitCondition', 1);
    // The stack's key for the AMI, and the engine's for its log group; no bucket, since no disk reads it.
    t.resourceCountIs('AWS::KMS::Key', 2);
    expect(Object.keys(importKeys(t))).toHaveLength(1);
    t.resourceCountIs('AWS::S3::Bucket', 0);
    t.resourceCountIs('AWS::StepFunctions::StateMachine', 1);
    t.resourceCountIs('AWS::Logs::LogGroup', 1);
    // The engine's one function serves both custom resources and the state machine's steps.
    t.resourceCountIs('AWS::Lambda::Function', 1);
    // The import role, the engine's function and its state machine.
    t.resourceCountIs('AWS::IAM::Role', 3);
    expect(Object.keys(t.toJSON().Resources).filter((id) => id.startsWith('CdkVmImportEngine')).sort().map((id) => id.replace(/[0-9A-F]{8}$/, ''))).toEqual([
      'CdkVmImportEngineExecutionsPolicy',
      'CdkVmImportEngineHandler',
      'CdkVmImportEngineHandlerRole',
      'CdkVmImportEngineHandlerRoleDefaultPolicy',
      'CdkVmImportEngineLogs',
      'CdkVmImportEngineLogsKey',
      'CdkVmImportEngineStateMachine',
      'CdkVmImportEngineStateMachineRole',
      'CdkVmImportEngineStateMachineRoleDefaultPolicy',
    ]);
  });

  test('the WaitCondition waits for one signal, the import\'s timeout plus one poll and 5 minutes', () => {
    const stack = newStack();
    bucketImport(stack);
    const [id, wait] = only(Template.fromStack(stack), 'AWS::CloudFormation::WaitCondition');
    expect(id).toMatch(/^ImportWait[0-9A-F]{12}[0-9A-F]{8}$/);
    // Default: 6 hours + 30 seconds + 300 seconds.
    expect(wait.CreationPolicy).toEqual({ ResourceSignal: { Count: 1, Timeout: 'PT6H5M30S' } });
    // No Handle, Count or Timeout properties: the creation policy replaces them.
    expect(wait.Properties ?? {}).toEqual({});
  });

  test.each([
    ['40 minutes polled every 10 seconds', Duration.minutes(40), Duration.seconds(10), 'PT45M10S'],
    ['12 hours (capped at the WaitCondition\'s maximum)', Duration.hours(12), undefined, 'PT12H'],
    ['11 hours 55 minutes with a 1-hour poll (capped)', Duration.minutes(715), Duration.hours(1), 'PT12H'],
  ])('a timeout of %s gives the WaitCondition %s', (_name, timeout, pollInterval, expected) => {
    const stack = newStack();
    bucketImport(stack, 'Import', { timeout, pollInterval });
    const [, wait] = only(Template.fromStack(stack), 'AWS::CloudFormation::WaitCondition');
    expect(wait.CreationPolicy.ResourceSignal.Timeout).toBe(expected);
  });

  test.each([
    ['timeout', { timeout: Duration.seconds(Token.asNumber({ Ref: 'Timeout' })) }],
    ['pollInterval', { pollInterval: Duration.seconds(Token.asNumber({ Ref: 'Poll' })) }],
  ])('an unresolved %s makes the WaitCondition wait the longest, 12 hours', (_name, wait) => {
    const stack = newStack();
    bucketImport(stack, 'Import', wait);
    const [, condition] = only(Template.fromStack(stack), 'AWS::CloudFormation::WaitCondition');
    expect(condition.CreationPolicy.ResourceSignal).toEqual({ Count: 1, Timeout: 'PT12H' });
  });

  test('two imports in a stack share one engine and have a WaitCondition each', () => {
    const stack = newStack();
    bucketImport(stack, 'A');
    bucketImport(stack, 'B');
    const t = Template.fromStack(stack);
    t.resourceCountIs('Custom::VmImageImport', 2);
    t.resourceCountIs('Custom::VmImageImportResult', 2);
    t.resourceCountIs('AWS::Lambda::Function', 1);
    t.resourceCountIs('AWS::StepFunctions::StateMachine', 1);
    t.resourceCountIs('AWS::Logs::LogGroup', 1);
    const waits = Object.keys(t.findResources('AWS::CloudFormation::WaitCondition')).sort();
    expect(waits).toEqual([expect.stringMatching(/^AWait[0-9A-F]{20}$/), expect.stringMatching(/^BWait[0-9A-F]{20}$/)]);
    // Both start resources use the one state machine and each names its own WaitCondition.
    const starts = Object.values(t.findResources('Custom::VmImageImport'));
    const [machineId] = only(t, 'AWS::StepFunctions::StateMachine');
    expect(starts.map((r) => r.Properties.StateMachineArn)).toEqual([{ Ref: machineId }, { Ref: machineId }]);
    expect(starts.map((r) => r.Properties.WaitConditionId).sort()).toEqual(waits);
  });

  test('the engine\'s function runs the bundled handler on the newest Node.js runtime, logging JSON to the engine\'s log group', () => {
    const stack = newStack();
    bucketImport(stack);
    const t = Template.fromStack(stack);
    const [logsId] = only(t, 'AWS::Logs::LogGroup');
    t.hasResourceProperties('AWS::Lambda::Function', {
      Handler: 'index.handler',
      Runtime: 'nodejs24.x',
      Architectures: ['arm64'],
      // A Delete that waits out InvalidSnapshot.InUse; a custom resource must answer within the hour.
      Timeout: 900,
      LoggingConfig: { LogFormat: 'JSON', LogGroup: { Ref: logsId } },
    });
    t.hasResource('AWS::Logs::LogGroup', { DeletionPolicy: 'Retain', Properties: { RetentionInDays: 365 } });
    // Both custom resources are served by it.
    const [functionId] = only(t, 'AWS::Lambda::Function');
    const tokens = [...Object.values(t.findResources('Custom::VmImageImport')), ...Object.values(t.findResources('Custom::VmImageImportResult'))]
      .map((r) => r.Properties.ServiceToken);
    expect(tokens).toEqual([{ 'Fn::GetAtt': [functionId, 'Arn'] }, { 'Fn::GetAtt': [functionId, 'Arn'] }]);
  });

  test('the state machine is a Standard one that logs errors without execution data and invokes the engine\'s function', () => {
    const stack = newStack();
    bucketImport(stack);
    const t = Template.fromStack(stack);
    const [logsId] = only(t, 'AWS::Logs::LogGroup');
    const [functionId] = only(t, 'AWS::Lambda::Function');
    const [, machine] = only(t, 'AWS::StepFunctions::StateMachine');
    expect(machine.Properties.StateMachineType).toBe('STANDARD');
    expect(machine.Properties.LoggingConfiguration).toEqual({
      Destinations: [{ CloudWatchLogsLogGroup: { LogGroupArn: { 'Fn::GetAtt': [logsId, 'Arn'] } } }],
      IncludeExecutionData: false,
      Level: 'ERROR',
    });
    const definition = JSON.stringify(machine.Properties.DefinitionString);
    expect(definition).toContain(functionId);
    for (const state of ['StartImport', 'WaitToStart', 'WaitForImport', 'DescribeImport', 'TagImage', 'TagSnapshots', 'CancelOnTimeout', 'SignalCompleted', 'SignalFailed', 'SignalError']) {
      expect(definition).toContain(`\\"${state}\\"`);
    }
  });

  test('the key rotates and the bucket is private, SSL-only, versioned and encrypted with it', () => {
    const stack = newStack();
    new VmImageImport(stack, 'Import', { diskImages: [DiskImage.fromImportBucket('builds/web.vmdk')], licenseType: LicenseType.BYOL });
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
    t.hasResource('AWS::KMS::Key', { DeletionPolicy: 'Retain' });
    const keyId = Object.keys(importKeys(t))[0];
    t.hasResource('AWS::S3::Bucket', {
      DeletionPolicy: 'Retain',
      Properties: {
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [{
            ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: { 'Fn::GetAtt': [keyId, 'Arn'] } },
            BucketKeyEnabled: true,
          }],
        },
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true,
        },
        VersioningConfiguration: { Status: 'Enabled' },
        OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
        LifecycleConfiguration: { Rules: [Match.objectLike({ AbortIncompleteMultipartUpload: { DaysAfterInitiation: 7 } })] },
      },
    });
    t.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([Match.objectLike({
          Effect: 'Deny', Action: 's3:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } },
        })]),
      },
    });
  });

  describe('the key lets Auto Scaling groups launch the AMI', () => {
    const slr = { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':iam::123456789012:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling']] };
    const autoScalingStatements = (t: Template) => Object.values(importKeys(t))
      .map((k) => k.Properties.KeyPolicy.Statement.filter((st: any) => JSON.stringify(st.Condition ?? {}).includes('AWSServiceRoleForAutoScaling')));

    test('the created key\'s policy allows the service-linked role exactly what the EC2 Auto Scaling guide lists', () => {
      const stack = newStack();
      bucketImport(stack);
      expect(autoScalingStatements(Template.fromStack(stack))).toEqual([[
        {
          Sid: 'AllowAutoScalingToUseTheKey',
          Effect: 'Allow',
          // Named by condition: KMS refuses a principal that does not exist yet (no Auto Scaling used in the account).
          Principal: { AWS: '*' },
          Action: ['kms:Encrypt', 'kms:Decrypt', 'kms:ReEncryptFrom', 'kms:ReEncryptTo', 'kms:GenerateDataKey', 'kms:GenerateDataKeyWithoutPlaintext', 'kms:DescribeKey'],
          Resource: '*',
          Condition: { ArnEquals: { 'aws:PrincipalArn': slr } },
        },
        {
          Sid: 'AllowAutoScalingToGrantTheKeyToAwsResources',
          Effect: 'Allow',
          Principal: { AWS: '*' },
          Action: 'kms:CreateGrant',
          Resource: '*',
          Condition: { ArnEquals: { 'aws:PrincipalArn': slr }, Bool: { 'kms:GrantIsForAWSResource': true } },
        },
      ]]);
    });

    test('a key passed in keeps its own policy', () => {
      const stack = newStack();
      bucketImport(stack, 'Import', { encryptionKey: new kms.Key(stack, 'Given') });
      expect(autoScalingStatements(Template.fromStack(stack))).toEqual([[]]);
    });

    test('a key that only encrypts the created bucket (encrypted: false) does not allow it', () => {
      const stack = newStack();
      new VmImageImport(stack, 'Import', { diskImages: [DiskImage.fromImportBucket('builds/web.vmdk')], licenseType: LicenseType.BYOL, encrypted: false });
      expect(autoScalingStatements(Template.fromStack(stack))).toEqual([[]]);
    });
  });

  test('passes every ImportImage option as a property', () => {
    const stack = newStack();
    const key = new kms.Key(stack, 'MyKey');
    bucketImport(stack, 'Import', {
      encryptionKey: key,
      description: 'web server',
      clientData: {
        comment: 'built by CI',
        uploadStart: new Date('2026-01-01T00:00:00Z'),
        uploadEnd: new Date('2026-01-01T00:10:00Z'),
        uploadSize: Size.gibibytes(8),
      },
      licenseType: LicenseType.AWS,
      licenseConfigurationArns: [LICENSE_ARN],
      tags: { team: 'infra' },
      bootMode: BootMode.UEFI,
      platform: Platform.WINDOWS,
      architecture: Architecture.X86_64,
      hypervisor: Hypervisor.XEN,
      removalPolicy: RemovalPolicy.DESTROY,
      timeout: Duration.minutes(40),
      pollInterval: Duration.seconds(10),
    });
    const t = Template.fromStack(stack);
    const keyId = stack.getLogicalId(key.node.defaultChild as kms.CfnKey);
    const [machineId] = only(t, 'AWS::StepFunctions::StateMachine');
    const [waitId] = only(t, 'AWS::CloudFormation::WaitCondition');
    t.hasResourceProperties('Custom::VmImageImport', {
      StateMachineArn: { Ref: machineId },
      WaitConditionId: waitId,
      DiskContainers: [{
        Format: 'VMDK',
        S3Bucket: 'my-images',
        S3Key: 'builds/web.vmdk',
      }],
      RoleName: { Ref: Match.stringLikeRegexp('^CdkVmImportSharedRole') },
      Description: 'web server',
      Encrypted: 'true',
      KmsKeyId: { 'Fn::GetAtt': [keyId, 'Arn'] },
      LicenseType: 'AWS',
      UsageOperation: Match.absent(),
      Platform: 'Windows',
      BootMode: 'uefi',
      Architecture: 'x86_64',
      Hypervisor: 'xen',
      ClientData: { Comment: 'built by CI', UploadStart: '2026-01-01T00:00:00.000Z', UploadEnd: '2026-01-01T00:10:00.000Z', UploadSize: '8' },
      LicenseConfigurationArns: [LICENSE_ARN],
      Tags: [{ Key: 'team', Value: 'infra' }],
      RemovalPolicy: 'destroy',
      WaitTimeoutSeconds: '2400',
      PollIntervalSeconds: '10',
    });
    const [startId, start] = only(t, 'Custom::VmImageImport');
    const [, result] = only(t, 'Custom::VmImageImportResult');
    // The result resource: which execution, and what an Update may change in place.
    expect(Object.keys(result.Properties).sort()).toEqual(['ExecutionArn', 'RemovalPolicy', 'ServiceTimeout', 'ServiceToken', 'Tags']);
    // CloudFormation waits 20 minutes for either answer, not its default hour.
    expect([start.Properties.ServiceTimeout, result.Properties.ServiceTimeout]).toEqual(['1200', '1200']);
    expect(result.Properties).toEqual(expect.objectContaining({
      ExecutionArn: { Ref: startId }, Tags: [{ Key: 'team', Value: 'infra' }], RemovalPolicy: 'destroy',
    }));
    // A given key is used as is: no key of the construct's own.
    expect(Object.keys(importKeys(t))).toHaveLength(1);
  });

  test('passes a usage operation instead of a license type', () => {
    const stack = newStack();
    bucketImport(stack, 'Import', { licenseType: undefined, usageOperation: 'RunInstances:0002', platform: Platform.WINDOWS });
    Template.fromStack(stack).hasResourceProperties('Custom::VmImageImport', {
      UsageOperation: 'RunInstances:0002',
      LicenseType: Match.absent(),
    });
  });

  test('removal policy is RETAIN by default, and the CloudFormation resources themselves are always deleted so the handler decides', () => {
    const stack = newStack();
    bucketImport(stack, 'Kept');
    bucketImport(stack, 'Destroyed', { removalPolicy: RemovalPolicy.DESTROY });
    const t = Template.fromStack(stack);
    const imports = { ...t.findResources('Custom::VmImageImport'), ...t.findResources('Custom::VmImageImportResult') };
    const policies = Object.entries(imports).map(([id, r]) => [id.replace(/[0-9A-F]{8}$/, ''), r.Properties.RemovalPolicy, r.DeletionPolicy]);
    expect(policies.sort()).toEqual([
      ['Destroyed', 'destroy', 'Delete'],
      ['DestroyedResult', 'destroy', 'Delete'],
      ['Kept', 'retain', 'Delete'],
      ['KeptResult', 'retain', 'Delete'],
    ]);
  });

  test('tags from Tags.of(stack) and the stack\'s own tags reach the AMI and its snapshots', () => {
    const stack = new Stack(new App(), 'Test', { env: { account: '123456789012', region: 'us-east-1' }, tags: { owner: 'platform', app: 'overridden' } });
    bucketImport(stack, 'Import', { tags: { app: 'web' } });
    Tags.of(stack).add('cost-center', '42');
    const t = Template.fromStack(stack);
    const tags = [{ Key: 'app', Value: 'web' }, { Key: 'cost-center', Value: '42' }, { Key: 'owner', Value: 'platform' }];
    // The start resource tags the import task; the result resource re-tags the AMI and its snapshots on an Update.
    t.hasResourceProperties('Custom::VmImageImport', { Tags: tags });
    t.hasResourceProperties('Custom::VmImageImportResult', { Tags: tags });
  });

  test('Tags.of() exclusions and removals apply to the AMI\'s tags too', () => {
    const stack = new Stack(new App(), 'Test', { env: { account: '123456789012', region: 'us-east-1' }, tags: { owner: 'platform' } });
    const imp = bucketImport(stack, 'Import', { tags: { app: 'web' } });
    Tags.of(stack).add('cost-center', '42', { excludeResourceTypes: ['Custom::VmImageImport'] });
    Tags.of(imp).remove('owner');
    const t = Template.fromStack(stack);
    t.hasResourceProperties('Custom::VmImageImport', { Tags: [{ Key: 'app', Value: 'web' }] });
    t.hasResourceProperties('Custom::VmImageImportResult', { Tags: [{ Key: 'app', Value: 'web' }] });
  });

  test('no tags at all sends no Tags property', () => {
    const stack = newStack();
    bucketImport(stack);
    const t = Template.fromStack(stack);
    t.hasResourceProperties('Custom::VmImageImport', { Tags: Match.absent() });
    t.hasResourceProperties('Custom::VmImageImportResult', { Tags: Match.absent() });
  });

  test('start, then WaitCondition, then result: the start resource waits for the import role, its policy and the ExecutionsPolicy', () => {
    const stack = newStack();
    bucketImport(stack);
    const t = Template.fromStack(stack);
    const [startId, start] = only(t, 'Custom::VmImageImport');
    const [waitId, wait] = only(t, 'AWS::CloudFormation::WaitCondition');
    const [, result] = only(t, 'Custom::VmImageImportResult');
    expect([...start.DependsOn].sort()).toEqual([
      expect.stringMatching(/^CdkVmImportEngineExecutionsPolicy[0-9A-F]{8}$/),
      expect.stringMatching(/^CdkVmImportSharedRoleDefaultPolicy[0-9A-F]{8}$/),
      expect.stringMatching(/^CdkVmImportSharedRole[0-9A-F]{8}$/),
    ]);
    expect(wait.DependsOn).toEqual([startId]);
    expect(result.DependsOn).toEqual([waitId]);
    expect(result.Properties.ExecutionArn).toEqual({ Ref: startId });
  });

  test('encrypted: false with a given bucket creates no key and sends no KmsKeyId', () => {
    const stack = newStack();
    const bucket = new s3.Bucket(stack, 'Images');
    const imp = bucketImport(stack, 'Import', { bucket, encrypted: false });
    const t = Template.fromStack(stack);
    expect(Object.keys(importKeys(t))).toHaveLength(0);
    t.hasResourceProperties('Custom::VmImageImport', { Encrypted: 'false', KmsKeyId: Match.absent() });
    expect(imp.encryptionKey).toBeUndefined();
    expect(imp.bucket).toBe(bucket);
  });

  test('a given role is used and granted what it needs; no role of the construct is created', () => {
    const stack = newStack();
    const role = iam.Role.fromRoleArn(stack, 'Given', 'arn:aws:iam::123456789012:role/my-import-role');
    const imp = bucketImport(stack, 'Import', { role });
    const t = Template.fromStack(stack);
    expect(imp.role).toBe(role);
    t.hasResourceProperties('Custom::VmImageImport', { RoleName: 'my-import-role' });
    t.resourcePropertiesCountIs('AWS::IAM::Role', {
      AssumeRolePolicyDocument: { Statement: [Match.objectLike({ Principal: { Service: 'vmie.amazonaws.com' } })] },
    }, 0);
    expect(objectReads(t, 'my-import-role')).toEqual(['arn:${Partition}:s3:::my-images/builds/web.vmdk']);
  });

  test('DiskImage.fromImportBucket reads from the construct\'s own bucket', () => {
    const stack = newStack();
    const imp = new VmImageImport(stack, 'Import', {
      diskImages: [DiskImage.fromImportBucket('uploads/db.vhdx')],
      licenseType: LicenseType.BYOL,
    });
    const bucketId = stack.getLogicalId(imp.bucket.node.defaultChild as s3.CfnBucket);
    Template.fromStack(stack).hasResourceProperties('Custom::VmImageImport', {
      DiskContainers: [{ Format: 'VHDX', S3Bucket: { Ref: bucketId }, S3Key: 'uploads/db.vhdx' }],
    });
  });
});

describe('VmImageImport attributes', () => {
  test('imageId is a token an ec2.Instance resolves to the custom resource attribute', () => {
    const stack = newStack();
    const imp = bucketImport(stack);
    const vpc = new ec2.Vpc(stack, 'Vpc', { maxAzs: 1, natGateways: 0 });
    new ec2.Instance(stack, 'Vm', {
      vpc,
      machineImage: imp,
      instanceType: ec2.InstanceType.of(ec2.InstanceClass.T3, ec2.InstanceSize.MICRO),
    });
    const t = Template.fromStack(stack);
    const [resultId] = only(t, 'Custom::VmImageImportResult');
    expect(resultId).toMatch(/^ImportResult[0-9A-F]{8}$/);
    t.hasResourceProperties('AWS::EC2::Instance', { ImageId: { 'Fn::GetAtt': [resultId, 'ImageId'] } });
  });

  test('imageId, snapshotIds and importTaskId resolve to the result resource', () => {
    const stack = newStack();
    const imp = bucketImport(stack);
    const id = stack.getLogicalId(imp.node.findChild('Result').node.defaultChild as any);
    expect(stack.resolve(imp.imageId)).toEqual({ 'Fn::GetAtt': [id, 'ImageId'] });
    expect(stack.resolve(imp.importTaskId)).toEqual({ 'Fn::GetAtt': [id, 'ImportTaskId'] });
    expect(stack.resolve(imp.snapshotIds)).toEqual({ 'Fn::Split': [',', { 'Fn::GetAtt': [id, 'SnapshotIds'] }] });
  });

  test('stateMachine and logGroup are the stack\'s engine\'s, shared by its imports', () => {
    const stack = newStack();
    const a = bucketImport(stack, 'A');
    const b = bucketImport(stack, 'B');
    const t = Template.fromStack(stack);
    const [machineId] = only(t, 'AWS::StepFunctions::StateMachine');
    const [logsId] = only(t, 'AWS::Logs::LogGroup');
    expect(stack.resolve(a.stateMachine.stateMachineArn)).toEqual({ Ref: machineId });
    expect(stack.resolve(a.logGroup.logGroupName)).toEqual({ Ref: logsId });
    expect(b.stateMachine).toBe(a.stateMachine);
    expect(b.logGroup).toBe(a.logGroup);
  });

  test('imports in two stacks get an engine each', () => {
    const app = new App();
    const one = new Stack(app, 'One', { env: { account: '123456789012', region: 'us-east-1' } });
    const two = new Stack(app, 'Two', { env: { account: '123456789012', region: 'us-east-1' } });
    const a = bucketImport(one, 'A');
    const b = bucketImport(two, 'B');
    expect(b.stateMachine).not.toBe(a.stateMachine);
    Template.fromStack(one).resourceCountIs('AWS::StepFunctions::StateMachine', 1);
    Template.fromStack(two).resourceCountIs('AWS::StepFunctions::StateMachine', 1);
  });

  test('an instance in another Region is refused: AMIs are regional', () => {
    const app = new App();
    const here = new Stack(app, 'Here', { env: { account: '123456789012', region: 'us-east-1' } });
    const there = new Stack(app, 'There', { env: { account: '123456789012', region: 'eu-west-1' }, crossRegionReferences: true });
    const imp = bucketImport(here);
    const vpc = new ec2.Vpc(there, 'Vpc', { maxAzs: 1, natGateways: 0 });
    expect(() => new ec2.Instance(there, 'Vm', {
      vpc,
      machineImage: imp,
      instanceType: ec2.InstanceType.of(ec2.InstanceClass.T3, ec2.InstanceSize.MICRO),
    })).toThrow('There/Vm is in Region eu-west-1 but uses the AMI of Here/Import, which is imported in us-east-1: AMIs are regional. ' +
      'Import the disk image again with a VmImageImport in a stack in eu-west-1, or launch the instance in us-east-1.');
  });

  test('another stack in the same Region, or one whose Region is a token, may use the AMI', () => {
    const app = new App();
    const here = new Stack(app, 'Here', { env: { account: '123456789012', region: 'us-east-1' } });
    const imp = bucketImport(here);
    const same = new Stack(app, 'Same', { env: { account: '123456789012', region: 'us-east-1' } });
    const agnostic = new Stack(app, 'Agnostic');
    expect(imp.getImage(same).imageId).toBe(imp.imageId);
    expect(imp.getImage(agnostic).imageId).toBe(imp.imageId);
  });

  test('getImage reports Windows for a Windows import and Linux otherwise', () => {
    const stack = newStack();
    const win = bucketImport(stack, 'Win', { platform: Platform.WINDOWS });
    const lin = bucketImport(stack, 'Lin');
    expect(win.getImage(stack).osType).toBe(ec2.OperatingSystemType.WINDOWS);
    expect(lin.getImage(stack).osType).toBe(ec2.OperatingSystemType.LINUX);
  });
});

describe('a new WaitCondition (a new import) only when what shapes the image changes', () => {
  const baseline: Partial<VmImageImportProps> = {
    description: 'web',
    tags: { app: 'web' },
    clientData: { comment: 'ci', uploadSize: Size.gibibytes(1) },
  };
  const idWith = (props: Partial<VmImageImportProps> | ((stack: Stack) => Partial<VmImageImportProps>)) => {
    const stack = newStack();
    bucketImport(stack, 'Import', { ...baseline, ...(typeof props === 'function' ? props(stack) : props) });
    return waitConditionId(stack);
  };

  test('the same props give the same ID', () => {
    expect(idWith({})).toBe(idWith({}));
  });

  test.each<[string, Partial<VmImageImportProps> | ((stack: Stack) => Partial<VmImageImportProps>)]>([
    ['tags only', { tags: { app: 'web', team: 'infra' } }],
    ['Tags.of() only', (stack) => { Tags.of(stack).add('cost-center', '42'); return {}; }],
    ['the role', (stack) => ({ role: iam.Role.fromRoleArn(stack, 'Other', 'arn:aws:iam::123456789012:role/other-import-role') })],
    ['the upload data', { clientData: { comment: 'rebuilt', uploadStart: new Date('2026-01-01T00:00:00Z') } }],
    ['the removal policy', { removalPolicy: RemovalPolicy.DESTROY }],
    ['the timeout', { timeout: Duration.hours(11) }],
    ['the poll interval', { pollInterval: Duration.minutes(5) }],
  ])('%s keeps it', (_name, change) => {
    expect(idWith(change)).toBe(idWith({}));
  });

  test.each<[string, Partial<VmImageImportProps> | ((stack: Stack) => Partial<VmImageImportProps>)]>([
    ['another disk', (stack) => ({ diskImages: [DiskImage.fromBucket(s3.Bucket.fromBucketName(stack, 'Other', 'my-images'), 'builds/web-2.vmdk')] })],
    ['a second disk', (stack) => {
      const bucket = s3.Bucket.fromBucketName(stack, 'Other', 'my-images');
      return { diskImages: [DiskImage.fromBucket(bucket, 'builds/web.vmdk'), DiskImage.fromBucket(bucket, 'data.vmdk', { deviceName: '/dev/sdb' })] };
    }],
    ['the boot mode', { bootMode: BootMode.UEFI }],
    ['the description', { description: 'web v2' }],
    ['the license type', { licenseType: LicenseType.AWS }],
    ['the encryption key', (stack) => ({ encryptionKey: new kms.Key(stack, 'OtherKey') })],
    ['encryption off', (stack) => ({ encrypted: false, bucket: new s3.Bucket(stack, 'Images') })],
    ['the platform', { platform: Platform.WINDOWS }],
  ])('%s changes it', (_name, change) => {
    expect(idWith(change)).not.toBe(idWith({}));
  });

  test('a changed WaitCondition ID reaches the start resource', () => {
    const stack = newStack();
    bucketImport(stack, 'Import', { bootMode: BootMode.UEFI });
    Template.fromStack(stack).hasResourceProperties('Custom::VmImageImport', { WaitConditionId: waitConditionId(stack) });
  });
});

describe('DiskImage sources', () => {
  test('fromAsset reads the file straight from the asset location, without copying it elsewhere', () => {
    const stack = newStack();
    new VmImageImport(stack, 'Import', { diskImages: [DiskImage.fromAsset(EXAMPLE_VMDK)], licenseType: LicenseType.BYOL });
    const t = Template.fromStack(stack);
    t.hasResourceProperties('Custom::VmImageImport', {
      DiskContainers: [{
        Format: 'VMDK',
        S3Bucket: 'cdk-hnb659fds-assets-123456789012-us-east-1',
        S3Key: Match.stringLikeRegexp('^[0-9a-f]{64}\\.vmdk$'),
      }],
    });
    expect(objectReads(t)).toEqual([expect.stringMatching(/^arn:\$\{Partition\}:s3:::cdk-hnb659fds-assets-123456789012-us-east-1\/[0-9a-f]{64}\.vmdk$/)]);
  });

  test('fromUrl with https grants nothing; with s3:// grants read on that object', () => {
    const stack = newStack();
    new VmImageImport(stack, 'Import', {
      diskImages: [DiskImage.fromUrl('s3://other-bucket/disk.raw')],
      licenseType: LicenseType.BYOL,
    });
    new VmImageImport(stack, 'Presigned', {
      diskImages: [DiskImage.fromUrl('https://example.com/disk.vhd?X-Amz-Signature=abc', { deviceName: '/dev/sda1', description: 'root' })],
      licenseType: LicenseType.BYOL,
    });
    const t = Template.fromStack(stack);
    t.hasResourceProperties('Custom::VmImageImport', {
      DiskContainers: [{ Format: 'RAW', Url: 's3://other-bucket/disk.raw' }],
    });
    t.hasResourceProperties('Custom::VmImageImport', {
      DiskContainers: [{ Format: 'VHD', Url: 'https://example.com/disk.vhd?X-Amz-Signature=abc', DeviceName: '/dev/sda1', Description: 'root' }],
    });
    expect(objectReads(t)).toEqual(['arn:${Partition}:s3:::other-bucket/disk.raw']);
  });

  test('a token inside an S3 key does not hide the literal extension', () => {
    const stack = newStack();
    const bucket = s3.Bucket.fromBucketName(stack, 'Src', 'my-images');
    const version = Token.asString({ Ref: 'Version' });
    new VmImageImport(stack, 'Import', {
      diskImages: [
        DiskImage.fromBucket(bucket, `images/${version}/boot.vmdk`),
        DiskImage.fromBucket(bucket, `images/data-${version}.vhd`),
        DiskImage.fromUrl(`https://example.com/${version}/disk.vhdx?X-Amz-Signature=abc`),
      ],
      licenseType: LicenseType.BYOL,
    });
    Template.fromStack(stack).hasResourceProperties('Custom::VmImageImport', {
      DiskContainers: [
        Match.objectLike({ Format: 'VMDK' }),
        Match.objectLike({ Format: 'VHD' }),
        Match.objectLike({ Format: 'VHDX' }),
      ],
    });
  });

  test('an s3:// URL with tokens (bucket.s3UrlForObject) gets its format and the read grant', () => {
    const stack = newStack();
    const bucket = new s3.Bucket(stack, 'Images');
    const bucketId = stack.getLogicalId(bucket.node.defaultChild as s3.CfnBucket);
    new VmImageImport(stack, 'Import', {
      diskImages: [DiskImage.fromUrl(bucket.s3UrlForObject('images/web.ova'))],
      licenseType: LicenseType.BYOL,
    });
    const t = Template.fromStack(stack);
    t.hasResourceProperties('Custom::VmImageImport', { DiskContainers: [Match.objectLike({ Format: 'OVA' })] });
    expect(objectReads(t)).toEqual([`arn:\${Partition}:s3:::\${${bucketId}}/images/web.ova`]);
  });

  test('an s3:// URL whose bucket and key one token hides is an error; a URL that is all token, a warning', () => {
    const stack = newStack();
    const url = Token.asString({ Ref: 'Url' });
    expect(() => new VmImageImport(stack, 'Import', {
      diskImages: [DiskImage.fromUrl(`s3://${url}`, { format: DiskImageFormat.RAW })],
      licenseType: LicenseType.BYOL,
    })).toThrow(/^DiskImage\.fromUrl\("s3:\/\/\$\{Token\[[^\]]+\]\}"\): the bucket and the key of this s3:\/\/ URL cannot be told apart at synth, so the import role cannot be granted read access/);
    new VmImageImport(stack, 'Opaque', { diskImages: [DiskImage.fromUrl(url, { format: DiskImageFormat.RAW })], licenseType: LicenseType.BYOL });
    Annotations.fromStack(stack).hasWarning('/Test/Opaque', Match.stringLikeRegexp("the URL's scheme is unknown at synth, so whether it names an S3 object is unknown"));
    new VmImageImport(stack, 'Https', { diskImages: [DiskImage.fromUrl(`https://${url}`, { format: DiskImageFormat.RAW })], licenseType: LicenseType.BYOL });
    new VmImageImport(stack, 'Sub', {
      diskImages: [DiskImage.fromUrl(Fn.sub('https://${AWS::AccountId}-images.s3.amazonaws.com/disk.img'), { format: DiskImageFormat.RAW })],
      licenseType: LicenseType.BYOL,
    });
    for (const where of ['/Test/Https', '/Test/Sub']) {
      expect(Annotations.fromStack(stack).findWarning(where, Match.stringLikeRegexp('scheme is unknown'))).toHaveLength(0);
    }
    expect(() => new VmImageImport(stack, 'SubS3', {
      diskImages: [DiskImage.fromUrl(Fn.sub('s3://${AWS::AccountId}-images/disk.img'), { format: DiskImageFormat.RAW })],
      licenseType: LicenseType.BYOL,
    })).toThrow('the bucket and the key of this s3:// URL cannot be told apart at synth');
  });

  test('fromSnapshot sends the snapshot ID', () => {
    const stack = newStack();
    new VmImageImport(stack, 'Import', {
      diskImages: [DiskImage.fromSnapshot('snap-0123456789abcdef0')],
      licenseType: LicenseType.BYOL,
      platform: Platform.LINUX,
    });
    Template.fromStack(stack).hasResourceProperties('Custom::VmImageImport', {
      DiskContainers: [{ SnapshotId: 'snap-0123456789abcdef0' }],
    });
  });

  test('several disks keep their order', () => {
    const stack = newStack();
    const bucket = s3.Bucket.fromBucketName(stack, 'Src', 'my-images');
    new VmImageImport(stack, 'Import', {
      diskImages: [
        DiskImage.fromBucket(bucket, 'boot.vmdk', { deviceName: '/dev/sda1' }),
        DiskImage.fromBucket(bucket, 'data', { format: DiskImageFormat.RAW, deviceName: '/dev/sdb' }),
      ],
      licenseType: LicenseType.BYOL,
    });
    Template.fromStack(stack).hasResourceProperties('Custom::VmImageImport', {
      DiskContainers: [
        { Format: 'VMDK', S3Bucket: 'my-images', S3Key: 'boot.vmdk', DeviceName: '/dev/sda1' },
        { Format: 'RAW', S3Bucket: 'my-images', S3Key: 'data', DeviceName: '/dev/sdb' },
      ],
    });
  });
});

describe('warnings', () => {
  test('no license type nor usage operation gives a warning', () => {
    const stack = newStack();
    const bucket = s3.Bucket.fromBucketName(stack, 'Src', 'my-images');
    new VmImageImport(stack, 'Import', { diskImages: [DiskImage.fromBucket(bucket, 'a.vmdk')] });
    Annotations.fromStack(stack).hasWarning('/Test/Import', Match.stringLikeRegexp("Neither 'licenseType' nor 'usageOperation'"));
  });

  test('a license type silences it', () => {
    const stack = newStack();
    bucketImport(stack);
    expect(Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('licenseType'))).toHaveLength(0);
  });
});

test('VmImportRole can be created on its own and passed in', () => {
  const stack = newStack();
  const role = new VmImportRole(stack, 'Shared');
  const imp = bucketImport(stack, 'Import', { role });
  expect(imp.role).toBe(role);
  Template.fromStack(stack).resourcePropertiesCountIs('AWS::IAM::Role', {
    AssumeRolePolicyDocument: { Statement: [Match.objectLike({ Principal: { Service: 'vmie.amazonaws.com' } })] },
  }, 1);
});

describe('DiskImage.fromAsset inspects the file', () => {
  let dir: string;
  let espDisk: string;

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fromasset-'));
    // A real GPT with an EFI System Partition, written by sfdisk (test/fixtures/make-disk-fixtures.sh).
    espDisk = writeDiskFixture('gpt-esp.img', dir);
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const importOf = (stack: Stack, file: string, bootMode?: BootMode) =>
    new VmImageImport(stack, 'Import', { diskImages: [DiskImage.fromAsset(file)], licenseType: LicenseType.BYOL, bootMode });

  test('the format is detected from the bytes', () => {
    const stack = newStack();
    importOf(stack, espDisk, BootMode.UEFI);
    Template.fromStack(stack).hasResourceProperties('Custom::VmImageImport', { DiskContainers: [Match.objectLike({ Format: 'RAW' })] });
  });

  test.each([
    [undefined, "'bootMode' is not set"],
    [BootMode.LEGACY_BIOS, "'bootMode' is legacy-bios"],
  ])('a disk with an EFI System Partition and bootMode %s gives a warning', (bootMode, says) => {
    const stack = newStack();
    importOf(stack, espDisk, bootMode);
    Annotations.fromStack(stack).hasWarning('/Test/Import', Match.stringLikeRegexp(`holds an EFI System Partition, so it boots with UEFI, but ${says}`));
  });

  test('bootMode UEFI on such a disk gives no warning', () => {
    const stack = newStack();
    importOf(stack, espDisk, BootMode.UEFI);
    expect(Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('EFI System Partition'))).toHaveLength(0);
  });

  test('changing one byte of the disk changes its asset key, and so starts a new import', () => {
    const disk = path.join(dir, 'changing.raw');
    fs.copyFileSync(espDisk, disk);
    const keyOf = () => {
      const stack = newStack();
      importOf(stack, disk, BootMode.UEFI);
      const imports = Template.fromStack(stack).findResources('Custom::VmImageImport');
      return Object.values(imports)[0].Properties.DiskContainers[0].S3Key as string;
    };
    const before = keyOf();
    expect(keyOf()).toBe(before);
    const fd = fs.openSync(disk, 'r+');
    fs.writeSync(fd, Buffer.from([0x42]), 0, 1, 6 * 1024 * 1024);
    fs.closeSync(fd);
    expect(keyOf()).not.toBe(before);
  });

  test('a format that contradicts the bytes is an error naming both', () => {
    const stack = newStack();
    expect(() => new VmImageImport(stack, 'Import', {
      diskImages: [DiskImage.fromAsset(EXAMPLE_VMDK, { format: DiskImageFormat.VHD })],
      licenseType: LicenseType.BYOL,
    })).toThrow(/'format' is VHD but the file is a stream-optimized VMDK \(VMDK\), not a VHD \(which ends with a 'conectix' footer\)\. Set 'format' to DiskImageFormat\.VMDK/);
  });

  test('bytes of no known format need an explicit format', () => {
    const stack = newStack();
    const blank = path.join(dir, 'blank.bin');
    fs.writeFileSync(blank, Buffer.alloc(4096));
    expect(() => new VmImageImport(stack, 'Import', { diskImages: [DiskImage.fromAsset(blank)], licenseType: LicenseType.BYOL }))
      .toThrow(/is not a disk image format VM Import recognizes: it holds unrecognized bytes \(first bytes 0x0{32}\)\. If it is a raw disk, set 'format: DiskImageFormat.RAW'/);
    const ok = newStack();
    new VmImageImport(ok, 'Import', { diskImages: [DiskImage.fromAsset(blank, { format: DiskImageFormat.RAW })], licenseType: LicenseType.BYOL });
    Template.fromStack(ok).hasResourceProperties('Custom::VmImageImport', { DiskContainers: [Match.objectLike({ Format: 'RAW' })] });
  });
});
