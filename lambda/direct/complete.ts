/**
 * The linear aggregate checksum CompleteSnapshot verifies: SHA-256 over the written blocks'
 * SHA-256 digests (raw 32 bytes each), concatenated in ascending block index order, Base64.
 */
import { createHash } from 'crypto';

/** A block written with PutSnapshotBlock: its index and its data's Base64 SHA-256. */
export interface WrittenBlock {
  readonly index: number;
  readonly checksum: string;
}

/** The Base64 linear aggregate of every written block (from all ranges, in any order). */
export function linearAggregate(blocks: readonly WrittenBlock[]): string {
  const sorted = [...blocks].sort((a, b) => a.index - b.index);
  const hash = createHash('sha256');
  for (let i = 0; i < sorted.length; i++) {
    const { index, checksum } = sorted[i];
    if (!Number.isInteger(index) || index < 0) throw new Error(`block index ${JSON.stringify(index)} is not a block index (an integer of at least 0)`);
    if (i > 0 && sorted[i - 1].index === index) {
      throw new Error(`block ${index} is listed twice (checksums ${sorted[i - 1].checksum} and ${checksum}): each written block must appear once`);
    }
    const digest = Buffer.from(checksum, 'base64');
    if (digest.length !== 32 || digest.toString('base64') !== checksum) {
      throw new Error(`the checksum of block ${index} is ${JSON.stringify(checksum)}, not the Base64 of a 32-byte SHA-256 digest`);
    }
    hash.update(digest);
  }
  return hash.digest('base64');
}
