/* eslint-disable no-bitwise */ // Disk formats are bit fields: flags, masks, bitmaps, checksums.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { bufferSource, decodedSha256, EXPECTED, fileSource } from './sources';
import { openDecoder } from '../../lambda/direct/open';
import { BLOCK_SIZE, isAllZero, rangeSource, readSpans } from '../../lambda/direct/source';
import { writeDiskFixture } from '../support/disk-fixtures';

let dir: string;
beforeAll(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'direct-decoders-')); });
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const fixture = (name: string) => writeDiskFixture(name, dir);
const bytesOf = (name: string) => fs.readFileSync(fixture(name));

describe('each decoder reads what qemu-img reads (qemu-img convert -O raw, SHA-256 committed)', () => {
  const decodable = Object.keys(EXPECTED).filter((n) => n !== 'direct-backed.qcow2');
  test.each(decodable.map((n) => [n]))('%s', async (name) => {
    const decoder = await openDecoder(fileSource(fixture(name)));
    expect(decoder.virtualSize).toBe(EXPECTED[name].virtualSize);
    expect(await decodedSha256(decoder)).toBe(EXPECTED[name].sha256);
  });
});

/** The guest disk's non-zero 512 KiB blocks (make-disk-fixtures.sh writes its runs there). */
const NON_ZERO = [0, 1, 3, 4, 6, 12];

describe('formats, allocation and bounded reads', () => {
  test.each([
    ['direct.img', 'raw', 'raw'],
    ['direct-fixed.vhd', 'vhd', 'fixed'],
    ['direct-dynamic.vhd', 'vhd', 'dynamic'],
    ['direct-sparse.vmdk', 'vmdk', 'monolithicSparse'],
    ['direct-stream.vmdk', 'vmdk', 'streamOptimized'],
    ['direct-v2.qcow2', 'qcow2', 'v2'],
    ['direct-v3.qcow2', 'qcow2', 'v3'],
    ['direct-compressed.qcow2', 'qcow2', 'v3'],
  ])('%s is %s %s', async (name, format, subformat) => {
    const d = await openDecoder(fileSource(fixture(name)));
    expect([d.format, d.subformat, d.blockCount]).toEqual([format, subformat, 13]);
  });

  test.each([
    // qemu-img allocates only clusters and grains that hold data...
    ['direct-sparse.vmdk', NON_ZERO],
    ['direct-stream.vmdk', NON_ZERO],
    ['direct-v2.qcow2', NON_ZERO],
    ['direct-v3.qcow2', NON_ZERO],
    ['direct-compressed-4k.qcow2', NON_ZERO],
    // ...and whole 2 MiB VHD blocks (EBS blocks 0-3, 4-7, 12); RAW is all allocated.
    ['direct-dynamic.vhd', [0, 1, 2, 3, 4, 5, 6, 7, 12]],
    ['direct.img', [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]],
  ])('%s yields only its allocated blocks', async (name, allocated) => {
    const d = await openDecoder(fileSource(fixture(name)));
    const yielded: number[] = [];
    const nonZero: number[] = [];
    for await (const b of d.blocks()) {
      expect(b.data.length).toBe(BLOCK_SIZE);
      yielded.push(b.index);
      if (!isAllZero(b.data)) nonZero.push(b.index);
    }
    expect(yielded).toEqual(allocated);
    expect(nonZero).toEqual(NON_ZERO);
  });

  test('the last, partial block is zero-padded to 512 KiB', async () => {
    const d = await openDecoder(fileSource(fixture('direct-v2.qcow2')));
    const last = (await d.readBlock(12))!;
    const inDisk = d.virtualSize - 12 * BLOCK_SIZE;
    expect(last.subarray(inDisk - 2048, inDisk).toString('latin1')).toMatch(/^tail line 000000/);
    expect(isAllZero(last.subarray(inDisk))).toBe(true);
  });

  test('a qcow2 v3 cluster flagged as zeros reads as zeros (L2 entry bit 0)', async () => {
    const b = bytesOf('direct-v3.qcow2');
    const l2 = Number(b.readBigUInt64BE(Number(b.readBigUInt64BE(40))) & 0x00fffffffffffe00n);
    b.writeBigUInt64BE(b.readBigUInt64BE(l2) | 1n, l2); // cluster 0: the 4 KiB "boot" run
    const block = (await (await openDecoder(bufferSource(b, 'zero.qcow2'))).readBlock(0))!;
    expect(isAllZero(block.subarray(0, 4096))).toBe(true);
    expect(isAllZero(block.subarray(4096))).toBe(false);
  });

  test('a dynamic VHD sector whose bitmap bit is clear reads as zeros', async () => {
    const b = bytesOf('direct-dynamic.vhd');
    const header = Number(b.readBigUInt64BE(b.length - 512 + 16));
    const bitmap = b.readUInt32BE(Number(b.readBigUInt64BE(header + 16))) * 512;
    b[bitmap] &= 0x7f; // sector 0 of block 0
    const block = (await (await openDecoder(bufferSource(b, 'bitmap.vhd'))).readBlock(0))!;
    expect(isAllZero(block.subarray(0, 512))).toBe(true);
    expect(block.subarray(512, 530).toString('latin1')).toBe('boot line 000016\n.');
  });

  test('a range reads only its own blocks and tables', async () => {
    for (const name of ['direct-v3.qcow2', 'direct-stream.vmdk', 'direct-dynamic.vhd', 'direct-compressed.qcow2']) {
      const source = fileSource(fixture(name));
      const d = await openDecoder(source);
      const before = source.bytesRead;
      const got = [];
      for await (const b of d.blocks(6, 7)) got.push(b.index);
      expect(got).toEqual([6]);
      // One 512 KiB block of data at most, plus a few KiB of tables.
      expect(source.bytesRead - before).toBeLessThan(BLOCK_SIZE + 64 * 1024);
    }
  });

  test.each([
    // 8 grains of 64 KiB, 128 clusters of 4 KiB, all compressed, in block 0.
    ['direct-dense-stream.vmdk', 8],
    ['direct-dense-compressed-4k.qcow2', 128],
  ])('%s: the %d compressed pieces of a dense block are read with a few range reads', async (name, pieces) => {
    const source = fileSource(fixture(name));
    const d = await openDecoder(source);
    await d.readBlock(1); // the tables
    const before = source.reads;
    const block = (await d.readBlock(0))!;
    expect(block.toString('latin1', 0, 16)).toBe('dense line 00000');
    expect(block.toString('latin1', BLOCK_SIZE - 32, BLOCK_SIZE - 16)).toBe('dense line 01638');
    expect(source.reads - before).toBeLessThanOrEqual(3);
    expect(pieces).toBeGreaterThan(3);
  });

  test('clusters that follow each other in the file are read at once', async () => {
    // Block 0 of the 4 KiB-cluster image: its clusters 0 and 127, one L1 page, one L2 table.
    const source = fileSource(fixture('direct-v3.qcow2'));
    const d = await openDecoder(source);
    const before = source.reads;
    await d.readBlock(0);
    expect(source.reads - before).toBeLessThanOrEqual(4);
  });

  test('readSpans merges neighbouring ranges, keeps the order asked, and reads a range past the end alone', async () => {
    const bytes = Buffer.from(Array.from({ length: 200000 }, (_, i) => i % 251));
    const reads: Array<[number, number]> = [];
    const source = { ...bufferSource(bytes, 'spans'), size: bytes.length };
    const counted = { ...source, read: (o: number, n: number) => { reads.push([o, n]); return source.read(o, n); } };
    const spans = [{ offset: 1000, length: 10, what: 'b' }, { offset: 0, length: 100, what: 'a' }, { offset: 150000, length: 50, what: 'c' }];
    const got = await readSpans(counted, 'test', spans);
    expect(got.map((b) => b.length)).toEqual([10, 100, 50]);
    expect(got[0].equals(bytes.subarray(1000, 1010))).toBe(true);
    expect(got[1].equals(bytes.subarray(0, 100))).toBe(true);
    expect(reads).toEqual([[0, 1010], [150000, 50]]);
    await expect(readSpans(counted, 'test', [{ offset: 0, length: 10, what: 'first' }, { offset: 199990, length: 20, what: 'the last cluster' }]))
      .rejects.toThrow('spans (test): the last cluster at byte offset 199990 (0x30d36) (20 bytes) ends past the end of the file (200000 bytes)');
  });

  test('a file of a few bytes is a RAW disk of one partial block', async () => {
    const d = await openDecoder(bufferSource(Buffer.from('hello'), 'tiny.img'));
    expect([d.format, d.virtualSize, d.blockCount]).toEqual(['raw', 5, 1]);
    expect((await d.readBlock(0))!.toString('latin1', 0, 6)).toBe('hello\0');
  });

  test('a block outside the disk is refused', async () => {
    const d = await openDecoder(fileSource(fixture('direct.img')));
    await expect(d.readBlock(13)).rejects.toThrow(/block index 13 is outside the disk's 13 blocks \(0 to 12/);
    await expect(d.blocks(5, 14).next()).rejects.toThrow(/the block range \[5, 14\) is not within the disk's 13 blocks/);
  });
});

describe('formats the direct route refuses, with the command that converts them', () => {
  test.each([
    ['gpt-esp.vhdx', /gpt-esp\.vhdx \(vhdx\): VHDX is not supported on the direct route: .*qemu-img convert -f vhdx -O raw/],
    ['flat.vmdk', /VMDK text descriptor .* qemu-img convert -f vmdk -O qcow2/],
    ['disk.qed', /QED is not supported on the direct route/],
    ['disk.vdi', /VDI is not supported on the direct route/],
    ['direct-backed.qcow2', /has the backing file "direct-v2\.qcow2" .*Flatten it first: qemu-img convert -O qcow2 overlay\.qcow2 flat\.qcow2/],
  ])('%s', async (name, message) => {
    await expect(openDecoder(fileSource(fixture(name)))).rejects.toThrow(message);
  });

  test('an OVA (a ustar archive)', async () => {
    const tar = Buffer.alloc(4096);
    tar.write('image.ovf', 0);
    tar.write('ustar', 257);
    await expect(openDecoder(bufferSource(tar, 'image.ova'))).rejects.toThrow(/image\.ova \(ova\): an OVA .* is not supported on the direct route: extract the disk .*qemu-img convert -O raw disk1\.vmdk disk\.raw/);
  });

  const patched = (name: string, offset: number, bytes: number[]) => {
    const b = bytesOf(name);
    Buffer.from(bytes).copy(b, offset);
    return bufferSource(b, name);
  };
  test('an encrypted qcow2', async () => {
    await expect(openDecoder(patched('direct-v2.qcow2', 32, [0, 0, 0, 2]))).rejects.toThrow(/encrypted \(crypt_method 2, LUKS at header byte offset 32\)/);
  });
  test('a qcow2 compressed with zstd', async () => {
    const b = bytesOf('direct-compressed.qcow2');
    b[79] |= 8; // incompatible feature bit 3: the compression type field is used
    b[104] = 1;
    await expect(openDecoder(bufferSource(b, 'zstd.qcow2'))).rejects.toThrow(/zstd .*qemu-img convert -O qcow2 -o compression_type=zlib/);
  });
  test('qcow2 features this reader does not know', async () => {
    await expect(openDecoder(patched('direct-v3.qcow2', 79, [16]))).rejects.toThrow(/extended L2 entries/);
    await expect(openDecoder(patched('direct-v3.qcow2', 79, [4]))).rejects.toThrow(/external data file/);
    await expect(openDecoder(patched('direct-v3.qcow2', 79, [2]))).rejects.toThrow(/QEMU marked this image corrupt/);
    await expect(openDecoder(patched('direct-v3.qcow2', 78, [1]))).rejects.toThrow(/unknown incompatible features 0x100 \(at byte offset 72\)/);
    // The dirty bit only says the refcounts may be stale: the mapping reads as before.
    const dirty = await openDecoder(patched('direct-v3.qcow2', 79, [1]));
    expect(await decodedSha256(dirty)).toBe(EXPECTED['direct-v3.qcow2'].sha256);
  });
  test('a differencing VHD', async () => {
    const b = bytesOf('direct-dynamic.vhd');
    const footer = b.length - 512;
    b.writeUInt32BE(4, footer + 60);
    let sum = 0;
    for (let i = 0; i < 512; i++) if (i < 64 || i >= 68) sum += b[footer + i];
    b.writeUInt32BE((~sum) >>> 0, footer + 64);
    await expect(openDecoder(bufferSource(b, 'child.vhd'))).rejects.toThrow(/differencing VHD \(disk type 4 in the footer\)/);
  });
  test('a VMDK delta disk (a parent named in its descriptor)', async () => {
    const b = bytesOf('direct-sparse.vmdk');
    const end = b.indexOf('ddb.toolsVersion');
    const line = b.indexOf('\n', end) + 1;
    b.write('parentFileNameHint="base.vmdk"\n', line, 'latin1');
    await expect(openDecoder(bufferSource(b, 'delta.vmdk'))).rejects.toThrow(/a delta of the parent disk "base\.vmdk" \(parentFileNameHint in its descriptor\).*qemu-img convert -f vmdk -O qcow2/);
  });
  test('a declared format the bytes contradict', async () => {
    await expect(openDecoder(fileSource(fixture('direct-v2.qcow2')), 'vmdk')).rejects.toThrow(/declared VMDK, but its bytes are QCOW2: declare QCOW2/);
    await expect(openDecoder(fileSource(fixture('direct.img')), 'qcow2')).rejects.toThrow(/declared QCOW2, but its bytes are RAW/);
  });
});

describe('a corrupt or truncated file fails with the byte offset and what was wrong', () => {
  /** Decodes every block, returning the error's message. */
  const failure = async (bytes: Buffer, name: string): Promise<string> => {
    try {
      const d = await openDecoder(bufferSource(bytes, name));
      for await (const b of d.blocks()) void b;
    } catch (e) {
      expect((e as Error).constructor).toBe(Error);
      return (e as Error).message;
    }
    throw new Error(`${name} decoded without an error`);
  };
  const hex = (n: number) => `${n} (0x${n.toString(16)})`;

  describe('qcow2', () => {
    const l2Of = (b: Buffer) => Number(b.readBigUInt64BE(Number(b.readBigUInt64BE(40))) & 0x00fffffffffffe00n);
    test('a header cut short', async () => {
      expect(await failure(bytesOf('direct-v2.qcow2').subarray(0, 40), 'head.qcow2')).toBe(
        'head.qcow2 (qcow2): the header at byte offset 0 (0x0) (72 bytes) ends past the end of the file (40 bytes): the file is truncated or corrupt');
    });
    test('truncated before its L2 table', async () => {
      const b = bytesOf('direct-v2.qcow2');
      const l2 = l2Of(b);
      expect(await failure(b.subarray(0, l2 + 100), 'cut.qcow2')).toBe(
        `cut.qcow2 (qcow2): the L2 table of L1 entry 0 (at byte offset ${hex(Number(b.readBigUInt64BE(40)))}) at byte offset ${hex(l2)} `
        + `(65536 bytes) ends past the end of the file (${l2 + 100} bytes): the file is truncated or corrupt`);
    });
    test('truncated inside its data', async () => {
      const b = bytesOf('direct-v2.qcow2');
      expect(await failure(b.subarray(0, b.length - 4096), 'cut.qcow2')).toMatch(/^cut\.qcow2 \(qcow2\): cluster \d+ \(host offset \d+ \(0x[0-9a-f]+\)\) at byte offset \d+ .* ends past the end of the file/);
    });
    test('an L1 entry that points between clusters', async () => {
      const b = bytesOf('direct-v2.qcow2');
      const l1 = Number(b.readBigUInt64BE(40));
      b.writeBigUInt64BE(BigInt(l2Of(b) + 512) | (1n << 63n), l1);
      expect(await failure(b, 'bad.qcow2')).toContain(`L1 entry 0 (at byte offset ${hex(l1)}) points to an L2 table at ${hex(l2Of(b))}, not cluster-aligned`);
    });
    test('an L2 entry that points between clusters', async () => {
      const b = bytesOf('direct-v2.qcow2');
      const l2 = l2Of(b);
      const entry = b.readBigUInt64BE(l2);
      b.writeBigUInt64BE(entry + 512n, l2);
      const host = Number((entry + 512n) & 0x00fffffffffffe00n);
      expect(await failure(b, 'bad.qcow2')).toBe(`bad.qcow2 (qcow2): the L2 entry of cluster 0 points to ${hex(host)}, not cluster-aligned: the file is corrupt`);
    });
    test('a compressed cluster that does not inflate', async () => {
      const b = bytesOf('direct-compressed.qcow2');
      const entry = b.readBigUInt64BE(l2Of(b));
      expect(entry >> 62n).toBe(1n); // cluster 0 is compressed
      const host = Number(entry & ((1n << 54n) - 1n));
      b.fill(0xff, host, host + 64);
      expect(await failure(b, 'bad.qcow2')).toMatch(new RegExp(`the compressed cluster 0 at byte offset ${host} \\(0x${host.toString(16)}\\) \\(\\d+ bytes\\) does not inflate \\(.+\\): the file is corrupt`));
    });
  });

  describe('vhd', () => {
    test('a footer whose checksum does not match', async () => {
      const b = bytesOf('direct-dynamic.vhd');
      b[b.length - 512 + 40] ^= 1;
      expect(await failure(b, 'bad.vhd')).toMatch(new RegExp(`^bad\\.vhd \\(vhd\\): the footer's checksum at byte offset ${b.length - 448} \\(0x[0-9a-f]+\\) is 0x[0-9a-f]+, but its bytes give 0x[0-9a-f]+: the file is corrupt$`));
    });
    test('a BAT entry past the end of the file', async () => {
      const b = bytesOf('direct-dynamic.vhd');
      const header = Number(b.readBigUInt64BE(b.length - 512 + 16));
      const bat = Number(b.readBigUInt64BE(header + 16));
      b.writeUInt32BE(0x00ffffff, bat);
      expect(await failure(b, 'bad.vhd')).toContain(`the sector bitmap of block 0 (BAT entry 16777215) at byte offset ${hex(0xffffff * 512)} (512 bytes) ends past the end of the file`);
    });
    test('a dynamic VHD that lost its footer', async () => {
      const b = bytesOf('direct-dynamic.vhd');
      expect(await failure(b.subarray(0, b.length - 512), 'cut.vhd')).toMatch(/starts with a VHD footer copy \("conectix"\) but its last 512 bytes \(at byte offset \d+\) are not the footer: the file is truncated/);
    });
    test('a fixed VHD shorter than its footer says', async () => {
      const b = bytesOf('direct-fixed.vhd');
      const footer = b.subarray(b.length - 512);
      const cut = Buffer.concat([b.subarray(0, b.length - 512 - 1024 * 1024), footer]);
      expect(await failure(cut, 'cut.vhd')).toContain(`the fixed disk's size in the footer (at byte offset ${hex(cut.length - 512 + 48)}) is 6684672 bytes, but the file holds only ${cut.length - 512} bytes`);
    });
  });

  describe('vmdk', () => {
    /** The sector of grain 0: GD entry 0 → GT entry 0 (the GD offset from the footer when at the end). */
    const grain0 = (b: Buffer) => {
      let gd = b.readBigUInt64LE(56);
      if (gd === 0xffffffffffffffffn) gd = b.readBigUInt64LE(b.length - 1024 + 56);
      const gt = b.readUInt32LE(Number(gd) * 512);
      return { gd: Number(gd) * 512, sector: b.readUInt32LE(gt * 512) };
    };
    test('a stream-optimized grain whose marker names another sector', async () => {
      const b = bytesOf('direct-stream.vmdk');
      const { sector } = grain0(b);
      b.writeBigUInt64LE(999n, sector * 512);
      expect(await failure(b, 'bad.vmdk')).toBe(`bad.vmdk (vmdk): the compressed grain 0 at byte offset ${hex(sector * 512)}: its marker names disk sector 999, `
        + 'but the grain table puts grain 0 at sector 0: the file is corrupt');
    });
    test('a stream-optimized grain that does not inflate', async () => {
      const b = bytesOf('direct-stream.vmdk');
      const { sector } = grain0(b);
      b.fill(0x55, sector * 512 + 12, sector * 512 + 40);
      expect(await failure(b, 'bad.vmdk')).toMatch(new RegExp(`the compressed grain 0 at byte offset ${sector * 512} \\(0x[0-9a-f]+\\) does not inflate \\(.+\\): the file is corrupt`));
    });
    /** The stream as VMware writes it: the header says "GD at the end", a footer holds the real one. */
    const withFooter = (b: Buffer) => {
      const marker = Buffer.alloc(512);
      marker.writeBigUInt64LE(1n, 0);
      marker.writeUInt32LE(3, 12); // MARKER_FOOTER
      const footer = Buffer.from(b.subarray(0, 512));
      const head = Buffer.from(b);
      head.writeBigUInt64LE(0xffffffffffffffffn, 56);
      return Buffer.concat([head, marker, footer, Buffer.alloc(512)]);
    };
    test('a stream-optimized file with its grain directory at the end (found through the footer)', async () => {
      const d = await openDecoder(bufferSource(withFooter(bytesOf('direct-stream.vmdk')), 'footer.vmdk'));
      expect(await decodedSha256(d)).toBe(EXPECTED['direct-stream.vmdk'].sha256);
    });
    test('a stream-optimized file cut before its footer', async () => {
      const b = withFooter(bytesOf('direct-stream.vmdk'));
      const cut = b.subarray(0, b.length - 1024);
      expect(await failure(cut, 'cut.vmdk')).toMatch(new RegExp(`^cut\\.vmdk \\(vmdk\\): the sparse extent header at byte offset ${hex(cut.length - 1024).replace(/[()]/g, '\\$&')} starts with "[^"]*", not "KDMV": the file is corrupt$`));
    });
    test('a stream-optimized file cut inside a grain', async () => {
      const b = bytesOf('direct-stream.vmdk');
      const { sector } = grain0(b);
      expect(await failure(b.subarray(0, sector * 512 + 20), 'cut.vmdk')).toMatch(new RegExp(`the compressed grain 0 at byte offset ${sector * 512} \\(0x[0-9a-f]+\\) at byte offset ${sector * 512 + 12} .* ends past the end of the file \\(${sector * 512 + 20} bytes\\)`));
    });
    test('a grain directory entry past the end of the file', async () => {
      const b = bytesOf('direct-sparse.vmdk');
      const { gd } = grain0(b);
      b.writeUInt32LE(0x00ffffff, gd);
      expect(await failure(b, 'bad.vmdk')).toContain(`grain table 0 (grain directory entry 0 at byte offset ${hex(gd)}) at byte offset ${hex(0xffffff * 512)} (2048 bytes) ends past the end of the file`);
    });
  });
});

describe('rangeSource (S3 GetObject with a Range header)', () => {
  test('decodes a fixture through range headers, and refuses a short answer', async () => {
    const bytes = bytesOf('direct-stream.vmdk');
    const ranges: string[] = [];
    const get = async (range: string) => {
      ranges.push(range);
      const [, a, b] = /^bytes=(\d+)-(\d+)$/.exec(range)!;
      return new Uint8Array(bytes.subarray(Number(a), Number(b) + 1));
    };
    const d = await openDecoder(rangeSource('s3://bucket/disk.vmdk', bytes.length, get));
    expect(await decodedSha256(d)).toBe(EXPECTED['direct-stream.vmdk'].sha256);
    expect(ranges[0]).toBe('bytes=0-511');
    const short = rangeSource('s3://bucket/disk.vmdk', bytes.length, async () => new Uint8Array(10));
    await expect(openDecoder(short)).rejects.toThrow('s3://bucket/disk.vmdk: the range bytes=0-511 returned 10 bytes, not 512: the object changed or the read was cut; retry the copy');
  });
});
