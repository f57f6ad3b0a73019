import {
  CustomResource,
  Duration,
  Fn,
  ITaggable,
  Lazy,
  RemovalPolicy,
  SizeRoundingBehavior,
  Stack,
  TagManager,
  TagType,
} from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { DiskImage, DiskImageConfig } from './disk-image';
import { Architecture, BootMode, ClientData, Hypervisor, LicenseType, Platform } from './import-options';
import {
  ATTR_IMAGE_ID,
  ATTR_SNAPSHOT_IDS,
  REMOVAL_DESTROY,
  REMOVAL_RETAIN,
  RESOURCE_TYPE,
  WireClientData,
  WireDiskContainer,
  WireProperties,
} from './private/contract';
import { grantEncryptSnapshots, grantLicenseConfigurations } from './private/grants';
import { acceptNagFindings } from './private/nag';
import { MAX_WAIT, VmImportProvider } from './private/provider';
import { validateDisks, validateImport, validateResources } from './private/validate';
import { VmImportRole } from './vm-import-role';

/**
 * Properties of a `VmImageImport`.
 */
export interface VmImageImportProps {
  /**
   * The disks to import, boot disk first.
   *
   * Checked at synth: 1 to 21 disks; an OVA holds all of its disks and must be the only
   * disk of its import; no two disks on the same `deviceName`.
   */
  readonly diskImages: DiskImage[];

  /**
   * The service role VM Import assumes. It must trust `vmie.amazonaws.com` with
   * `sts:ExternalId` `vmimport`; it is granted read access to the disk images and use of
   * the encryption key.
   *
   * Checked at synth: it must belong to the stack's account. Passing the account-wide
   * `vmimport` role gives a warning, since this stack then adds permissions to a shared role.
   *
   * @default - a new `VmImportRole`
   */
  readonly role?: iam.IRole;

  /**
   * A bucket for disk images, such as images a build pipeline uploads, imported with
   * `DiskImage.fromImportBucket(key)`.
   *
   * Checked at synth: it must be in the stack's Region; another account gives a warning.
   *
   * @default - a new bucket: SSL only, public access blocked, versioned, encrypted with
   * `encryptionKey`, retained when the stack is deleted
   */
  readonly bucket?: s3.IBucket;

  /**
   * Where the created bucket writes its server access logs.
   *
   * @default - no server access logs
   */
  readonly accessLogsBucket?: s3.IBucket;

  /**
   * The key prefix of the created bucket's server access logs.
   *
   * @default - no prefix
   */
  readonly accessLogsPrefix?: string;

  /**
   * Delete disk images from the created bucket this long after they are uploaded (and
   * their old versions as long after they are replaced). An AMI does not depend on its
   * disk image once imported.
   *
   * @default - disk images are kept
   */
  readonly diskImageExpiration?: Duration;

  /**
   * Whether the AMI's snapshots are encrypted.
   *
   * @default true
   */
  readonly encrypted?: boolean;

  /**
   * The KMS key that encrypts the AMI's snapshots (and the bucket this construct creates).
   * It must stay enabled during the import.
   *
   * Checked at synth: not with `encrypted: false`; in the stack's Region; a key of another
   * account, or one imported by reference (whose key policy this stack cannot change),
   * gives a warning.
   *
   * @default - a new key with rotation enabled, when `encrypted` is true or a bucket is created
   */
  readonly encryptionKey?: kms.IKey;

  /**
   * A description of the import task and the AMI.
   *
   * @default - no description
   */
  readonly description?: string;

  /**
   * Information about the upload of the disk images.
   *
   * Checked at synth: valid dates, `uploadEnd` not before `uploadStart`, `uploadSize` above zero.
   *
   * @default - none recorded
   */
  readonly clientData?: ClientData;

  /**
   * The license type of the operating system.
   *
   * AWS recommends setting this or `usageOperation`: with neither, synth gives a warning.
   *
   * @default - VM Import chooses from the operating system
   */
  readonly licenseType?: LicenseType;

  /**
   * The usage operation (billing code) of the AMI, such as `RunInstances:0002` for Windows.
   *
   * Checked at synth: `RunInstances` or `RunInstances:` and four letters or digits.
   *
   * @see https://docs.aws.amazon.com/vm-import/latest/userguide/licensing-specify-option.html
   * @default - VM Import chooses from the operating system
   */
  readonly usageOperation?: string;

  /**
   * ARNs of License Manager license configurations for the AMI.
   *
   * Checked at synth: each is an
   * `arn:<partition>:license-manager:<region>:<account>:license-configuration:lic-<32 hex>` ARN.
   * The import role is granted the License Manager actions VM Import needs on them.
   *
   * @default - none
   */
  readonly licenseConfigurationArns?: string[];

  /**
   * Tags for the import task, the AMI and each of its snapshots. Tags applied with
   * `Tags.of(...)` to this construct or the stack are added too.
   *
   * Checked at synth: keys of 1 to 127 characters that start neither with `aws:` (reserved
   * by AWS) nor with `cdk-vm-import:` (this library's own), values of at most 256.
   *
   * @default - none besides the handler's own `cdk-vm-import:*` tags
   */
  readonly tags?: { [key: string]: string };

  /**
   * The boot mode of the image.
   *
   * Checked at synth: `uefi-preferred` is rejected (not supported for imports). A local disk
   * image with an EFI System Partition imported without `BootMode.UEFI` gives a warning.
   *
   * @default - VM Import detects it
   */
  readonly bootMode?: BootMode;

  /**
   * The operating system of the image. Required for a UEFI image imported from an EBS
   * snapshot (checked at synth). Also decides the operating system type and user data of instances launched
   * from this construct as an `ec2.IMachineImage`.
   *
   * @default - VM Import detects it; instances built from this construct are Linux
   */
  readonly platform?: Platform;

  /**
   * The architecture of the image.
   *
   * Checked at synth: only `i386` and `x86_64`; ImportImage does not import arm64 images.
   *
   * @default - VM Import detects it
   */
  readonly architecture?: Architecture;

  /**
   * The target hypervisor.
   *
   * @default - VM Import's default
   */
  readonly hypervisor?: Hypervisor;

  /**
   * What happens to the AMI and its snapshots when this resource leaves the stack or is
   * replaced: `RETAIN` keeps them, `DESTROY` deregisters the AMI and deletes its snapshots.
   * An import still running is cancelled either way. Other policies are rejected at synth.
   *
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;

  /**
   * How long to wait for EC2 to finish the import. When it runs out, the import task is
   * cancelled and the deployment fails with the task's last progress.
   *
   * Checked at synth: from 30 seconds (one poll) to 55 minutes, because CloudFormation waits
   * at most one hour for a custom resource.
   *
   * @default Duration.minutes(55)
   */
  readonly timeout?: Duration;
}

/**
 * Imports a virtual machine disk image into an Amazon Machine Image with EC2 VM Import.
 *
 * A custom resource calls `ImportImage`, waits for the import task to complete and returns
 * the AMI's ID. The construct creates what VM Import needs: the service role, a bucket for
 * disk images and a KMS key that encrypts the AMI's snapshots; each can be passed in.
 * It is an `ec2.IMachineImage`, so an instance can be launched from it directly.
 *
 * @see https://docs.aws.amazon.com/vm-import/latest/userguide/what-is-vmimport.html
 *
 * @example
 * import * as ec2 from 'aws-cdk-lib/aws-ec2';
 * import { BootMode, DiskImage, LicenseType, Platform, VmImageImport } from 'cdk-vm-import';
 *
 * declare const vpc: ec2.IVpc;
 *
 * const image = new VmImageImport(this, 'Image', {
 *   diskImages: [DiskImage.fromAsset('images/web-server.vmdk')],
 *   platform: Platform.LINUX,
 *   bootMode: BootMode.LEGACY_BIOS,
 *   licenseType: LicenseType.BYOL,
 * });
 *
 * new ec2.Instance(this, 'WebServer', {
 *   vpc,
 *   machineImage: image,
 *   instanceType: ec2.InstanceType.of(ec2.InstanceClass.T3, ec2.InstanceSize.MICRO),
 * });
 */
export class VmImageImport extends Construct implements ec2.IMachineImage, ITaggable {
  /** The ID of the imported AMI. */
  public readonly imageId: string;
  /** The IDs of the AMI's snapshots, one per disk. */
  public readonly snapshotIds: string[];
  /** The ID of the import task, such as `import-ami-0123456789abcdef0`. */
  public readonly importTaskId: string;
  /** The service role VM Import assumes. */
  public readonly role: iam.IRole;
  /** The disk image bucket. */
  public readonly bucket: s3.IBucket;
  /**
   * The KMS key that encrypts the AMI's snapshots.
   *
   * Undefined when the snapshots are not encrypted and no bucket was created.
   */
  public readonly encryptionKey?: kms.IKey;
  /** Tags for the import task, the AMI and its snapshots. */
  public readonly tags: TagManager;

  private readonly platform?: Platform;

  constructor(scope: Construct, id: string, props: VmImageImportProps) {
    super(scope, id);
    validateImport(this, props);
    validateResources(this, props);

    const encrypted = props.encrypted ?? true;
    this.platform = props.platform;
    this.tags = new TagManager(TagType.KEY_VALUE, RESOURCE_TYPE, props.tags);
    // The stack's own tags (`StackProps.tags`) reach only what CloudFormation manages, not the
    // AMI: add them at the lowest priority, so that this construct's tags and Tags.of() win,
    // and Tags.of(...).remove() and excludeResourceTypes keep working.
    for (const [key, value] of Object.entries(Stack.of(this).tags.tagValues())) {
      this.tags.setTag(key, value, 0);
    }

    this.encryptionKey = props.encryptionKey ?? (encrypted || !props.bucket
      ? new kms.Key(this, 'Key', {
        enableKeyRotation: true,
        description: `Encrypts the disk images and AMI snapshots of ${this.node.path}`,
        removalPolicy: RemovalPolicy.RETAIN,
      })
      : undefined);

    this.bucket = props.bucket ?? this.createBucket(props);
    this.role = props.role ?? new VmImportRole(this, 'Role');
    if (encrypted && this.encryptionKey) {
      grantEncryptSnapshots(this.role, this.encryptionKey);
    }
    if (props.licenseConfigurationArns?.length) {
      grantLicenseConfigurations(this.role, props.licenseConfigurationArns);
    }

    const disks = props.diskImages.map((disk) => disk.bind(this, { role: this.role, bucket: this.bucket, bootMode: props.bootMode }));
    validateDisks(this, props, disks);

    const provider = VmImportProvider.getOrCreate(this);
    this.role.grantPassRole(provider.handlerRole);

    const properties: WireProperties = {
      DiskContainers: disks.map(toWireDisk),
      RoleName: this.role.roleName,
      Description: props.description,
      Encrypted: String(encrypted),
      KmsKeyId: encrypted ? this.encryptionKey?.keyArn : undefined,
      LicenseType: props.licenseType,
      UsageOperation: props.usageOperation,
      Platform: props.platform,
      BootMode: props.bootMode,
      Architecture: props.architecture,
      Hypervisor: props.hypervisor,
      ClientData: props.clientData && toWireClientData(props.clientData),
      LicenseConfigurationArns: props.licenseConfigurationArns,
      Tags: Lazy.any({ produce: () => (this.tags.hasTags() ? this.tags.renderTags() : undefined) }) as unknown as WireProperties['Tags'],
      RemovalPolicy: (props.removalPolicy ?? RemovalPolicy.RETAIN) === RemovalPolicy.DESTROY ? REMOVAL_DESTROY : REMOVAL_RETAIN,
      WaitTimeoutSeconds: String((props.timeout ?? MAX_WAIT).toSeconds()),
    };

    const resource = new CustomResource(this, 'Resource', {
      serviceToken: provider.serviceToken,
      resourceType: RESOURCE_TYPE,
      properties: properties as unknown as Record<string, unknown>,
    });
    // The handler needs the role and its policies in place before ImportImage runs.
    resource.node.addDependency(this.role);

    this.importTaskId = resource.ref;
    this.imageId = resource.getAttString(ATTR_IMAGE_ID);
    this.snapshotIds = Fn.split(',', resource.getAttString(ATTR_SNAPSHOT_IDS));
  }

  private createBucket(props: VmImageImportProps): s3.Bucket {
    const expiration = props.diskImageExpiration;
    const bucket = new s3.Bucket(this, 'Bucket', {
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: this.encryptionKey,
      bucketKeyEnabled: true,
      enforceSSL: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      versioned: true,
      serverAccessLogsBucket: props.accessLogsBucket,
      serverAccessLogsPrefix: props.accessLogsPrefix,
      lifecycleRules: [{
        abortIncompleteMultipartUploadAfter: Duration.days(7),
        expiration,
        noncurrentVersionExpiration: expiration,
      }],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    if (!props.accessLogsBucket) {
      acceptNagFindings(bucket, [{
        id: 'AwsSolutions-S1',
        reason: "Server access logs are opt-in ('accessLogsBucket'): the bucket only holds disk images that VM Import reads, and CloudTrail records the import.",
      }]);
    }
    return bucket;
  }

  /**
   * The AMI as a machine image for `ec2.Instance`, launch templates and Auto Scaling groups.
   */
  public getImage(_scope: Construct): ec2.MachineImageConfig {
    const osType = this.platform === Platform.WINDOWS ? ec2.OperatingSystemType.WINDOWS : ec2.OperatingSystemType.LINUX;
    return { imageId: this.imageId, osType, userData: ec2.UserData.forOperatingSystem(osType) };
  }
}

function toWireDisk(disk: DiskImageConfig): WireDiskContainer {
  return {
    Format: disk.format,
    DeviceName: disk.deviceName,
    Description: disk.description,
    Url: disk.url,
    S3Bucket: disk.s3Bucket,
    S3Key: disk.s3Key,
    SnapshotId: disk.snapshotId,
  };
}

function toWireClientData(data: ClientData): WireClientData {
  return {
    Comment: data.comment,
    UploadStart: data.uploadStart?.toISOString(),
    UploadEnd: data.uploadEnd?.toISOString(),
    UploadSize: data.uploadSize === undefined ? undefined : String(data.uploadSize.toGibibytes({ rounding: SizeRoundingBehavior.NONE })),
  };
}
