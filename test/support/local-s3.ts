import * as crypto from 'crypto';
import * as http from 'http';
import { AddressInfo } from 'net';

/**
 * A minimal in-memory S3-compatible server on 127.0.0.1, enough for `cdk-assets publish` of a file
 * asset: GetBucketLocation, GetBucketEncryption, ListObjectsV2, HeadObject, GetObject, PutObject and
 * multipart uploads. Requests are not authenticated; every request is recorded.
 */

export interface RecordedRequest {
  readonly operation: string;
  readonly method: string;
  readonly url: string;
  /** Bytes of the decoded body. */
  readonly bodyBytes: number;
  /** The body's sha256 (base64) the client sent, as header or trailer; PutObject/UploadPart fail unless it matches. */
  readonly checksumSha256?: string;
}

export interface StoredObject {
  readonly body: Buffer;
  readonly contentType?: string;
}

export interface LocalS3 {
  readonly endpoint: string;
  readonly requests: RecordedRequest[];
  /** Keyed by `bucket/key`. */
  readonly objects: Map<string, StoredObject>;
  close(): Promise<void>;
}

interface Target {
  readonly bucket: string;
  readonly key: string;
  readonly query: URLSearchParams;
}

interface Reply {
  readonly status: number;
  readonly headers?: Record<string, string>;
  readonly body?: string | Buffer;
}

interface Upload {
  readonly contentType?: string;
  readonly parts: Map<number, Buffer>;
}

interface State {
  readonly buckets: Set<string>;
  readonly objects: Map<string, StoredObject>;
  readonly uploads: Map<string, Upload>;
}

interface Decoded {
  readonly body: Buffer;
  /** aws-chunked trailers (e.g. `x-amz-checksum-sha256`). */
  readonly trailers: Record<string, string>;
}

type Handler = (target: Target, body: Buffer, req: http.IncomingMessage, state: State) => Reply;

const XML_HEAD = '<?xml version="1.0" encoding="UTF-8"?>';
const S3_NS = 'http://s3.amazonaws.com/doc/2006-03-01/';

export async function startLocalS3(buckets: string[]): Promise<LocalS3> {
  const state: State = { buckets: new Set(buckets), objects: new Map(), uploads: new Map() };
  const requests: RecordedRequest[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const target = parseTarget(req, state.buckets);
      const operation = operationOf(req.method ?? '', target);
      const decoded = decodeBody(Buffer.concat(chunks), req.headers);
      const checksum = `${req.headers['x-amz-checksum-sha256'] ?? decoded.trailers['x-amz-checksum-sha256'] ?? ''}` || undefined;
      requests.push({ operation, method: req.method ?? '', url: req.url ?? '', bodyBytes: decoded.body.length, checksumSha256: checksum });
      const reply = dispatch(operation, target, decoded.body, checksum, state, req);
      res.writeHead(reply.status, reply.headers);
      res.end(req.method === 'HEAD' ? undefined : reply.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const close = async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return { endpoint: `http://127.0.0.1:${port}`, requests, objects: state.objects, close };
}

/** Path style (`/bucket/key`), or virtual-host style when the Host's first label is a known bucket. */
function parseTarget(req: http.IncomingMessage, buckets: Set<string>): Target {
  const url = new URL(req.url ?? '/', 'http://local');
  const hostLabel = (req.headers.host ?? '').split('.')[0];
  const segments = url.pathname.split('/').slice(1).map(decodeURIComponent);
  if (buckets.has(hostLabel)) return { bucket: hostLabel, key: segments.join('/'), query: url.searchParams };
  return { bucket: segments[0] ?? '', key: segments.slice(1).join('/'), query: url.searchParams };
}

function operationOf(method: string, { key, query }: Target): string {
  const onBucket: Record<string, string | undefined> = {
    GET: query.has('location') ? 'GetBucketLocation' : query.has('encryption') ? 'GetBucketEncryption'
      : query.get('list-type') === '2' ? 'ListObjectsV2' : undefined,
    HEAD: 'HeadBucket',
  };
  const onObject: Record<string, string | undefined> = {
    GET: 'GetObject',
    HEAD: 'HeadObject',
    PUT: query.has('uploadId') ? 'UploadPart' : 'PutObject',
    POST: query.has('uploads') ? 'CreateMultipartUpload' : query.has('uploadId') ? 'CompleteMultipartUpload' : undefined,
    DELETE: query.has('uploadId') ? 'AbortMultipartUpload' : undefined,
  };
  return (key ? onObject : onBucket)[method] ?? `Unsupported ${method}`;
}

const HANDLERS: Record<string, Handler> = {
  GetBucketLocation: () => xml(200, `<LocationConstraint xmlns="${S3_NS}"></LocationConstraint>`),
  GetBucketEncryption: () => error(404, 'ServerSideEncryptionConfigurationNotFoundError'),
  HeadBucket: () => ({ status: 200 }),
  ListObjectsV2: listObjects,
  HeadObject: getObject,
  GetObject: getObject,
  PutObject: putObject,
  CreateMultipartUpload: createUpload,
  UploadPart: uploadPart,
  CompleteMultipartUpload: completeUpload,
  AbortMultipartUpload: (t, _b, _r, s) => (s.uploads.delete(t.query.get('uploadId') ?? '') ? { status: 204 } : error(404, 'NoSuchUpload')),
};

const CHECKSUMMED = new Set(['PutObject', 'UploadPart']);

function dispatch(operation: string, target: Target, body: Buffer, checksum: string | undefined, state: State, req: http.IncomingMessage): Reply {
  const handler = HANDLERS[operation];
  if (!handler) return error(501, 'NotImplemented');
  if (!state.buckets.has(target.bucket)) return error(404, 'NoSuchBucket');
  if (CHECKSUMMED.has(operation) && checksum !== undefined && checksum !== sha256Base64(body)) return error(400, 'BadDigest');
  return handler(target, body, req, state);
}

function listObjects({ bucket, query }: Target, _body: Buffer, _req: http.IncomingMessage, state: State): Reply {
  const prefix = query.get('prefix') ?? '';
  const maxKeys = Number(query.get('max-keys') ?? '1000');
  const keys = [...state.objects.keys()].filter((k) => k.startsWith(`${bucket}/${prefix}`)).sort().slice(0, maxKeys);
  const contents = keys.map((k) => `<Contents><Key>${escape(k.slice(bucket.length + 1))}</Key>`
    + `<Size>${state.objects.get(k)?.body.length}</Size><StorageClass>STANDARD</StorageClass></Contents>`);
  return xml(200, `<ListBucketResult xmlns="${S3_NS}"><Name>${bucket}</Name><Prefix>${escape(prefix)}</Prefix>`
    + `<KeyCount>${keys.length}</KeyCount><MaxKeys>${maxKeys}</MaxKeys><IsTruncated>false</IsTruncated>${contents.join('')}</ListBucketResult>`);
}

function getObject({ bucket, key }: Target, _body: Buffer, _req: http.IncomingMessage, state: State): Reply {
  const object = state.objects.get(`${bucket}/${key}`);
  if (!object) return error(404, 'NoSuchKey');
  const headers = { 'content-length': `${object.body.length}`, 'etag': etag(object.body), 'content-type': object.contentType ?? 'binary/octet-stream' };
  return { status: 200, headers, body: object.body };
}

function putObject({ bucket, key }: Target, body: Buffer, req: http.IncomingMessage, state: State): Reply {
  state.objects.set(`${bucket}/${key}`, { body, contentType: req.headers['content-type'] });
  return { status: 200, headers: { 'etag': etag(body), 'x-amz-checksum-sha256': sha256Base64(body) } };
}

function createUpload({ bucket, key }: Target, _body: Buffer, req: http.IncomingMessage, state: State): Reply {
  const uploadId = crypto.randomUUID();
  state.uploads.set(uploadId, { contentType: req.headers['content-type'], parts: new Map() });
  return xml(200, `<InitiateMultipartUploadResult xmlns="${S3_NS}"><Bucket>${bucket}</Bucket>`
    + `<Key>${escape(key)}</Key><UploadId>${uploadId}</UploadId></InitiateMultipartUploadResult>`);
}

function uploadPart({ query }: Target, body: Buffer, _req: http.IncomingMessage, state: State): Reply {
  const upload = state.uploads.get(query.get('uploadId') ?? '');
  if (!upload) return error(404, 'NoSuchUpload');
  upload.parts.set(Number(query.get('partNumber')), body);
  return { status: 200, headers: { 'etag': etag(body), 'x-amz-checksum-sha256': sha256Base64(body) } };
}

function completeUpload({ bucket, key, query }: Target, body: Buffer, _req: http.IncomingMessage, state: State): Reply {
  const uploadId = query.get('uploadId') ?? '';
  const upload = state.uploads.get(uploadId);
  if (!upload) return error(404, 'NoSuchUpload');
  const numbers = [...body.toString('utf8').matchAll(/<PartNumber>(\d+)<\/PartNumber>/g)].map((m) => Number(m[1]));
  const parts = numbers.map((n) => upload.parts.get(n));
  if (numbers.length === 0 || parts.some((p) => p === undefined)) return error(400, 'InvalidPart');
  const object = Buffer.concat(parts as Buffer[]);
  state.objects.set(`${bucket}/${key}`, { body: object, contentType: upload.contentType });
  state.uploads.delete(uploadId);
  return xml(200, `<CompleteMultipartUploadResult xmlns="${S3_NS}"><Bucket>${bucket}</Bucket><Key>${escape(key)}</Key>`
    + `<ETag>${escape(etag(object))}</ETag></CompleteMultipartUploadResult>`);
}

/** Undoes `aws-chunked` framing: `<hex size>[;ext]\r\n<data>\r\n` ... `0\r\n<name>:<value>\r\n` ... `\r\n`. */
export function decodeBody(raw: Buffer, headers: http.IncomingHttpHeaders): Decoded {
  const chunked = `${headers['content-encoding'] ?? ''}`.includes('aws-chunked') || `${headers['x-amz-content-sha256'] ?? ''}`.startsWith('STREAMING-');
  if (!chunked) return { body: raw, trailers: {} };
  const pieces: Buffer[] = [];
  let offset = 0;
  for (let size = chunkSize(raw, offset); size > 0; size = chunkSize(raw, offset)) {
    const dataStart = raw.indexOf('\r\n', offset) + 2;
    pieces.push(raw.subarray(dataStart, dataStart + size));
    offset = dataStart + size + 2;
  }
  const trailerLines = raw.subarray(raw.indexOf('\r\n', offset) + 2).toString('latin1').split('\r\n').filter((l) => l.includes(':'));
  const trailers = Object.fromEntries(trailerLines.map((l) => [l.slice(0, l.indexOf(':')).trim().toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
  return { body: Buffer.concat(pieces), trailers };
}

function chunkSize(raw: Buffer, offset: number): number {
  const lineEnd = raw.indexOf('\r\n', offset);
  return lineEnd < 0 ? 0 : parseInt(raw.subarray(offset, lineEnd).toString('latin1').split(';')[0], 16) || 0;
}

function sha256Base64(body: Buffer): string {
  return crypto.createHash('sha256').update(body).digest('base64');
}

function etag(body: Buffer): string {
  return `"${crypto.createHash('md5').update(body).digest('hex')}"`;
}

function xml(status: number, body: string): Reply {
  return { status, headers: { 'content-type': 'application/xml' }, body: XML_HEAD + body };
}

function error(status: number, code: string): Reply {
  return xml(status, `<Error><Code>${code}</Code><Message>${code}</Message><RequestId>local</RequestId></Error>`);
}

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
