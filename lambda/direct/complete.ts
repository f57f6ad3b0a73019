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

/** Bytes per packed block: a 4-byte big-endian index, then the 32-byte digest. */
const PACKED = 36;

/**
 * Packs written blocks into one Base64 string (48 characters a block, against about 70 as
 * JSON), for results that travel through a state machine's 256 KiB payloads.
 */
export function packWritten(blocks: readonly WrittenBlock[]): string {
  const out = Buffer.alloc(blocks.length * PACKED);
  blocks.forEach((b, i) => {
    if (!Number.isInteger(b.index) || b.index < 0 || b.index > 0xffffffff) throw new Error(`block index ${JSON.stringify(b.index)} is not a block index (0 to 4294967295)`);
    const digest = Buffer.from(b.checksum, 'base64');
    if (digest.length !== 32) throw new Error(`the checksum of block ${b.index} is ${JSON.stringify(b.checksum)}, not the Base64 of a 32-byte SHA-256 digest`);
    out.writeUInt32BE(b.index, i * PACKED);
    digest.copy(out, i * PACKED + 4);
  });
  return out.toString('base64');
}

/** The blocks `packWritten` packed. */
export function unpackWritten(packed: string): WrittenBlock[] {
  const bytes = Buffer.from(packed, 'base64');
  if (bytes.length % PACKED !== 0 || bytes.toString('base64') !== packed) {
    throw new Error(`the packed block list (${packed.length} characters) is not Base64 of 36-byte entries: it was cut or altered`);
  }
  const blocks: WrittenBlock[] = [];
  for (let at = 0; at < bytes.length; at += PACKED) {
    blocks.push({ index: bytes.readUInt32BE(at), checksum: bytes.subarray(at + 4, at + PACKED).toString('base64') });
  }
  return blocks;
}
