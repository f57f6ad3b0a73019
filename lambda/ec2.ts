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
  DescribeImagesCommand,
  DescribeImportImageTasksCommand,
  DescribeSnapshotsCommand,
  EC2Client,
  Image,
  ImportImageCommand,
  ImportImageCommandInput,
  ImportImageTask,
  Tag,
} from '@aws-sdk/client-ec2';
import { isAlreadyGone } from './decisions';
import { TAG_IMAGE_HASH, TAG_IMPORT_TASK_ID, TAG_LOGICAL_ID, TAG_STACK_ID } from '../src/private/contract';

/** Attempts per call, the first included, for throttling and transient server errors. */
const MAX_ATTEMPTS = 8;

let client: EC2Client | undefined;

function ec2(): EC2Client {
  // The endpoint comes from the standard configuration (AWS_ENDPOINT_URL_EC2 included).
  client ??= new EC2Client({ maxAttempts: MAX_ATTEMPTS, retryMode: 'standard' });
  return client;
}

export async function importImage(input: ImportImageCommandInput): Promise<string> {
  const out = await ec2().send(new ImportImageCommand(input));
  if (!out.ImportTaskId) {
    throw new Error('ImportImage returned no ImportTaskId.');
  }
  return out.ImportTaskId;
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

export async function cancelImportTask(importTaskId: string, reason: string): Promise<void> {
  await ec2().send(new CancelImportTaskCommand({ ImportTaskId: importTaskId, CancelReason: reason }));
}

export async function createTags(resourceIds: string[], tags: Tag[]): Promise<void> {
  if (resourceIds.length > 0 && tags.length > 0) {
    await ec2().send(new CreateTagsCommand({ Resources: resourceIds, Tags: tags }));
  }
}

/** Tags each resource on its own, skipping those that are already gone. */
export async function tagEach(resourceIds: string[], tags: Tag[]): Promise<void> {
  for (const id of resourceIds) {
    await ignoreGone(ec2().send(new CreateTagsCommand({ Resources: [id], Tags: tags })));
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

/** The AMI this account owns that the handler tagged with the import task ID. */
export async function findImageByImportTask(importTaskId: string): Promise<Image | undefined> {
  const out = await ec2().send(new DescribeImagesCommand({
    Owners: ['self'],
    Filters: [{ Name: `tag:${TAG_IMPORT_TASK_ID}`, Values: [importTaskId] }],
  }));
  return out.Images?.[0];
}

/** An AMI this handler imported earlier for the same resource of the same stack with the same image properties. */
export async function findEarlierImport(stackId: string, logicalResourceId: string, imageHash: string): Promise<Image | undefined> {
  const out = await ec2().send(new DescribeImagesCommand({
    Owners: ['self'],
    Filters: [
      { Name: `tag:${TAG_STACK_ID}`, Values: [stackId] },
      { Name: `tag:${TAG_LOGICAL_ID}`, Values: [logicalResourceId] },
      { Name: `tag:${TAG_IMAGE_HASH}`, Values: [imageHash] },
    ],
  }));
  return out.Images?.find((i) => i.State === undefined || i.State === 'available');
}

/** Snapshots this account owns that the handler tagged with the import task ID. */
export async function findSnapshotsByImportTask(importTaskId: string): Promise<string[]> {
  const out = await ec2().send(new DescribeSnapshotsCommand({
    OwnerIds: ['self'],
    Filters: [{ Name: `tag:${TAG_IMPORT_TASK_ID}`, Values: [importTaskId] }],
  }));
  return (out.Snapshots ?? []).map((s) => s.SnapshotId).filter((s): s is string => !!s);
}

/** Deregisters an AMI; one that is already gone is not an error. */
export async function deregisterImage(imageId: string): Promise<void> {
  await ignoreGone(ec2().send(new DeregisterImageCommand({ ImageId: imageId })));
}

/** Deletes a snapshot; one that is already gone is not an error. */
export async function deleteSnapshot(snapshotId: string): Promise<void> {
  await ignoreGone(ec2().send(new DeleteSnapshotCommand({ SnapshotId: snapshotId })));
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
