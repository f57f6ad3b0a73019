import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  CompleteSnapshotCommand, EBSClient, GetSnapshotBlockCommand, paginateListSnapshotBlocks, StartSnapshotCommand,
} from '@aws-sdk/client-ebs';
import { bufferSource, EXPECTED, fileSource } from './sources';
import { linearAggregate, WrittenBlock } from '../../lambda/direct/complete';
import { copyRange, isRetryable } from '../../lambda/direct/copy-range';
import { openDecoder } from '../../lambda/direct/open';
import { BLOCK_SIZE } from '../../lambda/direct/source';
import { LocalEbs, startLocalEbs } from '../e2e/local-ebs';
import { writeDiskFixture } from '../support/disk-fixtures';

let dir: string;
let ebs: LocalEbs;
let client: EBSClient;
let guest: Buffer;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'direct-copy-'));
  guest = fs.readFileSync(writeDiskFixture('direct.img', dir));
  // The guest bytes themselves are what qemu-img reads from every fixture.
  expect(crypto.createHash('sha256').update(guest).digest('hex')).toBe(EXPECTED['direct.img'].sha256);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
beforeEach(async () => {
  ebs = await startLocalEbs();
  client = new EBSClient({ endpoint: ebs.endpoint, region: 'us-east-1', maxAttempts: 1, credentials: { accessKeyId: 'AKIDLOCAL', secretAccessKey: 'local' } });
});
afterEach(async () => { client.destroy(); await ebs.close(); });

const NON_ZERO = [0, 1, 3, 4, 6, 12];
const noWait = async () => undefined;
const startSnapshot = async () => (await client.send(new StartSnapshotCommand({ VolumeSize: 1, Encrypted: true, Timeout: 60 }))).SnapshotId!;
const complete = (SnapshotId: string, written: WrittenBlock[]) => client.send(new CompleteSnapshotCommand({
  SnapshotId, ChangedBlocksCount: written.length, Checksum: linearAggregate(written), ChecksumAlgorithm: 'SHA256', ChecksumAggregationMethod: 'LINEAR',
}));

/** The snapshot's blocks as the EBS direct APIs give them back. */
async function readBack(SnapshotId: string): Promise<Map<number, Buffer>> {
  const blocks = new Map<number, Buffer>();
  for await (const page of paginateListSnapshotBlocks({ client, pageSize: 4 }, { SnapshotId })) {
    for (const b of page.Blocks ?? []) {
      const got = await client.send(new GetSnapshotBlockCommand({ SnapshotId, BlockIndex: b.BlockIndex!, BlockToken: b.BlockToken! }));
      blocks.set(b.BlockIndex!, Buffer.from(await got.BlockData!.transformToByteArray()));
    }
  }
  return blocks;
}

/** The guest disk's block `index`, zero-padded to 512 KiB. */
const guestBlock = (index: number) => {
  const b = Buffer.alloc(BLOCK_SIZE);
  guest.copy(b, 0, index * BLOCK_SIZE, Math.min(guest.length, (index + 1) * BLOCK_SIZE));
  return b;
};

// Every format of the one guest disk (the dense fixtures hold another).
const formats = Object.keys(EXPECTED).filter((n) => n !== 'direct-backed.qcow2' && !n.startsWith('direct-dense'));
test.each(formats.map((n) => [n]))('%s copied in three ranges reads back as the guest disk\'s non-zero blocks', async (name) => {
  const decoder = await openDecoder(fileSource(writeDiskFixture(name, dir)));
  const snapshotId = await startSnapshot();
  const ranges: Array<[number, number]> = [[0, 5], [5, 9], [9, 13]];
  const results = await Promise.all(ranges.map(([first, end]) => copyRange({ decoder, ebs: client, snapshotId, first, end, concurrency: 3 })));
  const written = results.flatMap((r) => r.written);
  expect(written.map((w) => w.index).sort((a, b) => a - b)).toEqual(NON_ZERO);
  // Every block is unallocated, zero or written, exactly once.
  expect(results.reduce((n, r) => n + r.unallocated + r.zero + r.written.length, 0)).toBe(13);
  expect((await complete(snapshotId, written)).Status).toBe('completed');
  const back = await readBack(snapshotId);
  expect([...back.keys()]).toEqual(NON_ZERO);
  for (const [index, data] of back) expect(data.equals(guestBlock(index))).toBe(true);
});

test('a wrong aggregate (a block missing from it) is refused by CompleteSnapshot', async () => {
  const decoder = await openDecoder(fileSource(writeDiskFixture('direct-v2.qcow2', dir)));
  const snapshotId = await startSnapshot();
  const { written } = await copyRange({ decoder, ebs: client, snapshotId, first: 0, end: 13 });
  await expect(client.send(new CompleteSnapshotCommand({
    SnapshotId: snapshotId, ChangedBlocksCount: written.length, Checksum: linearAggregate(written.slice(1)), ChecksumAlgorithm: 'SHA256', ChecksumAggregationMethod: 'LINEAR',
  }))).rejects.toMatchObject({ name: 'ValidationException', Reason: 'INVALID_CHECKSUM' });
});

test('throttling and 5xx answers are retried with exponential backoff', async () => {
  const decoder = await openDecoder(fileSource(writeDiskFixture('direct-v3.qcow2', dir)));
  const snapshotId = await startSnapshot();
  ebs.failNextPuts(3, 'ThrottlingException');
  ebs.failNextPuts(2, 'RequestThrottledException');
  ebs.failNextPuts(1, 'ServiceUnavailable');
  ebs.failNextPuts(1, 'InternalServerException');
  const ceilings: number[] = [];
  const random = jest.spyOn(Math, 'random').mockReturnValue(0.999);
  try {
    const result = await copyRange({
      decoder,
      ebs: client,
      snapshotId,
      first: 0,
      end: 13,
      concurrency: 1,
      baseDelayMs: 10,
      maxDelayMs: 200,
      sleep: async (ms) => { ceilings.push(Math.round(ms)); },
    });
    expect(result.retries).toBe(7);
    expect(result.written.map((w) => w.index)).toEqual(NON_ZERO);
  } finally {
    random.mockRestore();
  }
  // One block, seven failures in a row: 10, 20, 40, ... capped at 200 ms (times the jitter).
  expect(ceilings).toEqual([10, 20, 40, 80, 160, 200, 200]);
  const stored = [...ebs.snapshots.get(snapshotId)!.blocks].map(([index, b]) => ({ index, checksum: b.checksum }));
  expect((await complete(snapshotId, stored)).Status).toBe('completed');
});

test('the per-second limit per snapshot is met by retrying', async () => {
  await ebs.close();
  ebs = await startLocalEbs({ putsPerSecondPerSnapshot: 3 });
  client.destroy();
  client = new EBSClient({ endpoint: ebs.endpoint, region: 'us-east-1', maxAttempts: 1, credentials: { accessKeyId: 'AKIDLOCAL', secretAccessKey: 'local' } });
  const decoder = await openDecoder(fileSource(writeDiskFixture('direct-sparse.vmdk', dir)));
  const snapshotId = await startSnapshot();
  const result = await copyRange({
    decoder, ebs: client, snapshotId, first: 0, end: 13, concurrency: 6, baseDelayMs: 200, maxDelayMs: 1000, maxAttempts: 20,
  });
  expect(result.retries).toBeGreaterThan(0);
  expect(result.written.map((w) => w.index)).toEqual(NON_ZERO);
  expect((await complete(snapshotId, result.written)).Status).toBe('completed');
});

test('retrying gives up after maxAttempts, naming the block', async () => {
  const decoder = await openDecoder(fileSource(writeDiskFixture('direct.img', dir)));
  const snapshotId = await startSnapshot();
  ebs.failNextPuts(3, 'ThrottlingException');
  await expect(copyRange({ decoder, ebs: client, snapshotId, first: 0, end: 13, concurrency: 1, maxAttempts: 3, sleep: noWait }))
    .rejects.toThrow(`PutSnapshotBlock of block 0 to ${snapshotId} still failed after 3 attempts: ThrottlingException (HTTP 400): Rate exceeded`);
});

test('a failure retrying cannot fix fails at once, naming the block and why', async () => {
  const decoder = await openDecoder(fileSource(writeDiskFixture('direct.img', dir)));
  const snapshotId = await startSnapshot();
  ebs.snapshots.get(snapshotId)!.status = 'completed';
  await expect(copyRange({ decoder, ebs: client, snapshotId, first: 0, end: 13, sleep: noWait }))
    .rejects.toThrow(new RegExp(`^PutSnapshotBlock of block \\d+ to ${snapshotId} failed: ValidationException \\(HTTP 400\\): The snapshot ${snapshotId} is completed, not pending$`));
  expect(ebs.log.filter((l) => l.startsWith('PutSnapshotBlock')).length).toBeLessThanOrEqual(16);
});

test('a corrupt source fails with the block and the reason', async () => {
  const b = fs.readFileSync(writeDiskFixture('direct-compressed.qcow2', dir));
  const l1 = Number(b.readBigUInt64BE(40));
  const l2 = Number(b.readBigUInt64BE(l1) & 0x00fffffffffffe00n); // eslint-disable-line no-bitwise
  // Cluster 48 (disk offset 3 MiB): the pseudo-random run, in block 6.
  const entry = b.readBigUInt64BE(l2 + 49 * 8);
  const host = Number(entry & ((1n << 54n) - 1n)); // eslint-disable-line no-bitwise
  b.fill(0xff, host, host + 32);
  const decoder = await openDecoder(bufferSource(b, 'bad.qcow2'));
  const snapshotId = await startSnapshot();
  await expect(copyRange({ decoder, ebs: client, snapshotId, first: 4, end: 13 })).rejects.toThrow(
    new RegExp(`^block 6 \\(disk offset 3145728\\) could not be decoded: bad\\.qcow2 \\(qcow2\\): the compressed cluster 49 at byte offset ${host} .*does not inflate`));
});

test('a range outside the disk is refused', async () => {
  const decoder = await openDecoder(fileSource(writeDiskFixture('direct.img', dir)));
  await expect(copyRange({ decoder, ebs: client, snapshotId: 'snap-1', first: 10, end: 14 })).rejects.toThrow(/the block range \[10, 14\) is not within the disk's 13 blocks/);
});

test.each([
  [{ name: 'ThrottlingException' }, true],
  [{ name: 'RequestThrottledException' }, true],
  [{ name: 'Whatever', $metadata: { httpStatusCode: 502 } }, true],
  [{ name: 'Error', code: 'ECONNRESET' }, true],
  // As the SDK wrapped a reset connection under load (seen in CI).
  [Object.assign(new Error('AWS SDK error wrapper for TimeoutError: read ECONNRESET'), { $metadata: {} }), true],
  [Object.assign(new Error('the ECONNRESETS team'), { $metadata: {} }), false],
  [{ name: 'ValidationException', $metadata: { httpStatusCode: 400 } }, false],
  [{ name: 'AccessDeniedException', $metadata: { httpStatusCode: 403 } }, false],
])('isRetryable(%j) is %s', (e, expected) => {
  expect(isRetryable(e)).toBe(expected);
});
