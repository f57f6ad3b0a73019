import { BLOCK_SIZE, ByteSource, formatError } from './source';

/** The formats the direct route decodes itself. */
export type DirectFormat = 'raw' | 'vhd' | 'vmdk' | 'qcow2';

/** One 512 KiB block of the virtual disk (the last one zero-padded to 512 KiB). */
export interface DiskBlock {
  /** The block index: the disk offset ÷ 524288. */
  readonly index: number;
  /** Exactly 524288 bytes. */
  readonly data: Buffer;
}

/** A disk image decoded as the virtual disk a VM would see, in 512 KiB blocks. */
export interface DiskDecoder {
  /** The file's format. */
  readonly format: DirectFormat;
  /** The variant: `fixed`, `dynamic`, `monolithicSparse`, `streamOptimized`, `v2`, `v3`, or `raw`. */
  readonly subformat: string;
  /** The virtual disk's size in bytes. */
  readonly virtualSize: number;
  /** How many 512 KiB blocks the virtual disk spans (the last may be partial). */
  readonly blockCount: number;
  /**
   * The block `index`, or undefined when the format records none of its bytes as
   * allocated (it reads as zeros). An allocated block may still be all zeros.
   */
  readBlock(index: number): Promise<Buffer | undefined>;
  /** The allocated blocks with indexes in [first, end), in ascending order, one at a time. */
  blocks(first?: number, end?: number): AsyncGenerator<DiskBlock>;
}

/** The shared part of every decoder: block bounds, and iteration over a range. */
export abstract class BlockDecoder implements DiskDecoder {
  public abstract readonly format: DirectFormat;
  public abstract readonly subformat: string;
  public readonly blockCount: number;

  protected constructor(protected readonly source: ByteSource, public readonly virtualSize: number) {
    this.blockCount = Math.ceil(virtualSize / BLOCK_SIZE);
  }

  public async readBlock(index: number): Promise<Buffer | undefined> {
    if (!Number.isInteger(index) || index < 0 || index >= this.blockCount) {
      throw formatError(this.source, this.format, `block index ${index} is outside the disk's ${this.blockCount} blocks `
        + `(0 to ${this.blockCount - 1}; virtual size ${this.virtualSize} bytes)`);
    }
    const start = index * BLOCK_SIZE;
    const length = Math.min(BLOCK_SIZE, this.virtualSize - start);
    const data = Buffer.alloc(BLOCK_SIZE);
    return await this.fill(data, start, length) ? data : undefined;
  }

  public async *blocks(first: number = 0, end: number = this.blockCount): AsyncGenerator<DiskBlock> {
    if (!Number.isInteger(first) || !Number.isInteger(end) || first < 0 || end > this.blockCount || first > end) {
      throw formatError(this.source, this.format, `the block range [${first}, ${end}) is not within the disk's ${this.blockCount} blocks`);
    }
    for (let index = first; index < end; index++) {
      const data = await this.readBlock(index);
      if (data) yield { index, data };
    }
  }

  /**
   * Writes the virtual disk's bytes [start, start + length) into `target` (zeroed, at 0),
   * and says whether any of them is allocated in the file.
   */
  protected abstract fill(target: Buffer, start: number, length: number): Promise<boolean>;
}
