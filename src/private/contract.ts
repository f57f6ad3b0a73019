/**
 * The wire contract between the `VmImageImport` construct and its custom resource
 * handler. Both sides import this module; every value on the wire is a string (or a
 * list/map of strings), because that is what CloudFormation delivers.
 */

/**
 * The custom resource that starts an import: it starts the engine's state machine
 * execution and returns at once. Its physical ID is the execution's ARN.
 */
export const RESOURCE_TYPE = 'Custom::VmImageImport';

/**
 * The custom resource after the wait: it reads the execution's outcome and returns the
 * AMI. Its physical ID is the AMI's ID.
 */
export const RESULT_RESOURCE_TYPE = 'Custom::VmImageImportResult';

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
  /** The engine's state machine, which runs the import. */
  readonly StateMachineArn?: string;
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
  /** 'snapshots': ImportSnapshot per disk, then RegisterImage; absent or 'image': ImportImage. */
  readonly ImportMethod?: string;
  /** With ImportMethod snapshots: 'v2.0' registers the AMI with NitroTPM. */
  readonly TpmSupport?: string;
  /** With ImportMethod snapshots: the UEFI variable store to register (base64). */
  readonly UefiData?: string;
  /** With ImportMethod snapshots: 'v2.0' registers the AMI requiring IMDSv2 (not a property that shapes the image: the result resource sets it too). */
  readonly ImdsSupport?: string;
  /**
   * With a name, the imported AMI is copied to this name (CopyImage), and the copy is the
   * result; with ImportMethod snapshots, the AMI is registered with this name.
   */
  readonly ImageName?: string;
  /** The copy's description (with ImageName). */
  readonly ImageDescription?: string;
  /** Tags for the import task, the AMI and its snapshots. */
  readonly Tags?: WireTag[];
  /** 'retain' or 'destroy'. */
  readonly RemovalPolicy?: string;
  /** How long to wait for the import task before cancelling it, in seconds. */
  readonly WaitTimeoutSeconds?: string;
  /** Seconds between two polls of the import task. */
  readonly PollIntervalSeconds?: string;
  /**
   * The logical ID of the WaitCondition this import signals. It carries a hash of what
   * shapes the image: a new one means a new import (and a new execution).
   */
  readonly WaitConditionId?: string;
}

/**
 * The properties that shape the image: the construct hashes them into the WaitCondition's
 * ID, and the handler refuses a deploy-time change to them under the same ID.
 */
export const IMAGE_PROPERTIES = [
  'DiskContainers', 'Description', 'Encrypted', 'KmsKeyId', 'LicenseType', 'UsageOperation', 'Platform', 'BootMode',
  'Architecture', 'Hypervisor', 'LicenseConfigurationArns', 'ImageName', 'ImageDescription', 'ImportMethod', 'TpmSupport', 'UefiData',
] as const;

/** What shapes the image, every key present (undefined when not set). */
export type WireImageProperties = { readonly [K in typeof IMAGE_PROPERTIES[number]]-?: WireProperties[K] };

/** The result resource's properties (ServiceToken excluded). */
export interface WireResultProperties {
  /** The ARN of the execution whose outcome this resource reports (the start resource's Ref). */
  readonly ExecutionArn: string;
  /** Tags for the AMI and its snapshots. */
  readonly Tags?: WireTag[];
  /** 'retain' or 'destroy'. */
  readonly RemovalPolicy?: string;
  /** Whom the AMI is shared with; absent: with no one. */
  readonly LaunchPermissions?: WireLaunchPermissions;
  /** 'v2.0' to require IMDSv2 of instances launched from the AMI (it cannot be undone). */
  readonly ImdsSupport?: string;
}

/** Launch permissions of the AMI, in ModifyImageAttribute's terms. */
export interface WireLaunchPermissions {
  readonly UserIds: string[];
  readonly OrganizationArns: string[];
  readonly OrganizationalUnitArns: string[];
}

/** The steps of the state machine that run the handler function (its event's `Step`). */
export const STEP_START = 'start';
export const STEP_TIMEOUT = 'timeout';
export const STEP_SIGNAL = 'signal';
/** With ImageName: the copy is available; remove the imported AMI and its snapshots. */
export const STEP_FINISH_COPY = 'finish-copy';
/** With ImageName: the wait ran out during the copy; stop it. */
export const STEP_COPY_TIMEOUT = 'copy-timeout';
/** With ImportMethod snapshots: poll the snapshot tasks (and cancel them when the wait runs out). */
export const STEP_POLL_SNAPSHOTS = 'poll-snapshots';
/** With ImportMethod snapshots: register the AMI from the imported snapshots. */
export const STEP_REGISTER = 'register';

/**
 * The device the snapshot route registers a disk on when the disk names none: /dev/xvda,
 * /dev/xvdb, … by its place (the root device first). The construct checks the devices with
 * it at synth, the handler registers with it.
 */
export function defaultDeviceName(index: number): string {
  return `/dev/xvd${String.fromCharCode('a'.charCodeAt(0) + index)}`;
}

/** The import method values on the wire. */
export const METHOD_SNAPSHOTS = 'snapshots';

/** The execution's input, written by the start resource. */
export interface ExecutionInput {
  readonly StackId: string;
  /** The start resource's logical ID. */
  readonly LogicalResourceId: string;
  readonly WaitConditionId: string;
  /**
   * ImportImage's idempotency token, for the record: the start step derives the token it
   * sends from the execution's own ARN, never from this input.
   */
  readonly ClientToken: string;
  /** When the import's wait runs out, ISO 8601. */
  readonly Deadline: string;
  readonly PollIntervalSeconds: number;
  /** The start resource's properties, as CloudFormation delivered them. */
  readonly Properties: WireProperties;
  /**
   * Set when these properties were imported before and the AMI still exists, but
   * CloudFormation made a new WaitCondition for them (a revert, or a redeploy after a
   * rollback): this execution imports nothing and signals it with that execution's outcome.
   */
  readonly ReuseExecutionArn?: string;
  /**
   * Set by the start resource's delete for an import whose execution ended after its task
   * completed but before it tagged the AMI and snapshots: this execution only tags them
   * (when the task carries this stack's tag), so that the removal policy can apply.
   */
  readonly Adopt?: { readonly ImportTaskId: string; readonly OutputTags: WireTag[] };
}

/** What the start step returns into the execution's state (at `$.Import`). */
export interface StartStepResult {
  /** False while ImportImage is refused for a reason worth waiting out (quota, IAM propagation). */
  readonly Started: boolean;
  readonly ImportTaskId?: string;
  /** With ImportMethod snapshots: the ImportSnapshot tasks, one per disk in order (ImportTaskId is the first). */
  readonly ImportTaskIds?: string[];
  /**
   * Tags for the imported AMI and its snapshots: the user's and the library's own, or with
   * ImageName the library's alone (the copy gets them all).
   */
  readonly OutputTags?: WireTag[];
  /** With ImageName: CopyImage's request, as the state machine sends it. */
  readonly Copy?: CopyRequest;
  /** With Started false: how long to wait before trying again. */
  readonly RetrySeconds?: number;
  /** With Started false: why ImportImage was refused. */
  readonly Reason?: string;
  /** How many times ImportImage was refused so far. */
  readonly Attempts?: number;
}

/** What the state machine passes to CopyImage (the source AMI and Region come from the import). */
export interface CopyRequest {
  readonly Name: string;
  readonly Description: string;
  readonly Encrypted: boolean;
  /** Absent when the copy is not encrypted. */
  readonly KmsKeyId?: string;
  /** CopyImage's idempotency token, derived from the execution. */
  readonly ClientToken: string;
  /** Tags for the copy and its snapshots (TagSpecifications): the user's and the library's own. */
  readonly Tags: WireTag[];
}

/** What the poll-snapshots step leaves at `$.Poll`. */
export interface SnapshotPollResult {
  readonly Status: 'running' | 'completed' | 'failed';
  /** Snapshots of completed tasks the state machine has tagged (after this poll's tagging). */
  readonly Tagged: string[];
  /** Snapshots of tasks completed since the last poll: the state machine tags them next. */
  readonly Untagged: string[];
  /** With Status completed: the snapshots in disk order. */
  readonly SnapshotIds?: string[];
  /** With Status failed: why. */
  readonly Reason?: string;
}

/** What the finish-copy step leaves at `$.Final`: the named AMI. */
export interface FinalImage {
  readonly ImageId: string;
  readonly SnapshotIds: string[];
}

/** How an execution ended, as the signal step reports it (the execution's output). */
export interface ExecutionOutcome {
  readonly Outcome: 'completed' | 'failed';
  readonly ImportTaskId?: string;
  readonly ImageId?: string;
  readonly SnapshotIds?: string[];
  /** With Outcome failed: the reason the stack reports. */
  readonly Reason?: string;
}

/** Attribute names the handler returns. */
export const ATTR_IMAGE_ID = 'ImageId';
export const ATTR_SNAPSHOT_IDS = 'SnapshotIds';
export const ATTR_IMPORT_TASK_ID = 'ImportTaskId';
/** The start resource's attribute: the execution's ARN. */
export const ATTR_EXECUTION_ARN = 'ExecutionArn';

/**
 * The handler tags the import task, the AMI and its snapshots with the stack's ID under
 * this key. The handler's destructive permissions are conditioned on it.
 */
export const TAG_STACK_ID = 'cdk-vm-import:stack-id';
/** The handler tags the AMI and its snapshots with the import task ID under this key. */
export const TAG_IMPORT_TASK_ID = 'cdk-vm-import:import-task-id';

/** The handler tags the AMI and its snapshots with the start resource's logical ID under this key. */
export const TAG_LOGICAL_ID = 'cdk-vm-import:logical-id';

/**
 * The start step tags each import task, as it creates it, with the name of the execution
 * that started it under this key: the one way to find a task whose ID the execution could
 * not record because it was stopped while ImportImage ran (a rollback right after the
 * start). Only tasks that also carry this stack's tag are cancelled by it.
 */
export const TAG_EXECUTION = 'cdk-vm-import:execution';

/**
 * How many tags of its own (`cdk-vm-import:*`) the engine adds to the AMI and each of its
 * snapshots (stack ID, logical ID, import task ID): the construct keeps room for them under
 * EC2's 50 tags per resource. `resourceTags` in lambda/decisions.ts is tested against it.
 */
export const LIBRARY_TAG_COUNT = 3;

/** Removal policy values on the wire. */
export const REMOVAL_RETAIN = 'retain';
export const REMOVAL_DESTROY = 'destroy';
