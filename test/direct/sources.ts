import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { DiskDecoder } from '../../lambda/direct/decoder';
import { BLOCK_SIZE, ByteSource } from '../../lambda/direct/source';

/** What qemu-img reads from each direct-route fixture (test/fixtures/make-disk-fixtures.sh). */
export const EXPECTED: Record<string, { virtualSize: number; sha256: string }> = JSON.parse(
  fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'direct-expected.json'), 'utf8'));

/** A local file read by range, as the engine reads an S3 object; counts what it reads. */
export function fileSource(file: string): ByteSource & { reads: number; bytesRead: number } {
  const size = fs.statSync(file).size;
  const s = {
    size,
    name: path.basename(file),
    reads: 0,
    bytesRead: 0,
    read: async (offset: number, length: number) => {
      const fd = await fs.promises.open(file, 'r');
      try {
        const b = Buffer.alloc(length);
        const { bytesRead } = await fd.read(b, 0, length, offset);
        s.reads++;
        s.bytesRead += bytesRead;
        return b.subarray(0, bytesRead);
      } finally {
        await fd.close();
      }
    },
  };
  return s;
}

/** An in-memory file (a fixture's bytes, patched or cut by a test). */
export function bufferSource(bytes: Buffer, name: string): ByteSource {
  return { size: bytes.length, name, read: async (offset, length) => Buffer.from(bytes.subarray(offset, offset + length)) };
}

/** The whole virtual disk as a decoder reads it, unallocated blocks as zeros: its SHA-256. */
export async function decodedSha256(decoder: DiskDecoder): Promise<string> {
  const hash = crypto.createHash('sha256');
  const zeros = Buffer.alloc(BLOCK_SIZE);
  let next = 0;
  const put = (index: number, data: Buffer) => {
    const length = Math.min(BLOCK_SIZE, decoder.virtualSize - index * BLOCK_SIZE);
    hash.update(data.subarray(0, length));
  };
  for await (const block of decoder.blocks()) {
    for (; next < block.index; next++) put(next, zeros);
    put(block.index, block.data);
    next = block.index + 1;
  }
  for (; next < decoder.blockCount; next++) put(next, zeros);
  return hash.digest('hex');
}
