import { App, Duration, RemovalPolicy, Size, Stack, Tags, Token } from 'aws-cdk-lib';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import {
  Architecture,
  BootMode,
  DiskImage,
  DiskImageConfig,
  DiskImageFormat,
  Hypervisor,
  ImportMethod,
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
  return () => new VmImageImport(stack, 'Import', {
    diskImages: [DiskImage.fromBucket(bucket(stack), 'boot.vmdk')],
    licenseType: LicenseType.BYOL,
    ...(typeof props === 'function' ? props(stack) : props),
  });
}

/** A value of the wrong type, as a JavaScript or Python caller may pass it. */
const untyped = (value: unknown): any => value;

const many = (n: number) => (stack: Stack) => ({
  diskImages: Array.from({ length: n }, (_, i) => DiskImage.fromBucket(bucket(stack), `disk-${i}.vmdk`)),
});

// Each row is one distinct bad input and the message that must name it.
const BAD_INPUTS: Array<[string, Partial<VmImageImportProps> | ((stack: Stack) => Partial<VmImageImportProps>), string | RegExp]> = [
  ['no disks', { diskImages: [] }, "'diskImages' is empty"],
  ['22 disks', many(22), "'diskImages' has 22 disks; VM Import takes at most 21 volumes per image."],
  ['arm64 with ImportImage', { architecture: Architecture.ARM64 }, "'architecture' is \"arm64\", which ImportImage does not import: set 'importMethod: ImportMethod.SNAPSHOTS' (ImportSnapshot for each disk, then RegisterImage), with 'bootMode: BootMode.UEFI' and an 'imageName'."],
  ['an unknown architecture', { architecture: 'sparc' as Architecture }, /'architecture' must be one of "i386", "x86_64", "arm64"; got "sparc"\.$/],
  ['an unknown import method', { importMethod: 'snapshot' as ImportMethod }, "'importMethod' must be one of \"image\", \"snapshots\"; got \"snapshot\"."],
  ['the snapshot route without a name', { importMethod: ImportMethod.SNAPSHOTS }, "'importMethod' is ImportMethod.SNAPSHOTS but 'imageName' is not set: RegisterImage names the AMI as it makes it. Set 'imageName'."],
  ['arm64 without UEFI', { importMethod: ImportMethod.SNAPSHOTS, imageName: 'arm-image', architecture: Architecture.ARM64 },
    "'architecture' is ARM64 with 'bootMode' unset: arm64 instances boot only with UEFI. Set 'bootMode: BootMode.UEFI'."],
  ['arm64 with legacy BIOS', { importMethod: ImportMethod.SNAPSHOTS, imageName: 'arm-image', architecture: Architecture.ARM64, bootMode: BootMode.LEGACY_BIOS },
    "'architecture' is ARM64 with 'bootMode' \"legacy-bios\": arm64 instances boot only with UEFI."],
  ['i386 on the snapshot route', { importMethod: ImportMethod.SNAPSHOTS, imageName: 'web', architecture: Architecture.I386 }, "'architecture' is I386 with ImportMethod.SNAPSHOTS"],
  ['Windows on the snapshot route', { importMethod: ImportMethod.SNAPSHOTS, imageName: 'win', platform: Platform.WINDOWS, licenseType: undefined },
    "'platform' is WINDOWS with ImportMethod.SNAPSHOTS: RegisterImage registers no license or billing code, so a licensed system would lose it: import it with 'importMethod: ImportMethod.IMAGE'."],
  ['an AWS license on the snapshot route', { importMethod: ImportMethod.SNAPSHOTS, imageName: 'web', licenseType: LicenseType.AWS }, "'licenseType' is AWS with ImportMethod.SNAPSHOTS: RegisterImage registers no license"],
  ['a usage operation on the snapshot route', { importMethod: ImportMethod.SNAPSHOTS, imageName: 'web', licenseType: undefined, usageOperation: 'RunInstances:0010' },
    "'usageOperation' is set with ImportMethod.SNAPSHOTS, which only ImportImage takes: RegisterImage registers no license"],
  ['a hypervisor on the snapshot route', { importMethod: ImportMethod.SNAPSHOTS, imageName: 'web', hypervisor: Hypervisor.XEN }, "'hypervisor' is set with ImportMethod.SNAPSHOTS, which only ImportImage takes: remove it"],
  ['TPM without UEFI', { importMethod: ImportMethod.SNAPSHOTS, imageName: 'web', tpmSupport: true }, "'tpmSupport' needs 'bootMode: BootMode.UEFI'"],
  ['TPM with ImportImage', { tpmSupport: true }, "'tpmSupport' is set but 'importMethod' is not ImportMethod.SNAPSHOTS: only RegisterImage takes it."],
  ['UEFI data with ImportImage', { uefiData: 'QUJD' }, "'uefiData' is set but 'importMethod' is not ImportMethod.SNAPSHOTS"],
  ['UEFI data that is not base64', { uefiData: 'not base64!', importMethod: ImportMethod.SNAPSHOTS, imageName: 'web-1', bootMode: BootMode.UEFI },
    "'uefiData' \"not base64!\" is not base64: RegisterImage takes the UEFI variable store base64-encoded"],
  ['an OVA on the snapshot route', (stack) => ({ importMethod: ImportMethod.SNAPSHOTS, imageName: 'web', diskImages: [DiskImage.fromBucket(bucket(stack), 'vm.ova')] }),
    "'diskImages[0]' is an OVA, which ImportSnapshot does not take (VHD, VMDK and RAW only): take its disks out (tar -xf image.ova) and give each .vmdk as a disk."],
  ['a VHDX on the snapshot route', (stack) => ({ importMethod: ImportMethod.SNAPSHOTS, imageName: 'web', diskImages: [DiskImage.fromBucket(bucket(stack), 'boot.vmdk'), DiskImage.fromBucket(bucket(stack), 'data.vhdx')] }),
    "'diskImages[1]' is a VHDX, which ImportSnapshot does not take (VHD, VMDK and RAW only): convert it with 'qemu-img convert -f vhdx -O vmdk -o subformat=streamOptimized disk.vhdx disk.vmdk'"],
  ['a device taken by place on the snapshot route', (stack) => ({
    importMethod: ImportMethod.SNAPSHOTS,
    imageName: 'web',
    diskImages: [DiskImage.fromBucket(bucket(stack), 'boot.raw', { deviceName: '/dev/xvdb' }), DiskImage.fromBucket(bucket(stack), 'data.raw')],
  }), "'diskImages[1]' would be registered as \"/dev/xvdb\", the device of 'diskImages[0]': unnamed disks take /dev/xvda, /dev/xvdb, … by their place. Give each disk its own deviceName."],
  ['an EBS snapshot on the snapshot route', { importMethod: ImportMethod.SNAPSHOTS, imageName: 'web', diskImages: [DiskImage.fromSnapshot('snap-0123456789abcdef0')] },
    "'diskImages[0]' is an EBS snapshot, which ImportSnapshot cannot take"],
  ['TPM support that is not a boolean (JavaScript)', { tpmSupport: untyped('yes') }, "'tpmSupport' must be true or false; got"],
  ['uefi-preferred', { bootMode: 'uefi-preferred' as BootMode }, /'bootMode' must be one of "legacy-bios", "uefi"; got "uefi-preferred"\. 'uefi-preferred' is not supported for imports/],
  ['an unknown boot mode', { bootMode: 'bios' as BootMode }, "'bootMode' must be one of \"legacy-bios\", \"uefi\"; got \"bios\"."],
  ['hypervisor kvm', { hypervisor: 'kvm' as Hypervisor }, "'hypervisor' must be one of \"xen\"; got \"kvm\"."],
  ['license type MARKETPLACE', { licenseType: 'MARKETPLACE' as LicenseType }, "'licenseType' must be one of \"AWS\", \"BYOL\"; got \"MARKETPLACE\"."],
  ['platform macOS', { platform: 'macOS' as Platform }, "'platform' must be one of \"Linux\", \"Windows\"; got \"macOS\"."],
  ['an AMI name of two characters', { imageName: 'ab' }, "'imageName' \"ab\" has 2 characters; an AMI name has 3 to 128 letters, digits, spaces and ( ) [ ] . / - ' @ _ (such as 'web-server-2026.12.01')."],
  ['an AMI name of 129 characters', { imageName: 'a'.repeat(129) }, /^'imageName' "a{129}" has 129 characters; an AMI name has 3 to 128/],
  ['an AMI name with a colon and a comma', { imageName: 'web:1,2' }, "'imageName' \"web:1,2\" holds \":\", \",\"; an AMI name has 3 to 128 letters"],
  ['an image description without a name', { imageDescription: 'web' }, "'imageDescription' is set without 'imageName': it describes the named copy. Set 'imageName', or use 'description'."],
  ['an image description of 256 characters', { imageName: 'web', imageDescription: 'd'.repeat(256) }, "'imageDescription' has 256 characters; an AMI description has at most 255."],
  ['an AMI name that is a number (JavaScript)', { imageName: untyped(7) }, "'imageName' must be a string; got"],
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
  ['a timeout over 12 hours', { timeout: Duration.hours(13) },
    "'timeout' is 13 hours; it must be whole seconds from one poll interval (30 seconds) to 12 hours, because a CloudFormation WaitCondition waits at most 12 hours."],
  ['a timeout under the default 30-second poll', { timeout: Duration.seconds(10) },
    "'timeout' is 10 seconds; it must be whole seconds from one poll interval (30 seconds) to 12 hours"],
  ['a timeout under a given poll interval', { timeout: Duration.minutes(1), pollInterval: Duration.minutes(2) },
    "'timeout' is 1 minute; it must be whole seconds from one poll interval (2 minutes) to 12 hours"],
  ['a timeout of a fraction of a second', { timeout: Duration.millis(60_500) }, "'timeout' is 1 minute 500 millis; it must be whole seconds"],
  ['a poll interval of a fraction of a second', { pollInterval: Duration.millis(1500) },
    "'pollInterval' is 1 second 500 millis; it must be whole seconds from 5 seconds to 1 hour."],
  // Whole seconds, above the minimum: only the whole-seconds rule refuses it.
  ['a poll interval of 7.5 seconds', { pollInterval: Duration.millis(7500) }, /^'pollInterval' is 7 seconds 500 millis; it must be whole seconds/],
  ['a poll interval under 5 seconds', { pollInterval: Duration.seconds(4) }, "'pollInterval' is 4 seconds; it must be whole seconds from 5 seconds to 1 hour."],
  ['a poll interval over an hour', { pollInterval: Duration.hours(2) }, "'pollInterval' is 2 hours; it must be whole seconds from 5 seconds to 1 hour."],
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
  ['an s3 URL whose bucket and key one token hides', { diskImages: [DiskImage.fromUrl(`s3://${Token.asString({ Ref: 'Url' })}`, { format: DiskImageFormat.RAW })] },
    /^DiskImage\.fromUrl\(".*"\): the bucket and the key of this s3:\/\/ URL cannot be told apart at synth, so the import role cannot be granted read access to the object\. Use DiskImage\.fromBucket\(bucket, key\)/],
  ['a malformed snapshot ID', { diskImages: [DiskImage.fromSnapshot('snapshot-1')] }, "'diskImages[0]' snapshot ID \"snapshot-1\" is not an EBS snapshot ID such as 'snap-0123456789abcdef0'."],
  ['a malformed device name', (stack) => ({ diskImages: [DiskImage.fromBucket(bucket(stack), 'a.vmdk', { deviceName: 'sda1' })] }), "'diskImages[0]' deviceName \"sda1\" is not a device name such as '/dev/sda1' or '/dev/xvdb'."],
  ['an unknown disk format', (stack) => ({ diskImages: [DiskImage.fromBucket(bucket(stack), 'a', { format: 'QCOW2' as DiskImageFormat })] }), "DiskImage.fromBucket 'format' must be one of \"OVA\", \"VMDK\", \"VHD\", \"VHDX\", \"RAW\"; got \"QCOW2\"."],
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
  // What JavaScript and Python callers can pass that TypeScript would not compile.
  ['no diskImages', { diskImages: untyped(undefined) },
    "'diskImages' is required: give the disks to import, boot disk first, such as [DiskImage.fromAsset('disk.vmdk')]."],
  ['one DiskImage instead of a list', (stack) => ({ diskImages: untyped(DiskImage.fromBucket(bucket(stack), 'a.vmdk')) }),
    "'diskImages' must be a list of DiskImage; got one DiskImage. Put it in a list."],
  ['a path string instead of a list', { diskImages: untyped('images/disk.vmdk') },
    "'diskImages' must be a list of DiskImage; got the string \"images/disk.vmdk\". For a local file, use [DiskImage.fromAsset(\"images/disk.vmdk\")]."],
  ['a path string where a DiskImage belongs', { diskImages: untyped(['images/disk.vmdk']) },
    "'diskImages[0]' must be a DiskImage; got the string \"images/disk.vmdk\". For a local file, use DiskImage.fromAsset(\"images/disk.vmdk\"); " +
    'for an S3 object, DiskImage.fromBucket(bucket, key) or DiskImage.fromUrl(url).'],
  ['a plain object where a DiskImage belongs', (stack) => ({ diskImages: [DiskImage.fromBucket(bucket(stack), 'a.vmdk'), untyped({ file: 'b.vmdk' })] }),
    "'diskImages[1]' must be a DiskImage; got a plain object. Create it with DiskImage.fromAsset, fromBucket, fromImportBucket, fromUrl or fromSnapshot."],
  ['a number of seconds as timeout', { timeout: untyped(1800) }, "'timeout' must be a Duration, such as Duration.hours(6); got the number 1800."],
  ['a number of seconds as pollInterval', { pollInterval: untyped(30) }, "'pollInterval' must be a Duration, such as Duration.seconds(30); got the number 30."],
  ['12 hours polled every 5 seconds (too many history events for one execution)', { timeout: Duration.hours(12), pollInterval: Duration.seconds(5) },
    "'timeout' (12 hours) polled every 5 seconds on the ImportImage route can write up to 79,946 events to the import's Step Functions execution " +
    'history (8,642 polls of 9 events, plus the start, its quota waits and every retry); Step Functions stops an execution at 25,000 events without ' +
    "signalling the stack, and the engine keeps to 20,000. Set 'pollInterval' to at least Duration.seconds(22), or 'timeout' to at most Duration.minutes(174)."],
  ['the default 6 hours polled every 5 seconds', { pollInterval: Duration.seconds(5) },
    "the default 'timeout' (6 hours) polled every 5 seconds on the ImportImage route can write up to 40,418 events to the import's Step Functions " +
    'execution history (4,322 polls of 9 events, plus the start, its quota waits and every retry); Step Functions stops an execution at 25,000 events ' +
    "without signalling the stack, and the engine keeps to 20,000. Set 'pollInterval' to at least Duration.seconds(11), or 'timeout' to at most Duration.minutes(174)."],
  ['12 hours polled every 18 seconds on the snapshot route (11 events a poll)', {
    timeout: Duration.hours(12), pollInterval: Duration.seconds(18), importMethod: ImportMethod.SNAPSHOTS, imageName: 'web-1', bootMode: BootMode.UEFI,
  },
  "'timeout' (12 hours) polled every 18 seconds on the snapshot route can write up to 28,932 events to the import's Step Functions execution " +
    'history (2,402 polls of 11 events, plus the start, its quota waits and every retry); Step Functions stops an execution at 25,000 events without ' +
    "signalling the stack, and the engine keeps to 20,000. Set 'pollInterval' to at least Duration.seconds(28), or 'timeout' to at most Duration.minutes(487)."],
  ['a string as timeout', { timeout: untyped('30m') }, "'timeout' must be a Duration, such as Duration.hours(6); got the string \"30m\"."],
  ['a number of days as diskImageExpiration', { diskImageExpiration: untyped(30) }, "'diskImageExpiration' must be a Duration, such as Duration.days(30); got the number 30."],
  ['a Size as diskImageExpiration', { diskImageExpiration: untyped(Size.gibibytes(1)) }, "'diskImageExpiration' must be a Duration, such as Duration.days(30); got a Size."],
  ['a number of GiB as uploadSize', { clientData: { uploadSize: untyped(8) } }, "'clientData.uploadSize' must be a Size, such as Size.gibibytes(8); got the number 8."],
  ['a string as uploadStart', { clientData: { uploadStart: untyped('2026-01-01') } }, "'clientData.uploadStart' must be a Date; got the string \"2026-01-01\"."],
  ['a number as uploadEnd', { clientData: { uploadEnd: untyped(1767225600000) } }, "'clientData.uploadEnd' must be a Date; got the number 1767225600000."],
  ['a string as clientData', { clientData: untyped('built by CI') }, "'clientData' must be an object such as { comment: 'built by CI', uploadSize: Size.gibibytes(8) }; got the string \"built by CI\"."],
  ['a string as encrypted', { encrypted: untyped('false') }, "'encrypted' must be true or false; got the string \"false\"."],
  ['a VPC ID as vpc', { vpc: untyped('vpc-0123456789abcdef0') },
    "'vpc' must be an ec2.IVpc, such as ec2.Vpc.fromLookup(this, 'Vpc', { vpcId }); got the string \"vpc-0123456789abcdef0\"."],
  ['subnet IDs as vpcSubnets', { vpcSubnets: untyped(['subnet-1']) },
    "'vpcSubnets' must be an ec2.SubnetSelection, such as { subnetType: ec2.SubnetType.PRIVATE_ISOLATED }; got an array of 1."],
  ['security group IDs as securityGroups', { securityGroups: untyped(['sg-1']) }, "'securityGroups' must be a list of ec2.ISecurityGroup; got an array of 1."],
  ['a key ARN as logEncryptionKey', { logEncryptionKey: untyped('arn:aws:kms:us-east-1:123456789012:key/1') },
    "'logEncryptionKey' must be a kms.IKey; got the string \"arn:aws:kms:us-east-1:123456789012:key/1\"."],
  ['a list of tags instead of a map', { tags: untyped([{ Key: 'team', Value: 'web' }]) }, "'tags' must be a map of tag keys to values, such as { team: 'web' }; got an array of 1."],
  ['platform in lower case', { platform: untyped('linux') }, "'platform' must be one of \"Linux\", \"Windows\"; got \"linux\". Values are case-sensitive: use \"Linux\"."],
  ['license type in lower case', { licenseType: untyped('byol') }, "'licenseType' must be one of \"AWS\", \"BYOL\"; got \"byol\". Values are case-sensitive: use \"BYOL\"."],
  ['architecture in upper case', { architecture: untyped('X86_64') }, "'architecture' must be one of \"i386\", \"x86_64\", \"arm64\"; got \"X86_64\". Values are case-sensitive: use \"x86_64\"."],
  ['boot mode in upper case', { bootMode: untyped('UEFI') }, "'bootMode' must be one of \"legacy-bios\", \"uefi\"; got \"UEFI\". Values are case-sensitive: use \"uefi\"."],
  ['hypervisor in upper case', { hypervisor: untyped('XEN') }, "'hypervisor' must be one of \"xen\"; got \"XEN\". Values are case-sensitive: use \"xen\"."],
  ['a number as platform', { platform: untyped(1) }, /^'platform' must be one of "Linux", "Windows"; got 1\.$/],
  ['removal policy in upper case', { removalPolicy: untyped('RETAIN') }, "'removalPolicy' must be RemovalPolicy.RETAIN or RemovalPolicy.DESTROY; got \"RETAIN\"."],
];

const FORMATS = '"OVA", "VMDK", "VHD", "VHDX", "RAW"';

/** A DiskImage of the caller's own, whose bind gives a format string as JavaScript may. */
class LowerCaseDisk extends DiskImage {
  public bind(): DiskImageConfig {
    return { format: untyped('vmdk'), url: 'https://example.com/disk.vmdk' };
  }
}

// Bad input that is not a prop of the import: no props at all, the DiskImage factories.
const OTHER_BAD_INPUTS: Array<[string, (stack: Stack) => unknown, string | RegExp]> = [
  ['no props at all', (stack) => new VmImageImport(stack, 'Import', untyped(undefined)),
    "VmImageImport needs props with at least 'diskImages', such as { diskImages: [DiskImage.fromAsset('disk.vmdk')] }; got undefined."],
  ['a lower-case format for fromAsset', () => DiskImage.fromAsset('disk.vmdk', { format: untyped('vmdk') }),
    `DiskImage.fromAsset 'format' must be one of ${FORMATS}; got "vmdk". Values are case-sensitive: use "VMDK".`],
  ['a lower-case format for fromBucket', (stack) => DiskImage.fromBucket(bucket(stack), 'disk', { format: untyped('vhdx') }),
    `DiskImage.fromBucket 'format' must be one of ${FORMATS}; got "vhdx". Values are case-sensitive: use "VHDX".`],
  ['a lower-case format for fromImportBucket', () => DiskImage.fromImportBucket('disk', { format: untyped('raw') }),
    `DiskImage.fromImportBucket 'format' must be one of ${FORMATS}; got "raw". Values are case-sensitive: use "RAW".`],
  ['a lower-case format for fromUrl', () => DiskImage.fromUrl('https://example.com/disk', { format: untyped('ova') }),
    `DiskImage.fromUrl 'format' must be one of ${FORMATS}; got "ova". Values are case-sensitive: use "OVA".`],
  ['a lower-case format for fromSnapshot', () => DiskImage.fromSnapshot('snap-0123456789abcdef0', { format: untyped('vhd') }),
    `DiskImage.fromSnapshot 'format' must be one of ${FORMATS}; got "vhd". Values are case-sensitive: use "VHD".`],
  ['a lower-case format from a DiskImage subclass', (stack) => new VmImageImport(stack, 'Import', { diskImages: [new LowerCaseDisk()], licenseType: LicenseType.BYOL }),
    `'diskImages[0].format' must be one of ${FORMATS}; got "vmdk". Values are case-sensitive: use "VMDK".`],
];

const numbered = (n: number, prefix = 'tag') => Object.fromEntries(Array.from({ length: n }, (_, i) => [`${prefix}-${i}`, 'v']));
const FROM = "(from 'tags', Tags.of() or the stack's tags)";

/** Synthesizes an import after adding tags the ways a user can; stack tags come from the stack's props. */
interface TagSetup {
  readonly stackTags?: { [key: string]: string };
  readonly tags?: { [key: string]: string };
  readonly tagsOf?: (imp: VmImageImport, stack: Stack) => void;
}

function synthWith(setup: TagSetup) {
  const app = new App();
  const stack = new Stack(app, 'Test', { env: { account: '123456789012', region: 'us-east-1' }, tags: setup.stackTags });
  const imp = new VmImageImport(stack, 'Import', { diskImages: [DiskImage.fromBucket(bucket(stack), 'a.vmdk')], licenseType: LicenseType.BYOL, tags: setup.tags });
  setup.tagsOf?.(imp, stack);
  return () => app.synth();
}

// Tags from Tags.of() are only known once aspects run: these fail at synth, not in the constructor.
const TAG_BAD_INPUTS: Array<[string, TagSetup, string]> = [
  ['a Tags.of() key starting with aws:', { tagsOf: (_imp, stack) => Tags.of(stack).add('aws:team', 'x') },
    `The tag key "aws:team" ${FROM} starts with 'aws:', which AWS reserves for its own tags; choose another key.`],
  ['a Tags.of() key of 128 characters', { tagsOf: (imp) => Tags.of(imp).add('k'.repeat(128), 'x') },
    `The tag key "${'k'.repeat(128)}" ${FROM} has 128 characters; a tag key has 1 to 127.`],
  ['a Tags.of() key in the library\'s namespace', { tagsOf: (imp) => Tags.of(imp).add('cdk-vm-import:image-hash', 'x') },
    `The tag key "cdk-vm-import:image-hash" ${FROM} starts with 'cdk-vm-import:', which this library uses to track what it created; choose another key.`],
  ['a Tags.of() value of 257 characters', { tagsOf: (_imp, stack) => Tags.of(stack).add('team', 'v'.repeat(257)) },
    `The value of the tag "team" ${FROM} has 257 characters; a tag value has at most 256.`],
  ['a stack tag key starting with AWS:', { stackTags: { 'AWS:owner': 'me' } },
    `The tag key "AWS:owner" ${FROM} starts with 'aws:', which AWS reserves for its own tags; choose another key.`],
  ['48 tags in the tags prop', { tags: numbered(48) },
    "'tags': 51 tags would reach the AMI and each of its snapshots, 48 from 'tags', Tags.of() and the stack's tags and 3 of this library's own (cdk-vm-import:*); " +
    'EC2 allows 50 per resource. Remove 1, or keep tags off the AMI with Tags.of(scope).add(key, value, { excludeResourceTypes: [\'Custom::VmImageImport\'] }).'],
  ['40 tags in the prop and 10 with Tags.of()', { tags: numbered(40), tagsOf: (imp) => Object.entries(numbered(10, 'extra')).forEach(([k, v]) => Tags.of(imp).add(k, v)) },
    "'tags': 53 tags would reach the AMI and each of its snapshots, 50 from 'tags', Tags.of() and the stack's tags and 3 of this library's own (cdk-vm-import:*); EC2 allows 50 per resource. Remove 3,"],
  ['30 stack tags and 18 in the prop', { stackTags: numbered(30, 'stack'), tags: numbered(18) },
    "'tags': 51 tags would reach the AMI and each of its snapshots, 48 from"],
];

describe('bad input is rejected at synth time with the prop, the value and the fix', () => {
  test.each(TAG_BAD_INPUTS)('%s', (_name, setup, message) => {
    expect(synthWith(setup)).toThrow(message);
  });

  test.each<[string, TagSetup]>([
    ['46 tags from the prop, Tags.of() and the stack', { stackTags: numbered(20, 'stack'), tags: numbered(20), tagsOf: (imp) => Object.entries(numbered(6, 'extra')).forEach(([k, v]) => Tags.of(imp).add(k, v)) }],
    ['tags kept off the AMI do not count', { tags: numbered(46), tagsOf: (_imp, stack) => Tags.of(stack).add('aws-cost', 'x', { excludeResourceTypes: ['Custom::VmImageImport'] }) }],
    ['an aws: tag removed from the AMI', { stackTags: { 'aws:legacy': 'x' }, tagsOf: (imp) => Tags.of(imp).remove('aws:legacy') }],
  ])('good tags pass: %s', (_name, setup) => {
    expect(synthWith(setup)).not.toThrow();
  });

  test.each(BAD_INPUTS)('%s', (_name, props, message) => {
    expect(build(props)).toThrow(message);
  });

  test.each(OTHER_BAD_INPUTS)('%s', (_name, act, message) => {
    const stack = newStack();
    expect(() => act(stack)).toThrow(message);
  });

  test('covers at least 90 distinct bad inputs', () => {
    expect(new Set([...BAD_INPUTS, ...OTHER_BAD_INPUTS, ...TAG_BAD_INPUTS].map(([name]) => name)).size).toBeGreaterThanOrEqual(90);
  });
});

describe('good input passes', () => {
  test.each<[string, Partial<VmImageImportProps> | ((stack: Stack) => Partial<VmImageImportProps>)]>([
    ['every enum value', { architecture: Architecture.I386, bootMode: BootMode.UEFI, platform: Platform.WINDOWS, hypervisor: Hypervisor.XEN, licenseType: LicenseType.AWS }],
    ['21 disks', many(21)],
    ['a 127-character tag key and a 256-character value', { tags: { ['k'.repeat(127)]: 'v'.repeat(256) } }],
    ['an upload that starts and ends at once', { clientData: { uploadStart: new Date(0), uploadEnd: new Date(0), uploadSize: Size.mebibytes(1) } }],
    ['a 55-minute timeout', { timeout: Duration.minutes(55) }],
    ['a 12-hour timeout', { timeout: Duration.hours(12) }],
    ['a timeout of exactly one poll interval', { timeout: Duration.seconds(30) }],
    ['a 5-second timeout with a 5-second poll interval', { timeout: Duration.seconds(5), pollInterval: Duration.seconds(5) }],
    ['a 1-hour poll interval', { pollInterval: Duration.hours(1) }],
    ['a poll interval in whole minutes', { pollInterval: Duration.minutes(2) }],
    ['an https URL with a query', { diskImages: [DiskImage.fromUrl('https://example.com/disk.vhd?X-Amz-Signature=x')] }],
    ['a UEFI snapshot with a platform', { diskImages: [DiskImage.fromSnapshot('snap-01234567')], bootMode: BootMode.UEFI, platform: Platform.LINUX }],
    ['an xvd device name', (stack) => ({ diskImages: [DiskImage.fromBucket(bucket(stack), 'a.vmdk', { deviceName: '/dev/xvdba' })] })],
    ['a license configuration ARN', { licenseConfigurationArns: [LICENSE_ARN] }],
    ['a usage operation alone', { licenseType: undefined, usageOperation: 'RunInstances:0002', platform: Platform.WINDOWS }],
    ['BYOL for Linux', { licenseType: LicenseType.BYOL, platform: Platform.LINUX }],
    ['the AWS license type for Windows', { licenseType: LicenseType.AWS, platform: Platform.WINDOWS }],
    ['a format given as its upper-case string', (stack) => ({ diskImages: [DiskImage.fromBucket(bucket(stack), 'disk', { format: untyped('VMDK') })] })],
    ['a Date, a Size and Durations', {
      clientData: { uploadStart: new Date(0), uploadSize: Size.gibibytes(1) },
      timeout: Duration.minutes(30),
      diskImageExpiration: Duration.days(7),
    }],
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
      pollInterval: Duration.seconds(Token.asNumber({ Ref: 'Poll' })),
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

test('the license warning is only for ImportImage: the snapshot route (the README\'s arm64 example) registers no license', () => {
  const stack = newStack();
  new VmImageImport(stack, 'Import', {
    diskImages: [DiskImage.fromBucket(bucket(stack), 'arm-server.raw')],
    importMethod: ImportMethod.SNAPSHOTS,
    architecture: Architecture.ARM64,
    bootMode: BootMode.UEFI,
    imageName: 'arm-server-2026.12.01',
    requireImdsv2: true,
  });
  expect(Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('cdk-vm-import:noLicense'))).toEqual([]);
});

test('neither license type nor usage operation is a warning, not an error', () => {
  const stack = newStack();
  new VmImageImport(stack, 'Import', { diskImages: [DiskImage.fromBucket(bucket(stack), 'a.vmdk')] });
  Annotations.fromStack(stack).hasWarning('/Test/Import', "Neither 'licenseType' nor 'usageOperation' is set: AWS recommends setting one, or VM Import guesses the license from the operating system. [ack: cdk-vm-import:noLicense]");
  expect(Annotations.fromStack(stack).findError('*', Match.anyValue())).toEqual([]);
});
