import { App, Duration, RemovalPolicy, Size, Stack, Token } from 'aws-cdk-lib';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
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
} from '../src';

const LICENSE_ARN = 'arn:aws:license-manager:us-east-1:123456789012:license-configuration:lic-0123456789abcdef0123456789abcdef';

function newStack(): Stack {
  return new Stack(new App(), 'Test', { env: { account: '123456789012', region: 'us-east-1' } });
}

function bucket(stack: Stack): s3.IBucket {
  return (stack.node.tryFindChild('Src') as s3.IBucket | undefined) ?? s3.Bucket.fromBucketName(stack, 'Src', 'my-images');
}

/** Builds an import with one good disk unless the props say otherwise. */
function build(props: Partial<VmImageImportProps> | ((stack: Stack) => Partial<VmImageImportProps>)): () => VmImageImport {
  const stack = newStack();
  const resolved = typeof props === 'function' ? props(stack) : props;
  return () => new VmImageImport(stack, 'Import', {
    diskImages: [DiskImage.fromBucket(bucket(stack), 'boot.vmdk')],
    licenseType: LicenseType.BYOL,
    ...resolved,
  });
}

const many = (n: number) => (stack: Stack) => ({
  diskImages: Array.from({ length: n }, (_, i) => DiskImage.fromBucket(bucket(stack), `disk-${i}.vmdk`)),
});

// Each row is one distinct bad input and the message that must name it.
const BAD_INPUTS: Array<[string, Partial<VmImageImportProps> | ((stack: Stack) => Partial<VmImageImportProps>), string | RegExp]> = [
  ['no disks', { diskImages: [] }, "'diskImages' is empty"],
  ['22 disks', many(22), "'diskImages' has 22 disks; VM Import takes at most 21 volumes per image."],
  ['arm64', { architecture: 'arm64' as Architecture }, /'architecture' must be one of "i386", "x86_64"; got "arm64"\. ImportImage does not import arm64 images: import the disk with ImportSnapshot and register it with RegisterImage/],
  ['an unknown architecture', { architecture: 'sparc' as Architecture }, /'architecture' must be one of "i386", "x86_64"; got "sparc"\.$/],
  ['uefi-preferred', { bootMode: 'uefi-preferred' as BootMode }, /'bootMode' must be one of "legacy-bios", "uefi"; got "uefi-preferred"\. 'uefi-preferred' is not supported for imports/],
  ['an unknown boot mode', { bootMode: 'bios' as BootMode }, "'bootMode' must be one of \"legacy-bios\", \"uefi\"; got \"bios\"."],
  ['hypervisor kvm', { hypervisor: 'kvm' as Hypervisor }, "'hypervisor' must be one of \"xen\"; got \"kvm\"."],
  ['license type MARKETPLACE', { licenseType: 'MARKETPLACE' as LicenseType }, "'licenseType' must be one of \"AWS\", \"BYOL\"; got \"MARKETPLACE\"."],
  ['platform macOS', { platform: 'macOS' as Platform }, "'platform' must be one of \"Linux\", \"Windows\"; got \"macOS\"."],
  ['a key without encryption', (stack) => ({ encrypted: false, encryptionKey: new kms.Key(stack, 'K') }), "'encryptionKey' is set but 'encrypted' is false"],
  ['removal policy SNAPSHOT', { removalPolicy: RemovalPolicy.SNAPSHOT }, "'removalPolicy' must be RemovalPolicy.RETAIN or RemovalPolicy.DESTROY; got \"snapshot\"."],
  ['a usage operation that is not one', { licenseType: undefined, usageOperation: 'Windows' }, "'usageOperation' \"Windows\" is not a usage operation such as 'RunInstances' or 'RunInstances:0002'."],
  ['both a license type and a usage operation', { licenseType: LicenseType.BYOL, usageOperation: 'RunInstances:0002' },
    "'licenseType' (\"BYOL\") and 'usageOperation' (\"RunInstances:0002\") are both set, and VM Import returns an error when both are: set only one"],
  ['the AWS license type for Linux', { licenseType: LicenseType.AWS, platform: Platform.LINUX },
    "'licenseType' is \"AWS\" but 'platform' is \"Linux\": VM Import supports only BYOL for Linux, and the import would fail late. Set 'licenseType: LicenseType.BYOL'."],
  ['a 128-character tag key', { tags: { ['k'.repeat(128)]: 'v' } }, /'tags' key "k{128}" has 128 characters; a tag key has 1 to 127\./],
  ['an empty tag key', { tags: { '': 'v' } }, "'tags' key \"\" has 0 characters; a tag key has 1 to 127."],
  ['a tag key starting with aws:', { tags: { 'aws:owner': 'me' } }, "'tags' key \"aws:owner\" starts with 'aws:', which AWS reserves"],
  ['a tag key starting with AWS: in capitals', { tags: { 'AWS:owner': 'me' } }, "'tags' key \"AWS:owner\" starts with 'aws:'"],
  ['a tag key in the library\'s namespace', { tags: { 'cdk-vm-import:stack-id': 'x' } }, "'tags' key \"cdk-vm-import:stack-id\" starts with 'cdk-vm-import:'"],
  ['a 257-character tag value', { tags: { k: 'v'.repeat(257) } }, "'tags' value of \"k\" has 257 characters; a tag value has at most 256."],
  ['upload end before start', { clientData: { uploadStart: new Date('2026-01-02T00:00:00Z'), uploadEnd: new Date('2026-01-01T00:00:00Z') } },
    "'clientData.uploadEnd' (2026-01-01T00:00:00.000Z) is before 'clientData.uploadStart' (2026-01-02T00:00:00.000Z)"],
  ['an invalid upload date', { clientData: { uploadStart: new Date('not a date') } }, "'clientData.uploadStart' is not a valid date."],
  ['a zero upload size', { clientData: { uploadSize: Size.bytes(0) } }, "'clientData.uploadSize' must be larger than zero; got 0 bytes."],
  ['a license ARN of another kind', { licenseConfigurationArns: ['arn:aws:iam::123456789012:role/x'] }, "'licenseConfigurationArns' has \"arn:aws:iam::123456789012:role/x\", which is not a License Manager license configuration ARN"],
  ['a license configuration ID instead of an ARN', { licenseConfigurationArns: ['lic-0123456789abcdef0123456789abcdef'] }, "'licenseConfigurationArns' has \"lic-0123456789abcdef0123456789abcdef\""],
  ['a timeout over 55 minutes', { timeout: Duration.hours(2) }, "'timeout' is 2 hours; it must be from 30 seconds to 55 minutes, because CloudFormation waits at most one hour for a custom resource."],
  ['a timeout under one poll', { timeout: Duration.seconds(5) }, "'timeout' is 5 seconds; it must be from 30 seconds to 55 minutes"],
  ['an ftp URL', { diskImages: [DiskImage.fromUrl('ftp://example.com/disk.vmdk')] }, "'diskImages[0]' URL \"ftp://example.com/disk.vmdk\" must be an https:// URL or an s3://bucket/key URL."],
  ['an http URL', { diskImages: [DiskImage.fromUrl('http://example.com/disk.vmdk')] }, "'diskImages[0]' URL \"http://example.com/disk.vmdk\" must be an https:// URL"],
  ['an s3 URL without a key', { diskImages: [DiskImage.fromUrl('s3://bucket-only/', { format: DiskImageFormat.RAW })] }, "'diskImages[0]' URL \"s3://bucket-only/\" must be an https:// URL or an s3://bucket/key URL."],
  ['a bucket name with capitals in an s3 URL', { diskImages: [DiskImage.fromUrl('s3://My_Bucket/disk.vmdk')] },
    "'diskImages[0]' bucket name \"My_Bucket\" is not a valid S3 bucket name (3 to 63 lower-case letters, digits, dots and hyphens)."],
  ['a bucket name like an IP address', { diskImages: [DiskImage.fromUrl('s3://192.168.0.1/disk.vmdk')] }, "'diskImages[0]' bucket name \"192.168.0.1\" is not a valid S3 bucket name"],
  ['an S3 key with a leading slash', (stack) => ({ diskImages: [DiskImage.fromBucket(bucket(stack), '/images/a.vmdk')] }), "'diskImages[0]' S3 key \"/images/a.vmdk\" is not a valid object key (1 to 1024 bytes, no leading '/')."],
  ['an S3 key over 1024 bytes', (stack) => ({ diskImages: [DiskImage.fromBucket(bucket(stack), `${'a'.repeat(1025)}.vmdk`)] }), /'diskImages\[0\]' S3 key "a+\.vmdk" is not a valid object key/],
  ['a key whose extension tells no format', (stack) => ({ diskImages: [DiskImage.fromBucket(bucket(stack), 'images/disk.qcow2')] }),
    "Cannot tell the format of the S3 key 'images/disk.qcow2' from its name: set 'format' to one of OVA, VMDK, VHD, VHDX, RAW"],
  ['a malformed snapshot ID', { diskImages: [DiskImage.fromSnapshot('snapshot-1')] }, "'diskImages[0]' snapshot ID \"snapshot-1\" is not an EBS snapshot ID such as 'snap-0123456789abcdef0'."],
  ['a malformed device name', (stack) => ({ diskImages: [DiskImage.fromBucket(bucket(stack), 'a.vmdk', { deviceName: 'sda1' })] }), "'diskImages[0]' deviceName \"sda1\" is not a device name such as '/dev/sda1' or '/dev/xvdb'."],
  ['an unknown disk format', (stack) => ({ diskImages: [DiskImage.fromBucket(bucket(stack), 'a', { format: 'QCOW2' as DiskImageFormat })] }), "'diskImages[0].format' must be one of \"OVA\", \"VMDK\", \"VHD\", \"VHDX\", \"RAW\"; got \"QCOW2\"."],
  ['two disks on one device', (stack) => ({
    diskImages: [
      DiskImage.fromBucket(bucket(stack), 'a.vmdk', { deviceName: '/dev/sda1' }),
      DiskImage.fromBucket(bucket(stack), 'b.vmdk', { deviceName: '/dev/sda1' }),
    ],
  }), "'diskImages' maps two disks to the device \"/dev/sda1\"; give each disk its own deviceName."],
  ['an OVA with another disk', (stack) => ({
    diskImages: [DiskImage.fromBucket(bucket(stack), 'appliance.ova'), DiskImage.fromBucket(bucket(stack), 'data.vmdk')],
  }), "'diskImages' mixes an OVA with 1 other disk(s): an OVA carries all of its disks, so it must be the only disk of its import."],
  ['UEFI from a snapshot without a platform', { diskImages: [DiskImage.fromSnapshot('snap-0123456789abcdef0')], bootMode: BootMode.UEFI },
    "'platform' is required for a UEFI image imported from an EBS snapshot: set 'platform' to Platform.LINUX or Platform.WINDOWS."],
];

describe('bad input is rejected at synth time with the prop, the value and the fix', () => {
  test.each(BAD_INPUTS)('%s', (_name, props, message) => {
    expect(build(props)).toThrow(message);
  });

  test('covers at least 41 distinct bad inputs', () => {
    expect(new Set(BAD_INPUTS.map(([name]) => name)).size).toBeGreaterThanOrEqual(41);
  });
});

describe('good input passes', () => {
  test.each<[string, Partial<VmImageImportProps> | ((stack: Stack) => Partial<VmImageImportProps>)]>([
    ['every enum value', { architecture: Architecture.I386, bootMode: BootMode.UEFI, platform: Platform.WINDOWS, hypervisor: Hypervisor.XEN, licenseType: LicenseType.AWS }],
    ['21 disks', many(21)],
    ['a 127-character tag key and a 256-character value', { tags: { ['k'.repeat(127)]: 'v'.repeat(256) } }],
    ['an upload that starts and ends at once', { clientData: { uploadStart: new Date(0), uploadEnd: new Date(0), uploadSize: Size.mebibytes(1) } }],
    ['a 55-minute timeout', { timeout: Duration.minutes(55) }],
    ['an https URL with a query', { diskImages: [DiskImage.fromUrl('https://example.com/disk.vhd?X-Amz-Signature=x')] }],
    ['a UEFI snapshot with a platform', { diskImages: [DiskImage.fromSnapshot('snap-01234567')], bootMode: BootMode.UEFI, platform: Platform.LINUX }],
    ['an xvd device name', (stack) => ({ diskImages: [DiskImage.fromBucket(bucket(stack), 'a.vmdk', { deviceName: '/dev/xvdba' })] })],
    ['a license configuration ARN', { licenseConfigurationArns: [LICENSE_ARN] }],
    ['a usage operation alone', { licenseType: undefined, usageOperation: 'RunInstances:0002', platform: Platform.WINDOWS }],
    ['BYOL for Linux', { licenseType: LicenseType.BYOL, platform: Platform.LINUX }],
    ['the AWS license type for Windows', { licenseType: LicenseType.AWS, platform: Platform.WINDOWS }],
  ])('%s', (_name, props) => {
    expect(build(props)).not.toThrow();
  });

  test('unresolved tokens are not checked at synth time', () => {
    const stack = newStack();
    const token = (name: string) => Token.asString({ Ref: name });
    expect(() => new VmImageImport(stack, 'Import', {
      diskImages: [
        DiskImage.fromBucket(bucket(stack), token('Key'), { format: DiskImageFormat.VMDK, deviceName: token('Device') }),
        DiskImage.fromUrl(token('Url'), { format: DiskImageFormat.RAW }),
      ],
      licenseType: LicenseType.BYOL,
      usageOperation: token('Usage'),
      tags: { team: token('Team') },
      licenseConfigurationArns: [token('License')],
      timeout: Duration.seconds(Token.asNumber({ Ref: 'Timeout' })),
    })).not.toThrow();
  });

  test('an unresolved key with no format asks for the format', () => {
    const stack = newStack();
    expect(() => new VmImageImport(stack, 'Import', {
      diskImages: [DiskImage.fromBucket(bucket(stack), Token.asString({ Ref: 'Key' }))],
      licenseType: LicenseType.BYOL,
    })).toThrow(/Cannot tell the format of the S3 key '\$\{Token\[.*\]\}' from its name: set 'format'/);
  });
});

test('neither license type nor usage operation is a warning, not an error', () => {
  const stack = newStack();
  new VmImageImport(stack, 'Import', { diskImages: [DiskImage.fromBucket(bucket(stack), 'a.vmdk')] });
  Annotations.fromStack(stack).hasWarning('/Test/Import', "Neither 'licenseType' nor 'usageOperation' is set: AWS recommends setting one, or VM Import guesses the license from the operating system. [ack: cdk-vm-import:noLicense]");
  expect(Annotations.fromStack(stack).findError('*', Match.anyValue())).toEqual([]);
});
