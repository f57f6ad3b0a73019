/**
 * Drives the bundled custom resource handler through CloudFormation's custom resource
 * life cycle the way aws-cdk-lib's Provider framework does: `onEvent` once, then
 * `isComplete` with the same event (plus onEvent's PhysicalResourceId and Data) until it
 * answers `IsComplete: true` or throws. Records every invocation and the log lines it wrote.
 */
import * as fs from 'fs';
import type * as HttpsModule from 'https';
import { isBuiltin } from 'module';
import * as path from 'path';
import { format } from 'util';
import * as vm from 'vm';
import { LocalEc2 } from './local-ec2';
import type { HandlerEvent, IsCompleteResult, OnEventResult } from '../../lambda/index';

const ROOT = path.join(__dirname, '..', '..');

/** The asset shipped in the package, produced by `npx projen bundle`. */
export const BUNDLE_PATH = path.join(ROOT, 'assets', 'lambda', 'index', 'index.js');

/** The sources the bundle is built from. */
const BUNDLE_SOURCES = [
  path.join(ROOT, 'lambda', 'index.ts'),
  path.join(ROOT, 'lambda', 'decisions.ts'),
  path.join(ROOT, 'lambda', 'ec2.ts'),
  path.join(ROOT, 'src', 'private', 'contract.ts'),
];

/** The marker the Provider framework uses as physical ID when a Create failed before returning one. */
export const CREATE_FAILED_MARKER = 'AWSCDK::CustomResourceProviderFramework::CREATE_FAILED';

/** What CloudFormation accepts as a custom resource response. */
export const MAX_RESPONSE_BYTES = 4096;

/** The handler's two entry points, as the bundle exports them. */
export interface HandlerModule {
  onEvent(event: HandlerEvent): Promise<OnEventResult>;
  isComplete(event: HandlerEvent): Promise<IsCompleteResult>;
}

/** A custom resource request as CloudFormation delivers it through the Provider framework. */
export interface CfnEvent extends HandlerEvent {
  readonly ServiceToken: string;
  readonly ResponseURL: string;
  readonly ResourceType: string;
}

/**
 * Sets `env` in this process, then loads the bundle in-process the way Node's CommonJS
 * loader does (the file's exact bytes in the standard module wrapper) and returns its exports.
 *
 * Why not Jest's own `require`: the SDK's HTTP handler loads `node:http` lazily with a
 * dynamic `import()` for http:// endpoints, which Jest's module sandbox rejects without
 * `--experimental-vm-modules` (ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING_FLAG). So the
 * bundle is compiled here with Node's default loader for `import()`, and given the test's
 * `process` (for the environment) and `console` (for log capture). It may only load
 * Node built-ins: everything else, the SDK included, must be inside the bundle.
 */
export function loadBundledHandler(env: Readonly<Record<string, string>>): HandlerModule {
  if (!fs.existsSync(BUNDLE_PATH)) {
    throw new Error(`The bundled handler ${path.relative(ROOT, BUNDLE_PATH)} does not exist: run \`npx projen bundle\` first (the projen test task bundles before it runs Jest).`);
  }
  const bundledAt = fs.statSync(BUNDLE_PATH).mtimeMs;
  const newer = BUNDLE_SOURCES.filter((src) => fs.existsSync(src) && fs.statSync(src).mtimeMs > bundledAt);
  if (newer.length > 0) {
    throw new Error(`The bundled handler is older than ${newer.map((s) => path.relative(ROOT, s)).join(', ')}: run \`npx projen bundle\` again.`);
  }
  const defaultLoader = vm.constants?.USE_MAIN_CONTEXT_DEFAULT_LOADER;
  if (defaultLoader === undefined) {
    throw new Error(`Loading the bundled handler needs Node.js 20.12 or newer (vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER); this is ${process.version}.`);
  }
  Object.assign(process.env, env);

  const wrapper = vm.compileFunction(
    fs.readFileSync(BUNDLE_PATH, 'utf8'),
    ['exports', 'require', 'module', '__filename', '__dirname', 'process', 'console'],
    { filename: BUNDLE_PATH, importModuleDynamically: defaultLoader },
  );
  const bundleModule: { exports: Partial<HandlerModule> } = { exports: {} };
  const requireBuiltin = (id: string): unknown => {
    if (id === 'process' || id === 'node:process') {
      return process;
    }
    if (!isBuiltin(id)) {
      throw Object.assign(new Error(`Cannot find module '${id}' (the bundled handler may only load Node.js built-ins)`), { code: 'MODULE_NOT_FOUND' });
    }
    return jest.requireActual(id);
  };
  wrapper.call(bundleModule.exports, bundleModule.exports, requireBuiltin, bundleModule, BUNDLE_PATH, path.dirname(BUNDLE_PATH), process, console);
  const { onEvent, isComplete } = bundleModule.exports;
  if (typeof onEvent !== 'function' || typeof isComplete !== 'function') {
    throw new Error(`${BUNDLE_PATH} does not export onEvent and isComplete: run \`npx projen bundle\`.`);
  }
  return { onEvent, isComplete };
}

/** Captures everything written through `console` (the handler logs with console.log). */
export class LogCapture {
  public readonly lines: string[] = [];
  private readonly spies: jest.SpyInstance[] = [];

  public start(): void {
    for (const method of ['log', 'info', 'warn', 'error', 'debug'] as const) {
      this.spies.push(jest.spyOn(console, method).mockImplementation((...args: unknown[]) => {
        this.lines.push(format(...args));
      }));
    }
  }

  public stop(): void {
    this.spies.splice(0).forEach((spy) => spy.mockRestore());
  }

  public clear(): void {
    this.lines.length = 0;
  }
}

export interface Invocation {
  readonly entry: 'onEvent' | 'isComplete';
  /** Lines logged during this invocation. */
  readonly logs: readonly string[];
  readonly result?: OnEventResult | IsCompleteResult;
  readonly error?: Error;
}

export interface LifecycleOptions {
  /** At most this many isComplete calls. @default 20 */
  readonly maxPolls?: number;
  /** Wait between isComplete calls (the Provider framework's queryInterval). @default 0 */
  readonly pollIntervalMs?: number;
  /** Give up (and fail the test) after this long. @default 20000 */
  readonly timeoutMs?: number;
  /** Changes the event isComplete receives, e.g. to move Data.StartedAt into the past. */
  readonly beforePolling?: (event: CfnEvent) => CfnEvent;
  /** Runs before each isComplete call (1-based), e.g. to change things out of band. */
  readonly beforePoll?: (poll: number) => Promise<void> | void;
  /**
   * Stop (status IN_PROGRESS) after this many isComplete calls, as when a stack operation
   * is abandoned mid-wait and CloudFormation moves on to a Delete.
   */
  readonly stopAfterPolls?: number;
}

/** What the Provider framework would send back to CloudFormation. */
export interface LifecycleOutcome {
  readonly status: 'SUCCESS' | 'FAILED' | 'IN_PROGRESS';
  readonly physicalResourceId: string;
  readonly data: Readonly<Record<string, string>>;
  /** The handler's error, on FAILED. */
  readonly error?: Error;
  readonly onEventCalls: number;
  readonly isCompleteCalls: number;
  readonly invocations: readonly Invocation[];
  /** Size of the response body the framework PUTs to the ResponseURL, in bytes. */
  readonly responseBytes: number;
}

/** A long, realistic Lambda function name (64 characters, the maximum) for the framework's "Logs:" line. */
const USER_FUNCTION_NAME = 'VmImportStack-VmImportProviderIsCompleteHandlerF00D-AbCdEfGh1234';

export class LifecycleDriver {
  constructor(private readonly handler: HandlerModule, private readonly capture: LogCapture) {}

  /** Runs one custom resource request to its end, as the Provider framework would. */
  public async run(event: CfnEvent, options: LifecycleOptions = {}): Promise<LifecycleOutcome> {
    const maxPolls = options.maxPolls ?? 20;
    const deadline = Date.now() + (options.timeoutMs ?? 20_000);
    const invocations: Invocation[] = [];
    const counts = () => ({
      onEventCalls: invocations.filter((i) => i.entry === 'onEvent').length,
      isCompleteCalls: invocations.filter((i) => i.entry === 'isComplete').length,
      invocations,
    });

    const first = await this.invoke('onEvent', () => this.handler.onEvent(event), invocations);
    if (first.error) {
      // A Create that failed before it had a physical ID gets the framework's marker.
      const physicalResourceId = event.PhysicalResourceId ?? (event.RequestType === 'Create' ? CREATE_FAILED_MARKER : '');
      return this.failed(event, physicalResourceId, {}, first.error, counts());
    }
    const onEventResult = first.result as OnEventResult;
    const physicalResourceId = onEventResult.PhysicalResourceId || (event.RequestType === 'Create' ? event.RequestId : event.PhysicalResourceId ?? '');
    if (event.RequestType === 'Delete' && physicalResourceId !== event.PhysicalResourceId) {
      const error = new Error(`DELETE: cannot change the physical resource ID from "${event.PhysicalResourceId}" to "${physicalResourceId}" during deletion`);
      return this.failed(event, physicalResourceId, {}, error, counts());
    }
    let resourceEvent: CfnEvent = { ...event, ...onEventResult, PhysicalResourceId: physicalResourceId };
    if (options.beforePolling) {
      resourceEvent = options.beforePolling(resourceEvent);
    }
    const onEventData = resourceEvent.Data ?? {};

    for (let poll = 1; ; poll++) {
      if (options.stopAfterPolls !== undefined && poll > options.stopAfterPolls) {
        return { status: 'IN_PROGRESS', physicalResourceId, data: onEventData, responseBytes: 0, ...counts() };
      }
      if (poll > maxPolls || Date.now() > deadline) {
        throw new Error(`isComplete did not finish within ${maxPolls} polls / the driver's time limit`);
      }
      await options.beforePoll?.(poll);
      const polled = await this.invoke('isComplete', () => this.handler.isComplete(resourceEvent), invocations);
      if (polled.error) {
        return this.failed(event, physicalResourceId, onEventData, polled.error, counts());
      }
      const result = polled.result as IsCompleteResult;
      if (result.IsComplete) {
        const data = { ...onEventData, ...result.Data };
        return {
          status: 'SUCCESS',
          physicalResourceId,
          data,
          responseBytes: responseBytes(event, 'SUCCESS', 'SUCCESS', physicalResourceId, data),
          ...counts(),
        };
      }
      if (result.Data && Object.keys(result.Data).length > 0) {
        // The framework rejects this: the state machine retries with the original event.
        return this.failed(event, physicalResourceId, onEventData, new Error('"Data" is not allowed if "IsComplete" is "False"'), counts());
      }
      if (options.pollIntervalMs) {
        await new Promise((resolve) => setTimeout(resolve, options.pollIntervalMs));
      }
    }
  }

  private async invoke(
    entry: Invocation['entry'], call: () => Promise<OnEventResult | IsCompleteResult>, invocations: Invocation[],
  ): Promise<Invocation> {
    const start = this.capture.lines.length;
    let invocation: Invocation;
    try {
      const result = await call();
      invocation = { entry, result, logs: this.capture.lines.slice(start) };
    } catch (err) {
      const error = asError(err);
      invocation = { entry, error, logs: this.capture.lines.slice(start) };
    }
    invocations.push(invocation);
    return invocation;
  }

  private failed(
    event: CfnEvent, physicalResourceId: string, data: Record<string, string>, error: Error,
    counts: Pick<LifecycleOutcome, 'onEventCalls' | 'isCompleteCalls' | 'invocations'>,
  ): LifecycleOutcome {
    return {
      status: 'FAILED',
      physicalResourceId,
      data,
      error,
      responseBytes: responseBytes(event, 'FAILED', frameworkReason(error), physicalResourceId, data),
      ...counts,
    };
  }
}

/**
 * The Reason the Provider framework reports for a user function's error: the message, a
 * "Logs:" line and the Lambda runtime's stack trace (frames rewritten to /var/task/index.js).
 */
export function frameworkReason(error: Error): string {
  const message = [error.message, '', `Logs: /aws/lambda/${USER_FUNCTION_NAME}`, ''].join('\n');
  const trace = (error.stack ?? '').split('\n').slice(1).map((frame) => frame.replace(/\(?[^\s(]*assets\/lambda\/index\/index\.js/, '(/var/task/index.js'));
  return [message, ...trace].join('\n');
}

function responseBytes(event: CfnEvent, status: string, reason: string, physicalResourceId: string, data: Record<string, string>): number {
  const body = {
    Status: status,
    Reason: reason,
    StackId: event.StackId,
    RequestId: event.RequestId,
    PhysicalResourceId: physicalResourceId,
    LogicalResourceId: event.LogicalResourceId,
    Data: data,
  };
  return Buffer.byteLength(JSON.stringify(body), 'utf8');
}

/**
 * The bundle runs in Node's main context, so its errors are not `instanceof` the test
 * sandbox's Error: recognise them by shape.
 */
function asError(err: unknown): Error {
  if (err instanceof Error) {
    return err;
  }
  if (err !== null && typeof err === 'object' && typeof (err as { message?: unknown }).message === 'string') {
    return err as Error;
  }
  return new Error(String(err));
}

/** The JSON lines a handler invocation logged, parsed. */
export function jsonLines(logs: readonly string[]): Record<string, unknown>[] {
  return logs.flatMap((line) => {
    try {
      const parsed: unknown = JSON.parse(line);
      return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? [parsed as Record<string, unknown>] : [];
    } catch {
      return [];
    }
  });
}

export interface LocalHandlerOptions {
  /** The account LocalEc2 owns images and snapshots in. */
  readonly accountId: string;
  /** @default 'us-east-1' */
  readonly region?: string;
  /** VM_IMPORT_IAM_RETRY_SECONDS for the handler. @default 2 */
  readonly iamRetrySeconds?: number;
}

/** The bundled handler wired to a LocalEc2 server, with HTTPS blocked and console captured. */
export interface LocalHandler {
  readonly server: LocalEc2;
  readonly driver: LifecycleDriver;
  readonly capture: LogCapture;
  /** HTTPS requests that were refused (a real AWS endpoint is always HTTPS): must stay empty. */
  readonly blockedRequests: readonly string[];
  /** Stops the server; restores https, console and the environment. */
  stop(): Promise<void>;
}

/**
 * Starts a LocalEc2 server on 127.0.0.1, blocks every HTTPS request of this process, points
 * the bundled handler's EC2 client at the server with throwaway credentials (no profile,
 * session token or instance metadata), loads the bundle and starts capturing its logs.
 */
export async function startLocalHandler(options: LocalHandlerOptions): Promise<LocalHandler> {
  const blockedRequests: string[] = [];
  const https = jest.requireActual<typeof HttpsModule>('https');
  const block = (...args: unknown[]): never => {
    blockedRequests.push(format(args[0]));
    throw new Error('an HTTPS request was attempted; only the local EC2 server may be contacted');
  };
  const spies = [jest.spyOn(https, 'request').mockImplementation(block), jest.spyOn(https, 'get').mockImplementation(block)];
  const savedEnv: Record<string, string | undefined> = {};
  const capture = new LogCapture();
  let server: LocalEc2 | undefined;
  const stop = async (): Promise<void> => {
    capture.stop();
    spies.forEach((spy) => spy.mockRestore());
    await server?.stop();
    for (const [key, value] of Object.entries(savedEnv)) {
      if (value === undefined) {
        delete process.env[key];
      } else {
        process.env[key] = value;
      }
    }
  };
  try {
    const region = options.region ?? 'us-east-1';
    server = await LocalEc2.start({ accountId: options.accountId, region });
    const env = {
      AWS_ENDPOINT_URL_EC2: server.endpoint,
      AWS_REGION: region,
      AWS_ACCESS_KEY_ID: 'AKIDLOCALEC2TEST',
      AWS_SECRET_ACCESS_KEY: 'local-ec2-test-secret',
      AWS_EC2_METADATA_DISABLED: 'true',
      VM_IMPORT_IAM_RETRY_SECONDS: String(options.iamRetrySeconds ?? 2),
    };
    for (const key of [...Object.keys(env), 'AWS_SESSION_TOKEN', 'AWS_PROFILE', 'AWS_ENDPOINT_URL']) {
      savedEnv[key] = process.env[key];
    }
    delete process.env.AWS_SESSION_TOKEN;
    delete process.env.AWS_PROFILE;
    delete process.env.AWS_ENDPOINT_URL;
    const driver = new LifecycleDriver(loadBundledHandler(env), capture);
    capture.start();
    return { server, driver, capture, blockedRequests, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
