import { execFileSync } from 'child_process';
import * as crypto from 'crypto';
import nodeFs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';
import { writeDiskFixtures } from './support/disk-fixtures';
import { DiskInspection, inspectDiskImage } from '../src/private/disk-inspect';

// Real images made by qemu-img (Debian qemu-utils) and sfdisk (Debian fdisk), committed as
// fixtures (test/support/disk-fixtures.ts); the variants EC2 or a user may meet are derived here.
const MIB = 1024 * 1024;
const GIB = 1024 * MIB;
/** No inspection may read more than this, whatever the image size. */
const MAX_BYTES_READ = 128 * 1024;

let dir: string;
const file = (name: string) => path.join(dir, name);

function run(tool: string, args: string[], input?: string): void {
  execFileSync(tool, args, { input, stdio: ['pipe', 'pipe', 'pipe'] });
}

function sparseFile(name: string, size: number): string {
  nodeFs.writeFileSync(file(name), '');
  nodeFs.truncateSync(file(name), size);
  return file(name);
}

function writeBytes(name: string, size: number, patches: Array<[number, Buffer]>): string {
  const bytes = Buffer.alloc(size);
  for (const [offset, data] of patches) data.copy(bytes, offset);
  nodeFs.writeFileSync(file(name), bytes);
  return file(name);
}

function copyWithSize(from: string, name: string, size: number): string {
  nodeFs.copyFileSync(from, file(name));
  nodeFs.truncateSync(file(name), size);
  return file(name);
}

/** sfdisk 2.38 cannot write 4096-byte-sector GPTs; move its 512-byte GPT header and entries to LBA 1 and 2 of 4096-byte sectors. */
function withFourKiBSectors(from: string, name: string): string {
  const disk = nodeFs.readFileSync(from).subarray(0, 64 * 1024);
  const header = Buffer.from(disk.subarray(512, 1024));
  header.writeBigUInt64LE(2n, 72);
  const entries = disk.subarray(1024, 1024 + 128 * 128);
  return writeBytes(name, 1 * MIB, [[4096, header], [8192, entries]]);
}

/** Rewrites a real dynamic VHD's disk type (footer and its copy at byte 0) with a valid checksum; qemu-img cannot create differencing VHDs. */
function withVhdDiskType(from: string, name: string, diskType: number): string {
  const bytes = nodeFs.readFileSync(from);
  const footer = bytes.subarray(bytes.length - 512);
  footer.writeUInt32BE(diskType, 60);
  footer.writeUInt32BE(0, 64);
  const sum = footer.reduce((total, b) => total + b, 0);
  footer.writeUInt32BE(0xffffffff - (sum % 2 ** 32), 64);
  footer.copy(bytes, 0);
  nodeFs.writeFileSync(file(name), bytes);
  return file(name);
}

function patched(from: string, name: string, offset: (bytes: Buffer) => number, patch: Buffer): string {
  const bytes = nodeFs.readFileSync(from);
  patch.copy(bytes, offset(bytes));
  nodeFs.writeFileSync(file(name), bytes);
  return file(name);
}

function ovf(hrefs: string[]): string {
  const files = hrefs.map((href, i) => `    <File ovf:href="${href}" ovf:id="file${i + 1}"/>`).join('\n');
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">',
    '  <References>',
    files,
    '  </References>',
    '  <DiskSection><Info>Virtual disks</Info></DiskSection>',
    '</Envelope>',
    '',
  ].join('\n');
}

/** Builds an OVA with tar from a folder holding `members` in the given order. */
function ova(name: string, members: Record<string, string | Buffer>, tarArgs: string[] = ['--format=ustar']): string {
  const source = file(`${name}.d`);
  nodeFs.mkdirSync(source);
  for (const [member, content] of Object.entries(members)) nodeFs.writeFileSync(path.join(source, member), content);
  run('tar', [...tarArgs, '-cf', file(name), '-C', source, ...Object.keys(members)]);
  return file(name);
}

function manifest(members: Record<string, Buffer>): string {
  return Object.entries(members).map(([name, data]) => `SHA256(${name})= ${crypto.createHash('sha256').update(data).digest('hex')}\n`).join('');
}

interface Measured {
  readonly result?: DiskInspection;
  readonly error?: Error;
  readonly bytesRead: number;
  readonly opened: number;
  readonly closed: number;
}

/** Inspects while counting the bytes read from, and the descriptors opened and closed on, `filePath`. */
function measure(filePath: string): Measured {
  const readSync = jest.spyOn(nodeFs, 'readSync');
  const openSync = jest.spyOn(nodeFs, 'openSync');
  const closeSync = jest.spyOn(nodeFs, 'closeSync');
  const readFileSync = jest.spyOn(nodeFs, 'readFileSync');
  try {
    let result: DiskInspection | undefined;
    let error: Error | undefined;
    try {
      result = inspectDiskImage(filePath);
    } catch (e) {
      error = e as Error;
    }
    expect(readFileSync.mock.calls.filter(([p]) => p === filePath)).toEqual([]);
    const fds = openSync.mock.calls.flatMap(([p], i) => p === filePath ? [openSync.mock.results[i].value as number] : []);
    const bytesRead = readSync.mock.calls.reduce((total, [fd], i) => total + (fds.includes(fd) ? readSync.mock.results[i].value as number : 0), 0);
    const closed = closeSync.mock.calls.filter(([fd]) => fds.includes(fd)).length;
    return { result, error, bytesRead, opened: fds.length, closed };
  } finally {
    jest.restoreAllMocks();
  }
}

function inspect(filePath: string): DiskInspection {
  const m = measure(filePath);
  if (m.error) throw m.error;
  expect(m.bytesRead).toBeLessThanOrEqual(MAX_BYTES_READ);
  expect(m.closed).toBe(m.opened);
  return m.result!;
}

function inspectionError(filePath: string): string {
  const m = measure(filePath);
  expect(m.closed).toBe(m.opened);
  expect(m.bytesRead).toBeLessThanOrEqual(MAX_BYTES_READ);
  if (!m.error) throw new Error(`expected ${filePath} to be rejected, got ${JSON.stringify(m.result)}`);
  expect(m.error.constructor).toBe(Error);
  expect(m.error.message).toContain(filePath);
  return m.error.message;
}

const images: Record<string, string> = {};

beforeAll(() => {
  dir = nodeFs.mkdtempSync(path.join(os.tmpdir(), 'disk-inspect-'));
  // The images qemu-img and sfdisk made (test/fixtures/make-disk-fixtures.sh says how).
  const made = writeDiskFixtures(dir);
  const rawEsp = images.rawEsp = made['gpt-esp.img'];
  images.rawNoEsp = made['gpt.img'];
  images.rawMbr = made['mbr.img'];
  images.rawEsp4k = withFourKiBSectors(rawEsp, 'gpt-esp-4k.img');
  images.blank = sparseFile('blank.img', 16 * MIB);
  images.bigRawEsp = made['big-gpt-esp.img'];
  images.bigBlank = sparseFile('big-blank.img', 4 * GIB);

  images.streamEsp = made['gpt-esp-stream.vmdk'];
  images.streamNoEsp = made['gpt-stream.vmdk'];
  images.streamEmpty = made['empty-stream.vmdk'];
  images.monolithicSparse = made['monolithic-sparse.vmdk'];
  images.flatDescriptor = made['flat.vmdk'];
  images.splitSparse = made['split.vmdk'];
  images.splitSparseExtent = made['split-s001.vmdk'];
  images.truncatedStream = copyWithSize(images.streamEsp, 'truncated-stream.vmdk', 600);

  images.dynamicEsp = made['gpt-esp-dynamic.vhd'];
  images.dynamicEmpty = made['empty-dynamic.vhd'];
  images.fixedEsp = made['gpt-esp-fixed.vhd'];
  images.fixedEsp511 = copyWithSize(images.fixedEsp, 'gpt-esp-fixed-511.vhd', nodeFs.statSync(images.fixedEsp).size - 1);
  images.bigFixed = made['big-fixed.vhd'];
  images.differencing = withVhdDiskType(images.dynamicEsp, 'differencing.vhd', 4);
  images.unknownVhdType = withVhdDiskType(images.dynamicEsp, 'unknown-type.vhd', 5);
  images.corruptDynamicHeader = patched(images.dynamicEsp, 'corrupt-dynamic-header.vhd', b => Number(b.readBigUInt64BE(b.length - 512 + 16)), Buffer.from('xxxxxxxx'));
  images.corruptGrain = patched(images.streamEsp, 'corrupt-grain.vmdk', b => Number(b.readBigUInt64LE(64)) * 512 + 12, Buffer.alloc(64, 0xff));

  // The GPT+ESP disk's first 64 KiB at 2 MiB: the first grain (LBA 0) and first VHD block are absent, later ones hold a GPT.
  images.shiftedStream = made['shifted-stream.vmdk'];
  images.shiftedDynamic = made['shifted-dynamic.vhd'];
  images.truncatedDynamic = copyWithSize(images.dynamicEsp, 'truncated-dynamic.vhd', nodeFs.statSync(images.dynamicEsp).size - 512);

  images.vhdx = made['disk.vhdx'];
  images.vhdxEsp = made['gpt-esp.vhdx'];
  images.vhdxNoEsp = made['gpt.vhdx'];
  images.vhdxFixedEsp = made['gpt-esp-fixed.vhdx'];
  images.rawMbrEsp = made['mbr-esp.img'];
  // The VHDX header with the higher sequence number (at 64 or 128 KiB) is the current one.
  const vhdxHeaders = (b: Buffer) => [64 * 1024, 128 * 1024].sort((x, y) => Number(b.readBigUInt64LE(x + 8) - b.readBigUInt64LE(y + 8)));
  const [olderHeader, newerHeader] = vhdxHeaders(nodeFs.readFileSync(images.vhdxEsp));
  images.vhdxLog = patched(images.vhdxEsp, 'log.vhdx', () => newerHeader + 48, Buffer.from('log-guid-pending'));
  images.vhdxOldHeaderLog = patched(images.vhdxEsp, 'old-header-log.vhdx', () => olderHeader + 48, Buffer.from('log-guid-pending'));
  images.vhdxNoHeader = patched(patched(images.vhdxEsp, 'no-header-1.vhdx', () => olderHeader, Buffer.from('xxxx')), 'no-header.vhdx', () => newerHeader, Buffer.from('xxxx'));
  images.vhdxNoRegions = patched(images.vhdxEsp, 'no-regions.vhdx', () => 192 * 1024, Buffer.from('xxxx'));
  const region = (b: Buffer, guid: string) => {
    const id = Buffer.from(guid.replace(/-/g, ''), 'hex');
    const reversed = (start: number, end: number) => Buffer.from(id.subarray(start, end)).reverse();
    const onDisk = Buffer.concat([reversed(0, 4), reversed(4, 6), reversed(6, 8), id.subarray(8)]);
    return b.indexOf(onDisk, 192 * 1024);
  };
  const metadataGuid = '8B7CA206-4790-4B9A-B8FE-575F050F886E';
  const metadataAt = (b: Buffer) => Number(b.readBigUInt64LE(region(b, metadataGuid) + 16));
  // File parameters (the first metadata item qemu-img writes): block size, then flags (bit 1: HasParent).
  const fileParametersAt = (b: Buffer) => metadataAt(b) + b.readUInt32LE(region(b, 'CAA16737-FA36-4D43-B3B6-33F0AA44E76B') + 16);
  images.vhdxNoMetadata = patched(images.vhdxEsp, 'no-metadata.vhdx', metadataAt, Buffer.from('xxxxxxxx'));
  images.vhdxBadBlockSize = patched(images.vhdxEsp, 'bad-block-size.vhdx', fileParametersAt, Buffer.from([3, 0, 0, 0]));
  images.vhdxDifferencing = patched(images.vhdxEsp, 'differencing.vhdx', (b) => fileParametersAt(b) + 4, Buffer.from([2, 0, 0, 0]));
  const batAt = (b: Buffer) => Number(b.readBigUInt64LE(region(b, '2DC27766-F623-4200-9D64-115E9BFD4A08') + 16));
  // The first BAT entry's state (its low 3 bits) set to PAYLOAD_BLOCK_NOT_PRESENT, its file offset kept.
  const notPresent = Buffer.from(nodeFs.readFileSync(images.vhdxEsp).subarray(batAt(nodeFs.readFileSync(images.vhdxEsp))).subarray(0, 8));
  notPresent[0] -= notPresent[0] % 8;
  images.vhdxFirstBlockAbsent = patched(images.vhdxEsp, 'first-block-absent.vhdx', batAt, notPresent);
  // Header flags bit 16 (compressed grains) cleared.
  images.streamUncompressed = patched(made['gpt-esp-stream.vmdk'], 'uncompressed-stream.vmdk', () => 10, Buffer.from([0]));
  images.qcow2 = made['disk.qcow2'];
  images.qed = made['disk.qed'];
  images.vdi = made['disk.vdi'];
  images.iso = writeBytes('installer.iso', 64 * 1024, [[0x8001, Buffer.from('CD001')], [510, Buffer.from([0x55, 0xaa])]]);

  const disk = nodeFs.readFileSync(images.streamEsp);
  const ovfText = ovf(['disk1.vmdk']);
  const mf = manifest({ 'appliance.ovf': Buffer.from(ovfText), 'disk1.vmdk': disk });
  images.ova = ova('good.ova', { 'appliance.ovf': ovfText, 'appliance.mf': mf, 'disk1.vmdk': disk });
  images.ovaGnu = ova('gnu.ova', { 'appliance.ovf': ovfText, 'disk1.vmdk': disk }, ['--format=gnu']);
  const longName = `${'a-very-long-disk-name-'.repeat(6)}disk1.vmdk`;
  images.ovaPax = ova('pax.ova', { 'appliance.ovf': ovf([longName]), [longName]: disk }, ['--format=posix']);
  images.ovaDiskFirst = ova('disk-first.ova', { 'disk1.vmdk': disk, 'appliance.ovf': ovfText });
  images.ovaMissingDisk = ova('missing-disk.ova', { 'appliance.ovf': ovf(['disk1.vmdk', 'disk2.vmdk']), 'disk1.vmdk': disk });
  images.ovaHugeOvf = ova('huge-ovf.ova', { 'appliance.ovf': ovfText + ' '.repeat(2 * MIB), 'disk1.vmdk': disk });
  images.ovaNoEsp = ova('no-esp.ova', { 'appliance.ovf': ovfText, 'disk1.vmdk': nodeFs.readFileSync(images.streamNoEsp) });
  images.ovaVhd = ova('vhd.ova', { 'appliance.ovf': ovf(['disk1.vhd', 'disk2.vmdk']), 'disk1.vhd': nodeFs.readFileSync(images.dynamicEsp), 'disk2.vmdk': nodeFs.readFileSync(images.streamNoEsp) });
  images.ovaSparse = ova('sparse.ova', { 'appliance.ovf': ovfText, 'disk1.vmdk': nodeFs.readFileSync(images.monolithicSparse) });
  images.ovaNoDisk = ova('no-disk.ova', { 'appliance.ovf': ovf(['notes.txt']), 'notes.txt': 'not a disk\n' });
  images.ovaNoReferences = ova('no-references.ova', { 'appliance.ovf': ovf([]), 'disk1.vmdk': disk });
  // good.ova: headers at 0 (.ovf), 1024 (.mf) and 2048 (disk1.vmdk, whose body starts at 2560).
  images.ovaTruncatedBody = copyWithSize(images.ova, 'truncated-body.ova', 2560 + 1000);
  images.ovaTruncatedHeader = copyWithSize(images.ova, 'truncated-header.ova', 2048 + 100);
  const corrupt = nodeFs.readFileSync(images.ova);
  corrupt.write('zzz', 1);
  images.ovaCorrupt = file('corrupt.ova');
  nodeFs.writeFileSync(images.ovaCorrupt, corrupt);

  images.empty = writeBytes('empty.img', 0, []);
  images.directory = file('a-directory');
  nodeFs.mkdirSync(images.directory);
  images.missing = file('no-such-disk.vmdk');
  images.gzip = file('disk.img.gz');
  nodeFs.writeFileSync(images.gzip, zlib.gzipSync(Buffer.alloc(MIB)));
  images.xz = writeBytes('disk.img.xz', 4096, [[0, Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])]]);
  images.bzip2 = writeBytes('disk.img.bz2', 4096, [[0, Buffer.from('BZh9')]]);
  images.zstd = writeBytes('disk.img.zst', 4096, [[0, Buffer.from([0x28, 0xb5, 0x2f, 0xfd])]]);
  images.zip = writeBytes('disk.zip', 4096, [[0, Buffer.from('PK\x03\x04', 'latin1')]]);
}, 120_000);

afterAll(() => {
  if (dir) nodeFs.rmSync(dir, { recursive: true, force: true });
});

describe('importable images', () => {
  test.each([
    ['RAW with GPT and an ESP', 'rawEsp', 'RAW', 'RAW with GPT', 'found'],
    ['RAW with GPT and no ESP', 'rawNoEsp', 'RAW', 'RAW with GPT', 'absent'],
    ['RAW with GPT on 4096-byte sectors', 'rawEsp4k', 'RAW', 'RAW with GPT (4096-byte sectors)', 'found'],
    ['RAW with MBR', 'rawMbr', 'RAW', 'RAW with MBR', 'absent'],
    ['stream-optimized VMDK of a GPT+ESP disk', 'streamEsp', 'VMDK', 'stream-optimized VMDK', 'found'],
    ['stream-optimized VMDK of a GPT disk without ESP', 'streamNoEsp', 'VMDK', 'stream-optimized VMDK', 'absent'],
    ['stream-optimized VMDK without grains', 'streamEmpty', 'VMDK', 'stream-optimized VMDK', 'absent'],
    ['dynamic VHD of a GPT+ESP disk', 'dynamicEsp', 'VHD', 'dynamic VHD', 'found'],
    ['dynamic VHD without blocks', 'dynamicEmpty', 'VHD', 'dynamic VHD', 'absent'],
    ['fixed VHD of a GPT+ESP disk', 'fixedEsp', 'VHD', 'fixed VHD', 'found'],
    ['fixed VHD with a 511-byte footer', 'fixedEsp511', 'VHD', 'fixed VHD', 'found'],
    ['stream-optimized VMDK whose first grain is not LBA 0', 'shiftedStream', 'VMDK', 'stream-optimized VMDK', 'absent'],
    ['dynamic VHD whose first block is absent', 'shiftedDynamic', 'VHD', 'dynamic VHD', 'absent'],
    ['VHDX without blocks', 'vhdx', 'VHDX', 'VHDX', 'absent'],
    ['dynamic VHDX of a GPT+ESP disk', 'vhdxEsp', 'VHDX', 'VHDX', 'found'],
    ['dynamic VHDX of a GPT disk without ESP', 'vhdxNoEsp', 'VHDX', 'VHDX', 'absent'],
    ['fixed VHDX of a GPT+ESP disk', 'vhdxFixedEsp', 'VHDX', 'VHDX', 'found'],
    ['VHDX whose first block is not present in the BAT', 'vhdxFirstBlockAbsent', 'VHDX', 'VHDX', 'absent'],
    ['VHDX whose older header has a log to replay', 'vhdxOldHeaderLog', 'VHDX', 'VHDX', 'found'],
    ['VHDX whose current header has a log to replay', 'vhdxLog', 'VHDX', 'VHDX', 'unknown'],
    ['RAW with MBR and an ESP partition (type 0xEF)', 'rawMbrEsp', 'RAW', 'RAW with MBR', 'found'],
    ['stream-optimized VMDK whose grains are not compressed', 'streamUncompressed', 'VMDK', 'stream-optimized VMDK', 'unknown'],
    ['OVA of a GPT disk without ESP', 'ovaNoEsp', 'OVA', 'OVA with appliance.ovf and 1 referenced file', 'absent'],
    ['OVA whose first disk is a dynamic VHD of a GPT+ESP disk', 'ovaVhd', 'OVA', 'OVA with appliance.ovf and 2 referenced files', 'found'],
    ['OVA whose disk is a monolithic sparse VMDK', 'ovaSparse', 'OVA', 'OVA with appliance.ovf and 1 referenced file', 'unknown'],
    ['OVA that references no disk image', 'ovaNoDisk', 'OVA', 'OVA with appliance.ovf and 1 referenced file', 'unknown'],
    ['OVA (ustar)', 'ova', 'OVA', 'OVA with appliance.ovf and 1 referenced file', 'found'],
    ['OVA (GNU tar)', 'ovaGnu', 'OVA', 'OVA with appliance.ovf and 1 referenced file', 'found'],
    ['OVA (pax, long member name)', 'ovaPax', 'OVA', 'OVA with appliance.ovf and 1 referenced file', 'found'],
  ])('%s', (_, image, format, detail, efiSystemPartition) => {
    expect(inspect(images[image])).toEqual({ format, detail, efiSystemPartition });
  });

  test('a RAW disk without a partition table is unrecognized', () => {
    expect(inspect(images.blank)).toEqual({ format: undefined, detail: `unrecognized bytes (first bytes 0x${'00'.repeat(16)})`, efiSystemPartition: 'absent' });
  });
});

describe('only headers and footers are read', () => {
  test.each([
    ['4 GiB RAW with GPT and an ESP', 'bigRawEsp', 'RAW', 'found'],
    ['4 GiB fixed VHD', 'bigFixed', 'VHD', 'absent'],
    ['4 GiB of zeros', 'bigBlank', undefined, 'absent'],
  ])('%s', (_, image, format, esp) => {
    expect(nodeFs.statSync(images[image]).size).toBeGreaterThanOrEqual(4 * GIB);
    const started = Date.now();
    const m = measure(images[image]);
    const elapsed = Date.now() - started;
    expect(m.error).toBeUndefined();
    expect(m.result?.format).toBe(format);
    expect(m.result?.efiSystemPartition).toBe(esp);
    expect(m.bytesRead).toBeGreaterThan(0);
    expect(m.bytesRead).toBeLessThanOrEqual(64 * 1024);
    expect(elapsed).toBeLessThan(1000);
  });
});

describe('rejected images', () => {
  test.each([
    ['empty file', 'empty', /is empty \(0 bytes\)\. Export or copy the disk image again/],
    ['directory', 'directory', /is a directory\. Pass the path of the disk image file itself/],
    ['missing file', 'missing', /does not exist\. Check the path; a relative path resolves against/],
    ['monolithic sparse VMDK', 'monolithicSparse', /is a monolithicSparse VMDK; EC2 VM Import only takes stream-optimized VMDKs\. Convert it: qemu-img convert -f vmdk -O vmdk -o subformat=streamOptimized,adapter_type=lsilogic \S+monolithic-sparse\.vmdk \S+monolithic-sparse-stream-optimized\.vmdk/],
    ['flat VMDK descriptor', 'flatDescriptor', /is a VMDK text descriptor \(createType monolithicFlat\) whose data lives in separate extent files\. .*qemu-img convert -f vmdk -O vmdk -o subformat=streamOptimized,adapter_type=lsilogic \S+flat\.vmdk/],
    ['split sparse VMDK descriptor', 'splitSparse', /VMDK text descriptor \(createType twoGbMaxExtentSparse\).*subformat=streamOptimized/],
    ['extent of a split sparse VMDK', 'splitSparseExtent', /sparse VMDK extent without an embedded descriptor.*subformat=streamOptimized/],
    ['truncated stream-optimized VMDK', 'truncatedStream', /is truncated: its VMDK descriptor .* runs past the end of the file \(600 bytes\)\. Copy or export/],
    ['differencing VHD', 'differencing', /is a differencing VHD.*qemu-img convert -f vpc -O vpc \S+differencing\.vhd \S+differencing-standalone\.vhd/],
    ['VHD of unknown disk type', 'unknownVhdType', /is a VHD with unknown disk type 5 \(expected 2 fixed or 3 dynamic\)\. Convert it to a standalone VHD: qemu-img convert/],
    ['dynamic VHD without a dynamic disk header', 'corruptDynamicHeader', /is a dynamic VHD without a valid dynamic disk header at byte 512, so it is corrupt/],
    ['stream-optimized VMDK with a corrupt first grain', 'corruptGrain', /has a first grain that does not decompress \(.+\), so it is corrupt\. Export the disk again/],
    ['truncated dynamic VHD', 'truncatedDynamic', /has no VHD footer in its last 512 bytes, so it is truncated\. Copy or export the VHD again/],
    ['qcow2', 'qcow2', /is a qcow2 image, which EC2 VM Import cannot import\. .*qemu-img convert -f qcow2 -O vmdk -o subformat=streamOptimized,adapter_type=lsilogic \S+disk\.qcow2 \S+disk-stream-optimized\.vmdk/],
    ['QED', 'qed', /is a QED image.*qemu-img convert -f qed -O vmdk -o subformat=streamOptimized/],
    ['VDI', 'vdi', /is a VirtualBox VDI image.*qemu-img convert -f vdi -O vmdk -o subformat=streamOptimized/],
    ['ISO 9660', 'iso', /is an ISO 9660 image.*Install the operating system from the ISO into a VM/],
    ['gzip', 'gzip', /is a gzip-compressed file, not a disk image\. Decompress it first \(gunzip -k \S+disk\.img\.gz\)/],
    ['xz', 'xz', /is a xz-compressed file.*Decompress it first \(unxz -k/],
    ['bzip2', 'bzip2', /is a bzip2-compressed file.*Decompress it first \(bunzip2 -k/],
    ['zstd', 'zstd', /is a zstd-compressed file.*Decompress it first \(unzstd/],
    ['zip', 'zip', /is a zip-compressed file.*Decompress it first \(unzip/],
    ['OVA whose first member is not the .ovf', 'ovaDiskFirst', /first member is 'disk1\.vmdk', not the \.ovf descriptor an OVA must start with\. Rebuild the OVA with the \.ovf first/],
    ['OVA whose OVF references a missing disk', 'ovaMissingDisk', /OVF descriptor 'appliance\.ovf' that references 'disk2\.vmdk', missing from the archive\. Rebuild the OVA/],
    ['OVA with an OVF descriptor over 1 MiB', 'ovaHugeOvf', /has an OVF descriptor 'appliance\.ovf' of \d+ bytes, more than the 1048576 this check reads/],
    ['OVA whose OVF references no files', 'ovaNoReferences', /OVF descriptor 'appliance\.ovf' that references no disk files/],
    ['OVA truncated inside a member', 'ovaTruncatedBody', /is a truncated tar archive: the member at byte 2048 runs past the end of the file\. Copy or export the OVA again/],
    ['OVA truncated inside a header', 'ovaTruncatedHeader', /is a truncated tar archive: it ends inside the tar header at byte 2048\. Copy or export the OVA again/],
    ['OVA with a corrupt tar header', 'ovaCorrupt', /has a corrupt tar header at byte 0/],
    ['VHDX without a valid header', 'vhdxNoHeader', /is a VHDX whose header \(signature 'head' at 64 KiB or 128 KiB\) is missing or invalid, so it is corrupt\. Export the disk again\.$/],
    ['VHDX without a region table', 'vhdxNoRegions', /is a VHDX whose region table \(signature 'regi' at 192 KiB\) is missing or invalid, so it is corrupt/],
    ['VHDX without a metadata table', 'vhdxNoMetadata', /is a VHDX whose metadata table \(signature 'metadata'\) is missing or invalid, so it is corrupt/],
    ['VHDX with a block size of 3 bytes', 'vhdxBadBlockSize', /is a VHDX whose metadata \(block size, virtual disk size or logical sector size\) is missing or invalid, so it is corrupt/],
    ['differencing VHDX', 'vhdxDifferencing', /is a differencing VHDX, which only holds changes against a parent disk\. Merge it into its parent first/],
  ])('%s', (_, image, message) => {
    expect(inspectionError(images[image])).toMatch(message);
  });

  test('a device is not a regular file', () => {
    expect(() => inspectDiskImage('/dev/null')).toThrow(/^Disk image \/dev\/null is not a regular file\. Pass the path of a disk image file\.$/);
  });

  test('paths with spaces are quoted in the suggested command', () => {
    const spaced = path.join(dir, 'my disk.qcow2');
    nodeFs.copyFileSync(images.qcow2, spaced);
    expect(inspectionError(spaced)).toContain(`'${spaced}' '${path.join(dir, 'my disk-stream-optimized.vmdk')}'`);
  });
});
