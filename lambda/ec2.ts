/**
 * The one module that talks to EC2. Throttling (RequestLimitExceeded) and 5xx errors are
 * retried by the SDK's standard retry strategy, configured here.
 */
import {
  CancelImportTaskCommand,
  CreateTagsCommand,
  DeleteTagsCommand,
  DeleteSnapshotCommand,
  DeregisterImageCommand,
  DescribeImageAttributeCommand,
  DescribeImagesCommand,
  ModifyImageAttributeCommand,
  DescribeImportImageTasksCommand,
  EC2Client,
  Image,
  ImportImageCommand,
  ImportImageCommandInput,
  ImportImageTask,
  ImportSnapshotCommand,
  ImportSnapshotCommandInput,
  DescribeImportSnapshotTasksCommand,
  ImportSnapshotTask,
  RegisterImageCommand,
  RegisterImageCommandInput,
  DescribeSnapshotsCommand,
  GetEbsDefaultKmsKeyIdCommand,
  GetEbsEncryptionByDefaultCommand,
  Snapshot,
  Tag,
} from '@aws-sdk/client-ec2';
import { backoffDelay, isAlreadyGone, isSnapshotInUse, LaunchPermission } from './decisions';
import { TAG_EXECUTION, TAG_IMPORT_TASK_ID, TAG_STACK_ID } from '../src/private/contract';

/** Attempts per call, the first included, for throttling and transient server errors. */
const MAX_ATTEMPTS = 8;

let client: EC2Client | undefined;

function ec2(): EC2Client {
  // The endpoint comes from the standard configuration (AWS_ENDPOINT_URL_EC2 included).
  client ??= new EC2Client({ maxAttempts: MAX_ATTEMPTS, retryMode: 'standard' });
  return client;
}

/**
 * The key EBS encryption by default uses in this account and Region, or undefined when it is
 * off: an unencrypted import's AMI comes out encrypted with it.
 */
export async function defaultEbsKey(): Promise<string | undefined> {
  const on = await ec2().send(new GetEbsEncryptionByDefaultCommand({}));
  if (!on.EbsEncryptionByDefault) {
    return undefined;
  }
  const key = await ec2().send(new GetEbsDefaultKmsKeyIdCommand({}));
  return key.KmsKeyId ?? 'alias/aws/ebs';
}

export async function importImage(input: ImportImageCommandInput): Promise<string> {
  const out = await ec2().send(new ImportImageCommand(input));
  if (!out.ImportTaskId) {
    throw new Error('ImportImage returned no ImportTaskId.');
  }
  return out.ImportTaskId;
}

export async function importSnapshot(input: ImportSnapshotCommandInput): Promise<string> {
  const out = await ec2().send(new ImportSnapshotCommand(input));
  if (!out.ImportTaskId) {
    throw new Error('ImportSnapshot returned no ImportTaskId.');
  }
  return out.ImportTaskId;
}

/** The snapshot tasks EC2 lists of these, by ID (a task just started may be missing). */
export async function describeImportSnapshotTasks(importTaskIds: string[]): Promise<Map<string, ImportSnapshotTask>> {
  const out = await ec2().send(new DescribeImportSnapshotTasksCommand({ ImportTaskIds: importTaskIds }));
  return new Map((out.ImportSnapshotTasks ?? []).filter((t) => t.ImportTaskId).map((t) => [t.ImportTaskId!, t]));
}

export async function registerImage(input: RegisterImageCommandInput): Promise<string> {
  const out = await ec2().send(new RegisterImageCommand(input));
  if (!out.ImageId) {
    throw new Error('RegisterImage returned no ImageId.');
  }
  return out.ImageId;
}

/** The snapshots of these IDs that still exist. */
export async function describeSnapshots(snapshotIds: string[]): Promise<Snapshot[]> {
  if (snapshotIds.length === 0) {
    return [];
  }
  try {
    const out = await ec2().send(new DescribeSnapshotsCommand({ SnapshotIds: snapshotIds }));
    return out.Snapshots ?? [];
  } catch (error) {
    if (isAlreadyGone(error) && snapshotIds.length > 1) {
      // One is gone: ask for each.
      return (await Promise.all(snapshotIds.map((id) => describeSnapshots([id])))).flat();
    }
    if (isAlreadyGone(error)) {
      return [];
    }
    throw error;
  }
}

/** The task, or undefined when EC2 no longer lists it (older than 7 days) or never knew it. */
export async function describeImportTask(importTaskId: string): Promise<ImportImageTask | undefined> {
  try {
    const out = await ec2().send(new DescribeImportImageTasksCommand({ ImportTaskIds: [importTaskId] }));
    return out.ImportImageTasks?.find((t) => t.ImportTaskId === importTaskId);
  } catch (error) {
    if (error instanceof Error && /^InvalidConversionTaskId/.test(error.name)) {
      return undefined;
    }
    throw error;
  }
}

/** The active image and snapshot import tasks tagged with this execution's name (see TAG_EXECUTION) and this stack's ID. */
export async function activeTasksOf(stackId: string, executionName: string): Promise<string[]> {
  const Filters = [
    { Name: `tag:${TAG_EXECUTION}`, Values: [executionName] },
    { Name: `tag:${TAG_STACK_ID}`, Values: [stackId] },
    { Name: 'task-state', Values: ['active'] },
  ];
  const images = await ec2().send(new DescribeImportImageTasksCommand({ Filters }));
  const snapshots = await ec2().send(new DescribeImportSnapshotTasksCommand({ Filters }));
  return [
    ...(images.ImportImageTasks ?? []).map((t) => t.ImportTaskId),
    ...(snapshots.ImportSnapshotTasks ?? []).map((t) => t.ImportTaskId),
  ].filter((id): id is string => !!id);
}

/** Cancels an active import task. EC2 refuses (a 400) when the task is no longer active. */
export async function cancelImportTask(importTaskId: string, reason: string): Promise<void> {
  await ec2().send(new CancelImportTaskCommand({ ImportTaskId: importTaskId, CancelReason: reason }));
}

export async function createTags(resourceIds: string[], tags: Tag[]): Promise<void> {
  if (resourceIds.length > 0 && tags.length > 0) {
    await ec2().send(new CreateTagsCommand({ Resources: resourceIds, Tags: tags }));
  }
}

export async function deleteTags(resourceIds: string[], keys: string[]): Promise<void> {
  if (resourceIds.length > 0 && keys.length > 0) {
    await ec2().send(new DeleteTagsCommand({ Resources: resourceIds, Tags: keys.map((Key) => ({ Key })) }));
  }
}

export async function describeImage(imageId: string): Promise<Image | undefined> {
  try {
    const out = await ec2().send(new DescribeImagesCommand({ ImageIds: [imageId] }));
    return out.Images?.find((i) => i.ImageId === imageId);
  } catch (error) {
    if (isAlreadyGone(error)) {
      return undefined;
    }
    throw error;
  }
}

/** This account's AMI of that name in this Region, if any: AMI names are unique there. */
export async function imageNamed(name: string): Promise<Image | undefined> {
  const out = await ec2().send(new DescribeImagesCommand({ Owners: ['self'], Filters: [{ Name: 'name', Values: [name] }] }));
  return out.Images?.find((i) => i.Name === name);
}

/**
 * The AMIs that carry this stack's tag and the import task's (the imported AMI and, with a
 * name, its copy, tagged as CopyImage creates it): found by their tags, so that a copy whose
 * ID no state recorded yet is found too.
 */
export async function imagesOfImport(stackId: string, importTaskId: string): Promise<Image[]> {
  const images: Image[] = [];
  let nextToken: string | undefined;
  do {
    const out = await ec2().send(new DescribeImagesCommand({
      Owners: ['self'],
      Filters: [{ Name: `tag:${TAG_STACK_ID}`, Values: [stackId] }, { Name: `tag:${TAG_IMPORT_TASK_ID}`, Values: [importTaskId] }],
      NextToken: nextToken,
    }));
    images.push(...out.Images ?? []);
    nextToken = out.NextToken;
  } while (nextToken);
  return images;
}

/** Deregisters an AMI; one that is already gone is not an error. */
export async function deregisterImage(imageId: string): Promise<void> {
  await ignoreGone(ec2().send(new DeregisterImageCommand({ ImageId: imageId })));
}

/**
 * Deletes a snapshot; one that is already gone is not an error. Right after its AMI is
 * deregistered EC2 may still answer `InvalidSnapshot.InUse` for a while: that is retried
 * with backoff for up to `inUseBudgetMs`.
 */
export async function deleteSnapshot(snapshotId: string, inUseBudgetMs: number): Promise<void> {
  const started = Date.now();
  for (let attempt = 0; ; attempt++) {
    try {
      await ignoreGone(ec2().send(new DeleteSnapshotCommand({ SnapshotId: snapshotId })));
      return;
    } catch (error) {
      const delay = backoffDelay(attempt, 1000, 20_000);
      if (!isSnapshotInUse(error) || Date.now() - started + delay > inUseBudgetMs) {
        throw error;
      }
      await sleep(delay);
    }
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function ignoreGone(call: Promise<unknown>): Promise<void> {
  try {
    await call;
  } catch (error) {
    if (!isAlreadyGone(error)) {
      throw error;
    }
  }
}

/** Whom the AMI is shared with. */
export async function describeLaunchPermissions(imageId: string): Promise<LaunchPermission[]> {
  const out = await ec2().send(new DescribeImageAttributeCommand({ ImageId: imageId, Attribute: 'launchPermission' }));
  return (out.LaunchPermissions ?? []).map((p) => ({
    UserId: p.UserId, OrganizationArn: p.OrganizationArn, OrganizationalUnitArn: p.OrganizationalUnitArn,
  }));
}

export async function modifyLaunchPermissions(imageId: string, add: LaunchPermission[], remove: LaunchPermission[]): Promise<void> {
  if (add.length > 0 || remove.length > 0) {
    await ec2().send(new ModifyImageAttributeCommand({
      ImageId: imageId,
      LaunchPermission: { Add: add.length > 0 ? add : undefined, Remove: remove.length > 0 ? remove : undefined },
    }));
  }
}

/** Requires IMDSv2 of instances launched from the AMI; EC2 cannot undo it. */
export async function requireImdsV2(imageId: string): Promise<void> {
  await ec2().send(new ModifyImageAttributeCommand({ ImageId: imageId, ImdsSupport: { Value: 'v2.0' } }));
}
