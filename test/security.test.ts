import * as path from 'path';
import { App, Aspects, Duration, RemovalPolicy, Size, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { AwsSolutionsChecks, NagSuppressions } from 'cdk-nag';
import { BootMode, DiskImage, LicenseType, Platform, VmImageImport, VmImportRole } from '../src';

const EXAMPLE_VMDK = path.join(__dirname, '..', 'examples', 'images', 'web-server.vmdk');
const LICENSE_ARN = 'arn:aws:license-manager:us-east-1:123456789012:license-configuration:lic-0123456789abcdef0123456789abcdef';
const ENV = { account: '123456789012', region: 'us-east-1' };

/** A stack that uses every feature of the library. */
function everyFeatureStack(app: App): Stack {
  const stack = new Stack(app, 'Everything', { env: ENV });
  const logs = new s3.Bucket(stack, 'AccessLogs', { enforceSSL: true, encryption: s3.BucketEncryption.S3_MANAGED });
  NagSuppressions.addResourceSuppressions(logs, [{ id: 'AwsSolutions-S1', reason: 'This is the access log bucket of the test stack itself.' }]);
  const web = new VmImageImport(stack, 'Web', {
    diskImages: [DiskImage.fromAsset(EXAMPLE_VMDK)],
    platform: Platform.LINUX,
    bootMode: BootMode.LEGACY_BIOS,
    licenseType: LicenseType.BYOL,
    licenseConfigurationArns: [LICENSE_ARN],
    clientData: { comment: 'ci', uploadSize: Size.gibibytes(1) },
    tags: { app: 'web' },
    removalPolicy: RemovalPolicy.DESTROY,
    timeout: Duration.minutes(30),
    accessLogsBucket: logs,
    accessLogsPrefix: 'images/',
    diskImageExpiration: Duration.days(30),
  });
  new VmImageImport(stack, 'Db', {
    diskImages: [
      DiskImage.fromImportBucket('db-boot.vhdx', { deviceName: '/dev/sda1' }),
      DiskImage.fromBucket(web.bucket, 'db-data.raw', { deviceName: '/dev/sdb' }),
    ],
    bucket: web.bucket,
    encryptionKey: web.encryptionKey,
    role: new VmImportRole(stack, 'SharedRole'),
    usageOperation: 'RunInstances:0002',
    platform: Platform.WINDOWS,
  });
  new VmImageImport(stack, 'FromUrl', {
    diskImages: [DiskImage.fromUrl('s3://images-123456789012/legacy.ova')],
    licenseType: LicenseType.AWS,
  });
  return stack;
}

function nagFindings(stack: Stack) {
  const annotations = Annotations.fromStack(stack);
  const nag = Match.stringLikeRegexp('^AwsSolutions-');
  return [...annotations.findError('*', nag), ...annotations.findWarning('*', nag)]
    .map((m) => `${m.id}: ${String(m.entry.data).split(':')[0]}`);
}

describe('cdk-nag AwsSolutions', () => {
  test('a stack using every feature has no unsuppressed errors or warnings', () => {
    const app = new App();
    const stack = everyFeatureStack(app);
    Aspects.of(app).add(new AwsSolutionsChecks());
    app.synth();
    expect(nagFindings(stack)).toEqual([]);
  });

  test('the check sees a planted violation', () => {
    const app = new App();
    const stack = everyFeatureStack(app);
    new s3.Bucket(stack, 'Planted'); // no SSL enforcement, no access logs
    Aspects.of(app).add(new AwsSolutionsChecks());
    app.synth();
    expect(nagFindings(stack)).toEqual(expect.arrayContaining([
      '/Everything/Planted/Resource: AwsSolutions-S1',
      '/Everything/Planted/Resource: AwsSolutions-S10',
    ]));
  });

  test('every acceptance carries a specific reason and sits on the resource it concerns', () => {
    const app = new App();
    const stack = everyFeatureStack(app);
    const resources = Template.fromStack(stack).toJSON().Resources as Record<string, any>;
    const accepted = Object.entries(resources)
      .filter(([id, r]) => r.Metadata?.cdk_nag && !id.startsWith('AccessLogs')) // that one is the test's own
      .flatMap(([id, r]) => r.Metadata.cdk_nag.rules_to_suppress.map((rule: any) => [id, r.Type, rule.id, rule.reason]));
    for (const [, , , reason] of accepted) {
      expect(reason.length).toBeGreaterThan(40);
    }
    expect(accepted.map(([id, type, rule]) => `${type} ${rule} ${id.replace(/[0-9A-F]{8}$/, '')}`).sort()).toEqual([
      'AWS::IAM::Policy AwsSolutions-IAM5 CdkVmImportProviderFrameworkOnEventRoleDefaultPolicy',
      'AWS::IAM::Policy AwsSolutions-IAM5 CdkVmImportProviderFrameworkWaiterRoleDefaultPolicy',
      'AWS::IAM::Policy AwsSolutions-IAM5 CdkVmImportProviderHandlerRoleDefaultPolicy',
      'AWS::IAM::Policy AwsSolutions-IAM5 CdkVmImportProviderwaiterstatemachineRoleDefaultPolicy',
      'AWS::IAM::Policy AwsSolutions-IAM5 SharedRoleDefaultPolicy',
      'AWS::IAM::Policy AwsSolutions-IAM5 WebRoleDefaultPolicy',
      'AWS::IAM::Policy AwsSolutions-IAM5 FromUrlRoleDefaultPolicy',
      'AWS::Lambda::Function AwsSolutions-L1 CdkVmImportProviderframeworkisComplete',
      'AWS::Lambda::Function AwsSolutions-L1 CdkVmImportProviderframeworkonEvent',
      'AWS::Lambda::Function AwsSolutions-L1 CdkVmImportProviderframeworkonTimeout',
      'AWS::S3::Bucket AwsSolutions-S1 FromUrlBucket',
      'AWS::StepFunctions::StateMachine AwsSolutions-SF1 CdkVmImportProviderwaiterstatemachine',
      'AWS::StepFunctions::StateMachine AwsSolutions-SF2 CdkVmImportProviderwaiterstatemachine',
    ].sort());
  });
});

describe('handler role', () => {
  const statements = () => {
    const stack = new Stack(new App(), 'Test', { env: ENV });
    new VmImageImport(stack, 'Import', { diskImages: [DiskImage.fromImportBucket('a.vmdk')], licenseType: LicenseType.BYOL });
    const t = Template.fromStack(stack);
    const policy = Object.entries(t.findResources('AWS::IAM::Policy')).find(([id]) => id.startsWith('CdkVmImportProviderHandlerRoleDefaultPolicy'))!;
    return policy[1].Properties.PolicyDocument.Statement as any[];
  };

  test('only the EC2 actions the handler calls, destructive ones only on what this stack tagged', () => {
    const ec2 = statements().filter((s) => [s.Action].flat().some((a: string) => a.startsWith('ec2:')));
    const image = { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':ec2:', { Ref: 'AWS::Region' }, '::image/*']] };
    const snapshot = { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':ec2:', { Ref: 'AWS::Region' }, '::snapshot/*']] };
    const task = { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':ec2:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':import-image-task/*']] };
    expect(ec2).toEqual([
      { Sid: 'DescribeImports', Effect: 'Allow', Action: ['ec2:DescribeImportImageTasks', 'ec2:DescribeImages', 'ec2:DescribeSnapshots'], Resource: '*' },
      { Sid: 'StartImports', Effect: 'Allow', Action: 'ec2:ImportImage', Resource: '*' },
      { Sid: 'TagImportOutputs', Effect: 'Allow', Action: 'ec2:CreateTags', Resource: [image, snapshot, task] },
      {
        Sid: 'ManageThisStacksImports',
        Effect: 'Allow',
        Action: ['ec2:CancelImportTask', 'ec2:DeregisterImage', 'ec2:DeleteSnapshot', 'ec2:DeleteTags'],
        Resource: [image, snapshot, task],
        Condition: { StringEquals: { 'aws:ResourceTag/cdk-vm-import:stack-id': { Ref: 'AWS::StackId' } } },
      },
    ]);
  });

  test('iam:PassRole only on the import role', () => {
    const pass = statements().filter((s) => s.Action === 'iam:PassRole');
    expect(pass).toEqual([{ Effect: 'Allow', Action: 'iam:PassRole', Resource: { 'Fn::GetAtt': [expect.stringMatching(/^ImportRole/), 'Arn'] } }]);
  });

  test('no other statement uses Resource "*"', () => {
    const stars = statements().filter((s) => s.Resource === '*' || (Array.isArray(s.Resource) && s.Resource.includes('*')));
    expect(stars.map((s) => s.Sid)).toEqual(['DescribeImports', 'StartImports']);
  });
});

test('license configurations add License Manager actions to the import role, only when set', () => {
  const stack = new Stack(new App(), 'Test', { env: ENV });
  new VmImageImport(stack, 'Plain', { diskImages: [DiskImage.fromImportBucket('a.vmdk')], licenseType: LicenseType.BYOL });
  new VmImageImport(stack, 'Licensed', {
    diskImages: [DiskImage.fromImportBucket('a.vmdk')],
    licenseType: LicenseType.BYOL,
    licenseConfigurationArns: [LICENSE_ARN],
  });
  const policies = Template.fromStack(stack).findResources('AWS::IAM::Policy');
  const licenseStatements = (prefix: string) => Object.entries(policies)
    .filter(([id]) => id.startsWith(prefix))
    .flatMap(([, p]) => p.Properties.PolicyDocument.Statement)
    .filter((s: any) => JSON.stringify(s.Action).includes('license-manager'));
  expect(licenseStatements('PlainRole')).toEqual([]);
  expect(licenseStatements('LicensedRole')).toEqual([
    { Effect: 'Allow', Action: ['license-manager:GetLicenseConfiguration', 'license-manager:UpdateLicenseSpecificationsForResource'], Resource: LICENSE_ARN },
    { Effect: 'Allow', Action: 'license-manager:ListLicenseSpecificationsForResource', Resource: '*' },
  ]);
});

describe('resources from elsewhere', () => {
  const newStack = () => new Stack(new App(), 'Test', { env: ENV });
  const disks = [DiskImage.fromImportBucket('a.vmdk')];

  test('a role of another account is an error', () => {
    const stack = newStack();
    const role = iam.Role.fromRoleArn(stack, 'R', 'arn:aws:iam::999999999999:role/import');
    expect(() => new VmImageImport(stack, 'I', { diskImages: disks, role, licenseType: LicenseType.BYOL }))
      .toThrow("'role' belongs to account 999999999999 but the stack deploys to 123456789012: VM Import assumes a service role of the importing account.");
  });

  test('a bucket of another Region is an error', () => {
    const stack = newStack();
    const bucket = s3.Bucket.fromBucketAttributes(stack, 'B', { bucketName: 'images', region: 'eu-west-1' });
    expect(() => new VmImageImport(stack, 'I', { diskImages: disks, bucket, licenseType: LicenseType.BYOL }))
      .toThrow("'bucket' is in Region eu-west-1 but the stack deploys to us-east-1");
  });

  test('a DiskImage.fromBucket bucket of another Region is an error', () => {
    const stack = newStack();
    const bucket = s3.Bucket.fromBucketAttributes(stack, 'B', { bucketName: 'images', region: 'eu-west-1' });
    expect(() => new VmImageImport(stack, 'I', { diskImages: [DiskImage.fromBucket(bucket, 'a.vmdk')], licenseType: LicenseType.BYOL }))
      .toThrow("'DiskImage.fromBucket bucket' is in Region eu-west-1 but the stack deploys to us-east-1");
  });

  test('a key of another Region is an error; of another account, a warning', () => {
    const stack = newStack();
    const far = kms.Key.fromKeyArn(stack, 'Far', 'arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555');
    expect(() => new VmImageImport(stack, 'I', { diskImages: disks, encryptionKey: far, licenseType: LicenseType.BYOL }))
      .toThrow("'encryptionKey' is in Region eu-west-1 but the stack deploys to us-east-1");
    const foreign = kms.Key.fromKeyArn(stack, 'Foreign', 'arn:aws:kms:us-east-1:999999999999:key/11111111-2222-3333-4444-555555555555');
    new VmImageImport(stack, 'J', { diskImages: disks, encryptionKey: foreign, licenseType: LicenseType.BYOL });
    Annotations.fromStack(stack).hasWarning('/Test/J', Match.stringLikeRegexp("'encryptionKey' belongs to account 999999999999"));
  });

  test('a key imported by reference gives a warning about its key policy', () => {
    const stack = newStack();
    const key = kms.Key.fromKeyArn(stack, 'K', 'arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555');
    new VmImageImport(stack, 'I', { diskImages: disks, encryptionKey: key, licenseType: LicenseType.BYOL });
    Annotations.fromStack(stack).hasWarning('/Test/I', Match.stringLikeRegexp("'encryptionKey' is imported by reference, so this stack cannot change its key policy"));
  });

  test.each(['vmimport', 'VMImport', 'VmImport'])('the account-wide vmimport role passed in as %s gives a warning (IAM ignores case)', (name) => {
    const stack = newStack();
    const role = iam.Role.fromRoleName(stack, 'R', name);
    new VmImageImport(stack, 'I', { diskImages: disks, role, licenseType: LicenseType.BYOL });
    Annotations.fromStack(stack).hasWarning('/Test/I', Match.stringLikeRegexp(`'role' is "${name}", the account-wide 'vmimport' role`));
  });

  test('a role of another name gives no such warning', () => {
    const stack = newStack();
    const role = iam.Role.fromRoleName(stack, 'R', 'vmimport-web');
    new VmImageImport(stack, 'I', { diskImages: disks, role, licenseType: LicenseType.BYOL });
    expect(Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('account-wide'))).toHaveLength(0);
  });

  test.each(['vmimport', 'VMImport', 'VmImport'])('a VmImportRole named %s is an error (IAM ignores case)', (name) => {
    const stack = newStack();
    expect(() => new VmImportRole(stack, 'R', { roleName: name }))
      .toThrow(`VmImportRole 'roleName' is '${name}', the account-wide role the VM Import guide has users create by hand (IAM compares role names ignoring case)`);
  });

  test('a VmImportRole of another name is fine', () => {
    const stack = newStack();
    expect(() => new VmImportRole(stack, 'R', { roleName: 'vmimport-web' })).not.toThrow();
  });
});

test('diskImageExpiration expires current and old versions; access logs go where asked', () => {
  const stack = new Stack(new App(), 'Test', { env: ENV });
  const logs = new s3.Bucket(stack, 'Logs');
  new VmImageImport(stack, 'I', {
    diskImages: [DiskImage.fromImportBucket('a.vmdk')],
    licenseType: LicenseType.BYOL,
    diskImageExpiration: Duration.days(14),
    accessLogsBucket: logs,
    accessLogsPrefix: 'vm/',
  });
  Template.fromStack(stack).hasResourceProperties('AWS::S3::Bucket', {
    LifecycleConfiguration: {
      Rules: [{ AbortIncompleteMultipartUpload: { DaysAfterInitiation: 7 }, ExpirationInDays: 14, NoncurrentVersionExpiration: { NoncurrentDays: 14 }, Status: 'Enabled' }],
    },
    LoggingConfiguration: { DestinationBucketName: { Ref: Match.stringLikeRegexp('^Logs') }, LogFilePrefix: 'vm/' },
  });
});
