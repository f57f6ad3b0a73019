import { execFile, execFileSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import os from 'os';
import * as path from 'path';
import { promisify } from 'util';
import { App, CliCredentialsStackSynthesizer, Stack } from 'aws-cdk-lib';
import { decodeBody, startLocalS3 } from './support/local-s3';
import {
  cacheDirCandidates, emptyCache, HASH_BUFFER_BYTES, hashFileStreaming, hashingStats, HashingStats, parseCache, ReadChunk,
  stageDiskFile, StagedDiskFile, withEntry,
} from '../src/private/disk-file-asset';

const execFileAsync = promisify(execFile);
const REPO = path.join(__dirname, '..');
const CDK_ASSETS = path.join(REPO, 'node_modules', '.bin', 'cdk-assets');
const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const STACK = 'DiskStack';
const BUCKET = 'test-bucket';
const SAVED_CACHE_DIR = process.env.CDK_VM_IMPORT_CACHE_DIR;

interface ManifestFileAsset {
  readonly source: { readonly path: string; readonly packaging: string };
  readonly destinations: Record<string, { readonly bucketName: string; readonly objectKey: string }>;
}

interface Synthesized {
  readonly staged: StagedDiskFile;
  readonly manifestFile: string;
  readonly asset: ManifestFileAsset;
}

let work: string;

beforeAll(() => {
  fs.mkdirSync(path.join(REPO, '.tmp'), { recursive: true });
  work = fs.mkdtempSync(path.join(REPO, '.tmp', 'disk-file-asset-'));
  process.env.CDK_VM_IMPORT_CACHE_DIR = path.join(work, 'cache');
});

afterEach(() => {
  process.env.CDK_VM_IMPORT_CACHE_DIR = path.join(work, 'cache');
});

afterAll(() => {
  fs.rmSync(work, { recursive: true, force: true });
  if (SAVED_CACHE_DIR === undefined) delete process.env.CDK_VM_IMPORT_CACHE_DIR;
  else process.env.CDK_VM_IMPORT_CACHE_DIR = SAVED_CACHE_DIR;
});

/** A sparse file: a unique header, then holes up to `size`. */
function sparseFile(name: string, size: number): string {
  const file = path.join(work, name);
  fs.writeFileSync(file, `disk ${name} ${crypto.randomUUID()}\n`);
  fs.truncateSync(file, size);
  return file;
}

/** A fully allocated file of pseudo-random bytes. */
function randomFile(file: string, size: number): string {
  const fd = fs.openSync(file, 'w');
  try {
    for (let written = 0; written < size; written += MiB) fs.writeSync(fd, crypto.randomBytes(Math.min(MiB, size - written)));
  } finally {
    fs.closeSync(fd);
  }
  return file;
}

function sha256Of(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** Real disk use in KiB (allocated blocks, not apparent size). */
function diskUsageKiB(dir: string): number {
  return fs.existsSync(dir) ? parseInt(execFileSync('du', ['-sk', dir]).toString(), 10) : 0;
}

function hashedSince(before: HashingStats): HashingStats {
  const now = hashingStats();
  return { filesHashed: now.filesHashed - before.filesHashed, bytesHashed: now.bytesHashed - before.bytesHashed };
}

function synth(file: string, outdir: string, context?: Record<string, unknown>): Synthesized {
  const app = new App({ outdir, context });
  const synthesizer = new CliCredentialsStackSynthesizer({ fileAssetsBucketName: BUCKET, bucketPrefix: '' });
  const stack = new Stack(app, STACK, { synthesizer });
  const staged = stageDiskFile(stack, file);
  app.synth();
  const manifestFile = path.join(outdir, `${STACK}.assets.json`);
  const manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8')) as { files: Record<string, ManifestFileAsset> };
  return { staged, manifestFile, asset: manifest.files[staged.sourceHash] };
}

describe('streaming hash', () => {
  // First in the file, so that the process's peak RSS is still low: a whole-file read would raise it by 1 GiB.
  test('hashes a 1 GiB sparse file through one fixed-size buffer', () => {
    const file = sparseFile('memory.raw', GiB);
    const bufferSizes: number[] = [];
    const read: ReadChunk = (fd, buffer, offset, length, position) => {
      bufferSizes.push(buffer.byteLength);
      return fs.readSync(fd, buffer, offset, length, position);
    };
    const memoryBefore = process.memoryUsage().arrayBuffers;
    const peakBefore = process.resourceUsage().maxRSS;

    const hash = hashFileStreaming(file, HASH_BUFFER_BYTES, read);

    expect(process.memoryUsage().arrayBuffers - memoryBefore).toBeLessThan(16 * MiB);
    expect((process.resourceUsage().maxRSS - peakBefore) * 1024).toBeLessThan(64 * MiB);
    expect(Math.max(...bufferSizes)).toBe(HASH_BUFFER_BYTES);
    expect(bufferSizes.length).toBe(GiB / HASH_BUFFER_BYTES + 1); // the last read returns 0
    expect(hash).toBe(sha256OfSparse(file, GiB));
  }, 60_000);
});

/** sha256 of a sparse test file computed without reading its holes: header, then zeros. */
function sha256OfSparse(file: string, size: number): string {
  const first = Buffer.alloc(4096);
  const fd = fs.openSync(file, 'r');
  fs.readSync(fd, first, 0, first.length, 0);
  fs.closeSync(fd);
  const headerLength = first.indexOf(0x0a) + 1;
  const hash = crypto.createHash('sha256').update(first.subarray(0, headerLength));
  const zeros = Buffer.alloc(MiB);
  for (let done = headerLength; done < size; done += zeros.length) hash.update(zeros.subarray(0, Math.min(zeros.length, size - done)));
  return hash.digest('hex');
}

describe('staging a 4 GiB sparse image', () => {
  test('hard-links it into cdk.out, lists it in the asset manifest and hashes it once', () => {
    const image = sparseFile('big.raw', 4 * GiB);
    const outdir = path.join(work, 'cdk.out-big');
    const before = hashingStats();

    const first = synth(image, outdir);

    expect(diskUsageKiB(outdir)).toBeLessThan(1024);
    expect(hashedSince(before)).toEqual({ filesHashed: 1, bytesHashed: 4 * GiB });
    const hash = first.staged.sourceHash;
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(first.staged).toEqual({ sourceHash: hash, bucketName: BUCKET, objectKey: `${hash}.raw`, s3ObjectUrl: `s3://${BUCKET}/${hash}.raw` });
    expect(first.asset.source).toEqual({ path: `asset.${hash}.raw`, packaging: 'file' });
    expect(Object.values(first.asset.destinations)).toEqual([expect.objectContaining({ bucketName: BUCKET, objectKey: `${hash}.raw` })]);
    const staged = fs.statSync(path.join(outdir, `asset.${hash}.raw`));
    expect(staged.ino).toBe(fs.statSync(image).ino);
    expect(staged.nlink).toBeGreaterThanOrEqual(2);

    // Warm synth into the same cdk.out: nothing read, nothing restaged.
    const warm = synth(image, outdir);
    expect(warm.staged).toEqual(first.staged);
    expect(hashedSince(before).filesHashed).toBe(1);
    expect(fs.statSync(path.join(outdir, `asset.${hash}.raw`)).ino).toBe(staged.ino);

    // A fresh cdk.out: linking/unlinking changed the source's ctime, the cache still holds.
    fs.rmSync(outdir, { recursive: true });
    expect(synth(image, outdir).staged).toEqual(first.staged);
    expect(hashedSince(before).filesHashed).toBe(1);
    expect(diskUsageKiB(outdir)).toBeLessThan(1024);
  }, 120_000);
});

describe('content hash cache', () => {
  test('an unchanged file is not re-read; a touched or changed file is', () => {
    const image = sparseFile('small.raw', 8 * MiB);
    const before = hashingStats();
    const first = synth(image, path.join(work, 'cdk.out-cache-1'));
    expect(first.staged.sourceHash).toBe(sha256Of(image));
    expect(hashedSince(before).filesHashed).toBe(1);

    expect(synth(image, path.join(work, 'cdk.out-cache-2')).staged).toEqual(first.staged);
    expect(hashedSince(before).filesHashed).toBe(1);

    const { atime, mtime } = fs.statSync(image);
    fs.utimesSync(image, atime, new Date(mtime.getTime() + 1000));
    expect(synth(image, path.join(work, 'cdk.out-cache-3')).staged).toEqual(first.staged);
    expect(hashedSince(before).filesHashed).toBe(2);

    const fd = fs.openSync(image, 'r+');
    fs.writeSync(fd, Buffer.from('Z'), 0, 1, 4 * MiB);
    fs.closeSync(fd);
    const changed = synth(image, path.join(work, 'cdk.out-cache-4'));
    expect(hashedSince(before).filesHashed).toBe(3);
    expect(changed.staged.sourceHash).toBe(sha256Of(image));
    expect(changed.staged.sourceHash).not.toBe(first.staged.sourceHash);
    expect(changed.staged.objectKey).not.toBe(first.staged.objectKey);
  }, 60_000);

  test('a corrupt cache file is ignored and replaced', () => {
    const image = sparseFile('corrupt.raw', MiB);
    const cacheFile = path.join(work, 'cache', 'content-hashes.json');
    fs.mkdirSync(path.dirname(cacheFile), { recursive: true });
    fs.writeFileSync(cacheFile, '{"version": 1, "entries": {"');
    const before = hashingStats();

    expect(synth(image, path.join(work, 'cdk.out-corrupt')).staged.sourceHash).toBe(sha256Of(image));
    expect(hashedSince(before).filesHashed).toBe(1);
    expect(parseCache(fs.readFileSync(cacheFile, 'utf8')).entries[fs.realpathSync(image)].sha256).toBe(sha256Of(image));
  });

  test('falls back to the temporary directory when the cache directory is unusable', () => {
    const image = sparseFile('fallback.raw', MiB);
    const blocker = path.join(work, 'not-a-dir');
    fs.writeFileSync(blocker, '');
    process.env.CDK_VM_IMPORT_CACHE_DIR = path.join(blocker, 'cache');
    // Core modules see the real environment, not jest's copy: redirect os.tmpdir() itself.
    const tmpdir = jest.spyOn(os, 'tmpdir').mockReturnValue(path.join(work, 'tmp'));
    const before = hashingStats();
    try {
      synth(image, path.join(work, 'cdk.out-fallback-1'));
      synth(image, path.join(work, 'cdk.out-fallback-2'));
    } finally {
      tmpdir.mockRestore();
    }
    expect(hashedSince(before).filesHashed).toBe(1);
    expect(fs.existsSync(path.join(work, 'tmp', `cdk-vm-import-${process.getuid?.()}`, 'content-hashes.json'))).toBe(true);
  });

  test('cache location: explicit, then XDG (absolute only), then ~/.cache, then the temp dir', () => {
    const tail = path.join('/tmp', 'cdk-vm-import-1000');
    expect(cacheDirCandidates({ CDK_VM_IMPORT_CACHE_DIR: '/c', XDG_CACHE_HOME: '/x' }, '/h', '/tmp', '1000')).toEqual(['/c', tail]);
    expect(cacheDirCandidates({ XDG_CACHE_HOME: '/x' }, '/h', '/tmp', '1000')).toEqual(['/x/cdk-vm-import', tail]);
    expect(cacheDirCandidates({ XDG_CACHE_HOME: 'rel' }, '/h', '/tmp', '1000')).toEqual(['/h/.cache/cdk-vm-import', tail]);
  });

  test('the cache keeps the newest entries and tolerates malformed content', () => {
    const entry = (n: number) => ({ realPath: `/f${n}`, dev: '1', ino: `${n}`, size: '1', mtimeNs: '1', sha256: 'a'.repeat(64) });
    let cache = emptyCache();
    for (let n = 0; n < 5; n++) cache = withEntry(cache, entry(n), 3);
    expect(Object.keys(cache.entries)).toEqual(['/f2', '/f3', '/f4']);
    expect(Object.keys(withEntry(cache, entry(2), 3).entries)).toEqual(['/f3', '/f4', '/f2']);
    for (const text of ['', 'null', '[]', '{"version":2,"entries":{}}', '{"version":1,"entries":[]}', '{"version":1}']) {
      expect(parseCache(text)).toEqual(emptyCache());
    }
  });
});

describe('staging', () => {
  test('references the source itself when asset staging is disabled', () => {
    const image = sparseFile('unstaged.vhd', MiB);
    const outdir = path.join(work, 'cdk.out-unstaged');
    const result = synth(image, outdir, { 'aws:cdk:disable-asset-staging': true });
    expect(result.asset.source).toEqual({ path: image, packaging: 'file' });
    expect(result.staged.objectKey).toBe(`${result.staged.sourceHash}.vhd`);
    expect(fs.readdirSync(outdir).filter((f) => f.startsWith('asset.'))).toEqual([]);
  });

  test('replaces a staged file of the wrong size', () => {
    const image = sparseFile('stale.raw', MiB);
    const outdir = path.join(work, 'cdk.out-stale');
    const target = path.join(outdir, `asset.${sha256Of(image)}.raw`);
    fs.mkdirSync(outdir, { recursive: true });
    fs.writeFileSync(target, 'truncated');
    synth(image, outdir);
    expect(fs.statSync(target).ino).toBe(fs.statSync(image).ino);
  });

  const shm = '/dev/shm';
  const crossDevice = fs.existsSync(shm) && fs.statSync(shm).dev !== fs.statSync(REPO).dev;
  (crossDevice ? test : test.skip)('copies (keeping the extension) when the source is on another filesystem', () => {
    const dir = fs.mkdtempSync(path.join(shm, 'disk-file-asset-'));
    try {
      const image = randomFile(path.join(dir, 'disk.vmdk'), MiB);
      const result = synth(image, path.join(work, 'cdk.out-copy'));
      const staged = path.join(work, 'cdk.out-copy', `asset.${result.staged.sourceHash}.vmdk`);
      expect(result.asset.source.path).toBe(path.basename(staged));
      expect(fs.statSync(staged).ino).not.toBe(fs.statSync(image).ino);
      expect(sha256Of(staged)).toBe(result.staged.sourceHash);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('rejects a missing file, a directory and an empty file, naming the path', () => {
    const stack = new Stack(new App({ outdir: path.join(work, 'cdk.out-errors') }), STACK);
    const missing = path.join(work, 'missing.raw');
    const empty = path.join(work, 'empty.raw');
    fs.writeFileSync(empty, '');
    expect(() => stageDiskFile(stack, missing)).toThrow(`Disk image file not found: ${missing}`);
    expect(() => stageDiskFile(stack, work)).toThrow(`Disk image path is a directory, not a file: ${work}`);
    expect(() => stageDiskFile(stack, empty)).toThrow(`Disk image file is empty: ${empty}`);
  });
});

describe('publishing with cdk-assets', () => {
  test('the local S3 server undoes aws-chunked framing and reads its trailers', () => {
    const raw = Buffer.from('5;chunk-signature=ab\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-sha256:abc=\r\n\r\n');
    const decoded = decodeBody(raw, { 'content-encoding': 'aws-chunked' });
    expect(decoded.body.toString()).toBe('hello world');
    expect(decoded.trailers).toEqual({ 'x-amz-checksum-sha256': 'abc=' });
  });

  test('uploads the staged file to an S3-compatible endpoint byte for byte', async () => {
    const s3 = await startLocalS3([BUCKET]);
    try {
      const image = randomFile(path.join(work, 'publish.raw'), 64 * MiB);
      const { staged, manifestFile } = synth(image, path.join(work, 'cdk.out-publish'));
      const env = {
        PATH: process.env.PATH ?? '',
        HOME: work,
        AWS_ENDPOINT_URL: s3.endpoint, // any other service the SDK might call stays local too
        AWS_ENDPOINT_URL_S3: s3.endpoint,
        CDK_S3_FORCE_PATH_STYLE: 'true',
        AWS_REGION: 'us-east-1',
        AWS_ACCESS_KEY_ID: 'AKIDLOCALTEST',
        AWS_SECRET_ACCESS_KEY: 'local-test-secret',
        AWS_EC2_METADATA_DISABLED: 'true',
        AWS_CONFIG_FILE: path.join(work, 'no-aws-config'),
        AWS_SHARED_CREDENTIALS_FILE: path.join(work, 'no-aws-credentials'),
      };
      const publish = () => execFileAsync(CDK_ASSETS, ['publish', '-p', manifestFile], { env, timeout: 60_000 });

      await publish();

      const stored = s3.objects.get(`${BUCKET}/${staged.objectKey}`);
      expect(stored?.body.length).toBe(64 * MiB);
      expect(crypto.createHash('sha256').update(stored?.body ?? '').digest('hex')).toBe(sha256Of(image));
      expect(staged.sourceHash).toBe(sha256Of(image));
      const operations = s3.requests.map((r) => r.operation);
      expect(operations).toEqual(expect.arrayContaining(['GetBucketLocation', 'ListObjectsV2', 'CreateMultipartUpload', 'UploadPart', 'CompleteMultipartUpload']));
      expect(operations.filter((o) => o.startsWith('Unsupported'))).toEqual([]);

      // Published already: the second run only looks.
      const parts = s3.requests.filter((r) => r.operation === 'UploadPart');
      expect(parts.length).toBe(Math.ceil(64 / 5)); // lib-storage's 5 MiB parts
      expect(parts.every((r) => r.checksumSha256 !== undefined)).toBe(true);

      // Published already: the second run finds the disk and uploads nothing for it.
      const firstRun = s3.requests.length;
      await publish();
      const diskWrites = s3.requests.slice(firstRun).filter((r) => r.url.includes(staged.objectKey) && r.method !== 'GET');
      expect(diskWrites).toEqual([]);
    } finally {
      await s3.close();
    }
  }, 120_000);
});
