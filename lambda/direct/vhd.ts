/* eslint-disable no-bitwise */ // Disk formats are bit fields: flags, masks, bitmaps, checksums.
/**
 * VHD (Microsoft Virtual Hard Disk Image Format Specification): a 512-byte footer
 * (`conectix`) at the end; a fixed disk is its bytes then the footer, a dynamic one has a
 * header (`cxsparse`), a block allocation table (BAT) of big-endian sector numbers, and per
 * block a sector bitmap (bit set: the sector holds data) before the block's data.
 */
import { BlockDecoder, DiskDecoder } from './decoder';
import { RawDecoder } from './raw';
import { at, ByteSource, formatError, Gather, PageCache, readExact } from './source';

const FOOTER = 512;
const DYNAMIC_HEADER = 1024;
const SECTOR = 512;
const UNUSED = 0xffffffff;
/** BAT entries read at a time (4 KiB), and how many such pages are kept. */
const BAT_PAGE_ENTRIES = 1024;
const BAT_PAGES = 64;
const BITMAPS = 64;

/** The VHD checksum: the one's complement of the sum of the bytes, the checksum field counted as zero. */
function checksum(bytes: Buffer, field: number): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i++) if (i < field || i >= field + 4) sum += bytes[i];
  return (~sum) >>> 0;
}

/** Checks the structure's cookie and checksum, naming the offset of what is wrong. */
function verify(source: ByteSource, bytes: Buffer, offset: number, what: string, cookie: string, field: number): void {
  const found = bytes.toString('latin1', 0, 8);
  if (found !== cookie) {
    throw formatError(source, 'vhd', `the ${what} at byte offset ${at(offset)} starts with ${JSON.stringify(found)}, not "${cookie}": the file is corrupt`);
  }
  const stored = bytes.readUInt32BE(field);
  const computed = checksum(bytes, field);
  if (stored !== computed) {
    throw formatError(source, 'vhd', `the ${what}'s checksum at byte offset ${at(offset + field)} is 0x${stored.toString(16)}, `
      + `but its bytes give 0x${computed.toString(16)}: the file is corrupt`);
  }
}

/** Opens a VHD whose footer is the file's last 512 bytes. */
export async function openVhd(source: ByteSource): Promise<DiskDecoder> {
  if (source.size < FOOTER) throw formatError(source, 'vhd', `the file is ${source.size} bytes, shorter than the 512-byte footer: it is truncated`);
  const footerAt = source.size - FOOTER;
  const footer = await readExact(source, 'vhd', footerAt, FOOTER, 'the footer');
  verify(source, footer, footerAt, 'footer', 'conectix', 64);
  const currentSize = Number(footer.readBigUInt64BE(48));
  const diskType = footer.readUInt32BE(60);
  if (diskType === 2) {
    if (currentSize > footerAt) {
      throw formatError(source, 'vhd', `the fixed disk's size in the footer (at byte offset ${at(footerAt + 48)}) is ${currentSize} bytes, `
        + `but the file holds only ${footerAt} bytes before the footer: the file is truncated`);
    }
    return new RawDecoder(source, currentSize, 0, 'vhd', 'fixed');
  }
  if (diskType === 4) {
    throw formatError(source, 'vhd', 'this is a differencing VHD (disk type 4 in the footer): its data depends on a parent disk. '
      + 'Merge it first, e.g. qemu-img convert -f vpc -O raw child.vhd disk.raw');
  }
  if (diskType !== 3) {
    throw formatError(source, 'vhd', `the footer's disk type at byte offset ${at(footerAt + 60)} is ${diskType}; `
      + 'a VHD is fixed (2), dynamic (3) or differencing (4): the file is corrupt');
  }
  const headerAt = Number(footer.readBigUInt64BE(16));
  const header = await readExact(source, 'vhd', headerAt, DYNAMIC_HEADER, 'the dynamic disk header (the footer\'s data offset)');
  verify(source, header, headerAt, 'dynamic disk header', 'cxsparse', 36);
  const batAt = Number(header.readBigUInt64BE(16));
  const entries = header.readUInt32BE(28);
  const blockSize = header.readUInt32BE(32);
  if (blockSize < SECTOR || (blockSize & (blockSize - 1)) !== 0) {
    throw formatError(source, 'vhd', `the block size at byte offset ${at(headerAt + 32)} is ${blockSize}, not a power of two of at least 512: the file is corrupt`);
  }
  if (entries * blockSize < currentSize) {
    throw formatError(source, 'vhd', `the BAT's ${entries} entries (at byte offset ${at(headerAt + 28)}) of ${blockSize}-byte blocks `
      + `cover less than the disk's ${currentSize} bytes: the file is corrupt`);
  }
  return new DynamicVhdDecoder(source, currentSize, batAt, entries, blockSize);
}

/** A dynamic VHD: blocks found through the BAT, sectors through each block's bitmap. */
class DynamicVhdDecoder extends BlockDecoder {
  public readonly format = 'vhd' as const;
  public readonly subformat = 'dynamic';
  private readonly bitmapBytes: number;
  private readonly bat: PageCache;
  private readonly bitmaps: PageCache;

  constructor(source: ByteSource, virtualSize: number, batAt: number, private readonly entries: number, private readonly blockSize: number) {
    super(source, virtualSize);
    this.bitmapBytes = Math.ceil(blockSize / SECTOR / 8 / SECTOR) * SECTOR;
    this.bat = new PageCache(BAT_PAGES, (page) => {
      const first = page * BAT_PAGE_ENTRIES;
      const count = Math.min(BAT_PAGE_ENTRIES, this.entries - first);
      return readExact(source, 'vhd', batAt + first * 4, count * 4, `the BAT entries ${first} to ${first + count - 1}`);
    });
    this.bitmaps = new PageCache(BITMAPS, async (block) => {
      const sector = await this.entry(block);
      return readExact(source, 'vhd', sector * SECTOR, this.bitmapBytes, `the sector bitmap of block ${block} (BAT entry ${sector})`);
    });
  }

  private async entry(block: number): Promise<number> {
    const page = await this.bat.get(Math.floor(block / BAT_PAGE_ENTRIES));
    return page.readUInt32BE((block % BAT_PAGE_ENTRIES) * 4);
  }

  protected async fill(target: Buffer, start: number, length: number): Promise<boolean> {
    const gather = new Gather(this.source, 'vhd');
    const end = start + length;
    for (let block = Math.floor(start / this.blockSize); block * this.blockSize < end; block++) {
      const sector = await this.entry(block);
      if (sector === UNUSED) continue;
      const bitmap = await this.bitmaps.get(block);
      const blockStart = block * this.blockSize;
      const dataAt = sector * SECTOR + this.bitmapBytes;
      const from = Math.max(start, blockStart);
      const to = Math.min(end, blockStart + this.blockSize);
      for (let s = Math.floor((from - blockStart) / SECTOR); blockStart + s * SECTOR < to; s++) {
        if ((bitmap[s >> 3] & (0x80 >> (s & 7))) === 0) continue;
        const virtualAt = Math.max(from, blockStart + s * SECTOR);
        const n = Math.min(to, blockStart + (s + 1) * SECTOR) - virtualAt;
        gather.add(dataAt + (virtualAt - blockStart), n, virtualAt - start, `the data of VHD block ${block} (BAT entry ${sector})`);
      }
    }
    await gather.readInto(target);
    return !gather.empty;
  }
}
