/* eslint-disable no-bitwise */ // Disk formats are bit fields: flags, masks, bitmaps, checksums.
/**
 * VMDK hosted sparse extents (VMware Virtual Disk Format 1.1): a little-endian header
 * (`KDMV`), an embedded text descriptor, a grain directory (GD) of grain table (GT) sector
 * numbers, and GTs of grain sector numbers. Monolithic sparse grains are stored as is;
 * stream-optimized ones are deflated behind a 12-byte marker (disk sector, size), and the
 * GD is written last, found through the footer (a copy of the header) before the
 * end-of-stream marker.
 */
import { inflateSync } from 'zlib';
import { BlockDecoder, DiskDecoder } from './decoder';
import { at, ByteSource, formatError, Gather, PageCache, readExact, readSpans, Span } from './source';

const SECTOR = 512;
const HEADER = 512;
const GD_AT_END = 0xffffffffffffffffn;
const FLAG_COMPRESSED = 1 << 16;
const FLAG_MARKERS = 1 << 17;
const GRAIN_MARKER = 12;
/** Grain tables kept (a GT of 512 entries is 2 KiB), and decoded grains (64 KiB each). */
const GT_PAGES = 256;
const GD_PAGE_ENTRIES = 1024;
const GD_PAGES = 16;

interface Header {
  readonly flags: number;
  readonly capacity: number;
  readonly grainSize: number;
  readonly descriptorAt: number;
  readonly descriptorSize: number;
  readonly gtEntries: number;
  readonly gdAt: bigint;
  readonly compression: number;
}

function parseHeader(source: ByteSource, b: Buffer, offset: number): Header {
  if (b.toString('latin1', 0, 4) !== 'KDMV') {
    throw formatError(source, 'vmdk', `the sparse extent header at byte offset ${at(offset)} starts with ${JSON.stringify(b.toString('latin1', 0, 4))}, not "KDMV": the file is corrupt`);
  }
  const version = b.readUInt32LE(4);
  if (version < 1 || version > 3) {
    throw formatError(source, 'vmdk', `the header's version at byte offset ${at(offset + 4)} is ${version}; versions 1 to 3 are known`);
  }
  return {
    flags: b.readUInt32LE(8),
    capacity: Number(b.readBigUInt64LE(12)),
    grainSize: Number(b.readBigUInt64LE(20)),
    descriptorAt: Number(b.readBigUInt64LE(28)),
    descriptorSize: Number(b.readBigUInt64LE(36)),
    gtEntries: b.readUInt32LE(44),
    gdAt: b.readBigUInt64LE(56),
    compression: b.readUInt16LE(77),
  };
}

/** Opens a VMDK that starts with a hosted sparse extent header. */
export async function openVmdk(source: ByteSource): Promise<DiskDecoder> {
  let header = parseHeader(source, await readExact(source, 'vmdk', 0, HEADER, 'the sparse extent header'), 0);
  if (header.gdAt === GD_AT_END) {
    // Stream-optimized: footer marker, footer (the real header), end-of-stream marker.
    const footerAt = source.size - 2 * SECTOR;
    header = parseHeader(source, await readExact(source, 'vmdk', footerAt, HEADER, 'the footer (the header copy 1 KiB before the end)'), footerAt);
    if (header.gdAt === GD_AT_END) {
      throw formatError(source, 'vmdk', `the footer at byte offset ${at(footerAt)} does not give the grain directory's offset either: the file is truncated or corrupt`);
    }
  }
  const compressed = (header.flags & FLAG_COMPRESSED) !== 0;
  if (compressed && header.compression !== 1) {
    throw formatError(source, 'vmdk', `the header says the grains are compressed with algorithm ${header.compression} (at byte offset ${at(77)}); only deflate (1) is known`);
  }
  if (header.grainSize < 1 || (header.grainSize & (header.grainSize - 1)) !== 0 || header.gtEntries < 1) {
    throw formatError(source, 'vmdk', `the grain size (${header.grainSize} sectors, at byte offset ${at(20)}) or entries per grain table `
      + `(${header.gtEntries}, at ${at(44)}) is not valid: the file is corrupt`);
  }
  const descriptor = header.descriptorSize > 0
    ? (await readExact(source, 'vmdk', header.descriptorAt * SECTOR, header.descriptorSize * SECTOR, 'the embedded descriptor')).toString('latin1').replace(/\0[\s\S]*$/, '')
    : '';
  const parent = /^parentFileNameHint\s*=\s*"([^"]*)"/m.exec(descriptor);
  if (parent) {
    throw formatError(source, 'vmdk', `this VMDK is a delta of the parent disk "${parent[1]}" (parentFileNameHint in its descriptor): `
      + 'the direct route reads one file. Merge it first, e.g. qemu-img convert -f vmdk -O qcow2 child.vmdk disk.qcow2');
  }
  const createType = /^createType\s*=\s*"([^"]*)"/m.exec(descriptor)?.[1];
  const subformat = createType ?? (compressed ? 'streamOptimized' : 'monolithicSparse');
  return new SparseVmdkDecoder(source, header, Number(header.gdAt) * SECTOR, compressed, (header.flags & FLAG_MARKERS) !== 0, subformat);
}

class SparseVmdkDecoder extends BlockDecoder {
  public readonly format = 'vmdk' as const;
  private readonly grainBytes: number;
  private readonly gtBytes: number;
  private readonly gd: PageCache;
  private readonly gts: PageCache;

  constructor(source: ByteSource, header: Header, gdAt: number, private readonly compressed: boolean,
    private readonly markers: boolean, public readonly subformat: string) {
    super(source, header.capacity * SECTOR);
    this.grainBytes = header.grainSize * SECTOR;
    this.gtBytes = header.gtEntries * 4;
    const grains = Math.ceil(header.capacity / header.grainSize);
    const gdEntries = Math.ceil(grains / header.gtEntries);
    this.gd = new PageCache(GD_PAGES, (page) => {
      const first = page * GD_PAGE_ENTRIES;
      const count = Math.min(GD_PAGE_ENTRIES, gdEntries - first);
      return readExact(source, 'vmdk', gdAt + first * 4, count * 4, `the grain directory entries ${first} to ${first + count - 1}`);
    });
    this.gts = new PageCache(GT_PAGES, async (table) => {
      const page = await this.gd.get(Math.floor(table / GD_PAGE_ENTRIES));
      const sector = page.readUInt32LE((table % GD_PAGE_ENTRIES) * 4);
      if (sector === 0) return Buffer.alloc(0);
      return readExact(source, 'vmdk', sector * SECTOR, this.gtBytes, `grain table ${table} (grain directory entry ${table} at byte offset ${at(gdAt + table * 4)})`);
    });
  }

  /** The sector of grain `grain`, 0 when unallocated, 1 when recorded as zeros. */
  private async grainSector(grain: number): Promise<number> {
    const entries = this.gtBytes / 4;
    const table = await this.gts.get(Math.floor(grain / entries));
    return table.length === 0 ? 0 : table.readUInt32LE((grain % entries) * 4);
  }

  protected async fill(target: Buffer, start: number, length: number): Promise<boolean> {
    const gather = new Gather(this.source, 'vmdk');
    const grains: Array<{ grain: number; sector: number; from: number; to: number }> = [];
    const end = start + length;
    for (let grain = Math.floor(start / this.grainBytes); grain * this.grainBytes < end; grain++) {
      const sector = await this.grainSector(grain);
      if (sector <= 1) continue;
      const grainStart = grain * this.grainBytes;
      const from = Math.max(start, grainStart);
      const to = Math.min(end, grainStart + this.grainBytes);
      if (this.compressed) {
        grains.push({ grain, sector, from, to });
      } else {
        gather.add(sector * SECTOR + (from - grainStart), to - from, from - start, `grain ${grain} (at sector ${sector})`);
      }
    }
    // A stream writes grains one after another: a grain's marker and data end where the next
    // grain in the file starts, so all but the last are read together, before their markers.
    const bySector = [...grains].sort((a, b) => a.sector - b.sector);
    const spans: Array<Span | undefined> = grains.map((g) => {
      const next = bySector.find((o) => o.sector > g.sector)?.sector;
      // Clamped to the file: a truncated grain then fails on its exact read, which names it.
      const bytes = next === undefined ? 0 : Math.min((next - g.sector) * SECTOR, this.source.size - g.sector * SECTOR);
      return this.markers && bytes >= GRAIN_MARKER && bytes <= this.maxGrainBytes + GRAIN_MARKER + SECTOR
        ? { offset: g.sector * SECTOR, length: bytes, what: `the compressed grain ${g.grain} at byte offset ${at(g.sector * SECTOR)}` }
        : undefined;
    });
    const known = spans.filter((x): x is Span => x !== undefined);
    const [, prefetched] = await Promise.all([gather.readInto(target), readSpans(this.source, 'vmdk', known)]);
    const byOffset = new Map(known.map((x, i) => [x.offset, prefetched[i]]));
    await Promise.all(grains.map(async (g) => {
      const bytes = await this.inflateGrain(g.grain, g.sector, byOffset.get(g.sector * SECTOR));
      const grainStart = g.grain * this.grainBytes;
      bytes.copy(target, g.from - start, g.from - grainStart, g.to - grainStart);
    }));
    return !gather.empty || grains.length > 0;
  }

  /** The largest compressed size a marker may give (deflate can grow incompressible data a little). */
  private get maxGrainBytes(): number {
    return 2 * this.grainBytes + 4096;
  }

  /**
   * Inflates the compressed grain at `sector`, checking its marker; `prefetched` holds the
   * bytes from its marker on, when they were read with their neighbours.
   */
  private async inflateGrain(grain: number, sector: number, prefetched?: Buffer): Promise<Buffer> {
    const markerAt = sector * SECTOR;
    const what = `the compressed grain ${grain} at byte offset ${at(markerAt)}`;
    const headerBytes = this.markers ? GRAIN_MARKER : 0;
    const marker = prefetched ?? await readExact(this.source, 'vmdk', markerAt, headerBytes, what);
    const expectedLba = BigInt(grain * (this.grainBytes / SECTOR));
    let size: number;
    if (this.markers) {
      const lba = marker.readBigUInt64LE(0);
      size = marker.readUInt32LE(8);
      if (lba !== expectedLba) {
        throw formatError(this.source, 'vmdk', `${what}: its marker names disk sector ${lba}, but the grain table puts grain ${grain} at sector ${expectedLba}: the file is corrupt`);
      }
      if (size === 0 || size > this.maxGrainBytes) {
        throw formatError(this.source, 'vmdk', `${what}: its marker gives a compressed size of ${size} bytes for a ${this.grainBytes}-byte grain: the file is corrupt`);
      }
    } else {
      size = Math.min(this.grainBytes + 4096, this.source.size - markerAt);
    }
    const deflated = prefetched && headerBytes + size <= prefetched.length
      ? prefetched.subarray(headerBytes, headerBytes + size)
      : await readExact(this.source, 'vmdk', markerAt + headerBytes, size, what);
    let bytes: Buffer;
    try {
      bytes = inflateSync(deflated, { maxOutputLength: this.grainBytes });
    } catch (e) {
      throw formatError(this.source, 'vmdk', `${what} does not inflate (${(e as Error).message}): the file is corrupt`);
    }
    if (bytes.length < this.grainBytes && (grain + 1) * this.grainBytes <= this.virtualSize) {
      throw formatError(this.source, 'vmdk', `${what} inflates to ${bytes.length} bytes, not the grain's ${this.grainBytes}: the file is corrupt`);
    }
    return bytes;
  }
}
