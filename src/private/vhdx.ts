/**
 * The virtual disk of a VHDX file, read through its block allocation table, as far as the
 * disk inspection needs it: the first sectors, where a GPT and its EFI System Partition are.
 * Follows Microsoft's VHDX format specification (MS-VHDX); reads only the headers, the region
 * table, the metadata table and items, and the BAT entries of the blocks read.
 */
import { DiskReader, diskError, expectBytes, guidToDiskBytes, hasBit, hasMagic, ImageFile, isPowerOfTwo, u64le } from './disk-bytes';

const KIB = 1024;
const MIB = 1024 * KIB;
/** The two headers; the one with the higher sequence number is current. */
const HEADER_OFFSETS = [64 * KIB, 128 * KIB];
const REGION_TABLE_OFFSET = 192 * KIB;
const MAX_TABLE_ENTRIES = 2047;
const BAT_REGION = guidToDiskBytes('2DC27766-F623-4200-9D64-115E9BFD4A08');
const METADATA_REGION = guidToDiskBytes('8B7CA206-4790-4B9A-B8FE-575F050F886E');
const FILE_PARAMETERS = guidToDiskBytes('CAA16737-FA36-4D43-B3B6-33F0AA44E76B');
const VIRTUAL_DISK_SIZE = guidToDiskBytes('2FA54224-CD1B-4876-B211-5DBED83BF4B8');
const LOGICAL_SECTOR_SIZE = guidToDiskBytes('8141BF1D-A96F-4709-BA47-F233A8FAAB5F');
/** BAT entry states whose block is in the file: PAYLOAD_BLOCK_FULLY_PRESENT and PARTIALLY_PRESENT. */
const PRESENT_STATES = [6, 7];

/**
 * The VHDX's virtual disk; undefined when its log holds entries not yet applied (the BAT and
 * metadata may then be stale until a hypervisor replays it). Throws for a corrupt or
 * differencing VHDX.
 */
export function vhdxDisk(image: ImageFile): DiskReader | undefined {
  const corrupt = (what: string) => diskError(image.path, `is a VHDX whose ${what} is missing or invalid, so it is corrupt`, 'Export the disk again');
  const headers = HEADER_OFFSETS.map(offset => image.read(offset, 80)).filter(h => hasMagic(h, 0, 'head') && h.length === 80);
  if (headers.length === 0) throw corrupt('header (signature \'head\' at 64 KiB or 128 KiB)');
  const header = headers.reduce((a, b) => (b.readBigUInt64LE(8) > a.readBigUInt64LE(8) ? b : a));
  if (!header.subarray(48, 64).every(b => b === 0)) return undefined;

  const regionTable = image.read(REGION_TABLE_OFFSET, 16);
  const regionCount = regionTable.length === 16 ? regionTable.readUInt32LE(8) : 0;
  if (!hasMagic(regionTable, 0, 'regi') || regionCount > MAX_TABLE_ENTRIES) throw corrupt('region table (signature \'regi\' at 192 KiB)');
  const regions = entries(expectBytes(image, REGION_TABLE_OFFSET + 16, regionCount * 32, 'VHDX region table'), regionCount);
  const bat = regions.find(e => hasMagic(e, 0, BAT_REGION));
  const metadata = regions.find(e => hasMagic(e, 0, METADATA_REGION));
  if (!bat || !metadata) throw corrupt('BAT or metadata region');
  const batOffset = u64le(bat, 16);
  const metadataOffset = u64le(metadata, 16);

  const table = image.read(metadataOffset, 32);
  const itemCount = table.length === 32 ? table.readUInt16LE(10) : 0;
  if (!hasMagic(table, 0, 'metadata') || itemCount > MAX_TABLE_ENTRIES) throw corrupt('metadata table (signature \'metadata\')');
  const items = entries(expectBytes(image, metadataOffset + 32, itemCount * 32, 'VHDX metadata table'), itemCount);
  const item = (id: Buffer, length: number) => {
    const entry = items.find(e => hasMagic(e, 0, id));
    return entry && entry.readUInt32LE(20) >= length ? expectBytes(image, metadataOffset + entry.readUInt32LE(16), length, 'VHDX metadata item') : undefined;
  };
  const fileParameters = item(FILE_PARAMETERS, 8);
  const virtualSize = item(VIRTUAL_DISK_SIZE, 8);
  const sectorSize = item(LOGICAL_SECTOR_SIZE, 4)?.readUInt32LE(0);
  const blockSize = fileParameters?.readUInt32LE(0) ?? 0;
  const validBlockSize = blockSize >= MIB && blockSize <= 256 * MIB && isPowerOfTwo(blockSize);
  if (!fileParameters || !virtualSize || (sectorSize !== 512 && sectorSize !== 4096) || !validBlockSize) {
    throw corrupt('metadata (block size, virtual disk size or logical sector size)');
  }
  // File parameters flag bit 1: HasParent.
  if (hasBit(fileParameters.readUInt32LE(4), 1)) {
    throw diskError(image.path, 'is a differencing VHDX, which only holds changes against a parent disk',
      'Merge it into its parent first (Hyper-V Manager: Edit Disk, Merge; or PowerShell Merge-VHD) and import the merged VHDX');
  }
  const diskSize = u64le(virtualSize, 0);
  // A sector bitmap entry follows every `chunkRatio` payload entries in the BAT.
  const chunkRatio = (2 ** 23 * sectorSize) / blockSize;

  return (offset, length) => {
    const out = Buffer.alloc(length);
    for (let pos = offset; pos < offset + length && pos < diskSize;) {
      const block = Math.floor(pos / blockSize);
      const within = pos % blockSize;
      const n = Math.min(blockSize - within, offset + length - pos);
      const index = block + Math.floor(block / chunkRatio);
      const entry = expectBytes(image, batOffset + 8 * index, 8, 'VHDX block allocation table').readBigUInt64LE(0);
      // The state in bits 0-2, the block's file offset in MiB in bits 20-63.
      if (PRESENT_STATES.includes(Number(entry % BigInt(8)))) {
        image.read(Number(entry / BigInt(MIB)) * MIB + within, n).copy(out, pos - offset);
      }
      pos += n;
    }
    return out;
  };
}

/** A table's 32-byte entries. */
function entries(bytes: Buffer, count: number): Buffer[] {
  return Array.from({ length: count }, (_, i) => bytes.subarray(32 * i, 32 * i + 32));
}
