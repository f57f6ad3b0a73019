/**
 * The handler's decisions, free of I/O: what a custom resource event asks for, what an
 * import task's state means, and what to tell CloudFormation. Table-tested.
 */
import { createHash } from 'crypto';
import type { ImportImageCommandInput, ImportImageTask, Tag } from '@aws-sdk/client-ec2';
import {
  REMOVAL_DESTROY,
  REMOVAL_RETAIN,
  TAG_IMAGE_HASH,
  TAG_IMPORT_TASK_ID,
  TAG_LOGICAL_ID,
  TAG_STACK_ID,
  WireProperties,
} from '../src/private/contract';

/** CloudFormation rejects a response over 4096 bytes; leave room for the rest of it. */
export const MAX_REASON_LENGTH = 3000;

/** How long an import may wait when the resource does not say. */
export const DEFAULT_WAIT_TIMEOUT_SECONDS = 55 * 60;

const IMPORT_TASK_ID = /^import-ami-[0-9a-z]+$/;

/** Whether a physical resource ID names an import task (and not a Create that never started). */
export function isImportTaskId(id: string | undefined): id is string {
  return id !== undefined && IMPORT_TASK_ID.test(id);
}

/**
 * ImportImage's idempotency token, derived from the CloudFormation request so a retried
 * or duplicated Create returns the same task instead of starting a second import.
 * EC2 accepts at most 64 ASCII characters: a SHA-256 in hex is exactly that.
 */
export function clientToken(stackId: string, logicalResourceId: string, requestId: string): string {
  return createHash('sha256').update(`${stackId}\n${logicalResourceId}\n${requestId}`).digest('hex');
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
  const removal = raw.RemovalPolicy ?? REMOVAL_RETAIN;
  if (removal !== REMOVAL_RETAIN && removal !== REMOVAL_DESTROY) {
    throw new Error(`The custom resource property RemovalPolicy must be '${REMOVAL_RETAIN}' or '${REMOVAL_DESTROY}', got '${String(removal)}'.`);
  }
  return raw as unknown as WireProperties;
}

/** Which import of which resource of which stack an AMI comes from. */
export interface ImportIdentity {
  readonly stackId: string;
  readonly logicalResourceId: string;
  readonly importTaskId: string;
  /** `imageDefinitionHash` of the properties the import was started with. */
  readonly imageHash: string;
}

/** The tags the handler puts on the AMI and its snapshots. */
export function resourceTags(props: WireProperties, identity: ImportIdentity): Tag[] {
  return [
    ...(props.Tags ?? []).map((t) => ({ Key: t.Key, Value: t.Value })),
    { Key: TAG_STACK_ID, Value: identity.stackId },
    { Key: TAG_LOGICAL_ID, Value: identity.logicalResourceId },
    { Key: TAG_IMPORT_TASK_ID, Value: identity.importTaskId },
    { Key: TAG_IMAGE_HASH, Value: identity.imageHash },
  ];
}

/** Tag keys present in the old properties and absent from the new. */
export function removedTagKeys(oldProps: WireProperties, newProps: WireProperties): string[] {
  const kept = new Set((newProps.Tags ?? []).map((t) => t.Key));
  return (oldProps.Tags ?? []).map((t) => t.Key).filter((k) => !kept.has(k));
}

/** The ImportImage request for these properties. */
export function importImageInput(props: WireProperties, token: string, stackId: string): ImportImageCommandInput {
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
      Tags: [...(props.Tags ?? []).map((t) => ({ Key: t.Key, Value: t.Value })), { Key: TAG_STACK_ID, Value: stackId }],
    }],
  };
}

/** The properties whose change does not change the image: tags, removal policy and wait budget. */
const IN_PLACE_PROPERTIES = new Set(['ServiceToken', 'Tags', 'RemovalPolicy', 'WaitTimeoutSeconds']);

/** The properties that shape the image, without those an in-place update may change. */
function imageDefinition(raw: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(raw).filter(([key]) => !IN_PLACE_PROPERTIES.has(key)));
}

/** A hash of the properties that shape the image: equal for equal images, whatever the key order. */
export function imageDefinitionHash(raw: Record<string, unknown>): string {
  return createHash('sha256').update(canonicalJson(imageDefinition(raw)) ?? '').digest('hex');
}

/** Whether an Update must start a new import (and so a new physical resource). */
export function updateNeedsNewImport(oldRaw: Record<string, unknown>, newRaw: Record<string, unknown>): boolean {
  return canonicalJson(imageDefinition(oldRaw)) !== canonicalJson(imageDefinition(newRaw));
}

/** JSON with object keys sorted: the order of keys is not a change (the order of list items is). */
function canonicalJson(value: unknown): string | undefined {
  return JSON.stringify(value, (_key, v: unknown) => (v !== null && typeof v === 'object' && !Array.isArray(v)
    ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
    : v));
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

/** Whether the import's own deadline has passed. */
export function deadlinePassed(startedAtMs: number, nowMs: number, waitTimeoutSeconds: number): boolean {
  return nowMs - startedAtMs >= waitTimeoutSeconds * 1000;
}

/** What Delete must do for a task in this state. */
export type DeleteAction = 'cancel' | 'destroy' | 'find-and-destroy' | 'nothing';

export function deleteAction(outcome: TaskOutcome, removalPolicy: string | undefined): DeleteAction {
  const destroy = removalPolicy === REMOVAL_DESTROY;
  switch (outcome.kind) {
    case 'running':
      return 'cancel';
    case 'completed':
      return destroy ? 'destroy' : 'nothing';
    case 'missing':
      // Older than EC2's 7-day listing window: find the AMI by the tag the handler put on it.
      return destroy ? 'find-and-destroy' : 'nothing';
    case 'failed':
      return 'nothing';
  }
}

/** The error ImportImage returns while a new role has not yet propagated through IAM. */
export function isIamPropagationError(error: unknown): boolean {
  const message = error instanceof Error ? error.message : String(error);
  return /service role .* does not exist or does not have sufficient permissions/i.test(message);
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
