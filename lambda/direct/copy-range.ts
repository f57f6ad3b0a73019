/**
 * The direct route's worker: copies one range of a disk's 512 KiB blocks into a pending EBS
 * snapshot. It decodes each block, skips unallocated and all-zero ones, sends the rest with
 * PutSnapshotBlock (a bounded number in flight, each block's SHA-256 as its checksum),
 * retries throttling and 5xx answers with exponential backoff, and returns what it wrote
 * so that the last step can give CompleteSnapshot the linear aggregate checksum.
 */
import { createHash } from 'crypto';
import { EBSClient, PutSnapshotBlockCommand } from '@aws-sdk/client-ebs';
import { WrittenBlock } from './complete';
import { DiskDecoder } from './decoder';
import { BLOCK_SIZE, isAllZero } from './source';

export interface CopyRangeOptions {
  readonly decoder: DiskDecoder;
  /** The client for the EBS direct APIs (its own retries are best turned off: maxAttempts 1). */
  readonly ebs: EBSClient;
  /** The pending snapshot StartSnapshot returned. */
  readonly snapshotId: string;
  /** The first block index of the range. */
  readonly first: number;
  /** The block index after the range's last. */
  readonly end: number;
  /** Blocks decoded and sent at once. @default 16 */
  readonly concurrency?: number;
  /** Attempts per block before the copy fails. @default 8 */
  readonly maxAttempts?: number;
  /** The first retry's delay ceiling; it doubles each attempt (full jitter). @default 100 */
  readonly baseDelayMs?: number;
  /** The largest delay ceiling. @default 5000 */
  readonly maxDelayMs?: number;
  /** Waits between attempts (a test's clock). @default setTimeout */
  readonly sleep?: (ms: number) => Promise<void>;
}

export interface CopyRangeResult {
  /** The blocks written, ascending by index. */
  readonly written: WrittenBlock[];
  /** Blocks the format records as unallocated (never read beyond their table entry). */
  readonly unallocated: number;
  /** Allocated blocks that held only zeros (not sent: unwritten blocks read as zeros). */
  readonly zero: number;
  /** PutSnapshotBlock calls retried after throttling or a server error. */
  readonly retries: number;
}

/** Error names EBS documents as "retry": throttling and server errors. */
const RETRYABLE = new Set([
  'ThrottlingException', 'RequestThrottledException', 'TooManyRequestsException', 'InternalServerException',
  'ServiceUnavailable', 'ServiceUnavailableException', 'InternalFailure', 'RequestTimeout', 'RequestTimeoutException',
]);
const NETWORK = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'TimeoutError']);

interface SdkError {
  readonly name?: string;
  readonly code?: string;
  readonly message?: string;
  readonly $metadata?: { readonly httpStatusCode?: number };
}

/** Whether retrying can fix the PutSnapshotBlock failure `e`. */
export function isRetryable(e: unknown): boolean {
  const err = e as SdkError;
  const status = err.$metadata?.httpStatusCode ?? 0;
  return RETRYABLE.has(err.name ?? '') || status >= 500 || NETWORK.has(err.code ?? '') || NETWORK.has(err.name ?? '')
    // The SDK wraps a socket error it did not get as an Error ("AWS SDK error wrapper for TimeoutError: read ECONNRESET").
    || (status === 0 && NETWORK_MESSAGE.test((e as Error)?.message ?? ''));
}

const NETWORK_MESSAGE = /\b(ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT|EAI_AGAIN|socket hang up)\b/;

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('base64');

/** Copies the blocks [first, end) of the decoder's disk into the snapshot. */
export async function copyRange(options: CopyRangeOptions): Promise<CopyRangeResult> {
  const { decoder, ebs, snapshotId, first, end } = options;
  const concurrency = options.concurrency ?? 16;
  const maxAttempts = options.maxAttempts ?? 8;
  const base = options.baseDelayMs ?? 100;
  const ceiling = options.maxDelayMs ?? 5000;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  if (!Number.isInteger(first) || !Number.isInteger(end) || first < 0 || first > end || end > decoder.blockCount) {
    throw new Error(`the block range [${first}, ${end}) is not within the disk's ${decoder.blockCount} blocks: give 0 <= first <= end <= ${decoder.blockCount}`);
  }
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error(`concurrency must be a whole number of at least 1, got ${concurrency}`);

  const written: WrittenBlock[] = [];
  let unallocated = 0;
  let zero = 0;
  let retries = 0;
  let next = first;
  let failure: Error | undefined;

  const put = async (index: number, data: Buffer): Promise<string> => {
    const checksum = sha256(data);
    for (let attempt = 1; ; attempt++) {
      try {
        await ebs.send(new PutSnapshotBlockCommand({
          SnapshotId: snapshotId, BlockIndex: index, BlockData: data, DataLength: BLOCK_SIZE, Checksum: checksum, ChecksumAlgorithm: 'SHA256',
        }));
        return checksum;
      } catch (e) {
        const err = e as SdkError;
        const what = `${err.name ?? 'Error'}${err.$metadata?.httpStatusCode ? ` (HTTP ${err.$metadata.httpStatusCode})` : ''}: ${err.message ?? String(e)}`;
        if (!isRetryable(e)) throw new Error(`PutSnapshotBlock of block ${index} to ${snapshotId} failed: ${what}`);
        if (attempt >= maxAttempts) throw new Error(`PutSnapshotBlock of block ${index} to ${snapshotId} still failed after ${attempt} attempts: ${what}`);
        retries++;
        await sleep(Math.random() * Math.min(ceiling, base * 2 ** (attempt - 1)));
      }
    }
  };

  const lane = async () => {
    while (!failure && next < end) {
      const index = next++;
      let data: Buffer | undefined;
      try {
        data = await decoder.readBlock(index);
      } catch (e) {
        throw new Error(`block ${index} (disk offset ${index * BLOCK_SIZE}) could not be decoded: ${(e as Error).message}`);
      }
      if (!data) { unallocated++; continue; }
      if (isAllZero(data)) { zero++; continue; }
      written.push({ index, checksum: await put(index, data) });
    }
  };

  // Every lane stops at the first failure; the copy reports that one.
  await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(1, end - first)) }, () => lane().catch((e: Error) => { failure ??= e; })));
  if (failure) throw failure;
  written.sort((a, b) => a.index - b.index);
  return { written, unallocated, zero, retries };
}
