import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';
import { App, Annotations as CdkAnnotations, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { BootMode, DiskImage, DiskImageFormat, LicenseType, VmImageImport } from '../src';
import { writeDiskFixture } from './support/disk-fixtures';

// DiskImage.fromAsset with a stated 'format': the bytes must confirm it (real images from
// test/fixtures/make-disk-fixtures.sh); only RAW may be stated for bytes of no known format.
let dir: string;
const files: Record<string, string> = {};

/** A copy of a committed fixture under another name, as a user may have named the file. */
function fixtureAs(fixture: string, name: string): string {
  const made = writeDiskFixture(fixture, dir);
  fs.renameSync(made, path.join(dir, name));
  return path.join(dir, name);
}

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'disk-image-asset-'));
  files.gzipOva = path.join(dir, 'gzip.ova');
  fs.writeFileSync(files.gzipOva, zlib.gzipSync(Buffer.alloc(1024 * 1024)));
  files.zeros = path.join(dir, 'zeros.bin');
  fs.writeFileSync(files.zeros, Buffer.alloc(64 * 1024));
  files.text = path.join(dir, 'notes.vmdk');
  fs.writeFileSync(files.text, 'not a disk at all\n'.repeat(100));
  files.rawAsVmdk = fixtureAs('gpt.img', 'raw.vmdk');
  files.stream = writeDiskFixture('gpt-stream.vmdk', dir);
  files.flat = writeDiskFixture('flat.vmdk', dir);
  files.vhdx = writeDiskFixture('disk.vhdx', dir);
  files.vhd = writeDiskFixture('empty-dynamic.vhd', dir);
  files.vhdxEsp = writeDiskFixture('gpt-esp.vhdx', dir);
  files.vhdxNoEsp = writeDiskFixture('gpt.vhdx', dir);
  // An OVA whose disk is a monolithic sparse VMDK: its first sectors are not read, so whether it has an ESP is unknown.
  const ova = path.join(dir, 'ova');
  fs.mkdirSync(ova);
  fs.writeFileSync(path.join(ova, 'appliance.ovf'), '<Envelope><References><File ovf:href="disk1.vmdk"/></References></Envelope>\n');
  fs.renameSync(writeDiskFixture('monolithic-sparse.vmdk', dir), path.join(ova, 'disk1.vmdk'));
  files.ovaSparse = path.join(dir, 'sparse.ova');
  execFileSync('tar', ['--format=ustar', '-cf', files.ovaSparse, '-C', ova, 'appliance.ovf', 'disk1.vmdk']);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function importOf(file: string, format: DiskImageFormat): Stack {
  const stack = new Stack(new App(), 'Test', { env: { account: '123456789012', region: 'us-east-1' } });
  new VmImageImport(stack, 'Import', { diskImages: [DiskImage.fromAsset(file, { format })], licenseType: LicenseType.BYOL });
  return stack;
}

const ZEROS = `0x${'00'.repeat(16)}`;
const STREAM_OPTIMIZED = '-O vmdk -o subformat=streamOptimized,adapter_type=lsilogic';

describe('a stated format must be confirmed by the bytes', () => {
  test.each<[string, string, DiskImageFormat, (file: string) => string]>([
    ['a gzip file called an OVA', 'gzipOva', DiskImageFormat.OVA, (f) =>
      `DiskImage.fromAsset('${f}') with 'format' OVA: Disk image ${f} is a gzip-compressed file, not a disk image. Decompress it first (gunzip -k ${f})`],
    ['zeros called an OVA', 'zeros', DiskImageFormat.OVA, (f) =>
      `DiskImage.fromAsset('${f}'): 'format' is OVA but the file is unrecognized bytes (first bytes ${ZEROS}), ` +
      "not an OVA (a tar archive in ustar format whose first member is the .ovf descriptor). If it is a raw disk, set 'format: DiskImageFormat.RAW'; " +
      'an OVA is exported from the hypervisor, or built with tar --format=ustar -cf appliance.ova appliance.ovf disk1.vmdk.'],
    ['a stream-optimized VMDK called an OVA', 'stream', DiskImageFormat.OVA, (f) =>
      `DiskImage.fromAsset('${f}'): 'format' is OVA but the file is a stream-optimized VMDK (VMDK), not an OVA (a tar archive in ustar format whose first member is the .ovf descriptor). ` +
      "Set 'format' to DiskImageFormat.VMDK, or leave it unset to use the detected format."],
    ['text called a VMDK', 'text', DiskImageFormat.VMDK, (f) =>
      `DiskImage.fromAsset('${f}'): 'format' is VMDK but the file is unrecognized bytes (first bytes 0x${Buffer.from('not a disk at al').toString('hex')}), ` +
      "not a VMDK (VM Import takes a single-file stream-optimized VMDK, which starts with the 'KDMV' header). " +
      `If it is a raw disk, set 'format: DiskImageFormat.RAW'; or convert it to VMDK: qemu-img convert -f raw ${STREAM_OPTIMIZED} ${f} ${path.join(dir, 'notes-stream-optimized.vmdk')}.`],
    ['a RAW disk with GPT called a VMDK', 'rawAsVmdk', DiskImageFormat.VMDK, (f) =>
      `DiskImage.fromAsset('${f}'): 'format' is VMDK but the file is a RAW with GPT (RAW), not a VMDK (VM Import takes a single-file stream-optimized VMDK, which starts with the 'KDMV' header). ` +
      `Set 'format' to DiskImageFormat.RAW, or leave it unset to use the detected format; or convert it to VMDK: qemu-img convert -f raw ${STREAM_OPTIMIZED} ${f} ${path.join(dir, 'raw-stream-optimized.vmdk')}.`],
    ['a VMDK text descriptor', 'flat', DiskImageFormat.VMDK, (f) =>
      `DiskImage.fromAsset('${f}') with 'format' VMDK: Disk image ${f} is a VMDK text descriptor (createType monolithicFlat) whose data lives in separate extent files.`],
    ['zeros called a VHD', 'zeros', DiskImageFormat.VHD, (f) =>
      `DiskImage.fromAsset('${f}'): 'format' is VHD but the file is unrecognized bytes (first bytes ${ZEROS}), not a VHD (which ends with a 'conectix' footer). ` +
      `If it is a raw disk, set 'format: DiskImageFormat.RAW'; or convert it to VHD: qemu-img convert -f raw -O vpc ${f} ${path.join(dir, 'zeros-converted.vhd')}.`],
    ['a VHDX called a VHD', 'vhdx', DiskImageFormat.VHD, (f) =>
      `DiskImage.fromAsset('${f}'): 'format' is VHD but the file is a VHDX (VHDX), not a VHD (which ends with a 'conectix' footer). ` +
      `Set 'format' to DiskImageFormat.VHDX, or leave it unset to use the detected format; or convert it to VHD: qemu-img convert -f vhdx -O vpc ${f} ${path.join(dir, 'disk-converted.vhd')}.`],
    ['zeros called a VHDX', 'zeros', DiskImageFormat.VHDX, (f) =>
      `DiskImage.fromAsset('${f}'): 'format' is VHDX but the file is unrecognized bytes (first bytes ${ZEROS}), not a VHDX (which starts with the 'vhdxfile' signature). ` +
      `If it is a raw disk, set 'format: DiskImageFormat.RAW'; or convert it to VHDX: qemu-img convert -f raw -O vhdx ${f} ${path.join(dir, 'zeros-converted.vhdx')}.`],
    ['a dynamic VHD called a VHDX', 'vhd', DiskImageFormat.VHDX, (f) =>
      `DiskImage.fromAsset('${f}'): 'format' is VHDX but the file is a dynamic VHD (VHD), not a VHDX (which starts with the 'vhdxfile' signature). ` +
      `Set 'format' to DiskImageFormat.VHD, or leave it unset to use the detected format; or convert it to VHDX: qemu-img convert -f vpc -O vhdx ${f} ${path.join(dir, 'empty-dynamic-converted.vhdx')}.`],
    ['a stream-optimized VMDK called RAW', 'stream', DiskImageFormat.RAW, (f) =>
      `DiskImage.fromAsset('${f}'): 'format' is RAW but the file is a stream-optimized VMDK (VMDK), not a raw disk (a byte-for-byte copy of a disk, not an image container). ` +
      `Set 'format' to DiskImageFormat.VMDK, or leave it unset to use the detected format; or convert it to RAW: qemu-img convert -f vmdk -O raw ${f} ${path.join(dir, 'gpt-stream-converted.raw')}.`],
  ])('%s is refused with what it is and how to convert it', (_, file, format, message) => {
    let error: Error | undefined;
    try {
      importOf(files[file], format);
    } catch (e) {
      error = e as Error;
    }
    expect(error?.message).toContain(message(files[file]));
  });

  test.each<[string, string, DiskImageFormat]>([
    ['zeros stated as RAW (any bytes may be a raw disk)', 'zeros', DiskImageFormat.RAW],
    ['a RAW disk with GPT stated as RAW', 'rawAsVmdk', DiskImageFormat.RAW],
    ['a stream-optimized VMDK stated as VMDK', 'stream', DiskImageFormat.VMDK],
    ['a dynamic VHD stated as VHD', 'vhd', DiskImageFormat.VHD],
    ['a VHDX stated as VHDX', 'vhdx', DiskImageFormat.VHDX],
  ])('%s is accepted', (_, file, format) => {
    Template.fromStack(importOf(files[file], format)).hasResourceProperties('Custom::VmImageImport', {
      DiskContainers: [Match.objectLike({ Format: format })],
    });
  });
});

describe('bootMode UEFI on a boot disk without an EFI System Partition', () => {
  const NO_ESP = 'cdk-vm-import:noEsp';
  function warnings(bootMode: BootMode | undefined, ...disks: string[]) {
    const stack = new Stack(new App(), 'Test', { env: { account: '123456789012', region: 'us-east-1' } });
    new VmImageImport(stack, 'Import', { diskImages: disks.map((d) => DiskImage.fromAsset(d)), licenseType: LicenseType.BYOL, bootMode });
    return Annotations.fromStack(stack).findWarning('*', Match.anyValue()).map((w) => String(w.entry.data));
  }

  test('warns for a VHDX of a GPT disk without ESP', () => {
    const stack = new Stack(new App(), 'Test', { env: { account: '123456789012', region: 'us-east-1' } });
    new VmImageImport(stack, 'Import', { diskImages: [DiskImage.fromAsset(files.vhdxNoEsp)], licenseType: LicenseType.BYOL, bootMode: BootMode.UEFI });
    Annotations.fromStack(stack).hasWarning('/Test/Import',
      `DiskImage.fromAsset('${files.vhdxNoEsp}') is the boot disk and 'bootMode' is uefi, but its first sectors hold no EFI System Partition, ` +
      "so a UEFI boot will likely fail. If the disk boots with BIOS, set 'bootMode: BootMode.LEGACY_BIOS' or leave it unset; " +
      `otherwise check that this is the disk exported from the UEFI machine, with its partition table. [ack: ${NO_ESP}]`);
  });

  test.each<[string, BootMode | undefined, () => string[]]>([
    ['a VHDX with an ESP', BootMode.UEFI, () => [files.vhdxEsp]],
    ['bootMode not set', undefined, () => [files.vhdxNoEsp]],
    ['bootMode legacy-bios', BootMode.LEGACY_BIOS, () => [files.vhdxNoEsp]],
    ['a data disk without ESP after a boot disk with one', BootMode.UEFI, () => [files.vhdxEsp, files.vhdxNoEsp]],
    ['an OVA whose disk was not inspected for an ESP', BootMode.UEFI, () => [files.ovaSparse]],
  ])('no such warning for %s', (_, bootMode, disks) => {
    const all = warnings(bootMode, ...disks());
    expect(all.filter((w) => w.includes(NO_ESP))).toEqual([]);
    expect(all.filter((w) => w.includes('cdk-vm-import:uefiDisk'))).toEqual([]);
  });

  test('a VHDX with an ESP and no bootMode gets the UEFI warning instead', () => {
    expect(warnings(undefined, files.vhdxEsp).filter((w) => w.includes('cdk-vm-import:uefiDisk'))).toHaveLength(1);
  });
});

describe('a file whose name says another format than its bytes', () => {
  const MISMATCH = 'cdk-vm-import:nameContradictsBytes';
  function warningsOf(file: string, format?: DiskImageFormat): string[] {
    const stack = new Stack(new App(), 'Test', { env: { account: '123456789012', region: 'us-east-1' } });
    new VmImageImport(stack, 'Import', { diskImages: [DiskImage.fromAsset(file, { format })], licenseType: LicenseType.BYOL });
    return Annotations.fromStack(stack).findWarning('*', Match.anyValue()).map((w) => String(w.entry.data));
  }

  test.each<[string, () => string, string, string, (f: string) => string]>([
    ['a RAW disk named .vmdk', () => files.rawAsVmdk, 'a VMDK (.vmdk)', 'a RAW with GPT (RAW)',
      (f) => `; if it should be a VMDK, convert it: qemu-img convert -f raw ${STREAM_OPTIMIZED} ${f} ${path.join(dir, 'raw-stream-optimized.vmdk')}`],
    ['a VHDX named .vhd', () => fixtureAs('disk.vhdx', 'vhdx-named.vhd'), 'a VHD (.vhd)', 'a VHDX (VHDX)',
      (f) => `; if it should be a VHD, convert it: qemu-img convert -f vhdx -O vpc ${f} ${path.join(dir, 'vhdx-named-converted.vhd')}`],
    ['a RAW disk named .vhdx', () => fixtureAs('mbr.img', 'mbr-named.vhdx'), 'a VHDX (.vhdx)', 'a RAW with MBR (RAW)',
      (f) => `; if it should be a VHDX, convert it: qemu-img convert -f raw -O vhdx ${f} ${path.join(dir, 'mbr-named-converted.vhdx')}`],
    ['a stream-optimized VMDK named .ova', () => fixtureAs('gpt-stream.vmdk', 'stream-named.ova'), 'an OVA (.ova)', 'a stream-optimized VMDK (VMDK)', () => ''],
    ['a VHD named .img', () => fixtureAs('empty-dynamic.vhd', 'vhd-named.img'), 'a raw disk (.img)', 'a dynamic VHD (VHD)',
      (f) => `; if it should be a raw disk, convert it: qemu-img convert -f vpc -O raw ${f} ${path.join(dir, 'vhd-named-converted.raw')}`],
  ])('%s is imported as what the bytes are, with a warning', (_, make, named, bytes, convert) => {
    const file = make();
    const detected = /\((\w+)\)$/.exec(bytes)![1];
    expect(warningsOf(file)).toContain(
      `DiskImage.fromAsset('${file}') is named as ${named}, but its bytes are ${bytes}: it is imported as ${detected}. ` +
      `If that is right, set 'format: DiskImageFormat.${detected}' (or rename the file)${convert(file)}. [ack: ${MISMATCH}]`);
  });

  test.each<[string, () => string, DiskImageFormat | undefined]>([
    ['a RAW disk named .vmdk with format RAW stated', () => files.rawAsVmdk, DiskImageFormat.RAW],
    ['a stream-optimized VMDK named .vmdk', () => writeDiskFixture('gpt-stream.vmdk', dir), undefined],
    ['a RAW disk named .img', () => writeDiskFixture('gpt.img', dir), undefined],
    ['a RAW disk with a name of no known format', () => fixtureAs('gpt.img', 'disk.bin'), undefined],
  ])('no such warning for %s', (_, make, format) => {
    expect(warningsOf(make(), format).filter((w) => w.includes(MISMATCH))).toEqual([]);
  });

  test('the warning can be acknowledged by its id', () => {
    const stack = new Stack(new App(), 'Test', { env: { account: '123456789012', region: 'us-east-1' } });
    CdkAnnotations.of(stack).acknowledgeWarning(MISMATCH, 'these raw disks are named .vmdk by the export tool');
    new VmImageImport(stack, 'Import', { diskImages: [DiskImage.fromAsset(files.rawAsVmdk)], licenseType: LicenseType.BYOL });
    expect(Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp(MISMATCH))).toEqual([]);
  });
});
