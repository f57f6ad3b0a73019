import * as fs from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';
import {
  bufferDisk, cString, diskError, DiskReader, expectBytes, fileDisk, guidToDiskBytes, hasBit, hasMagic, ImageFile,
  isPowerOfTwo, SECTOR, shellQuote, sibling, streamOptimizedCommand, u64be, u64le,
} from './disk-bytes';
import { vhdxDisk } from './vhdx';

/** The formats EC2 VM Import accepts (same strings as ImportImage's DiskContainer.Format). */
export type InspectedFormat = 'OVA' | 'VMDK' | 'VHD' | 'VHDX' | 'RAW';

/** What the first bytes of a local disk image file say about it. */
export interface DiskInspection {
  /** Detected format, or undefined when the bytes match no known format (e.g. a RAW disk with no partition table). */
  readonly format?: InspectedFormat;
  /** Human detail such as 'stream-optimized VMDK', 'dynamic VHD', 'RAW with GPT'. */
  readonly detail: string;
  /**
   * Whether the disk's first sectors hold an EFI System Partition: a GPT entry or an MBR
   * partition of its type. Looked for in RAW, fixed and dynamic VHD, stream-optimized VMDK
   * and VHDX files, and in the first VMDK or VHD disk an OVA's OVF references; 'unknown'
   * where the bytes cannot tell without reading more than headers.
   */
  readonly efiSystemPartition: EspState;
}

/** 'found' or 'absent' once the disk's first sectors were read; 'unknown' when they could not be. */
export type EspState = 'found' | 'absent' | 'unknown';

const MAX_DESCRIPTOR_BYTES = 64 * 1024;
const MAX_OVF_BYTES = 1024 * 1024;
const MAX_PAX_BYTES = 64 * 1024;
const MAX_TAR_MEMBERS = 10_000;
const MAX_GPT_TABLE_BYTES = 256 * 1024;
const MAX_GRAIN_BYTES = 2 * 1024 * 1024;
const MAX_VMDK_MARKERS = 16;
const VHD_UNALLOCATED = 0xffffffff;
const ESP_TYPE_GUID = 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B';
const MBR_ESP_TYPE = 0xef;

interface TarMember {
  readonly name: string;
  readonly dataOffset: number;
  readonly size: number;
}

/** Reads only headers/footers (never the whole file) and throws a plain Error for a file VM Import cannot take. */
export function inspectDiskImage(filePath: string): DiskInspection {
  const size = regularFileSize(filePath);
  const fd = fs.openSync(filePath, 'r');
  try {
    return inspectImage({ path: filePath, size, read: (offset, length) => readFrom(fd, size, offset, length) });
  } finally {
    fs.closeSync(fd);
  }
}

function regularFileSize(filePath: string): number {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(filePath);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw diskError(filePath, 'does not exist', `Check the path; a relative path resolves against ${process.cwd()}`);
    }
    throw diskError(filePath, `cannot be read (${code ?? String(e)})`, 'Check that the file exists and is readable by the user running the CDK app');
  }
  if (stat.isDirectory()) {
    throw diskError(filePath, 'is a directory', 'Pass the path of the disk image file itself, for example disk.vmdk or appliance.ova');
  }
  if (!stat.isFile()) {
    throw diskError(filePath, 'is not a regular file', 'Pass the path of a disk image file');
  }
  if (stat.size === 0) {
    throw diskError(filePath, 'is empty (0 bytes)', 'Export or copy the disk image again; an interrupted export or download often leaves an empty file');
  }
  return stat.size;
}

function readFrom(fd: number, size: number, offset: number, length: number): Buffer {
  const wanted = Math.max(0, Math.min(length, size - offset));
  const buffer = Buffer.alloc(wanted);
  let done = 0;
  while (done < wanted) {
    const n = fs.readSync(fd, buffer, done, wanted - done, offset + done);
    if (n === 0) break;
    done += n;
  }
  return buffer.subarray(0, done);
}

function inspectImage(image: ImageFile): DiskInspection {
  const head = image.read(0, 1024);
  rejectUnimportable(image, head);
  if (hasMagic(head, 0, 'KDMV')) return inspectSparseVmdk(image);
  if (/^\s*# Disk DescriptorFile/.test(head.toString('latin1'))) throw vmdkDescriptorError(image);
  if (hasMagic(head, 0, 'vhdxfile')) {
    const disk = vhdxDisk(image);
    return { format: 'VHDX', detail: 'VHDX', efiSystemPartition: disk ? gptEsp(findGpt(disk)) : 'unknown' };
  }
  if (hasMagic(head, 257, 'ustar')) return inspectOva(image);
  const footer = findVhdFooter(image);
  if (footer) return inspectVhd(image, footer);
  if (hasMagic(head, 0, 'conectix')) {
    throw diskError(image.path, "starts with a VHD footer copy ('conectix') but has no VHD footer in its last 512 bytes, so it is truncated",
      'Copy or export the VHD again and check that the copy has the same size as the original');
  }
  return inspectRaw(image, head);
}

// ---------- formats VM Import cannot take ----------

interface Archive {
  readonly name: string;
  readonly magic: Buffer;
  readonly decompress: string;
}

const ARCHIVES: readonly Archive[] = [
  { name: 'gzip', magic: Buffer.from([0x1f, 0x8b, 0x08]), decompress: 'gunzip -k' },
  { name: 'xz', magic: Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), decompress: 'unxz -k' },
  { name: 'bzip2', magic: Buffer.from('BZh', 'latin1'), decompress: 'bunzip2 -k' },
  { name: 'zstd', magic: Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), decompress: 'unzstd' },
  { name: 'zip', magic: Buffer.from([0x50, 0x4b, 0x03, 0x04]), decompress: 'unzip' },
];

function rejectUnimportable(image: ImageFile, head: Buffer): void {
  const archive = ARCHIVES.find(a => hasMagic(head, 0, a.magic));
  if (archive) {
    throw diskError(image.path, `is a ${archive.name}-compressed file, not a disk image`,
      `Decompress it first (${archive.decompress} ${shellQuote(image.path)}) and pass the decompressed disk image`);
  }
  if (hasMagic(head, 0, Buffer.from([0x51, 0x46, 0x49, 0xfb]))) throw qemuFormatError(image, 'a qcow2 image', 'qcow2');
  if (hasMagic(head, 0, Buffer.from('QED\0', 'latin1'))) throw qemuFormatError(image, 'a QED image', 'qed');
  if (isVdi(head)) throw qemuFormatError(image, 'a VirtualBox VDI image', 'vdi');
  if (hasMagic(image.read(0x8001, 5), 0, 'CD001')) {
    throw diskError(image.path, 'is an ISO 9660 image (an installer CD/DVD), not a disk image',
      "Install the operating system from the ISO into a VM, then export that VM's disk as a stream-optimized VMDK, VHD or RAW image");
  }
}

function isVdi(head: Buffer): boolean {
  return (head.length >= 0x44 && head.readUInt32LE(0x40) === 0xbeda107f) || hasMagic(head, 0, '<<< ');
}

function qemuFormatError(image: ImageFile, found: string, qemuFormat: string): Error {
  return diskError(image.path, `is ${found}, which EC2 VM Import cannot import`,
    `Convert it to a stream-optimized VMDK: ${streamOptimizedCommand(image.path, qemuFormat)}`);
}

// ---------- VMDK ----------

function inspectSparseVmdk(image: ImageFile): DiskInspection {
  const header = expectBytes(image, 0, SECTOR, 'VMDK sparse header');
  const createType = embeddedCreateType(image, header);
  if (createType === undefined) {
    throw diskError(image.path, 'is a sparse VMDK extent without an embedded descriptor (one piece of a multi-file VMDK)',
      `Convert the disk's small text descriptor .vmdk instead: ${streamOptimizedCommand(path.join(path.dirname(image.path), 'DESCRIPTOR.vmdk'), 'vmdk')}`);
  }
  if (createType !== 'streamOptimized') {
    throw diskError(image.path, `is a ${createType} VMDK; EC2 VM Import only takes stream-optimized VMDKs`,
      `Convert it: ${streamOptimizedCommand(image.path, 'vmdk')}`);
  }
  return { format: 'VMDK', detail: 'stream-optimized VMDK', efiSystemPartition: streamOptimizedEsp(image, header) };
}

/** The createType of a sparse VMDK's embedded descriptor; undefined when it has none. */
function embeddedCreateType(image: ImageFile, header: Buffer): string | undefined {
  const descriptorOffset = u64le(header, 28) * SECTOR;
  const descriptorBytes = Math.min(u64le(header, 36) * SECTOR, MAX_DESCRIPTOR_BYTES);
  const descriptor = descriptorBytes === 0 ? '' : cString(expectBytes(image, descriptorOffset, descriptorBytes, 'VMDK descriptor'), 'latin1');
  return parseCreateType(descriptor);
}

function streamOptimizedEsp(image: ImageFile, header: Buffer): EspState {
  const grain = firstGrain(image, header);
  return typeof grain === 'string' ? grain : gptEsp(findGpt(bufferDisk(grain)));
}

function vmdkDescriptorError(image: ImageFile): Error {
  const createType = parseCreateType(image.read(0, MAX_DESCRIPTOR_BYTES).toString('latin1')) ?? 'unknown';
  return diskError(image.path, `is a VMDK text descriptor (createType ${createType}) whose data lives in separate extent files`,
    `Convert it to a single stream-optimized VMDK: ${streamOptimizedCommand(image.path, 'vmdk')}`);
}

function parseCreateType(descriptor: string): string | undefined {
  return /^\s*createType\s*=\s*"?([\w-]+)"?/m.exec(descriptor)?.[1];
}

/**
 * Inflates the stream-optimized VMDK's first grain when it holds LBA 0; 'absent' when the
 * stream holds no grain of LBA 0 (its grains come in ascending order, so a first grain of a
 * later LBA means LBA 0 reads as zeros); 'unknown' when the stream is not read that far.
 */
function firstGrain(image: ImageFile, header: Buffer): Buffer | 'absent' | 'unknown' {
  const flags = header.readUInt32LE(8);
  // Flag bit 16: compressed grains, bit 17: markers; compression algorithm 1: deflate.
  const compressed = hasBit(flags, 16) && hasBit(flags, 17) && header.readUInt16LE(77) === 1;
  const grainBytes = u64le(header, 20) * SECTOR;
  if (!compressed || grainBytes === 0 || grainBytes > MAX_GRAIN_BYTES) return 'unknown';
  let offset = u64le(header, 64) * SECTOR;
  for (let i = 0; i < MAX_VMDK_MARKERS; i++) {
    const marker = image.read(offset, 16);
    // The file ends where a marker would start (qemu-img create writes no marker at all): no grain holds LBA 0.
    if (marker.length < 16) return marker.length === 0 ? 'absent' : 'unknown';
    const value = u64le(marker, 0);
    const size = marker.readUInt32LE(8);
    if (size === 0) {
      // A metadata marker (grain table, directory, footer or end of stream): its sector, then `value` sectors of metadata.
      if (marker.readUInt32LE(12) === 0) return 'absent';
      offset += SECTOR + value * SECTOR;
      continue;
    }
    if (value !== 0) return 'absent';
    if (size > 2 * grainBytes) return 'unknown';
    const compressedGrain = expectBytes(image, offset + 12, size, 'first VMDK grain');
    try {
      return zlib.inflateSync(compressedGrain, { maxOutputLength: grainBytes });
    } catch (e) {
      throw diskError(image.path, `has a first grain that does not decompress (${(e as Error).message}), so it is corrupt`,
        'Export the disk again as a stream-optimized VMDK');
    }
  }
  return 'unknown';
}

// ---------- VHD ----------

interface VhdFooter {
  /** Where the footer starts: the end of a fixed VHD's raw data. */
  readonly offset: number;
  readonly bytes: Buffer;
}

function findVhdFooter(image: ImageFile): VhdFooter | undefined {
  for (const length of [512, 511]) {
    if (image.size < length) continue;
    const bytes = image.read(image.size - length, length);
    if (hasMagic(bytes, 0, 'conectix')) return { offset: image.size - length, bytes };
  }
  return undefined;
}

function inspectVhd(image: ImageFile, footer: VhdFooter): DiskInspection {
  const disk = vhdDisk(image, footer);
  if (disk) return { format: 'VHD', detail: disk.detail, efiSystemPartition: gptEsp(findGpt(disk.read)) };
  const diskType = footer.bytes.readUInt32BE(60);
  switch (diskType) {
    case 4:
      throw diskError(image.path, 'is a differencing VHD, which only holds changes against a parent disk',
        `Merge it with its parent into a standalone VHD (the parent must be at the path recorded in it): qemu-img convert -f vpc -O vpc ${shellQuote(image.path)} ${shellQuote(sibling(image.path, '-standalone.vhd'))}`);
    default:
      throw diskError(image.path, `is a VHD with unknown disk type ${diskType} (expected 2 fixed or 3 dynamic)`,
        `Convert it to a standalone VHD: qemu-img convert -f vpc -O vpc ${shellQuote(image.path)} ${shellQuote(sibling(image.path, '-standalone.vhd'))}`);
  }
}

/** The virtual disk of a fixed or dynamic VHD; undefined for any other disk type. */
function vhdDisk(image: ImageFile, footer: VhdFooter): { detail: string; read: DiskReader } | undefined {
  switch (footer.bytes.readUInt32BE(60)) {
    case 2: return { detail: 'fixed VHD', read: fileDisk(image, footer.offset) };
    case 3: return { detail: 'dynamic VHD', read: dynamicVhdDisk(image, footer.bytes) };
    default: return undefined;
  }
}

/** The virtual disk of a dynamic VHD: footer → dynamic header → block allocation table → blocks after their sector bitmaps. */
function dynamicVhdDisk(image: ImageFile, footer: Buffer): DiskReader {
  const headerOffset = u64be(footer, 16);
  const header = expectBytes(image, headerOffset, 1024, 'dynamic VHD header');
  const blockSize = header.readUInt32BE(32);
  if (!hasMagic(header, 0, 'cxsparse') || blockSize < SECTOR || !isPowerOfTwo(blockSize)) {
    throw diskError(image.path, `is a dynamic VHD without a valid dynamic disk header at byte ${headerOffset}, so it is corrupt`,
      'Export the disk again');
  }
  const batOffset = u64be(header, 16);
  const maxEntries = header.readUInt32BE(28);
  const bitmapBytes = Math.ceil(blockSize / SECTOR / 8 / SECTOR) * SECTOR;
  return (offset, length) => {
    const out = Buffer.alloc(length);
    for (let pos = offset; pos < offset + length;) {
      const block = Math.floor(pos / blockSize);
      const within = pos % blockSize;
      const n = Math.min(blockSize - within, offset + length - pos);
      const sector = block < maxEntries ? expectBytes(image, batOffset + 4 * block, 4, 'VHD block allocation table').readUInt32BE(0) : VHD_UNALLOCATED;
      if (sector !== VHD_UNALLOCATED) image.read(sector * SECTOR + bitmapBytes + within, n).copy(out, pos - offset);
      pos += n;
    }
    return out;
  };
}

// ---------- OVA ----------

function inspectOva(image: ImageFile): DiskInspection {
  const members = listTarMembers(image);
  const ovf = members[0];
  const fix = 'Rebuild the OVA with the .ovf first, then the optional .mf, then every file the OVF references, e.g. tar -cf appliance.ova appliance.ovf appliance.mf disk1.vmdk';
  if (!ovf || !ovf.name.toLowerCase().endsWith('.ovf')) {
    throw diskError(image.path, `is a tar archive whose first member is ${ovf ? `'${ovf.name}'` : 'missing'}, not the .ovf descriptor an OVA must start with`, fix);
  }
  if (ovf.size > MAX_OVF_BYTES) {
    throw diskError(image.path, `has an OVF descriptor '${ovf.name}' of ${ovf.size} bytes, more than the ${MAX_OVF_BYTES} this check reads`, 'Check that the first member is really the OVF descriptor');
  }
  const references = ovfFileReferences(expectBytes(image, ovf.dataOffset, ovf.size, 'OVF descriptor').toString('utf8'));
  if (references.length === 0) {
    throw diskError(image.path, `has an OVF descriptor '${ovf.name}' that references no disk files`, fix);
  }
  const names = new Set(members.map(m => normalizeMemberName(m.name)));
  const missing = references.filter(r => !names.has(normalizeMemberName(r)));
  if (missing.length > 0) {
    throw diskError(image.path, `has an OVF descriptor '${ovf.name}' that references ${missing.map(m => `'${m}'`).join(', ')}, missing from the archive`, fix);
  }
  const count = `${references.length} referenced file${references.length === 1 ? '' : 's'}`;
  const byName = new Map(members.map(m => [normalizeMemberName(m.name), m]));
  const disks = references.map(r => byName.get(normalizeMemberName(r))!);
  return { format: 'OVA', detail: `OVA with ${ovf.name} and ${count}`, efiSystemPartition: bootDiskEsp(image, disks) };
}

/**
 * Looks for an ESP in the first referenced member that is a stream-optimized VMDK or a fixed
 * or dynamic VHD (the boot disk comes first); 'unknown' when none is.
 */
function bootDiskEsp(image: ImageFile, members: TarMember[]): EspState {
  for (const member of members) {
    const disk = memberImage(image, member);
    if (hasMagic(disk.read(0, 4), 0, 'KDMV')) {
      // Only a stream-optimized VMDK has compressed grains with markers; any other is 'unknown'.
      return streamOptimizedEsp(disk, expectBytes(disk, 0, SECTOR, 'VMDK sparse header'));
    }
    const footer = findVhdFooter(disk);
    if (footer) {
      const vhd = vhdDisk(disk, footer);
      return vhd ? gptEsp(findGpt(vhd.read)) : 'unknown';
    }
  }
  return 'unknown';
}

/** A tar member's bytes as a file of their own; its messages name the OVA and the member. */
function memberImage(image: ImageFile, member: TarMember): ImageFile {
  return {
    path: `${image.path} (member ${member.name})`,
    size: member.size,
    read: (offset, length) => image.read(member.dataOffset + offset, Math.max(0, Math.min(length, member.size - offset))),
  };
}

/** Walks the tar headers only, seeking over member bodies; pax and GNU long-name records rename the next member. */
function listTarMembers(image: ImageFile): TarMember[] {
  const members: TarMember[] = [];
  let offset = 0;
  let nextName: string | undefined;
  let nextSize: number | undefined;
  while (offset < image.size && members.length < MAX_TAR_MEMBERS) {
    const header = image.read(offset, SECTOR);
    if (header.length < SECTOR) {
      throw diskError(image.path, `is a truncated tar archive: it ends inside the tar header at byte ${offset}`, 'Copy or export the OVA again');
    }
    if (header.every(b => b === 0)) break;
    const ownSize = tarNumber(header.subarray(124, 136));
    if (!tarChecksumMatches(header) || Number.isNaN(ownSize)) {
      throw diskError(image.path, `has a corrupt tar header at byte ${offset}`, 'Rebuild the OVA with tar, or export it again');
    }
    const type = String.fromCharCode(header[156]);
    const isMetadata = type === 'x' || type === 'L' || type === 'g';
    const size = isMetadata ? ownSize : nextSize ?? ownSize;
    const dataOffset = offset + SECTOR;
    if (dataOffset + size > image.size) {
      throw diskError(image.path, `is a truncated tar archive: the member at byte ${offset} runs past the end of the file`, 'Copy or export the OVA again');
    }
    if (type === 'x') {
      const pax = parsePax(image.read(dataOffset, Math.min(size, MAX_PAX_BYTES)).toString('utf8'));
      nextName = pax.path ?? nextName;
      nextSize = pax.size ?? nextSize;
    } else if (type === 'L') {
      nextName = cString(image.read(dataOffset, Math.min(size, MAX_PAX_BYTES)), 'utf8');
    } else if (!isMetadata) {
      members.push({ name: nextName ?? ustarName(header), dataOffset, size });
      nextName = undefined;
      nextSize = undefined;
    }
    offset = dataOffset + Math.ceil(size / SECTOR) * SECTOR;
  }
  return members;
}

function tarChecksumMatches(header: Buffer): boolean {
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < SECTOR; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : header[i];
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  const stored = tarNumber(header.subarray(148, 156));
  return stored === unsigned || stored === signed;
}

/** A tar numeric field: octal text, or base-256 when the high bit of the first byte is set (GNU, for sizes of 8 GiB and more). */
function tarNumber(field: Buffer): number {
  if (field[0] >= 0x80) {
    return field.subarray(1).reduce((value, b) => value * 256 + b, field[0] - 0x80);
  }
  const text = field.toString('latin1').replace(/[\0 ]+$/, '').replace(/^ +/, '');
  return /^[0-7]+$/.test(text) ? parseInt(text, 8) : NaN;
}

function ustarName(header: Buffer): string {
  const name = cString(header.subarray(0, 100), 'utf8');
  const posix = hasMagic(header, 257, Buffer.from('ustar\0', 'latin1'));
  const prefix = posix ? cString(header.subarray(345, 500), 'utf8') : '';
  return prefix ? `${prefix}/${name}` : name;
}

/** Pax extended header records: "<length> <key>=<value>\n". */
function parsePax(text: string): { path?: string; size?: number } {
  const values = new Map<string, string>();
  for (const match of text.matchAll(/^\d+ ([^=\n]+)=(.*)$/gm)) values.set(match[1], match[2]);
  const size = values.get('size');
  return { path: values.get('path'), size: size !== undefined && /^\d+$/.test(size) ? Number(size) : undefined };
}

function ovfFileReferences(ovf: string): string[] {
  const hrefs: string[] = [];
  for (const file of ovf.matchAll(/<(?:[\w.-]+:)?File\b([^>]*)>/g)) {
    const href = /(?:^|\s)(?:[\w.-]+:)?href\s*=\s*(?:"([^"]*)"|'([^']*)')/.exec(file[1]);
    if (href) hrefs.push(decodeXmlEntities(href[1] ?? href[2]));
  }
  return hrefs;
}

function decodeXmlEntities(text: string): string {
  const named: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
  return text.replace(/&(#x[0-9a-f]+|#\d+|\w+);/gi, (entity, name: string) => {
    if (name.startsWith('#x') || name.startsWith('#X')) return String.fromCodePoint(parseInt(name.slice(2), 16));
    if (name.startsWith('#')) return String.fromCodePoint(parseInt(name.slice(1), 10));
    return named[name] ?? entity;
  });
}

function normalizeMemberName(name: string): string {
  return name.replace(/^(?:\.?\/)+/, '');
}

// ---------- RAW and GPT ----------

function inspectRaw(image: ImageFile, head: Buffer): DiskInspection {
  const gpt = findGpt(fileDisk(image, image.size));
  if (gpt) {
    const detail = gpt.sectorSize === SECTOR ? 'RAW with GPT' : `RAW with GPT (${gpt.sectorSize}-byte sectors)`;
    return { format: 'RAW', detail, efiSystemPartition: gptEsp(gpt) };
  }
  if (head.length >= SECTOR && head[510] === 0x55 && head[511] === 0xaa) {
    // The four primary partition entries at 446, 16 bytes each, their type at byte 4.
    const esp = [0, 1, 2, 3].some(i => head[446 + 16 * i + 4] === MBR_ESP_TYPE);
    return { format: 'RAW', detail: 'RAW with MBR', efiSystemPartition: esp ? 'found' : 'absent' };
  }
  // No partition table in the first sectors, so no ESP either.
  return { format: undefined, detail: `unrecognized bytes (first bytes 0x${head.subarray(0, 16).toString('hex')})`, efiSystemPartition: 'absent' };
}

function gptEsp(gpt: { hasEsp: boolean } | undefined): EspState {
  return gpt?.hasEsp ? 'found' : 'absent';
}

/** Looks for a GPT header at LBA 1 (512- then 4096-byte sectors) and an EFI System Partition among its entries. */
function findGpt(disk: DiskReader): { sectorSize: number; hasEsp: boolean } | undefined {
  const esp = guidToDiskBytes(ESP_TYPE_GUID);
  for (const sectorSize of [SECTOR, 4096]) {
    const header = disk(sectorSize, 92);
    if (!hasMagic(header, 0, 'EFI PART')) continue;
    const entriesOffset = u64le(header, 72) * sectorSize;
    const count = header.readUInt32LE(80);
    const entrySize = header.readUInt32LE(84);
    if (entrySize < 128 || !isPowerOfTwo(entrySize)) return { sectorSize, hasEsp: false };
    const readable = Math.min(count, Math.floor(MAX_GPT_TABLE_BYTES / entrySize));
    const table = disk(entriesOffset, readable * entrySize);
    let hasEsp = false;
    for (let i = 0; i < readable && !hasEsp; i++) hasEsp = hasMagic(table, i * entrySize, esp);
    return { sectorSize, hasEsp };
  }
  return undefined;
}
