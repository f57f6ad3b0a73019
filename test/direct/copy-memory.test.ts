import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as v8 from 'v8';
import * as vm from 'vm';
import { EBSClient, StartSnapshotCommand } from '@aws-sdk/client-ebs';
import { fileSource } from './sources';
import { copyRange } from '../../lambda/direct/copy-range';
import { openDecoder } from '../../lambda/direct/open';
import { BLOCK_SIZE } from '../../lambda/direct/source';
import { LocalEbs, startLocalEbs } from '../e2e/local-ebs';

// One worker over a 128 MiB sparse RAW image, every other block data: its memory must not
// grow with the range it copies (it streams: at most `concurrency` blocks in hand).
const BLOCKS = 256;
let dir: string;
let image: string;
let ebs: LocalEbs;
let client: EBSClient;
beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'direct-memory-'));
  image = path.join(dir, 'big.img');
  const fd = fs.openSync(image, 'w');
  fs.ftruncateSync(fd, BLOCKS * BLOCK_SIZE);
  for (let i = 0; i < BLOCKS; i += 2) fs.writeSync(fd, crypto.randomBytes(BLOCK_SIZE), 0, BLOCK_SIZE, i * BLOCK_SIZE);
  fs.closeSync(fd);
  ebs = await startLocalEbs({ keepData: false, putsPerSecondPerSnapshot: 1e9 });
  client = new EBSClient({ endpoint: ebs.endpoint, region: 'us-east-1', maxAttempts: 1, credentials: { accessKeyId: 'AKIDLOCAL', secretAccessKey: 'local' } });
});
afterAll(async () => {
  client.destroy();
  await ebs.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

let idle: NodeJS.MemoryUsage;

// A full collection before each sample measures what is live, not garbage not yet collected.
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** Copies [0, end) and samples the live memory (after a full GC) every few milliseconds. */
async function measure(end: number, live = true) {
  const decoder = await openDecoder(fileSource(image));
  const snapshotId = (await client.send(new StartSnapshotCommand({ VolumeSize: 1 }))).SnapshotId!;
  gc();
  const base = idle;
  let rss = 0;
  let buffers = 0;
  const sample = () => {
    if (live) gc();
    const m = process.memoryUsage();
    rss = Math.max(rss, m.rss - base.rss);
    buffers = Math.max(buffers, m.arrayBuffers - base.arrayBuffers);
  };
  // A full collection every 20 ms: often enough to see 16 blocks in flight, light enough for a busy 2-core CI machine.
  const timer = setInterval(sample, live ? 20 : 50);
  const started = Date.now();
  let result: Awaited<ReturnType<typeof copyRange>>;
  try {
    result = await copyRange({ decoder, ebs: client, snapshotId, first: 0, end, concurrency: 16 });
  } finally {
    // A failed copy must not leave the sampler collecting every 5 ms after the test.
    clearInterval(timer);
  }
  const ms = Date.now() - started;
  sample();
  expect(result.written.length).toBe(end / 2);
  expect(result.zero).toBe(end / 2);
  return { blocks: end, ms, peakRssMiB: Math.round(rss / 2 ** 20), peakBuffersMiB: Math.round(buffers / 2 ** 20) };
}

test('peak memory does not grow with the range size', async () => {
  gc();
  idle = process.memoryUsage();
  await measure(32); // warm up: the SDK, the sockets, the JIT
  const small = await measure(64);
  const large = await measure(BLOCKS);
  console.log(`copy-range, 16 in flight, live memory over the idle process: ${JSON.stringify(small)} ${JSON.stringify(large)}`);
  // 4x the blocks, the same live memory: 16 blocks in flight are 8 MiB, each held about
  // twice (the block, the request body on its way), plus the sockets' buffers.
  expect(large.peakBuffersMiB).toBeLessThan(small.peakBuffersMiB + 12);
  expect(large.peakBuffersMiB).toBeLessThan(40);
}, 300_000);
