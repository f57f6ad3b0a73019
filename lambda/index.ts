/**
 * Entry points of the VM image import custom resource, for aws-cdk-lib's Provider
 * framework: `onEvent` starts, updates and deletes imports; `isComplete` polls a task
 * until EC2 finishes it. The decisions live in ./decisions; EC2 calls in ./ec2.
 *
 * The event carries a pre-signed ResponseURL: it is never logged.
 */
import {
  backoffDelay,
  classifyTask,
  clientToken,
  DEFAULT_WAIT_TIMEOUT_SECONDS,
  deadlinePassed,
  deleteAction,
  failureReason,
  imageDefinitionHash,
  importImageInput,
  isIamPropagationError,
  isImportTaskId,
  parseProperties,
  removedTagKeys,
  resourceTags,
  timeoutReason,
  truncate,
  updateNeedsNewImport,
} from './decisions';
import * as ec2 from './ec2';
import {
  ATTR_IMAGE_ID,
  ATTR_IMPORT_TASK_ID,
  ATTR_SNAPSHOT_IDS,
  ATTR_STARTED_AT,
  TAG_IMPORT_TASK_ID,
  TAG_STACK_ID,
  WireProperties,
} from '../src/private/contract';

/** The part of the Provider framework's request the handler reads. */
export interface HandlerEvent {
  readonly RequestType: 'Create' | 'Update' | 'Delete';
  readonly RequestId: string;
  readonly StackId: string;
  readonly LogicalResourceId: string;
  readonly PhysicalResourceId?: string;
  readonly ResourceProperties: Record<string, unknown>;
  readonly OldResourceProperties?: Record<string, unknown>;
  /** isComplete only: what onEvent returned. */
  readonly Data?: Record<string, string>;
}

export interface OnEventResult {
  readonly PhysicalResourceId: string;
  readonly Data?: Record<string, string>;
}

export interface IsCompleteResult {
  readonly IsComplete: boolean;
  readonly Data?: Record<string, string>;
}

function log(fields: Record<string, unknown>): void {
  console.log(JSON.stringify(fields));
}

function describeEvent(event: HandlerEvent): Record<string, unknown> {
  return {
    requestType: event.RequestType,
    logicalResourceId: event.LogicalResourceId,
    physicalResourceId: event.PhysicalResourceId,
  };
}

export async function onEvent(event: HandlerEvent): Promise<OnEventResult> {
  log({ message: 'onEvent', ...describeEvent(event) });
  const props = parseProperties(event.ResourceProperties);
  switch (event.RequestType) {
    case 'Create':
      return startImport(event, props);
    case 'Update':
      if (updateNeedsNewImport(event.OldResourceProperties ?? {}, event.ResourceProperties)) {
        return (await earlierImport(event)) ?? startImport(event, props);
      }
      // Only tags, the removal policy or the wait changed: isComplete re-tags in place.
      return { PhysicalResourceId: event.PhysicalResourceId!, Data: { [ATTR_IMPORT_TASK_ID]: event.PhysicalResourceId! } };
    case 'Delete':
      await deleteImport(event, props);
      return { PhysicalResourceId: event.PhysicalResourceId! };
  }
}

/**
 * An Update back to properties this resource had before (the rollback of a failed update,
 * or a change undone) takes the AMI it imported then, when it still exists, instead of
 * importing the same disks again.
 */
async function earlierImport(event: HandlerEvent): Promise<OnEventResult | undefined> {
  const image = await ec2.findEarlierImport(event.StackId, event.LogicalResourceId, imageDefinitionHash(event.ResourceProperties));
  const importTaskId = image?.Tags?.find((t) => t.Key === TAG_IMPORT_TASK_ID)?.Value;
  if (!isImportTaskId(importTaskId)) {
    return undefined;
  }
  log({ message: 'reusing the earlier import of these properties', importTaskId, imageId: image?.ImageId });
  return { PhysicalResourceId: importTaskId, Data: { [ATTR_IMPORT_TASK_ID]: importTaskId } };
}

/** Milliseconds ImportImage is retried while a new import role propagates through IAM. */
function iamPropagationBudgetMs(): number {
  const fromEnv = Number(process.env.VM_IMPORT_IAM_RETRY_SECONDS);
  return (Number.isFinite(fromEnv) && fromEnv >= 0 ? fromEnv : 120) * 1000;
}

async function startImport(event: HandlerEvent, props: WireProperties): Promise<OnEventResult> {
  const token = clientToken(event.StackId, event.LogicalResourceId, event.RequestId);
  const input = importImageInput(props, token, event.StackId);
  const budgetMs = iamPropagationBudgetMs();
  const started = Date.now();
  for (let attempt = 0; ; attempt++) {
    try {
      const importTaskId = await ec2.importImage(input);
      log({ message: 'import started', importTaskId, attempts: attempt + 1 });
      return {
        PhysicalResourceId: importTaskId,
        Data: { [ATTR_IMPORT_TASK_ID]: importTaskId, [ATTR_STARTED_AT]: String(started) },
      };
    } catch (error) {
      if (!isIamPropagationError(error)) {
        throw error;
      }
      const delay = backoffDelay(attempt, 1000, 15_000);
      if (Date.now() - started + delay > budgetMs) {
        throw new Error(truncate(
          `ImportImage kept failing for ${Math.round((Date.now() - started) / 1000)} s: ${(error as Error).message} ` +
          `Check that the role '${props.RoleName}' exists, trusts vmie.amazonaws.com with sts:ExternalId 'vmimport', ` +
          'can read the disk image (s3:GetObject, s3:GetBucketLocation, s3:ListBucket) and use the KMS key, ' +
          'and that the caller may iam:PassRole it.',
        ));
      }
      log({ message: 'import role not usable yet, retrying', attempt: attempt + 1, delayMs: delay });
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

export async function isComplete(event: HandlerEvent): Promise<IsCompleteResult> {
  if (event.RequestType === 'Delete') {
    return { IsComplete: true };
  }
  const props = parseProperties(event.ResourceProperties);
  const importTaskId = event.PhysicalResourceId!;
  const task = await ec2.describeImportTask(importTaskId);
  const outcome = classifyTask(task);
  switch (outcome.kind) {
    case 'completed':
      return finish(event, props, importTaskId, outcome.imageId, outcome.snapshotIds);
    case 'failed':
      log({ message: 'import failed', importTaskId, statusMessage: outcome.message });
      throw new Error(failureReason(importTaskId, outcome.message));
    case 'missing': {
      // An in-place update of an import older than EC2's 7-day listing window.
      const image = await ec2.findImageByImportTask(importTaskId);
      if (!image?.ImageId) {
        throw new Error(`VM import ${importTaskId} is no longer listed by EC2 and no AMI tagged ${importTaskId} was found.`);
      }
      const snapshotIds = (image.BlockDeviceMappings ?? []).map((m) => m.Ebs?.SnapshotId).filter((s): s is string => !!s);
      return finish(event, props, importTaskId, image.ImageId, snapshotIds);
    }
    case 'running': {
      log({ message: 'import progress', importTaskId, status: outcome.status, progress: outcome.progress, statusMessage: outcome.message });
      const startedAt = Number(event.Data?.[ATTR_STARTED_AT]);
      const waitSeconds = Number(props.WaitTimeoutSeconds ?? DEFAULT_WAIT_TIMEOUT_SECONDS);
      if (Number.isFinite(startedAt) && deadlinePassed(startedAt, Date.now(), waitSeconds)) {
        try {
          await ec2.cancelImportTask(importTaskId, `cdk-vm-import: wait of ${waitSeconds} s exceeded`);
        } catch (error) {
          // EC2 refuses to cancel a task that ended since it was described: report how it ended.
          const now = classifyTask(await ec2.describeImportTask(importTaskId));
          if (now.kind === 'completed') {
            return finish(event, props, importTaskId, now.imageId, now.snapshotIds);
          }
          if (now.kind === 'failed') {
            throw new Error(failureReason(importTaskId, now.message));
          }
          throw error;
        }
        throw new Error(timeoutReason(importTaskId, waitSeconds, outcome.progress, outcome.message));
      }
      return { IsComplete: false };
    }
  }
}

async function finish(
  event: HandlerEvent, props: WireProperties, importTaskId: string, imageId: string, snapshotIds: string[],
): Promise<IsCompleteResult> {
  const resources = [imageId, ...snapshotIds];
  await ec2.createTags(resources, resourceTags(props, {
    stackId: event.StackId,
    logicalResourceId: event.LogicalResourceId,
    importTaskId,
    imageHash: imageDefinitionHash(event.ResourceProperties),
  }));
  if (event.RequestType === 'Update' && event.OldResourceProperties) {
    await ec2.deleteTags(resources, removedTagKeys(parseProperties(event.OldResourceProperties), props));
  }
  log({ message: 'import completed', importTaskId, imageId, snapshotIds });
  return {
    IsComplete: true,
    Data: {
      [ATTR_IMAGE_ID]: imageId,
      [ATTR_SNAPSHOT_IDS]: snapshotIds.join(','),
      [ATTR_IMPORT_TASK_ID]: importTaskId,
    },
  };
}

async function deleteImport(event: HandlerEvent, props: WireProperties): Promise<void> {
  const importTaskId = event.PhysicalResourceId;
  if (!isImportTaskId(importTaskId)) {
    log({ message: 'no import was started for this resource; nothing to delete' });
    return;
  }
  const task = await ec2.describeImportTask(importTaskId);
  const outcome = classifyTask(task);
  const action = deleteAction(outcome, props.RemovalPolicy);
  log({ message: 'delete', importTaskId, outcome: outcome.kind, action });
  switch (action) {
    case 'nothing':
      return;
    case 'cancel':
      return cancelOrDestroy(importTaskId, props, event.StackId);
    case 'destroy':
      if (outcome.kind === 'completed') {
        await destroyImage(importTaskId, event.StackId, outcome.imageId, outcome.snapshotIds);
      }
      return;
    case 'find-and-destroy': {
      const image = await ec2.findImageByImportTask(importTaskId);
      await destroyImage(importTaskId, event.StackId, image?.ImageId, []);
      return;
    }
  }
}

/** Cancels an active task; if it finished in the meantime, applies the removal policy instead. */
async function cancelOrDestroy(importTaskId: string, props: WireProperties, stackId: string): Promise<void> {
  try {
    await ec2.cancelImportTask(importTaskId, 'cdk-vm-import: the resource was deleted');
  } catch (error) {
    const outcome = classifyTask(await ec2.describeImportTask(importTaskId));
    if (outcome.kind === 'failed') {
      return; // already cancelled or failed: nothing is left running
    }
    if (outcome.kind === 'completed') {
      if (deleteAction(outcome, props.RemovalPolicy) === 'destroy') {
        await destroyImage(importTaskId, stackId, outcome.imageId, outcome.snapshotIds);
      }
      return;
    }
    throw error;
  }
}

/**
 * Deregisters the AMI, then deletes every snapshot it had; any of them may already be gone.
 * The handler's destructive permissions require this stack's tag, which it puts on an
 * import's outputs when it sees the import complete. An import that finished unobserved
 * (its wait failed first) has untagged outputs, so they are tagged here before deletion:
 * these IDs come from this stack's own import task, or from its tags.
 */
async function destroyImage(importTaskId: string, stackId: string, imageId: string | undefined, taskSnapshots: string[]): Promise<void> {
  const snapshots = new Set(taskSnapshots);
  const image = imageId ? await ec2.describeImage(imageId) : undefined;
  for (const mapping of image?.BlockDeviceMappings ?? []) {
    if (mapping.Ebs?.SnapshotId) {
      snapshots.add(mapping.Ebs.SnapshotId);
    }
  }
  for (const id of await ec2.findSnapshotsByImportTask(importTaskId)) {
    snapshots.add(id);
  }
  const stackTag = [{ Key: TAG_STACK_ID, Value: stackId }];
  if (image?.ImageId) {
    await ec2.tagEach([image.ImageId], stackTag);
    await ec2.deregisterImage(image.ImageId);
  }
  await ec2.tagEach([...snapshots], stackTag);
  for (const snapshotId of snapshots) {
    await ec2.deleteSnapshot(snapshotId);
  }
  log({ message: 'destroyed', importTaskId, imageId: image?.ImageId, snapshotIds: [...snapshots] });
}
