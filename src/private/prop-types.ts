/**
 * Checks the types of a VmImageImport's props. TypeScript checks them at compile time, but
 * JavaScript and Python callers can pass anything: a missing `diskImages`, a path string
 * where a `DiskImage` belongs, a number where a `Duration` belongs. Each gets an error that
 * names the prop instead of a `TypeError` from inside the library.
 */
import { Duration, Size } from 'aws-cdk-lib';
import { DiskImage } from '../disk-image';
import type { VmImageImportProps } from '../vm-image-import';
import { describeValue, show } from './checks';

const EXAMPLE_DISK = "[DiskImage.fromAsset('disk.vmdk')]";

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/** A DiskImage, also from another copy of this library (where `instanceof` fails). */
function isDiskImage(value: unknown): boolean {
  return value instanceof DiskImage || (isObject(value) && typeof value.bind === 'function');
}

function isDuration(value: unknown): boolean {
  return value instanceof Duration || (isObject(value) && typeof value.toSeconds === 'function' && typeof value.toHumanString === 'function');
}

function isSize(value: unknown): boolean {
  return value instanceof Size || (isObject(value) && typeof value.toBytes === 'function' && typeof value.toGibibytes === 'function');
}

function isDate(value: unknown): boolean {
  return Object.prototype.toString.call(value) === '[object Date]';
}

function checkType(prop: string, value: unknown, isType: (v: unknown) => boolean, expected: string): void {
  if (value !== undefined && !isType(value)) {
    throw new Error(`'${prop}' must be ${expected}; got ${describeValue(value)}.`);
  }
}

function checkDiskImages(disks: unknown): void {
  if (disks === undefined || disks === null) {
    throw new Error(`'diskImages' is required: give the disks to import, boot disk first, such as ${EXAMPLE_DISK}.`);
  }
  if (!Array.isArray(disks)) {
    const fix = isDiskImage(disks) ? 'Put it in a list' : typeof disks === 'string'
      ? `For a local file, use [DiskImage.fromAsset(${show(disks)})]`
      : 'Create each with DiskImage.fromAsset, fromBucket, fromImportBucket, fromUrl or fromSnapshot';
    throw new Error(`'diskImages' must be a list of DiskImage; got ${isDiskImage(disks) ? 'one DiskImage' : describeValue(disks)}. ${fix}.`);
  }
  disks.forEach((disk: unknown, i) => {
    if (!isDiskImage(disk)) {
      const fix = typeof disk === 'string'
        ? `For a local file, use DiskImage.fromAsset(${show(disk)}); for an S3 object, DiskImage.fromBucket(bucket, key) or DiskImage.fromUrl(url)`
        : 'Create it with DiskImage.fromAsset, fromBucket, fromImportBucket, fromUrl or fromSnapshot';
      throw new Error(`'diskImages[${i}]' must be a DiskImage; got ${describeValue(disk)}. ${fix}.`);
    }
  });
}

/** Checks that each prop has the type its declaration gives it. */
export function validatePropTypes(props: VmImageImportProps | undefined): void {
  if (!isObject(props)) {
    throw new Error(`VmImageImport needs props with at least 'diskImages', such as { diskImages: ${EXAMPLE_DISK} }; got ${describeValue(props)}.`);
  }
  checkDiskImages(props.diskImages);
  checkType('timeout', props.timeout, isDuration, 'a Duration, such as Duration.hours(6)');
  checkType('pollInterval', props.pollInterval, isDuration, 'a Duration, such as Duration.seconds(30)');
  checkType('diskImageExpiration', props.diskImageExpiration, isDuration, 'a Duration, such as Duration.days(30)');
  checkType('encrypted', props.encrypted, (v) => typeof v === 'boolean', 'true or false');
  checkType('tpmSupport', props.tpmSupport, (v) => typeof v === 'boolean', 'true or false');
  for (const prop of ['imageName', 'imageDescription', 'description', 'ssmParameterName', 'uefiData'] as const) {
    checkType(prop, props[prop], (v) => typeof v === 'string', 'a string');
  }
  checkType('tags', props.tags, (v) => isObject(v) && !Array.isArray(v), "a map of tag keys to values, such as { team: 'web' }");
  checkType('vpc', props.vpc, (v) => isObject(v) && typeof v.selectSubnets === 'function', 'an ec2.IVpc, such as ec2.Vpc.fromLookup(this, \'Vpc\', { vpcId })');
  checkType('vpcSubnets', props.vpcSubnets, (v) => isObject(v) && !Array.isArray(v), 'an ec2.SubnetSelection, such as { subnetType: ec2.SubnetType.PRIVATE_ISOLATED }');
  checkType('securityGroups', props.securityGroups, (v) => Array.isArray(v) && v.every((g) => isObject(g) && 'securityGroupId' in g),
    'a list of ec2.ISecurityGroup');
  checkType('logEncryptionKey', props.logEncryptionKey, (v) => isObject(v) && 'keyArn' in v, 'a kms.IKey');
  const data: unknown = props.clientData;
  checkType('clientData', data, isObject, "an object such as { comment: 'built by CI', uploadSize: Size.gibibytes(8) }");
  if (isObject(data)) {
    checkType('clientData.uploadSize', data.uploadSize, isSize, 'a Size, such as Size.gibibytes(8)');
    checkType('clientData.uploadStart', data.uploadStart, isDate, 'a Date');
    checkType('clientData.uploadEnd', data.uploadEnd, isDate, 'a Date');
  }
}
