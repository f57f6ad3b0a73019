/**
 * The handler's decisions, free of I/O: what a custom resource event asks for, what an
 * import task's state means, and what to tell CloudFormation. Table-tested.
 */
import { createHash } from 'crypto';
import type { ImportImageCommandInput, ImportImageTask, ImportSnapshotCommandInput, ImportSnapshotTask, RegisterImageCommandInput } from '@aws-sdk/client-ec2';
import {
  CopyRequest,
  defaultDeviceName,
  IMAGE_PROPERTIES,
  METHOD_SNAPSHOTS,
  REMOVAL_DESTROY,
  REMOVAL_RETAIN,
  TAG_EXECUTION,
  TAG_IMPORT_TASK_ID,
  TAG_LOGICAL_ID,
  TAG_STACK_ID,
  WireProperties,
  WireResultProperties,
  WireLaunchPermissions,
  WireTag,
} from '../src/private/contract';

/** CloudFormation rejects a response over 4096 bytes; leave room for the rest of it. */
export const MAX_REASON_LENGTH = 3000;

/** How long an import may wait when the resource does not say: 6 hours. */
export const DEFAULT_WAIT_TIMEOUT_SECONDS = 6 * 3600;

/** How often the task is polled when the resource does not say. */
export const DEFAULT_POLL_INTERVAL_SECONDS = 30;

/** The longest a WaitCondition waits (CloudFormation's maximum), in seconds. */
export const MAX_WAIT_CONDITION_SECONDS = 43_200;

/**
 * Time kept in hand before a WaitCondition's 12 hours run out, so that an import that
 * times out reports its own reason (after at most one more poll) before CloudFormation
 * reports the WaitCondition's timeout.
 */
export const WAIT_CONDITION_MARGIN_SECONDS = 15;

const AMI_ID = /^ami-[0-9a-f]+$/;

/** Whether a physical resource ID names an AMI (and not a result that never had one). */
export function isImageId(id: string | undefined): id is string {
  return id !== undefined && AMI_ID.test(id);
}

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/**
 * The name of the execution that runs one import. It is derived from the stack, the start
 * resource and its WaitCondition (whose ID carries the hash of what shapes the image), so
 * a duplicated or retried request finds the same execution, and an Update back to earlier
 * properties (a rollback) finds the execution that imported them. `attempt`, a request ID,
 * names a fresh execution when the earlier one failed or its AMI is gone.
 * Step Functions allows 80 characters of letters, digits, '-' and '_'.
 */
export function executionName(stackId: string, logicalResourceId: string, waitConditionId: string, attempt?: string): string {
  const base = `vmimport-${sha256(`${stackId}\n${logicalResourceId}\n${waitConditionId}`).slice(0, 40)}`;
  return attempt === undefined ? base : `${base}-${sha256(attempt).slice(0, 16)}`;
}

/**
 * ImportImage's idempotency token, derived from the execution so a retried start step
 * returns the same task instead of starting a second import. EC2 accepts at most 64
 * ASCII characters: a SHA-256 in hex is exactly that.
 */
export function clientToken(executionArn: string): string {
  return sha256(`cdk-vm-import\n${executionArn}`);
}

/** When an import's wait runs out: its timeout from now, never past the WaitCondition's 12 hours. */
export function importDeadline(nowMs: number, waitTimeoutSeconds: number, pollIntervalSeconds: number): Date {
  const latest = MAX_WAIT_CONDITION_SECONDS - pollIntervalSeconds - WAIT_CONDITION_MARGIN_SECONDS;
  return new Date(nowMs + Math.min(waitTimeoutSeconds, latest) * 1000);
}

/** A positive whole number of seconds from a wire string, or the default. */
export function wireSeconds(value: string | undefined, fallback: number): number {
  const n = Number(value);
  return Number.isInteger(n) && n > 0 ? n : fallback;
}

/** Reads the custom resource's properties, failing clearly on a malformed request. */
export function parseProperties(raw: Record<string, unknown> | undefined): WireProperties {
  if (!raw || typeof raw !== 'object') {
    throw new Error('The custom resource has no properties.');
  }
  const disks = raw.DiskContainers;
  if (!Array.isArray(disks) || disks.length === 0) {
    throw new Error('The custom resource property DiskContainers must be a non-empty list.');
  }
  if (typeof raw.RoleName !== 'string' || raw.RoleName.length === 0) {
    throw new Error('The custom resource property RoleName must be a non-empty string.');
  }
  checkRemovalPolicy(raw.RemovalPolicy);
  return raw as unknown as WireProperties;
}

/** Reads the result resource's properties, failing clearly on a malformed request. */
export function parseResultProperties(raw: Record<string, unknown> | undefined): WireResultProperties {
  if (!raw || typeof raw !== 'object' || typeof raw.ExecutionArn !== 'string' || raw.ExecutionArn.length === 0) {
    throw new Error('The custom resource property ExecutionArn must be a non-empty string.');
  }
  checkRemovalPolicy(raw.RemovalPolicy);
  return raw as unknown as WireResultProperties;
}

function checkRemovalPolicy(value: unknown): void {
  const removal = value ?? REMOVAL_RETAIN;
  if (removal !== REMOVAL_RETAIN && removal !== REMOVAL_DESTROY) {
    throw new Error(`The custom resource property RemovalPolicy must be '${REMOVAL_RETAIN}' or '${REMOVAL_DESTROY}', got '${String(removal)}'.`);
  }
}

/** Which import of which resource of which stack an AMI comes from. */
export interface ImportIdentity {
  readonly stackId: string;
  readonly logicalResourceId: string;
  readonly importTaskId: string;
}

/** The tags the engine puts on the AMI and its snapshots: the user's, then the library's own. */
export function resourceTags(props: Pick<WireProperties, 'Tags'>, identity: ImportIdentity): WireTag[] {
  return [
    ...userTags(props),
    { Key: TAG_STACK_ID, Value: identity.stackId },
    { Key: TAG_LOGICAL_ID, Value: identity.logicalResourceId },
    { Key: TAG_IMPORT_TASK_ID, Value: identity.importTaskId },
  ];
}

/** The user's tags alone (stack and Tags.of() tags included): what an Update re-applies. */
export function userTags(props: Pick<WireProperties, 'Tags'>): WireTag[] {
  return (props.Tags ?? []).map((t) => ({ Key: t.Key, Value: t.Value }));
}

/** Tag keys present in the old properties and absent from the new. */
export function removedTagKeys(oldProps: Pick<WireProperties, 'Tags'>, newProps: Pick<WireProperties, 'Tags'>): string[] {
  const kept = new Set((newProps.Tags ?? []).map((t) => t.Key));
  return (oldProps.Tags ?? []).map((t) => t.Key).filter((k) => !kept.has(k));
}

/** The ImportImage request for these properties, from the execution of this name. */
export function importImageInput(props: WireProperties, token: string, stackId: string, execution: string): ImportImageCommandInput {
  const cd = props.ClientData;
  return {
    ClientToken: token,
    RoleName: props.RoleName,
    Description: props.Description,
    Encrypted: props.Encrypted === undefined ? undefined : props.Encrypted === 'true',
    KmsKeyId: props.KmsKeyId,
    LicenseType: props.LicenseType,
    UsageOperation: props.UsageOperation,
    Platform: props.Platform,
    BootMode: props.BootMode as ImportImageCommandInput['BootMode'],
    Architecture: props.Architecture,
    Hypervisor: props.Hypervisor,
    ClientData: cd && {
      Comment: cd.Comment,
      UploadStart: cd.UploadStart ? new Date(cd.UploadStart) : undefined,
      UploadEnd: cd.UploadEnd ? new Date(cd.UploadEnd) : undefined,
      UploadSize: cd.UploadSize ? Number(cd.UploadSize) : undefined,
    },
    LicenseSpecifications: props.LicenseConfigurationArns?.map((arn) => ({ LicenseConfigurationArn: arn })),
    DiskContainers: props.DiskContainers.map((d) => ({
      Format: d.Format,
      DeviceName: d.DeviceName,
      Description: d.Description,
      Url: d.Url,
      SnapshotId: d.SnapshotId,
      UserBucket: d.S3Bucket ? { S3Bucket: d.S3Bucket, S3Key: d.S3Key } : undefined,
    })),
    TagSpecifications: [{
      ResourceType: 'import-image-task',
      Tags: [
        ...(props.Tags ?? []).map((t) => ({ Key: t.Key, Value: t.Value })),
        { Key: TAG_STACK_ID, Value: stackId },
        { Key: TAG_EXECUTION, Value: execution },
      ],
    }],
  };
}

/**
 * Why an unencrypted import cannot go ahead where EBS encryption by default uses a customer
 * managed key (undefined when it can): its AMI would come out encrypted with a key that
 * none of this stack's roles is granted, so naming, sharing and launching it would fail.
 */
export function defaultEncryptionConflict(props: Pick<WireProperties, 'Encrypted'>, defaultKey: string | undefined): string | undefined {
  if (props.Encrypted === 'true' || defaultKey === undefined || /^(alias\/aws\/ebs|arn:[^:]+:kms:[^:]*:[^:]*:alias\/aws\/ebs)$/.test(defaultKey)) {
    return undefined;
  }
  return `EBS encryption by default is on in this account and Region with the key ${defaultKey}, so this import, set 'encrypted: false', ` +
    'would make an AMI and snapshots encrypted with that key, which this stack does not grant its roles: naming, sharing and launching ' +
    "it would fail. Remove 'encrypted: false' (the import is then encrypted with its own key, granted as needed), or pass that key as " +
    "'encryptionKey' with 'encrypted: true'.";
}

/** What an import task's state means. */
export type TaskOutcome =
  | { readonly kind: 'completed'; readonly imageId: string; readonly snapshotIds: string[] }
  | { readonly kind: 'running'; readonly status: string; readonly progress: string; readonly message: string }
  | { readonly kind: 'failed'; readonly message: string }
  | { readonly kind: 'missing' };

/** Classifies a task from DescribeImportImageTasks (undefined when EC2 no longer lists it). */
export function classifyTask(task: ImportImageTask | undefined): TaskOutcome {
  if (!task) {
    return { kind: 'missing' };
  }
  const status = task.Status ?? '';
  const message = task.StatusMessage ?? '';
  if (status === 'completed') {
    if (!task.ImageId) {
      return { kind: 'failed', message: `the task is completed but EC2 reported no ImageId${message ? ` (${message})` : ''}` };
    }
    const snapshotIds = (task.SnapshotDetails ?? []).map((s) => s.SnapshotId).filter((s): s is string => !!s);
    return { kind: 'completed', imageId: task.ImageId, snapshotIds };
  }
  if (status === 'deleted' || status === 'deleting') {
    return { kind: 'failed', message: message || `the task is ${status}` };
  }
  return { kind: 'running', status, progress: task.Progress ?? '0', message };
}

/** A one-line remedy for the failures users meet most, keyed by EC2's StatusMessage. */
const REMEDIES: ReadonlyArray<readonly [RegExp, string]> = [
  [/cancel/i, 'The import task was cancelled (by a user, or by this handler after its wait timed out).'],
  [/unknown os|missing os files/i, 'VM Import found no supported operating system on the boot disk: check the OS is on the supported list and that the first disk is the boot disk.'],
  [/unsupported kernel/i, 'The kernel version is not supported by VM Import: import an image with a supported kernel, or build the AMI from the disk with ImportSnapshot and RegisterImage.'],
  [/uefi|boot ?mode|bios/i, 'The boot mode does not match the image: set bootMode to BootMode.UEFI for a UEFI (GPT/ESP) disk or BootMode.LEGACY_BIOS for a BIOS/MBR disk.'],
  [/\bova\b/i, 'The OVA is not in a format VM Import reads: export it again as OVF 1.0 with stream-optimized VMDK disks, or import the VMDK directly.'],
  [/403|forbidden|access denied|unable to access|could not access/i, 'VM Import could not read the disk image: grant the import role s3:GetObject and s3:GetBucketLocation on the object, and kms:Decrypt on the bucket key when it is SSE-KMS.'],
  [/kms|key/i, 'The KMS key is not accessible to VM Import: keep the key enabled, and let the import role use it (kms:CreateGrant, Decrypt, DescribeKey, Encrypt, GenerateDataKey*, ReEncrypt*).'],
  [/service role|role|permission/i, "The import role is missing or lacks permissions: it must trust vmie.amazonaws.com with sts:ExternalId 'vmimport' and read the disk image."],
  [/disk validation|validation failed|unsupported.*format|format/i, 'The disk image failed validation: VM Import takes stream-optimized VMDK, fixed or dynamic VHD/VHDX, RAW and OVA; convert it with qemu-img.'],
];

export function remedyFor(statusMessage: string): string | undefined {
  return REMEDIES.find(([pattern]) => pattern.test(statusMessage))?.[1];
}

const ELLIPSIS = '…';

/** Cuts a message to at most `max` bytes of UTF-8, to fit CloudFormation's response. */
export function truncate(text: string, max: number = MAX_REASON_LENGTH): string {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= max) {
    return text;
  }
  // Decoding a cut multi-byte character yields U+FFFD: drop it.
  const head = bytes.subarray(0, max - Buffer.byteLength(ELLIPSIS)).toString('utf8').replace(/\uFFFD$/, '');
  return `${head}${ELLIPSIS}`;
}

/** The error a failed import reports, with EC2's StatusMessage first. */
export function failureReason(importTaskId: string, statusMessage: string): string {
  const remedy = remedyFor(statusMessage);
  return truncate(`VM import ${importTaskId} failed: ${statusMessage}${remedy ? ` Remedy: ${remedy}` : ''}`);
}

/** The error an import reports when its wait ran out. */
export function timeoutReason(importTaskId: string, waitedSeconds: number, progress: string, message: string): string {
  return truncate(
    `VM import ${importTaskId} did not finish within ${waitedSeconds} seconds and was cancelled; ` +
    `last progress ${progress}%, status message '${message}'. Raise the import's timeout, or import a smaller image.`,
  );
}

/** The error ImportImage returns while a new role has not yet propagated through IAM. */
export function isIamPropagationError(error: unknown): boolean {
  const message = error instanceof Error ? error.message : String(error);
  return /service role .* does not exist or does not have sufficient permissions/i.test(message);
}

/**
 * Whether ImportImage was refused because too many imports are running in the account
 * and Region. The quota's error code is not documented: any of these codes, or a message
 * about too many active tasks, means "wait and try again".
 */
export function isQuotaError(error: unknown): boolean {
  const name = error instanceof Error ? error.name : '';
  const message = error instanceof Error ? error.message : String(error);
  return /^(ResourceLimitExceeded|ResourceCountLimitExceeded|TaskLimitExceeded)$/.test(name)
    || /too many (active|concurrent|running|import)|(active|concurrent|running) (import )?tasks? (limit|quota)|maximum number of (active|concurrent|running)/i.test(message);
}

/** `DeleteSnapshot` while the snapshot's AMI is (still) registered. */
export function isSnapshotInUse(error: unknown): boolean {
  return error instanceof Error && error.name === 'InvalidSnapshot.InUse';
}

/** Errors that mean the thing to delete is already gone. */
export function isAlreadyGone(error: unknown): boolean {
  const name = error instanceof Error ? error.name : '';
  return /\.(NotFound|Unavailable)$/.test(name);
}

/** The next wait of a bounded exponential backoff, in milliseconds. */
export function backoffDelay(attempt: number, firstDelayMs: number, maxDelayMs: number): number {
  return Math.min(maxDelayMs, firstDelayMs * 2 ** attempt);
}

/** What the start resource does with the execution of its name that already exists. */
export type ExistingExecution = 'none' | 'running' | 'succeeded-image-present' | 'succeeded-image-gone' | 'ended-otherwise';

/**
 * Whether the start resource reuses an existing execution, starts one that only signals the
 * new WaitCondition with the earlier execution's AMI ('resignal'), or starts an import.
 * `signalStands` tells whether the WaitCondition the earlier execution signalled still
 * stands (see signalStillStands); it matters only for a finished import.
 */
export function reuseExecution(existing: ExistingExecution, signalStands: boolean): 'reuse' | 'resignal' | 'start' | 'start-fresh' {
  switch (existing) {
    case 'none':
      return 'start';
    case 'running':
      // A duplicate delivery: the running execution signals when it ends.
      return 'reuse';
    case 'succeeded-image-present':
      // The rollback of a failed update finds its WaitCondition standing; a revert, or a
      // redeploy after a rollback, makes a new one of the same logical ID, which nothing
      // would signal.
      return signalStands ? 'reuse' : 'resignal';
    case 'succeeded-image-gone':
    case 'ended-otherwise':
      // The earlier import failed, was stopped, or its AMI was destroyed: import again.
      return 'start-fresh';
  }
}

/**
 * The reason an execution's failure carries: a Lambda step's error arrives as a JSON
 * `Cause` with an `errorMessage`; any other error as text.
 */
export function causeMessage(error: string | undefined, cause: string | undefined): string {
  if (cause) {
    try {
      const parsed: unknown = JSON.parse(cause);
      if (parsed && typeof parsed === 'object' && typeof (parsed as { errorMessage?: unknown }).errorMessage === 'string') {
        return (parsed as { errorMessage: string }).errorMessage;
      }
    } catch {
      // not JSON: the cause is the message
    }
    return cause;
  }
  return error ?? 'unknown error';
}

/**
 * What a WaitCondition is, as CloudFormation itself reports it (never read from an error's
 * wording): 'waiting' for a signal, 'not-yet' created (its stack is still being created or
 * updated), or 'done' (signalled, failed, deleted, or its stack no longer changes).
 */
export type SignalTarget = 'waiting' | 'not-yet' | 'done';

/** Stack statuses in which CloudFormation may still create a resource of the template. */
const CREATING_STACK_STATUSES = new Set(['CREATE_IN_PROGRESS', 'UPDATE_IN_PROGRESS', 'REVIEW_IN_PROGRESS', 'IMPORT_IN_PROGRESS']);

/**
 * The WaitCondition's state from DescribeStackResource's `ResourceStatus` (undefined when
 * CloudFormation did not describe it) and, in that case, DescribeStacks' `StackStatus`
 * (undefined when the stack is gone). Only CREATE_IN_PROGRESS takes a signal.
 */
export function signalTarget(resourceStatus: string | undefined, stackStatus: string | undefined): SignalTarget {
  if (resourceStatus !== undefined) {
    return resourceStatus === 'CREATE_IN_PROGRESS' ? 'waiting' : 'done';
  }
  return stackStatus !== undefined && CREATING_STACK_STATUSES.has(stackStatus) ? 'not-yet' : 'done';
}

/**
 * Whether a WaitCondition that an earlier execution signalled still stands: only then may a
 * start request reuse that execution. Any other answer (absent, deleted, failed, still
 * waiting, unknown) means CloudFormation will wait for a signal that only a new execution
 * sends.
 */
export function signalStillStands(resourceStatus: string | undefined): boolean {
  return resourceStatus === 'CREATE_COMPLETE' || resourceStatus === 'UPDATE_COMPLETE';
}

/** One launch permission, in ModifyImageAttribute's terms. */
export interface LaunchPermission {
  readonly UserId?: string;
  readonly OrganizationArn?: string;
  readonly OrganizationalUnitArn?: string;
}

function permissionsOf(wire: WireLaunchPermissions | undefined): LaunchPermission[] {
  return [
    ...(wire?.UserIds ?? []).map((UserId) => ({ UserId })),
    ...(wire?.OrganizationArns ?? []).map((OrganizationArn) => ({ OrganizationArn })),
    ...(wire?.OrganizationalUnitArns ?? []).map((OrganizationalUnitArn) => ({ OrganizationalUnitArn })),
  ];
}

const permissionKey = (p: LaunchPermission): string => `${p.UserId ?? ''}|${p.OrganizationArn ?? ''}|${p.OrganizationalUnitArn ?? ''}`;

/**
 * The launch permissions to add and remove: add what is asked and not there; remove what
 * this resource asked for before, no longer asks for, and is there. A share someone added by
 * hand is never removed.
 */
export function launchPermissionChanges(
  desired: WireLaunchPermissions | undefined, previous: WireLaunchPermissions | undefined, current: LaunchPermission[],
): { add: LaunchPermission[]; remove: LaunchPermission[] } {
  const want = permissionsOf(desired);
  const wanted = new Set(want.map(permissionKey));
  const present = new Set(current.map(permissionKey));
  return {
    add: want.filter((p) => !present.has(permissionKey(p))),
    remove: permissionsOf(previous).filter((p) => !wanted.has(permissionKey(p)) && present.has(permissionKey(p))),
  };
}

/**
 * The properties that shape the image whose delivered value changed. With an unchanged
 * WaitCondition ID that means a deploy-time value (a parameter, an imported value) changed
 * while the template did not: the import cannot be redone in place.
 */
export function changedImageProperties(oldRaw: Record<string, unknown>, newRaw: Record<string, unknown>): string[] {
  return IMAGE_PROPERTIES.filter((key) => JSON.stringify(oldRaw[key] ?? null) !== JSON.stringify(newRaw[key] ?? null));
}

/**
 * CopyImage's idempotency token, derived from the execution like ImportImage's, so that a
 * retried copy step returns the same copy. At most 64 ASCII characters.
 */
export function copyClientToken(executionArn: string): string {
  return sha256(`cdk-vm-import copy\n${executionArn}`);
}

/** The library's own tags alone: what the imported AMI gets when it is only a step on the way to its named copy. */
export function libraryTags(identity: ImportIdentity): WireTag[] {
  return resourceTags({}, identity);
}

/** With ImageName: the copy the state machine makes of the imported AMI, with every tag. */
export function copyRequest(props: WireProperties, executionArn: string, importTaskId: string, tags: WireTag[]): CopyRequest | undefined {
  if (!props.ImageName) {
    return undefined;
  }
  const encrypted = props.Encrypted !== 'false';
  return {
    Name: props.ImageName,
    Description: props.ImageDescription ?? props.Description ?? `Imported by VM Import (${importTaskId})`,
    Encrypted: encrypted,
    // Without a key ImportImage used EBS's default key: the copy names no key either and gets the same default.
    KmsKeyId: encrypted ? props.KmsKeyId : undefined,
    ClientToken: copyClientToken(executionArn),
    Tags: tags,
  };
}

/** The error when the AMI name asked for is taken in the account and Region. */
export function nameTakenReason(name: string, imageId: string): string {
  return truncate(
    `'imageName' ${JSON.stringify(name)} is already the name of ${imageId} in this account and Region, and an AMI name is unique there. ` +
    `Choose another name, or deregister ${imageId}. An import that replaces an earlier one needs a new name too ` +
    '(such as one with a version): CloudFormation deletes the earlier AMI only after the new one exists.',
  );
}

/** The error when CopyImage ended without an AMI, with EC2's StateReason first. */
export function copyFailureReason(sourceImageId: string, name: string, copyImageId: string, state: string, message: string | undefined): string {
  return truncate(
    `The copy of the imported AMI ${sourceImageId} to the name ${JSON.stringify(name)} (${copyImageId}) is ${state}: ` +
    `${message || 'EC2 gave no reason'}. The imported AMI is kept or deleted with the import's removal policy when the stack rolls back.`,
  );
}

/** The error when the wait ran out during the copy. */
export function copyTimeoutReason(sourceImageId: string, name: string, copyImageId: string, waitedSeconds: number): string {
  return truncate(
    `The copy of the imported AMI ${sourceImageId} to the name ${JSON.stringify(name)} (${copyImageId}) did not finish within the ` +
    `import's timeout of ${waitedSeconds} seconds and was stopped; the timeout covers the import and the copy. Raise the timeout.`,
  );
}

// ------------------------------------------------------------------ the snapshot route

/** Whether the import takes the snapshot route (ImportSnapshot per disk, then RegisterImage). */
export function isSnapshotRoute(props: Pick<WireProperties, 'ImportMethod'>): boolean {
  return props.ImportMethod === METHOD_SNAPSHOTS;
}

/** ImportSnapshot's idempotency token for one disk, derived from ImportImage's token. At most 64 ASCII characters. */
export function snapshotClientToken(token: string, disk: number): string {
  return sha256(`${token}\nsnapshot ${disk}`);
}

/** The ImportSnapshot requests, one per disk, in order. */
export function importSnapshotInputs(props: WireProperties, token: string, stackId: string, execution: string): ImportSnapshotCommandInput[] {
  const image = importImageInput(props, token, stackId, execution);
  return props.DiskContainers.map((d, i) => ({
    ClientToken: snapshotClientToken(token, i),
    RoleName: props.RoleName,
    Description: d.Description ?? props.Description,
    Encrypted: image.Encrypted,
    KmsKeyId: props.KmsKeyId,
    ClientData: image.ClientData,
    DiskContainer: {
      Format: d.Format,
      Description: d.Description,
      Url: d.Url,
      UserBucket: d.S3Bucket ? { S3Bucket: d.S3Bucket, S3Key: d.S3Key } : undefined,
    },
    TagSpecifications: [{ ResourceType: 'import-snapshot-task', Tags: image.TagSpecifications?.[0]?.Tags }],
  }));
}

/** The device of each disk: as given, or /dev/xvda, /dev/xvdb, … (the root device first). */
export function snapshotDeviceNames(props: Pick<WireProperties, 'DiskContainers'>): string[] {
  return props.DiskContainers.map((d, i) => d.DeviceName ?? defaultDeviceName(i));
}

/** What one ImportSnapshot task's state means (a failed task is `deleted`, or on its way there). */
export function classifySnapshotTask(task: ImportSnapshotTask | undefined): TaskOutcome {
  if (!task) {
    return { kind: 'running', status: 'not listed yet', progress: '0', message: '' };
  }
  const detail = task.SnapshotTaskDetail;
  const status = detail?.Status ?? '';
  const message = detail?.StatusMessage ?? '';
  if (status === 'completed') {
    return detail?.SnapshotId
      ? { kind: 'completed', imageId: '', snapshotIds: [detail.SnapshotId] }
      : { kind: 'failed', message: `the task is completed but EC2 reported no SnapshotId${message ? ` (${message})` : ''}` };
  }
  if (status === 'deleted' || status === 'deleting') {
    return { kind: 'failed', message: message || `the task is ${status}` };
  }
  return { kind: 'running', status, progress: detail?.Progress ?? '0', message };
}

/** The error a failed snapshot task reports, with EC2's StatusMessage first. */
export function snapshotFailureReason(importTaskId: string, disk: number, statusMessage: string): string {
  const remedy = remedyFor(statusMessage);
  return truncate(`VM import ${importTaskId} (ImportSnapshot of disk ${disk + 1}) failed: ${statusMessage}${remedy ? ` Remedy: ${remedy}` : ''} ` +
    'The other disks\' tasks were cancelled.');
}

/** The RegisterImage request: every field set, none left to RegisterImage's defaults (i386, paravirtual). */
export function registerImageInput(props: WireProperties, snapshotIds: string[]): RegisterImageCommandInput {
  const devices = snapshotDeviceNames(props);
  return {
    Name: props.ImageName,
    Description: props.ImageDescription ?? props.Description,
    Architecture: (props.Architecture ?? 'x86_64') as RegisterImageCommandInput['Architecture'],
    VirtualizationType: 'hvm',
    RootDeviceName: devices[0],
    BlockDeviceMappings: snapshotIds.map((snapshotId, i) => ({
      DeviceName: devices[i],
      // Encryption comes from the snapshot (ImportSnapshot encrypted it): a mapping with a snapshot cannot set it.
      Ebs: { SnapshotId: snapshotId, DeleteOnTermination: true, VolumeType: 'gp3' },
    })),
    EnaSupport: true,
    BootMode: (props.BootMode ?? 'legacy-bios') as RegisterImageCommandInput['BootMode'],
    TpmSupport: props.TpmSupport as RegisterImageCommandInput['TpmSupport'],
    UefiData: props.UefiData,
    ImdsSupport: props.ImdsSupport as RegisterImageCommandInput['ImdsSupport'],
  };
}
