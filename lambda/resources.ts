/**
 * The two custom resources of an import. The start resource starts the engine's execution
 * and returns at once (its physical ID is the execution's ARN); the result resource, after
 * the WaitCondition, reads how the execution ended and returns the AMI (its physical ID is
 * the AMI's ID). Each resource acts only on what it recorded: the execution by its ARN,
 * the task by the execution's own history, the AMI by its ID and the snapshots by the
 * AMI's block device mappings and the execution's output.
 */
import * as cfn from './cloudformation';
import {
  classifySnapshotTask,
  classifyTask,
  clientToken,
  DEFAULT_POLL_INTERVAL_SECONDS,
  DEFAULT_WAIT_TIMEOUT_SECONDS,
  causeMessage,
  changedImageProperties,
  executionName,
  ExistingExecution,
  importDeadline,
  isImageId,
  launchPermissionChanges,
  parseProperties,
  parseResultProperties,
  removedTagKeys,
  resourceTags,
  reuseExecution,
  signalStillStands,
  userTags,
  wireSeconds,
} from './decisions';
import * as ec2 from './ec2';
import { log } from './log';
import * as sfn from './sfn';
import {
  ATTR_EXECUTION_ARN,
  ATTR_IMAGE_ID,
  ATTR_IMPORT_TASK_ID,
  ATTR_SNAPSHOT_IDS,
  ExecutionInput,
  REMOVAL_DESTROY,
  TAG_STACK_ID,
  WireProperties,
  WireResultProperties,
} from '../src/private/contract';

/** The part of a CloudFormation custom resource request the handler reads. */
export interface CustomResourceEvent {
  readonly RequestType: 'Create' | 'Update' | 'Delete';
  readonly RequestId: string;
  readonly StackId: string;
  readonly LogicalResourceId: string;
  readonly ResourceType: string;
  readonly PhysicalResourceId?: string;
  readonly ResourceProperties: Record<string, unknown>;
  readonly OldResourceProperties?: Record<string, unknown>;
}

export interface ResourceAnswer {
  readonly PhysicalResourceId: string;
  readonly Data?: Record<string, string>;
}

/** How long the result resource waits for an execution that has signalled but not yet ended. */
const SETTLE_BUDGET_MS = 120_000;
/** How long a Delete waits for EC2 to release a snapshot of a just-deregistered AMI. */
const SNAPSHOT_IN_USE_BUDGET_MS = 300_000;
/** The state machine's start step (engine.ts). */
const START_STATE = 'StartImport';
/** Lookups of a task the stopped start step could not record: 2, 4 and 8 s apart, for EC2 to list a new task. */
const UNRECORDED_LOOKUPS = 4;
/** How long a Delete waits for the state machine to tag what a stopped execution's task made. */
const ADOPT_BUDGET_MS = 120_000;
/** How long a Delete waits for the execution to tag an AMI that completed while it was being cancelled. */
const TAG_WAIT_BUDGET_MS = 180_000;

// ------------------------------------------------------------------ start resource

export async function startResource(event: CustomResourceEvent): Promise<ResourceAnswer> {
  const props = parseProperties(event.ResourceProperties);
  switch (event.RequestType) {
    case 'Create':
      return begin(event, props);
    case 'Update': {
      const old = event.OldResourceProperties ?? {};
      if (old.WaitConditionId === props.WaitConditionId && old.StateMachineArn === props.StateMachineArn && event.PhysicalResourceId) {
        const changed = changedImageProperties(old, event.ResourceProperties);
        if (changed.length > 0) {
          throw new Error(
            `The properties that shape the image changed at deploy time (${changed.join(', ')}) while the synthesized template did not, ` +
            'as when they come from a CfnParameter or another deploy-time value. A VmImageImport imports again only when its synthesized ' +
            'properties change (they name its WaitCondition, which CloudFormation cannot update): set these values in the CDK app.',
          );
        }
        // Nothing that shapes the image changed: the import (running or done) stays.
        return { PhysicalResourceId: event.PhysicalResourceId, Data: { [ATTR_EXECUTION_ARN]: event.PhysicalResourceId } };
      }
      return begin(event, props);
    }
    case 'Delete':
      await endStart(event, props);
      return { PhysicalResourceId: event.PhysicalResourceId ?? '' };
  }
}

async function existing(arn: string): Promise<ExistingExecution> {
  const execution = await sfn.describeExecution(arn);
  if (!execution) {
    return 'none';
  }
  if (execution.status === 'RUNNING') {
    return 'running';
  }
  if (execution.status === 'SUCCEEDED') {
    const imageId = sfn.outcomeOf(execution)?.ImageId;
    return imageId && await ec2.describeImage(imageId) ? 'succeeded-image-present' : 'succeeded-image-gone';
  }
  return 'ended-otherwise';
}

async function begin(event: CustomResourceEvent, props: WireProperties): Promise<ResourceAnswer> {
  const stateMachineArn = props.StateMachineArn;
  if (!stateMachineArn || !props.WaitConditionId) {
    throw new Error('The custom resource properties StateMachineArn and WaitConditionId must be set.');
  }
  const waitConditionId = props.WaitConditionId;
  const decide = async (arn: string) => {
    const found = await existing(arn);
    // Only a finished import asks whether the WaitCondition it signalled still stands.
    const stands = found === 'succeeded-image-present' && signalStillStands(await cfn.resourceStatus(event.StackId, waitConditionId));
    return reuseExecution(found, stands);
  };
  const earlier = sfn.executionArn(stateMachineArn, executionName(event.StackId, event.LogicalResourceId, waitConditionId));
  let decision = await decide(earlier);
  let name = executionName(event.StackId, event.LogicalResourceId, waitConditionId);
  let reuseOf: string | undefined;
  if (decision === 'resignal') {
    // This request's own execution, which signals the new WaitCondition with the AMI already made.
    reuseOf = earlier;
    name = executionName(event.StackId, event.LogicalResourceId, waitConditionId, event.RequestId);
  } else if (decision === 'start-fresh') {
    // The earlier import of these properties failed or its AMI is gone: this request's own attempt.
    name = executionName(event.StackId, event.LogicalResourceId, waitConditionId, event.RequestId);
    decision = await decide(sfn.executionArn(stateMachineArn, name));
    if (decision === 'start-fresh') {
      throw new Error(`The import's execution ${name} for this request already ended without an AMI; deploy again to retry.`);
    }
  }
  const arn = sfn.executionArn(stateMachineArn, name);
  if (decision === 'reuse') {
    log({ message: 'reusing the execution of these properties', executionArn: arn });
    return { PhysicalResourceId: arn, Data: { [ATTR_EXECUTION_ARN]: arn } };
  }
  const pollSeconds = wireSeconds(props.PollIntervalSeconds, DEFAULT_POLL_INTERVAL_SECONDS);
  const waitSeconds = wireSeconds(props.WaitTimeoutSeconds, DEFAULT_WAIT_TIMEOUT_SECONDS);
  const { ServiceToken: _token, ...properties } = event.ResourceProperties as Record<string, unknown> & { ServiceToken?: unknown };
  const input: ExecutionInput = {
    StackId: event.StackId,
    LogicalResourceId: event.LogicalResourceId,
    WaitConditionId: waitConditionId,
    ClientToken: clientToken(arn),
    Deadline: importDeadline(Date.now(), waitSeconds, pollSeconds).toISOString(),
    PollIntervalSeconds: pollSeconds,
    Properties: properties as unknown as WireProperties,
    ReuseExecutionArn: reuseOf,
  };
  const started = await sfn.startExecution(stateMachineArn, name, input);
  log({ message: reuseOf ? 'execution started to signal the new WaitCondition with the earlier AMI' : 'execution started', executionArn: started, reused: reuseOf });
  return { PhysicalResourceId: started, Data: { [ATTR_EXECUTION_ARN]: started } };
}

/**
 * Deleting the start resource (a rollback, a replaced import, or the stack's deletion) ends
 * what its execution still runs. An import that completed without a result resource to own
 * it (the stack rolled back meanwhile) gets the removal policy here.
 */
async function endStart(event: CustomResourceEvent, props: WireProperties): Promise<void> {
  const arn = event.PhysicalResourceId;
  const execution = arn && arn.includes(':execution:') ? await sfn.describeExecution(arn) : undefined;
  if (!arn || !execution) {
    log({ message: 'no execution was started for this resource; nothing to delete' });
    return;
  }
  const destroy = props.RemovalPolicy === REMOVAL_DESTROY;
  if (execution.status === 'SUCCEEDED') {
    const outcome = sfn.outcomeOf(execution);
    if (destroy && outcome?.ImageId) {
      await destroyImage(event.StackId, outcome.ImageId, outcome.SnapshotIds ?? []);
    }
    return;
  }
  let running = execution.status === 'RUNNING';
  let recorded = await sfn.recordedImportOf(arn);
  if (!recorded && running) {
    // Stop first, then read again: the start step may have recorded its task since the first read.
    await sfn.stopExecution(arn, 'cdk-vm-import: the resource was deleted before the import started');
    running = false;
    recorded = await sfn.recordedImportOf(arn);
  }
  if (!recorded) {
    log({ message: 'stopped before the import started', executionArn: arn });
    await cancelUnrecorded(event.StackId, arn);
    return;
  }
  if (recorded.importTaskIds) {
    await endSnapshotImport(event.StackId, arn, running, recorded.importTaskIds, props, destroy);
    return;
  }
  const { importTaskId } = recorded;
  try {
    await ec2.cancelImportTask(importTaskId, 'cdk-vm-import: the resource was deleted');
    log({ message: 'import cancelled', importTaskId });
  } catch (error) {
    // EC2 refuses to cancel a task that is no longer active: see how it ended.
    const task = await ec2.describeImportTask(importTaskId);
    const outcome = classifyTask(task);
    if (outcome.kind === 'completed') {
      await settleCompleted(event, props, arn, running, recorded, outcome.imageId, outcome.snapshotIds, destroy);
      return;
    }
    if (outcome.kind !== 'failed') {
      throw error;
    }
  }
  await sfn.stopExecution(arn, 'cdk-vm-import: the resource was deleted');
}

/**
 * A start step in flight when its execution was stopped may have started tasks it could not
 * record: one whose ImportImage returned after the stop cancels its task itself (it sees the
 * execution stopped); one that returned just before is found by the tags it created the
 * task with, once EC2 lists it.
 */
async function cancelUnrecorded(stackId: string, arn: string): Promise<void> {
  if (!await sfn.stoppedInStartStep(arn, START_STATE)) {
    return;
  }
  for (let attempt = 0; attempt < UNRECORDED_LOOKUPS; attempt++) {
    const ids = await ec2.activeTasksOf(stackId, sfn.executionNameOf(arn));
    if (ids.length > 0) {
      for (const id of ids) {
        await ec2.cancelImportTask(id, 'cdk-vm-import: the resource was deleted').catch((error: Error) => log({ message: 'not cancelled', importTaskId: id, reason: error.message }));
      }
      log({ message: 'cancelled tasks the stopped start step had not recorded', importTaskIds: ids });
      return;
    }
    await ec2.sleep(2000 * 2 ** attempt);
  }
}

/**
 * Deleting a snapshot-route import: cancel every disk's task still running. The snapshots
 * of the tasks that completed (and the AMI, if it was registered) get the removal policy;
 * a running execution tags each within a poll, and only then may the handler's role
 * delete it.
 */
async function endSnapshotImport(
  stackId: string, arn: string, running: boolean, importTaskIds: string[], props: WireProperties, destroy: boolean,
): Promise<void> {
  for (const id of importTaskIds) {
    await ec2.cancelImportTask(id, 'cdk-vm-import: the resource was deleted')
      .then(() => log({ message: 'import cancelled', importTaskId: id }))
      // EC2 refuses to cancel a task that is no longer active: what it made is handled below.
      .catch((error: Error) => log({ message: 'not cancelled', importTaskId: id, reason: error.message }));
  }
  const tasks = await ec2.describeImportSnapshotTasks(importTaskIds);
  const snapshotIds = importTaskIds.flatMap((id) => {
    const outcome = classifySnapshotTask(tasks.get(id));
    return outcome.kind === 'completed' ? outcome.snapshotIds : [];
  });
  const named = props.ImageName ? await ec2.imageNamed(props.ImageName) : undefined;
  const registered = named?.BlockDeviceMappings?.some((m) => m.Ebs?.SnapshotId && snapshotIds.includes(m.Ebs.SnapshotId)) ? named : undefined;
  if (!destroy) {
    await sfn.stopExecution(arn, 'cdk-vm-import: the resource was deleted');
    log({ message: 'the import was deleted; RETAIN keeps what it made', snapshotIds, imageId: registered?.ImageId });
    return;
  }
  const started = Date.now();
  const tagged = async () => {
    const snapshots = await ec2.describeSnapshots(snapshotIds);
    const image = registered?.ImageId ? await ec2.describeImage(registered.ImageId) : undefined;
    return snapshots.every((s) => isOwned({ Tags: s.Tags }, stackId)) && (!image || isOwned(image, stackId));
  };
  while (running && !(await tagged()) && Date.now() - started < TAG_WAIT_BUDGET_MS) {
    await ec2.sleep(5000);
  }
  await sfn.stopExecution(arn, 'cdk-vm-import: the resource was deleted');
  if (registered?.ImageId) {
    await destroyImage(stackId, registered.ImageId, snapshotIds);
    return;
  }
  for (const snapshotId of snapshotIds) {
    await ec2.deleteSnapshot(snapshotId, SNAPSHOT_IN_USE_BUDGET_MS);
  }
  log({ message: 'destroyed', snapshotIds });
}

/**
 * An import that completed as its resource was deleted: a running execution tags its AMI
 * and snapshots within a poll, and only then may the handler's role destroy them. With a
 * name, the execution may be copying it: the copy (found by its tags, which CopyImage gives
 * it as it creates it) goes too, or with RETAIN, when it is not available (failed or
 * still pending), alone.
 */
async function settleCompleted(
  event: CustomResourceEvent, props: WireProperties, arn: string, running: boolean, recorded: sfn.RecordedImport,
  imageId: string, snapshotIds: string[], destroy: boolean,
): Promise<void> {
  const stackId = event.StackId;
  const started = Date.now();
  for (;;) {
    const image = running ? await ec2.describeImage(imageId) : undefined;
    // A named import's execution deregisters the imported AMI once the copy is made: then there is nothing to wait for.
    if (!image || isOwned(image, stackId) || Date.now() - started >= TAG_WAIT_BUDGET_MS) {
      break;
    }
    await ec2.sleep(5000);
  }
  await sfn.stopExecution(arn, 'cdk-vm-import: the resource was deleted');
  const imported = await ec2.describeImage(imageId);
  if (imported && !isOwned(imported, stackId)) {
    // The execution ended (stopped, failed, or its tagging refused) before it tagged what the task made.
    await adopt(event, props, arn, recorded.importTaskId);
  }
  const copies = new Set(recorded.copyImageId ? [recorded.copyImageId] : []);
  for (const image of await ec2.imagesOfImport(stackId, recorded.importTaskId)) {
    if (image.ImageId && image.ImageId !== imageId) {
      copies.add(image.ImageId);
    }
  }
  for (const copyId of copies) {
    const copy = await ec2.describeImage(copyId);
    if (destroy || (copy && copy.State !== 'available')) {
      await destroyImage(stackId, copyId, []);
    }
  }
  if (!destroy) {
    log({ message: 'the import completed as it was deleted; RETAIN keeps it', imageId, snapshotIds, copies: [...copies] });
    return;
  }
  await destroyImage(stackId, imageId, snapshotIds);
}

/**
 * Has the state machine tag, as this stack's, the AMI and snapshots of a task this stack's
 * execution started and no longer tags (only the state machine may give that tag; it does
 * so only when the task itself carries this stack's tag), and waits for it.
 */
async function adopt(event: CustomResourceEvent, props: WireProperties, arn: string, importTaskId: string): Promise<void> {
  const stateMachineArn = arn.replace(':execution:', ':stateMachine:').replace(/:[^:]+$/, '');
  const name = `${sfn.executionNameOf(arn).slice(0, 72)}-adopt`;
  const identity = { stackId: event.StackId, logicalResourceId: event.LogicalResourceId, importTaskId };
  const input: ExecutionInput = {
    StackId: event.StackId,
    LogicalResourceId: event.LogicalResourceId,
    WaitConditionId: props.WaitConditionId ?? '',
    ClientToken: '',
    Deadline: new Date().toISOString(),
    PollIntervalSeconds: DEFAULT_POLL_INTERVAL_SECONDS,
    Properties: props,
    Adopt: { ImportTaskId: importTaskId, OutputTags: resourceTags(props, identity) },
  };
  const adoption = await sfn.startExecution(stateMachineArn, name, input);
  const started = Date.now();
  let execution = await sfn.describeExecution(adoption);
  while (execution?.status === 'RUNNING' && Date.now() - started < ADOPT_BUDGET_MS) {
    await ec2.sleep(2000);
    execution = await sfn.describeExecution(adoption);
  }
  log({ message: 'adopting the outputs of a task its execution did not tag', importTaskId, adoption, status: execution?.status });
}

// ------------------------------------------------------------------ result resource

export async function resultResource(event: CustomResourceEvent): Promise<ResourceAnswer> {
  const props = parseResultProperties(event.ResourceProperties);
  switch (event.RequestType) {
    case 'Create':
      return applyAttributes(await report(props.ExecutionArn), props);
    case 'Update': {
      const old = parseResultProperties(event.OldResourceProperties);
      if (old.ExecutionArn !== props.ExecutionArn || !isImageId(event.PhysicalResourceId)) {
        // A new AMI: the old one keeps its shares until CloudFormation deletes it.
        return applyAttributes(await report(props.ExecutionArn), props);
      }
      // Only tags or the removal policy changed: re-tag the same AMI and its snapshots.
      const answer = await report(props.ExecutionArn);
      const resources = [answer.PhysicalResourceId, ...(answer.Data?.[ATTR_SNAPSHOT_IDS] ?? '').split(',').filter((s) => s)];
      await ec2.createTags(resources, userTags(props));
      await ec2.deleteTags(resources, removedTagKeys(old, props));
      return applyAttributes(answer, props, old);
    }
    case 'Delete': {
      if (props.RemovalPolicy === REMOVAL_DESTROY && isImageId(event.PhysicalResourceId)) {
        const execution = await sfn.describeExecution(props.ExecutionArn);
        const recorded = execution ? sfn.outcomeOf(execution) : undefined;
        const snapshots = recorded?.ImageId === event.PhysicalResourceId ? recorded.SnapshotIds ?? [] : [];
        await destroyImage(event.StackId, event.PhysicalResourceId, snapshots);
      }
      return { PhysicalResourceId: event.PhysicalResourceId ?? '' };
    }
  }
}

/** Shares the AMI as asked (unsharing what was asked before and no longer is) and sets IMDSv2 when asked. */
async function applyAttributes(answer: ResourceAnswer, props: WireResultProperties, old?: WireResultProperties): Promise<ResourceAnswer> {
  const imageId = answer.PhysicalResourceId;
  if (props.LaunchPermissions || old?.LaunchPermissions) {
    const { add, remove } = launchPermissionChanges(props.LaunchPermissions, old?.LaunchPermissions, await ec2.describeLaunchPermissions(imageId));
    await ec2.modifyLaunchPermissions(imageId, add, remove);
    log({ message: 'launch permissions', imageId, added: add, removed: remove });
  }
  if (props.ImdsSupport === 'v2.0') {
    await ec2.requireImdsV2(imageId);
  }
  return answer;
}

/** The AMI an execution imported, or its failure as an error with the execution's reason. */
async function report(executionArn: string): Promise<ResourceAnswer> {
  const started = Date.now();
  let execution = await sfn.describeExecution(executionArn);
  // The execution signals the WaitCondition just before it ends.
  while (execution?.status === 'RUNNING' && Date.now() - started < SETTLE_BUDGET_MS) {
    await ec2.sleep(2000);
    execution = await sfn.describeExecution(executionArn);
  }
  if (!execution) {
    throw new Error(`The import's execution ${executionArn} does not exist (Step Functions keeps ended executions for 90 days).`);
  }
  if (execution.status === 'FAILED') {
    throw new Error(causeMessage(execution.error, execution.cause));
  }
  const outcome = sfn.outcomeOf(execution);
  if (execution.status !== 'SUCCEEDED' || outcome?.Outcome !== 'completed' || !outcome.ImageId) {
    throw new Error(outcome?.Reason ?? `The import's execution ${executionArn} ended ${execution.status ?? 'without a status'} before the import finished.`);
  }
  log({ message: 'import result', imageId: outcome.ImageId, importTaskId: outcome.ImportTaskId });
  return {
    PhysicalResourceId: outcome.ImageId,
    Data: {
      [ATTR_IMAGE_ID]: outcome.ImageId,
      [ATTR_SNAPSHOT_IDS]: (outcome.SnapshotIds ?? []).join(','),
      [ATTR_IMPORT_TASK_ID]: outcome.ImportTaskId ?? '',
    },
  };
}

// ------------------------------------------------------------------ destroying an import's outputs

function isOwned(image: { Tags?: { Key?: string; Value?: string }[] } | undefined, stackId: string): boolean {
  return !!image?.Tags?.some((t) => t.Key === TAG_STACK_ID && t.Value === stackId);
}

/**
 * Deregisters the AMI, then deletes every snapshot it had and those the execution recorded;
 * any of them may already be gone. The handler's role may only do this to resources the
 * engine tagged with this stack's ID, and it cannot add that tag itself.
 */
async function destroyImage(stackId: string, imageId: string, recordedSnapshots: string[]): Promise<void> {
  const image = await ec2.describeImage(imageId);
  const snapshots = new Set(recordedSnapshots);
  for (const mapping of image?.BlockDeviceMappings ?? []) {
    if (mapping.Ebs?.SnapshotId) {
      snapshots.add(mapping.Ebs.SnapshotId);
    }
  }
  if (image) {
    if (!isOwned(image, stackId)) {
      throw new Error(
        `The AMI ${imageId} (snapshots ${[...snapshots].join(', ') || 'none'}) does not carry this stack's ${TAG_STACK_ID} tag, ` +
        'so this stack may not delete it: deregister it and delete its snapshots by hand, or keep them.',
      );
    }
    await ec2.deregisterImage(imageId);
  }
  for (const snapshotId of snapshots) {
    await ec2.deleteSnapshot(snapshotId, SNAPSHOT_IN_USE_BUDGET_MS);
  }
  log({ message: 'destroyed', imageId, snapshotIds: [...snapshots] });
}
