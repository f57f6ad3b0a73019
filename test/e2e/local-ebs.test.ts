import * as crypto from 'crypto';
import {
  CompleteSnapshotCommand, EBSClient, GetSnapshotBlockCommand, ListSnapshotBlocksCommand, PutSnapshotBlockCommand, StartSnapshotCommand,
} from '@aws-sdk/client-ebs';
import { BLOCK_SIZE, LocalEbs, startLocalEbs } from './local-ebs';

let ebs: LocalEbs;
let client: EBSClient;
beforeEach(async () => {
  ebs = await startLocalEbs({ putsPerSecondPerSnapshot: 5 });
  client = new EBSClient({ endpoint: ebs.endpoint, region: 'us-east-1', maxAttempts: 1, credentials: { accessKeyId: 'AKIDLOCAL', secretAccessKey: 'local' } });
});
afterEach(async () => { client.destroy(); await ebs.close(); });

const block = (fill: number) => Buffer.alloc(BLOCK_SIZE, fill);
const sum = (b: Buffer) => crypto.createHash('sha256').update(b).digest('base64');
const put = (SnapshotId: string, BlockIndex: number, data: Buffer, Checksum = sum(data), DataLength = data.length) =>
  client.send(new PutSnapshotBlockCommand({ SnapshotId, BlockIndex, BlockData: data, DataLength, Checksum, ChecksumAlgorithm: 'SHA256' }));
const start = (extra: Partial<ConstructorParameters<typeof StartSnapshotCommand>[0]> = {}) =>
  client.send(new StartSnapshotCommand({ VolumeSize: 1, Encrypted: true, KmsKeyArn: 'arn:aws:kms:us-east-1:111111111111:key/k', Timeout: 60, ...extra }));
const linear = (checksums: string[]) => crypto.createHash('sha256').update(Buffer.concat(checksums.map((c) => Buffer.from(c, 'base64')))).digest('base64');

test('StartSnapshot → PutSnapshotBlock → CompleteSnapshot with the linear aggregate, then read back', async () => {
  const started = await start({ Tags: [{ Key: 'Name', Value: 'disk' }], Description: 'a disk', ClientToken: 'token-1' });
  expect(started).toMatchObject({ Status: 'pending', VolumeSize: 1, BlockSize: BLOCK_SIZE, KmsKeyArn: 'arn:aws:kms:us-east-1:111111111111:key/k', Tags: [{ Key: 'Name', Value: 'disk' }] });
  const id = started.SnapshotId!;
  const snap = ebs.snapshots.get(id)!;
  expect([snap.encrypted, snap.timeoutMinutes, snap.description]).toEqual([true, 60, 'a disk']);
  // The same ClientToken gives the same snapshot.
  expect((await start({ Tags: [{ Key: 'Name', Value: 'disk' }], ClientToken: 'token-1' })).SnapshotId).toBe(id);

  const answer = await put(id, 7, block(7));
  expect(answer.Checksum).toBe(sum(block(7)));
  await put(id, 2, block(2));
  const listed = await client.send(new ListSnapshotBlocksCommand({ SnapshotId: id }));
  expect(listed.Blocks!.map((b) => b.BlockIndex)).toEqual([2, 7]);
  expect(listed.VolumeSize).toBe(1);

  await expect(client.send(new CompleteSnapshotCommand({
    SnapshotId: id, ChangedBlocksCount: 2, Checksum: linear([sum(block(7)), sum(block(2))]), ChecksumAlgorithm: 'SHA256', ChecksumAggregationMethod: 'LINEAR',
  }))).rejects.toMatchObject({ name: 'ValidationException', Reason: 'INVALID_CHECKSUM' });
  ebs.snapshots.get(id)!.status = 'pending';
  const done = await client.send(new CompleteSnapshotCommand({
    SnapshotId: id, ChangedBlocksCount: 2, Checksum: linear([sum(block(2)), sum(block(7))]), ChecksumAlgorithm: 'SHA256', ChecksumAggregationMethod: 'LINEAR',
  }));
  expect(done.Status).toBe('completed');

  const got = await client.send(new GetSnapshotBlockCommand({ SnapshotId: id, BlockIndex: 7, BlockToken: listed.Blocks![1].BlockToken }));
  const data = Buffer.from(await got.BlockData!.transformToByteArray());
  expect(data.equals(block(7))).toBe(true);
  expect([got.DataLength, got.Checksum, got.ChecksumAlgorithm]).toEqual([BLOCK_SIZE, sum(block(7)), 'SHA256']);
  // A completed snapshot takes no more blocks.
  await expect(put(id, 3, block(3))).rejects.toMatchObject({ name: 'ValidationException' });
});

test('PutSnapshotBlock answers ValidationException for a wrong checksum, length or index', async () => {
  const id = (await start()).SnapshotId!;
  await expect(put(id, 0, block(1), sum(block(2)))).rejects.toMatchObject({ name: 'ValidationException', Reason: 'INVALID_CHECKSUM', $metadata: { httpStatusCode: 400 } });
  await expect(put(id, 0, Buffer.alloc(4096, 1))).rejects.toMatchObject({ name: 'ValidationException', Reason: 'INVALID_PARAMETER_VALUE' });
  // 1 GiB holds blocks 0 to 2047.
  await expect(put(id, 2048, block(1))).rejects.toMatchObject({ name: 'ValidationException', Reason: 'INVALID_BLOCK' });
  await put(id, 2047, block(1));
  await expect(client.send(new CompleteSnapshotCommand({ SnapshotId: id, ChangedBlocksCount: 5 }))).rejects.toMatchObject({ name: 'ValidationException' });
  await expect(put('snap-00000000000000bad', 0, block(1))).rejects.toMatchObject({ name: 'ResourceNotFoundException', $metadata: { httpStatusCode: 404 } });
});

test('StartSnapshot validates its parameters, and a reused ClientToken must keep them', async () => {
  await expect(start({ VolumeSize: 0 })).rejects.toMatchObject({ name: 'ValidationException', Reason: 'INVALID_VOLUME_SIZE' });
  await expect(start({ Encrypted: false })).rejects.toMatchObject({ name: 'ValidationException' });
  await expect(start({ Tags: [{ Key: 'aws:x', Value: 'y' }] })).rejects.toMatchObject({ name: 'ValidationException', Reason: 'INVALID_TAG' });
  await start({ ClientToken: 't' });
  await expect(start({ ClientToken: 't', VolumeSize: 2 })).rejects.toMatchObject({ name: 'ConflictException', $metadata: { httpStatusCode: 409 } });
});

test('injected throttling and 5xx, and the per-second limit per snapshot', async () => {
  const id = (await start()).SnapshotId!;
  ebs.failNextPuts(1, 'ThrottlingException');
  ebs.failNextPuts(1, 'ServiceUnavailable');
  ebs.failNextPuts(1, 'RequestThrottledException');
  await expect(put(id, 0, block(1))).rejects.toMatchObject({ name: 'ThrottlingException', $metadata: { httpStatusCode: 400 } });
  await expect(put(id, 0, block(1))).rejects.toMatchObject({ $metadata: { httpStatusCode: 503 } });
  await expect(put(id, 0, block(1))).rejects.toMatchObject({ name: 'RequestThrottledException', Reason: 'RESOURCE_LEVEL_THROTTLE' });
  // The limit is 5 a second here: a burst of 8 sees some throttled (the three above counted too).
  const results = await Promise.allSettled([1, 2, 3, 4, 5, 6, 7, 8].map((i) => put(id, i, block(i))));
  const throttled = results.filter((r) => r.status === 'rejected' && (r.reason as Error).name === 'RequestThrottledException');
  expect(throttled.length).toBeGreaterThan(0);
  expect(ebs.snapshots.get(id)!.peakPutsPerSecond).toBeGreaterThan(5);
});

test('a snapshot not completed within its Timeout is abandoned', async () => {
  await ebs.close();
  let clock = 1_800_000_000_000;
  ebs = await startLocalEbs({ now: () => clock });
  client.destroy();
  client = new EBSClient({ endpoint: ebs.endpoint, region: 'us-east-1', maxAttempts: 1, credentials: { accessKeyId: 'AKIDLOCAL', secretAccessKey: 'local' } });
  const started = await start({ Timeout: 10 });
  expect(started.StartTime).toEqual(new Date(clock));
  const id = started.SnapshotId!;
  await put(id, 0, block(1));
  clock += 10 * 60_000 + 1;
  await expect(put(id, 1, block(1))).rejects.toMatchObject({ name: 'ValidationException', message: expect.stringMatching(/is error, not pending/) });
  await expect(client.send(new CompleteSnapshotCommand({ SnapshotId: id, ChangedBlocksCount: 1 }))).rejects.toMatchObject({ name: 'ValidationException' });
  expect(ebs.snapshots.get(id)!.status).toBe('error');
});
