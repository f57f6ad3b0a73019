/**
 * Small readers shared by the disk image inspection (disk-inspect.ts, vhdx.ts): a file and
 * a virtual disk as byte ranges, bounded reads, little- and big-endian fields, and the
 * message and qemu-img commands of a refused image.
 */
import * as path from 'path';

export const SECTOR = 512;

/** Reads exactly `length` bytes of a virtual disk at `offset`; what is absent reads as zeros. */
export type DiskReader = (offset: number, length: number) => Buffer;

export interface ImageFile {
  readonly path: string;
  readonly size: number;
  /** Up to `length` bytes at `offset`; fewer only at the end of the file. */
  readonly read: (offset: number, length: number) => Buffer;
}

/** GPT stores a GUID's first three fields little-endian and the last two as written. */
export function guidToDiskBytes(guid: string): Buffer {
  const bytes = Buffer.from(guid.replace(/-/g, ''), 'hex');
  const reversed = (start: number, end: number) => Buffer.from(bytes.subarray(start, end)).reverse();
  return Buffer.concat([reversed(0, 4), reversed(4, 6), reversed(6, 8), bytes.subarray(8)]);
}

/** The file's first `end` bytes as a disk. */
export function fileDisk(image: ImageFile, end: number): DiskReader {
  return (offset, length) => zeroPad(image.read(offset, Math.max(0, Math.min(length, end - offset))), length);
}

export function bufferDisk(data: Buffer): DiskReader {
  return (offset, length) => zeroPad(data.subarray(Math.min(offset, data.length), Math.min(offset + length, data.length)), length);
}

export function expectBytes(image: ImageFile, offset: number, length: number, what: string): Buffer {
  const bytes = image.read(offset, length);
  if (bytes.length < length) {
    throw diskError(image.path, `is truncated: its ${what} (${length} bytes at byte ${offset}) runs past the end of the file (${image.size} bytes)`,
      'Copy or export the disk image again');
  }
  return bytes;
}

export function hasBit(value: number, bit: number): boolean {
  return Math.floor(value / 2 ** bit) % 2 === 1;
}

export function isPowerOfTwo(value: number): boolean {
  return value > 0 && Number.isInteger(Math.log2(value));
}

export function zeroPad(bytes: Buffer, length: number): Buffer {
  if (bytes.length >= length) return bytes;
  const out = Buffer.alloc(length);
  bytes.copy(out);
  return out;
}

export function hasMagic(bytes: Buffer, offset: number, magic: string | Buffer): boolean {
  const expected = typeof magic === 'string' ? Buffer.from(magic, 'latin1') : magic;
  return bytes.length >= offset + expected.length && bytes.subarray(offset, offset + expected.length).equals(expected);
}

export function cString(bytes: Buffer, encoding: 'latin1' | 'utf8'): string {
  const end = bytes.indexOf(0);
  return bytes.subarray(0, end === -1 ? bytes.length : end).toString(encoding);
}

/** Unsigned 64-bit integers; values past 2^53 become MAX_SAFE_INTEGER, which lies past the end of any file. */
export function u64le(bytes: Buffer, offset: number): number {
  return toSafeNumber(bytes.readBigUInt64LE(offset));
}

export function u64be(bytes: Buffer, offset: number): number {
  return toSafeNumber(bytes.readBigUInt64BE(offset));
}

export function toSafeNumber(value: bigint): number {
  return value > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(value);
}

export function diskError(filePath: string, found: string, fix: string): Error {
  return new Error(`Disk image ${filePath} ${found}. ${fix}.`);
}

export function streamOptimizedCommand(filePath: string, inputFormat: string): string {
  const output = sibling(filePath, '-stream-optimized.vmdk');
  return `qemu-img convert -f ${inputFormat} -O vmdk -o subformat=streamOptimized,adapter_type=lsilogic ${shellQuote(filePath)} ${shellQuote(output)}`;
}

/** A path beside `filePath`, with its extension replaced by `suffix`. */
export function sibling(filePath: string, suffix: string): string {
  const parsed = path.parse(filePath);
  return path.join(parsed.dir, parsed.name + suffix);
}

export function shellQuote(value: string): string {
  return /^[\w@%+=:,./-]+$/.test(value) ? value : `'${value.replace(/'/g, "'\\''")}'`;
}

/** qemu-img's name for each format VM Import takes; an OVA is a tar archive that qemu-img neither reads nor writes. */
const QEMU_FORMATS: Record<string, string | undefined> = { VMDK: 'vmdk', VHD: 'vpc', VHDX: 'vhdx', RAW: 'raw' };

/**
 * The qemu-img command that converts `filePath` from one of VM Import's formats to another
 * (a VMDK is made stream-optimized), writing beside it; undefined when either side is an OVA.
 */
export function convertCommand(filePath: string, from: string, to: string): string | undefined {
  const input = QEMU_FORMATS[from];
  const output = QEMU_FORMATS[to];
  if (!input || !output) return undefined;
  if (to === 'VMDK') return streamOptimizedCommand(filePath, input);
  const target = sibling(filePath, `-converted.${to === 'VHD' ? 'vhd' : to.toLowerCase()}`);
  return `qemu-img convert -f ${input} -O ${output} ${shellQuote(filePath)} ${shellQuote(target)}`;
}
