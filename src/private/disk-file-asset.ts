import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { FileAssetPackaging, Stack, Stage } from 'aws-cdk-lib';
import { DISABLE_ASSET_STAGING_CONTEXT } from 'aws-cdk-lib/cx-api';
import { Construct } from 'constructs';

/** The content hash reads the file through one buffer of this size: its memory does not grow with the file. */
export const HASH_BUFFER_BYTES = 1024 * 1024;
const CACHE_FILE = 'content-hashes.json';
const CACHE_VERSION = 1;
const CACHE_MAX_ENTRIES = 256;
/** Errors of link(2) after which copying is the only way to stage the file. */
const COPY_FALLBACK_CODES = ['EXDEV', 'EPERM', 'EACCES', 'EMLINK', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS'];

export interface StagedDiskFile {
  /** sha256 hex of the file's content. */
  readonly sourceHash: string;
  /** Where the asset will be published. */
  readonly bucketName: string;
  readonly objectKey: string;
  /** s3://bucket/key style URL from the synthesizer. */
  readonly s3ObjectUrl: string;
}

/**
 * One version of a file, told apart without reading it. The ctime is left out on purpose: hard-linking
 * the file into cdk.out (or deleting cdk.out) changes it, which would defeat the cache. Numbers are
 * decimal strings of the bigint stats, so that JSON keeps them exact.
 */
export interface FileIdentity {
  readonly realPath: string;
  readonly dev: string;
  readonly ino: string;
  readonly size: string;
  readonly mtimeNs: string;
}

export interface HashCacheEntry extends FileIdentity { readonly sha256: string }

export interface HashCache {
  readonly version: number;
  /** Keyed by real path, oldest first. */
  readonly entries: Record<string, HashCacheEntry>;
}

/** Counters of the streaming hash in this process (for tests and diagnostics). */
export interface HashingStats { readonly filesHashed: number; readonly bytesHashed: number }

/** Reads into `buffer` like `fs.readSync(fd, buffer, 0, length, null)`. */
export type ReadChunk = (fd: number, buffer: Buffer, offset: number, length: number, position: null) => number;

let counters: HashingStats = { filesHashed: 0, bytesHashed: 0 };
export const hashingStats = (): HashingStats => ({ ...counters });

// ---- Pure helpers ------------------------------------------------------------------------------

export function identityOf(realPath: string, stats: fs.BigIntStats): FileIdentity {
  return { realPath, dev: `${stats.dev}`, ino: `${stats.ino}`, size: `${stats.size}`, mtimeNs: `${stats.mtimeNs}` };
}

export function sameIdentity(a: FileIdentity, b: FileIdentity): boolean {
  return a.realPath === b.realPath && a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs;
}

export function emptyCache(): HashCache {
  return { version: CACHE_VERSION, entries: {} };
}

/** Parses the cache file's text; anything unexpected gives an empty cache. */
export function parseCache(text: string): HashCache {
  try {
    const parsed = JSON.parse(text) as Partial<HashCache> | null;
    const entries = parsed?.entries;
    const valid = parsed?.version === CACHE_VERSION && typeof entries === 'object' && entries !== null && !Array.isArray(entries);
    return valid ? { version: CACHE_VERSION, entries } : emptyCache();
  } catch {
    return emptyCache();
  }
}

/** The cached hash of exactly this file version, if any. */
export function lookupHash(cache: HashCache, identity: FileIdentity): string | undefined {
  const entry: unknown = cache.entries[identity.realPath];
  if (typeof entry !== 'object' || entry === null) return undefined;
  const candidate = entry as HashCacheEntry;
  const wellFormed = typeof candidate.sha256 === 'string' && /^[0-9a-f]{64}$/.test(candidate.sha256);
  return wellFormed && sameIdentity(candidate, identity) ? candidate.sha256 : undefined;
}

/** The cache with `entry` added as the newest one, the oldest dropped beyond `max` entries. */
export function withEntry(cache: HashCache, entry: HashCacheEntry, max: number = CACHE_MAX_ENTRIES): HashCache {
  const others = Object.entries(cache.entries).filter(([key]) => key !== entry.realPath);
  const kept = others.slice(Math.max(0, others.length - (max - 1)));
  return { version: CACHE_VERSION, entries: Object.fromEntries([...kept, [entry.realPath, entry]]) };
}

/** Where the hash cache may live, in order of preference. */
export function cacheDirCandidates(env: Record<string, string | undefined>, homeDir: string, tmpDir: string, user: string): string[] {
  const xdg = env.XDG_CACHE_HOME && path.isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : path.join(homeDir, '.cache');
  return [env.CDK_VM_IMPORT_CACHE_DIR || path.join(xdg, 'cdk-vm-import'), path.join(tmpDir, `cdk-vm-import-${user}`)];
}

/** `asset.<hash><ext>`, as CDK names staged assets. */
export function stagedFileName(sourceHash: string, sourcePath: string): string {
  return `asset.${sourceHash}${path.extname(sourcePath)}`;
}

// ---- Hashing -----------------------------------------------------------------------------------

/** sha256 hex of the file's content, read through one fixed-size buffer (never the whole file). */
export function hashFileStreaming(filePath: string, bufferBytes: number = HASH_BUFFER_BYTES, read: ReadChunk = fs.readSync): string {
  const hash = crypto.createHash('sha256');
  const buffer = Buffer.allocUnsafe(bufferBytes);
  const fd = fs.openSync(filePath, 'r');
  let total = 0;
  try {
    for (let n = read(fd, buffer, 0, bufferBytes, null); n > 0; n = read(fd, buffer, 0, bufferBytes, null)) {
      hash.update(buffer.subarray(0, n));
      total += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  counters = { filesHashed: counters.filesHashed + 1, bytesHashed: counters.bytesHashed + total };
  return hash.digest('hex');
}

/** The content hash: from the cache while the file's identity is unchanged, else streamed and cached. */
export function contentHash(realPath: string): string {
  const before = identityOf(realPath, fs.statSync(realPath, { bigint: true }));
  const cacheDir = writableCacheDir();
  const cacheFile = cacheDir ? path.join(cacheDir, CACHE_FILE) : undefined;
  const cached = cacheFile ? lookupHash(readCache(cacheFile), before) : undefined;
  if (cached) return cached;
  const sha256 = hashFileStreaming(realPath);
  const after = identityOf(realPath, fs.statSync(realPath, { bigint: true }));
  if (!sameIdentity(before, after)) {
    throw new Error(`${realPath} changed while it was being hashed: synthesize again once nothing writes to it`);
  }
  // Re-read: hashing a large file takes long, another synth may have added entries meanwhile.
  if (cacheFile) writeCache(cacheFile, withEntry(readCache(cacheFile), { ...after, sha256 }));
  return sha256;
}

function writableCacheDir(): string | undefined {
  const user = `${process.getuid?.() ?? 'user'}`;
  for (const dir of cacheDirCandidates(process.env, os.homedir(), os.tmpdir(), user)) {
    try {
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      fs.accessSync(dir, fs.constants.W_OK);
      return dir;
    } catch {
      // Not usable: try the next one.
    }
  }
  return undefined;
}

function readCache(cacheFile: string): HashCache {
  try {
    return parseCache(fs.readFileSync(cacheFile, 'utf8'));
  } catch {
    return emptyCache();
  }
}

/** Writes the cache atomically (temporary file + rename); a failure only costs a future rehash. */
function writeCache(cacheFile: string, cache: HashCache): void {
  const temp = `${cacheFile}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
  try {
    fs.writeFileSync(temp, JSON.stringify(cache, undefined, 1));
    fs.renameSync(temp, cacheFile);
  } catch {
    removeQuietly(temp);
  }
}

// ---- Staging -----------------------------------------------------------------------------------

/** The file each bound asset disk came from, as the caller named it, for messages about the disk. */
const assetFiles = new WeakMap<object, string>();

/** Records that `disk` (a bound disk container) is the file asset of `file`. */
export function rememberAssetFile<T extends object>(disk: T, file: string): T {
  assetFiles.set(disk, file);
  return disk;
}

/** The file a bound disk container was published from, if it is a file asset. */
export function assetFileOf(disk: object): string | undefined {
  return assetFiles.get(disk);
}

/** Registers a local file as a FILE asset of the scope's stack without copying its bytes. */
export function stageDiskFile(scope: Construct, filePath: string): StagedDiskFile {
  const realPath = checkSource(filePath);
  const sourceHash = contentHash(realPath);
  const stack = Stack.of(scope);
  const fileName = stage(scope, stack, filePath, realPath, sourceHash);
  const location = stack.synthesizer.addFileAsset({ sourceHash, fileName, packaging: FileAssetPackaging.FILE });
  return { sourceHash, bucketName: location.bucketName, objectKey: location.objectKey, s3ObjectUrl: location.s3ObjectUrl };
}

/** Checks the file is a non-empty regular file and returns its real path. */
function checkSource(filePath: string): string {
  const stats = fs.statSync(filePath, { throwIfNoEntry: false });
  if (!stats) throw new Error(`Disk image file not found: ${filePath}`);
  if (stats.isDirectory()) throw new Error(`Disk image path is a directory, not a file: ${filePath}`);
  if (!stats.isFile()) throw new Error(`Disk image path is not a regular file: ${filePath}`);
  if (stats.size === 0) throw new Error(`Disk image file is empty: ${filePath}`);
  return fs.realpathSync(filePath);
}

/** Stages the file (unless staging is disabled) and returns the path the asset manifest refers to. */
function stage(scope: Construct, stack: Stack, filePath: string, realPath: string, sourceHash: string): string {
  const assetOutdir = Stage.of(scope)?.assetOutdir;
  const manifestDir = Stage.of(stack)?.outdir;
  if (!assetOutdir || !manifestDir || scope.node.tryGetContext(DISABLE_ASSET_STAGING_CONTEXT)) {
    return path.resolve(filePath);
  }
  fs.mkdirSync(assetOutdir, { recursive: true });
  const target = path.join(assetOutdir, stagedFileName(sourceHash, filePath));
  placeFile(realPath, target);
  return path.relative(manifestDir, target);
}

/** Puts the file at `target` as a hard link, else as a (reflinked where possible) copy; no-op when staged. */
function placeFile(source: string, target: string): void {
  if (isStaged(source, target)) return;
  fs.rmSync(target, { force: true });
  try {
    fs.linkSync(source, target);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? '';
    if (code === 'EEXIST' && isStaged(source, target)) return;
    if (!COPY_FALLBACK_CODES.includes(code)) throw error;
    copyAtomically(source, target);
  }
}

/** A staged file is the same inode, or an earlier copy of the same size (its name is its content hash). */
function isStaged(source: string, target: string): boolean {
  const staged = fs.statSync(target, { bigint: true, throwIfNoEntry: false });
  if (!staged) return false;
  const original = fs.statSync(source, { bigint: true });
  return (staged.dev === original.dev && staged.ino === original.ino) || staged.size === original.size;
}

function copyAtomically(source: string, target: string): void {
  const temp = `${target}.${process.pid}.tmp`;
  try {
    fs.copyFileSync(source, temp, fs.constants.COPYFILE_FICLONE);
    fs.renameSync(temp, target);
  } finally {
    removeQuietly(temp);
  }
}

function removeQuietly(file: string): void {
  try {
    fs.rmSync(file, { force: true });
  } catch {
    // A leftover temporary file is harmless.
  }
}
