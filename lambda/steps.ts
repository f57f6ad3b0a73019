/**
 * The state machine's Lambda steps: start the import (waiting out EC2's quota and IAM
 * propagation by returning "not yet"), cancel it when its wait runs out, and signal the
 * WaitCondition with the outcome. The state machine polls the task itself, through the
 * AWS SDK integration, without invoking this function.
 */
import type { Image, ImportImageTask } from '@aws-sdk/client-ec2';
import * as cfn from './cloudformation';
import {
  causeMessage,
  classifyTask,
  clientToken,
  copyFailureReason,
  copyRequest,
  copyTimeoutReason,
  defaultEncryptionConflict,
  DEFAULT_POLL_INTERVAL_SECONDS,
  DEFAULT_WAIT_TIMEOUT_SECONDS,
  failureReason,
  importImageInput,
  isIamPropagationError,
  isQuotaError,
  classifySnapshotTask,
  importSnapshotInputs,
  isSnapshotRoute,
  registerImageInput,
  snapshotFailureReason,
  libraryTags,
  nameTakenReason,
  resourceTags,
  timeoutReason,
  truncate,
  wireSeconds,
} from './decisions';
import * as ec2 from './ec2';
import { log } from './log';
import * as sfn from './sfn';
import {
  ExecutionInput,
  ExecutionOutcome,
  FinalImage,
  SnapshotPollResult,
  StartStepResult,
  STEP_POLL_SNAPSHOTS,
  STEP_REGISTER,
  STEP_COPY_TIMEOUT,
  STEP_FINISH_COPY,
  STEP_SIGNAL,
  STEP_START,
  STEP_TIMEOUT,
} from '../src/private/contract';

/** How long the finish-copy step waits for EC2 to release a snapshot of the just-deregistered imported AMI. */
const SNAPSHOT_IN_USE_BUDGET_MS = 300_000;

/** The execution's state as the steps see it. */
export interface ExecutionState extends ExecutionInput {
  readonly Import?: StartStepResult;
  readonly Poll?: {
    /** DescribeImportImageTasks' result (on the snapshot route, the register step's in the same shape). */
    readonly Result?: { readonly ImportImageTasks?: ImportImageTask[] };
    readonly Outcome?: string;
    readonly Reason?: string;
    /** On the snapshot route: the poll-snapshots step's result. */
    readonly Status?: SnapshotPollResult['Status'];
    readonly Tagged?: string[];
    readonly SnapshotIds?: string[];
  };
  /** With ImageName: CopyImage's result. */
  readonly Copy?: { readonly ImageId?: string };
  /** With ImageName: DescribeImages' result for the copy (or the copy-timeout step's). */
  readonly CopyPoll?: {
    readonly Result?: { readonly Images?: Image[] };
    readonly Outcome?: string;
    readonly Reason?: string;
  };
  /** With ImageName: the named AMI, once the imported one is removed. */
  readonly Final?: FinalImage;
  /** A caught error (Catch with ResultPath $.Error). */
  readonly Error?: { readonly Error?: string; readonly Cause?: string };
}

export interface StepEvent {
  readonly Step: string;
  readonly State: ExecutionState;
  /** `$$.Execution.Id`. */
  readonly ExecutionArn: string;
  /** For the signal step: how the import ended. */
  readonly Outcome?: 'completed' | 'failed' | 'error';
  /** For the poll-snapshots step: `$$.State.EnteredTime`. */
  readonly Now?: string;
}

/** What the copy-timeout step leaves at `$.CopyPoll`. */
export interface CopyTimeoutStepResult {
  readonly Outcome: 'completed' | 'failed' | 'timed-out';
  /** The copy as last described, in DescribeImages' shape. */
  readonly Result: { readonly Images: Image[] };
  readonly Reason?: string;
}

/** What the timeout step leaves at `$.Poll`. */
export interface TimeoutStepResult {
  readonly Outcome: 'completed' | 'failed' | 'timed-out';
  /** The task as last described, in DescribeImportImageTasks' shape. */
  readonly Result: { readonly ImportImageTasks: ImportImageTask[] };
  readonly Reason?: string;
}

/** What a Lambda step returns into the execution's state. */
export type StepResult =
  | StartStepResult | TimeoutStepResult | CopyTimeoutStepResult | FinalImage | SnapshotPollResult | RegisterStepResult | ExecutionOutcome;

/** What the register step leaves at `$.Poll`: the AMI, in DescribeImportImageTasks' shape, for the tagging states that follow. */
export interface RegisterStepResult {
  readonly Result: { readonly ImportImageTasks: ImportImageTask[] };
}

export async function runStep(event: StepEvent): Promise<StepResult> {
  switch (event.Step) {
    case STEP_START:
      return startStep(event);
    case STEP_TIMEOUT:
      return timeoutStep(event);
    case STEP_FINISH_COPY:
      return finishCopyStep(event);
    case STEP_COPY_TIMEOUT:
      return copyTimeoutStep(event);
    case STEP_POLL_SNAPSHOTS:
      return pollSnapshotsStep(event);
    case STEP_REGISTER:
      return registerStep(event);
    case STEP_SIGNAL:
      return signalStep(event);
    default:
      throw new Error(`Unknown step ${JSON.stringify(event.Step)}.`);
  }
}

/** Seconds ImportImage is retried while a new import role propagates through IAM. */
function iamPropagationBudgetSeconds(): number {
  const fromEnv = Number(process.env.VM_IMPORT_IAM_RETRY_SECONDS);
  return Number.isFinite(fromEnv) && fromEnv >= 0 ? fromEnv : 300;
}

/** The wait before the next ImportImage after `attempts` refusals: 15 s doubling to 5 minutes. */
export function retryDelaySeconds(attempts: number): number {
  return Math.min(300, 15 * 2 ** Math.min(attempts, 5));
}

/** The total of the waits before attempt `attempts + 1`. */
function waitedSeconds(attempts: number): number {
  let total = 0;
  for (let i = 0; i < attempts; i++) {
    total += retryDelaySeconds(i);
  }
  return total;
}

async function startStep(event: StepEvent): Promise<StartStepResult> {
  const state = event.State;
  const props = state.Properties;
  const attempts = state.Import?.Attempts ?? 0;
  if (props.ImageName) {
    // Found now, not after an import of hours: the copy would fail on a taken name.
    const taken = await ec2.imageNamed(props.ImageName);
    if (taken?.ImageId) {
      throw new Error(nameTakenReason(props.ImageName, taken.ImageId));
    }
  }
  const conflict = props.Encrypted === 'true' ? undefined : defaultEncryptionConflict(props, await ec2.defaultEbsKey());
  if (conflict) {
    throw new Error(conflict);
  }
  let importTaskId: string;
  let snapshotTaskIds: string[] | undefined;
  // The token comes from this execution's own ARN (the context object's, not the input's): an
  // execution can only ever be handed back a task it started itself, whatever its input says.
  const token = clientToken(event.ExecutionArn);
  // On the snapshot route, the tasks started so far: recorded in every answer, so that a refusal
  // halfway leaves none unrecorded (the next attempt sends the same tokens and gets them back).
  const started: string[] = [];
  try {
    if (isSnapshotRoute(props)) {
      snapshotTaskIds = started;
      for (const input of importSnapshotInputs(props, token, state.StackId, sfn.executionNameOf(event.ExecutionArn))) {
        started.push(await ec2.importSnapshot(input));
      }
      importTaskId = started[0];
    } else {
      importTaskId = await ec2.importImage(importImageInput(props, token, state.StackId, sfn.executionNameOf(event.ExecutionArn)));
    }
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const partial = started.length > 0 ? { ImportTaskId: started[0], ImportTaskIds: [...started] } : {};
    const giveUp = async (reason: string): Promise<never> => {
      // Nothing will poll the disks' tasks already started: cancel them, so that no snapshot is made that nothing owns.
      await cancelStarted(started, 'cdk-vm-import: the import could not start every disk');
      throw new Error(reason);
    };
    if (isQuotaError(error)) {
      if (Date.now() >= Date.parse(state.Deadline)) {
        return giveUp(truncate(
          `EC2 kept refusing to start the import until its timeout ran out: ${message} ` +
          'Too many imports run at once in this account and Region: import fewer at a time, or raise the timeout.',
        ));
      }
      log({ message: 'import quota full, waiting', attempt: attempts + 1, reason: message, started });
      return { Started: false, Attempts: attempts + 1, RetrySeconds: retryDelaySeconds(attempts), Reason: message, ...partial };
    }
    if (isIamPropagationError(error)) {
      if (waitedSeconds(attempts + 1) > iamPropagationBudgetSeconds()) {
        return giveUp(truncate(
          `ImportImage kept failing for ${waitedSeconds(attempts)} s: ${message} ` +
          `Check that the role '${props.RoleName}' exists, trusts vmie.amazonaws.com with sts:ExternalId 'vmimport', ` +
          'can read the disk image (s3:GetObject, s3:GetBucketLocation, s3:ListBucket) and use the KMS key, ' +
          'and that the caller may iam:PassRole it.',
        ));
      }
      log({ message: 'import role not usable yet, retrying', attempt: attempts + 1, started });
      return { Started: false, Attempts: attempts + 1, RetrySeconds: retryDelaySeconds(attempts), Reason: message, ...partial };
    }
    await cancelStarted(started, 'cdk-vm-import: the import could not start every disk');
    throw error;
  }
  // The start resource may have been deleted (and this execution stopped) while ImportImage
  // ran: then nothing will poll this task, so take it back.
  // A failure to look is not a reason to lose the task ID: the state machine records it next.
  const self = await sfn.describeExecution(event.ExecutionArn).catch(() => undefined);
  if (self && self.status !== 'RUNNING') {
    log({ message: 'execution stopped while the import started; cancelling it', importTaskId });
    await cancelStarted(snapshotTaskIds ?? [importTaskId], 'cdk-vm-import: the import was stopped');
  }
  log({ message: 'import started', importTaskId, attempts: attempts + 1 });
  const identity = { stackId: state.StackId, logicalResourceId: state.LogicalResourceId, importTaskId };
  // The snapshot route names the AMI as it registers it: no copy.
  const copy = snapshotTaskIds ? undefined : copyRequest(props, event.ExecutionArn, importTaskId, resourceTags(props, identity));
  return {
    Started: true,
    ImportTaskId: importTaskId,
    ImportTaskIds: snapshotTaskIds,
    Attempts: attempts + 1,
    // A named import's first AMI is a step on the way: it carries the library's tags (which let this stack remove it), not the user's.
    OutputTags: copy ? libraryTags(identity) : resourceTags(props, identity),
    Copy: copy,
  };
}

/** Cancels tasks that nothing will poll; a task that has already ended is not an error. */
async function cancelStarted(taskIds: string[], reason: string): Promise<void> {
  for (const id of taskIds) {
    await ec2.cancelImportTask(id, reason).catch((error: Error) => log({ message: 'not cancelled', importTaskId: id, reason: error.message }));
  }
}

/**
 * One poll of the snapshot route's tasks. Snapshots of tasks that completed since the last
 * poll are handed to the state machine to tag (only it can give them this stack's tag,
 * which lets this function delete them on a rollback). A failed task, or the wait running
 * out, cancels the others.
 */
async function pollSnapshotsStep(event: StepEvent): Promise<SnapshotPollResult> {
  const state = event.State;
  const ids = state.Import?.ImportTaskIds ?? [];
  const tagged = state.Poll?.Tagged ?? [];
  const tasks = await ec2.describeImportSnapshotTasks(ids);
  const outcomes = ids.map((id) => classifySnapshotTask(tasks.get(id)));
  const completed = outcomes.flatMap((o) => (o.kind === 'completed' ? o.snapshotIds : []));
  const untagged = completed.filter((id) => !tagged.includes(id));
  const base = { Tagged: [...tagged, ...untagged], Untagged: untagged };
  const cancelOthers = async (reason: string) => {
    for (const [i, id] of ids.entries()) {
      if (outcomes[i].kind === 'running') {
        await ec2.cancelImportTask(id, reason).catch((error: Error) => log({ message: 'cancel refused', importTaskId: id, reason: error.message }));
      }
    }
  };
  const failedAt = outcomes.findIndex((o) => o.kind === 'failed');
  if (failedAt >= 0) {
    const failed = outcomes[failedAt] as { message: string };
    await cancelOthers(`cdk-vm-import: disk ${failedAt + 1} failed`);
    return { ...base, Status: 'failed', Reason: snapshotFailureReason(ids[failedAt], failedAt, failed.message) };
  }
  if (outcomes.every((o) => o.kind === 'completed')) {
    return { ...base, Status: 'completed', SnapshotIds: completed };
  }
  if (event.Now && Date.parse(event.Now) >= Date.parse(state.Deadline)) {
    const waitSeconds = wireSeconds(state.Properties.WaitTimeoutSeconds, DEFAULT_WAIT_TIMEOUT_SECONDS);
    await cancelOthers(`cdk-vm-import: wait of ${waitSeconds} s exceeded`);
    const progress = ids.map((id, i) => {
      const o = outcomes[i];
      return `${id} ${o.kind === 'running' ? `${o.progress}% '${o.message}'` : o.kind}`;
    }).join(', ');
    return {
      ...base,
      Status: 'failed',
      Reason: truncate(`VM import ${ids[0]} (ImportSnapshot of ${ids.length} disks) did not finish within ${waitSeconds} seconds and was cancelled; ` +
        `last progress: ${progress}. Raise the import's timeout, or import smaller disks.`),
    };
  }
  return { ...base, Status: 'running' };
}

/**
 * Registers the AMI from the imported snapshots, every field set. RegisterImage has no
 * idempotency token: a retry finds the AMI of this name made of these snapshots instead.
 */
async function registerStep(event: StepEvent): Promise<RegisterStepResult> {
  const state = event.State;
  const props = state.Properties;
  const snapshotIds = state.Poll?.SnapshotIds ?? [];
  const input = registerImageInput(props, snapshotIds);
  let imageId: string;
  try {
    imageId = await ec2.registerImage(input);
  } catch (error) {
    const taken = props.ImageName ? await ec2.imageNamed(props.ImageName) : undefined;
    const ours = taken?.BlockDeviceMappings?.map((m) => m.Ebs?.SnapshotId).sort().join(',') === [...snapshotIds].sort().join(',');
    if (!taken?.ImageId || !ours) {
      if (taken?.ImageId) {
        throw new Error(nameTakenReason(props.ImageName!, taken.ImageId));
      }
      throw error;
    }
    imageId = taken.ImageId;
  }
  log({ message: 'AMI registered from the imported snapshots', imageId, snapshotIds });
  const devices = input.BlockDeviceMappings ?? [];
  return {
    Result: {
      ImportImageTasks: [{
        ImportTaskId: state.Import?.ImportTaskId,
        Status: 'completed',
        ImageId: imageId,
        SnapshotDetails: snapshotIds.map((id, i) => ({ SnapshotId: id, DeviceName: devices[i]?.DeviceName })),
      }],
    },
  };
}

/** The copy is available: remove the imported AMI and its snapshots, and report the named AMI. */
async function finishCopyStep(event: StepEvent): Promise<FinalImage> {
  const state = event.State;
  const copy = state.CopyPoll?.Result?.Images?.[0];
  const imageId = state.Copy?.ImageId;
  if (!imageId || !copy || copy.ImageId !== imageId) {
    throw new Error(`The finish-copy step found no described copy (copy ${imageId ?? 'none'}).`);
  }
  const imported = classifyTask(state.Poll?.Result?.ImportImageTasks?.[0]);
  if (imported.kind === 'completed') {
    await ec2.deregisterImage(imported.imageId);
    for (const snapshotId of imported.snapshotIds) {
      await ec2.deleteSnapshot(snapshotId, SNAPSHOT_IN_USE_BUDGET_MS);
    }
    log({ message: 'imported AMI removed after its copy', importedImageId: imported.imageId, snapshotIds: imported.snapshotIds, imageId });
  }
  const snapshotIds = (copy.BlockDeviceMappings ?? []).map((m) => m.Ebs?.SnapshotId).filter((id): id is string => !!id);
  return { ImageId: imageId, SnapshotIds: snapshotIds };
}

/** The wait ran out during the copy: stop it (deregistering a pending copy stops it), unless it has just ended. */
async function copyTimeoutStep(event: StepEvent): Promise<CopyTimeoutStepResult> {
  const state = event.State;
  const imageId = state.Copy?.ImageId ?? '';
  const name = state.Import?.Copy?.Name ?? '';
  const source = state.Poll?.Result?.ImportImageTasks?.[0]?.ImageId ?? '';
  const waitSeconds = wireSeconds(state.Properties.WaitTimeoutSeconds, DEFAULT_WAIT_TIMEOUT_SECONDS);
  const copy = await ec2.describeImage(imageId);
  if (copy?.State === 'available') {
    return { Outcome: 'completed', Result: { Images: [copy] } };
  }
  if (copy && copy.State !== 'pending') {
    return { Outcome: 'failed', Result: { Images: [copy] }, Reason: copyFailureReason(source, name, imageId, copy.State ?? 'unknown', copy.StateReason?.Message) };
  }
  await ec2.deregisterImage(imageId);
  for (const mapping of copy?.BlockDeviceMappings ?? []) {
    if (mapping.Ebs?.SnapshotId) {
      await ec2.deleteSnapshot(mapping.Ebs.SnapshotId, SNAPSHOT_IN_USE_BUDGET_MS);
    }
  }
  log({ message: 'copy timed out and was stopped', imageId, source });
  return { Outcome: 'timed-out', Result: { Images: copy ? [copy] : [] }, Reason: copyTimeoutReason(source, name, imageId, waitSeconds) };
}

async function timeoutStep(event: StepEvent): Promise<TimeoutStepResult> {
  const state = event.State;
  const importTaskId = state.Import?.ImportTaskId ?? '';
  const waitSeconds = wireSeconds(state.Properties.WaitTimeoutSeconds, DEFAULT_WAIT_TIMEOUT_SECONDS);
  const last = state.Poll?.Result?.ImportImageTasks?.[0];
  try {
    await ec2.cancelImportTask(importTaskId, `cdk-vm-import: wait of ${waitSeconds} s exceeded`);
  } catch (error) {
    // EC2 refuses to cancel a task that ended since it was described: report how it ended.
    const task = await ec2.describeImportTask(importTaskId);
    const now = classifyTask(task);
    if (now.kind === 'completed') {
      return { Outcome: 'completed', Result: { ImportImageTasks: [task!] } };
    }
    if (now.kind === 'failed') {
      return { Outcome: 'failed', Result: { ImportImageTasks: [task!] }, Reason: failureReason(importTaskId, now.message) };
    }
    throw error;
  }
  const outcome = classifyTask(last);
  const progress = outcome.kind === 'running' ? outcome.progress : '0';
  const message = outcome.kind === 'running' ? outcome.message : '';
  log({ message: 'import timed out and was cancelled', importTaskId, progress, statusMessage: message });
  return {
    Outcome: 'timed-out',
    Result: { ImportImageTasks: last ? [last] : [] },
    Reason: timeoutReason(importTaskId, waitSeconds, progress, message),
  };
}

/** The execution's outcome for the state it ended in. */
export function executionOutcome(kind: StepEvent['Outcome'], state: ExecutionState): ExecutionOutcome {
  const importTaskId = state.Import?.ImportTaskId;
  const task = state.Poll?.Result?.ImportImageTasks?.[0];
  if (kind === 'completed' && state.Final) {
    return { Outcome: 'completed', ImportTaskId: importTaskId, ImageId: state.Final.ImageId, SnapshotIds: state.Final.SnapshotIds };
  }
  if (kind === 'failed' && state.CopyPoll) {
    const copy = state.CopyPoll.Result?.Images?.[0];
    const reason = state.CopyPoll.Reason ?? copyFailureReason(
      task?.ImageId ?? '', state.Import?.Copy?.Name ?? '', state.Copy?.ImageId ?? '', copy?.State ?? 'gone', copy?.StateReason?.Message);
    return { Outcome: 'failed', ImportTaskId: importTaskId, Reason: reason };
  }
  if (kind === 'completed') {
    const outcome = classifyTask(task);
    if (outcome.kind === 'completed') {
      return { Outcome: 'completed', ImportTaskId: importTaskId, ImageId: outcome.imageId, SnapshotIds: outcome.snapshotIds };
    }
    return { Outcome: 'failed', ImportTaskId: importTaskId, Reason: `VM import ${importTaskId} ended without an AMI.` };
  }
  if (kind === 'failed') {
    const outcome = classifyTask(task);
    const reason = state.Poll?.Reason
      ?? failureReason(importTaskId ?? '', outcome.kind === 'failed' ? outcome.message : `the task is ${task?.Status ?? 'gone'}`);
    return { Outcome: 'failed', ImportTaskId: importTaskId, Reason: reason };
  }
  const cause = causeMessage(state.Error?.Error, state.Error?.Cause);
  return {
    Outcome: 'failed',
    ImportTaskId: importTaskId,
    Reason: truncate(importTaskId ? `VM import ${importTaskId} stopped on an error: ${cause}` : `The VM import could not start: ${cause}`),
  };
}

/**
 * Signals the WaitCondition, whatever the outcome: the result resource after it reports
 * the outcome with its full reason (SignalResource carries no reason of its own). Whether
 * the WaitCondition waits is CloudFormation's answer, asked before and, when the signal is
 * refused, after it: never read from an error's wording.
 */
async function signalStep(event: StepEvent): Promise<ExecutionOutcome> {
  const state = event.State;
  const outcome = state.ReuseExecutionArn ? await reusedOutcome(state.ReuseExecutionArn, event.ExecutionArn) : executionOutcome(event.Outcome, state);
  const target = await cfn.waitConditionState(state.StackId, state.WaitConditionId);
  if (target === 'not-yet') {
    // The execution can end before CloudFormation has created the WaitCondition: retried by the state machine.
    throw Object.assign(new Error(`The WaitCondition ${state.WaitConditionId} does not exist yet and its stack is still changing.`), { name: 'WaitConditionNotReady' });
  }
  if (target === 'waiting') {
    try {
      await cfn.signalSuccess(state.StackId, state.WaitConditionId, outcome.ImportTaskId ?? 'not-started');
    } catch (error) {
      if (await cfn.waitConditionState(state.StackId, state.WaitConditionId) !== 'done') {
        throw error;
      }
      log({ message: 'the WaitCondition stopped waiting as it was signalled; not signalled', waitConditionId: state.WaitConditionId, reason: (error as Error).message });
    }
  } else {
    log({ message: 'the WaitCondition no longer waits; not signalled', waitConditionId: state.WaitConditionId });
  }
  log({ message: 'import finished', ...outcome, pollIntervalSeconds: wireSeconds(state.Properties.PollIntervalSeconds, DEFAULT_POLL_INTERVAL_SECONDS) });
  return outcome;
}

/**
 * The outcome of the earlier execution whose AMI a new WaitCondition of the same
 * properties gets: only an execution of this execution's own state machine counts.
 */
async function reusedOutcome(reusedArn: string, executionArn: string): Promise<ExecutionOutcome> {
  const machine = (arn: string) => arn.split(':').slice(0, 7).join(':');
  const execution = machine(reusedArn) === machine(executionArn) ? await sfn.describeExecution(reusedArn) : undefined;
  const outcome = execution?.status === 'SUCCEEDED' ? sfn.outcomeOf(execution) : undefined;
  if (outcome?.Outcome !== 'completed' || !outcome.ImageId) {
    return { Outcome: 'failed', Reason: `The earlier import ${reusedArn} of these properties is gone or did not complete; deploy again to import anew.` };
  }
  return { Outcome: 'completed', ImportTaskId: outcome.ImportTaskId, ImageId: outcome.ImageId, SnapshotIds: outcome.SnapshotIds };
}
