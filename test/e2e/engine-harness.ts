/**
 * The whole engine offline: the state machine AS SYNTHESIZED runs in a LocalSfn, its
 * Lambda steps and both custom resources are answered by the BUNDLED function, its SDK
 * integration steps by the real `@aws-sdk/client-ec2`, and every AWS call goes to a local
 * server on 127.0.0.1 (LocalEc2, LocalSfn, LocalCloudFormation). HTTPS is blocked: a real
 * AWS endpoint is never reached. The clock that `$$.State.EnteredTime` reports moves one
 * poll interval per poll, so a 12-hour import runs in seconds.
 */
import * as fs from 'fs';
import type * as HttpsModule from 'https';
import * as os from 'os';
import * as path from 'path';
import { format } from 'util';
import * as ec2sdk from '@aws-sdk/client-ec2';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { HandlerModule, loadBundledHandler, LogCapture } from './drive';
import { LocalCloudFormation, CustomResourceResponse } from './local-cfn';
import { LocalEc2, LocalEc2Options } from './local-ec2';
import { LocalExecution, LocalSfn } from './local-sfn';
import { DiskImage, LicenseType, VmImageImport } from '../../src';

export const ACCOUNT = '123456789012';
export const REGION = 'us-east-1';
export const STACK_ID = `arn:aws:cloudformation:${REGION}:${ACCOUNT}:stack/VmImportStack/0f1e2d3c-4b5a-4978-8a9b-0c1d2e3f4a5b`;
export const HANDLER_ARN = `arn:aws:lambda:${REGION}:${ACCOUNT}:function:VmImportStack-CdkVmImportEngineHandler-AbCdEf`;
export const STATE_MACHINE_ARN = `arn:aws:states:${REGION}:${ACCOUNT}:stateMachine:CdkVmImportEngineStateMachine-AbCdEf`;

/** The state machine's definition as the construct synthesizes it, intrinsics resolved as CloudFormation would. */
let definition: Record<string, unknown> | undefined;

export function synthesizedDefinition(): Record<string, unknown> {
  definition ??= synthesize();
  return definition;
}

function synthesize(): Record<string, unknown> {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'engine-definition-'));
  try {
    return definitionOf(new App({ outdir }));
  } finally {
    fs.rmSync(outdir, { recursive: true, force: true });
  }
}

function definitionOf(app: App): Record<string, unknown> {
  const stack = new Stack(app, 'VmImportStack', { env: { account: ACCOUNT, region: REGION } });
  new VmImageImport(stack, 'Image', { diskImages: [DiskImage.fromUrl('s3://vm-images-bucket/web/disk1.vmdk')], licenseType: LicenseType.BYOL });
  const machines = Template.fromStack(stack).findResources('AWS::StepFunctions::StateMachine');
  const [machine] = Object.values(machines) as { Properties: { DefinitionString: unknown } }[];
  const resolve = (value: unknown): unknown => {
    if (typeof value === 'string' || value === null || typeof value !== 'object') {
      return value;
    }
    if (Array.isArray(value)) {
      return value.map(resolve);
    }
    const v = value as Record<string, unknown>;
    if ('Fn::Join' in v) {
      const [sep, parts] = v['Fn::Join'] as [string, unknown[]];
      return parts.map(resolve).join(sep);
    }
    if ('Ref' in v) {
      return ({ 'AWS::Partition': 'aws', 'AWS::Region': REGION, 'AWS::AccountId': ACCOUNT, 'AWS::StackId': STACK_ID } as Record<string, string>)[v.Ref as string] ?? `ref-${String(v.Ref)}`;
    }
    if ('Fn::GetAtt' in v) {
      const [logicalId] = v['Fn::GetAtt'] as [string, string];
      if (logicalId.startsWith('CdkVmImportEngineHandler')) {
        return HANDLER_ARN;
      }
      throw new Error(`unexpected GetAtt ${logicalId}`);
    }
    throw new Error(`unexpected intrinsic ${JSON.stringify(v)}`);
  };
  return JSON.parse(resolve(machine.Properties.DefinitionString) as string) as Record<string, unknown>;
}

/** The import role's name in the start resource's properties. */
export const IMPORT_ROLE = 'VmImportStack-VmImportRole0A1B2C3D-4E5F6A7B8C9D';
/** The key of the start resource's properties. */
export const KMS_KEY = `arn:aws:kms:us-east-1:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;

/**
 * A one-disk import's start resource properties, as the construct synthesizes them (every
 * value a string), with overrides (an override of undefined removes the property).
 */
export function startProps(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    StateMachineArn: STATE_MACHINE_ARN,
    DiskContainers: [{ Format: 'VMDK', S3Bucket: 'vm-images-bucket', S3Key: 'web/disk1.vmdk' }],
    RoleName: IMPORT_ROLE,
    Encrypted: 'true',
    KmsKeyId: KMS_KEY,
    LicenseType: 'BYOL',
    Tags: [{ Key: 'team', Value: 'infra' }],
    RemovalPolicy: 'retain',
    WaitTimeoutSeconds: String(6 * 3600),
    PollIntervalSeconds: '30',
    WaitConditionId: 'WebServerImageWait0123456789AB',
    ...overrides,
  };
}

/** A two-disk arm64 import on the snapshot route (RAW boot disk, VMDK data disk), as the construct synthesizes it. */
export function snapshotRouteProps(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return startProps({
    DiskContainers: [
      { Format: 'RAW', S3Bucket: 'vm-images-bucket', S3Key: 'arm/boot.raw' },
      { Format: 'VMDK', S3Bucket: 'vm-images-bucket', S3Key: 'arm/data.vmdk', DeviceName: '/dev/xvdf' },
    ],
    LicenseType: undefined,
    ImportMethod: 'snapshots',
    Architecture: 'arm64',
    BootMode: 'uefi',
    ImageName: 'arm-server-1.0',
    ...overrides,
  });
}

/** A LocalEc2 resource's tags as a map. */
export const tagsOf = (resource: { tags: { key: string; value: string }[] } | undefined): Record<string, string> =>
  Object.fromEntries((resource?.tags ?? []).map((t) => [t.key, t.value]));

export interface EngineOptions {
  readonly ec2?: LocalEc2Options;
  /** VM_IMPORT_IAM_RETRY_SECONDS for the function. @default 120 */
  readonly iamRetrySeconds?: number;
  /** Real milliseconds a Wait state takes (LocalSfnOptions.waitMs). @default 0 */
  readonly waitMs?: number;
}

type Props = Record<string, unknown>;

export interface Deployment {
  readonly start: CustomResourceResponse;
  readonly result?: CustomResourceResponse;
  readonly execution?: LocalExecution;
}

export interface DeployOptions {
  /** The start resource's logical ID. @default 'WebServerImage' */
  readonly logicalId?: string;
  /** Runs after the start resource is created, before CloudFormation creates the WaitCondition. */
  readonly beforeWaitCondition?: () => Promise<void> | void;
  /** The result resource's logical ID. @default - the start resource's, then 'Result' */
  readonly resultLogicalId?: string;
  /**
   * The result resource's properties (without ServiceToken), given the start resource's
   * physical ID (its Ref), e.g. as resolved from a synthesized template.
   * @default - ExecutionArn, and the start properties' Tags and RemovalPolicy
   */
  readonly resultProps?: (startPhysicalResourceId: string) => Props;
}

/** The engine on local servers, with helpers that play CloudFormation's part. */
export class Engine {
  public static async start(options: EngineOptions = {}): Promise<Engine> {
    const engine = new Engine();
    try {
      await engine.init(options);
    } catch (error) {
      await engine.stop();
      throw error;
    }
    return engine;
  }

  public ec2!: LocalEc2;
  public sfn!: LocalSfn;
  public cfn!: LocalCloudFormation;
  public readonly capture = new LogCapture();
  public readonly blockedRequests: string[] = [];
  /** How far each execution's clock is ahead of real time: one poll interval per poll. */
  public readonly clockOffsetMs = new Map<string, number>();
  /** Invocations of the function by the state machine, per execution ARN. */
  public readonly stepInvocations = new Map<string, number>();
  private handler!: HandlerModule;
  private client!: ec2sdk.EC2Client;
  private readonly restore: (() => void)[] = [];
  private requests = 0;

  public async stop(): Promise<void> {
    await this.sfn?.stop();
    this.capture.stop();
    await this.ec2?.stop();
    await this.cfn?.stop();
    this.client?.destroy();
    this.restore.splice(0).reverse().forEach((undo) => undo());
  }

  /** Sends one custom resource request to the bundled function and returns the response CloudFormation received. */
  public async request(
    requestType: 'Create' | 'Update' | 'Delete', resourceType: string, logicalId: string, props: Props,
    extra: { physicalResourceId?: string; oldProps?: Props; requestId?: string; stackId?: string } = {},
  ): Promise<CustomResourceResponse> {
    // A request delivered again keeps its RequestId (and its ResponseURL).
    const requestId = extra.requestId ?? `request-${++this.requests}-${logicalId}`;
    await this.handler.handler({
      RequestType: requestType,
      RequestId: requestId,
      StackId: extra.stackId ?? STACK_ID,
      LogicalResourceId: logicalId,
      ResourceType: resourceType,
      PhysicalResourceId: extra.physicalResourceId,
      ResourceProperties: { ServiceToken: HANDLER_ARN, ...props },
      OldResourceProperties: extra.oldProps ? { ServiceToken: HANDLER_ARN, ...extra.oldProps } : undefined,
      ResponseURL: this.cfn.responseUrl(requestId),
      ServiceToken: HANDLER_ARN,
    });
    const response = this.cfn.responseTo(requestId);
    if (!response) {
      throw new Error(`no response was sent for ${requestId}`);
    }
    return response;
  }

  /**
   * Creates one import as CloudFormation would: the start resource, then the WaitCondition
   * (which waits for its signal), then the result resource.
   */
  public async deploy(props: Props, options: DeployOptions = {}): Promise<Deployment> {
    const logicalId = options.logicalId ?? 'WebServerImage';
    const start = await this.request('Create', 'Custom::VmImageImport', logicalId, props);
    if (start.Status !== 'SUCCESS') {
      return { start };
    }
    await options.beforeWaitCondition?.();
    this.cfn.createWaitCondition(STACK_ID, String(props.WaitConditionId));
    const execution = this.sfn.executions.get(start.PhysicalResourceId);
    await this.until(() => this.cfn.signalsTo(String(props.WaitConditionId)).length > 0 || execution?.status !== 'RUNNING');
    if (this.cfn.signalsTo(String(props.WaitConditionId)).length === 0) {
      return { start, execution };
    }
    await execution?.done;
    const resultProps = options.resultProps?.(start.PhysicalResourceId)
      ?? { ExecutionArn: start.PhysicalResourceId, Tags: props.Tags, RemovalPolicy: props.RemovalPolicy };
    const result = await this.request('Create', 'Custom::VmImageImportResult', options.resultLogicalId ?? `${logicalId}Result`, resultProps);
    return { start, result, execution };
  }

  /** Waits (in real time, bounded) until the condition holds. */
  public async until(condition: () => boolean, limitMs = 30_000): Promise<void> {
    const deadline = Date.now() + limitMs;
    while (!condition()) {
      if (Date.now() > deadline) {
        throw new Error('the condition did not hold within the time limit');
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  private async init(options: EngineOptions): Promise<void> {
    const https = jest.requireActual<typeof HttpsModule>('https');
    const block = (...args: unknown[]): never => {
      this.blockedRequests.push(format(args[0]));
      throw new Error('an HTTPS request was attempted; only the local servers may be contacted');
    };
    const spies = [jest.spyOn(https, 'request').mockImplementation(block), jest.spyOn(https, 'get').mockImplementation(block)];
    this.restore.push(() => spies.forEach((spy) => spy.mockRestore()));

    this.ec2 = await LocalEc2.start({ accountId: ACCOUNT, region: REGION, ...options.ec2 });
    this.cfn = await LocalCloudFormation.start();
    this.client = new ec2sdk.EC2Client({
      endpoint: this.ec2.endpoint, region: REGION, credentials: { accessKeyId: 'x', secretAccessKey: 'x' }, maxAttempts: 1,
    });
    this.sfn = await LocalSfn.start({
      definition: synthesizedDefinition(),
      stateMachineArn: STATE_MACHINE_ARN,
      waitMs: options.waitMs,
      now: (arn) => Date.now() + (arn ? this.clockOffsetMs.get(arn) ?? 0 : 0),
      answer: (resource, stateName, input, execution) => this.answer(resource, stateName, input, execution),
    });
    const env: Record<string, string> = {
      AWS_ENDPOINT_URL_EC2: this.ec2.endpoint,
      AWS_ENDPOINT_URL_SFN: this.sfn.endpoint,
      AWS_ENDPOINT_URL_CLOUDFORMATION: this.cfn.endpoint,
      AWS_REGION: REGION,
      AWS_ACCESS_KEY_ID: 'AKIDLOCALTEST',
      AWS_SECRET_ACCESS_KEY: 'local-test-secret',
      AWS_EC2_METADATA_DISABLED: 'true',
      VM_IMPORT_IAM_RETRY_SECONDS: String(options.iamRetrySeconds ?? 120),
    };
    const saved = Object.fromEntries([...Object.keys(env), 'AWS_SESSION_TOKEN', 'AWS_PROFILE', 'AWS_ENDPOINT_URL'].map((k) => [k, process.env[k]]));
    this.restore.push(() => {
      for (const [key, value] of Object.entries(saved)) {
        if (value === undefined) {
          delete process.env[key];
        } else {
          process.env[key] = value;
        }
      }
    });
    delete process.env.AWS_SESSION_TOKEN;
    delete process.env.AWS_PROFILE;
    delete process.env.AWS_ENDPOINT_URL;
    this.handler = loadBundledHandler(env);
    this.capture.start();
  }

  private advanceClock(execution: LocalExecution): void {
    const poll = Number((JSON.parse(execution.input) as { PollIntervalSeconds: number }).PollIntervalSeconds) * 1000;
    this.clockOffsetMs.set(execution.arn, (this.clockOffsetMs.get(execution.arn) ?? 0) + poll);
  }

  private async answer(resource: string, stateName: string, input: unknown, execution: LocalExecution): Promise<never> {
    const roundTrip = (value: unknown) => JSON.parse(JSON.stringify(value ?? null)) as never;
    if (resource === HANDLER_ARN && stateName === 'PollSnapshots') {
      // The Wait before this poll took one poll interval. (The step's Now was read as the state was
      // entered, just before this: the snapshot route sees its deadline one poll later than the image route.)
      this.advanceClock(execution);
    }
    if (resource === HANDLER_ARN) {
      this.stepInvocations.set(execution.arn, (this.stepInvocations.get(execution.arn) ?? 0) + 1);
      return roundTrip(await this.handler.handler(input as never));
    }
    const sdk = /^arn:aws:states:::aws-sdk:ec2:(\w+)$/.exec(resource);
    if (!sdk) {
      throw new Error(`unexpected Task resource ${resource} in ${stateName}`);
    }
    if (stateName === 'DescribeImport' || stateName === 'DescribeCopy') {
      // The Wait before this poll took one poll interval.
      this.advanceClock(execution);
    }
    const commandName = `${sdk[1][0].toUpperCase()}${sdk[1].slice(1)}Command` as keyof typeof ec2sdk;
    const Command = ec2sdk[commandName] as unknown as new (i: unknown) => Parameters<ec2sdk.EC2Client['send']>[0];
    const { $metadata: _m, ...output } = await this.client.send(new Command(input)) as { $metadata?: unknown };
    return roundTrip(output);
  }
}
