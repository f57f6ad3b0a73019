/**
 * The direct route's entry point: tells a disk image's format from its magic bytes and
 * opens the decoder for it, or refuses the formats the route does not decode (OVA, VHDX,
 * VMDK descriptors, QED, VDI) with the command that converts them.
 */
import { DirectFormat, DiskDecoder } from './decoder';
import { openQcow2 } from './qcow2';
import { RawDecoder } from './raw';
import { ByteSource, formatError, readExact } from './source';
import { openVhd } from './vhd';
import { openVmdk } from './vmdk';

/** What the first bytes (and a VHD's last 512) say the file is. */
export type DetectedFormat = DirectFormat | 'ova' | 'vhdx' | 'vmdk-descriptor' | 'qed' | 'vdi';

const CONVERT = 'convert it with qemu-img convert -O raw (or -O qcow2), e.g.';

/** Why the direct route refuses a format, and the command that converts it. */
const REFUSED: Record<Exclude<DetectedFormat, DirectFormat>, string> = {
  'ova': 'an OVA (a tar archive of an OVF descriptor and its disks) is not supported on the direct route: '
    + `extract the disk (tar -xf image.ova) and ${CONVERT} qemu-img convert -O raw disk1.vmdk disk.raw`,
  'vhdx': `VHDX is not supported on the direct route: ${CONVERT} qemu-img convert -f vhdx -O raw disk.vhdx disk.raw`,
  'vmdk-descriptor': 'this is a VMDK text descriptor whose data is in other extent files: the direct route reads one file. '
    + 'Make a single file: qemu-img convert -f vmdk -O qcow2 disk.vmdk disk.qcow2',
  'qed': `QED is not supported on the direct route: ${CONVERT} qemu-img convert -f qed -O qcow2 disk.qed disk.qcow2`,
  'vdi': `VDI is not supported on the direct route: ${CONVERT} qemu-img convert -f vdi -O qcow2 disk.vdi disk.qcow2`,
};

/** Reads at most `length` bytes at `offset` (fewer near the end of a small file). */
async function peek(source: ByteSource, offset: number, length: number): Promise<Buffer> {
  const n = Math.max(0, Math.min(length, source.size - offset));
  return readExact(source, 'detect', offset, n, 'the format magic');
}

/** Tells the file's format by its magic bytes; anything unrecognised is RAW. */
export async function detectFormat(source: ByteSource): Promise<DetectedFormat> {
  const head = await peek(source, 0, 512);
  const text = (from: number, to: number) => head.toString('latin1', from, to);
  if (text(0, 4) === 'QFI\xfb') return 'qcow2';
  if (text(0, 4) === 'KDMV') return 'vmdk';
  if (text(0, 21) === '# Disk DescriptorFile') return 'vmdk-descriptor';
  if (text(0, 8) === 'vhdxfile') return 'vhdx';
  if (text(0, 4) === 'QED\0') return 'qed';
  if (head.length >= 0x44 && head.readUInt32LE(0x40) === 0xbeda107f) return 'vdi';
  if (text(257, 262) === 'ustar') return 'ova';
  if (source.size >= 512) {
    const tail = await peek(source, source.size - 512, 8);
    if (tail.toString('latin1') === 'conectix') return 'vhd';
  }
  if (text(0, 8) === 'conectix') {
    // A dynamic VHD's footer copy at the start whose end is missing: say so, not "RAW".
    throw formatError(source, 'vhd', `the file starts with a VHD footer copy ("conectix") but its last 512 bytes (at byte offset ${source.size - 512}) `
      + 'are not the footer: the file is truncated');
  }
  return 'raw';
}

/**
 * Opens the decoder for a disk image, checking the format the user declared (if any)
 * against what the bytes say.
 */
export async function openDecoder(source: ByteSource, declared?: DirectFormat): Promise<DiskDecoder> {
  const format = await detectFormat(source);
  if (format in REFUSED) throw formatError(source, format, REFUSED[format as keyof typeof REFUSED]);
  if (declared && declared !== format) {
    throw formatError(source, format, `the disk was declared ${declared.toUpperCase()}, but its bytes are ${format.toUpperCase()}: `
      + `declare ${format.toUpperCase()}, or convert the file with qemu-img convert -O ${declared === 'vhd' ? 'vpc' : declared}`);
  }
  switch (format) {
    case 'qcow2': return openQcow2(source);
    case 'vmdk': return openVmdk(source);
    case 'vhd': return openVhd(source);
    default: return new RawDecoder(source);
  }
}
