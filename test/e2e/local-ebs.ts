import * as crypto from 'crypto';
import * as http from 'http';
import { AddressInfo } from 'net';

/**
 * A local EBS direct API server on 127.0.0.1, speaking REST JSON as `@aws-sdk/client-ebs`
 * calls it: StartSnapshot, PutSnapshotBlock (checksum and length verified), CompleteSnapshot
 * (changed-block count and the linear aggregate checksum verified), ListSnapshotBlocks and
 * GetSnapshotBlock. Requests are not authenticated. Tests can make the next N
 * PutSnapshotBlock calls fail with throttling or a 5xx, and cap the calls per second per
 * snapshot (EBS: 1,000).
 */

export const BLOCK_SIZE = 524288;
const GIB = 1024 * 1024 * 1024;

export interface LocalSnapshot {
  readonly snapshotId: string;
  readonly volumeSize: number;
  readonly encrypted: boolean;
  readonly kmsKeyArn?: string;
  readonly description?: string;
  readonly tags: Array<{ Key?: string; Value?: string }>;
  readonly clientToken?: string;
  readonly timeoutMinutes?: number;
  /** When StartSnapshot made it (the server's clock, milliseconds). */
  readonly startedAt: number;
  status: 'pending' | 'completed' | 'error';
  /** Block index → data (512 KiB) and its Base64 SHA-256. */
  readonly blocks: Map<number, { data: Buffer; checksum: string }>;
  /** PutSnapshotBlock calls per whole second (epoch seconds), for the rate limit. */
  readonly putsPerSecond: Map<number, number>;
  /** The highest rate seen (calls within one second). */
  peakPutsPerSecond: number;
}

/** A failure the next PutSnapshotBlock calls answer with. */
export type InjectedFault = 'ThrottlingException' | 'RequestThrottledException' | 'InternalServerException' | 'ServiceUnavailable';

export interface LocalEbsOptions {
  /** PutSnapshotBlock calls allowed per second per snapshot; more are throttled. @default 1000 */
  readonly putsPerSecondPerSnapshot?: number;
  /** Delay before each PutSnapshotBlock answers (a network's latency). @default 0 */
  readonly putLatencyMs?: number;
  /** Keep each block's data for GetSnapshotBlock; false keeps only checksums (large copies). @default true */
  readonly keepData?: boolean;
  /** The server's clock in milliseconds (a test moves it past a snapshot's Timeout). @default Date.now */
  readonly now?: () => number;
}

export interface LocalEbs {
  readonly endpoint: string;
  readonly snapshots: Map<string, LocalSnapshot>;
  /** Every request: `Operation snapshotId[/index] status`. */
  readonly log: string[];
  /** The next `count` PutSnapshotBlock calls (any snapshot) fail with `fault`. */
  failNextPuts(count: number, fault: InjectedFault): void;
  close(): Promise<void>;
}

interface Reply {
  readonly status: number;
  readonly headers?: Record<string, string>;
  readonly body?: Buffer | string;
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Reply {
  return { status, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) };
}

/** An error as restJson1 clients read it: the type in `x-amzn-ErrorType`, Message and Reason in the body. */
function error(status: number, type: string, message: string, reason?: string): Reply {
  return json(status, { Message: message, message, ...(reason ? { Reason: reason } : {}) }, { 'x-amzn-errortype': type });
}

const sha256 = (b: Buffer) => crypto.createHash('sha256').update(b).digest();

/** Starts the server; `close()` stops it. */
export async function startLocalEbs(options: LocalEbsOptions = {}): Promise<LocalEbs> {
  const snapshots = new Map<string, LocalSnapshot>();
  const byToken = new Map<string, string>();
  const log: string[] = [];
  const faults: InjectedFault[] = [];
  const limit = options.putsPerSecondPerSnapshot ?? 1000;
  const now = options.now ?? Date.now;
  // Not completed within its Timeout (default 60 minutes), a snapshot is abandoned: status error.
  const expire = (s: LocalSnapshot) => {
    if (s.status === 'pending' && now() > s.startedAt + (s.timeoutMinutes ?? 60) * 60_000) s.status = 'error';
  };
  let serial = 0;

  const pending = (id: string): LocalSnapshot | Reply => {
    const s = snapshots.get(id);
    if (!s) return error(404, 'ResourceNotFoundException', `The snapshot '${id}' does not exist.`, 'SNAPSHOT_NOT_FOUND');
    expire(s);
    return s;
  };

  const startSnapshot = (body: Buffer): Reply => {
    const req = JSON.parse(body.toString('utf8') || '{}');
    const volumeSize = req.VolumeSize;
    if (!Number.isInteger(volumeSize) || volumeSize < 1 || volumeSize > 65536) {
      return error(400, 'ValidationException', `VolumeSize must be 1 to 65536 GiB, got ${volumeSize}`, 'INVALID_VOLUME_SIZE');
    }
    if (req.KmsKeyArn && req.Encrypted !== true) {
      return error(400, 'ValidationException', 'KmsKeyArn requires Encrypted to be true', 'INVALID_PARAMETER_VALUE');
    }
    if (req.Timeout !== undefined && (!Number.isInteger(req.Timeout) || req.Timeout < 10 || req.Timeout > 4320)) {
      return error(400, 'ValidationException', `Timeout must be 10 to 4320 minutes, got ${req.Timeout}`, 'INVALID_PARAMETER_VALUE');
    }
    const tags = req.Tags ?? [];
    for (const t of tags) {
      if (typeof t.Key !== 'string' || t.Key.startsWith('aws:') || t.Key.length > 127) return error(400, 'ValidationException', `Invalid tag key ${JSON.stringify(t.Key)}`, 'INVALID_TAG');
    }
    if (req.ClientToken && byToken.has(req.ClientToken)) {
      const earlier = snapshots.get(byToken.get(req.ClientToken)!)!;
      expire(earlier);
      if (earlier.volumeSize !== volumeSize || earlier.encrypted !== (req.Encrypted === true) || earlier.kmsKeyArn !== req.KmsKeyArn) {
        return error(409, 'ConflictException', 'The ClientToken was used with different parameters');
      }
      return json(201, describe(earlier));
    }
    const snapshotId = `snap-${(++serial).toString(16).padStart(17, '0')}`;
    const s: LocalSnapshot = {
      snapshotId,
      volumeSize,
      encrypted: req.Encrypted === true,
      kmsKeyArn: req.KmsKeyArn,
      description: req.Description,
      tags,
      clientToken: req.ClientToken,
      timeoutMinutes: req.Timeout,
      startedAt: now(),
      status: 'pending',
      blocks: new Map(),
      putsPerSecond: new Map(),
      peakPutsPerSecond: 0,
    };
    snapshots.set(snapshotId, s);
    if (req.ClientToken) byToken.set(req.ClientToken, snapshotId);
    return json(201, describe(s));
  };

  const describe = (s: LocalSnapshot) => ({
    SnapshotId: s.snapshotId,
    OwnerId: '111111111111',
    Status: s.status,
    StartTime: Math.floor(s.startedAt / 1000),
    VolumeSize: s.volumeSize,
    BlockSize: BLOCK_SIZE,
    Tags: s.tags,
    Description: s.description,
    ...(s.encrypted ? { KmsKeyArn: s.kmsKeyArn ?? 'arn:aws:kms:us-east-1:111111111111:key/aws-ebs', SseType: 'sse-kms' } : { SseType: 'none' }),
  });

  const putBlock = async (s: LocalSnapshot, index: number, headers: http.IncomingHttpHeaders, body: Buffer): Promise<Reply> => {
    const second = Math.floor(now() / 1000);
    const calls = (s.putsPerSecond.get(second) ?? 0) + 1;
    s.putsPerSecond.set(second, calls);
    s.peakPutsPerSecond = Math.max(s.peakPutsPerSecond, calls);
    if (options.putLatencyMs) await new Promise((r) => setTimeout(r, options.putLatencyMs));
    const fault = faults.shift();
    if (fault === 'ServiceUnavailable') return error(503, 'ServiceUnavailable', 'Service unavailable');
    if (fault === 'InternalServerException') return error(500, 'InternalServerException', 'An internal error occurred');
    if (fault) return error(400, fault, 'Rate exceeded', fault === 'RequestThrottledException' ? 'RESOURCE_LEVEL_THROTTLE' : undefined);
    if (calls > limit) return error(400, 'RequestThrottledException', `More than ${limit} PutSnapshotBlock requests per second for ${s.snapshotId}`, 'RESOURCE_LEVEL_THROTTLE');
    if (s.status !== 'pending') return error(400, 'ValidationException', `The snapshot ${s.snapshotId} is ${s.status}, not pending`, 'INVALID_SNAPSHOT_ID');
    if (!Number.isInteger(index) || index < 0 || index >= (s.volumeSize * GIB) / BLOCK_SIZE) {
      return error(400, 'ValidationException', `Block index ${index} is beyond the ${s.volumeSize} GiB volume`, 'INVALID_BLOCK');
    }
    const length = Number(headers['x-amz-data-length']);
    if (length !== BLOCK_SIZE || body.length !== BLOCK_SIZE) {
      return error(400, 'ValidationException', `The data length must be ${BLOCK_SIZE} bytes: header ${headers['x-amz-data-length']}, body ${body.length}`, 'INVALID_PARAMETER_VALUE');
    }
    if (headers['x-amz-checksum-algorithm'] !== 'SHA256') {
      return error(400, 'ValidationException', `Unsupported checksum algorithm ${headers['x-amz-checksum-algorithm']}`, 'INVALID_PARAMETER_VALUE');
    }
    const checksum = sha256(body).toString('base64');
    if (headers['x-amz-checksum'] !== checksum) {
      return error(400, 'ValidationException', `The checksum ${headers['x-amz-checksum']} does not match the data's ${checksum}`, 'INVALID_CHECKSUM');
    }
    s.blocks.set(index, { data: options.keepData === false ? Buffer.alloc(0) : body, checksum });
    return { status: 201, headers: { 'x-amz-checksum': checksum, 'x-amz-checksum-algorithm': 'SHA256' } };
  };

  const complete = (s: LocalSnapshot, headers: http.IncomingHttpHeaders): Reply => {
    if (s.status !== 'pending') return error(400, 'ValidationException', `The snapshot ${s.snapshotId} is ${s.status}, not pending`, 'INVALID_SNAPSHOT_ID');
    const count = Number(headers['x-amz-changedblockscount']);
    if (count !== s.blocks.size) {
      s.status = 'error';
      return error(400, 'ValidationException', `ChangedBlocksCount ${headers['x-amz-changedblockscount']} differs from the ${s.blocks.size} blocks written`, 'INVALID_PARAMETER_VALUE');
    }
    const aggregate = headers['x-amz-checksum'];
    if (aggregate !== undefined) {
      if (headers['x-amz-checksum-aggregation-method'] !== 'LINEAR' || headers['x-amz-checksum-algorithm'] !== 'SHA256') {
        return error(400, 'ValidationException', 'An aggregate checksum needs the LINEAR aggregation method and the SHA256 algorithm', 'INVALID_PARAMETER_VALUE');
      }
      const ordered = [...s.blocks.keys()].sort((a, b) => a - b).map((i) => Buffer.from(s.blocks.get(i)!.checksum, 'base64'));
      const expected = sha256(Buffer.concat(ordered)).toString('base64');
      if (aggregate !== expected) {
        s.status = 'error';
        return error(400, 'ValidationException', `The aggregate checksum ${aggregate} does not match the blocks' ${expected}`, 'INVALID_CHECKSUM');
      }
    }
    s.status = 'completed';
    return json(202, { Status: s.status });
  };

  const listBlocks = (s: LocalSnapshot, query: URLSearchParams): Reply => {
    const max = Number(query.get('maxResults') ?? 10000);
    const from = Math.max(Number(query.get('pageToken') ?? 0), Number(query.get('startingBlockIndex') ?? 0));
    const indexes = [...s.blocks.keys()].filter((i) => i >= from).sort((a, b) => a - b);
    const page = indexes.slice(0, max);
    const next = indexes.length > max ? String(indexes[max]) : undefined;
    return json(200, {
      Blocks: page.map((i) => ({ BlockIndex: i, BlockToken: Buffer.from(`${s.snapshotId}/${i}`).toString('base64') })),
      VolumeSize: s.volumeSize,
      BlockSize: BLOCK_SIZE,
      ExpiryTime: 1700003600,
      ...(next ? { NextToken: next } : {}),
    });
  };

  const getBlock = (s: LocalSnapshot, index: number, query: URLSearchParams): Reply => {
    if (query.get('blockToken') !== Buffer.from(`${s.snapshotId}/${index}`).toString('base64')) {
      return error(400, 'ValidationException', 'The block token is not valid for this block', 'INVALID_BLOCK_TOKEN');
    }
    const block = s.blocks.get(index)!;
    return {
      status: 200,
      headers: { 'content-type': 'application/octet-stream', 'x-amz-data-length': String(BLOCK_SIZE), 'x-amz-checksum': block.checksum, 'x-amz-checksum-algorithm': 'SHA256' },
      body: block.data,
    };
  };

  const route = async (req: http.IncomingMessage, body: Buffer): Promise<[string, Reply]> => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    if (req.method === 'POST' && parts.length === 1 && parts[0] === 'snapshots') return ['StartSnapshot', startSnapshot(body)];
    if (parts[0] !== 'snapshots') return ['Unknown', error(404, 'UnknownOperationException', `No route for ${req.method} ${url.pathname}`)];
    if (req.method === 'POST' && parts[1] === 'completion' && parts.length === 3) {
      const s = pending(parts[2]);
      return [`CompleteSnapshot ${parts[2]}`, 'snapshotId' in s ? complete(s, req.headers) : s];
    }
    const s = pending(parts[1]);
    if (!('snapshotId' in s)) return [`${req.method} ${parts[1]}`, s];
    if (req.method === 'GET' && parts.length === 3 && parts[2] === 'blocks') return [`ListSnapshotBlocks ${s.snapshotId}`, listBlocks(s, url.searchParams)];
    const index = Number(parts[3]);
    if (req.method === 'PUT' && parts.length === 4) return [`PutSnapshotBlock ${s.snapshotId}/${parts[3]}`, await putBlock(s, index, req.headers, body)];
    if (req.method === 'GET' && parts.length === 4) {
      if (!s.blocks.has(index)) return [`GetSnapshotBlock ${s.snapshotId}/${index}`, error(404, 'ResourceNotFoundException', `Block ${index} was not written`, 'SNAPSHOT_NOT_FOUND')];
      return [`GetSnapshotBlock ${s.snapshotId}/${index}`, getBlock(s, index, url.searchParams)];
    }
    return ['Unknown', error(404, 'UnknownOperationException', `No route for ${req.method} ${url.pathname}`)];
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      route(req, Buffer.concat(chunks)).then(([operation, reply]) => {
        log.push(`${operation} ${reply.status}`);
        res.writeHead(reply.status, reply.headers);
        res.end(reply.body);
      }, (e) => {
        res.writeHead(500, { 'x-amzn-errortype': 'InternalServerException', 'content-type': 'application/json' });
        res.end(JSON.stringify({ Message: String(e) }));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    snapshots,
    log,
    failNextPuts: (count, fault) => { for (let i = 0; i < count; i++) faults.push(fault); },
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
