/**
 * How a disk is split for the direct route: the snapshot's size in GiB (StartSnapshot's
 * VolumeSize), and the ranges of 512 KiB blocks the workers copy.
 */
import { BLOCK_SIZE } from './source';

const GIB = 1024 ** 3;
/** StartSnapshot's largest VolumeSize: 64 TiB. */
export const MAX_VOLUME_GIB = 65536;

/** The snapshot size that holds a disk of `virtualSize` bytes (at least 1 GiB). */
export function volumeSizeGiB(virtualSize: number): number {
  if (!Number.isSafeInteger(virtualSize) || virtualSize < 0) throw new Error(`the disk's virtual size must be a whole number of bytes, got ${virtualSize}`);
  const gib = Math.max(1, Math.ceil(virtualSize / GIB));
  if (gib > MAX_VOLUME_GIB) {
    throw new Error(`the disk's virtual size is ${virtualSize} bytes (${gib} GiB), more than an EBS snapshot's ${MAX_VOLUME_GIB} GiB (64 TiB): shrink the disk or split it into several`);
  }
  return gib;
}

/** One worker's share: the blocks [first, end). */
export interface BlockRange {
  readonly first: number;
  readonly end: number;
}

/** Splits `blockCount` blocks into ranges of at most `rangeBlocks` (the last may be shorter). */
export function splitRanges(blockCount: number, rangeBlocks: number): BlockRange[] {
  if (!Number.isSafeInteger(blockCount) || blockCount < 0) throw new Error(`blockCount must be a whole number of at least 0, got ${blockCount}`);
  if (!Number.isSafeInteger(rangeBlocks) || rangeBlocks < 1) throw new Error(`rangeBlocks must be a whole number of at least 1, got ${rangeBlocks}`);
  const ranges: BlockRange[] = [];
  for (let first = 0; first < blockCount; first += rangeBlocks) ranges.push({ first, end: Math.min(blockCount, first + rangeBlocks) });
  return ranges;
}

/** How many blocks a disk of `virtualSize` bytes spans. */
export function blockCountOf(virtualSize: number): number {
  return Math.ceil(virtualSize / BLOCK_SIZE);
}
