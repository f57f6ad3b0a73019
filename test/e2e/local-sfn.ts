/**
 * A local AWS Step Functions endpoint (the `awsJson1_0` protocol of the real
 * `@aws-sdk/client-sfn`) on 127.0.0.1 that runs executions of ONE state machine
 * definition, as synthesized, with `aws-local-stepfunctions`. Its Task states are
 * answered by the functions a test gives per Resource kind (the engine's Lambda function,
 * AWS SDK integrations), and the context object's `State.EnteredTime` comes from a clock
 * the test controls, so an import of many hours runs in seconds.
 *
 * Modelled: StartExecution (idempotent for the same name and input while running,
 * `ExecutionAlreadyExists` otherwise), DescribeExecution, StopExecution and
 * GetExecutionHistory (StateEntered/StateExited events with their input and output,
 * newest first with `reverseOrder`, 1,000 a page at most).
 */
import { randomUUID } from 'crypto';
import * as http from 'http';
import { AddressInfo } from 'net';

// aws-local-stepfunctions uses Promise.withResolvers, which Node.js added in 22.
const promiseCtor = Promise as unknown as { withResolvers?: () => unknown };
promiseCtor.withResolvers ??= () => {
  let resolve!: (value: unknown) => void;
  let reject!: (reason?: unknown) => void;
  const promise = new Promise((res, rej) => { resolve = res; reject = rej; });
  return { promise, resolve, reject };
};
// The package is an ES module with a CommonJS build: load that one.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { StateMachine } = require('aws-local-stepfunctions') as typeof import('aws-local-stepfunctions', { with: { 'resolution-mode': 'import' } });

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** What answers a Task state: the resolved `Resource`, the state's name and its effective input. */
export type TaskAnswer = (resource: string, stateName: string, input: Json, execution: LocalExecution) => Promise<Json>;

export interface LocalExecution {
  readonly arn: string;
  readonly name: string;
  readonly input: string;
  readonly startDate: Date;
  status: 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'ABORTED';
  stopDate?: Date;
  output?: string;
  error?: string;
  cause?: string;
  /** History events, oldest first. */
  readonly events: HistoryEvent[];
  /** States entered: Step Functions bills one state transition each. */
  transitions: number;
  /**
   * The events Step Functions' own history would hold (its 25,000-event limit counts
   * these): the execution's start and end; each state's entry and exit; for a Task also
   * its schedule, start and success, and for each failed attempt its failure (and, when
   * retried, a new schedule and start).
   */
  historyEvents: number;
  readonly done: Promise<void>;
  abort?: () => void;
}

interface HistoryEvent {
  readonly id: number;
  readonly type: string;
  readonly timestamp: number;
  readonly stateEnteredEventDetails?: { name: string; input: string };
  readonly stateExitedEventDetails?: { name: string; output: string };
}

interface Definition {
  readonly States: Record<string, { Type: string; Resource?: string; Seconds?: number; SecondsPath?: string }>;
}

export interface LocalSfnOptions {
  /** The state machine's definition, intrinsic functions resolved. */
  readonly definition: Record<string, unknown>;
  readonly stateMachineArn: string;
  readonly answer: TaskAnswer;
  /** The time `$$.State.EnteredTime` reports to an execution, in epoch milliseconds (each execution may have a clock of its own). */
  readonly now: (executionArn?: string) => number;
  /**
   * Real milliseconds each Wait state takes. @default 0 (the test's clock moves instead).
   * A few milliseconds keep an import longer than a custom resource request's few calls,
   * as it is on AWS (polls 5 s or more apart; an import of minutes), where a test plays
   * requests against a running import.
   */
  readonly waitMs?: number;
}

class SfnError extends Error {
  constructor(public readonly code: string, message: string) {
    super(message);
  }
}

export class LocalSfn {
  public static async start(options: LocalSfnOptions): Promise<LocalSfn> {
    const sfn = new LocalSfn(options);
    await new Promise<void>((resolve) => sfn.server.listen(0, '127.0.0.1', resolve));
    return sfn;
  }

  public readonly executions = new Map<string, LocalExecution>();
  /** Every request received: its action (e.g. `StartExecution`). */
  public readonly calls: string[] = [];
  private readonly server: http.Server;
  private readonly definition: Definition;

  private constructor(private readonly options: LocalSfnOptions) {
    this.definition = options.definition as unknown as Definition;
    this.server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => { body += chunk.toString('utf8'); });
      req.on('end', () => this.handle(String(req.headers['x-amz-target'] ?? ''), body, res));
    });
  }

  public get endpoint(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  public async stop(): Promise<void> {
    for (const execution of this.executions.values()) {
      execution.abort?.();
    }
    await Promise.allSettled([...this.executions.values()].map((e) => e.done));
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private handle(target: string, body: string, res: http.ServerResponse): void {
    const action = target.replace(/^AWSStepFunctions\./, '');
    this.calls.push(action);
    let answer: unknown;
    try {
      const input = JSON.parse(body || '{}') as Record<string, unknown>;
      switch (action) {
        case 'StartExecution': answer = this.startExecution(input); break;
        case 'DescribeExecution': answer = this.describeExecution(input); break;
        case 'StopExecution': answer = this.stopExecution(input); break;
        case 'GetExecutionHistory': answer = this.history(input); break;
        default: throw new SfnError('UnknownOperationException', `Unknown operation ${action}`);
      }
    } catch (error) {
      const code = error instanceof SfnError ? error.code : 'InternalFailure';
      res.writeHead(error instanceof SfnError ? 400 : 500, { 'content-type': 'application/x-amz-json-1.0' });
      res.end(JSON.stringify({ __type: code, message: (error as Error).message }));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
    res.end(JSON.stringify(answer));
  }

  private execution(arn: unknown): LocalExecution {
    const execution = typeof arn === 'string' ? this.executions.get(arn) : undefined;
    if (!execution) {
      throw new SfnError('ExecutionDoesNotExist', `Execution Does Not Exist: '${String(arn)}'`);
    }
    return execution;
  }

  private startExecution(request: Record<string, unknown>): unknown {
    if (request.stateMachineArn !== this.options.stateMachineArn) {
      throw new SfnError('StateMachineDoesNotExist', `State Machine Does Not Exist: '${String(request.stateMachineArn)}'`);
    }
    const name = String(request.name ?? randomUUID());
    const input = String(request.input ?? '{}');
    const arn = `${this.options.stateMachineArn.replace(':stateMachine:', ':execution:')}:${name}`;
    const existing = this.executions.get(arn);
    if (existing) {
      if (existing.status === 'RUNNING' && existing.input === input) {
        return { executionArn: arn, startDate: existing.startDate.getTime() / 1000 };
      }
      throw new SfnError('ExecutionAlreadyExists', `Execution Already Exists: '${arn}'`);
    }
    const execution = this.run(arn, name, input);
    return { executionArn: arn, startDate: execution.startDate.getTime() / 1000 };
  }

  private run(arn: string, name: string, input: string): LocalExecution {
    const events: HistoryEvent[] = [];
    const execution = { arn, name, input, startDate: new Date(this.options.now(arn)), status: 'RUNNING', events, transitions: 0, historyEvents: 0 } as LocalExecution;
    const handlers: Record<string, (taskInput: unknown) => Promise<Json>> = {};
    const waits: Record<string, number> = {};
    for (const [stateName, state] of Object.entries(this.definition.States)) {
      if (state.Type === 'Task' && state.Resource) {
        const resource = state.Resource;
        handlers[stateName] = (taskInput) => this.options.answer(resource, stateName, taskInput as Json, execution);
      }
      if (state.Type === 'Wait') {
        waits[stateName] = this.options.waitMs ?? 0; // the test's clock moves instead
      }
    }
    const now = () => this.options.now(arn);
    const context = {
      Execution: { Id: arn, Name: name },
      // The context object's State.EnteredTime, read when a state's payload is processed.
      State: { get EnteredTime() { return new Date(now()).toISOString(); } },
    };
    const machine = new StateMachine(this.definition as never, { validationOptions: { checkArn: false } });
    const run = machine.run(JSON.parse(input), {
      overrides: { taskResourceLocalHandlers: handlers, waitTimeOverrides: waits, retryIntervalOverrides: this.zeroRetries() },
      context: context as never,
    });
    execution.abort = run.abort;
    const push = (event: Omit<HistoryEvent, 'id'>) => events.push({ id: events.length + 1, ...event });
    const isTask = (stateName: string) => this.definition.States[stateName]?.Type === 'Task';
    let failedLast = false;
    void (async () => {
      for await (const event of run.eventLogs) {
        const state = (event as { state?: { name: string } }).state;
        switch (event.type) {
          case 'ExecutionStarted': case 'ExecutionSucceeded': case 'ExecutionFailed': case 'ExecutionAborted': case 'ExecutionTimeout':
            execution.historyEvents += 1;
            break;
          case 'StateEntered':
            execution.historyEvents += isTask(state!.name) ? 3 : 1;
            failedLast = false;
            break;
          case 'StateFailed':
            execution.historyEvents += isTask(state!.name) ? 1 : 0;
            failedLast = true;
            break;
          case 'StateRetried':
            execution.historyEvents += 2;
            failedLast = false;
            break;
          case 'StateExited':
            execution.historyEvents += isTask(state!.name) && !failedLast ? 2 : 1;
            failedLast = false;
            break;
        }
        if (event.type === 'StateEntered') {
          execution.transitions += 1;
          push({ type: `${event.state.type}StateEntered`, timestamp: event.timestamp, stateEnteredEventDetails: { name: event.state.name, input: JSON.stringify(event.state.input) } });
        } else if (event.type === 'StateExited') {
          push({ type: `${event.state.type}StateExited`, timestamp: event.timestamp, stateExitedEventDetails: { name: event.state.name, output: JSON.stringify(event.state.output) } });
        }
      }
    })();
    (execution as { done: Promise<void> }).done = run.result.then((output) => {
      execution.status = 'SUCCEEDED';
      execution.output = JSON.stringify(output);
    }, (error: Error & { cause?: { name?: string; message?: string } }) => {
      if (execution.status === 'ABORTED') {
        return;
      }
      execution.status = 'FAILED';
      // aws-local-stepfunctions wraps the state's error: Fail states give their Error and Cause.
      const inner = error.cause as ({ name?: string; message?: string; cause?: string } | undefined);
      execution.error = inner?.name ?? error.name;
      execution.cause = inner?.message ?? error.message;
    }).finally(() => {
      execution.stopDate = new Date(this.options.now(arn));
    });
    this.executions.set(arn, execution);
    return execution;
  }

  /** Retries wait no real time: every retrier's interval is zero. */
  private zeroRetries(): Record<string, number> {
    return Object.fromEntries(Object.keys(this.definition.States).map((name) => [name, 0]));
  }

  private describeExecution(request: Record<string, unknown>): unknown {
    const e = this.execution(request.executionArn);
    return {
      executionArn: e.arn,
      stateMachineArn: this.options.stateMachineArn,
      name: e.name,
      status: e.status,
      startDate: e.startDate.getTime() / 1000,
      stopDate: e.stopDate ? e.stopDate.getTime() / 1000 : undefined,
      input: e.input,
      output: e.output,
      error: e.error,
      cause: e.cause,
    };
  }

  private stopExecution(request: Record<string, unknown>): unknown {
    const e = this.execution(request.executionArn);
    if (e.status === 'RUNNING') {
      e.status = 'ABORTED';
      e.error = String(request.error ?? '');
      e.cause = String(request.cause ?? '');
      e.abort?.();
    }
    return { stopDate: this.options.now() / 1000 };
  }

  private history(request: Record<string, unknown>): unknown {
    const e = this.execution(request.executionArn);
    const ordered = request.reverseOrder ? [...e.events].reverse() : [...e.events];
    const start = Number(request.nextToken ?? 0);
    const size = Math.min(1000, Number(request.maxResults ?? 100) || 100);
    const page = ordered.slice(start, start + size);
    return {
      events: page.map((ev) => ({ ...ev, timestamp: ev.timestamp / 1000 })),
      nextToken: start + size < ordered.length ? String(start + size) : undefined,
    };
  }
}
