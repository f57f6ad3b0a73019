/* eslint-disable no-bitwise */ // Disk formats are bit fields: flags, masks, bitmaps, checksums.
/**
 * qcow2 (QEMU's docs/interop/qcow2.txt), versions 2 and 3: a big-endian header (`QFI\xfb`),
 * an L1 table of L2 table offsets, and L2 tables of cluster descriptors: a standard cluster
 * (host offset; in v3 bit 0 reads as zeros) or a compressed one (raw deflate at an unaligned
 * offset, with a sector count). Backing files, encryption, external data files, extended L2
 * entries and zstd compression are refused with the command that converts them.
 */
import { inflateRawSync } from 'zlib';
import { BlockDecoder, DiskDecoder } from './decoder';
import { at, ByteSource, formatError, Gather, PageCache, readExact, readSpans, Span } from './source';

const OFFSET_MASK = 0x00fffffffffffe00n;
const COMPRESSED = 1n << 62n;
const ZERO = 1n;
/** L1 entries read at a time (4 KiB), and pages kept; L2 tables kept, bounded by bytes. */
const L1_PAGE_ENTRIES = 512;
const L1_PAGES = 16;
const L2_CACHE_BYTES = 8 * 1024 * 1024;

const FLATTEN = 'qemu-img convert -O qcow2 disk.qcow2 flat.qcow2';

/** Opens a qcow2 image. */
export async function openQcow2(source: ByteSource): Promise<DiskDecoder> {
  const h = await readExact(source, 'qcow2', 0, 72, 'the header');
  const refuse = (why: string) => formatError(source, 'qcow2', why);
  if (h.toString('latin1', 0, 4) !== 'QFI\xfb') throw refuse('the header at byte offset 0 does not start with "QFI\\xfb": this is not a qcow2 image');
  const version = h.readUInt32BE(4);
  if (version !== 2 && version !== 3) throw refuse(`the header's version (at byte offset 4) is ${version}; versions 2 and 3 are known`);
  const clusterBits = h.readUInt32BE(20);
  if (clusterBits < 9 || clusterBits > 21) throw refuse(`the header's cluster_bits (at byte offset 20) is ${clusterBits}; qcow2 allows 9 to 21: the file is corrupt`);
  const size = Number(h.readBigUInt64BE(24));
  const backingAt = Number(h.readBigUInt64BE(8));
  if (backingAt !== 0) {
    const length = Math.min(h.readUInt32BE(16), 1023);
    const name = (await readExact(source, 'qcow2', backingAt, length, 'the backing file name')).toString('utf8');
    throw refuse(`this image has the backing file "${name}" (header byte offset 8): its unwritten clusters come from that file, `
      + `and the direct route reads one file. Flatten it first: ${FLATTEN.replace('disk.qcow2', 'overlay.qcow2')}`);
  }
  const crypt = h.readUInt32BE(32);
  if (crypt !== 0) {
    throw refuse(`this image is encrypted (crypt_method ${crypt === 1 ? '1, AES' : crypt === 2 ? '2, LUKS' : crypt} at header byte offset 32): `
      + 'the direct route cannot read it. Decrypt it first with qemu-img convert --object secret,... --image-opts ... -O qcow2 flat.qcow2');
  }
  let compressionType = 0;
  if (version === 3) {
    const v3 = await readExact(source, 'qcow2', 72, 32, 'the version 3 header fields');
    const incompatible = v3.readBigUInt64BE(0);
    const headerLength = v3.readUInt32BE(28);
    if (headerLength > 104) compressionType = (await readExact(source, 'qcow2', 104, 1, 'the compression type'))[0];
    if (incompatible & 2n) throw refuse('QEMU marked this image corrupt (incompatible feature bit 1 at header byte offset 72): repair it with qemu-img check -r all, or convert it');
    if (incompatible & 4n) throw refuse(`this image keeps its data in an external data file (incompatible feature bit 2): the direct route reads one file. Convert it: ${FLATTEN}`);
    if (incompatible & 16n) throw refuse(`this image uses extended L2 entries (subclusters; incompatible feature bit 4): not supported on the direct route. Convert it: ${FLATTEN}`);
    if (compressionType === 1) {
      throw refuse('this image compresses clusters with zstd (compression type 1 at header byte offset 104): the direct route inflates zlib only. '
        + 'Convert it: qemu-img convert -O qcow2 -o compression_type=zlib disk.qcow2 zlib.qcow2 (or -O raw)');
    }
    if (compressionType !== 0) throw refuse(`the compression type at header byte offset 104 is ${compressionType}; only zlib (0) is known: the file is corrupt`);
    const unknown = incompatible & ~0x1fn;
    if (unknown !== 0n) {
      throw refuse(`the header sets unknown incompatible features 0x${unknown.toString(16)} (at byte offset 72): this reader cannot know what they mean. Convert it: ${FLATTEN}`);
    }
  }
  const l1Size = h.readUInt32BE(36);
  const l1At = Number(h.readBigUInt64BE(40));
  const clusterSize = 2 ** clusterBits;
  const l2Entries = clusterSize / 8;
  const needed = Math.ceil(size / clusterSize / l2Entries);
  if (l1Size < needed) {
    throw refuse(`the L1 table has ${l1Size} entries (header byte offset 36), but a ${size}-byte disk needs ${needed}: the file is corrupt`);
  }
  return new Qcow2Decoder(source, size, version, clusterBits, l1At, l1Size);
}

class Qcow2Decoder extends BlockDecoder {
  public readonly format = 'qcow2' as const;
  public readonly subformat: string;
  private readonly clusterSize: number;
  private readonly l1: PageCache;
  private readonly l2: PageCache;

  constructor(source: ByteSource, virtualSize: number, version: number, private readonly clusterBits: number, l1At: number, l1Size: number) {
    super(source, virtualSize);
    this.subformat = `v${version}`;
    this.clusterSize = 2 ** clusterBits;
    this.l1 = new PageCache(L1_PAGES, (page) => {
      const first = page * L1_PAGE_ENTRIES;
      const count = Math.min(L1_PAGE_ENTRIES, l1Size - first);
      return readExact(source, 'qcow2', l1At + first * 8, count * 8, `the L1 table entries ${first} to ${first + count - 1}`);
    });
    this.l2 = new PageCache(Math.max(2, Math.floor(L2_CACHE_BYTES / this.clusterSize)), async (index) => {
      const page = await this.l1.get(Math.floor(index / L1_PAGE_ENTRIES));
      const entryAt = l1At + index * 8;
      const offset = Number(page.readBigUInt64BE((index % L1_PAGE_ENTRIES) * 8) & OFFSET_MASK);
      if (offset === 0) return Buffer.alloc(0);
      if (offset % this.clusterSize !== 0) {
        throw formatError(source, 'qcow2', `L1 entry ${index} (at byte offset ${at(entryAt)}) points to an L2 table at ${at(offset)}, not cluster-aligned: the file is corrupt`);
      }
      return readExact(source, 'qcow2', offset, this.clusterSize, `the L2 table of L1 entry ${index} (at byte offset ${at(entryAt)})`);
    });
  }

  protected async fill(target: Buffer, start: number, length: number): Promise<boolean> {
    const gather = new Gather(this.source, 'qcow2');
    const compressed: Array<{ cluster: number; span: Span; from: number; to: number }> = [];
    const l2Entries = this.clusterSize / 8;
    const end = start + length;
    for (let cluster = Math.floor(start / this.clusterSize); cluster * this.clusterSize < end; cluster++) {
      const l1Index = Math.floor(cluster / l2Entries);
      const table = await this.l2.get(l1Index);
      if (table.length === 0) continue;
      const entry = table.readBigUInt64BE((cluster % l2Entries) * 8);
      const clusterStart = cluster * this.clusterSize;
      const from = Math.max(start, clusterStart);
      const to = Math.min(end, clusterStart + this.clusterSize);
      if (entry & COMPRESSED) {
        compressed.push({ cluster, span: this.compressedSpan(cluster, entry), from: from - clusterStart, to: to - clusterStart });
        continue;
      }
      const offset = Number(entry & OFFSET_MASK);
      if (offset === 0 || (entry & ZERO)) continue;
      if (offset % this.clusterSize !== 0) {
        throw formatError(this.source, 'qcow2', `the L2 entry of cluster ${cluster} points to ${at(offset)}, not cluster-aligned: the file is corrupt`);
      }
      gather.add(offset + (from - clusterStart), to - from, from - start, `cluster ${cluster} (host offset ${at(offset)})`);
    }
    const [, deflated] = await Promise.all([gather.readInto(target), readSpans(this.source, 'qcow2', compressed.map((c) => c.span))]);
    compressed.forEach((c, i) => this.inflate(c.span, deflated[i]).copy(target, c.from + (c.cluster * this.clusterSize - start), c.from, c.to));
    return !gather.empty || compressed.length > 0;
  }

  /** Where a compressed cluster's deflate stream is: an unaligned offset and a sector count. */
  private compressedSpan(cluster: number, entry: bigint): Span {
    const x = 62n - BigInt(this.clusterBits - 8);
    const offset = Number(entry & ((1n << x) - 1n));
    const sectors = Number((entry >> x) & ((1n << (62n - x)) - 1n)) + 1;
    // The last cluster's sectors may reach past the end of the file: only the stream counts.
    const length = Math.max(1, Math.min(sectors * 512 - (offset % 512), this.source.size - offset));
    return { offset, length, what: `the compressed cluster ${cluster} at byte offset ${at(offset)}` };
  }

  /** Inflates a compressed cluster (raw deflate; bytes past the stream's end are ignored). */
  private inflate(span: Span, deflated: Buffer): Buffer {
    let bytes: Buffer;
    try {
      bytes = inflateRawSync(deflated, { maxOutputLength: this.clusterSize });
    } catch (e) {
      throw formatError(this.source, 'qcow2', `${span.what} (${span.length} bytes) does not inflate (${(e as Error).message}): the file is corrupt`);
    }
    if (bytes.length !== this.clusterSize) {
      throw formatError(this.source, 'qcow2', `${span.what} inflates to ${bytes.length} bytes, not the cluster's ${this.clusterSize}: the file is corrupt`);
    }
    return bytes;
  }
}
