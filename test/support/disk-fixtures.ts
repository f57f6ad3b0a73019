/**
 * Real disk images made by qemu-img and sfdisk, committed under test/fixtures/disks/ so the
 * tests need neither tool (test/fixtures/make-disk-fixtures.sh made them; CI remakes them
 * and compares).
 *
 * A disk image is mostly zeros (a 4 GiB fixed VHD holds 512 bytes that are not), so each is
 * stored as its size and its non-zero extents, in a JSON file named after the image, and
 * written back as a sparse file: a 4 GiB image costs a few KiB in git and on disk.
 */
import * as fs from 'fs';
import * as path from 'path';

export const FIXTURE_DIR = path.join(__dirname, '..', 'fixtures', 'disks');
const SUFFIX = '.json';
/** Zero runs shorter than this stay inside an extent (fewer, larger extents). */
const MERGE_GAP = 4096;
const BLOCK = 512;

interface SparseImage {
  /** The image's size in bytes. */
  readonly size: number;
  /** `[offset, base64 bytes]`, ascending, not overlapping; every other byte is zero. */
  readonly extents: Array<[number, string]>;
}

/** The names of the committed images (`gpt-esp.img`, `flat.vmdk`, …). */
export function diskFixtureNames(dir: string = FIXTURE_DIR): string[] {
  return fs.readdirSync(dir).filter((f) => f.endsWith(SUFFIX)).map((f) => f.slice(0, -SUFFIX.length)).sort();
}

/** Writes the committed image `name` into `targetDir` as a sparse file and returns its path. */
export function writeDiskFixture(name: string, targetDir: string, dir: string = FIXTURE_DIR): string {
  const image = JSON.parse(fs.readFileSync(path.join(dir, name + SUFFIX), 'utf8')) as SparseImage;
  const target = path.join(targetDir, name);
  const fd = fs.openSync(target, 'w');
  try {
    fs.ftruncateSync(fd, image.size);
    for (const [offset, data] of image.extents) {
      const bytes = Buffer.from(data, 'base64');
      fs.writeSync(fd, bytes, 0, bytes.length, offset);
    }
  } finally {
    fs.closeSync(fd);
  }
  return target;
}

/** Writes every committed image into `targetDir`; returns name → path. */
export function writeDiskFixtures(targetDir: string, dir: string = FIXTURE_DIR): Record<string, string> {
  return Object.fromEntries(diskFixtureNames(dir).map((name) => [name, writeDiskFixture(name, targetDir, dir)]));
}

/** Encodes the image file `source` as its size and non-zero extents (the committed form). */
export function encodeDiskImage(source: string): string {
  const size = fs.statSync(source).size;
  const extents: Array<[number, string]> = [];
  let start = -1;
  let end = -1;
  const fd = fs.openSync(source, 'r');
  const chunk = Buffer.alloc(1024 * 1024);
  const zeros = Buffer.alloc(chunk.length);
  const flush = () => {
    if (start < 0) return;
    const bytes = Buffer.alloc(end - start);
    fs.readSync(fd, bytes, 0, bytes.length, start);
    extents.push([start, bytes.toString('base64')]);
    start = end = -1;
  };
  try {
    for (let base = 0; base < size; base += chunk.length) {
      const n = fs.readSync(fd, chunk, 0, chunk.length, base);
      if (chunk.subarray(0, n).equals(zeros.subarray(0, n))) continue;
      for (let at = 0; at < n; at += BLOCK) {
        const block = chunk.subarray(at, Math.min(at + BLOCK, n));
        if (block.equals(zeros.subarray(0, block.length))) continue;
        const offset = base + at;
        if (start >= 0 && offset - end >= MERGE_GAP) flush();
        if (start < 0) start = offset;
        end = offset + block.length;
      }
    }
    flush();
  } finally {
    fs.closeSync(fd);
  }
  const lines = extents.map(([offset, data]) => `    [${offset}, ${JSON.stringify(data)}]`);
  return `{\n  "size": ${size},\n  "extents": [\n${lines.join(',\n')}\n  ]\n}\n`;
}

/** Encodes every file in `sourceDir` into `dir` (the fixture folder), removing fixtures of images no longer made. */
export function encodeDiskImages(sourceDir: string, dir: string = FIXTURE_DIR): string[] {
  fs.mkdirSync(dir, { recursive: true });
  const names = fs.readdirSync(sourceDir).sort();
  for (const stale of diskFixtureNames(dir).filter((n) => !names.includes(n))) fs.rmSync(path.join(dir, stale + SUFFIX));
  for (const name of names) fs.writeFileSync(path.join(dir, name + SUFFIX), encodeDiskImage(path.join(sourceDir, name)));
  return names;
}
