/**
 * Loads the bundled engine function (the asset shipped in the package) in this process,
 * with its console captured, for the end-to-end tests.
 */
import * as fs from 'fs';
import { isBuiltin } from 'module';
import * as path from 'path';
import { format } from 'util';
import * as vm from 'vm';
import type { CloudFormationEvent, StepEvent } from '../../lambda/index';

const ROOT = path.join(__dirname, '..', '..');

/** The asset shipped in the package, produced by `npx projen bundle`. */
export const BUNDLE_PATH = path.join(ROOT, 'assets', 'lambda', 'index', 'index.js');

/** The sources the bundle is built from. */
const BUNDLE_SOURCES = [
  ...fs.readdirSync(path.join(ROOT, 'lambda')).filter((f) => f.endsWith('.ts')).map((f) => path.join(ROOT, 'lambda', f)),
  path.join(ROOT, 'src', 'private', 'contract.ts'),
];

/** What CloudFormation accepts as a custom resource response. */
export const MAX_RESPONSE_BYTES = 4096;

/** The engine function, as the bundle exports it. */
export interface HandlerModule {
  handler(event: CloudFormationEvent | StepEvent): Promise<unknown>;
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
  const { handler } = bundleModule.exports;
  if (typeof handler !== 'function') {
    throw new Error(`${BUNDLE_PATH} does not export handler: run \`npx projen bundle\`.`);
  }
  return { handler };
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

/**
 * The bundle runs in Node's main context, so its errors are not `instanceof` the test
 * sandbox's Error: recognise them by shape.
 */
export function asError(err: unknown): Error {
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

