/**
 * Construct and handler agree on the wire: real stacks with `VmImageImport` are
 * synthesized, the `Custom::VmImageImport` properties are taken from the template and
 * resolved the way CloudFormation resolves them (every reference mapped explicitly, every
 * leaf a string), and the BUNDLED handler is driven with them against LocalEc2. Each prop
 * must reach ImportImage, the AMI and its snapshots exactly as the user set it; the
 * synthesized removal policy and timeout must be the ones the handler applies; and an
 * Update between two synthesized stacks must get the decision the prop change means.
 *
 * Needs the bundle: `npx projen bundle`.
 */
import { createHash, randomUUID } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App, ArnFormat, CfnElement, CfnOutput, Duration, Fn, RemovalPolicy, Size, Stack, Tags } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { IConstruct } from 'constructs';
import { CfnEvent, LifecycleOptions, LifecycleOutcome, LocalHandler, startLocalHandler } from './drive';
import { Ec2Tag, ImageState, ImportImageParams, ImportTaskState, SnapshotState } from './local-ec2';
import { Architecture, BootMode, DiskImage, DiskImageFormat, Hypervisor, LicenseType, Platform, VmImageImport } from '../../src';
import { RESOURCE_TYPE, TAG_IMAGE_HASH, TAG_IMPORT_TASK_ID, TAG_LOGICAL_ID, TAG_STACK_ID } from '../../src/private/contract';

jest.setTimeout(15_000);

const ACCOUNT = '123456789012';
const REGION = 'us-east-1';
const STACK_NAME = 'VmImportWire';
const STACK_ID = `arn:aws:cloudformation:${REGION}:${ACCOUNT}:stack/${STACK_NAME}/6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b`;
/** Never contacted: HTTPS is blocked in this process. */
const RESPONSE_URL = 'https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/wire-test';
/** What CloudFormation substitutes for the pseudo parameters in this account and Region. */
const PSEUDO_PARAMETERS: Readonly<Record<string, string>> = {
  'AWS::AccountId': ACCOUNT,
  'AWS::Region': REGION,
  'AWS::Partition': 'aws',
  'AWS::URLSuffix': 'amazonaws.com',
};

// ------------------------------------------------------------------ what the user sets

const EXAMPLE_VMDK = path.join(__dirname, '..', '..', 'examples', 'images', 'web-server.vmdk');
const SOURCE_BUCKET = 'vm-images-bucket';
const PRESIGNED_URL = `https://${SOURCE_BUCKET}.s3.${REGION}.amazonaws.com/web/swap.raw`
  + '?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=3600&X-Amz-Signature=0123456789abcdef';
/** The `Fn::Sub` URL below, as CloudFormation resolves it. */
const SCRATCH_URL = `https://${ACCOUNT}-scratch.s3.${REGION}.amazonaws.com/web/scratch.img`;
const S3_URL = `s3://${SOURCE_BUCKET}/web/logs.vhd`;
const UPLOAD_COMMENT = 'uploaded by the build pipeline';
const UPLOAD_START = new Date('2024-05-01T10:00:00.250Z');
const UPLOAD_END = new Date('2024-05-01T10:42:17.750Z');
const LICENSE_ARN = `arn:aws:license-manager:${REGION}:${ACCOUNT}:license-configuration:lic-0123456789abcdef0123456789abcdef`;
const USAGE_OPERATION = 'RunInstances:00g0';
const SNAPSHOT_ID = 'snap-0fedcba9876543210';
const STACK_TAG_KEY = 'environment';
/** Stack-level tags (`new Stack(..., { tags })`): they reach the import only through `Stack.of(this).tags`. */
const STACK_PROPS_TAGS: Readonly<Record<string, string>> = { billing: 'vm-import' };

/** The props of the main import an Update test may change. */
interface Variant {
  readonly bootMode: BootMode;
  readonly description: string;
  readonly tags: Readonly<Record<string, string>>;
  /** The value of `Tags.of(stack).add(STACK_TAG_KEY, ...)`. */
  readonly stackTagValue: string;
  readonly removalPolicy: RemovalPolicy;
  readonly timeout: Duration;
}

const BASE: Variant = {
  bootMode: BootMode.LEGACY_BIOS,
  description: 'Web server imported from VMware',
  tags: { 'team': 'infra', 'cost-center': '42' },
  stackTagValue: 'production',
  removalPolicy: RemovalPolicy.DESTROY,
  timeout: Duration.minutes(20),
};

/** The tags a variant puts on the main import: its own, the stack's and those of `Tags.of(stack)`. */
function userTagsOf(v: Variant): Record<string, string> {
  return { ...STACK_PROPS_TAGS, ...v.tags, [STACK_TAG_KEY]: v.stackTagValue };
}

// ------------------------------------------------------------------ resolving intrinsics like CloudFormation

/** A value in a CloudFormation template. */
type CfnValue = string | number | boolean | null | CfnValue[] | { [key: string]: CfnValue };
type CfnObject = { [key: string]: CfnValue };

/** What CloudFormation hands a custom resource: strings, and lists and maps of them. */
type Delivered = string | Delivered[] | { [key: string]: Delivered };
type DeliveredProperties = { [key: string]: Delivered };

/** What each reference stands for once deployed. Nothing is looked up implicitly. */
interface Deployed {
  /** `Ref` values by logical ID (the pseudo parameters are always known). */
  readonly refs: Readonly<Record<string, string>>;
  /** `Fn::GetAtt` values by `LogicalId.Attribute`. */
  readonly attributes: Readonly<Record<string, string>>;
}

function isObject(value: CfnValue): value is CfnObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** The intrinsic function an object is, if it is one. */
function intrinsicOf(value: CfnObject): string | undefined {
  const keys = Object.keys(value);
  return keys.length === 1 && (keys[0] === 'Ref' || keys[0].startsWith('Fn::')) ? keys[0] : undefined;
}

function asString(value: CfnValue, where: string): string {
  if (typeof value !== 'string') {
    throw new Error(`${where}: expected a string, got ${JSON.stringify(value)}`);
  }
  return value;
}

function asList(value: CfnValue, where: string): CfnValue[] {
  if (!Array.isArray(value)) {
    throw new Error(`${where}: expected a list, got ${JSON.stringify(value)}`);
  }
  return value;
}

function lookup(map: Readonly<Record<string, string>>, name: string, where: string, what: string): string {
  const value: string | undefined = Object.prototype.hasOwnProperty.call(map, name) ? map[name] : undefined;
  if (value === undefined) {
    throw new Error(`${where}: ${what} '${name}' is not mapped; map it explicitly if the construct now synthesizes it`);
  }
  return value;
}

function ref(name: string, deployed: Deployed, where: string): string {
  return Object.prototype.hasOwnProperty.call(PSEUDO_PARAMETERS, name) ? PSEUDO_PARAMETERS[name] : lookup(deployed.refs, name, where, 'Ref');
}

function getAtt(logicalId: string, attribute: string, deployed: Deployed, where: string): string {
  return lookup(deployed.attributes, `${logicalId}.${attribute}`, where, 'Fn::GetAtt');
}

function substitute(template: string, variables: CfnObject, deployed: Deployed, where: string): string {
  return template.replace(/\$\{([^}]*)\}/g, (_match: string, name: string) => {
    if (name.startsWith('!')) {
      return `\${${name.slice(1)}}`;
    }
    if (Object.prototype.hasOwnProperty.call(variables, name)) {
      return asString(resolveCfn(variables[name], deployed, where), where);
    }
    const dot = name.indexOf('.');
    return dot > 0 ? getAtt(name.slice(0, dot), name.slice(dot + 1), deployed, where) : ref(name, deployed, where);
  });
}

/**
 * Resolves the intrinsics CloudFormation would: Ref, Fn::GetAtt, Fn::Sub, Fn::Join,
 * Fn::Select, Fn::Split. Any other intrinsic, or a reference nobody mapped, throws.
 */
function resolveCfn(value: CfnValue, deployed: Deployed, at = '$'): CfnValue {
  if (Array.isArray(value)) {
    return value.map((item, i) => resolveCfn(item, deployed, `${at}[${i}]`));
  }
  if (!isObject(value)) {
    return value;
  }
  const fn = intrinsicOf(value);
  if (fn === undefined) {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, resolveCfn(item, deployed, `${at}.${key}`)]));
  }
  const arg = value[fn];
  const where = `${at} ${fn}`;
  switch (fn) {
    case 'Ref':
      return ref(asString(arg, where), deployed, where);
    case 'Fn::GetAtt': {
      const [logicalId, attribute] = typeof arg === 'string' ? [arg.slice(0, arg.indexOf('.')), arg.slice(arg.indexOf('.') + 1)] : asList(arg, where);
      return getAtt(asString(logicalId, where), asString(attribute, where), deployed, where);
    }
    case 'Fn::Join': {
      const [delimiter, items] = asList(arg, where);
      return asList(resolveCfn(items, deployed, where), where).map((item) => asString(item, where)).join(asString(delimiter, where));
    }
    case 'Fn::Sub': {
      const [template, variables] = typeof arg === 'string' ? [arg, {}] : asList(arg, where);
      if (!isObject(variables)) {
        throw new Error(`${where}: expected a map of variables, got ${JSON.stringify(variables)}`);
      }
      return substitute(asString(template, where), variables, deployed, where);
    }
    case 'Fn::Select': {
      const [index, items] = asList(arg, where);
      const list = asList(resolveCfn(items, deployed, where), where);
      const item = list[Number(resolveCfn(index, deployed, where))];
      if (item === undefined) {
        throw new Error(`${where}: index ${JSON.stringify(index)} is out of range of ${JSON.stringify(list)}`);
      }
      return item;
    }
    case 'Fn::Split': {
      const [delimiter, source] = asList(arg, where);
      return asString(resolveCfn(source, deployed, where), where).split(asString(delimiter, where));
    }
    default:
      throw new Error(`${where}: the resolver does not know ${fn} (${JSON.stringify(arg)}); teach it explicitly if the construct now synthesizes it`);
  }
}

/** Paths of the leaves that are not strings. */
function nonStringLeaves(value: CfnValue, at = '$'): string[] {
  if (typeof value === 'string') {
    return [];
  }
  if (Array.isArray(value)) {
    return value.flatMap((item, i) => nonStringLeaves(item, `${at}[${i}]`));
  }
  if (isObject(value)) {
    return Object.entries(value).flatMap(([key, item]) => nonStringLeaves(item, `${at}.${key}`));
  }
  return [`${at} = ${JSON.stringify(value)}`];
}

function isDelivered(value: CfnValue): value is Delivered {
  return nonStringLeaves(value).length === 0;
}

/** Names of the intrinsic functions anywhere in a value. */
function intrinsicsIn(value: CfnValue): string[] {
  if (Array.isArray(value)) {
    return value.flatMap(intrinsicsIn);
  }
  if (!isObject(value)) {
    return [];
  }
  const fn = intrinsicOf(value);
  return [...(fn ? [fn] : []), ...Object.values(value).flatMap(intrinsicsIn)];
}

// ------------------------------------------------------------------ synthesis

interface TemplateJson {
  readonly Resources: Record<string, {
    readonly Type: string;
    readonly Properties?: CfnObject;
    readonly DeletionPolicy?: string;
    readonly UpdateReplacePolicy?: string;
  }>;
  readonly Outputs?: Record<string, { readonly Value: CfnValue }>;
}

interface AssetManifestJson {
  readonly files: Record<string, {
    readonly source: { readonly path: string };
    readonly destinations: Record<string, { readonly bucketName: string; readonly objectKey: string }>;
  }>;
}

interface SynthesizedImport {
  readonly logicalId: string;
  /** The custom resource's Properties as in the template. */
  readonly template: CfnObject;
  /** The same, resolved as CloudFormation delivers them (leaves not yet checked). */
  readonly resolved: CfnValue;
  readonly deletionPolicy: string;
  readonly updateReplacePolicy: string;
}

interface Synthesized {
  readonly main: SynthesizedImport;
  readonly snapshot: SynthesizedImport;
  /** The physical names the explicit mapping gave the stack's resources. */
  readonly mainRoleName: string;
  readonly snapshotRoleName: string;
  readonly importBucketName: string;
  readonly kmsKeyArn: string;
  readonly outputs: CfnObject;
  readonly assetManifest: AssetManifestJson;
  readonly assemblyDir: string;
  readonly stack: Stack;
}

const outdirs: string[] = [];

/** A CloudFormation-like physical name, the same for the same logical ID in every synthesis. */
function physicalName(logicalId: string): string {
  const suffix = createHash('sha256').update(logicalId).digest('hex').slice(0, 12).toUpperCase();
  return `${STACK_NAME}-${logicalId}`.slice(0, 50) + `-${suffix}`;
}

function logicalIdOf(construct: IConstruct): string {
  const element = construct.node.defaultChild;
  if (!(element instanceof CfnElement)) {
    throw new Error(`${construct.node.path} has no CloudFormation resource`);
  }
  return Stack.of(element).getLogicalId(element);
}

function synthesize(change: Partial<Variant> = {}): Synthesized {
  const v: Variant = { ...BASE, ...change };
  const assemblyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdk-vm-import-wire-'));
  outdirs.push(assemblyDir);
  const app = new App({ outdir: assemblyDir });
  const stack = new Stack(app, STACK_NAME, { env: { account: ACCOUNT, region: REGION }, tags: STACK_PROPS_TAGS });
  const source = s3.Bucket.fromBucketName(stack, 'DiskSource', SOURCE_BUCKET);
  const key = new kms.Key(stack, 'SnapshotKey', { enableKeyRotation: true });

  const main = new VmImageImport(stack, 'WebServer', {
    diskImages: [
      DiskImage.fromAsset(EXAMPLE_VMDK, { deviceName: '/dev/sda1', description: 'boot disk' }),
      DiskImage.fromBucket(source, 'web/data.vhdx', { deviceName: '/dev/sdb', description: 'data disk' }),
      DiskImage.fromUrl(PRESIGNED_URL, { deviceName: '/dev/sdc' }),
      DiskImage.fromUrl(Fn.sub('https://${AWS::AccountId}-scratch.s3.${AWS::Region}.${AWS::URLSuffix}/web/scratch.img'), { format: DiskImageFormat.RAW }),
      DiskImage.fromUrl(S3_URL, { description: 'logs disk' }),
      DiskImage.fromImportBucket('pipeline/app.vmdk', { deviceName: '/dev/xvdf' }),
    ],
    description: v.description,
    clientData: { comment: UPLOAD_COMMENT, uploadStart: UPLOAD_START, uploadEnd: UPLOAD_END, uploadSize: Size.mebibytes(1536) },
    encrypted: true,
    encryptionKey: key,
    licenseType: LicenseType.BYOL,
    usageOperation: USAGE_OPERATION,
    // Built with the stack's partition token, as a user naturally would: Fn::Join of AWS::Partition.
    licenseConfigurationArns: [stack.formatArn({
      service: 'license-manager',
      resource: 'license-configuration',
      resourceName: 'lic-0123456789abcdef0123456789abcdef',
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    })],
    tags: v.tags,
    bootMode: v.bootMode,
    platform: Platform.LINUX,
    architecture: Architecture.X86_64,
    hypervisor: Hypervisor.XEN,
    removalPolicy: v.removalPolicy,
    timeout: v.timeout,
  });
  const snapshot = new VmImageImport(stack, 'Restored', {
    diskImages: [DiskImage.fromSnapshot(SNAPSHOT_ID, { deviceName: '/dev/sda1', description: 'restored root volume' })],
    encrypted: false,
    licenseType: LicenseType.AWS,
    platform: Platform.WINDOWS,
    bootMode: BootMode.UEFI,
    removalPolicy: RemovalPolicy.RETAIN,
  });
  Tags.of(stack).add(STACK_TAG_KEY, v.stackTagValue);
  // The attributes the construct reads back from the handler.
  new CfnOutput(stack, 'ImageId', { value: main.imageId });
  new CfnOutput(stack, 'SnapshotIds', { value: Fn.join(',', main.snapshotIds) });
  new CfnOutput(stack, 'FirstSnapshotId', { value: Fn.select(0, main.snapshotIds) });
  new CfnOutput(stack, 'ImportTaskId', { value: main.importTaskId });

  const json = Template.fromStack(stack).toJSON() as TemplateJson;
  const frameworkOnEvent = stack.node.findChild('CdkVmImportProvider').node.findChild('Provider').node.findChild('framework-onEvent');
  const names = {
    mainRoleName: physicalName(logicalIdOf(main.role)),
    snapshotRoleName: physicalName(logicalIdOf(snapshot.role)),
    importBucketName: physicalName(logicalIdOf(main.bucket)).toLowerCase(),
    kmsKeyArn: `arn:aws:kms:${REGION}:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`,
  };
  const deployed: Deployed = {
    refs: {
      [logicalIdOf(main.role)]: names.mainRoleName,
      [logicalIdOf(snapshot.role)]: names.snapshotRoleName,
      [logicalIdOf(main.bucket)]: names.importBucketName,
    },
    attributes: {
      [`${logicalIdOf(key)}.Arn`]: names.kmsKeyArn,
      [`${logicalIdOf(frameworkOnEvent)}.Arn`]: `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${physicalName(logicalIdOf(frameworkOnEvent))}`,
    },
  };
  const customResource = (construct: VmImageImport): SynthesizedImport => {
    const logicalId = logicalIdOf(construct.node.findChild('Resource'));
    const resource = json.Resources[logicalId];
    expect(resource?.Type).toBe(RESOURCE_TYPE);
    const template = resource.Properties ?? {};
    return {
      logicalId,
      template,
      resolved: resolveCfn(template, deployed),
      deletionPolicy: resource.DeletionPolicy ?? 'Delete',
      updateReplacePolicy: resource.UpdateReplacePolicy ?? 'Delete',
    };
  };
  const outputs = Object.fromEntries(Object.entries(json.Outputs ?? {}).map(([name, output]) => [name, output.Value]));
  const manifestFile = path.join(assemblyDir, `${stack.artifactId}.assets.json`);
  const assetManifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8')) as AssetManifestJson;
  return { main: customResource(main), snapshot: customResource(snapshot), ...names, outputs, assetManifest, assemblyDir, stack };
}

/** The properties as CloudFormation delivers them; fails the test if a leaf is not a string. */
function delivered(imp: SynthesizedImport): DeliveredProperties {
  expect(nonStringLeaves(imp.resolved)).toEqual([]);
  if (!isDelivered(imp.resolved) || typeof imp.resolved === 'string' || Array.isArray(imp.resolved)) {
    throw new Error('the custom resource properties are not a map of strings');
  }
  return imp.resolved;
}

/** The top-level properties whose values differ. */
function changedProperties(a: DeliveredProperties, b: DeliveredProperties): string[] {
  return [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k])).sort();
}

function sha256(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

// ------------------------------------------------------------------ driving the handler

let local: LocalHandler;
let base: Synthesized;

beforeAll(async () => {
  base = synthesize();
  local = await startLocalHandler({ accountId: ACCOUNT, region: REGION });
});

afterAll(async () => {
  await local?.stop();
  outdirs.forEach((dir) => fs.rmSync(dir, { recursive: true, force: true }));
});

beforeEach(() => {
  local.server.reset();
});

afterEach(() => {
  local.capture.clear();
  expect(local.blockedRequests).toEqual([]);
});

interface EventOptions {
  readonly PhysicalResourceId?: string;
  readonly OldResourceProperties?: DeliveredProperties;
}

function cfnEvent(requestType: CfnEvent['RequestType'], imp: SynthesizedImport, properties: DeliveredProperties, options: EventOptions = {}): CfnEvent {
  return {
    RequestType: requestType,
    ServiceToken: String(properties.ServiceToken),
    ResponseURL: RESPONSE_URL,
    StackId: STACK_ID,
    RequestId: randomUUID(),
    LogicalResourceId: imp.logicalId,
    ResourceType: RESOURCE_TYPE,
    ResourceProperties: properties,
    ...options,
  };
}

async function run(event: CfnEvent, options: LifecycleOptions = {}): Promise<LifecycleOutcome> {
  return local.driver.run(event, { timeoutMs: 5_000, ...options });
}

async function runToSuccess(event: CfnEvent): Promise<LifecycleOutcome> {
  const outcome = await run(event);
  expect(outcome.error).toBeUndefined();
  expect(outcome.status).toBe('SUCCESS');
  return outcome;
}

function taskOf(importTaskId: string): ImportTaskState {
  const task = local.server.state.tasks.get(importTaskId);
  if (!task) {
    throw new Error(`LocalEc2 has no task ${importTaskId}`);
  }
  return task;
}

function imageOf(task: ImportTaskState): ImageState {
  const image = task.imageId ? local.server.state.images.get(task.imageId) : undefined;
  if (!image) {
    throw new Error(`LocalEc2 has no AMI for ${task.importTaskId} (status ${task.status})`);
  }
  return image;
}

function snapshotsOf(image: ImageState): SnapshotState[] {
  return image.blockDevices.map((d) => {
    const snapshot = local.server.state.snapshots.get(d.snapshotId);
    if (!snapshot) {
      throw new Error(`LocalEc2 has no snapshot ${d.snapshotId}`);
    }
    return snapshot;
  });
}

function tagMap(tags: readonly Ec2Tag[]): Record<string, string> {
  return Object.fromEntries(tags.map((t) => [t.key, t.value]));
}

function importImageCalls(): number {
  return local.server.callsTo('ImportImage').length;
}

/** The AMI and every snapshot carry exactly the user's tags and the handler's own. */
function expectOutputTags(image: ImageState, task: ImportTaskState, imp: SynthesizedImport, userTags: Record<string, string>): void {
  const expected = {
    ...userTags,
    [TAG_STACK_ID]: STACK_ID,
    [TAG_LOGICAL_ID]: imp.logicalId,
    [TAG_IMPORT_TASK_ID]: task.importTaskId,
    [TAG_IMAGE_HASH]: expect.stringMatching(/^[0-9a-f]{64}$/),
  };
  expect(tagMap(image.tags)).toEqual(expected);
  for (const snapshot of snapshotsOf(image)) {
    expect(tagMap(snapshot.tags)).toEqual(expected);
  }
}

/** ImportImage's parameters for the main import of a variant, as EC2 must receive them. */
function mainImportParams(s: Synthesized, v: Variant): ImportImageParams {
  const assetKey = `${sha256(EXAMPLE_VMDK)}.vmdk`;
  return {
    architecture: 'x86_64',
    bootMode: v.bootMode,
    clientData: { comment: UPLOAD_COMMENT, uploadStart: expect.any(String), uploadEnd: expect.any(String), uploadSize: 1.5 },
    clientToken: expect.stringMatching(/^[0-9a-f]{64}$/),
    description: v.description,
    diskContainers: [
      { format: 'VMDK', deviceName: '/dev/sda1', description: 'boot disk', userBucket: { s3Bucket: `cdk-hnb659fds-assets-${ACCOUNT}-${REGION}`, s3Key: assetKey } },
      { format: 'VHDX', deviceName: '/dev/sdb', description: 'data disk', userBucket: { s3Bucket: SOURCE_BUCKET, s3Key: 'web/data.vhdx' } },
      { format: 'RAW', deviceName: '/dev/sdc', url: PRESIGNED_URL },
      { format: 'RAW', url: SCRATCH_URL },
      { format: 'VHD', description: 'logs disk', url: S3_URL },
      { format: 'VMDK', deviceName: '/dev/xvdf', userBucket: { s3Bucket: s.importBucketName, s3Key: 'pipeline/app.vmdk' } },
    ],
    encrypted: true,
    hypervisor: 'xen',
    kmsKeyId: s.kmsKeyArn,
    licenseType: 'BYOL',
    platform: 'Linux',
    roleName: s.mainRoleName,
    usageOperation: USAGE_OPERATION,
    licenseSpecifications: [LICENSE_ARN],
    tagSpecifications: [{ resourceType: 'import-image-task', tags: expect.any(Array) }],
  };
}

// ------------------------------------------------------------------ tests

describe('construct → CloudFormation → bundled handler → LocalEc2', () => {
  describe('the resolver', () => {
    const deployed: Deployed = { refs: { Role1: 'role-name' }, attributes: { 'Key1.Arn': 'arn:aws:kms:us-east-1:123456789012:key/k' } };

    test('resolves what CloudFormation resolves', () => {
      expect(resolveCfn({
        a: { 'Fn::Sub': ['${!Literal}-${AWS::Region}-${Role1}-${Key1.Arn}-${X}', { X: { Ref: 'AWS::Partition' } }] },
        b: { 'Fn::Join': ['/', ['x', { Ref: 'AWS::URLSuffix' }, { 'Fn::GetAtt': 'Key1.Arn' }]] },
        c: { 'Fn::Select': [1, { 'Fn::Split': [',', 'p,q,r'] }] },
        d: [{ Ref: 'Role1' }, { 'Fn::GetAtt': ['Key1', 'Arn'] }],
      }, deployed)).toEqual({
        a: '${Literal}-us-east-1-role-name-arn:aws:kms:us-east-1:123456789012:key/k-aws',
        b: 'x/amazonaws.com/arn:aws:kms:us-east-1:123456789012:key/k',
        c: 'q',
        d: ['role-name', 'arn:aws:kms:us-east-1:123456789012:key/k'],
      });
    });

    test.each<[string, CfnValue, RegExp]>([
      ['an unknown intrinsic', { x: [{ 'Fn::ImportValue': 'SharedRoleName' }] }, /\$\.x\[0\] Fn::ImportValue: the resolver does not know Fn::ImportValue/],
      ['a condition', { 'Fn::If': ['IsProd', 'a', 'b'] }, /does not know Fn::If/],
      ['an unmapped pseudo parameter', { Ref: 'AWS::StackName' }, /Ref 'AWS::StackName' is not mapped/],
      ['AWS::NoValue', { Ref: 'AWS::NoValue' }, /Ref 'AWS::NoValue' is not mapped/],
      ['an unmapped resource', { Ref: 'Bucket1' }, /Ref 'Bucket1' is not mapped/],
      ['an unmapped attribute', { 'Fn::GetAtt': ['Key1', 'KeyId'] }, /Fn::GetAtt 'Key1.KeyId' is not mapped/],
      ['an unmapped Sub variable', { 'Fn::Sub': 'role/${RoleName}' }, /Ref 'RoleName' is not mapped/],
    ])('fails on %s', (_what, value, error) => {
      expect(() => resolveCfn(value, deployed)).toThrow(error);
    });
  });

  test('the synthesized properties carry only known intrinsics and resolve to strings only, as CloudFormation delivers them', () => {
    for (const imp of [base.main, base.snapshot]) {
      expect(nonStringLeaves(imp.resolved)).toEqual([]);
      expect(intrinsicsIn(imp.resolved)).toEqual([]);
    }
    // What the main import's template holds besides plain strings: if this changes, check the resolver maps it right.
    expect([...new Set(intrinsicsIn(base.main.template))].sort()).toEqual(['Fn::GetAtt', 'Fn::Join', 'Fn::Sub', 'Ref']);
    expect(base.main.template).toMatchObject({
      RoleName: { Ref: expect.any(String) },
      KmsKeyId: { 'Fn::GetAtt': [expect.any(String), 'Arn'] },
    });
    // A fully specified import synthesizes cleanly.
    const annotations = Annotations.fromStack(base.stack);
    expect(annotations.findError('*', Match.anyValue())).toEqual([]);
    expect(annotations.findWarning('*', Match.anyValue())).toEqual([]);
    // CloudFormation must send the Delete (and the Delete of a replaced resource): the handler applies the removal policy itself.
    for (const imp of [base.main, base.snapshot]) {
      expect(imp.deletionPolicy).toBe('Delete');
      expect(imp.updateReplacePolicy).toBe('Delete');
    }
  });

  test('every prop of an import of asset, bucket and URL disks reaches ImportImage, the AMI and its snapshots as set; DESTROY removes them', async () => {
    const properties = delivered(base.main);
    const created = await runToSuccess(cfnEvent('Create', base.main, properties));
    expect(local.server.state.tasks.size).toBe(1);
    const task = taskOf(created.physicalResourceId);
    expect(task.status).toBe('completed');

    // Each prop, as EC2 received it.
    const p = task.params;
    expect(p).toEqual(mainImportParams(base, BASE));
    expect(p.clientData?.uploadStart).toBeDefined();
    expect(new Date(p.clientData?.uploadStart ?? '').toISOString()).toBe(UPLOAD_START.toISOString());
    expect(new Date(p.clientData?.uploadEnd ?? '').toISOString()).toBe(UPLOAD_END.toISOString());
    const userTags = userTagsOf(BASE);
    expect(tagMap(p.tagSpecifications[0]?.tags ?? [])).toEqual({ ...userTags, [TAG_STACK_ID]: STACK_ID });
    expect(p.tagSpecifications[0]?.tags).toHaveLength(Object.keys(userTags).length + 1);
    expect(tagMap(task.tags)).toEqual({ ...userTags, [TAG_STACK_ID]: STACK_ID });

    // The asset disk points at exactly where cdk-assets publishes the file.
    const asset = base.assetManifest.files[sha256(EXAMPLE_VMDK)];
    expect(asset).toBeDefined();
    const destinations = Object.values(asset.destinations);
    expect(destinations).toHaveLength(1);
    const published = { s3Bucket: substitute(destinations[0].bucketName, {}, { refs: {}, attributes: {} }, 'asset bucket'), s3Key: destinations[0].objectKey };
    expect(p.diskContainers[0]?.userBucket).toEqual(published);
    expect(sha256(path.join(base.assemblyDir, asset.source.path))).toBe(sha256(EXAMPLE_VMDK));

    // The AMI as imported, and what the handler put on it and on every snapshot.
    const image = imageOf(task);
    expect(image).toMatchObject({ description: BASE.description, architecture: 'x86_64', platform: 'Linux', bootMode: 'legacy-bios', usageOperation: USAGE_OPERATION });
    expect(image.blockDevices).toHaveLength(6);
    expectOutputTags(image, task, base.main, userTags);
    for (const snapshot of snapshotsOf(image)) {
      expect(snapshot).toMatchObject({ encrypted: true, kmsKeyId: base.kmsKeyArn });
    }

    // What the construct reads back (imageId, snapshotIds, importTaskId) is what the handler returned.
    const snapshotIds = image.blockDevices.map((d) => d.snapshotId);
    const outputs = resolveCfn(base.outputs, {
      refs: { [base.main.logicalId]: created.physicalResourceId },
      attributes: Object.fromEntries(Object.entries(created.data).map(([name, value]) => [`${base.main.logicalId}.${name}`, value])),
    });
    expect(outputs).toEqual({
      ImageId: image.imageId,
      SnapshotIds: snapshotIds.join(','),
      FirstSnapshotId: snapshotIds[0],
      ImportTaskId: task.importTaskId,
    });

    // RemovalPolicy.DESTROY: CloudFormation's Delete (with the same properties) removes the AMI and every snapshot.
    const deleted = await runToSuccess(cfnEvent('Delete', base.main, properties, { PhysicalResourceId: created.physicalResourceId }));
    expect(deleted.physicalResourceId).toBe(task.importTaskId);
    expect(local.server.state.images.has(image.imageId)).toBe(false);
    snapshotIds.forEach((id) => expect(local.server.state.snapshots.has(id)).toBe(false));
    expect(importImageCalls()).toBe(1);
  });

  test('an import of an EBS snapshot, unencrypted, with only stack tags, reaches ImportImage as set; RETAIN keeps the AMI and snapshot', async () => {
    const properties = delivered(base.snapshot);
    const created = await runToSuccess(cfnEvent('Create', base.snapshot, properties));
    const task = taskOf(created.physicalResourceId);
    const stackTags = { ...STACK_PROPS_TAGS, [STACK_TAG_KEY]: BASE.stackTagValue };
    expect(task.params).toEqual({
      bootMode: 'uefi',
      clientToken: expect.stringMatching(/^[0-9a-f]{64}$/),
      diskContainers: [{ snapshotId: SNAPSHOT_ID, deviceName: '/dev/sda1', description: 'restored root volume' }],
      encrypted: false,
      licenseType: 'AWS',
      platform: 'Windows',
      roleName: base.snapshotRoleName,
      licenseSpecifications: [],
      tagSpecifications: [{ resourceType: 'import-image-task', tags: expect.any(Array) }],
    });
    expect(tagMap(task.params.tagSpecifications[0]?.tags ?? [])).toEqual({ ...stackTags, [TAG_STACK_ID]: STACK_ID });
    expect(task.params.tagSpecifications[0]?.tags).toHaveLength(Object.keys(stackTags).length + 1);
    const image = imageOf(task);
    expect(image).toMatchObject({ platform: 'Windows', bootMode: 'uefi' });
    expectOutputTags(image, task, base.snapshot, stackTags);
    for (const snapshot of snapshotsOf(image)) {
      expect(snapshot.encrypted).toBe(false);
    }

    const deleted = await runToSuccess(cfnEvent('Delete', base.snapshot, properties, { PhysicalResourceId: created.physicalResourceId }));
    expect(deleted.physicalResourceId).toBe(task.importTaskId);
    expect(local.server.state.images.get(image.imageId)?.state).toBe('available');
    image.blockDevices.forEach((d) => expect(local.server.state.snapshots.has(d.snapshotId)).toBe(true));
    expect(local.server.callsTo('DeregisterImage')).toHaveLength(0);
    expect(local.server.callsTo('DeleteSnapshot')).toHaveLength(0);
  });

  test('the timeout arrives in seconds: the handler cancels the import when the synthesized timeout runs out, not before', async () => {
    const properties = delivered(base.main);
    const seconds = BASE.timeout.toSeconds();
    expect(properties.WaitTimeoutSeconds).toBe(String(seconds));
    const startedAgo = (ms: number) => (event: CfnEvent): CfnEvent => ({ ...event, Data: { ...event.Data, StartedAt: String(Date.now() - ms) } });
    local.server.queueTaskBehaviour({ hold: true });
    local.server.queueTaskBehaviour({ hold: true });

    const within = await run(cfnEvent('Create', base.main, properties), { beforePolling: startedAgo((seconds - 30) * 1000), stopAfterPolls: 2 });
    expect(within.status).toBe('IN_PROGRESS');
    expect(taskOf(within.physicalResourceId).status).toBe('active');

    const over = await run(cfnEvent('Create', base.main, properties), { beforePolling: startedAgo(seconds * 1000) });
    expect(over.status).toBe('FAILED');
    expect(over.error?.message).toContain(`did not finish within ${seconds} seconds and was cancelled`);
    expect(taskOf(over.physicalResourceId).cancelReason).toBe(`cdk-vm-import: wait of ${seconds} s exceeded`);
  });

  describe('an Update between two synthesized stacks', () => {
    type Expectation =
      | { readonly decision: 'new import'; readonly params: Partial<ImportImageParams> }
      | { readonly decision: 'in place' };

    test.each<[string, Partial<Variant>, string[], Expectation]>([
      ['bootMode', { bootMode: BootMode.UEFI }, ['BootMode'], { decision: 'new import', params: { bootMode: 'uefi' } }],
      ['description', { description: 'Web server, rebuilt' }, ['Description'], { decision: 'new import', params: { description: 'Web server, rebuilt' } }],
      ['tags', { tags: { team: 'platform', owner: 'alice' } }, ['Tags'], { decision: 'in place' }],
      ['the Tags.of(stack) tag', { stackTagValue: 'staging' }, ['Tags'], { decision: 'in place' }],
      ['removalPolicy', { removalPolicy: RemovalPolicy.RETAIN }, ['RemovalPolicy'], { decision: 'in place' }],
      ['timeout', { timeout: Duration.minutes(30) }, ['WaitTimeoutSeconds'], { decision: 'in place' }],
    ])('changing only %s', async (_prop, change, changedKeys, expectation) => {
      const v: Variant = { ...BASE, ...change };
      const changed = synthesize(change);
      const oldProperties = delivered(base.main);
      const newProperties = delivered(changed.main);
      // The same resource, and only the expected wire property differs.
      expect(changed.main.logicalId).toBe(base.main.logicalId);
      expect(changedProperties(oldProperties, newProperties)).toEqual(changedKeys);

      const created = await runToSuccess(cfnEvent('Create', base.main, oldProperties));
      const first = taskOf(created.physicalResourceId);
      const firstImage = imageOf(first);
      const updated = await runToSuccess(cfnEvent('Update', changed.main, newProperties, {
        PhysicalResourceId: created.physicalResourceId,
        OldResourceProperties: oldProperties,
      }));

      if (expectation.decision === 'new import') {
        expect(updated.physicalResourceId).not.toBe(created.physicalResourceId);
        expect(importImageCalls()).toBe(2);
        const second = taskOf(updated.physicalResourceId);
        expect(second.params).toEqual({ ...mainImportParams(changed, v), ...expectation.params });
        expect(second.params.clientToken).not.toBe(first.params.clientToken);
        const secondImage = imageOf(second);
        expect(updated.data.ImageId).toBe(secondImage.imageId);
        expectOutputTags(secondImage, second, changed.main, userTagsOf(v));
        // CloudFormation then deletes the replaced import with its old properties (DESTROY).
        await runToSuccess(cfnEvent('Delete', base.main, oldProperties, { PhysicalResourceId: created.physicalResourceId }));
        expect(local.server.state.images.has(firstImage.imageId)).toBe(false);
        expect(local.server.state.images.has(secondImage.imageId)).toBe(true);
      } else {
        expect(updated.physicalResourceId).toBe(created.physicalResourceId);
        expect(importImageCalls()).toBe(1);
        expect(updated.data).toMatchObject({ ImageId: firstImage.imageId, ImportTaskId: first.importTaskId });
        // Re-tagged in place: new values set, removed keys gone.
        expectOutputTags(firstImage, first, changed.main, userTagsOf(v));
        // The removal policy of the new properties applies from now on.
        await runToSuccess(cfnEvent('Delete', changed.main, newProperties, { PhysicalResourceId: updated.physicalResourceId }));
        expect(local.server.state.images.has(firstImage.imageId)).toBe(v.removalPolicy === RemovalPolicy.RETAIN);
      }
    });
  });
});
