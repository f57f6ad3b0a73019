/**
 * Helpers of scripts/bench.ts: argument parsing, statistics, formatting, sparse disk images,
 * `du` and timed child processes. Node built-ins only.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';

export const KIB = 1024;
export const MIB = 1024 * KIB;
export const GIB = 1024 * MIB;

export const DEFAULT_RUNS = 5;
export const QUICK_RUNS = 3;
export const DEFAULT_SIZES: readonly number[] = [MIB, GIB, 4 * GIB];
export const QUICK_SIZES: readonly number[] = [MIB, 256 * MIB];

export interface BenchOptions {
  /** Runs of every measurement; each figure is their median. */
  readonly runs: number;
  /** Disk image sizes in bytes, ascending; the first is the small reference image. */
  readonly sizes: readonly number[];
  readonly quick: boolean;
  /** Keep the .bench/ run directory (for debugging). */
  readonly keep: boolean;
  readonly help: boolean;
}

export const USAGE = [
  'Usage: npx projen bench [-- options]   (or: ts-node -T scripts/bench.ts [options])',
  '  --runs N        runs per measurement, each figure is their median (default 5; 3 with --quick)',
  '  --quick         smoke test: images of 1 MiB and 256 MiB, 3 runs',
  '  --sizes LIST    image sizes, such as 1M,1G,4G (default 1M,1G,4G); the smallest is the reference',
  '  --keep          keep the .bench/run-* directory (images, cdk.out folders) afterwards',
].join('\n');

export function parseArgs(argv: readonly string[]): BenchOptions {
  let runs: number | undefined;
  let sizes: number[] | undefined;
  let quick = false;
  let keep = false;
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s, 2);
    const value = (): string => {
      const text = inline ?? argv[++i];
      if (text === undefined) throw new Error(`${flag} needs a value\n${USAGE}`);
      return text;
    };
    switch (flag) {
      case '--runs': {
        const text = value();
        runs = Number(text);
        if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a positive integer, not '${text}'`);
        break;
      }
      case '--sizes':
        sizes = value().split(',').filter((s) => s.trim() !== '').map(parseSize);
        break;
      case '--quick':
        quick = true;
        break;
      case '--keep':
        keep = true;
        break;
      case '--help':
      case '-h':
        help = true;
        break;
      default:
        throw new Error(`Unknown argument '${argv[i]}'\n${USAGE}`);
    }
  }
  const chosen = [...new Set(sizes ?? (quick ? QUICK_SIZES : DEFAULT_SIZES))].sort((a, b) => a - b);
  if (chosen.length === 0) throw new Error('--sizes needs at least one size');
  return { runs: runs ?? (quick ? QUICK_RUNS : DEFAULT_RUNS), sizes: chosen, quick, keep, help };
}

/** '1M', '256MiB', '4G', '1048576' → bytes. */
export function parseSize(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$/i.exec(text);
  if (!match) throw new Error(`Cannot read the size '${text}': use a number with K, M or G (binary units), such as 256M`);
  const unit = { '': 1, 'K': KIB, 'M': MIB, 'G': GIB, 'T': 1024 * GIB }[match[2].toUpperCase()] ?? 1;
  const bytes = Math.round(Number(match[1]) * unit);
  if (bytes < MIB) throw new Error(`Image size ${text} is too small: use at least 1M`);
  if (bytes % 512 !== 0) throw new Error(`Image size ${text} is not a whole number of 512-byte sectors`);
  return bytes;
}

export function formatSize(bytes: number): string {
  for (const [unit, scale] of [['GiB', GIB], ['MiB', MIB], ['KiB', KIB]] as const) {
    if (bytes >= scale) {
      const value = bytes / scale;
      return `${Number.isInteger(value) ? value : value.toFixed(1)} ${unit}`;
    }
  }
  return `${bytes} B`;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

export const seconds = (ms: number): string => (Number.isFinite(ms) ? (ms / 1000).toFixed(2) : '–');
export const millis = (ms: number): string => (Number.isFinite(ms) ? ms.toFixed(0) : '–');
export const mib = (kib: number | undefined): string => (kib !== undefined && Number.isFinite(kib) ? (kib / 1024).toFixed(1) : '–');
export const integer = (value: number | undefined): string => (value !== undefined && Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : '–');
export const ratio = (value: number): string => (Number.isFinite(value) ? `${value.toFixed(2)}×` : '–');

/** A Markdown table; columns whose alignment is 'r' are right-aligned. */
export function markdownTable(headers: readonly string[], rows: readonly (readonly string[])[], align: readonly ('l' | 'r')[] = []): string {
  const widths = headers.map((header, column) => Math.max(header.length, 3, ...rows.map((row) => (row[column] ?? '').length)));
  const cell = (text: string, column: number): string =>
    (align[column] === 'r' ? text.padStart(widths[column]) : text.padEnd(widths[column]));
  const line = (cells: readonly string[]): string => `| ${cells.map((text, column) => cell(text, column)).join(' | ')} |`;
  const rule = `|${widths.map((width, column) => (align[column] === 'r' ? `${'-'.repeat(width + 1)}:` : '-'.repeat(width + 2))).join('|')}|`;
  return [line(headers), rule, ...rows.map((row) => line(headers.map((_, column) => row[column] ?? '')))].join('\n');
}

/**
 * A sparse file of `bytes` holding a one-partition MBR (a Linux partition over the disk, signature 0x55AA),
 * so that disk inspection accepts it as a RAW disk. Only its first block takes disk space.
 */
export function createSparseDisk(file: string, bytes: number): void {
  const sectors = bytes / 512;
  const start = sectors > 4096 ? 2048 : 1;
  const mbr = Buffer.alloc(512);
  const entry = 446;
  mbr[entry] = 0x00; // not bootable
  mbr.set([0xfe, 0xff, 0xff], entry + 1); // CHS start: use LBA
  mbr[entry + 4] = 0x83; // Linux
  mbr.set([0xfe, 0xff, 0xff], entry + 5); // CHS end: use LBA
  mbr.writeUInt32LE(start, entry + 8);
  mbr.writeUInt32LE(Math.min(sectors - start, 0xffffffff), entry + 12);
  mbr.writeUInt32LE(0x0b1d1de5, 440); // disk signature
  mbr[510] = 0x55;
  mbr[511] = 0xaa;
  const fd = fs.openSync(file, 'w');
  try {
    fs.ftruncateSync(fd, bytes);
    fs.writeSync(fd, mbr, 0, mbr.length, 0);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * `du -sk` of the paths in ONE invocation, in KiB of real blocks: a hard-linked inode is counted only
 * under the first path that holds it, so a later path's figure is what it adds to the earlier ones.
 */
export function duKiB(...paths: string[]): number[] {
  const result = spawnSync('du', ['-sk', ...paths], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`du -sk ${paths.join(' ')} failed: ${result.stderr}`);
  const lines = result.stdout.trim().split('\n');
  if (lines.length !== paths.length) throw new Error(`du -sk printed ${lines.length} lines for ${paths.length} paths:\n${result.stdout}`);
  return lines.map((line) => Number(line.split('\t')[0]));
}

export interface TimedRun {
  /** Wall time of the whole child process, measured by this process. */
  readonly wallMs: number;
  /** Peak resident set size of the child in KiB (`/usr/bin/time -v`), when the time binary exists. */
  readonly maxRssKiB?: number;
  /** User + system CPU time of the child (`/usr/bin/time -v`), when the time binary exists. */
  readonly cpuMs?: number;
  readonly stdout: string;
}

export interface TimedRunOptions {
  readonly cwd: string;
  readonly env: NodeJS.ProcessEnv;
  /** Path of GNU time, to read the child's peak memory; undefined to run the command directly. */
  readonly timeBinary?: string;
  /** Where GNU time writes its report. */
  readonly timeReport: string;
}

/** Runs a command to completion, timing it; throws with its output when it fails. */
export function runTimed(command: string, args: readonly string[], options: TimedRunOptions): TimedRun {
  const [file, argv] = options.timeBinary
    ? [options.timeBinary, ['-v', '-o', options.timeReport, command, ...args]]
    : [command, [...args]];
  const started = process.hrtime.bigint();
  const result = spawnSync(file, argv, { cwd: options.cwd, env: options.env, encoding: 'utf8', maxBuffer: 64 * MIB });
  const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
  if (result.error) throw result.error;
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} exited with ${result.status ?? result.signal}:\n${result.stdout}\n${result.stderr}`);
  }
  if (!options.timeBinary) return { wallMs, stdout: result.stdout };
  const report = fs.readFileSync(options.timeReport, 'utf8');
  const field = (label: string): number | undefined => {
    const match = new RegExp(`${label}:\\s*([\\d.]+)`).exec(report);
    return match ? Number(match[1]) : undefined;
  };
  const [user, system] = [field('User time \\(seconds\\)'), field('System time \\(seconds\\)')];
  const cpuMs = user !== undefined && system !== undefined ? (user + system) * 1000 : undefined;
  return { wallMs, maxRssKiB: field('Maximum resident set size \\(kbytes\\)'), cpuMs, stdout: result.stdout };
}

/** The absolute path of GNU time, or undefined when there is none (`which time`). */
export function findTimeBinary(): string | undefined {
  const which = spawnSync('which', ['time'], { encoding: 'utf8' });
  const found = which.status === 0 ? which.stdout.trim().split('\n')[0] : '';
  if (!found) return undefined;
  const probe = spawnSync(found, ['-v', 'true'], { encoding: 'utf8' });
  return probe.status === 0 && /Maximum resident set size/.test(probe.stderr) ? found : undefined;
}

/** The median of the ratios a[i] ÷ b[i] of runs made side by side (pairs with a missing value are skipped). */
export function pairedMedianRatio(a: readonly number[], b: readonly number[]): number {
  const ratios = a.map((value, i) => value / b[i]).filter((value) => Number.isFinite(value));
  return median(ratios);
}
