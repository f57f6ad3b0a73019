import * as path from 'path';
import { Annotations, Stack, StringConcat, Token, Tokenization } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { BootMode } from './import-options';
import { checkEnum } from './private/checks';
import { convertCommand } from './private/disk-bytes';
import { rememberAssetFile, stageDiskFile } from './private/disk-file-asset';
import { DiskInspection, inspectDiskImage } from './private/disk-inspect';
import { grantReadDiskImage, objectByName, objectInBucket } from './private/grants';
import { checkPlacement } from './private/placement';

/**
 * The format of a disk image, as VM Import names it.
 *
 * @see https://docs.aws.amazon.com/vm-import/latest/userguide/prerequisites.html#vmimport-image-formats
 */
export enum DiskImageFormat {
  /** Open Virtual Appliance: a tar archive of an OVF descriptor and its disks (value `OVA`). */
  OVA = 'OVA',
  /** VMware disk, stream-optimized ESX subformat (value `VMDK`). */
  VMDK = 'VMDK',
  /** Microsoft Virtual Hard Disk, fixed or dynamic (value `VHD`). */
  VHD = 'VHD',
  /** Microsoft Virtual Hard Disk v2, fixed or dynamic (value `VHDX`). */
  VHDX = 'VHDX',
  /** A raw disk: a byte-for-byte copy of the disk (value `RAW`). */
  RAW = 'RAW',
}

/**
 * Options common to every disk image source.
 */
export interface DiskImageOptions {
  /**
   * The format of the disk image.
   *
   * Checked when the disk image is created: one of the enum's values (the strings are
   * upper case, such as `'VMDK'`).
   *
   * @default - detected from the file's bytes for `fromAsset` (a file whose extension names
   * another format gives a warning), from the key's or URL's
   * extension (`.ova`, `.vmdk`, `.vhd`, `.vhdx`, `.raw`, `.img`) otherwise, also when the
   * rest of the name is a token (`images/${version}/disk.vmdk`); an error when neither tells.
   */
  readonly format?: DiskImageFormat;

  /**
   * The block device mapping of the disk, such as `/dev/sda1`.
   *
   * Checked at synth: `/dev/sd<letter>[<digits>]` or `/dev/xvd<letters>[<digits>]`.
   *
   * @default - assigned by VM Import
   */
  readonly deviceName?: string;

  /**
   * A description of the disk.
   *
   * @default - no description
   */
  readonly description?: string;
}

/**
 * What a `VmImageImport` hands a disk image when binding it.
 */
export interface DiskImageBindOptions {
  /**
   * The role VM Import assumes; the disk image grants it read access.
   */
  readonly role: iam.IRole;

  /**
   * The import's disk image bucket: the one passed to the import, or the stack's.
   *
   * Reading this property creates the stack's bucket if no import of the stack has yet, so
   * read it only when the disk is in it.
   */
  readonly bucket: s3.IBucket;

  /**
   * The boot mode the import asks for, to compare with what the disk holds.
   *
   * @default - not set on the import
   */
  readonly bootMode?: BootMode;

  /**
   * Whether this disk is the import's boot disk (its first).
   *
   * A local boot disk without an EFI System Partition imported with `bootMode: UEFI` gets a
   * warning; a data disk does not.
   *
   * @default true
   */
  readonly bootDisk?: boolean;
}

/**
 * One disk of an import, as ImportImage's `DiskContainer` takes it.
 */
export interface DiskImageConfig {
  /**
   * The disk image format.
   *
   * @default - none (an EBS snapshot)
   */
  readonly format?: DiskImageFormat;

  /**
   * The block device mapping of the disk.
   *
   * @default - assigned by VM Import
   */
  readonly deviceName?: string;

  /**
   * A description of the disk.
   *
   * @default - no description
   */
  readonly description?: string;

  /**
   * The bucket that holds the disk image.
   *
   * @default - the disk is not in S3
   */
  readonly s3Bucket?: string;

  /**
   * The key of the disk image in `s3Bucket`.
   *
   * @default - the disk is not in S3
   */
  readonly s3Key?: string;

  /**
   * An `https://` or `s3://` URL of the disk image.
   *
   * @default - no URL
   */
  readonly url?: string;

  /**
   * The EBS snapshot to import.
   *
   * @default - not a snapshot
   */
  readonly snapshotId?: string;
}

/**
 * Where a disk image's bytes are: a local file, an S3 object, a URL or an EBS snapshot.
 */
export abstract class DiskImage {
  /**
   * A local disk image file, published as a CDK file asset.
   *
   * VM Import reads it straight from the asset's location in the CDK bootstrap bucket: the
   * bytes are uploaded once and never copied. Synthesis neither copies nor re-hashes an
   * unchanged file: it is hard-linked into the cloud assembly and its hash is cached by
   * the file's identity. The file is inspected at synthesis (headers only): its format
   * is detected, and files VM Import cannot take are rejected with a fix. Without `format`, a
   * file named as another format than its bytes (a `.vmdk` that holds a raw disk) is imported
   * as what its bytes are, with a warning (`cdk-vm-import:nameContradictsBytes`); stating
   * `format` silences it.
   *
   * @param file path to the disk image file
   */
  public static fromAsset(file: string, options: DiskImageOptions = {}): DiskImage {
    checkFormatOption('fromAsset', options);
    return new AssetDiskImage(file, options);
  }

  /**
   * A disk image object in an S3 bucket in the stack's Region.
   *
   * Checked at synth: the bucket must be in the stack's Region; the key must be 1 to 1024
   * bytes without a leading `/`.
   *
   * @param bucket the bucket holding the disk image
   * @param key the object key of the disk image
   */
  public static fromBucket(bucket: s3.IBucket, key: string, options: DiskImageOptions = {}): DiskImage {
    checkFormatOption('fromBucket', options);
    return new BucketDiskImage(() => bucket, key, options);
  }

  /**
   * A disk image object in the import's bucket (`VmImageImport.bucket`: the one passed to
   * the import, or else the stack's, created for the first import that reads it), such as
   * one a build pipeline uploads there.
   *
   * @param key the object key of the disk image
   */
  public static fromImportBucket(key: string, options: DiskImageOptions = {}): DiskImage {
    checkFormatOption('fromImportBucket', options);
    return new BucketDiskImage((bindOptions) => bindOptions.bucket, key, options);
  }

  /**
   * A disk image at an `https://` URL (for example a pre-signed S3 URL) or an `s3://` URL.
   *
   * For an `s3://` URL the import role is granted read access to the object, also when the
   * bucket or key is a token (`bucket.s3UrlForObject(key)`), but not the use of the bucket's
   * SSE-KMS key, which a URL does not tell: for an encrypted bucket use `fromBucket`. For an
   * `https://` URL, nothing is granted: the URL must carry its own authorization.
   *
   * Checked at synth: only `https://` and `s3://bucket/key` URLs, with a valid bucket name;
   * an `s3://` URL whose bucket and key a token hides together is an error (nothing could be
   * granted); a URL whose scheme is unknown at synth (such as a parameter's value) gives a
   * warning (nothing is granted).
   *
   * @param url the URL of the disk image
   */
  public static fromUrl(url: string, options: DiskImageOptions = {}): DiskImage {
    checkFormatOption('fromUrl', options);
    return new UrlDiskImage(url, options);
  }

  /**
   * An EBS snapshot of a disk.
   *
   * Checked at synth: an ID of the form `snap-` and 8 or 17 hex digits. A UEFI image from a
   * snapshot needs the import's `platform`.
   *
   * @param snapshotId the snapshot ID, such as `snap-0123456789abcdef0`
   */
  public static fromSnapshot(snapshotId: string, options: DiskImageOptions = {}): DiskImage {
    checkFormatOption('fromSnapshot', options);
    return new SnapshotDiskImage(snapshotId, options);
  }

  /**
   * Grants the import role access to the disk image and returns its disk container.
   */
  public abstract bind(scope: Construct, options: DiskImageBindOptions): DiskImageConfig;
}

/** JavaScript and Python callers can give any string as `format`, such as `'vmdk'`. */
function checkFormatOption(factory: string, options: DiskImageOptions | undefined): void {
  checkEnum('format', options?.format, DiskImageFormat as unknown as Record<string, string>, '', `DiskImage.${factory} 'format'`);
}

const EXTENSION_FORMATS: Record<string, DiskImageFormat> = {
  '.ova': DiskImageFormat.OVA,
  '.vmdk': DiskImageFormat.VMDK,
  '.vhd': DiskImageFormat.VHD,
  '.vhdx': DiskImageFormat.VHDX,
  '.raw': DiskImageFormat.RAW,
  '.img': DiskImageFormat.RAW,
};

/** Stands for a token in a name: it cannot occur in literal text. */
const TOKEN_MARK = '\u0000';

/**
 * The format an S3 key or URL names by its extension, or undefined. A name that holds
 * tokens still tells it by its literal end: `images/${version}/disk.vmdk` is a VMDK.
 */
function formatFromName(name: string): DiskImageFormat | undefined {
  if (!Token.isUnresolved(name)) {
    return EXTENSION_FORMATS[path.extname(name.split('?')[0]).toLowerCase()];
  }
  const literalEnd = Tokenization.reverseString(name)
    .mapTokens({ mapToken: () => TOKEN_MARK })
    .join(new StringConcat())
    .split(TOKEN_MARK)
    .pop()!
    .split('?')[0];
  const extension = /\.[^./]+$/.exec(literalEnd)?.[0] ?? '';
  return EXTENSION_FORMATS[extension.toLowerCase()];
}

function requireFormat(what: string, name: string, options: DiskImageOptions): DiskImageFormat {
  const format = options.format ?? formatFromName(name);
  if (!format) {
    throw new Error(
      `Cannot tell the format of ${what} '${name}' from its name: set 'format' to one of ` +
      `${Object.values(DiskImageFormat).join(', ')}, or name it with one of the extensions ${Object.keys(EXTENSION_FORMATS).join(', ')}.`,
    );
  }
  return format;
}

function common(options: DiskImageOptions) {
  return { deviceName: options.deviceName, description: options.description };
}

/** What bytes confirm each stated format, as the inspection reads them. */
const FORMAT_SIGNATURES: Record<DiskImageFormat, string> = {
  [DiskImageFormat.OVA]: 'an OVA (a tar archive in ustar format whose first member is the .ovf descriptor)',
  [DiskImageFormat.VMDK]: "a VMDK (VM Import takes a single-file stream-optimized VMDK, which starts with the 'KDMV' header)",
  [DiskImageFormat.VHD]: "a VHD (which ends with a 'conectix' footer)",
  [DiskImageFormat.VHDX]: "a VHDX (which starts with the 'vhdxfile' signature)",
  [DiskImageFormat.RAW]: 'a raw disk (a byte-for-byte copy of a disk, not an image container)',
};

/** What a file's name says it is. */
const FORMAT_NOUNS: Record<DiskImageFormat, string> = {
  [DiskImageFormat.OVA]: 'an OVA',
  [DiskImageFormat.VMDK]: 'a VMDK',
  [DiskImageFormat.VHD]: 'a VHD',
  [DiskImageFormat.VHDX]: 'a VHDX',
  [DiskImageFormat.RAW]: 'a raw disk',
};

function looksLike(inspection: DiskInspection): string {
  if (!inspection.format) return inspection.detail;
  return `${/^[AEIOU]/i.test(inspection.detail) ? 'an' : 'a'} ${inspection.detail} (${inspection.format})`;
}

/** How to fix a stated format the bytes do not confirm: state what they are, or convert them. */
function statedFormatFix(file: string, stated: DiskImageFormat, detected: DiskImageFormat | undefined): string {
  const convert = convertCommand(file, detected ?? DiskImageFormat.RAW, stated);
  const or = convert ? `; or convert it to ${stated}: ${convert}` : '';
  if (detected) {
    return `Set 'format' to DiskImageFormat.${detected}, or leave it unset to use the detected format${or}`;
  }
  const ova = stated === DiskImageFormat.OVA ? '; an OVA is exported from the hypervisor, or built with tar --format=ustar -cf appliance.ova appliance.ovf disk1.vmdk' : '';
  return `If it is a raw disk, set 'format: DiskImageFormat.RAW'${or}${ova}`;
}

class AssetDiskImage extends DiskImage {
  constructor(private readonly file: string, private readonly options: DiskImageOptions) {
    super();
  }

  public bind(scope: Construct, options: DiskImageBindOptions): DiskImageConfig {
    const file = path.resolve(this.file);
    const stated = this.options.format;
    const call = `DiskImage.fromAsset('${this.file}')`;
    let inspection: DiskInspection;
    try {
      inspection = inspectDiskImage(file);
    } catch (e) {
      throw new Error(`${call}${stated ? ` with 'format' ${stated}` : ''}: ${(e as Error).message}`);
    }
    const detected = inspection.format as DiskImageFormat | undefined;
    // Any bytes may be a raw disk, so only RAW may be stated for bytes of no known format.
    if (stated && !Token.isUnresolved(stated) && stated !== detected && !(stated === DiskImageFormat.RAW && detected === undefined)) {
      throw new Error(`${call}: 'format' is ${stated} but the file is ${looksLike(inspection)}, not ${FORMAT_SIGNATURES[stated]}. ` +
        `${statedFormatFix(file, stated, detected)}.`);
    }
    const format = stated ?? detected;
    const named = formatFromName(this.file);
    if (!stated && detected && named && named !== detected) {
      const convert = convertCommand(file, detected, named);
      Annotations.of(scope).addWarningV2('cdk-vm-import:nameContradictsBytes',
        `${call} is named as ${FORMAT_NOUNS[named]} (${path.extname(this.file).toLowerCase()}), but its bytes are ${looksLike(inspection)}: ` +
        `it is imported as ${detected}. If that is right, set 'format: DiskImageFormat.${detected}' (or rename the file)` +
        `${convert ? `; if it should be ${FORMAT_NOUNS[named]}, convert it: ${convert}` : ''}.`);
    }
    if (!format) {
      throw new Error(
        `${call}: the file is not a disk image format VM Import recognizes: it holds ${inspection.detail}. ` +
        "If it is a raw disk, set 'format: DiskImageFormat.RAW'; otherwise convert it with qemu-img.",
      );
    }
    if (inspection.efiSystemPartition === 'found' && options.bootMode !== BootMode.UEFI) {
      const now = options.bootMode === undefined ? 'is not set' : `is ${options.bootMode}`;
      Annotations.of(scope).addWarningV2('cdk-vm-import:uefiDisk',
        `DiskImage.fromAsset('${this.file}') holds an EFI System Partition, so it boots with UEFI, but 'bootMode' ${now}. ` +
        "Set 'bootMode: BootMode.UEFI' on the import, or VM Import may register it for legacy BIOS and the instance will not boot.");
    }
    if (inspection.efiSystemPartition === 'absent' && options.bootMode === BootMode.UEFI && options.bootDisk !== false) {
      Annotations.of(scope).addWarningV2('cdk-vm-import:noEsp',
        `DiskImage.fromAsset('${this.file}') is the boot disk and 'bootMode' is uefi, but its first sectors hold no EFI System Partition, ` +
        'so a UEFI boot will likely fail. If the disk boots with BIOS, set \'bootMode: BootMode.LEGACY_BIOS\' or leave it unset; ' +
        'otherwise check that this is the disk exported from the UEFI machine, with its partition table.');
    }
    const staged = stageDiskFile(scope, file);
    grantReadDiskImage(options.role, objectByName(staged.bucketName, staged.objectKey));
    return rememberAssetFile({ format, s3Bucket: staged.bucketName, s3Key: staged.objectKey, ...common(this.options) }, this.file);
  }
}

class BucketDiskImage extends DiskImage {
  constructor(
    private readonly bucket: (options: DiskImageBindOptions) => s3.IBucket,
    private readonly key: string,
    private readonly options: DiskImageOptions,
  ) {
    super();
  }

  public bind(scope: Construct, options: DiskImageBindOptions): DiskImageConfig {
    const bucket = this.bucket(options);
    checkPlacement(scope, 'DiskImage.fromBucket bucket', bucket, false);
    const format = requireFormat('the S3 key', this.key, this.options);
    grantReadDiskImage(options.role, objectInBucket(bucket, this.key));
    return { format, s3Bucket: bucket.bucketName, s3Key: this.key, ...common(this.options) };
  }
}

class UrlDiskImage extends DiskImage {
  constructor(private readonly url: string, private readonly options: DiskImageOptions) {
    super();
  }

  public bind(scope: Construct, options: DiskImageBindOptions): DiskImageConfig {
    const format = requireFormat('the URL', this.url, this.options);
    const object = s3Object(scope, this.url);
    if (object) {
      grantReadDiskImage(options.role, objectByName(object.bucket, object.key));
    }
    return { format, url: this.url, ...common(this.options) };
  }
}

/**
 * The bucket and key of an `s3://` URL, also one with tokens such as
 * `bucket.s3UrlForObject(key)` (a token's text holds no `/`, so the first `/` after the
 * bucket still ends it). Undefined for an `https://` URL, and for a URL whose scheme is a
 * token (with a warning: nothing can be granted).
 */
function s3Object(scope: Construct, url: string): { bucket: string; key: string } | undefined {
  const match = /^s3:\/\/([^/]+)\/(.+)$/.exec(url);
  if (match) {
    return { bucket: match[1], key: match[2] };
  }
  if (!Token.isUnresolved(url)) {
    return undefined;
  }
  const start = leadingLiteral(Stack.of(scope).resolve(url));
  if (start.startsWith('s3://')) {
    throw new Error(
      `DiskImage.fromUrl(${JSON.stringify(url)}): the bucket and the key of this s3:// URL cannot be told apart at synth, ` +
      'so the import role cannot be granted read access to the object. Use DiskImage.fromBucket(bucket, key), ' +
      "or write the URL as `s3://${bucketName}/${key}` with a literal '/' between bucket and key.",
    );
  }
  if (!start.startsWith('https://')) {
    Annotations.of(scope).addWarningV2('cdk-vm-import:tokenUrl',
      `DiskImage.fromUrl(${JSON.stringify(url)}): the URL's scheme is unknown at synth, so whether it names an S3 object is unknown at synth ` +
      'and the import role is granted no read access. For an S3 object use DiskImage.fromBucket(bucket, key), ' +
      'or grant the role read access yourself (VmImportRole.grantReadDiskImage).');
  }
  return undefined;
}

/**
 * The literal text a resolved value starts with: `https://` for
 * `Fn.sub('https://${AWS::AccountId}-images.s3.amazonaws.com/disk.img')`, nothing for a `Ref`.
 */
function leadingLiteral(value: unknown): string {
  if (typeof value === 'string') {
    return value;
  }
  const join = isIntrinsic(value) ? value['Fn::Join'] : undefined;
  if (Array.isArray(join) && typeof join[0] === 'string' && Array.isArray(join[1])) {
    let lead = '';
    for (const [i, part] of (join[1] as unknown[]).entries()) {
      lead += (i > 0 ? join[0] : '') + leadingLiteral(part);
      if (typeof part !== 'string') {
        break;
      }
    }
    return lead;
  }
  const sub = isIntrinsic(value) ? value['Fn::Sub'] : undefined;
  const template = Array.isArray(sub) ? sub[0] : sub;
  return typeof template === 'string' ? template.split('${')[0] : '';
}

function isIntrinsic(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

class SnapshotDiskImage extends DiskImage {
  constructor(private readonly snapshotId: string, private readonly options: DiskImageOptions) {
    super();
  }

  public bind(): DiskImageConfig {
    return { snapshotId: this.snapshotId, format: this.options.format, ...common(this.options) };
  }
}
