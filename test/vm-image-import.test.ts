import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App, Duration, RemovalPolicy, Size, Stack, Tags } from 'aws-cdk-lib';
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

describe('VmImageImport resources', () => {
  test('creates a role, a bucket, a key, one custom resource and one provider', () => {
    const stack = newStack();
    bucketImport(stack);
    const t = Template.fromStack(stack);
    t.resourceCountIs('Custom::VmImageImport', 1);
    t.resourceCountIs('AWS::KMS::Key', 1);
    t.resourceCountIs('AWS::S3::Bucket', 1);
    t.resourceCountIs('AWS::StepFunctions::StateMachine', 1);
    // two handler functions and the provider framework's three
    t.resourceCountIs('AWS::Lambda::Function', 5);
  });

  test('two imports in a stack share one provider', () => {
    const stack = newStack();
    bucketImport(stack, 'A');
    bucketImport(stack, 'B');
    const t = Template.fromStack(stack);
    t.resourceCountIs('Custom::VmImageImport', 2);
    t.resourceCountIs('AWS::Lambda::Function', 5);
    t.resourceCountIs('AWS::StepFunctions::StateMachine', 1);
  });

  test('handler functions run on the newest Node.js runtime with the bundled handler', () => {
    const stack = newStack();
    bucketImport(stack);
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::Lambda::Function', { Handler: 'index.onEvent', Runtime: 'nodejs24.x', Timeout: 300 });
    t.hasResourceProperties('AWS::Lambda::Function', { Handler: 'index.isComplete', Runtime: 'nodejs24.x' });
  });

  test('the key rotates and the bucket is private, SSL-only, versioned and encrypted with it', () => {
    const stack = newStack();
    bucketImport(stack);
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
    t.hasResource('AWS::KMS::Key', { DeletionPolicy: 'Retain' });
    const keyId = Object.keys(t.findResources('AWS::KMS::Key'))[0];
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
      usageOperation: 'RunInstances:0002',
      licenseConfigurationArns: [LICENSE_ARN],
      tags: { team: 'infra' },
      bootMode: BootMode.UEFI,
      platform: Platform.WINDOWS,
      architecture: Architecture.X86_64,
      hypervisor: Hypervisor.XEN,
      removalPolicy: RemovalPolicy.DESTROY,
      timeout: Duration.minutes(40),
    });
    const t = Template.fromStack(stack);
    const keyId = stack.getLogicalId(key.node.defaultChild as kms.CfnKey);
    t.hasResourceProperties('Custom::VmImageImport', {
      DiskContainers: [{
        Format: 'VMDK',
        S3Bucket: 'my-images',
        S3Key: 'builds/web.vmdk',
      }],
      RoleName: { Ref: Match.stringLikeRegexp('ImportRole') },
      Description: 'web server',
      Encrypted: 'true',
      KmsKeyId: { 'Fn::GetAtt': [keyId, 'Arn'] },
      LicenseType: 'AWS',
      UsageOperation: 'RunInstances:0002',
      Platform: 'Windows',
      BootMode: 'uefi',
      Architecture: 'x86_64',
      Hypervisor: 'xen',
      ClientData: { Comment: 'built by CI', UploadStart: '2026-01-01T00:00:00.000Z', UploadEnd: '2026-01-01T00:10:00.000Z', UploadSize: '8' },
      LicenseConfigurationArns: [LICENSE_ARN],
      Tags: [{ Key: 'team', Value: 'infra' }],
      RemovalPolicy: 'destroy',
      WaitTimeoutSeconds: '2400',
    });
    // A given key is used as is: no key of the construct's own.
    t.resourceCountIs('AWS::KMS::Key', 1);
  });

  test('removal policy is RETAIN by default, and the CloudFormation resource itself is always deleted so the handler decides', () => {
    const stack = newStack();
    bucketImport(stack, 'Kept');
    bucketImport(stack, 'Destroyed', { removalPolicy: RemovalPolicy.DESTROY });
    const t = Template.fromStack(stack);
    const imports = t.findResources('Custom::VmImageImport');
    const policies = Object.entries(imports).map(([id, r]) => [id.replace(/[0-9A-F]{8}$/, ''), r.Properties.RemovalPolicy, r.DeletionPolicy]);
    expect(policies).toEqual(expect.arrayContaining([
      ['Kept', 'retain', 'Delete'],
      ['Destroyed', 'destroy', 'Delete'],
    ]));
  });

  test('tags from Tags.of(stack) and the stack\'s own tags reach the AMI and its snapshots', () => {
    const stack = new Stack(new App(), 'Test', { env: { account: '123456789012', region: 'us-east-1' }, tags: { owner: 'platform', app: 'overridden' } });
    bucketImport(stack, 'Import', { tags: { app: 'web' } });
    Tags.of(stack).add('cost-center', '42');
    Template.fromStack(stack).hasResourceProperties('Custom::VmImageImport', {
      Tags: [{ Key: 'app', Value: 'web' }, { Key: 'cost-center', Value: '42' }, { Key: 'owner', Value: 'platform' }],
    });
  });

  test('Tags.of() exclusions and removals apply to the AMI\'s tags too', () => {
    const stack = new Stack(new App(), 'Test', { env: { account: '123456789012', region: 'us-east-1' }, tags: { owner: 'platform' } });
    const imp = bucketImport(stack, 'Import', { tags: { app: 'web' } });
    Tags.of(stack).add('cost-center', '42', { excludeResourceTypes: ['Custom::VmImageImport'] });
    Tags.of(imp).remove('owner');
    Template.fromStack(stack).hasResourceProperties('Custom::VmImageImport', { Tags: [{ Key: 'app', Value: 'web' }] });
  });

  test('no tags at all sends no Tags property', () => {
    const stack = newStack();
    bucketImport(stack);
    Template.fromStack(stack).hasResourceProperties('Custom::VmImageImport', { Tags: Match.absent() });
  });

  test('the custom resource waits for the import role and its policy', () => {
    const stack = newStack();
    bucketImport(stack);
    const t = Template.fromStack(stack);
    const resource = Object.values(t.findResources('Custom::VmImageImport'))[0];
    expect(resource.DependsOn).toEqual(expect.arrayContaining([
      expect.stringMatching(/^ImportRoleDefaultPolicy/),
      expect.stringMatching(/^ImportRole[0-9A-F]{8}$/),
    ]));
  });

  test('encrypted: false with a given bucket creates no key and sends no KmsKeyId', () => {
    const stack = newStack();
    const bucket = new s3.Bucket(stack, 'Images');
    const imp = bucketImport(stack, 'Import', { bucket, encrypted: false });
    const t = Template.fromStack(stack);
    t.resourceCountIs('AWS::KMS::Key', 0);
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
    const importId = Object.keys(t.findResources('Custom::VmImageImport'))[0];
    t.hasResourceProperties('AWS::EC2::Instance', { ImageId: { 'Fn::GetAtt': [importId, 'ImageId'] } });
  });

  test('imageId, snapshotIds and importTaskId resolve to the custom resource', () => {
    const stack = newStack();
    const imp = bucketImport(stack);
    const id = stack.getLogicalId(imp.node.findChild('Resource').node.defaultChild as any);
    expect(stack.resolve(imp.imageId)).toEqual({ 'Fn::GetAtt': [id, 'ImageId'] });
    expect(stack.resolve(imp.importTaskId)).toEqual({ Ref: id });
    expect(stack.resolve(imp.snapshotIds)).toEqual({ 'Fn::Split': [',', { 'Fn::GetAtt': [id, 'SnapshotIds'] }] });
  });

  test('getImage reports Windows for a Windows import and Linux otherwise', () => {
    const stack = newStack();
    const win = bucketImport(stack, 'Win', { platform: Platform.WINDOWS });
    const lin = bucketImport(stack, 'Lin');
    expect(win.getImage(stack).osType).toBe(ec2.OperatingSystemType.WINDOWS);
    expect(lin.getImage(stack).osType).toBe(ec2.OperatingSystemType.LINUX);
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
    })).toThrow(/'format' is VHD but the file is a stream-optimized VMDK \(VMDK\)\. Set 'format' to DiskImageFormat\.VMDK/);
  });

  test('bytes of no known format need an explicit format', () => {
    const stack = newStack();
    const blank = path.join(dir, 'blank.bin');
    fs.writeFileSync(blank, Buffer.alloc(4096));
    expect(() => new VmImageImport(stack, 'Import', { diskImages: [DiskImage.fromAsset(blank)], licenseType: LicenseType.BYOL }))
      .toThrow(/is not a disk image format VM Import recognizes \(unrecognized\)\. If it is a raw disk, set 'format: DiskImageFormat.RAW'/);
    const ok = newStack();
    new VmImageImport(ok, 'Import', { diskImages: [DiskImage.fromAsset(blank, { format: DiskImageFormat.RAW })], licenseType: LicenseType.BYOL });
    Template.fromStack(ok).hasResourceProperties('Custom::VmImageImport', { DiskContainers: [Match.objectLike({ Format: 'RAW' })] });
  });
});
