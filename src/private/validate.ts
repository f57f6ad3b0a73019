/**
 * Synth-time checks of a VmImageImport's props against ImportImage's constraints. Each
 * message names the prop, shows the value and says what is allowed. Unresolved tokens
 * are skipped: only their deploy-time value can be checked.
 */
import {
  Annotations, CfnMapping, DefaultTokenResolver, Duration, IPostProcessor, IResolvable, IResolveContext, Reference, RemovalPolicy, Resource,
  Stack, StringConcat, Token, Tokenization,
} from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { DiskImageConfig, DiskImageFormat } from '../disk-image';
import { Architecture, BootMode, Hypervisor, ImportMethod, LicenseType, Platform } from '../import-options';
import type { VmImageImportProps } from '../vm-image-import';
import { checkEnum, known, show } from './checks';
import { defaultDeviceName, LIBRARY_TAG_COUNT } from './contract';
import { assetFileOf } from './disk-file-asset';
import { DEFAULT_POLL_INTERVAL, DEFAULT_TIMEOUT, MAX_POLL_INTERVAL, MAX_TIMEOUT, MIN_POLL_INTERVAL } from './engine';
import { HISTORY_BUDGET, HISTORY_LIMIT, worstCaseHistory } from './history';
import { checkPlacement } from './placement';

/** ImportImage takes at most 21 volumes. */
export const MAX_DISKS = 21;


/** EC2 allows this many tags per resource. */
export const MAX_TAGS = 50;

/** What is wrong with tag keys and values, each message starting with the given labels. */
function tagProblems(tags: { [key: string]: string }, keyLabel: (key: string) => string, valueLabel: (key: string) => string): string[] {
  const problems: string[] = [];
  for (const [key, value] of Object.entries(tags)) {
    if (Token.isUnresolved(key)) {
      continue;
    }
    if (key.length === 0 || key.length > 127) {
      problems.push(`${keyLabel(key)} has ${key.length} characters; a tag key has 1 to 127.`);
    } else if (key.toLowerCase().startsWith('aws:')) {
      problems.push(`${keyLabel(key)} starts with 'aws:', which AWS reserves for its own tags; choose another key.`);
    } else if (key.startsWith('cdk-vm-import:')) {
      problems.push(`${keyLabel(key)} starts with 'cdk-vm-import:', which this library uses to track what it created; choose another key.`);
    }
    if (known(value) && value.length > 256) {
      problems.push(`${valueLabel(key)} has ${value.length} characters; a tag value has at most 256.`);
    }
  }
  return problems;
}

function checkTags(tags: { [key: string]: string } | undefined): void {
  const [problem] = tagProblems(tags ?? {}, (key) => `'tags' key ${show(key)}`, (key) => `'tags' value of ${show(key)}`);
  if (problem) {
    throw new Error(problem);
  }
}

/**
 * Checks every tag that reaches the AMI and its snapshots: the `tags` prop, `Tags.of()` on
 * the construct or its scopes and the stack's tags, with room for the library's own. Tags
 * from `Tags.of()` are known only once aspects have run: call this from a validation.
 */
export function validateAmiTags(tags: { [key: string]: string }): string[] {
  const from = "(from 'tags', Tags.of() or the stack's tags)";
  const problems = tagProblems(tags, (key) => `The tag key ${show(key)} ${from}`, (key) => `The value of the tag ${show(key)} ${from}`);
  const count = Object.keys(tags).length;
  if (count + LIBRARY_TAG_COUNT > MAX_TAGS) {
    problems.push(
      `'tags': ${count + LIBRARY_TAG_COUNT} tags would reach the AMI and each of its snapshots, ${count} from 'tags', Tags.of() and the stack's tags ` +
      `and ${LIBRARY_TAG_COUNT} of this library's own (cdk-vm-import:*); EC2 allows ${MAX_TAGS} per resource. Remove ${count + LIBRARY_TAG_COUNT - MAX_TAGS}, ` +
      "or keep tags off the AMI with Tags.of(scope).add(key, value, { excludeResourceTypes: ['Custom::VmImageImport'] }).",
    );
  }
  return problems;
}

function checkClientData(props: VmImageImportProps): void {
  const data = props.clientData;
  if (!data) {
    return;
  }
  const { uploadStart: start, uploadEnd: end, uploadSize: size } = data;
  for (const [name, date] of [['uploadStart', start], ['uploadEnd', end]] as const) {
    if (date && Number.isNaN(date.getTime())) {
      throw new Error(`'clientData.${name}' is not a valid date.`);
    }
  }
  if (start && end && end.getTime() < start.getTime()) {
    throw new Error(`'clientData.uploadEnd' (${end.toISOString()}) is before 'clientData.uploadStart' (${start.toISOString()}); the upload must end after it starts.`);
  }
  if (size && !size.isUnresolved() && size.toBytes() <= 0) {
    throw new Error(`'clientData.uploadSize' must be larger than zero; got ${size.toBytes()} bytes.`);
  }
}

const LICENSE_CONFIGURATION_ARN = /^arn:aws[a-z-]*:license-manager:[a-z0-9-]+:\d{12}:license-configuration:lic-[0-9a-f]{32}$/;

function checkLicenses(arns: string[] | undefined): void {
  for (const arn of arns ?? []) {
    if (known(arn) && !LICENSE_CONFIGURATION_ARN.test(arn)) {
      throw new Error(
        `'licenseConfigurationArns' has ${show(arn)}, which is not a License Manager license configuration ARN ` +
        '(arn:aws:license-manager:<region>:<account>:license-configuration:lic-<32 hex digits>).',
      );
    }
  }
}

/** The VM Import guide's "Licensing options". */
function checkLicensing(props: VmImageImportProps): void {
  const { licenseType, usageOperation, platform } = props;
  if (known(licenseType) && known(usageOperation)) {
    throw new Error(
      `'licenseType' (${show(licenseType)}) and 'usageOperation' (${show(usageOperation)}) are both set, and VM Import returns an error ` +
      "when both are: set only one, 'licenseType' for AWS or BYOL licensing, or 'usageOperation' for a specific billing code.",
    );
  }
  if (licenseType === LicenseType.AWS && platform === Platform.LINUX) {
    throw new Error(
      `'licenseType' is ${show(licenseType)} but 'platform' is ${show(platform)}: VM Import supports only BYOL for Linux, ` +
      "and the import would fail late. Set 'licenseType: LicenseType.BYOL'.",
    );
  }
}

function checkWait(timeout: Duration | undefined, pollInterval: Duration | undefined, importMethod: ImportMethod | undefined): void {
  if (pollInterval && !pollInterval.isUnresolved()) {
    const ms = pollInterval.toMilliseconds();
    if (ms % 1000 !== 0 || ms < MIN_POLL_INTERVAL.toMilliseconds() || ms > MAX_POLL_INTERVAL.toMilliseconds()) {
      throw new Error(
        `'pollInterval' is ${pollInterval.toHumanString()}; it must be whole seconds from ${MIN_POLL_INTERVAL.toHumanString()} to ${MAX_POLL_INTERVAL.toHumanString()}.`,
      );
    }
  }
  if (timeout?.isUnresolved() || pollInterval?.isUnresolved()) {
    return;
  }
  const poll = pollInterval ?? DEFAULT_POLL_INTERVAL;
  const wait = timeout ?? DEFAULT_TIMEOUT;
  const ms = wait.toMilliseconds();
  if (ms % 1000 !== 0 || ms < poll.toMilliseconds() || ms > MAX_TIMEOUT.toMilliseconds()) {
    throw new Error(
      `'timeout' is ${wait.toHumanString()}; it must be whole seconds from one poll interval (${poll.toHumanString()}) to ${MAX_TIMEOUT.toHumanString()}, ` +
      'because a CloudFormation WaitCondition waits at most 12 hours.',
    );
  }
  const route = importMethod === ImportMethod.SNAPSHOTS ? 'snapshots' : 'image';
  const worst = worstCaseHistory(route, wait.toSeconds(), poll.toSeconds());
  if (worst.events > HISTORY_BUDGET) {
    let fastest = poll.toSeconds();
    while (worstCaseHistory(route, wait.toSeconds(), fastest).events > HISTORY_BUDGET) {
      fastest += 1;
    }
    let longest = wait.toSeconds();
    while (longest > poll.toSeconds() && worstCaseHistory(route, longest, poll.toSeconds()).events > HISTORY_BUDGET) {
      longest -= 60;
    }
    const which = (timeout ? `'timeout' (${wait.toHumanString()})` : `the default 'timeout' (${wait.toHumanString()})`) +
      (pollInterval ? ` polled every ${poll.toHumanString()}` : ` at the default 'pollInterval' (${poll.toHumanString()})`);
    throw new Error(
      `${which} on the ${route === 'image' ? 'ImportImage' : 'snapshot'} route can write up to ${thousands(worst.events)} events to the import's Step Functions ` +
      `execution history (${thousands(worst.polls)} polls of ${worst.eventsPerPoll} events, plus the start, its quota waits and every retry); ` +
      `Step Functions stops an execution at ${thousands(HISTORY_LIMIT)} events without signalling the stack, and the engine keeps to ${thousands(HISTORY_BUDGET)}. ` +
      `Set 'pollInterval' to at least Duration.seconds(${fastest})` +
      (longest > poll.toSeconds() ? `, or 'timeout' to at most Duration.minutes(${Math.floor(longest / 60)}).` : '.'),
    );
  }
}

const thousands = (n: number): string => n.toLocaleString('en-US');

/** Checks the props that do not depend on the disks. */
/** CopyImage's constraints on an AMI name. */
const AMI_NAME = /^[A-Za-z0-9()[\] ./\-'@_]{3,128}$/;
/** CopyImage's longest description. */
const MAX_IMAGE_DESCRIPTION = 255;

/** What each route takes: ImportImage converts and licenses, the snapshot route registers the disks as they are. */
function checkImportMethod(props: VmImageImportProps): void {
  const snapshots = props.importMethod === ImportMethod.SNAPSHOTS;
  if (!snapshots) {
    if (props.architecture === Architecture.ARM64) {
      throw new Error("'architecture' is \"arm64\", which ImportImage does not import: set 'importMethod: ImportMethod.SNAPSHOTS' " +
        "(ImportSnapshot for each disk, then RegisterImage), with 'bootMode: BootMode.UEFI' and an 'imageName'.");
    }
    for (const prop of ['tpmSupport', 'uefiData'] as const) {
      if (props[prop] !== undefined) {
        throw new Error(`'${prop}' is set but 'importMethod' is not ImportMethod.SNAPSHOTS: only RegisterImage takes it. Set 'importMethod: ImportMethod.SNAPSHOTS', or remove '${prop}'.`);
      }
    }
    return;
  }
  const licensed = "RegisterImage registers no license or billing code, so a licensed system would lose it: import it with 'importMethod: ImportMethod.IMAGE'.";
  if (props.imageName === undefined) {
    throw new Error("'importMethod' is ImportMethod.SNAPSHOTS but 'imageName' is not set: RegisterImage names the AMI as it makes it. Set 'imageName'.");
  }
  if (props.architecture === Architecture.ARM64 && props.bootMode !== BootMode.UEFI) {
    throw new Error(`'architecture' is ARM64 with 'bootMode' ${props.bootMode === undefined ? 'unset' : show(props.bootMode)}: arm64 instances boot only with UEFI. Set 'bootMode: BootMode.UEFI'.`);
  }
  if (props.architecture === Architecture.I386) {
    throw new Error("'architecture' is I386 with ImportMethod.SNAPSHOTS: EC2's current instance types cannot boot a 32-bit image registered as it is. Import it with 'importMethod: ImportMethod.IMAGE'.");
  }
  if (props.platform === Platform.WINDOWS) {
    throw new Error(`'platform' is WINDOWS with ImportMethod.SNAPSHOTS: ${licensed}`);
  }
  if (props.licenseType === LicenseType.AWS) {
    throw new Error(`'licenseType' is AWS with ImportMethod.SNAPSHOTS: ${licensed}`);
  }
  for (const prop of ['usageOperation', 'licenseConfigurationArns', 'hypervisor'] as const) {
    if (props[prop] !== undefined) {
      throw new Error(`'${prop}' is set with ImportMethod.SNAPSHOTS, which only ImportImage takes: ${prop === 'hypervisor' ? 'remove it' : licensed}`);
    }
  }
  if ((props.tpmSupport || props.uefiData !== undefined) && props.bootMode !== BootMode.UEFI) {
    throw new Error(`'${props.tpmSupport ? 'tpmSupport' : 'uefiData'}' needs 'bootMode: BootMode.UEFI': NitroTPM and the UEFI variable store exist only for UEFI boot.`);
  }
  // RegisterImage takes the variable store as base64: anything else is refused at deploy, after the import.
  if (known(props.uefiData) && (props.uefiData.length === 0 || props.uefiData.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(props.uefiData))) {
    throw new Error(`'uefiData' ${show(props.uefiData.length > 40 ? `${props.uefiData.slice(0, 40)}…` : props.uefiData)} is not base64: ` +
      "RegisterImage takes the UEFI variable store base64-encoded, as 'aws ec2 get-instance-uefi-data' returns it. " +
      'Encode the store\'s bytes with base64.');
  }
}

/** The snapshot route takes VHD, VMDK and RAW files only. */
function checkSnapshotRouteDisk(disk: DiskImageConfig, i: number): void {
  const at = `'diskImages[${i}]'`;
  if (disk.snapshotId !== undefined) {
    throw new Error(`${at} is an EBS snapshot, which ImportSnapshot cannot take (it imports files): with ImportMethod.SNAPSHOTS give disk files, or use ImportMethod.IMAGE for an EBS snapshot.`);
  }
  if (disk.format === DiskImageFormat.OVA) {
    throw new Error(`${at} is an OVA, which ImportSnapshot does not take (VHD, VMDK and RAW only): take its disks out (tar -xf image.ova) and give each .vmdk as a disk.`);
  }
  if (disk.format === DiskImageFormat.VHDX) {
    throw new Error(`${at} is a VHDX, which ImportSnapshot does not take (VHD, VMDK and RAW only): convert it with ` +
      "'qemu-img convert -f vhdx -O vmdk -o subformat=streamOptimized disk.vhdx disk.vmdk', or import it with ImportMethod.IMAGE.");
  }
}

function checkImageName(name: string | undefined, description: string | undefined): void {
  if (known(name) && !AMI_NAME.test(name)) {
    const bad = [...name].filter((ch) => !/[A-Za-z0-9()[\] ./\-'@_]/.test(ch));
    const why = name.length < 3 || name.length > 128
      ? `has ${name.length} characters`
      : `holds ${[...new Set(bad)].map((ch) => JSON.stringify(ch)).join(', ')}`;
    throw new Error(`'imageName' ${show(name)} ${why}; an AMI name has 3 to 128 letters, digits, spaces and ( ) [ ] . / - ' @ _ (such as 'web-server-2026.12.01').`);
  }
  if (description !== undefined && name === undefined) {
    throw new Error("'imageDescription' is set without 'imageName': it describes the named copy. Set 'imageName', or use 'description'.");
  }
  if (known(description) && description.length > MAX_IMAGE_DESCRIPTION) {
    throw new Error(`'imageDescription' has ${description.length} characters; an AMI description has at most ${MAX_IMAGE_DESCRIPTION}.`);
  }
}

export function validateImport(scope: Construct, props: VmImageImportProps): void {
  const count = props.diskImages.length;
  if (count === 0) {
    throw new Error("'diskImages' is empty: give at least one DiskImage (the boot disk first).");
  }
  if (count > MAX_DISKS) {
    throw new Error(`'diskImages' has ${count} disks; VM Import takes at most ${MAX_DISKS} volumes per image.`);
  }
  checkEnum('architecture', props.architecture, Architecture as unknown as Record<string, string>);
  checkEnum('importMethod', props.importMethod, ImportMethod as unknown as Record<string, string>);
  checkImportMethod(props);
  checkEnum('bootMode', props.bootMode, BootMode as unknown as Record<string, string>,
    (props.bootMode as string) === 'uefi-preferred' ? " 'uefi-preferred' is not supported for imports: choose BootMode.UEFI or BootMode.LEGACY_BIOS." : '');
  checkEnum('platform', props.platform, Platform as unknown as Record<string, string>);
  checkEnum('licenseType', props.licenseType, LicenseType as unknown as Record<string, string>);
  checkEnum('hypervisor', props.hypervisor, Hypervisor as unknown as Record<string, string>);
  checkImageName(props.imageName, props.imageDescription);
  if (props.encrypted === false && props.encryptionKey) {
    throw new Error("'encryptionKey' is set but 'encrypted' is false: ImportImage uses a KMS key only for encrypted snapshots. Remove 'encryptionKey' or set 'encrypted: true'.");
  }
  for (const prop of ['removalPolicy', 'bucketRemovalPolicy', 'encryptionKeyRemovalPolicy', 'logGroupRemovalPolicy'] as const) {
    const policy = props[prop];
    if (policy !== undefined && policy !== RemovalPolicy.RETAIN && policy !== RemovalPolicy.DESTROY) {
      throw new Error(`'${prop}' must be RemovalPolicy.RETAIN or RemovalPolicy.DESTROY; got ${show(policy)}.`);
    }
  }
  if (props.bucketRemovalPolicy !== undefined && props.bucket) {
    throw new Error("'bucketRemovalPolicy' is set but so is 'bucket': it applies only to the stack's bucket, which an import given a bucket never uses. " +
      "Remove 'bucketRemovalPolicy', or set the removal policy on your bucket.");
  }
  if (props.encryptionKeyRemovalPolicy !== undefined && props.bucket && (props.encryptionKey || props.encrypted === false)) {
    const own = props.encryptionKey ? "'encryptionKey'" : "'encrypted: false'";
    throw new Error(`'encryptionKeyRemovalPolicy' is set, but with ${own} and 'bucket' this import never uses the stack's key. ` +
      "Remove 'encryptionKeyRemovalPolicy', or set the removal policy on your key.");
  }
  if (known(props.usageOperation) && !/^RunInstances(:[0-9A-Za-z]{4})?$/.test(props.usageOperation)) {
    throw new Error(`'usageOperation' ${show(props.usageOperation)} is not a usage operation such as 'RunInstances' or 'RunInstances:0002'.`);
  }
  checkLicensing(props);
  checkTags(props.tags);
  checkClientData(props);
  checkLicenses(props.licenseConfigurationArns);
  checkWait(props.timeout, props.pollInterval, props.importMethod);
  // Only ImportImage licenses the image: the snapshot route registers the disks as they are.
  if (props.licenseType === undefined && props.usageOperation === undefined && props.importMethod !== ImportMethod.SNAPSHOTS) {
    Annotations.of(scope).addWarningV2('cdk-vm-import:noLicense',
      "Neither 'licenseType' nor 'usageOperation' is set: AWS recommends setting one, or VM Import guesses the license from the operating system.");
  }
}

const S3_BUCKET_NAME = /^(?!xn--|sthree-)(?!.*(-s3alias|--ol-s3)$)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const SNAPSHOT_ID = /^snap-([0-9a-f]{8}|[0-9a-f]{17})$/;
const DEVICE_NAME = /^\/dev\/(sd[a-z][0-9]*|xvd[a-z]{1,2}[0-9]*)$/;

function checkDisk(disk: DiskImageConfig, index: number): void {
  const where = `'diskImages[${index}]'`;
  const s3Url = known(disk.url) ? /^s3:\/\/([^/]+)\//.exec(disk.url) : null;
  for (const name of [disk.s3Bucket, s3Url?.[1]].filter(known)) {
    if (!S3_BUCKET_NAME.test(name) || name.includes('..') || /^\d+\.\d+\.\d+\.\d+$/.test(name)) {
      throw new Error(`${where} bucket name ${show(name)} is not a valid S3 bucket name (3 to 63 lower-case letters, digits, dots and hyphens).`);
    }
  }
  if (known(disk.s3Key) && (disk.s3Key.length === 0 || Buffer.byteLength(disk.s3Key) > 1024 || disk.s3Key.startsWith('/'))) {
    throw new Error(`${where} S3 key ${show(disk.s3Key)} is not a valid object key (1 to 1024 bytes, no leading '/').`);
  }
  if (known(disk.url) && !/^(https:\/\/[^/\s]+\/\S*|s3:\/\/[^/\s]+\/\S+)$/.test(disk.url)) {
    throw new Error(`${where} URL ${show(disk.url)} must be an https:// URL or an s3://bucket/key URL.`);
  }
  if (known(disk.snapshotId) && !SNAPSHOT_ID.test(disk.snapshotId)) {
    throw new Error(`${where} snapshot ID ${show(disk.snapshotId)} is not an EBS snapshot ID such as 'snap-0123456789abcdef0'.`);
  }
  if (known(disk.deviceName) && !DEVICE_NAME.test(disk.deviceName)) {
    throw new Error(`${where} deviceName ${show(disk.deviceName)} is not a device name such as '/dev/sda1' or '/dev/xvdb'.`);
  }
  if (disk.format !== undefined) {
    checkEnum(`diskImages[${index}].format`, disk.format, DiskImageFormat as unknown as Record<string, string>);
  }
}

/** Where a bound disk's bytes are, as the same text for the same disk: its S3 object (also from an s3:// URL), URL or snapshot. */
function diskSource(disk: DiskImageConfig): string | undefined {
  if (disk.s3Bucket !== undefined && disk.s3Key !== undefined) return `s3://${disk.s3Bucket}/${disk.s3Key}`;
  return disk.url ?? disk.snapshotId;
}

/** The same disk twice would be imported as two volumes of one AMI. */
function checkDuplicateDisks(scope: Construct, disks: DiskImageConfig[]): void {
  const stack = Stack.of(scope);
  const shown = disks.map((disk) => {
    const source = diskSource(disk);
    return source === undefined || !Token.isUnresolved(source) ? source : JSON.stringify(stack.resolve(source));
  });
  for (const [j, source] of shown.entries()) {
    const i = source === undefined ? -1 : shown.indexOf(source);
    if (i < 0 || i === j) continue;
    const [first, second] = [assetFileOf(disks[i]), assetFileOf(disks[j])];
    const what = first === undefined || second === undefined ? source
      : first === second ? `DiskImage.fromAsset('${first}')`
        : `DiskImage.fromAsset('${first}') and DiskImage.fromAsset('${second}') hold the same bytes`;
    throw new Error(`'diskImages[${i}]' and 'diskImages[${j}]' are the same disk (${what}): VM Import would import it twice, as two volumes of the AMI. ` +
      'Remove one, or give each its own disk image.');
  }
}

/** Checks the disks once bound, and the props that depend on them. */
export function validateDisks(scope: Construct, props: VmImageImportProps, disks: DiskImageConfig[]): void {
  disks.forEach(checkDisk);
  checkDuplicateDisks(scope, disks);
  if (props.importMethod === ImportMethod.SNAPSHOTS) {
    disks.forEach(checkSnapshotRouteDisk);
    // RegisterImage maps each disk to its deviceName, or to /dev/xvda, /dev/xvdb, … by its place.
    const devices = disks.map((d, i) => d.deviceName ?? defaultDeviceName(i));
    const clash = devices.findIndex((name, i) => known(name) && devices.indexOf(name) !== i);
    if (clash >= 0) {
      throw new Error(`'diskImages[${clash}]' would be registered as ${show(devices[clash])}, the device of 'diskImages[${devices.indexOf(devices[clash])}]': ` +
        'unnamed disks take /dev/xvda, /dev/xvdb, … by their place. Give each disk its own deviceName.');
    }
  }
  if (disks.length > 1 && disks.some((d) => d.format === DiskImageFormat.OVA)) {
    throw new Error(`'diskImages' mixes an OVA with ${disks.length - 1} other disk(s): an OVA carries all of its disks, so it must be the only disk of its import.`);
  }
  const names = disks.map((d) => d.deviceName).filter(known);
  const duplicate = names.find((name, i) => names.indexOf(name) !== i);
  if (duplicate) {
    throw new Error(`'diskImages' maps two disks to the device ${show(duplicate)}; give each disk its own deviceName.`);
  }
  if (disks.some((d) => d.snapshotId !== undefined) && props.bootMode === BootMode.UEFI && props.platform === undefined) {
    throw new Error("'platform' is required for a UEFI image imported from an EBS snapshot: set 'platform' to Platform.LINUX or Platform.WINDOWS.");
  }
}

/** Checks the role, bucket and key passed in. */
export function validateResources(scope: Construct, props: VmImageImportProps): void {
  if (props.role) {
    checkPlacement(scope, 'role', props.role, true);
    const roleName = props.role.roleName;
    // IAM compares role names ignoring case.
    if (!Resource.isOwnedResource(props.role) && known(roleName) && roleName.toLowerCase() === 'vmimport') {
      Annotations.of(scope).addWarningV2('cdk-vm-import:sharedVmimportRole',
        `'role' is ${show(roleName)}, the account-wide 'vmimport' role: this stack adds read access to its disk images and use of its key to that shared role. ` +
        'Leave `role` unset to use the stack\'s own import role, which only this stack uses.');
    }
  }
  if (props.bucket) {
    checkPlacement(scope, 'bucket', props.bucket, false);
  }
  if (props.encryptionKey) {
    checkPlacement(scope, 'encryptionKey', props.encryptionKey, false);
    if (!Resource.isOwnedResource(props.encryptionKey)) {
      Annotations.of(scope).addWarningV2('cdk-vm-import:importedKey',
        "'encryptionKey' is imported by reference, so this stack cannot change its key policy: make sure it lets the import role use it " +
        '(kms:CreateGrant, Decrypt, DescribeKey, Encrypt, GenerateDataKey*, ReEncrypt*), for example by trusting IAM policies of this account, ' +
        "or the import fails late with 'the specified KMS key is not accessible'.");
    }
  }
}

/** Remembers every token it resolves, nested ones included. */
class RecordingResolver extends DefaultTokenResolver {
  public readonly tokens = new Set<IResolvable>();

  constructor() {
    super(new StringConcat());
  }

  public resolveToken(token: IResolvable, context: IResolveContext, postProcessor: IPostProcessor): any {
    this.tokens.add(token);
    return super.resolveToken(token, context, postProcessor);
  }
}

/** A CfnMapping's body as the template will hold it, before resolution: `{ key1: { key2: value } }`. */
function mappingBody(mapping: CfnMapping): Record<string, Record<string, unknown>> {
  // `_toCloudFormation` is how every CfnElement renders itself; a mapping's values are not otherwise readable.
  type Rendered = { Mappings?: Record<string, Record<string, Record<string, unknown>>> };
  const rendered = (mapping as unknown as { _toCloudFormation(): Rendered })._toCloudFormation();
  return Object.values(rendered.Mappings ?? {})[0] ?? {};
}

/**
 * Finds this import's values in any CloudFormation Mapping of the app (as `ec2.MachineImage.genericLinux`
 * makes in a stack whose Region is unknown at synth), of its own stack or another: CloudFormation
 * rejects a reference in a Mapping at deploy. `attributes` names the import's own attributes by their
 * reference; other references to a resource of the import are named as CloudFormation shows them.
 * Run from a validation: every mapping then exists.
 */
export function validateMappings(scope: Construct, attributes: ReadonlyMap<IResolvable, string>): string[] {
  const inside = (target: Construct) => target.node.path.startsWith(`${scope.node.path}/`);
  // Another resource of the import by its path in it, as 'Parameter.Ref'.
  const nameOf = (reference: Reference) => `${reference.target.node.path.slice(scope.node.path.length + 1).replace(/\/Resource$/, '')}.${reference.displayName}`;
  const problems: string[] = [];
  for (const mapping of scope.node.root.node.findAll().filter((c): c is CfnMapping => c instanceof CfnMapping)) {
    for (const [key1, row] of Object.entries(mappingBody(mapping))) {
      for (const [key2, value] of Object.entries(row ?? {})) {
        const resolver = new RecordingResolver();
        Tokenization.resolve(value, { scope: Stack.of(mapping), resolver, preparing: false });
        const named = [...resolver.tokens]
          .map((token) => attributes.get(token) ?? (token instanceof Reference && inside(token.target) ? nameOf(token) : undefined))
          .find((name) => name !== undefined);
        if (named !== undefined) {
          problems.push(
            `The CloudFormation Mapping ${mapping.node.path} holds this import's '${named}' (at ${key1}.${key2}), as ec2.MachineImage.genericLinux() ` +
            'and genericWindows() make in a stack whose Region is unknown at synth: CloudFormation accepts no reference (Fn::GetAtt, Fn::ImportValue) ' +
            "in a Mapping and rejects the template at deploy. Give the import itself as the 'machineImage' (it is an ec2.IMachineImage), " +
            "use ec2.MachineImage.genericLinux() or genericWindows() only in a stack with a concrete 'env.region', or publish the AMI with " +
            "'ssmParameterName' and read it with ec2.MachineImage.fromSsmParameter().",
          );
        }
      }
    }
  }
  return problems;
}
