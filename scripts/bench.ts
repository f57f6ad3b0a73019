/**
 * Benchmark of cdk-vm-import against the plain `Asset` (aws-cdk-lib/aws-s3-assets), measured side by side
 * in one run:
 *   - synthesis with disk images of several sizes: wall time of a fresh process, peak memory, cdk.out disk use;
 *   - the custom resource handler bundle: size, gzip size, cold `require()` time against a bare `node -e 0`;
 *   - stacks of N imports: Lambda functions, resources, template bytes, and what each extra import adds;
 *   - the import engine's cost per import-hour: state transitions plus Lambda invocations, measured by running the
 *     synthesized state machine through a simulated one-hour import (test/e2e/engine.test.ts);
 *   - the worst-case Step Functions history events per route for the longest wait at the shortest interval synth
 *     accepts, next to the budget and Step Functions' limit (src/private/history.ts).
 *
 *   npx projen bench [-- --runs N | --quick | --sizes 1M,1G,4G | --keep]
 *
 * Every synth runs in a fresh `node -r ts-node/register/transpile-only` process on an app generated under
 * .bench/ (gitignored), so its time includes what a user's `cdk synth` pays. Never contacts the network.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';
import {
  BenchOptions,
  createSparseDisk,
  duKiB,
  findTimeBinary,
  formatSize,
  integer,
  markdownTable,
  median,
  pairedMedianRatio,
  mib,
  millis,
  parseArgs,
  ratio,
  runTimed,
  seconds,
  TimedRun,
  USAGE,
} from './bench-lib';
import { HISTORY_BUDGET, HISTORY_LIMIT, HistoryRoute, worstCaseHistory } from '../src/private/history';

const ROOT = path.resolve(__dirname, '..');
const SRC = path.join(ROOT, 'src');
const BENCH_DIR = path.join(ROOT, '.bench');
const BUNDLE = path.join(ROOT, 'assets', 'lambda', 'index', 'index.js');
const IMPORT_COUNTS = [1, 2, 5, 10];
/** The cold `require()` of the bundle is short and cheap: it gets this many times the runs. */
const BUNDLE_RUN_FACTOR = 4;
const STACK = 'Bench';

const LIMITS = {
  /** Warm synth with the largest image ÷ warm synth with the smallest one. */
  warmVsSmall: 1.1,
  /** First synth ÷ `sha256sum` of the same file. */
  firstVsSha256sum: 1.3,
  /** What cdk.out may grow by, in KiB, between the smallest and any larger image. */
  cdkOutGrowthKiB: 1024,
  /** Peak memory of synth with the largest image ÷ with the smallest one ("unchanged"). */
  peakRss: 1.1,
};

type Variant = 'sha256sum' | 'oursFirst' | 'oursWarm' | 'oursExisting' | 'assetFirst' | 'assetWarm';

const VARIANT_LABELS: Record<Variant, string> = {
  sha256sum: '`sha256sum` of the image',
  oursFirst: 'ours, first (cold hash cache, new cdk.out)',
  oursWarm: 'ours, warm (new empty cdk.out)',
  oursExisting: 'ours, warm (existing cdk.out)',
  assetFirst: 'Asset, first (cold ~/.cdk cache, new cdk.out)',
  assetWarm: 'Asset, warm (new empty cdk.out)',
};
const VARIANTS = Object.keys(VARIANT_LABELS) as Variant[];

/** One measurement of one variant with one image. */
interface Sample {
  readonly wallMs: number;
  /** Time in the app from after its imports to after `app.synth()`. */
  readonly synthMs?: number;
  readonly maxRssKiB?: number;
  /** User + system CPU time of the process. */
  readonly cpuMs?: number;
  /** `du -sk cdk.out`. */
  readonly cdkOutKiB?: number;
  /** Blocks of cdk.out not shared with the source image (`du -sk image cdk.out`, second line). */
  readonly notSharedKiB?: number;
  /** How the image sits in cdk.out: hard link, copy or none. */
  readonly staged?: string;
  /** Bytes our hash read in the synth (from the library's own counters). */
  readonly bytesHashed?: number;
}

/** What a generated app prints as its last stdout line. */
interface AppReport {
  readonly synthMs: number;
  readonly maxRssKiB: number;
  readonly cpuMs: number;
  readonly bytesHashed?: number;
}

interface ImportCountResult {
  readonly n: number;
  readonly lambdaFunctions: number;
  readonly resources: number;
  readonly templateBytes: number;
  readonly minifiedBytes: number;
  readonly synthMs: number;
}

/** What the engine's one-hour run measured (written by test/e2e/engine.test.ts). */
interface EngineCost {
  readonly polls: number;
  readonly stateTransitions: number;
  readonly stepInvocations: number;
  readonly customResourceInvocations: number;
}

interface BundleResult {
  readonly rawBytes: number;
  readonly gzipBytes: number;
  readonly runs: number;
  readonly bareMs: number;
  readonly requireMs: number;
  readonly bareRssKiB?: number;
  readonly requireRssKiB?: number;
}

class Bench {
  private readonly runDir: string;
  private readonly appDir: string;
  private readonly imageDir: string;
  private readonly timeBinary: string | undefined;
  private readonly timeReport: string;
  private readonly samples = new Map<string, Sample[]>();
  private readonly started = Date.now();

  constructor(private readonly options: BenchOptions) {
    this.runDir = path.join(BENCH_DIR, `run-${process.pid}`);
    this.appDir = path.join(this.runDir, 'apps');
    this.imageDir = path.join(this.runDir, 'images');
    this.timeReport = path.join(this.runDir, 'time.txt');
    this.timeBinary = findTimeBinary();
  }

  public run(): void {
    if (!fs.existsSync(BUNDLE)) throw new Error(`${path.relative(ROOT, BUNDLE)} is missing: run 'npx projen bundle' (or 'npx projen bench', which bundles first)`);
    fs.mkdirSync(this.appDir, { recursive: true });
    fs.mkdirSync(this.imageDir, { recursive: true });
    fs.mkdirSync(path.join(this.runDir, 'tmp'), { recursive: true });
    this.writeApps();
    this.printHeader();

    const bundle = this.measureBundle();
    const counts = this.measureImportCounts();
    const engineCost = this.measureEngineCost();
    const images = this.options.sizes.map((size) => this.createImage(size));
    for (let run = 1; run <= this.options.runs; run++) this.measureRound(run, images);

    this.printSynthTables();
    this.printBundleTable(bundle);
    this.printImportCountTable(counts);
    this.printEngineCost(counts, engineCost);
    this.printTargets();
    const elapsed = Math.round((Date.now() - this.started) / 1000);
    console.log(`\nBenchmark took ${Math.floor(elapsed / 60)} min ${elapsed % 60} s (measurements only; the bundle step before it is not included).`);
  }

  public cleanUp(): void {
    if (this.options.keep) {
      process.stderr.write(`Kept ${path.relative(ROOT, this.runDir)} (--keep)\n`);
      return;
    }
    fs.rmSync(this.runDir, { recursive: true, force: true });
    try {
      fs.rmdirSync(BENCH_DIR); // only when nothing else is in it
    } catch {
      // Other files in .bench/ are not ours.
    }
  }

  // ---- Generated apps ----------------------------------------------------------------------------

  private appFile(name: string): string {
    return path.join(this.appDir, `${name}.ts`);
  }

  private writeApps(): void {
    const src = JSON.stringify(SRC);
    const diskFileAsset = JSON.stringify(path.join(SRC, 'private', 'disk-file-asset'));
    const report = (hashed: string): string[] => [
      'const usage = process.resourceUsage();',
      'const cpuMs = (usage.userCPUTime + usage.systemCPUTime) / 1000;',
      `console.log(JSON.stringify({ synthMs: performance.now() - started, maxRssKiB: usage.maxRSS, cpuMs${hashed} }));`,
    ];
    const header = [
      '// Generated by scripts/bench.ts: one synthesis, measured by the parent process.',
      "import { App, Stack } from 'aws-cdk-lib';",
    ];
    fs.writeFileSync(this.appFile('ours'), [
      ...header,
      `import { DiskImage, VmImageImport } from ${src};`,
      'const started = performance.now();',
      'const app = new App({ outdir: process.env.BENCH_OUTDIR });',
      `const stack = new Stack(app, '${STACK}');`,
      "new VmImageImport(stack, 'Image', { diskImages: [DiskImage.fromAsset(process.env.BENCH_IMAGE as string)] });",
      'app.synth();',
      'let bytesHashed: number | undefined;',
      'try {',
      `  bytesHashed = require(${diskFileAsset}).hashingStats().bytesHashed;`,
      '} catch {',
      '  bytesHashed = undefined;',
      '}',
      ...report(', bytesHashed'),
      '',
    ].join('\n'));
    fs.writeFileSync(this.appFile('asset'), [
      ...header,
      "import { Asset } from 'aws-cdk-lib/aws-s3-assets';",
      'const started = performance.now();',
      'const app = new App({ outdir: process.env.BENCH_OUTDIR });',
      `const stack = new Stack(app, '${STACK}');`,
      "new Asset(stack, 'A', { path: process.env.BENCH_IMAGE as string });",
      'app.synth();',
      ...report(''),
      '',
    ].join('\n'));
    fs.writeFileSync(this.appFile('imports'), [
      '// Generated by scripts/bench.ts: stacks of N imports (no files needed), after one warm-up synth.',
      "import * as path from 'path';",
      "import { App, Stack } from 'aws-cdk-lib';",
      "import * as s3 from 'aws-cdk-lib/aws-s3';",
      `import { DiskImage, VmImageImport } from ${src};`,
      'const results: { n: number; synthMs: number }[] = [];',
      'for (const n of [0, ...JSON.parse(process.env.BENCH_COUNTS as string) as number[]]) {',
      '  const started = performance.now();',
      "  const app = new App({ outdir: path.join(process.env.BENCH_OUTDIR as string, n === 0 ? 'warm-up' : `n${n}`) });",
      `  const stack = new Stack(app, '${STACK}');`,
      "  const bucket = s3.Bucket.fromBucketName(stack, 'Images', 'bench-disk-images');",
      '  for (let i = 0; i < Math.max(n, 1); i++) {',
      "    new VmImageImport(stack, `Image${i}`, { diskImages: [DiskImage.fromBucket(bucket, 'k.vmdk')] });",
      '  }',
      '  app.synth();',
      '  if (n > 0) results.push({ n, synthMs: performance.now() - started });',
      '}',
      'console.log(JSON.stringify(results));',
      '',
    ].join('\n'));
  }

  // ---- Child processes ---------------------------------------------------------------------------

  private env(overrides: Record<string, string>): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const name of ['CDK_OUTDIR', 'CDK_CONTEXT_JSON', 'CDK_VM_IMPORT_CACHE_DIR', 'XDG_CACHE_HOME']) delete env[name];
    return {
      ...env,
      TMPDIR: path.join(this.runDir, 'tmp'),
      AWS_EC2_METADATA_DISABLED: 'true',
      CDK_DISABLE_VERSION_CHECK: '1',
      JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION: '20',
      TS_NODE_TRANSPILE_ONLY: 'true',
      ...overrides,
    };
  }

  private timed(command: string, args: string[], env: NodeJS.ProcessEnv): TimedRun {
    return runTimed(command, args, { cwd: ROOT, env, timeBinary: this.timeBinary, timeReport: this.timeReport });
  }

  private runApp(name: string, env: Record<string, string>): { run: TimedRun; report: string } {
    const run = this.timed(process.execPath, ['-r', 'ts-node/register/transpile-only', this.appFile(name)], this.env(env));
    const lines = run.stdout.trim().split('\n');
    return { run, report: lines[lines.length - 1] };
  }

  private progress(text: string): void {
    const elapsed = Math.round((Date.now() - this.started) / 1000);
    const clock = `${Math.floor(elapsed / 60)}:${`${elapsed % 60}`.padStart(2, '0')}`;
    process.stderr.write(`[${clock.padStart(5)}] ${text}\n`);
  }

  // ---- Synthesis with disk images ----------------------------------------------------------------

  private createImage(size: number): string {
    const file = path.join(this.imageDir, `disk-${formatSize(size).replace(/[ .]/g, '')}.img`);
    createSparseDisk(file, size);
    return file;
  }

  private record(size: number, variant: Variant, sample: Sample): void {
    const key = `${size}:${variant}`;
    this.samples.set(key, [...(this.samples.get(key) ?? []), sample]);
    const details = [
      `${seconds(sample.wallMs)} s`,
      sample.cpuMs !== undefined ? `CPU ${seconds(sample.cpuMs)} s` : '',
      sample.maxRssKiB !== undefined ? `${mib(sample.maxRssKiB)} MiB` : '',
      sample.cdkOutKiB !== undefined ? `cdk.out ${integer(sample.cdkOutKiB)} KiB` : '',
      sample.staged ?? '',
    ].filter((text) => text !== '');
    this.progress(`run ${this.samplesOf(size, variant).length}/${this.options.runs} · ${formatSize(size)} · ${variant}: ${details.join(', ')}`);
  }

  private samplesOf(size: number, variant: Variant): Sample[] {
    return this.samples.get(`${size}:${variant}`) ?? [];
  }

  /**
   * One run of every variant with every image. `sha256sum` and the first synth of an image run back to back,
   * then the warm synths of all images back to back (in alternating order), so that the ratios of the targets
   * compare runs made side by side; the plain Asset's large copies come last.
   */
  private measureRound(run: number, images: readonly string[]): void {
    const { sizes } = this.options;
    const rounds = images.map((image) => {
      const dir = path.join(this.runDir, `run${run}-${path.basename(image, '.img')}`);
      const oursCache = path.join(dir, 'ours-cache');
      const oursHome = path.join(dir, 'ours-home');
      const assetHome = path.join(dir, 'asset-home');
      for (const made of [oursCache, oursHome, assetHome]) fs.mkdirSync(made, { recursive: true });
      return {
        dir,
        image,
        warmOut: path.join(dir, 'out-warm'),
        ours: { CDK_VM_IMPORT_CACHE_DIR: oursCache, HOME: oursHome, BENCH_IMAGE: image },
        // The plain Asset caches its fingerprint under ~/.cdk (aws-cdk-lib 2.257): a fresh HOME is its cold cache.
        asset: { CDK_VM_IMPORT_CACHE_DIR: oursCache, HOME: assetHome, BENCH_IMAGE: image },
      };
    });
    const order = sizes.map((_, i) => i);
    if (run % 2 === 0) order.reverse();

    sizes.forEach((size, i) => {
      const { image, dir, ours } = rounds[i];
      const sha = this.timed('sha256sum', [image], this.env({}));
      this.record(size, 'sha256sum', { wallMs: sha.wallMs, cpuMs: sha.cpuMs, maxRssKiB: sha.maxRssKiB });
      this.record(size, 'oursFirst', this.synth('ours', image, path.join(dir, 'out-first'), ours, true));
    });
    for (const i of order) {
      const { image, warmOut, ours } = rounds[i];
      this.record(sizes[i], 'oursWarm', this.synth('ours', image, warmOut, ours, false));
    }
    for (const i of order) {
      const { image, warmOut, ours } = rounds[i];
      this.record(sizes[i], 'oursExisting', this.synth('ours', image, warmOut, ours, true));
    }
    sizes.forEach((size, i) => {
      const { image, dir, asset } = rounds[i];
      this.record(size, 'assetFirst', this.synth('asset', image, path.join(dir, 'out-asset-first'), asset, true));
      this.record(size, 'assetWarm', this.synth('asset', image, path.join(dir, 'out-asset-warm'), asset, true));
      fs.rmSync(dir, { recursive: true, force: true });
    });
  }

  /** Synthesizes an app into `outdir` (new unless it exists), measures it, and removes `outdir` if asked. */
  private synth(app: 'ours' | 'asset', image: string, outdir: string, env: Record<string, string>, remove: boolean): Sample {
    const { run, report } = this.runApp(app, { ...env, BENCH_OUTDIR: outdir });
    const parsed = JSON.parse(report) as AppReport;
    const [cdkOutKiB] = duKiB(outdir);
    const [, notSharedKiB] = duKiB(image, outdir);
    const staged = stagedAs(image, outdir);
    if (remove) {
      fs.rmSync(outdir, { recursive: true, force: true });
      // Leave no large copy's write-back to slow the next measurement.
      if (staged === 'copy' && fs.statSync(image).size > 64 * 1024 * 1024) syncDisks();
    }
    return {
      wallMs: run.wallMs,
      synthMs: parsed.synthMs,
      maxRssKiB: run.maxRssKiB ?? parsed.maxRssKiB,
      cpuMs: run.cpuMs ?? parsed.cpuMs,
      cdkOutKiB,
      notSharedKiB,
      staged,
      bytesHashed: parsed.bytesHashed,
    };
  }

  // ---- Handler bundle ----------------------------------------------------------------------------

  private measureBundle(): BundleResult {
    const bytes = fs.readFileSync(BUNDLE);
    const runs = this.options.runs * BUNDLE_RUN_FACTOR;
    const env = this.env({ HOME: path.join(this.runDir, 'tmp') });
    const bare: TimedRun[] = [];
    const required: TimedRun[] = [];
    const requireBundle = () => required.push(this.timed(process.execPath, ['-e', `require(${JSON.stringify(BUNDLE)})`], env));
    const bareNode = () => bare.push(this.timed(process.execPath, ['-e', '0'], env));
    for (let i = 0; i < runs; i++) {
      // Alternate the order so that drift of the machine's load weighs on both alike.
      if (i % 2 === 0) {
        bareNode();
        requireBundle();
      } else {
        requireBundle();
        bareNode();
      }
    }
    const rss = (runsOf: TimedRun[]) => (this.timeBinary ? median(runsOf.map((r) => r.maxRssKiB ?? NaN)) : undefined);
    const result: BundleResult = {
      rawBytes: bytes.length,
      gzipBytes: zlib.gzipSync(bytes).length,
      runs,
      bareMs: median(bare.map((r) => r.wallMs)),
      requireMs: median(required.map((r) => r.wallMs)),
      bareRssKiB: rss(bare),
      requireRssKiB: rss(required),
    };
    this.progress(`bundle: node -e 0 ${millis(result.bareMs)} ms, require() ${millis(result.requireMs)} ms (median of ${runs})`);
    return result;
  }

  // ---- Stacks of N imports -----------------------------------------------------------------------

  private measureImportCounts(): ImportCountResult[] {
    const outdir = path.join(this.runDir, 'imports');
    const perRun: ImportCountResult[][] = [];
    for (let run = 1; run <= this.options.runs; run++) {
      fs.rmSync(outdir, { recursive: true, force: true });
      const { report } = this.runApp('imports', {
        BENCH_OUTDIR: outdir,
        BENCH_COUNTS: JSON.stringify(IMPORT_COUNTS),
        HOME: path.join(this.runDir, 'tmp'),
        CDK_VM_IMPORT_CACHE_DIR: path.join(this.runDir, 'tmp', 'cache'),
      });
      const timings = JSON.parse(report) as { n: number; synthMs: number }[];
      perRun.push(timings.map(({ n, synthMs }) => ({ ...countTemplate(path.join(outdir, `n${n}`, `${STACK}.template.json`)), n, synthMs })));
      this.progress(`N imports: run ${run}/${this.options.runs}`);
    }
    fs.rmSync(outdir, { recursive: true, force: true });
    return IMPORT_COUNTS.map((n) => {
      const results = perRun.map((ofRun) => ofRun.find((r) => r.n === n) as ImportCountResult);
      const pick = (field: keyof Omit<ImportCountResult, 'n'>) => median(results.map((r) => r[field]));
      const distinct = new Set(results.map((r) => `${r.lambdaFunctions}/${r.resources}/${r.templateBytes}`));
      if (distinct.size > 1) process.stderr.write(`warning: N=${n} gave different templates across runs: ${[...distinct].join(', ')}\n`);
      return {
        n,
        lambdaFunctions: pick('lambdaFunctions'),
        resources: pick('resources'),
        templateBytes: pick('templateBytes'),
        minifiedBytes: pick('minifiedBytes'),
        synthMs: pick('synthMs'),
      };
    });
  }

  // ---- The engine's cost per import-hour ------------------------------------------------------------

  private measureEngineCost(): EngineCost {
    const file = path.join(this.runDir, 'engine-cost.json');
    const jest = path.join(ROOT, 'node_modules', '.bin', 'jest');
    const run = spawnSync(jest, ['--coverage=false', 'test/e2e/engine.test.ts', '-t', 'import-hour'], {
      cwd: ROOT, encoding: 'utf8', env: { ...process.env, BENCH_ENGINE_COST_FILE: file, TMPDIR: path.join(this.runDir, 'tmp') },
    });
    if (run.status !== 0 || !fs.existsSync(file)) {
      throw new Error(`the engine cost run failed:\n${run.stdout}\n${run.stderr}`);
    }
    this.progress('engine: one simulated import-hour');
    return JSON.parse(fs.readFileSync(file, 'utf8')) as EngineCost;
  }

  private printEngineCost(counts: ImportCountResult[], cost: EngineCost): void {
    const one = counts.find((c) => c.n === 1) as ImportCountResult;
    const two = counts.find((c) => c.n === 2) as ImportCountResult;
    const most = counts[counts.length - 1];
    console.log('\n## The import engine\n');
    console.log(markdownTable(['figure', 'measured', 'target', 'result'], [
      ['Lambda functions per stack', `${integer(one.lambdaFunctions)} (with ${most.n} imports: ${integer(most.lambdaFunctions)})`, '≤ 2',
        most.lambdaFunctions <= 2 ? 'PASS' : 'FAIL'],
      ['resources per stack with one import', integer(one.resources), '–', '–'],
      ['template bytes per stack with one import', integer(one.templateBytes), '–', '–'],
      ['resources per extra import', integer(two.resources - one.resources), '–', '–'],
      ['template bytes per extra import', integer(two.templateBytes - one.templateBytes), '–', '–'],
      [`state transitions + Lambda invocations per import-hour (${cost.polls} polls at 30 s)`,
        `${integer(cost.stateTransitions + cost.stepInvocations + cost.customResourceInvocations)} ` +
        `(${integer(cost.stateTransitions)} transitions, ${cost.stepInvocations} step + ${cost.customResourceInvocations} custom resource invocations)`,
        '≤ 150', cost.stateTransitions + cost.stepInvocations + cost.customResourceInvocations <= 150 ? 'PASS' : 'FAIL'],
    ], ['l', 'r', 'r', 'l']));
    console.log('\nEach poll is three state transitions (wait, describe, choice), whatever the interval: the figure per hour is ' +
      '3 × 3600 ÷ pollInterval plus a few; it meets 150 from a 75-second interval.'); this.printHistoryBudget();
  }

  /** The worst case of each route at the longest timeout and the shortest interval synth accepts for it. */
  private printHistoryBudget(): void {
    const rows = (['image', 'snapshots'] as HistoryRoute[]).flatMap((route) => [6 * 3600, 12 * 3600].map((timeout) => {
      let interval = 5;
      while (worstCaseHistory(route, timeout, interval).events > HISTORY_BUDGET) {
        interval += 1;
      }
      const worst = worstCaseHistory(route, timeout, interval);
      return [
        route === 'image' ? 'ImportImage' : 'snapshot', `${timeout / 3600} h`, `${interval} s`,
        `${integer(worst.polls)} × ${worst.eventsPerPoll}`, integer(worst.events), `≤ ${integer(HISTORY_BUDGET)} (limit ${integer(HISTORY_LIMIT)})`,
        worst.events <= HISTORY_BUDGET && worstCaseHistory(route, timeout, interval - 1).events > HISTORY_BUDGET ? 'PASS' : 'FAIL',
      ];
    }));
    console.log('\n## Step Functions history events, worst case\n');
    console.log(markdownTable(['route', 'timeout', 'shortest pollInterval accepted', 'polls × events', 'worst-case events', 'budget', 'result'],
      rows, ['l', 'r', 'r', 'r', 'r', 'r', 'l']));
    console.log('\nCounted as Step Functions counts them; test/e2e/history.test.ts checks the count against the synthesized state machine. ' +
      'A second less than the interval shown is refused at synth.');
  }

  // ---- Output ------------------------------------------------------------------------------------

  private printHeader(): void {
    const cpus = os.cpus();
    const args = process.argv.slice(2).join(' ');
    const cdkVersion = (JSON.parse(fs.readFileSync(require.resolve('aws-cdk-lib/package.json'), 'utf8')) as { version: string }).version;
    const { runs, sizes } = this.options;
    console.log('# cdk-vm-import benchmark\n');
    console.log(`- Command: \`npx projen bench${args ? ` ${args}` : ''}\` (runs \`ts-node -T scripts/bench.ts${args ? ` ${args}` : ''}\`)`);
    console.log(`- Machine: ${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${cpus.length} cores, ${formatSize(os.totalmem())} RAM, ` +
      `${os.type()} ${os.release()} ${os.arch()}; Node ${process.version}; aws-cdk-lib ${cdkVersion}; load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
    console.log(`- Started: ${new Date(this.started).toISOString()}`);
    console.log(`- Method: every figure is the median of ${runs} runs (handler require(): ${runs * BUNDLE_RUN_FACTOR}); each run measures every ` +
      'variant and size, the pairs the targets compare back to back. Each synth is a fresh `node -r ts-node/register/transpile-only` process on a generated app under .bench/; ' +
      `peak memory from ${this.timeBinary ? `\`${this.timeBinary} -v\`` : 'the child\'s process.resourceUsage().maxRSS'}; ` +
      'disk use is `du -sk` (real blocks) of cdk.out. ' +
      `Images (${sizes.map(formatSize).join(', ')}) are sparse files holding a one-partition MBR, on the same filesystem as cdk.out.`);
    console.log('');
  }

  private printSynthTables(): void {
    const { runs, sizes } = this.options;
    console.log(`## Synthesis with a disk image (median of ${runs} runs)\n`);
    console.log('`wall`: the whole process, as `cdk synth` pays it. `CPU`: its user + system time. `synth`: inside the app, from after its imports to after `app.synth()`. ' +
      '`not shared`: cdk.out blocks not shared with the image file (`du -sk image cdk.out`). `hashed`: bytes our hash read.\n');
    const rows: string[][] = [];
    for (const size of sizes) {
      for (const variant of VARIANTS) {
        const samples = this.samplesOf(size, variant);
        const pick = (field: keyof Omit<Sample, 'staged'>): number | undefined =>
          (samples.some((s) => s[field] !== undefined) ? median(samples.map((s) => s[field] ?? NaN)) : undefined);
        const hashed = pick('bytesHashed');
        rows.push([
          formatSize(size),
          VARIANT_LABELS[variant],
          seconds(pick('wallMs') ?? NaN),
          seconds(pick('cpuMs') ?? NaN),
          seconds(pick('synthMs') ?? NaN),
          mib(pick('maxRssKiB')),
          integer(pick('cdkOutKiB')),
          integer(pick('notSharedKiB')),
          [...new Set(samples.map((s) => s.staged).filter((s) => s !== undefined))].join(', ') || '–',
          hashed === undefined ? '–' : formatSize(hashed).replace(/^0 B$/, '0'),
        ]);
      }
    }
    console.log(markdownTable(
      ['image', 'variant', 'wall s', 'CPU s', 'synth s', 'peak RSS MiB', 'cdk.out KiB', 'not shared KiB', 'image in cdk.out', 'hashed'],
      rows, ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'l', 'r']));

    console.log('\n### Ours against the plain Asset and `sha256sum` (ratios of the medians above)\n');
    const comparison = sizes.map((size) => {
      const wall = (variant: Variant) => this.median(size, variant, 'wallMs');
      const disk = (variant: Variant) => this.median(size, variant, 'cdkOutKiB');
      return [
        formatSize(size),
        ratio(wall('oursFirst') / wall('assetFirst')),
        ratio(wall('oursWarm') / wall('assetWarm')),
        ratio(wall('oursFirst') / wall('sha256sum')),
        ratio(wall('assetFirst') / wall('sha256sum')),
        `${integer(disk('oursWarm'))} / ${integer(disk('assetWarm'))}`,
      ];
    });
    console.log(markdownTable(
      ['image', 'first: ours ÷ Asset', 'warm: ours ÷ Asset', 'first ours ÷ sha256sum', 'first Asset ÷ sha256sum', 'cdk.out KiB: ours / Asset'],
      comparison, ['l', 'r', 'r', 'r', 'r', 'r']));
  }

  private printBundleTable(bundle: BundleResult): void {
    console.log(`\n## Handler bundle (${path.relative(ROOT, BUNDLE)})\n`);
    console.log(markdownTable(['raw bytes', 'gzip bytes (level 6)'], [[integer(bundle.rawBytes), integer(bundle.gzipBytes)]], ['r', 'r']));
    console.log('');
    const extra = bundle.requireMs - bundle.bareMs;
    console.log(markdownTable(
      [`cold start (median of ${bundle.runs})`, 'wall ms', 'peak RSS MiB'],
      [
        ['`node -e 0`', millis(bundle.bareMs), mib(bundle.bareRssKiB)],
        ['`node -e "require(bundle)"`', millis(bundle.requireMs), mib(bundle.requireRssKiB)],
        ['require() cost: difference', `+${millis(extra)}`, bundle.requireRssKiB !== undefined && bundle.bareRssKiB !== undefined ? `+${mib(bundle.requireRssKiB - bundle.bareRssKiB)}` : '–'],
        ['require() ÷ bare node', ratio(bundle.requireMs / bundle.bareMs), '–'],
      ],
      ['l', 'r', 'r']));
  }

  private printImportCountTable(counts: ImportCountResult[]): void {
    console.log(`\n## N imports in one stack (\`DiskImage.fromBucket\`; median of ${this.options.runs} runs, counts identical in every run)\n`);
    console.log(markdownTable(
      ['N', 'Lambda functions', 'resources', 'template bytes', 'minified bytes', 'construct+synth ms'],
      counts.map((c) => [`${c.n}`, integer(c.lambdaFunctions), integer(c.resources), integer(c.templateBytes), integer(c.minifiedBytes), millis(c.synthMs)]),
      ['r', 'r', 'r', 'r', 'r', 'r']));
  }

  private printTargets(): void {
    const { sizes } = this.options;
    const small = sizes[0];
    const large = sizes[sizes.length - 1];
    const [smallLabel, largeLabel] = [formatSize(small), formatSize(large)];
    const rows: string[][] = [];
    const check = (target: string, measured: string, limit: string, pass: boolean) => rows.push([target, measured, limit, pass ? 'PASS' : 'FAIL']);

    const sideBySide = (target: string, a: [number, Variant], b: [number, Variant], limit: number) => {
      const paired = this.pairedRatio(a, b, 'wallMs');
      const [wallA, wallB] = [this.median(a[0], a[1], 'wallMs'), this.median(b[0], b[1], 'wallMs')];
      const cpu = this.pairedRatio(a, b, 'cpuMs');
      check(target,
        `${ratio(paired)} (medians ${seconds(wallA)} s ÷ ${seconds(wallB)} s = ${ratio(wallA / wallB)}; CPU time ${ratio(cpu)})`,
        `≤ ${limit}×`, paired <= limit);
    };
    sideBySide(`warm synth, ${largeLabel} image ÷ ${smallLabel} image`, [large, 'oursWarm'], [small, 'oursWarm'], LIMITS.warmVsSmall);
    sideBySide(`first synth ÷ \`sha256sum\`, ${largeLabel} image`, [large, 'oursFirst'], [large, 'sha256sum'], LIMITS.firstVsSha256sum);

    for (const variant of ['oursFirst', 'oursWarm'] as const) {
      const base = this.median(small, variant, 'cdkOutKiB');
      const growths = sizes.map((size) => this.median(size, variant, 'cdkOutKiB') - base);
      const worst = Math.max(...growths);
      const staged = [...new Set(sizes.flatMap((size) => this.samplesOf(size, variant).map((s) => s.staged)))].join(', ');
      check(`cdk.out growth, ${variant === 'oursFirst' ? 'first' : 'warm'} synth, any image vs ${smallLabel}`,
        `+${integer(worst)} KiB (image in cdk.out: ${staged})`, `< ${integer(LIMITS.cdkOutGrowthKiB)} KiB`, worst < LIMITS.cdkOutGrowthKiB);
    }

    for (const variant of ['oursFirst', 'oursWarm'] as const) {
      const rssLarge = this.median(large, variant, 'maxRssKiB');
      const rssSmall = this.median(small, variant, 'maxRssKiB');
      check(`peak memory, ${variant === 'oursFirst' ? 'first' : 'warm'} synth, ${largeLabel} ÷ ${smallLabel} image`,
        `${ratio(rssLarge / rssSmall)} (${mib(rssLarge)} ÷ ${mib(rssSmall)} MiB)`, `≤ ${LIMITS.peakRss}×`, rssLarge <= LIMITS.peakRss * rssSmall);
    }

    console.log('\n## Targets\n');
    console.log('Time ratios are the median of the per-run ratios of runs made back to back (they decide), then the ratio of the medians ' +
      'and the per-run CPU time ratio; memory and disk compare medians.\n');
    console.log(markdownTable(['target', 'measured', 'limit', 'result'], rows, ['l', 'l', 'l', 'l']));
  }

  private median(size: number, variant: Variant, field: keyof Omit<Sample, 'staged'>): number {
    return median(this.samplesOf(size, variant).map((s) => s[field] ?? NaN));
  }

  /** Median over the runs of a ÷ b, run by run (the samples of one run share an index). */
  private pairedRatio([sizeA, variantA]: [number, Variant], [sizeB, variantB]: [number, Variant], field: 'wallMs' | 'cpuMs'): number {
    const values = (size: number, variant: Variant) => this.samplesOf(size, variant).map((s) => s[field] ?? NaN);
    return pairedMedianRatio(values(sizeA, variantA), values(sizeB, variantB));
  }
}

/** How the image sits in cdk.out: 'hard link' (same inode), 'copy', or 'none'. */
function stagedAs(image: string, outdir: string): string {
  const source = fs.statSync(image);
  const extension = path.extname(image);
  const staged = fs.readdirSync(outdir)
    .filter((name) => name.startsWith('asset.') && name.endsWith(extension))
    .map((name) => fs.statSync(path.join(outdir, name)))
    .filter((stats) => stats.isFile());
  if (staged.length === 0) return 'none';
  return staged.some((stats) => stats.ino === source.ino && stats.dev === source.dev) ? 'hard link' : 'copy';
}

function countTemplate(file: string): Omit<ImportCountResult, 'n' | 'synthMs'> {
  const text = fs.readFileSync(file, 'utf8');
  const template = JSON.parse(text) as { Resources?: Record<string, { Type: string }> };
  const resources = Object.values(template.Resources ?? {});
  return {
    lambdaFunctions: resources.filter((r) => r.Type === 'AWS::Lambda::Function').length,
    resources: resources.length,
    templateBytes: Buffer.byteLength(text),
    minifiedBytes: Buffer.byteLength(JSON.stringify(template)),
  };
}

function syncDisks(): void {
  runTimed('sync', [], { cwd: ROOT, env: process.env, timeReport: '' });
}

function main(): void {
  const options = parseArgs(process.argv.slice(2));
  if (options.help) {
    console.log(USAGE);
    return;
  }
  const bench = new Bench(options);
  const interrupted = (signal: NodeJS.Signals) => {
    bench.cleanUp();
    process.stderr.write(`Interrupted (${signal}); removed the benchmark's files\n`);
    process.exit(130);
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    bench.run();
  } finally {
    bench.cleanUp();
  }
}

try {
  main();
} catch (error) {
  process.stderr.write(`bench failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
}
