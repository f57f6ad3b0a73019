/**
 * The wire contract between the `VmImageImport` construct and its custom resource
 * handler. Both sides import this module; every value on the wire is a string (or a
 * list/map of strings), because that is what CloudFormation delivers.
 */

/** The custom resource type name. */
export const RESOURCE_TYPE = 'Custom::VmImageImport';

/** One disk of the import, flattened. */
export interface WireDiskContainer {
  readonly Format?: string;
  readonly DeviceName?: string;
  readonly Description?: string;
  readonly Url?: string;
  readonly S3Bucket?: string;
  readonly S3Key?: string;
  readonly SnapshotId?: string;
}

export interface WireTag {
  readonly Key: string;
  readonly Value: string;
}

export interface WireClientData {
  readonly Comment?: string;
  /** ISO 8601 timestamp. */
  readonly UploadStart?: string;
  /** ISO 8601 timestamp. */
  readonly UploadEnd?: string;
  /** Size in GiB, as a decimal string. */
  readonly UploadSize?: string;
}

/** The custom resource's properties (ServiceToken excluded). */
export interface WireProperties {
  readonly DiskContainers: WireDiskContainer[];
  readonly RoleName: string;
  readonly Description?: string;
  /** 'true' or 'false'. */
  readonly Encrypted?: string;
  readonly KmsKeyId?: string;
  readonly LicenseType?: string;
  readonly UsageOperation?: string;
  readonly Platform?: string;
  readonly BootMode?: string;
  readonly Architecture?: string;
  readonly Hypervisor?: string;
  readonly ClientData?: WireClientData;
  readonly LicenseConfigurationArns?: string[];
  /** Tags for the import task, the AMI and its snapshots. */
  readonly Tags?: WireTag[];
  /** 'retain' or 'destroy'. */
  readonly RemovalPolicy?: string;
  /** How long to wait for the import task before cancelling it, in seconds. */
  readonly WaitTimeoutSeconds?: string;
}

/** Attribute names the handler returns. */
export const ATTR_IMAGE_ID = 'ImageId';
export const ATTR_SNAPSHOT_IDS = 'SnapshotIds';
export const ATTR_IMPORT_TASK_ID = 'ImportTaskId';
/** Epoch milliseconds when the import started (used by the handler to enforce its own deadline). */
export const ATTR_STARTED_AT = 'StartedAt';

/**
 * The handler tags the import task, the AMI and its snapshots with the stack's ID under
 * this key. The handler's destructive permissions are conditioned on it.
 */
export const TAG_STACK_ID = 'cdk-vm-import:stack-id';
/** The handler tags the AMI and its snapshots with the import task ID under this key. */
export const TAG_IMPORT_TASK_ID = 'cdk-vm-import:import-task-id';

/** The handler tags the AMI and its snapshots with the custom resource's logical ID under this key. */
export const TAG_LOGICAL_ID = 'cdk-vm-import:logical-id';
/**
 * The handler tags the AMI and its snapshots with a hash of the properties that shape the
 * image under this key, so an Update back to those properties (a rollback) finds it again.
 */
export const TAG_IMAGE_HASH = 'cdk-vm-import:image-hash';

/**
 * How many tags of its own (`cdk-vm-import:*`) the handler adds to the import task, the
 * AMI and its snapshots: the construct keeps room for them under EC2's 50 tags per resource.
 * Keep in step with the handler.
 */
export const LIBRARY_TAG_COUNT = 4;

/** Removal policy values on the wire. */
export const REMOVAL_RETAIN = 'retain';
export const REMOVAL_DESTROY = 'destroy';
