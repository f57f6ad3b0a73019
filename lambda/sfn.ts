/**
 * The one module that talks to Step Functions: the engine's executions, started,
 * described, stopped and read back. Throttling and 5xx errors are retried by the SDK's
 * standard retry strategy.
 */
import {
  DescribeExecutionCommand,
  DescribeExecutionCommandOutput,
  GetExecutionHistoryCommand,
  HistoryEvent,
  SFNClient,
  StartExecutionCommand,
  StopExecutionCommand,
} from '@aws-sdk/client-sfn';

import type { ExecutionOutcome } from '../src/private/contract';

const MAX_ATTEMPTS = 8;
/** Pages of history read at most when looking for the import task ID (1,000 events a page). */
const MAX_HISTORY_PAGES = 20;

let client: SFNClient | undefined;

function sfn(): SFNClient {
  client ??= new SFNClient({ maxAttempts: MAX_ATTEMPTS, retryMode: 'standard' });
  return client;
}

/** The ARN of an execution of a state machine, by name. */
export function executionArn(stateMachineArn: string, name: string): string {
  return `${stateMachineArn.replace(':stateMachine:', ':execution:')}:${name}`;
}

/** An execution's name: the last part of its ARN. */
export function executionNameOf(arn: string): string {
  return arn.slice(arn.lastIndexOf(':') + 1);
}

/**
 * Whether the execution was in its start step (entered, not exited) when its history
 * ends: after a stop, a start step then in flight may have started a task it could not
 * record. Read from the newest events.
 */
export async function stoppedInStartStep(arn: string, startStateName: string): Promise<boolean> {
  const request = { executionArn: arn, reverseOrder: true, includeExecutionData: false, maxResults: 20 };
  const out = await sfn().send(new GetExecutionHistoryCommand(request));
  for (const event of out.events ?? []) {
    if (event.stateExitedEventDetails) {
      return false;
    }
    if (event.stateEnteredEventDetails) {
      return event.stateEnteredEventDetails.name === startStateName;
    }
  }
  return false;
}

/** The execution, or undefined when none of that ARN exists. */
export async function describeExecution(arn: string): Promise<DescribeExecutionCommandOutput | undefined> {
  try {
    return await sfn().send(new DescribeExecutionCommand({ executionArn: arn }));
  } catch (error) {
    if (error instanceof Error && error.name === 'ExecutionDoesNotExist') {
      return undefined;
    }
    throw error;
  }
}

/**
 * Starts an execution. A second start of the same name while the first runs (a duplicated
 * request) returns the first; `ExecutionAlreadyExists` (same name, other input or ended)
 * is answered with the existing execution's ARN too.
 */
export async function startExecution(stateMachineArn: string, name: string, input: unknown): Promise<string> {
  try {
    const out = await sfn().send(new StartExecutionCommand({ stateMachineArn, name, input: JSON.stringify(input) }));
    return out.executionArn ?? executionArn(stateMachineArn, name);
  } catch (error) {
    if (error instanceof Error && error.name === 'ExecutionAlreadyExists') {
      return executionArn(stateMachineArn, name);
    }
    throw error;
  }
}

/** What an execution returned, or undefined when it returned nothing readable. */
export function outcomeOf(execution: DescribeExecutionCommandOutput): ExecutionOutcome | undefined {
  try {
    return execution.output ? JSON.parse(execution.output) as ExecutionOutcome : undefined;
  } catch {
    return undefined;
  }
}

/** Stops a running execution; one that already ended is not an error. */
export async function stopExecution(arn: string, cause: string): Promise<void> {
  const execution = await describeExecution(arn);
  if (execution?.status === 'RUNNING') {
    await sfn().send(new StopExecutionCommand({ executionArn: arn, error: 'VmImportStopped', cause }));
  }
}

/** What an execution recorded of its import: the task, and with a name the copy. */
export interface RecordedImport {
  readonly importTaskId: string;
  /** The copy's AMI, once CopyImage answered. */
  readonly copyImageId?: string;
  /** On the snapshot route: every disk's ImportSnapshot task. */
  readonly importTaskIds?: string[];
}

/**
 * The import task the execution started (and the copy it made), read from its own
 * history: the most recent state output that carries `Import.ImportTaskId`. Undefined
 * when it started none.
 */
export async function recordedImportOf(arn: string): Promise<RecordedImport | undefined> {
  let nextToken: string | undefined;
  for (let page = 0; page < MAX_HISTORY_PAGES; page++) {
    const out = await sfn().send(new GetExecutionHistoryCommand({
      executionArn: arn, reverseOrder: true, includeExecutionData: true, maxResults: 1000, nextToken,
    }));
    for (const event of out.events ?? []) {
      const recorded = recordedIn(event);
      if (recorded) {
        return recorded;
      }
    }
    nextToken = out.nextToken;
    if (!nextToken) {
      return undefined;
    }
  }
  return undefined;
}

function recordedIn(event: HistoryEvent): RecordedImport | undefined {
  const output = event.stateExitedEventDetails?.output;
  if (!output) {
    return undefined;
  }
  try {
    const state = JSON.parse(output) as { Import?: { ImportTaskId?: unknown; ImportTaskIds?: unknown }; Copy?: { ImageId?: unknown } };
    const id = state?.Import?.ImportTaskId;
    if (typeof id !== 'string' || id.length === 0) {
      return undefined;
    }
    const copy = state.Copy?.ImageId;
    const ids = state.Import?.ImportTaskIds;
    return {
      importTaskId: id,
      copyImageId: typeof copy === 'string' && copy.length > 0 ? copy : undefined,
      importTaskIds: Array.isArray(ids) && ids.every((x) => typeof x === 'string') ? ids as string[] : undefined,
    };
  } catch {
    return undefined;
  }
}
