/**
 * Where a disk image's bytes are read from: a local file in the tests, an S3 object with
 * range GETs in the engine's function. Decoders read only the byte ranges they need.
 */

/** Reads `length` bytes at `offset`; may return fewer only at the end of the object. */
export type ReadAt = (offset: number, length: number) => Promise<Buffer>;

/** A disk image file: its size in bytes, a range reader, and a name for messages. */
export interface ByteSource {
  /** The file's size in bytes (S3: HeadObject's ContentLength). */
  readonly size: number;
  /** Reads a byte range. */
  readonly read: ReadAt;
  /** How messages name the file (`s3://bucket/key`, a path). */
  readonly name: string;
}

/**
 * A source read with HTTP range requests (S3 GetObject with `Range: bytes=first-last`):
 * `get` fetches one range header's bytes; `size` is the object's ContentLength.
 */
export function rangeSource(name: string, size: number, get: (range: string) => Promise<Uint8Array>): ByteSource {
  return {
    name,
    size,
    read: async (offset, length) => {
      const last = Math.min(offset + length, size) - 1;
      if (last < offset) return Buffer.alloc(0);
      const bytes = Buffer.from(await get(`bytes=${offset}-${last}`));
      if (bytes.length !== last - offset + 1) {
        throw new Error(`${name}: the range bytes=${offset}-${last} returned ${bytes.length} bytes, not ${last - offset + 1}: the object changed or the read was cut; retry the copy`);
      }
      return bytes;
    },
  };
}

/** The EBS direct APIs' block: 512 KiB. */
export const BLOCK_SIZE = 524288;

/** `123456 (0x1e240)`: offsets in messages, decimal for people, hex for hexdump. */
export function at(offset: number): string {
  return `${offset} (0x${offset.toString(16)})`;
}

/** The error a decoder throws: the file, the format, then what was wrong. */
export function formatError(source: ByteSource, format: string, message: string): Error {
  return new Error(`${source.name} (${format}): ${message}`);
}

/**
 * Reads exactly `length` bytes at `offset`, or throws naming `what` was being read, the
 * offset and the file's size (a truncated file, or a table that points past its end).
 */
export async function readExact(source: ByteSource, format: string, offset: number, length: number, what: string): Promise<Buffer> {
  if (!Number.isSafeInteger(offset) || offset < 0) {
    throw formatError(source, format, `${what} is at byte offset ${offset}, which is not a valid file offset: the file is corrupt`);
  }
  if (offset + length > source.size) {
    throw formatError(source, format, `${what} at byte offset ${at(offset)} (${length} bytes) ends past the end of the file `
      + `(${source.size} bytes): the file is truncated or corrupt`);
  }
  const bytes = length === 0 ? Buffer.alloc(0) : await source.read(offset, length);
  if (bytes.length !== length) {
    throw formatError(source, format, `${what} at byte offset ${at(offset)}: read ${bytes.length} of ${length} bytes: the file is truncated`);
  }
  return bytes;
}

/** Whether every byte of `data` is zero (such a block is never sent). */
export function isAllZero(data: Buffer): boolean {
  // Compare in 64 KiB steps against one shared zero buffer: no allocation per block.
  for (let i = 0; i < data.length; i += ZEROS.length) {
    const end = Math.min(i + ZEROS.length, data.length);
    if (!data.subarray(i, end).equals(ZEROS.subarray(0, end - i))) return false;
  }
  return true;
}
const ZEROS = Buffer.alloc(65536);

/**
 * A least-recently-used cache of fixed-size pages of metadata (allocation tables, grain
 * tables, L2 tables), bounded by a page count, so memory does not grow with the disk.
 */
export class PageCache {
  private readonly pages = new Map<number, Promise<Buffer>>();

  constructor(private readonly maxPages: number, private readonly load: (key: number) => Promise<Buffer>) {}

  /** The page `key`, loaded once while it stays among the most recently used. */
  public get(key: number): Promise<Buffer> {
    let page = this.pages.get(key);
    if (page) {
      this.pages.delete(key);
    } else {
      page = this.load(key);
      // A failed load is not kept: the next caller sees the error again, not a stale promise.
      page.catch(() => this.pages.delete(key));
    }
    this.pages.set(key, page);
    while (this.pages.size > this.maxPages) this.pages.delete(this.pages.keys().next().value as number);
    return page;
  }

  /** How many pages are held (for the tests' memory bound). */
  public get size(): number {
    return this.pages.size;
  }
}

/** One contiguous piece of file bytes that lands at `into` in a block being assembled. */
interface Piece {
  readonly fileOffset: number;
  readonly length: number;
  readonly into: number;
  /** What the bytes are, for the error when they cannot be read. */
  readonly what: string;
}

/**
 * Collects the file ranges a block is made of and reads them with as few range reads as
 * possible: pieces that follow each other in the file (and in the block) are read at once.
 */
export class Gather {
  private readonly pieces: Piece[] = [];

  constructor(private readonly source: ByteSource, private readonly format: string) {}

  /** Copies `length` file bytes at `fileOffset` to `into` in the block; `what` names them in errors. */
  public add(fileOffset: number, length: number, into: number, what: string): void {
    const last = this.pieces[this.pieces.length - 1];
    if (last && last.fileOffset + last.length === fileOffset && last.into + last.length === into) {
      this.pieces[this.pieces.length - 1] = { ...last, length: last.length + length };
    } else {
      this.pieces.push({ fileOffset, length, into, what });
    }
  }

  /** Whether any piece was added. */
  public get empty(): boolean {
    return this.pieces.length === 0;
  }

  /** Reads every piece into `target`. */
  public async readInto(target: Buffer): Promise<void> {
    await Promise.all(this.pieces.map(async (p) => {
      const bytes = await readExact(this.source, this.format, p.fileOffset, p.length, p.what);
      bytes.copy(target, p.into);
    }));
  }
}

/** A byte range wanted from the file; `what` names it in errors. */
export interface Span {
  readonly offset: number;
  readonly length: number;
  readonly what: string;
}

/**
 * Reads several small ranges (compressed clusters, which lie one after another in the file)
 * with as few range reads as possible: ranges at most `maxGap` bytes apart are read as one,
 * up to `maxRead` bytes. Returns each range's bytes, in the order asked.
 */
export async function readSpans(
  source: ByteSource, format: string, spans: readonly Span[], maxGap = 65536, maxRead = 4 * BLOCK_SIZE,
): Promise<Buffer[]> {
  const order = spans.map((_, i) => i).sort((a, b) => spans[a].offset - spans[b].offset);
  const out: Buffer[] = new Array(spans.length);
  const groups: number[][] = [];
  let end = -Infinity;
  let start = 0;
  for (const i of order) {
    const s = spans[i];
    const group = groups[groups.length - 1];
    if (group && s.offset <= end + maxGap && Math.max(end, s.offset + s.length) - start <= maxRead) {
      group.push(i);
      end = Math.max(end, s.offset + s.length);
    } else {
      groups.push([i]);
      start = s.offset;
      end = s.offset + s.length;
    }
  }
  await Promise.all(groups.map(async (group) => {
    const from = spans[group[0]].offset;
    const to = Math.max(...group.map((i) => spans[i].offset + spans[i].length));
    if (group.length === 1 || to > source.size) {
      // One range, or one that runs past the end: read each alone, so the error names it.
      await Promise.all(group.map(async (i) => { out[i] = await readExact(source, format, spans[i].offset, spans[i].length, spans[i].what); }));
      return;
    }
    const bytes = await readExact(source, format, from, to - from, spans[group[0]].what);
    for (const i of group) out[i] = bytes.subarray(spans[i].offset - from, spans[i].offset - from + spans[i].length);
  }));
  return out;
}
