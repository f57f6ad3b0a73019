/**
 * Construct and engine agree on the wire: real stacks with `VmImageImport` are
 * synthesized, the `Custom::VmImageImport` and `Custom::VmImageImportResult` properties are
 * taken from the template and resolved the way CloudFormation resolves them (every
 * reference mapped explicitly, every leaf a string), and they drive the whole engine (the
 * synthesized state machine and the BUNDLED function, see engine-harness.ts) against local
 * EC2, Step Functions and CloudFormation servers. Each prop must reach ImportImage, the AMI
 * and its snapshots exactly as the user set it; the synthesized removal policy, timeout and
 * poll interval must be the ones the engine applies; and an Update between two synthesized
 * stacks must get the outcome the prop change means.
 *
 * Needs the bundle: `npx projen bundle`.
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App, ArnFormat, CfnElement, CfnOutput, Duration, Fn, RemovalPolicy, Size, Stack, Tags } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { IConstruct } from 'constructs';
import { ACCOUNT, Deployment, Engine, HANDLER_ARN, REGION, STACK_ID, STATE_MACHINE_ARN } from './engine-harness';
import { CustomResourceResponse } from './local-cfn';
import { Ec2Tag, ImageState, ImportImageParams, ImportTaskState, SnapshotState } from './local-ec2';
import { Architecture, BootMode, DiskImage, DiskImageFormat, Hypervisor, LicenseType, Platform, VmImageImport } from '../../src';
import {
  ExecutionInput,
  RESOURCE_TYPE,
  RESULT_RESOURCE_TYPE,
  TAG_IMPORT_TASK_ID,
  TAG_LOGICAL_ID,
  TAG_EXECUTION,
  TAG_STACK_ID,
} from '../../src/private/contract';

jest.setTimeout(60_000);

/** The stack the harness's STACK_ID names: the synthesized stack has the same name. */
const STACK_NAME = STACK_ID.split('/')[1];
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
  /** The key of the data disk in SOURCE_BUCKET. */
  readonly dataDiskKey: string;
  readonly tags: Readonly<Record<string, string>>;
  /** The value of `Tags.of(stack).add(STACK_TAG_KEY, ...)`. */
  readonly stackTagValue: string;
  readonly removalPolicy: RemovalPolicy;
  readonly timeout: Duration;
  readonly pollInterval: Duration;
}

const BASE: Variant = {
  bootMode: BootMode.LEGACY_BIOS,
  description: 'Web server imported from VMware',
  dataDiskKey: 'web/data.vhdx',
  tags: { 'team': 'infra', 'cost-center': '42' },
  stackTagValue: 'production',
  removalPolicy: RemovalPolicy.DESTROY,
  timeout: Duration.minutes(20),
  pollInterval: Duration.seconds(45),
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

interface TemplateResource {
  readonly Type: string;
  readonly Properties?: CfnObject;
  readonly DeletionPolicy?: string;
  readonly UpdateReplacePolicy?: string;
  readonly DependsOn?: string | string[];
  readonly CreationPolicy?: CfnObject;
}

interface TemplateJson {
  readonly Resources: Record<string, TemplateResource>;
  readonly Outputs?: Record<string, { readonly Value: CfnValue }>;
}

interface AssetManifestJson {
  readonly files: Record<string, {
    readonly source: { readonly path: string };
    readonly destinations: Record<string, { readonly bucketName: string; readonly objectKey: string }>;
  }>;
}

/** One of the import's custom resources, as synthesized. */
interface SynthesizedResource {
  readonly logicalId: string;
  /** Its Properties as in the template. */
  readonly template: CfnObject;
  readonly deletionPolicy: string;
  readonly updateReplacePolicy: string;
  readonly dependsOn: string[];
}

interface SynthesizedImport extends SynthesizedResource {
  /** The start resource's Properties, resolved as CloudFormation delivers them (leaves not yet checked). */
  readonly resolved: CfnValue;
  /** The logical ID of the import's WaitCondition, from the construct tree. */
  readonly waitConditionId: string;
  readonly waitCondition: TemplateResource;
  readonly result: SynthesizedResource;
}

interface Synthesized {
  readonly main: SynthesizedImport;
  readonly snapshot: SynthesizedImport;
  /** The physical names the explicit mapping gave the stack's resources. */
  readonly mainRoleName: string;
  readonly snapshotRoleName: string;
  readonly importBucketName: string;
  readonly kmsKeyArn: string;
  readonly stateMachineLogicalId: string;
  readonly handlerLogicalId: string;
  readonly deployed: Deployed;
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
  const element = construct instanceof CfnElement ? construct : construct.node.defaultChild;
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
      DiskImage.fromBucket(source, v.dataDiskKey, { deviceName: '/dev/sdb', description: 'data disk' }),
      DiskImage.fromUrl(PRESIGNED_URL, { deviceName: '/dev/sdc' }),
      DiskImage.fromUrl(Fn.sub('https://${AWS::AccountId}-scratch.s3.${AWS::Region}.${AWS::URLSuffix}/web/scratch.img'), { format: DiskImageFormat.RAW }),
      DiskImage.fromUrl(S3_URL, { description: 'logs disk' }),
      DiskImage.fromImportBucket('pipeline/app.vmdk', { deviceName: '/dev/xvdf' }),
    ],
    description: v.description,
    clientData: { comment: UPLOAD_COMMENT, uploadStart: UPLOAD_START, uploadEnd: UPLOAD_END, uploadSize: Size.mebibytes(1536) },
    encrypted: true,
    encryptionKey: key,
    // Not with licenseType: VM Import refuses both at once.
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
    pollInterval: v.pollInterval,
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
  // The attributes the construct reads back from the result resource.
  new CfnOutput(stack, 'ImageId', { value: main.imageId });
  new CfnOutput(stack, 'SnapshotIds', { value: Fn.join(',', main.snapshotIds) });
  new CfnOutput(stack, 'FirstSnapshotId', { value: Fn.select(0, main.snapshotIds) });
  new CfnOutput(stack, 'ImportTaskId', { value: main.importTaskId });

  const json = Template.fromStack(stack).toJSON() as TemplateJson;
  const handler = stack.node.findChild('CdkVmImportEngine').node.findChild('Handler');
  const stateMachineLogicalId = logicalIdOf(main.stateMachine);
  const handlerLogicalId = logicalIdOf(handler);
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
      // The state machine the harness runs: its Ref is its ARN.
      [stateMachineLogicalId]: STATE_MACHINE_ARN,
    },
    attributes: {
      [`${logicalIdOf(key)}.Arn`]: names.kmsKeyArn,
      [`${handlerLogicalId}.Arn`]: HANDLER_ARN,
    },
  };
  const resource = (logicalId: string, type: string): [SynthesizedResource, TemplateResource] => {
    const found = json.Resources[logicalId];
    expect(found?.Type).toBe(type);
    return [{
      logicalId,
      template: found.Properties ?? {},
      deletionPolicy: found.DeletionPolicy ?? 'Delete',
      updateReplacePolicy: found.UpdateReplacePolicy ?? 'Delete',
      dependsOn: found.DependsOn === undefined ? [] : [found.DependsOn].flat(),
    }, found];
  };
  const customResources = (construct: VmImageImport): SynthesizedImport => {
    const [start] = resource(logicalIdOf(construct.node.findChild('Resource')), RESOURCE_TYPE);
    const [result] = resource(logicalIdOf(construct.node.findChild('Result')), RESULT_RESOURCE_TYPE);
    const waits = construct.node.children.filter((c) => /^Wait[0-9A-F]{12}$/.test(c.node.id));
    expect(waits).toHaveLength(1);
    const [wait, waitCondition] = resource(logicalIdOf(waits[0]), 'AWS::CloudFormation::WaitCondition');
    return { ...start, resolved: resolveCfn(start.template, deployed), waitConditionId: wait.logicalId, waitCondition, result };
  };
  const outputs = Object.fromEntries(Object.entries(json.Outputs ?? {}).map(([name, output]) => [name, output.Value]));
  const manifestFile = path.join(assemblyDir, `${stack.artifactId}.assets.json`);
  const assetManifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8')) as AssetManifestJson;
  return {
    main: customResources(main),
    snapshot: customResources(snapshot),
    ...names,
    stateMachineLogicalId,
    handlerLogicalId,
    deployed,
    outputs,
    assetManifest,
    assemblyDir,
    stack,
  };
}

/** A resolved value as CloudFormation delivers it; fails the test if a leaf is not a string. */
function deliveredValue(resolved: CfnValue): DeliveredProperties {
  expect(nonStringLeaves(resolved)).toEqual([]);
  if (!isDelivered(resolved) || typeof resolved === 'string' || Array.isArray(resolved)) {
    throw new Error('the custom resource properties are not a map of strings');
  }
  return resolved;
}

/** The start resource's properties as CloudFormation delivers them. */
function delivered(imp: SynthesizedImport): DeliveredProperties {
  return deliveredValue(imp.resolved);
}

/** The result resource's properties as CloudFormation delivers them, once the start resource has its physical ID. */
function deliveredResult(s: Synthesized, imp: SynthesizedImport, startPhysicalResourceId: string): DeliveredProperties {
  const deployed: Deployed = { refs: { ...s.deployed.refs, [imp.logicalId]: startPhysicalResourceId }, attributes: s.deployed.attributes };
  return deliveredValue(resolveCfn(imp.result.template, deployed));
}

/** What the function receives besides ServiceToken (which the harness adds): ServiceToken must be the function. */
function withoutServiceToken(properties: DeliveredProperties): DeliveredProperties {
  const { ServiceToken: token, ...rest } = properties;
  expect(token).toBe(HANDLER_ARN);
  return rest;
}

/** The top-level properties whose values differ. */
function changedProperties(a: DeliveredProperties, b: DeliveredProperties): string[] {
  return [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k])).sort();
}

function sha256(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

// ------------------------------------------------------------------ driving the engine

let engine: Engine | undefined;
let base: Synthesized;

beforeAll(() => {
  base = synthesize();
});

afterAll(() => {
  outdirs.forEach((dir) => fs.rmSync(dir, { recursive: true, force: true }));
});

afterEach(async () => {
  const running = engine;
  engine = undefined;
  if (running) {
    expect(running.blockedRequests).toEqual([]);
    await running.stop();
  }
});

async function startEngine(): Promise<Engine> {
  engine = await Engine.start();
  return engine;
}

function current(): Engine {
  if (!engine) {
    throw new Error('no engine was started');
  }
  return engine;
}

/** CloudFormation creates one synthesized import: start resource, WaitCondition, result resource, with the template's properties. */
async function deployImport(s: Synthesized, imp: SynthesizedImport): Promise<Required<Deployment>> {
  const e = current();
  const properties = withoutServiceToken(delivered(imp));
  // The WaitCondition's logical ID is a literal in the template: the one the engine signals.
  expect(properties.WaitConditionId).toBe(imp.waitConditionId);
  const deployment = await e.deploy(properties, {
    logicalId: imp.logicalId,
    resultLogicalId: imp.result.logicalId,
    resultProps: (startPhysicalResourceId) => withoutServiceToken(deliveredResult(s, imp, startPhysicalResourceId)),
  });
  expect(deployment.start.Status).toBe('SUCCESS');
  expect(deployment.execution?.status).toBe('SUCCEEDED');
  expect(deployment.result?.Reason).toBeUndefined();
  expect(deployment.result?.Status).toBe('SUCCESS');
  expect(e.cfn.signalsTo(imp.waitConditionId)).toHaveLength(1);
  return deployment as Required<Deployment>;
}

/** CloudFormation deletes a resource with the properties it last had. */
async function deleteResource(
  resourceType: string, resource: SynthesizedResource, properties: DeliveredProperties, physicalResourceId: string,
): Promise<CustomResourceResponse> {
  const deleted = await current().request('Delete', resourceType, resource.logicalId, withoutServiceToken(properties), { physicalResourceId });
  expect(deleted.Reason).toBeUndefined();
  expect(deleted).toMatchObject({ Status: 'SUCCESS', PhysicalResourceId: physicalResourceId });
  return deleted;
}

interface StackUpdate {
  readonly start: CustomResourceResponse;
  readonly result: CustomResourceResponse;
  /** Whether CloudFormation sent the result resource an Update (only when its resolved properties changed). */
  readonly resultUpdated: boolean;
}

/**
 * CloudFormation updates the stack `from` → `to` (the main import): the start resource
 * (Update), a WaitCondition of a new logical ID (Create, which waits for its signal), the
 * result resource (Update, if its properties changed); then, in the cleanup phase, deletes
 * the replaced physical resources with their old properties, dependents first.
 */
async function updateStack(from: Synthesized, to: Synthesized, first: Required<Deployment>): Promise<StackUpdate> {
  const e = current();
  const oldProperties = delivered(from.main);
  const newProperties = delivered(to.main);
  const start = await e.request('Update', RESOURCE_TYPE, to.main.logicalId, withoutServiceToken(newProperties), {
    physicalResourceId: first.start.PhysicalResourceId,
    oldProps: withoutServiceToken(oldProperties),
  });
  expect(start.Reason).toBeUndefined();
  expect(start.Status).toBe('SUCCESS');
  if (to.main.waitConditionId !== from.main.waitConditionId) {
    e.cfn.createWaitCondition(STACK_ID, to.main.waitConditionId);
    const execution = e.sfn.executions.get(start.PhysicalResourceId);
    await e.until(() => e.cfn.signalsTo(to.main.waitConditionId).length > 0 || execution?.status !== 'RUNNING');
    await execution?.done;
    expect(e.cfn.signalsTo(to.main.waitConditionId)).toHaveLength(1);
  }
  const oldResult = deliveredResult(from, from.main, first.start.PhysicalResourceId);
  const newResult = deliveredResult(to, to.main, start.PhysicalResourceId);
  const resultUpdated = changedProperties(oldResult, newResult).length > 0;
  const result = resultUpdated
    ? await e.request('Update', RESULT_RESOURCE_TYPE, to.main.result.logicalId, withoutServiceToken(newResult), {
      physicalResourceId: first.result.PhysicalResourceId,
      oldProps: withoutServiceToken(oldResult),
    })
    : first.result;
  expect(result.Reason).toBeUndefined();
  expect(result.Status).toBe('SUCCESS');
  if (result.PhysicalResourceId !== first.result.PhysicalResourceId) {
    await deleteResource(RESULT_RESOURCE_TYPE, from.main.result, oldResult, first.result.PhysicalResourceId);
  }
  if (start.PhysicalResourceId !== first.start.PhysicalResourceId) {
    await deleteResource(RESOURCE_TYPE, from.main, oldProperties, first.start.PhysicalResourceId);
  }
  return { start, result, resultUpdated };
}

/** The execution's input, as the start resource wrote it. */
function executionInput(startPhysicalResourceId: string): ExecutionInput {
  const execution = current().sfn.executions.get(startPhysicalResourceId);
  if (!execution) {
    throw new Error(`LocalSfn has no execution ${startPhysicalResourceId}`);
  }
  return JSON.parse(execution.input) as ExecutionInput;
}

function onlyTask(): ImportTaskState {
  const tasks = [...current().ec2.state.tasks.values()];
  expect(tasks).toHaveLength(1);
  return tasks[0];
}

function taskOf(importTaskId: string | undefined): ImportTaskState {
  const task = importTaskId ? current().ec2.state.tasks.get(importTaskId) : undefined;
  if (!task) {
    throw new Error(`LocalEc2 has no task ${importTaskId}`);
  }
  return task;
}

function imageOf(task: ImportTaskState): ImageState {
  const image = task.imageId ? current().ec2.state.images.get(task.imageId) : undefined;
  if (!image) {
    throw new Error(`LocalEc2 has no AMI for ${task.importTaskId} (status ${task.status})`);
  }
  return image;
}

function snapshotsOf(image: ImageState): SnapshotState[] {
  return image.blockDevices.map((d) => {
    const snapshot = current().ec2.state.snapshots.get(d.snapshotId);
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
  return current().ec2.callsTo('ImportImage').length;
}

/** The AMI and every snapshot carry exactly the user's tags and the engine's own. */
function expectOutputTags(image: ImageState, task: ImportTaskState, imp: SynthesizedImport, userTags: Record<string, string>): void {
  const expected = {
    ...userTags,
    [TAG_STACK_ID]: STACK_ID,
    [TAG_LOGICAL_ID]: imp.logicalId,
    [TAG_IMPORT_TASK_ID]: task.importTaskId,
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
      { format: 'VHDX', deviceName: '/dev/sdb', description: 'data disk', userBucket: { s3Bucket: SOURCE_BUCKET, s3Key: v.dataDiskKey } },
      { format: 'RAW', deviceName: '/dev/sdc', url: PRESIGNED_URL },
      { format: 'RAW', url: SCRATCH_URL },
      { format: 'VHD', description: 'logs disk', url: S3_URL },
      { format: 'VMDK', deviceName: '/dev/xvdf', userBucket: { s3Bucket: s.importBucketName, s3Key: 'pipeline/app.vmdk' } },
    ],
    encrypted: true,
    hypervisor: 'xen',
    kmsKeyId: s.kmsKeyArn,
    platform: 'Linux',
    roleName: s.mainRoleName,
    usageOperation: USAGE_OPERATION,
    licenseSpecifications: [LICENSE_ARN],
    tagSpecifications: [{ resourceType: 'import-image-task', tags: expect.any(Array) }],
  };
}

// ------------------------------------------------------------------ tests

describe('construct → CloudFormation → engine (state machine and bundled function) → LocalEc2', () => {
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

    test('the leaf checks find what is not a string, and the intrinsics left', () => {
      expect(nonStringLeaves({ a: ['x', 1], b: { c: true, d: null }, e: 'y' })).toEqual(['$.a[1] = 1', '$.b.c = true', '$.b.d = null']);
      expect(intrinsicsIn({ a: [{ Ref: 'X' }], b: { 'Fn::Join': ['', [{ 'Fn::GetAtt': ['Y', 'Arn'] }]] } })).toEqual(['Ref', 'Fn::Join', 'Fn::GetAtt']);
    });
  });

  test('the synthesized properties carry only known intrinsics and resolve to strings only, as CloudFormation delivers them', () => {
    for (const imp of [base.main, base.snapshot]) {
      expect(nonStringLeaves(imp.resolved)).toEqual([]);
      expect(intrinsicsIn(imp.resolved)).toEqual([]);
      const result = resolveCfn(imp.result.template, { refs: { ...base.deployed.refs, [imp.logicalId]: 'start-physical-id' }, attributes: base.deployed.attributes });
      expect(nonStringLeaves(result)).toEqual([]);
      expect(intrinsicsIn(result)).toEqual([]);
      // Both resources are the engine's function; the start resource names the stack's state machine.
      expect(imp.template).toMatchObject({ ServiceToken: { 'Fn::GetAtt': [base.handlerLogicalId, 'Arn'] }, StateMachineArn: { Ref: base.stateMachineLogicalId } });
      expect(delivered(imp)).toMatchObject({ ServiceToken: HANDLER_ARN, StateMachineArn: STATE_MACHINE_ARN });
      // The result reads the execution the start resource started: its Ref.
      expect(imp.result.template).toMatchObject({ ServiceToken: { 'Fn::GetAtt': [base.handlerLogicalId, 'Arn'] }, ExecutionArn: { Ref: imp.logicalId } });
      expect(Object.keys(imp.result.template).sort()).toEqual(['ExecutionArn', 'RemovalPolicy', 'ServiceTimeout', 'ServiceToken', 'Tags']);
      // CloudFormation waits 20 minutes for either answer, longer than the function's 15.
      expect(delivered(imp).ServiceTimeout).toBe('1200');
      expect(imp.result.template.ServiceTimeout).toBe('1200');
      // The WaitCondition's logical ID is a literal: the engine signals exactly that resource, created after the start resource and before the result.
      expect(imp.template.WaitConditionId).toBe(imp.waitConditionId);
      // Its construct ID carries the 12-character hash of what shapes the image; the logical ID adds CDK's path hash.
      expect(imp.waitConditionId).toMatch(/Wait[0-9A-F]{12}[0-9A-F]{8}$/);
      expect(imp.waitCondition.DependsOn).toContain(imp.logicalId);
      expect(imp.result.dependsOn).toContain(imp.waitConditionId);
      // CloudFormation must send the Deletes (and those of replaced resources): the engine applies the removal policy itself.
      for (const resource of [imp, imp.result]) {
        expect(resource.deletionPolicy).toBe('Delete');
        expect(resource.updateReplacePolicy).toBe('Delete');
      }
    }
    // What the main import's template holds besides plain strings: if this changes, check the resolver maps it right.
    expect([...new Set(intrinsicsIn(base.main.template))].sort()).toEqual(['Fn::GetAtt', 'Fn::Join', 'Fn::Sub', 'Ref']);
    expect(base.main.template).toMatchObject({
      RoleName: { Ref: expect.any(String) },
      KmsKeyId: { 'Fn::GetAtt': [expect.any(String), 'Arn'] },
    });
    // The WaitCondition waits the import's timeout (20 min), one poll (45 s) and 5 minutes for the signal.
    expect(base.main.waitCondition.CreationPolicy).toEqual({ ResourceSignal: { Count: 1, Timeout: 'PT25M45S' } });
    // A fully specified import synthesizes cleanly.
    const annotations = Annotations.fromStack(base.stack);
    expect(annotations.findError('*', Match.anyValue())).toEqual([]);
    expect(annotations.findWarning('*', Match.anyValue())).toEqual([]);
  });

  test('every prop of an import of asset, bucket and URL disks reaches ImportImage, the AMI and its snapshots as set; DESTROY removes them', async () => {
    const e = await startEngine();
    const { start, result } = await deployImport(base, base.main);
    const task = onlyTask();
    expect(task.status).toBe('completed');
    expect(executionInput(start.PhysicalResourceId)).toMatchObject({
      StackId: STACK_ID, LogicalResourceId: base.main.logicalId, WaitConditionId: base.main.waitConditionId,
    });

    // Each prop, as EC2 received it.
    const p = task.params;
    expect(p).toEqual(mainImportParams(base, BASE));
    expect(p.licenseType).toBeUndefined();
    expect(new Date(p.clientData?.uploadStart ?? '').toISOString()).toBe(UPLOAD_START.toISOString());
    expect(new Date(p.clientData?.uploadEnd ?? '').toISOString()).toBe(UPLOAD_END.toISOString());
    const userTags = userTagsOf(BASE);
    // The library's tags on the task: the stack's, and the name of the execution that started it.
    const execution = { [TAG_EXECUTION]: expect.stringMatching(/^vmimport-[0-9a-f]{40}$/) };
    expect(tagMap(p.tagSpecifications[0]?.tags ?? [])).toEqual({ ...userTags, [TAG_STACK_ID]: STACK_ID, ...execution });
    expect(p.tagSpecifications[0]?.tags).toHaveLength(Object.keys(userTags).length + 2);
    expect(tagMap(task.tags)).toEqual({ ...userTags, [TAG_STACK_ID]: STACK_ID, ...execution });

    // The asset disk points at exactly where cdk-assets publishes the file.
    const asset = base.assetManifest.files[sha256(EXAMPLE_VMDK)];
    expect(asset).toBeDefined();
    const destinations = Object.values(asset.destinations);
    expect(destinations).toHaveLength(1);
    const published = { s3Bucket: substitute(destinations[0].bucketName, {}, { refs: {}, attributes: {} }, 'asset bucket'), s3Key: destinations[0].objectKey };
    expect(p.diskContainers[0]?.userBucket).toEqual(published);
    expect(sha256(path.join(base.assemblyDir, asset.source.path))).toBe(sha256(EXAMPLE_VMDK));

    // The AMI as imported, its disks in order, and what the engine put on it and on every snapshot.
    const image = imageOf(task);
    expect(image).toMatchObject({ description: BASE.description, architecture: 'x86_64', platform: 'Linux', bootMode: 'legacy-bios', usageOperation: USAGE_OPERATION });
    expect(image.blockDevices.map((d) => d.deviceName)).toEqual(['/dev/sda1', '/dev/sdb', '/dev/sdc', '/dev/sdd', '/dev/sde', '/dev/xvdf']);
    expectOutputTags(image, task, base.main, userTags);
    for (const snapshot of snapshotsOf(image)) {
      expect(snapshot).toMatchObject({ encrypted: true, kmsKeyId: base.kmsKeyArn });
    }

    // What the construct reads back (imageId, snapshotIds, importTaskId) is what the result resource returned.
    const snapshotIds = image.blockDevices.map((d) => d.snapshotId);
    expect(result.PhysicalResourceId).toBe(image.imageId);
    const outputs = resolveCfn(base.outputs, {
      refs: {},
      attributes: Object.fromEntries(Object.entries(result.Data ?? {}).map(([name, value]) => [`${base.main.result.logicalId}.${name}`, value])),
    });
    expect(outputs).toEqual({
      ImageId: image.imageId,
      SnapshotIds: snapshotIds.join(','),
      FirstSnapshotId: snapshotIds[0],
      ImportTaskId: task.importTaskId,
    });

    // RemovalPolicy.DESTROY reached the result resource: CloudFormation's Delete (with the same properties) removes the AMI and every snapshot.
    const resultProperties = deliveredResult(base, base.main, start.PhysicalResourceId);
    expect(resultProperties).toMatchObject({ ExecutionArn: start.PhysicalResourceId, RemovalPolicy: 'destroy' });
    await deleteResource(RESULT_RESOURCE_TYPE, base.main.result, resultProperties, result.PhysicalResourceId);
    expect(e.ec2.state.images.has(image.imageId)).toBe(false);
    snapshotIds.forEach((id) => expect(e.ec2.state.snapshots.has(id)).toBe(false));
    await deleteResource(RESOURCE_TYPE, base.main, delivered(base.main), start.PhysicalResourceId);
    expect(importImageCalls()).toBe(1);
  });

  test('an import of an EBS snapshot, unencrypted, with licenseType alone and only stack tags, reaches ImportImage as set; RETAIN keeps the AMI and snapshot', async () => {
    const e = await startEngine();
    const { start, result } = await deployImport(base, base.snapshot);
    const task = onlyTask();
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
    expect(tagMap(task.params.tagSpecifications[0]?.tags ?? [])).toEqual({
      ...stackTags, [TAG_STACK_ID]: STACK_ID, [TAG_EXECUTION]: expect.stringMatching(/^vmimport-[0-9a-f]{40}$/),
    });
    expect(task.params.tagSpecifications[0]?.tags).toHaveLength(Object.keys(stackTags).length + 2);
    const image = imageOf(task);
    expect(result.PhysicalResourceId).toBe(image.imageId);
    expect(image).toMatchObject({ platform: 'Windows', bootMode: 'uefi' });
    expectOutputTags(image, task, base.snapshot, stackTags);
    for (const snapshot of snapshotsOf(image)) {
      expect(snapshot.encrypted).toBe(false);
    }
    // The default timeout and poll interval reach the execution too.
    expect(executionInput(start.PhysicalResourceId).PollIntervalSeconds).toBe(30);

    const resultProperties = deliveredResult(base, base.snapshot, start.PhysicalResourceId);
    expect(resultProperties.RemovalPolicy).toBe('retain');
    await deleteResource(RESULT_RESOURCE_TYPE, base.snapshot.result, resultProperties, result.PhysicalResourceId);
    await deleteResource(RESOURCE_TYPE, base.snapshot, delivered(base.snapshot), start.PhysicalResourceId);
    expect(e.ec2.state.images.get(image.imageId)?.state).toBe('available');
    image.blockDevices.forEach((d) => expect(e.ec2.state.snapshots.has(d.snapshotId)).toBe(true));
    expect(e.ec2.callsTo('DeregisterImage')).toHaveLength(0);
    expect(e.ec2.callsTo('DeleteSnapshot')).toHaveLength(0);
  });

  test('the timeout and poll interval arrive in seconds: the execution\'s deadline and interval are the synthesized ones, and the import is cancelled when the timeout runs out, not before', async () => {
    const e = await startEngine();
    const properties = delivered(base.main);
    const seconds = BASE.timeout.toSeconds();
    const poll = BASE.pollInterval.toSeconds();
    expect(properties).toMatchObject({ WaitTimeoutSeconds: String(seconds), PollIntervalSeconds: String(poll) });
    e.ec2.queueTaskBehaviour({ hold: true });

    const before = Date.now();
    const { start, result, execution } = await e.deploy(withoutServiceToken(properties), {
      logicalId: base.main.logicalId,
      resultLogicalId: base.main.result.logicalId,
      resultProps: (id) => withoutServiceToken(deliveredResult(base, base.main, id)),
    });
    const input = executionInput(start.PhysicalResourceId);
    expect(input.PollIntervalSeconds).toBe(poll);
    const deadline = Date.parse(input.Deadline);
    expect(deadline).toBeGreaterThanOrEqual(before + seconds * 1000);
    expect(deadline).toBeLessThanOrEqual(execution!.startDate.getTime() + seconds * 1000);

    // Polled every `poll` seconds of the execution's clock until the deadline: the first poll at or past it cancels.
    const polls = Math.ceil(seconds / poll);
    expect(e.ec2.callsTo('DescribeImportImageTasks')).toHaveLength(polls);
    expect(e.clockOffsetMs.get(start.PhysicalResourceId)).toBe(polls * poll * 1000);
    const task = onlyTask();
    expect(task.cancelReason).toBe(`cdk-vm-import: wait of ${seconds} s exceeded`);
    expect(execution?.status).toBe('FAILED');
    expect(result?.Status).toBe('FAILED');
    expect(result?.Reason).toContain(`VM import ${task.importTaskId} did not finish within ${seconds} seconds and was cancelled`);
    expect(e.ec2.state.images.size).toBe(0);
  });

  describe('an Update between two synthesized stacks', () => {
    type Expectation =
      | { readonly outcome: 'new import'; readonly params: Partial<ImportImageParams> }
      | { readonly outcome: 'in place'; readonly resultUpdated: boolean };

    test.each<[string, Partial<Variant>, string[], Expectation]>([
      ['bootMode', { bootMode: BootMode.UEFI }, ['BootMode', 'WaitConditionId'], { outcome: 'new import', params: { bootMode: 'uefi' } }],
      ['description', { description: 'Web server, rebuilt' }, ['Description', 'WaitConditionId'], { outcome: 'new import', params: { description: 'Web server, rebuilt' } }],
      ['a disk', { dataDiskKey: 'web/data-v2.vhdx' }, ['DiskContainers', 'WaitConditionId'], { outcome: 'new import', params: {} }],
      ['tags', { tags: { team: 'platform', owner: 'alice' } }, ['Tags'], { outcome: 'in place', resultUpdated: true }],
      ['the Tags.of(stack) tag', { stackTagValue: 'staging' }, ['Tags'], { outcome: 'in place', resultUpdated: true }],
      ['removalPolicy', { removalPolicy: RemovalPolicy.RETAIN }, ['RemovalPolicy'], { outcome: 'in place', resultUpdated: true }],
      ['timeout', { timeout: Duration.minutes(30) }, ['WaitTimeoutSeconds'], { outcome: 'in place', resultUpdated: false }],
      ['pollInterval', { pollInterval: Duration.minutes(1) }, ['PollIntervalSeconds'], { outcome: 'in place', resultUpdated: false }],
    ])('changing only %s', async (_prop, change, changedKeys, expectation) => {
      const e = await startEngine();
      const v: Variant = { ...BASE, ...change };
      const changed = synthesize(change);
      // The same resources, and only the expected wire properties differ.
      expect(changed.main.logicalId).toBe(base.main.logicalId);
      expect(changed.main.result.logicalId).toBe(base.main.result.logicalId);
      expect(changedProperties(delivered(base.main), delivered(changed.main))).toEqual(changedKeys);

      const first = await deployImport(base, base.main);
      const firstTask = onlyTask();
      const firstImage = imageOf(firstTask);
      const updated = await updateStack(base, changed, first);

      if (expectation.outcome === 'new import') {
        // A new WaitCondition, a new execution that signals it, and a new AMI.
        expect(changed.main.waitConditionId).not.toBe(base.main.waitConditionId);
        expect(updated.start.PhysicalResourceId).not.toBe(first.start.PhysicalResourceId);
        expect(e.sfn.executions.size).toBe(2);
        expect(e.sfn.executions.get(updated.start.PhysicalResourceId)?.status).toBe('SUCCEEDED');
        expect(executionInput(updated.start.PhysicalResourceId).WaitConditionId).toBe(changed.main.waitConditionId);
        expect(importImageCalls()).toBe(2);
        const second = taskOf(updated.result.Data?.ImportTaskId);
        expect(second.importTaskId).not.toBe(firstTask.importTaskId);
        expect(second.params).toEqual(mainImportParams(changed, v));
        expect(second.params).toMatchObject(expectation.params);
        expect(second.params.clientToken).not.toBe(firstTask.params.clientToken);
        const secondImage = imageOf(second);
        expect(updated.result.PhysicalResourceId).toBe(secondImage.imageId);
        expectOutputTags(secondImage, second, changed.main, userTagsOf(v));
        // The cleanup phase deleted the replaced result with its old properties (DESTROY): only the new AMI is left.
        expect([...e.ec2.state.images.keys()]).toEqual([secondImage.imageId]);
        expect(e.ec2.state.snapshots.size).toBe(secondImage.blockDevices.length);
      } else {
        // The same WaitCondition, the same execution, the same AMI.
        expect(changed.main.waitConditionId).toBe(base.main.waitConditionId);
        expect(updated.start.PhysicalResourceId).toBe(first.start.PhysicalResourceId);
        expect(e.sfn.executions.size).toBe(1);
        expect(importImageCalls()).toBe(1);
        expect(e.cfn.signals).toHaveLength(1);
        expect(updated.resultUpdated).toBe(expectation.resultUpdated);
        expect(updated.result).toMatchObject({ PhysicalResourceId: firstImage.imageId, Data: first.result.Data });
        // Re-tagged in place: new values set, removed keys gone.
        expectOutputTags(firstImage, firstTask, changed.main, userTagsOf(v));
        // The removal policy of the new properties applies from now on.
        const resultProperties = deliveredResult(changed, changed.main, updated.start.PhysicalResourceId);
        await deleteResource(RESULT_RESOURCE_TYPE, changed.main.result, resultProperties, updated.result.PhysicalResourceId);
        await deleteResource(RESOURCE_TYPE, changed.main, delivered(changed.main), updated.start.PhysicalResourceId);
        expect(e.ec2.state.images.has(firstImage.imageId)).toBe(v.removalPolicy === RemovalPolicy.RETAIN);
        firstImage.blockDevices.forEach((d) => expect(e.ec2.state.snapshots.has(d.snapshotId)).toBe(v.removalPolicy === RemovalPolicy.RETAIN));
      }
    });
  });
});
