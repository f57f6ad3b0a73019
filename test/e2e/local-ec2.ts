/**
 * A small, stateful emulation of the EC2 Query API (protocol `ec2`, API version
 * 2016-11-15) for end-to-end tests of the VM Import custom resource handler.
 *
 * It speaks the wire format of the real service closely enough for the real
 * `@aws-sdk/client-ec2` to talk to it: form-encoded POST (or GET) requests in,
 * `<XxxResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">` documents out,
 * errors as `<Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>`.
 *
 * Request parameter names follow the SDK's ec2 query serializer (flattened lists,
 * `ec2QueryName` or capitalised member names), e.g. `DiskContainer.1.UserBucket.S3Bucket`,
 * `TagSpecification.1.Tag.1.Key`, `LicenseSpecifications.1.LicenseConfigurationArn`,
 * `ImportTaskId.1`, `Filters.1.Value.1` (DescribeImportImageTasks) but `Filter.1.Value.1`
 * (DescribeImages, DescribeSnapshots), `ResourceId.1`, `Tag.1.Key`, `ImageId.1`, `Owner.1`;
 * ImportSnapshot's single disk is `DiskContainer.Format` (no index), RegisterImage's
 * mappings `BlockDeviceMapping.1.Ebs.SnapshotId`.
 * Response element names are the `xmlName`s its deserializer reads, e.g.
 * `importTaskId`, `snapshotDetailSet/item`, `imagesSet/item`, `imageState`, `blockDeviceMapping/item/ebs`,
 * `importSnapshotTaskSet/item/snapshotTaskDetail`.
 *
 * It only ever listens on 127.0.0.1 and never contacts anything else.
 */
import { randomBytes, randomUUID } from 'crypto';
import * as http from 'http';
import { AddressInfo } from 'net';

/** The EC2 API version this emulator answers. */
export const EC2_API_VERSION = '2016-11-15';
const XMLNS = `http://ec2.amazonaws.com/doc/${EC2_API_VERSION}/`;
const MAX_BODY_BYTES = 1024 * 1024;
const MAX_TAGS_PER_RESOURCE = 50;

/** Decoded query parameters of one request (`Action` and `Version` removed). */
export type QueryParams = Readonly<Record<string, string>>;

/** An error the emulator answers with, in EC2's own terms. */
export interface Ec2Fault {
  /** HTTP status, e.g. 400, 500, 503. */
  readonly status: number;
  /** EC2 error code, e.g. `RequestLimitExceeded`; becomes the SDK error's `name`. */
  readonly code: string;
  /** Error message; becomes the SDK error's `message`. */
  readonly message: string;
  /**
   * Run the action first, then answer with the fault instead of its result: EC2 did
   * the work but the response was lost (e.g. a 500 after ImportImage created the task).
   * @default false
   */
  readonly afterAction?: boolean;
}

/** One request received, in arrival order (faulted and failed requests included). */
export interface CallRecord {
  readonly action: string;
  readonly params: QueryParams;
  /** Set when the request was answered by an injected fault. */
  readonly injectedFault?: Ec2Fault;
  /** HTTP status of the answer (filled in once answered). */
  status: number;
  /** EC2 error code of the answer, when it was an error. */
  errorCode?: string;
}

export interface Ec2Tag {
  readonly key: string;
  readonly value: string;
}

export interface UserBucketParams {
  readonly s3Bucket?: string;
  readonly s3Key?: string;
}

export interface DiskContainerParams {
  readonly description?: string;
  readonly deviceName?: string;
  readonly format?: string;
  readonly snapshotId?: string;
  readonly url?: string;
  readonly userBucket?: UserBucketParams;
}

export interface ClientDataParams {
  readonly comment?: string;
  readonly uploadStart?: string;
  readonly uploadEnd?: string;
  readonly uploadSize?: number;
}

export interface TagSpecificationParams {
  readonly resourceType?: string;
  readonly tags: readonly Ec2Tag[];
}

/** Everything an ImportImage request carried, decoded. */
export interface ImportImageParams {
  readonly architecture?: string;
  readonly bootMode?: string;
  readonly clientData?: ClientDataParams;
  readonly clientToken?: string;
  readonly description?: string;
  readonly diskContainers: readonly DiskContainerParams[];
  readonly encrypted?: boolean;
  readonly hypervisor?: string;
  readonly kmsKeyId?: string;
  readonly licenseType?: string;
  readonly platform?: string;
  readonly roleName?: string;
  readonly usageOperation?: string;
  readonly licenseSpecifications: readonly string[];
  readonly tagSpecifications: readonly TagSpecificationParams[];
}

/** How an import task behaves as DescribeImportImageTasks calls come in. */
export interface TaskBehaviour {
  /**
   * Number of DescribeImportImageTasks calls after which the task is `completed`
   * (the Nth call reports it completed).
   * @default 3
   */
  readonly stagesToComplete?: number;
  /**
   * Fail instead of completing: the `stages`th describe call reports the task
   * `deleted` with `message` as StatusMessage. Takes precedence over `stagesToComplete`.
   */
  readonly failAfter?: { readonly stages: number; readonly message: string };
  /** Stay `active` (no progress) until released with `setTaskBehaviour`, cancelled or `completeNow`. */
  readonly hold?: boolean;
  /** DiskImageSize reported per disk, in bytes. @default 1073741824 */
  readonly diskImageSizeBytes?: number;
  /** Size of each resulting snapshot/EBS volume, in GiB. @default 8 */
  readonly volumeSizeGiB?: number;
  /** Platform "detected" when the request named none. @default 'Linux' */
  readonly detectedPlatform?: 'Linux' | 'Windows';
  /** Architecture "detected" when the request named none. @default 'x86_64' */
  readonly detectedArchitecture?: string;
}

export type ImportTaskStatus = 'active' | 'deleting' | 'deleted' | 'completed';

export interface SnapshotDetailState {
  description?: string;
  deviceName: string;
  diskImageSize: number;
  format?: string;
  snapshotId?: string;
  status: string;
  url?: string;
  userBucket?: UserBucketParams;
}

export interface ImportTaskState {
  readonly importTaskId: string;
  readonly params: ImportImageParams;
  /** Raw request parameters, used for ClientToken idempotency checks. */
  readonly rawParams: QueryParams;
  readonly createdAt: Date;
  status: ImportTaskStatus;
  statusMessage?: string;
  progress?: string;
  /** Number of describe calls that advanced this task so far. */
  stage: number;
  behaviour: TaskBehaviour;
  tags: Ec2Tag[];
  /** Outside the 7-day listing window: absent from DescribeImportImageTasks results. */
  expired: boolean;
  cancelReason?: string;
  imageId?: string;
  platform?: string;
  architecture?: string;
  bootMode?: string;
  licenseType?: string;
  encrypted?: boolean;
  kmsKeyId?: string;
  snapshotDetails: SnapshotDetailState[];
}

/** The one disk an ImportSnapshot request names. */
export interface SnapshotDiskContainerParams {
  readonly description?: string;
  readonly format?: string;
  readonly url?: string;
  readonly userBucket?: UserBucketParams;
}

/** Everything an ImportSnapshot request carried, decoded. */
export interface ImportSnapshotParams {
  readonly clientData?: ClientDataParams;
  readonly clientToken?: string;
  readonly description?: string;
  /** Undefined when the request had no `DiskContainer.*` parameter at all. */
  readonly diskContainer?: SnapshotDiskContainerParams;
  readonly encrypted?: boolean;
  readonly kmsKeyId?: string;
  readonly roleName?: string;
  readonly tagSpecifications: readonly TagSpecificationParams[];
}

/** How an import snapshot task behaves as DescribeImportSnapshotTasks calls list it. */
export interface SnapshotTaskBehaviour {
  /**
   * Number of DescribeImportSnapshotTasks calls listing the task after which it is
   * `completed` (the Nth such call reports it completed).
   * @default 3
   */
  readonly stagesToComplete?: number;
  /**
   * Fail instead of completing: the `stages`th listing call reports the task `deleted`
   * with `message` as StatusMessage (EC2 reports a failed import that way).
   * Takes precedence over `stagesToComplete`.
   */
  readonly failAfter?: { readonly stages: number; readonly message: string };
  /** Stay `active` (no progress) until released with `setSnapshotTaskBehaviour`, cancelled or completed by hand. */
  readonly hold?: boolean;
  /** DiskImageSize reported once the download has started, in bytes. @default 1073741824 */
  readonly diskImageSizeBytes?: number;
  /** Size of the resulting snapshot, in GiB. @default 8 */
  readonly volumeSizeGiB?: number;
}

export interface ImportSnapshotTaskState {
  /** `import-snap-` and 17 hex digits. */
  readonly importTaskId: string;
  readonly params: ImportSnapshotParams;
  /** Raw request parameters, used for ClientToken idempotency checks. */
  readonly rawParams: QueryParams;
  readonly createdAt: Date;
  status: ImportTaskStatus;
  statusMessage?: string;
  progress?: string;
  /** Number of describe calls that advanced this task so far. */
  stage: number;
  behaviour: SnapshotTaskBehaviour;
  tags: Ec2Tag[];
  cancelReason?: string;
  /** Set once completed. */
  snapshotId?: string;
  diskImageSize: number;
  /** Upper case, as EC2 reports it. */
  format?: string;
  encrypted: boolean;
  /** As asked for while active; once completed, as asked for or the EBS default key's ARN. */
  kmsKeyId?: string;
}

export interface BlockDeviceState {
  readonly deviceName: string;
  readonly snapshotId: string;
  readonly volumeSize: number;
  readonly encrypted: boolean;
  readonly kmsKeyId?: string;
  /** @default 'gp2' (what imported AMIs report) */
  readonly volumeType?: string;
  /** @default true */
  readonly deleteOnTermination?: boolean;
}

export interface ImageState {
  readonly imageId: string;
  readonly name: string;
  readonly description?: string;
  readonly ownerId: string;
  readonly creationDate: string;
  readonly architecture: string;
  /** `Windows` or `Linux` as imported (the DescribeImages `platform` field is only set for Windows). */
  readonly platform: string;
  readonly bootMode?: string;
  readonly usageOperation: string;
  readonly rootDeviceName: string;
  readonly blockDevices: readonly BlockDeviceState[];
  readonly importTaskId?: string;
  state: string;
  tags: Ec2Tag[];
  /** Launch permissions (ModifyImageAttribute): whom the AMI is shared with. */
  launchPermissions?: LaunchPermissionState[];
  /** `v2.0` once set: ImdsSupport cannot be unset. */
  imdsSupport?: string;
  /** Why a copy failed (DescribeImages' StateReason). */
  stateReason?: { readonly code: string; readonly message: string };
  /** For a copy: the AMI it was copied from, and CopyImage's ClientToken. */
  readonly sourceImageId?: string;
  readonly copyToken?: string;
  /** `hvm` or `paravirtual`. @default 'hvm' (imported AMIs are HVM) */
  readonly virtualizationType?: string;
  /**
   * ENA support. Undefined means `true` (imported AMIs have it); `false` is omitted from
   * DescribeImages, as EC2 omits `enaSupport` for images registered without it.
   */
  readonly enaSupport?: boolean;
  /** `v2.0` for NitroTPM (RegisterImage's TpmSupport). */
  readonly tpmSupport?: string;
  /** RegisterImage's UefiData (the UEFI variable store), read back through DescribeImageAttribute `uefiData`. */
  readonly uefiData?: string;
}

export interface LaunchPermissionState {
  readonly userId?: string;
  readonly organizationArn?: string;
  readonly organizationalUnitArn?: string;
}

export interface SnapshotState {
  readonly snapshotId: string;
  readonly ownerId: string;
  readonly volumeSize: number;
  readonly encrypted: boolean;
  readonly kmsKeyId?: string;
  readonly description: string;
  readonly startTime: Date;
  state: string;
  tags: Ec2Tag[];
}

/** Live view of the emulator's resources. */
export interface LocalEc2State {
  readonly tasks: ReadonlyMap<string, ImportTaskState>;
  /** ImportSnapshot tasks (`import-snap-…`). */
  readonly snapshotTasks: ReadonlyMap<string, ImportSnapshotTaskState>;
  readonly images: ReadonlyMap<string, ImageState>;
  readonly snapshots: ReadonlyMap<string, SnapshotState>;
}

export interface LocalEc2Options {
  /** Account that owns created images and snapshots. @default '123456789012' */
  readonly accountId?: string;
  /** Region used in ARNs. @default 'us-east-1' */
  readonly region?: string;
  /** Default behaviour of new import tasks. */
  readonly taskBehaviour?: TaskBehaviour;
  /** Default behaviour of new import snapshot tasks. */
  readonly snapshotTaskBehaviour?: SnapshotTaskBehaviour;
  /**
   * Error code for a well-formed but unknown import task id. Real EC2 answers
   * `InvalidConversionTaskId.Malformed` even for well-formed ids it does not know
   * (e.g. from another Region); set `InvalidConversionTaskId.NotFound` to test the other spelling.
   * @default 'InvalidConversionTaskId.Malformed'
   */
  readonly unknownImportTaskErrorCode?: string;
  /**
   * EC2's concurrent-import quota: ImportImage and ImportSnapshot are refused with
   * `ResourceCountLimitExceeded` while this many tasks (image and snapshot tasks together)
   * are active. The real number, code and whether the two share one quota are not documented.
   * @default - no quota
   */
  readonly maxActiveTasks?: number;
  /**
   * Eventual consistency: a new task is not listed by DescribeImportImageTasks (or, for
   * a snapshot task, DescribeImportSnapshotTasks) asking for it by ID for its first this
   * many describe calls (the list comes back empty).
   * @default 0
   */
  readonly unlistedDescribes?: number;
  /**
   * After its AMI is deregistered, DeleteSnapshot answers `InvalidSnapshot.InUse` this
   * many times per snapshot before it succeeds.
   * @default 0
   */
  readonly snapshotInUseAfterDeregister?: number;
  /**
   * A copy (CopyImage) is `pending` for this many DescribeImages calls that list it, then
   * `available`. @default 2
   */
  readonly copyPendingDescribes?: number;
  /**
   * Eventual consistency: DescribeImages by ID answers `InvalidAMIID.NotFound` for a new
   * copy this many times (EC2's API reference: a resource just created may not be visible
   * to other calls at once). @default 0
   */
  readonly copyUnlistedDescribes?: number;
}

/** StatusMessage of an active import task, in the order EC2 reports them. */
export const IMPORT_STAGES: readonly string[] = [
  'pending', 'validating', 'validated', 'converting', 'updating', 'preparing to boot', 'booting', 'preparing ami',
];
export const CANCELLED_MESSAGE = 'User-initiated task cancellation';

/**
 * StatusMessage of an active import snapshot task, in order. Our model: `pending` and
 * `downloading/converting` appear in AWS's DescribeImportSnapshotTasks examples;
 * `validating`/`validated` are borrowed from image imports and are not confirmed for
 * snapshot tasks. A completed task has neither StatusMessage nor Progress (as in AWS's example).
 */
export const SNAPSHOT_IMPORT_STAGES: readonly string[] = ['pending', 'validating', 'validated', 'downloading/converting'];

const DEFAULT_BEHAVIOUR = {
  stagesToComplete: 3,
  diskImageSizeBytes: 1073741824,
  volumeSizeGiB: 8,
  detectedPlatform: 'Linux',
  detectedArchitecture: 'x86_64',
} as const;

/** An error answered to the client. */
class Ec2Error extends Error {
  constructor(public readonly code: string, message: string, public readonly status = 400) {
    super(message);
  }
}

interface QueuedFault {
  readonly fault: Ec2Fault;
  remaining: number;
}

interface Filter {
  readonly name: string;
  readonly values: readonly string[];
}

type ActionHandler = (params: QueryParams) => string;

/** A local EC2 Query API endpoint on 127.0.0.1 with VM Import (image and snapshot), image, snapshot and tag actions. */
export class LocalEc2 {
  /** Starts a server on 127.0.0.1 on a free port. */
  public static async start(options: LocalEc2Options = {}): Promise<LocalEc2> {
    const ec2 = new LocalEc2(options);
    await ec2.listen();
    return ec2;
  }

  /** Every request received, in order. */
  public readonly calls: CallRecord[] = [];
  private readonly accountId: string;
  private readonly region: string;
  private readonly unknownTaskCode: string;
  private readonly defaultBehaviour: TaskBehaviour;
  private readonly defaultSnapshotBehaviour: SnapshotTaskBehaviour;
  private readonly server: http.Server;
  private readonly tasks = new Map<string, ImportTaskState>();
  private readonly snapshotTasks = new Map<string, ImportSnapshotTaskState>();
  private readonly images = new Map<string, ImageState>();
  private readonly snapshots = new Map<string, SnapshotState>();
  private readonly faults = new Map<string, QueuedFault[]>();
  private readonly behaviourQueue: TaskBehaviour[] = [];
  private readonly snapshotBehaviourQueue: SnapshotTaskBehaviour[] = [];
  private readonly maxActiveTasks?: number;
  private readonly unlistedDescribes: number;
  private readonly inUseAfterDeregister: number;
  private readonly copyPendingDescribes: number;
  private readonly copyUnlistedDescribes: number;
  /** Copies still pending: DescribeImages listings left before they end. */
  private readonly copying = new Map<string, { left: number; unlisted: number; failWith?: string }>();
  private readonly copyFailures: string[] = [];
  /** Snapshots of deregistered AMIs, with how many more InUse answers they get. */
  private readonly releasing = new Map<string, number>();
  /** Describe calls each new task stays unlisted for. */
  private readonly unlisted = new Map<string, number>();
  /**
   * The race EC2 documents for cancelling: when set, a CancelImportTask on an active task
   * finds it about to finish: the task completes and the cancel is refused.
   */
  public completeOnCancel = false;
  /**
   * EBS encryption by default of the account and Region (GetEbsEncryptionByDefault,
   * GetEbsDefaultKmsKeyId): off unless set; its key is `alias/aws/ebs` (the AWS managed key)
   * unless another is named.
   */
  public ebsEncryptionByDefault?: { readonly kmsKeyId?: string };
  /** The most tasks that were active at once. */
  public peakActiveTasks = 0;
  private readonly handlers: Readonly<Record<string, ActionHandler>>;
  private port = 0;

  private constructor(options: LocalEc2Options) {
    this.accountId = options.accountId ?? '123456789012';
    this.region = options.region ?? 'us-east-1';
    this.unknownTaskCode = options.unknownImportTaskErrorCode ?? 'InvalidConversionTaskId.Malformed';
    this.defaultBehaviour = options.taskBehaviour ?? {};
    this.defaultSnapshotBehaviour = options.snapshotTaskBehaviour ?? {};
    this.maxActiveTasks = options.maxActiveTasks;
    this.unlistedDescribes = options.unlistedDescribes ?? 0;
    this.inUseAfterDeregister = options.snapshotInUseAfterDeregister ?? 0;
    this.copyPendingDescribes = options.copyPendingDescribes ?? 2;
    this.copyUnlistedDescribes = options.copyUnlistedDescribes ?? 0;
    this.server = http.createServer((req, res) => {
      void this.handle(req, res);
    });
    this.handlers = {
      ImportImage: (p) => this.importImage(p),
      DescribeImportImageTasks: (p) => this.describeImportImageTasks(p),
      CancelImportTask: (p) => this.cancelImportTask(p),
      CreateTags: (p) => this.createTags(p),
      DeleteTags: (p) => this.deleteTags(p),
      DescribeImages: (p) => this.describeImages(p),
      DeregisterImage: (p) => this.deregisterImage(p),
      DescribeSnapshots: (p) => this.describeSnapshots(p),
      DeleteSnapshot: (p) => this.deleteSnapshot(p),
      ModifyImageAttribute: (p) => this.modifyImageAttribute(p),
      DescribeImageAttribute: (p) => this.describeImageAttribute(p),
      CopyImage: (p) => this.copyImage(p),
      ImportSnapshot: (p) => this.importSnapshot(p),
      DescribeImportSnapshotTasks: (p) => this.describeImportSnapshotTasks(p),
      RegisterImage: (p) => this.registerImage(p),
      GetEbsEncryptionByDefault: () => el('ebsEncryptionByDefault', String(!!this.ebsEncryptionByDefault)) + el('sseType', 'sse-ebs'),
      GetEbsDefaultKmsKeyId: () => el('kmsKeyId', this.ebsEncryptionByDefault?.kmsKeyId ?? 'alias/aws/ebs'),
    };
  }

  /** Base URL to pass as the SDK client's `endpoint`. */
  public get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Live maps of tasks, snapshot tasks, images and snapshots. */
  public get state(): LocalEc2State {
    return { tasks: this.tasks, snapshotTasks: this.snapshotTasks, images: this.images, snapshots: this.snapshots };
  }

  /** Stops listening and drops open (keep-alive) connections. */
  public async stop(): Promise<void> {
    if (!this.server.listening) {
      return;
    }
    await new Promise<void>((resolve, reject) => {
      this.server.close((err) => (err ? reject(err) : resolve()));
      this.server.closeAllConnections();
    });
  }

  /**
   * Answers the next `times` requests for `action` (or `'*'` for any action) with
   * `fault` instead of running them. Faults queue up in order.
   */
  public failNext(action: string, fault: Ec2Fault, times = 1): void {
    const queue = this.faults.get(action) ?? [];
    queue.push({ fault, remaining: times });
    this.faults.set(action, queue);
  }

  /** Behaviour of the next task created by ImportImage (queued, first in first out). */
  public queueTaskBehaviour(behaviour: TaskBehaviour): void {
    this.behaviourQueue.push(behaviour);
  }

  /** Drops the behaviours queued for import tasks that were never started. */
  public clearQueuedBehaviours(): void {
    this.behaviourQueue.splice(0);
    this.snapshotBehaviourQueue.splice(0);
  }

  /** Replaces the behaviour of an existing task (e.g. to release a `hold`). */
  public setTaskBehaviour(importTaskId: string, behaviour: TaskBehaviour): void {
    this.requireTask(importTaskId).behaviour = behaviour;
  }

  /** Simulates the 7-day listing window: the task disappears from describe results. */
  public expireTask(importTaskId: string): void {
    this.requireTask(importTaskId).expired = true;
  }

  /** Completes an active task at once (creating its AMI and snapshots); returns the AMI. */
  public completeNow(importTaskId: string): ImageState {
    const task = this.requireTask(importTaskId);
    if (task.status !== 'active') {
      throw new Error(`task ${importTaskId} is ${task.status}, not active`);
    }
    return this.completeTask(task);
  }

  /** Fails an active task at once: `deleted` with `message`. */
  public failNow(importTaskId: string, message: string): void {
    const task = this.requireTask(importTaskId);
    if (task.status !== 'active') {
      throw new Error(`task ${importTaskId} is ${task.status}, not active`);
    }
    failTask(task, message);
  }

  /** Behaviour of the next task created by ImportSnapshot (queued, first in first out). */
  public queueSnapshotTaskBehaviour(behaviour: SnapshotTaskBehaviour): void {
    this.snapshotBehaviourQueue.push(behaviour);
  }

  /** Replaces the behaviour of an existing snapshot task (e.g. to release a `hold`). */
  public setSnapshotTaskBehaviour(importTaskId: string, behaviour: SnapshotTaskBehaviour): void {
    this.requireSnapshotTask(importTaskId).behaviour = behaviour;
  }

  /** Completes an active snapshot task at once (creating its snapshot); returns the snapshot. */
  public completeSnapshotTaskNow(importTaskId: string): SnapshotState {
    const task = this.requireSnapshotTask(importTaskId);
    if (task.status !== 'active') {
      throw new Error(`snapshot task ${importTaskId} is ${task.status}, not active`);
    }
    return this.completeSnapshotTask(task);
  }

  /** Fails an active snapshot task at once: `deleted` with `message`. */
  public failSnapshotTaskNow(importTaskId: string, message: string): void {
    const task = this.requireSnapshotTask(importTaskId);
    if (task.status !== 'active') {
      throw new Error(`snapshot task ${importTaskId} is ${task.status}, not active`);
    }
    failTask(task, message);
  }

  /** Removes an AMI as if a user had deregistered it by hand (its snapshots stay). */
  public deleteImageOutOfBand(imageId: string): void {
    if (!this.images.delete(imageId)) {
      throw new Error(`no image ${imageId}`);
    }
  }

  /** Requests received for one action. */
  /** The next copy (CopyImage) ends `failed` with this StateReason message instead of becoming available. */
  public failNextCopy(message: string): void {
    this.copyFailures.push(message);
  }

  public callsTo(action: string): CallRecord[] {
    return this.calls.filter((c) => c.action === action);
  }

  /** Forgets all resources, calls, queued faults and queued behaviours. */
  public reset(): void {
    this.calls.length = 0;
    this.behaviourQueue.length = 0;
    this.snapshotBehaviourQueue.length = 0;
    this.tasks.clear();
    this.snapshotTasks.clear();
    this.images.clear();
    this.snapshots.clear();
    this.faults.clear();
  }

  private async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.port = (this.server.address() as AddressInfo).port;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const requestId = randomUUID();
    let body: string;
    try {
      body = await readBody(req);
    } catch (err) {
      sendXml(res, 413, requestId, errorXml('RequestEntityTooLarge', errorMessage(err), requestId));
      return;
    }
    const all = parseQuery(req.url ?? '/', body);
    const action = all.Action ?? '';
    const params = withoutKeys(all, ['Action', 'Version']);
    const fault = this.takeFault(action);
    const call: CallRecord = { action, params, injectedFault: fault, status: 0 };
    this.calls.push(call);
    if (fault?.afterAction) {
      this.run(action, params);
    }
    const answer = fault ? { status: fault.status, code: fault.code, message: fault.message } : this.run(action, params);
    call.status = answer.status;
    if ('xml' in answer) {
      sendXml(res, 200, requestId, responseXml(action, requestId, answer.xml));
      return;
    }
    call.errorCode = answer.code;
    sendXml(res, answer.status, requestId, errorXml(answer.code, answer.message, requestId));
  }

  private run(action: string, params: QueryParams): { status: 200; xml: string } | Ec2Fault {
    const handler = Object.prototype.hasOwnProperty.call(this.handlers, action) ? this.handlers[action] : undefined;
    try {
      if (!handler) {
        throw new Ec2Error('InvalidAction', `The action ${action || '(none)'} is not valid for this web service.`);
      }
      if (parseBool(params.DryRun)) {
        throw new Ec2Error('DryRunOperation', 'Request would have succeeded, but DryRun flag is set.', 412);
      }
      return { status: 200, xml: handler(params) };
    } catch (err) {
      if (err instanceof Ec2Error) {
        return { status: err.status, code: err.code, message: err.message };
      }
      return { status: 500, code: 'InternalError', message: `An internal error has occurred: ${errorMessage(err)}` };
    }
  }

  private takeFault(action: string): Ec2Fault | undefined {
    for (const key of [action, '*']) {
      const queue = this.faults.get(key);
      const head = queue?.[0];
      if (queue && head) {
        head.remaining -= 1;
        if (head.remaining <= 0) {
          queue.shift();
        }
        return head.fault;
      }
    }
    return undefined;
  }

  // ---------------------------------------------------------------- import tasks

  private importImage(p: QueryParams): string {
    const params = parseImportImageParams(p);
    validateImportImage(params);
    const existing = params.clientToken ? this.findByClientToken(params.clientToken) : undefined;
    if (existing) {
      if (canonical(existing.rawParams) !== canonical(p)) {
        throw new Ec2Error('IdempotentParameterMismatch',
          'Arguments on this idempotent request are inconsistent with arguments used in previous request(s).');
      }
      return taskXml(existing, false);
    }
    const active = this.checkActiveTaskQuota('image');
    const task = this.createTask(params, p);
    this.peakActiveTasks = Math.max(this.peakActiveTasks, active + 1);
    if (this.unlistedDescribes > 0) {
      this.unlisted.set(task.importTaskId, this.unlistedDescribes);
    }
    return taskXml(task, false);
  }

  /**
   * The concurrent-import quota (`maxActiveTasks`), shared by image and snapshot tasks in
   * our model (AWS documents one "concurrent import tasks" quota for VM Import; whether
   * ImportSnapshot counts against the same number is not confirmed). Returns the active count.
   */
  private checkActiveTaskQuota(kind: 'image' | 'snapshot'): number {
    const active = [...this.tasks.values(), ...this.snapshotTasks.values()].filter((t) => t.status === 'active').length;
    if (this.maxActiveTasks !== undefined && active >= this.maxActiveTasks) {
      throw new Ec2Error('ResourceCountLimitExceeded', `You have reached the maximum number of active import ${kind} tasks (${this.maxActiveTasks}).`);
    }
    return active;
  }

  /**
   * The IDs among `ids` still unlisted (eventual consistency), counting this describe call
   * against each of them.
   */
  private takeUnlisted(ids: readonly string[]): Set<string> {
    return new Set(ids.filter((id) => {
      const left = this.unlisted.get(id);
      if (left === undefined) {
        return false;
      }
      if (left <= 1) {
        this.unlisted.delete(id);
      } else {
        this.unlisted.set(id, left - 1);
      }
      return true;
    }));
  }

  private createTask(params: ImportImageParams, rawParams: QueryParams): ImportTaskState {
    const importTaskId = newId('import-ami');
    const behaviour = this.behaviourQueue.shift() ?? this.defaultBehaviour;
    const task: ImportTaskState = {
      importTaskId,
      params,
      rawParams,
      createdAt: new Date(),
      status: 'active',
      stage: 0,
      behaviour,
      tags: params.tagSpecifications.flatMap((s) => s.tags),
      expired: false,
      platform: params.platform,
      architecture: params.architecture,
      bootMode: params.bootMode,
      licenseType: params.licenseType,
      encrypted: params.encrypted,
      kmsKeyId: params.kmsKeyId,
      snapshotDetails: params.diskContainers.map((c, i) => ({
        description: c.description,
        deviceName: c.deviceName ?? deviceName(i),
        diskImageSize: 0,
        format: reportedFormat(c.format),
        status: 'active',
        url: c.url,
        userBucket: c.userBucket,
      })),
    };
    setStage(task);
    this.tasks.set(importTaskId, task);
    return task;
  }

  private findByClientToken(token: string): ImportTaskState | undefined {
    return [...this.tasks.values()].find((t) => t.params.clientToken === token);
  }

  private describeImportImageTasks(p: QueryParams): string {
    const ids = scalarList(p, 'ImportTaskId');
    const filters = parseFilters(p, 'Filters');
    const hidden = this.takeUnlisted(ids);
    ids.filter((id) => !hidden.has(id)).forEach((id) => this.lookupTask(id));
    for (const task of this.tasks.values()) {
      this.advanceTask(task);
    }
    const selected = ids.length > 0
      ? ids.filter((id) => !hidden.has(id)).map((id) => this.lookupTask(id)).filter((t) => !t.expired)
      : [...this.tasks.values()].filter((t) => !t.expired);
    const matching = selected.filter((t) => filters.every((f) => matchesFilter(f, taskFilterValues(t, f.name))));
    const page = paginate(matching, p);
    return xmlSet('importImageTaskSet', page.items.map((t) => taskXml(t, true))) + el('nextToken', page.nextToken);
  }

  private advanceTask(task: ImportTaskState): void {
    if (!task.expired) {
      advanceLifeCycle(task, (t) => this.completeTask(t), setStage);
    }
  }

  private completeTask(task: ImportTaskState): ImageState {
    const b = task.behaviour;
    const params = task.params;
    const encrypted = params.encrypted === true;
    const kmsKeyArn = encrypted ? this.kmsKeyArn(params.kmsKeyId) : undefined;
    const volumeSize = b.volumeSizeGiB ?? DEFAULT_BEHAVIOUR.volumeSizeGiB;
    const blockDevices = task.snapshotDetails.map((detail) => {
      const snapshot = this.createSnapshot(task.importTaskId, volumeSize, encrypted, kmsKeyArn);
      detail.snapshotId = snapshot.snapshotId;
      detail.status = 'completed';
      detail.diskImageSize = b.diskImageSizeBytes ?? DEFAULT_BEHAVIOUR.diskImageSizeBytes;
      return { deviceName: detail.deviceName, snapshotId: snapshot.snapshotId, volumeSize, encrypted, kmsKeyId: kmsKeyArn };
    });
    const platform = canonicalCase(params.platform, ['Windows', 'Linux']) ?? b.detectedPlatform ?? DEFAULT_BEHAVIOUR.detectedPlatform;
    const architecture = params.architecture?.toLowerCase() ?? b.detectedArchitecture ?? DEFAULT_BEHAVIOUR.detectedArchitecture;
    const licenseType = canonicalCase(params.licenseType, ['AWS', 'BYOL']) ?? (platform === 'Windows' ? 'AWS' : 'BYOL');
    const image: ImageState = {
      imageId: newId('ami'),
      name: task.importTaskId,
      description: params.description,
      ownerId: this.accountId,
      creationDate: new Date().toISOString(),
      architecture,
      platform,
      bootMode: params.bootMode ?? 'legacy-bios',
      usageOperation: params.usageOperation ?? usageOperationFor(platform, licenseType),
      rootDeviceName: blockDevices[0]?.deviceName ?? deviceName(0),
      blockDevices,
      importTaskId: task.importTaskId,
      state: 'available',
      tags: [],
    };
    this.images.set(image.imageId, image);
    task.status = 'completed';
    task.statusMessage = undefined;
    task.progress = undefined;
    task.imageId = image.imageId;
    task.platform = platform;
    task.architecture = architecture;
    task.bootMode = image.bootMode;
    task.licenseType = licenseType;
    task.encrypted = encrypted;
    task.kmsKeyId = params.kmsKeyId ?? kmsKeyArn;
    return image;
  }

  private createSnapshot(importTaskId: string, volumeSize: number, encrypted: boolean, kmsKeyId?: string): SnapshotState {
    const snapshot: SnapshotState = {
      snapshotId: newId('snap'),
      ownerId: this.accountId,
      volumeSize,
      encrypted,
      kmsKeyId,
      description: `Created by AWS-VMImport service for ${importTaskId}`,
      startTime: new Date(),
      state: 'completed',
      tags: [],
    };
    this.snapshots.set(snapshot.snapshotId, snapshot);
    return snapshot;
  }

  private kmsKeyArn(kmsKeyId: string | undefined): string {
    const prefix = `arn:aws:kms:${this.region}:${this.accountId}`;
    if (!kmsKeyId) {
      return `${prefix}:alias/aws/ebs`;
    }
    if (kmsKeyId.startsWith('arn:')) {
      return kmsKeyId;
    }
    return kmsKeyId.startsWith('alias/') ? `${prefix}:${kmsKeyId}` : `${prefix}:key/${kmsKeyId}`;
  }

  /**
   * Cancelling a task that is no longer active (completed, deleting, deleted) answers
   * `IncorrectState` (HTTP 400). The exact code real EC2 uses here is not documented;
   * `IncorrectState` is EC2's documented common code for "the resource is in an incorrect
   * state for the request", so a handler should read any 400 from CancelImportTask as
   * "nothing left to cancel" rather than depend on this spelling.
   */
  private cancelImportTask(p: QueryParams): string {
    const id = requireParam(p, 'ImportTaskId');
    if (id.startsWith('import-snap-')) {
      return this.cancelSnapshotTask(id, p.CancelReason);
    }
    const task = this.lookupTask(id);
    if (task.expired) {
      throw this.unknownTask(id);
    }
    if (task.status === 'active' && this.completeOnCancel) {
      this.completeTask(task);
    }
    if (task.status !== 'active') {
      throw new Ec2Error('IncorrectState', `The import task ${id} is in the ${task.status} state and cannot be cancelled.`);
    }
    task.status = 'deleting';
    task.statusMessage = CANCELLED_MESSAGE;
    task.cancelReason = p.CancelReason;
    return el('importTaskId', id) + el('previousState', 'active') + el('state', 'deleting');
  }

  private lookupTask(id: string): ImportTaskState {
    if (!/^import-ami-[0-9a-f]{8}([0-9a-f]{9})?$/.test(id)) {
      throw new Ec2Error('InvalidConversionTaskId.Malformed', `Invalid id: "${id}" (expecting "import-ami-...")`);
    }
    const task = this.tasks.get(id);
    if (!task) {
      throw this.unknownTask(id);
    }
    return task;
  }

  private unknownTask(id: string): Ec2Error {
    return new Ec2Error(this.unknownTaskCode, `The import task ID '${id}' does not exist`);
  }

  private requireTask(id: string): ImportTaskState {
    const task = this.tasks.get(id);
    if (!task) {
      throw new Error(`no import task ${id}`);
    }
    return task;
  }

  // ---------------------------------------------------------------- import snapshot tasks

  /**
   * ImportSnapshot: one disk (VHD, VMDK or RAW) to one EBS snapshot, no OS conversion.
   * Idempotent on ClientToken exactly as ImportImage is here (the same token with the same
   * parameters answers the same task; other parameters are IdempotentParameterMismatch).
   * Tokens of ImportImage and ImportSnapshot are looked up separately in our model: EC2
   * scopes idempotency per action, and a token shared across the two is not specified.
   */
  private importSnapshot(p: QueryParams): string {
    const params = parseImportSnapshotParams(p);
    validateImportSnapshot(params);
    const existing = params.clientToken
      ? [...this.snapshotTasks.values()].find((t) => t.params.clientToken === params.clientToken)
      : undefined;
    if (existing) {
      if (canonical(existing.rawParams) !== canonical(p)) {
        throw new Ec2Error('IdempotentParameterMismatch',
          'Arguments on this idempotent request are inconsistent with arguments used in previous request(s).');
      }
      return snapshotTaskXml(existing);
    }
    const active = this.checkActiveTaskQuota('snapshot');
    const task = this.createSnapshotTask(params, p);
    this.peakActiveTasks = Math.max(this.peakActiveTasks, active + 1);
    if (this.unlistedDescribes > 0) {
      this.unlisted.set(task.importTaskId, this.unlistedDescribes);
    }
    return snapshotTaskXml(task);
  }

  private createSnapshotTask(params: ImportSnapshotParams, rawParams: QueryParams): ImportSnapshotTaskState {
    const task: ImportSnapshotTaskState = {
      importTaskId: newId('import-snap'),
      params,
      rawParams,
      createdAt: new Date(),
      status: 'active',
      stage: 0,
      behaviour: this.snapshotBehaviourQueue.shift() ?? this.defaultSnapshotBehaviour,
      tags: params.tagSpecifications.flatMap((s) => s.tags),
      diskImageSize: 0,
      format: params.diskContainer?.format?.toUpperCase(),
      encrypted: params.encrypted === true,
      kmsKeyId: params.kmsKeyId,
    };
    setSnapshotStage(task);
    this.snapshotTasks.set(task.importTaskId, task);
    return task;
  }

  /**
   * DescribeImportSnapshotTasks: by `ImportTaskId.N`, or every task. Each call advances,
   * by one stage, every task it lists (named, or all of them when none is named), before
   * filtering. Filters: `task-state` and the tag filters, as for image tasks here; which
   * filter names real EC2 accepts for this action is not documented. Tasks are not expired
   * in this model (EC2 lists them for 7 days).
   */
  private describeImportSnapshotTasks(p: QueryParams): string {
    const ids = scalarList(p, 'ImportTaskId');
    const filters = parseFilters(p, 'Filters');
    const hidden = this.takeUnlisted(ids);
    const selected = ids.length > 0
      ? unique(ids.filter((id) => !hidden.has(id))).map((id) => this.lookupSnapshotTask(id))
      : [...this.snapshotTasks.values()];
    selected.forEach((task) => this.advanceSnapshotTask(task));
    const matching = selected.filter((t) => filters.every((f) => matchesFilter(f, snapshotTaskFilterValues(t, f.name))));
    const page = paginate(matching, p);
    return xmlSet('importSnapshotTaskSet', page.items.map(snapshotTaskXml)) + el('nextToken', page.nextToken);
  }

  private advanceSnapshotTask(task: ImportSnapshotTaskState): void {
    advanceLifeCycle(task, (t) => this.completeSnapshotTask(t), setSnapshotStage);
  }

  /**
   * The snapshot of a completed task: encrypted with the key asked for (`Encrypted` alone:
   * EBS's default key, `alias/aws/ebs`), sized from the behaviour, described as VM Import
   * describes its snapshots, `completed` at once.
   */
  private completeSnapshotTask(task: ImportSnapshotTaskState): SnapshotState {
    const b = task.behaviour;
    const kmsKeyArn = task.encrypted ? this.kmsKeyArn(task.params.kmsKeyId) : undefined;
    const snapshot = this.createSnapshot(task.importTaskId, b.volumeSizeGiB ?? DEFAULT_BEHAVIOUR.volumeSizeGiB, task.encrypted, kmsKeyArn);
    task.status = 'completed';
    task.statusMessage = undefined;
    task.progress = undefined;
    task.snapshotId = snapshot.snapshotId;
    task.diskImageSize = b.diskImageSizeBytes ?? DEFAULT_BEHAVIOUR.diskImageSizeBytes;
    task.kmsKeyId = task.params.kmsKeyId ?? kmsKeyArn;
    return snapshot;
  }

  /** As for image tasks: active → `deleting` (then `deleted` on the next listing), `completeOnCancel` and refusals included. */
  private cancelSnapshotTask(id: string, reason: string | undefined): string {
    const task = this.lookupSnapshotTask(id);
    if (task.status === 'active' && this.completeOnCancel) {
      this.completeSnapshotTask(task);
    }
    if (task.status !== 'active') {
      throw new Ec2Error('IncorrectState', `The import task ${id} is in the ${task.status} state and cannot be cancelled.`);
    }
    task.status = 'deleting';
    task.statusMessage = CANCELLED_MESSAGE;
    task.cancelReason = reason;
    return el('importTaskId', id) + el('previousState', 'active') + el('state', 'deleting');
  }

  private lookupSnapshotTask(id: string): ImportSnapshotTaskState {
    if (!/^import-snap-[0-9a-f]{8}([0-9a-f]{9})?$/.test(id)) {
      throw new Ec2Error('InvalidConversionTaskId.Malformed', `Invalid id: "${id}" (expecting "import-snap-...")`);
    }
    return this.snapshotTasks.get(id) ?? throwError(this.unknownTask(id));
  }

  private requireSnapshotTask(id: string): ImportSnapshotTaskState {
    const task = this.snapshotTasks.get(id);
    if (!task) {
      throw new Error(`no import snapshot task ${id}`);
    }
    return task;
  }

  // ---------------------------------------------------------------- tags

  private createTags(p: QueryParams): string {
    const resources = this.taggableResources(p);
    const tags = structList(p, 'Tag').map((t) => ({ key: t.Key ?? '', value: t.Value ?? '' }));
    if (tags.length === 0) {
      throw new Ec2Error('MissingParameter', 'The request must contain the parameter Tag');
    }
    tags.forEach(validateTag);
    for (const resource of resources) {
      const merged = mergeTags(resource.tags, tags);
      if (merged.length > MAX_TAGS_PER_RESOURCE) {
        throw new Ec2Error('TagLimitExceeded', `The maximum number of Tags for a resource has been reached (${MAX_TAGS_PER_RESOURCE}).`);
      }
    }
    resources.forEach((r) => { r.tags = mergeTags(r.tags, tags); });
    return el('return', true);
  }

  /** DeleteTags: a Tag with a Value deletes only that key/value pair; without Value, the key; no Tag at all, every tag. */
  private deleteTags(p: QueryParams): string {
    const resources = this.taggableResources(p);
    const selectors = structList(p, 'Tag').map((t) => ({ key: t.Key ?? '', value: t.Value }));
    for (const resource of resources) {
      resource.tags = selectors.length === 0
        ? []
        : resource.tags.filter((tag) => !selectors.some((s) => s.key === tag.key && (s.value === undefined || s.value === tag.value)));
    }
    return el('return', true);
  }

  private taggableResources(p: QueryParams): { tags: Ec2Tag[] }[] {
    const ids = scalarList(p, 'ResourceId');
    if (ids.length === 0) {
      throw new Ec2Error('MissingParameter', 'The request must contain the parameter ResourceId');
    }
    return ids.map((id) => this.taggable(id));
  }

  private taggable(id: string): { tags: Ec2Tag[] } {
    if (id.startsWith('ami-')) {
      checkIdFormat(id, 'ami', 'InvalidAMIID.Malformed');
      return this.images.get(id) ?? throwError(imageNotFound([id]));
    }
    if (id.startsWith('snap-')) {
      checkIdFormat(id, 'snap', 'InvalidSnapshotID.Malformed');
      return this.snapshots.get(id) ?? throwError(snapshotNotFound(id));
    }
    const task = id.startsWith('import-ami-') ? this.tasks.get(id) : undefined;
    if (task && !task.expired) {
      return task;
    }
    const snapshotTask = id.startsWith('import-snap-') ? this.snapshotTasks.get(id) : undefined;
    if (snapshotTask) {
      return snapshotTask;
    }
    throw new Ec2Error('InvalidID', `The ID '${id}' is not valid`);
  }

  // ---------------------------------------------------------------- images

  /**
   * CopyImage within the Region: a new AMI (`pending`, then `available` or `failed`) with
   * new snapshots, named as asked (names are unique per account and Region), encrypted with
   * the key asked for (`KmsKeyId` needs `Encrypted`; `Encrypted` alone takes EBS's default
   * key; neither keeps the source's encryption), tagged from TagSpecifications (image and
   * snapshot) as it is made, idempotent on ClientToken.
   */
  private copyImage(p: QueryParams): string {
    const sourceId = requireParam(p, 'SourceImageId');
    const sourceRegion = requireParam(p, 'SourceRegion');
    const name = requireParam(p, 'Name');
    checkIdFormat(sourceId, 'ami', 'InvalidAMIID.Malformed');
    if (sourceRegion !== this.region) {
      throw new Ec2Error('InvalidParameterValue', `This model copies within ${this.region} only; SourceRegion is ${sourceRegion}.`);
    }
    const token = p.ClientToken;
    const again = token ? [...this.images.values()].find((img) => img.copyToken === token) : undefined;
    if (again) {
      if (again.sourceImageId !== sourceId || again.name !== name) {
        throw new Ec2Error('IdempotentParameterMismatch', 'Arguments on this idempotent request are inconsistent with arguments used in previous request(s).');
      }
      return el('imageId', again.imageId);
    }
    if (!/^[A-Za-z0-9()[\] ./\-'@_]{3,128}$/.test(name)) {
      throw new Ec2Error('InvalidAMIName.Malformed', 'AMI names must be between 3 and 128 characters long, and may contain letters, numbers, \'(\', \')\', \'.\', \'-\', \'/\' and \'_\'');
    }
    const source = this.images.get(sourceId) ?? throwError(imageNotFound([sourceId]));
    if (source.state !== 'available') {
      throw new Ec2Error('IncorrectState', `Image ${sourceId} is not in a valid state for this operation: ${source.state}.`);
    }
    const taken = [...this.images.values()].find((img) => img.ownerId === this.accountId && img.name === name);
    if (taken) {
      throw new Ec2Error('InvalidAMIName.Duplicate', `AMI name ${name} is already in use by AMI ${taken.imageId}`);
    }
    const encrypted = parseBool(p.Encrypted);
    if (p.KmsKeyId !== undefined && !encrypted) {
      throw new Ec2Error('InvalidParameterDependency', 'The parameter KmsKeyId requires the parameter Encrypted to be set.');
    }
    const specs = structList(p, 'TagSpecification').map((spec) => ({
      resourceType: spec.ResourceType,
      tags: structList(spec, 'Tag').map((t) => ({ key: t.Key ?? '', value: t.Value ?? '' })),
    }));
    for (const spec of specs) {
      if (spec.resourceType !== 'image' && spec.resourceType !== 'snapshot') {
        throw new Ec2Error('InvalidParameterValue', `'${spec.resourceType ?? ''}' is not a valid taggable resource type for this operation.`);
      }
      spec.tags.forEach(validateTag);
      if (spec.tags.length > MAX_TAGS_PER_RESOURCE) {
        throw new Ec2Error('TagLimitExceeded', `The maximum number of Tags for a resource has been reached (${MAX_TAGS_PER_RESOURCE}).`);
      }
    }
    const tagsFor = (type: string) => specs.filter((spec) => spec.resourceType === type).flatMap((spec) => spec.tags);
    const blockDevices = source.blockDevices.map((device) => {
      const keepsKey = !encrypted && device.encrypted;
      const kmsKeyId = encrypted ? this.kmsKeyArn(p.KmsKeyId) : keepsKey ? device.kmsKeyId : undefined;
      const snapshot = this.createSnapshot(source.importTaskId ?? sourceId, device.volumeSize, encrypted || device.encrypted, kmsKeyId);
      snapshot.state = 'pending';
      snapshot.tags = tagsFor('snapshot');
      return { ...device, snapshotId: snapshot.snapshotId, encrypted: snapshot.encrypted, kmsKeyId };
    });
    const copy: ImageState = {
      ...source,
      imageId: newId('ami'),
      name,
      description: p.Description,
      creationDate: new Date().toISOString(),
      blockDevices,
      importTaskId: undefined,
      state: 'pending',
      tags: tagsFor('image'),
      launchPermissions: undefined,
      imdsSupport: undefined,
      stateReason: undefined,
      sourceImageId: sourceId,
      copyToken: token,
    };
    this.images.set(copy.imageId, copy);
    this.copying.set(copy.imageId, { left: this.copyPendingDescribes, unlisted: this.copyUnlistedDescribes, failWith: this.copyFailures.shift() });
    return el('imageId', copy.imageId);
  }

  /**
   * RegisterImage from EBS snapshots (the snapshot route). Our model of EC2's rules, each
   * refusal with an EC2-style code:
   * - `Name` is required and follows the AMI name rules (as CopyImage here), unique among
   *   the account's images (`InvalidAMIName.Duplicate`).
   * - Defaults are EC2's documented ones: `Architecture` i386, `VirtualizationType`
   *   paravirtual. `BootMode` absent stays unset (the instance type decides), except for
   *   arm64, whose images boot UEFI only and are reported as `uefi`.
   * - `RootDeviceName` is required (`MissingParameter`) and must be the DeviceName of one
   *   mapping (`InvalidBlockDeviceMapping`); the root mapping needs a snapshot.
   * - Every mapping must name an EBS snapshot of this account (others:
   *   `InvalidSnapshot.NotFound`, as EC2 hides snapshots it does not share) that is
   *   `completed` (`IncorrectState`); empty volumes, instance-store and NoDevice mappings
   *   are not modelled and are refused. `Ebs.Encrypted` with `Ebs.SnapshotId` is
   *   `InvalidParameterCombination` (the API reference: encryption comes from the snapshot).
   *   `Ebs.VolumeSize` below the snapshot's size is `InvalidBlockDeviceMapping`.
   * - `arm64` needs `hvm`; `TpmSupport` (only `v2.0`) needs `BootMode` `uefi` (NitroTPM is
   *   UEFI only; `uefi-preferred` is refused with it in our model); `ImdsSupport` only `v2.0`;
   *   `BootMode` only legacy-bios, uefi or uefi-preferred. `arm64` with `legacy-bios` is
   *   refused here too: *unconfirmed* whether EC2 refuses it at RegisterImage or only at launch.
   * - `TagSpecification.N.ResourceType` must be `image` (the API reference: other values fail).
   * - The SDK's RegisterImageRequest has no ClientToken, so none is modelled.
   * The new AMI is `available` at once: registering EBS snapshots takes seconds at most
   * (no copy is made), so no pending phase is modelled. Platform is Linux/UNIX
   * (usageOperation `RunInstances`): no billing product is carried over.
   */
  private registerImage(p: QueryParams): string {
    const name = requireParam(p, 'Name');
    if (!/^[A-Za-z0-9()[\] ./\-'@_]{3,128}$/.test(name)) {
      throw new Ec2Error('InvalidAMIName.Malformed', 'AMI names must be between 3 and 128 characters long, and may contain letters, numbers, spaces, \'(\', \')\', \'[\', \']\', \'.\', \'/\', \'-\', \'\'\', \'@\' and \'_\'');
    }
    checkOneOf('Architecture', p.Architecture, ['i386', 'x86_64', 'arm64', 'x86_64_mac', 'arm64_mac']);
    checkOneOf('VirtualizationType', p.VirtualizationType, ['hvm', 'paravirtual']);
    checkOneOf('BootMode', p.BootMode, ['legacy-bios', 'uefi', 'uefi-preferred']);
    checkOneOf('TpmSupport', p.TpmSupport, ['v2.0']);
    checkOneOf('ImdsSupport', p.ImdsSupport, ['v2.0']);
    const architecture = canonicalCase(p.Architecture, ['i386', 'x86_64', 'arm64', 'x86_64_mac', 'arm64_mac']) ?? 'i386';
    const virtualizationType = canonicalCase(p.VirtualizationType, ['hvm', 'paravirtual']) ?? 'paravirtual';
    const askedBootMode = canonicalCase(p.BootMode, ['legacy-bios', 'uefi', 'uefi-preferred']);
    const arm = architecture === 'arm64' || architecture === 'arm64_mac';
    if (arm && virtualizationType === 'paravirtual') {
      throw new Ec2Error('InvalidParameterCombination', `Virtualization type 'paravirtual' is not supported for architecture '${architecture}'; use 'hvm'.`);
    }
    if (arm && askedBootMode === 'legacy-bios') {
      throw new Ec2Error('InvalidParameterCombination', `Boot mode 'legacy-bios' is not supported for architecture '${architecture}'.`);
    }
    if (p.TpmSupport !== undefined && askedBootMode !== 'uefi') {
      throw new Ec2Error('InvalidParameterCombination', 'TpmSupport v2.0 requires BootMode uefi.');
    }
    const rootDeviceName = requireParam(p, 'RootDeviceName');
    const blockDevices = this.registeredBlockDevices(structList(p, 'BlockDeviceMapping'));
    if (!blockDevices.some((d) => d.deviceName === rootDeviceName)) {
      throw new Ec2Error('InvalidBlockDeviceMapping', `The root device name ${rootDeviceName} is not the device name of any block device mapping.`);
    }
    const specs = parseTagSpecifications(p);
    for (const spec of specs) {
      if (spec.resourceType !== 'image') {
        throw new Ec2Error('InvalidParameterValue', `'${spec.resourceType ?? ''}' is not a valid taggable resource type for this operation.`);
      }
      spec.tags.forEach(validateTag);
    }
    const tags = specs.flatMap((spec) => spec.tags);
    if (tags.length > MAX_TAGS_PER_RESOURCE) {
      throw new Ec2Error('TagLimitExceeded', `The maximum number of Tags for a resource has been reached (${MAX_TAGS_PER_RESOURCE}).`);
    }
    const taken = [...this.images.values()].find((img) => img.ownerId === this.accountId && img.name === name);
    if (taken) {
      throw new Ec2Error('InvalidAMIName.Duplicate', `AMI name ${name} is already in use by AMI ${taken.imageId}`);
    }
    const image: ImageState = {
      imageId: newId('ami'),
      name,
      description: p.Description,
      ownerId: this.accountId,
      creationDate: new Date().toISOString(),
      architecture,
      platform: 'Linux',
      bootMode: askedBootMode ?? (arm ? 'uefi' : undefined),
      usageOperation: 'RunInstances',
      rootDeviceName,
      blockDevices,
      state: 'available',
      tags,
      imdsSupport: p.ImdsSupport,
      virtualizationType,
      enaSupport: parseBool(p.EnaSupport),
      tpmSupport: p.TpmSupport,
      uefiData: p.UefiData,
    };
    this.images.set(image.imageId, image);
    return el('imageId', image.imageId);
  }

  /** RegisterImage's `BlockDeviceMapping.N`, checked against the snapshots they name. */
  private registeredBlockDevices(mappings: readonly QueryParams[]): BlockDeviceState[] {
    if (mappings.length === 0) {
      throw new Ec2Error('MissingParameter', 'The request must contain the parameter BlockDeviceMapping');
    }
    const seen = new Set<string>();
    return mappings.map((m, i) => {
      const device = m.DeviceName ?? throwError(new Ec2Error('MissingParameter', `The request must contain the parameter BlockDeviceMapping.${i + 1}.DeviceName`));
      if (seen.has(device)) {
        throw new Ec2Error('InvalidBlockDeviceMapping', `The device name ${device} is used more than once.`);
      }
      seen.add(device);
      const ebs = sub(m, 'Ebs');
      const snapshotId = ebs.SnapshotId;
      if (snapshotId === undefined) {
        throw new Ec2Error('InvalidBlockDeviceMapping', `Block device ${device}: this model registers EBS snapshots only (Ebs.SnapshotId is required).`);
      }
      if (ebs.Encrypted !== undefined) {
        throw new Ec2Error('InvalidParameterCombination', 'The parameter Encrypted cannot be used with SnapshotId: the encryption of the volume is that of its snapshot.');
      }
      checkIdFormat(snapshotId, 'snap', 'InvalidSnapshotID.Malformed');
      const snapshot = this.snapshots.get(snapshotId);
      if (!snapshot || snapshot.ownerId !== this.accountId) {
        throw snapshotNotFound(snapshotId);
      }
      if (snapshot.state !== 'completed') {
        throw new Ec2Error('IncorrectState', `Snapshot ${snapshotId} is not in the completed state: ${snapshot.state}.`);
      }
      checkOneOf(`BlockDeviceMapping.${i + 1}.Ebs.VolumeType`, ebs.VolumeType, ['standard', 'gp2', 'gp3', 'io1', 'io2', 'st1', 'sc1']);
      const volumeSize = ebs.VolumeSize === undefined ? snapshot.volumeSize : Number(ebs.VolumeSize);
      if (!Number.isInteger(volumeSize) || volumeSize < snapshot.volumeSize) {
        throw new Ec2Error('InvalidBlockDeviceMapping',
          `Volume of size ${ebs.VolumeSize}GiB is smaller than snapshot '${snapshotId}', expect size >= ${snapshot.volumeSize}GiB`);
      }
      return {
        deviceName: device,
        snapshotId,
        volumeSize,
        encrypted: snapshot.encrypted,
        kmsKeyId: snapshot.kmsKeyId,
        volumeType: ebs.VolumeType?.toLowerCase(),
        deleteOnTermination: optionalBool(ebs.DeleteOnTermination),
      };
    });
  }

  /** A pending copy moves on each time DescribeImages lists it. */
  private advanceCopy(image: ImageState): void {
    const progress = this.copying.get(image.imageId);
    if (!progress) {
      return;
    }
    if (progress.left > 0) {
      progress.left -= 1;
      return;
    }
    this.copying.delete(image.imageId);
    const snapshots = image.blockDevices.map((d) => this.snapshots.get(d.snapshotId)).filter((x): x is SnapshotState => !!x);
    if (progress.failWith) {
      image.state = 'failed';
      image.stateReason = { code: 'Client.InternalError', message: progress.failWith };
      snapshots.forEach((snapshot) => { snapshot.state = 'error'; });
      return;
    }
    image.state = 'available';
    snapshots.forEach((snapshot) => { snapshot.state = 'completed'; });
  }

  private describeImages(p: QueryParams): string {
    const ids = scalarList(p, 'ImageId');
    const owners = scalarList(p, 'Owner');
    const filters = parseFilters(p, 'Filter');
    ids.forEach((id) => checkIdFormat(id, 'ami', 'InvalidAMIID.Malformed'));
    const unlisted = ids.filter((id) => (this.copying.get(id)?.unlisted ?? 0) > 0);
    unlisted.forEach((id) => { this.copying.get(id)!.unlisted -= 1; });
    const missing = ids.filter((id) => !this.images.has(id) || unlisted.includes(id));
    if (missing.length > 0) {
      throw imageNotFound(missing);
    }
    const candidates = ids.length > 0 ? unique(ids).map((id) => this.images.get(id) as ImageState) : [...this.images.values()];
    candidates.forEach((image) => this.advanceCopy(image));
    const matching = candidates
      .filter((img) => owners.length === 0 || owners.some((o) => o === 'self' || o === img.ownerId))
      .filter((img) => filters.every((f) => matchesFilter(f, imageFilterValues(img, f.name))));
    const page = paginate(matching, p);
    return xmlSet('imagesSet', page.items.map(imageXml)) + el('nextToken', page.nextToken);
  }

  private deregisterImage(p: QueryParams): string {
    const id = requireParam(p, 'ImageId');
    checkIdFormat(id, 'ami', 'InvalidAMIID.Malformed');
    const image = this.images.get(id) ?? throwError(imageNotFound([id]));
    this.images.delete(id);
    // Deregistering a pending copy stops it (EC2's guide: "Stop a pending AMI copy operation").
    this.copying.delete(id);
    if (this.inUseAfterDeregister > 0) {
      image.blockDevices.forEach((d) => this.releasing.set(d.snapshotId, this.inUseAfterDeregister));
    }
    if (!parseBool(p.DeleteAssociatedSnapshots)) {
      return el('return', true);
    }
    const results = image.blockDevices.map((d) => {
      const deleted = this.snapshots.delete(d.snapshotId);
      return el('snapshotId', d.snapshotId) + el('returnCode', deleted ? 'success' : 'error-generic');
    });
    return el('return', true) + xmlSet('deleteSnapshotResultSet', results);
  }

  /** Launch permissions (Add and Remove) and ImdsSupport, the attributes the engine sets. */
  private modifyImageAttribute(p: QueryParams): string {
    const id = requireParam(p, 'ImageId');
    checkIdFormat(id, 'ami', 'InvalidAMIID.Malformed');
    const image = this.images.get(id) ?? throwError(imageNotFound([id]));
    const parse = (prefix: string): LaunchPermissionState[] => structList(p, prefix).map((q) => ({
      userId: q.UserId, organizationArn: q.OrganizationArn, organizationalUnitArn: q.OrganizationalUnitArn,
    }));
    const same = (a: LaunchPermissionState, b: LaunchPermissionState) =>
      a.userId === b.userId && a.organizationArn === b.organizationArn && a.organizationalUnitArn === b.organizationalUnitArn;
    const add = parse('LaunchPermission.Add');
    const remove = parse('LaunchPermission.Remove');
    for (const perm of add) {
      if (perm.userId !== undefined && !/^\d{12}$/.test(perm.userId)) {
        throw new Ec2Error('InvalidAMIAttributeItemValue', `Invalid attribute item value "${perm.userId}" for userId item type.`);
      }
    }
    const current = image.launchPermissions ?? [];
    image.launchPermissions = [...current.filter((c) => !remove.some((r) => same(r, c))), ...add.filter((a) => !current.some((c) => same(a, c)))];
    const imds = p['ImdsSupport.Value'];
    if (imds !== undefined) {
      if (imds !== 'v2.0') {
        throw new Ec2Error('InvalidParameterValue', `Invalid value '${imds}' for ImdsSupport.`);
      }
      image.imdsSupport = imds;
    }
    return el('return', true);
  }

  private describeImageAttribute(p: QueryParams): string {
    const id = requireParam(p, 'ImageId');
    const attribute = requireParam(p, 'Attribute');
    checkIdFormat(id, 'ami', 'InvalidAMIID.Malformed');
    const image = this.images.get(id) ?? throwError(imageNotFound([id]));
    if (attribute === 'launchPermission') {
      const items = (image.launchPermissions ?? []).map((l) =>
        el('userId', l.userId) + el('organizationArn', l.organizationArn) + el('organizationalUnitArn', l.organizationalUnitArn));
      return el('imageId', id) + xmlSet('launchPermission', items);
    }
    if (attribute === 'uefiData') {
      return el('imageId', id) + (image.uefiData ? struct('uefiData', el('value', image.uefiData)) : '');
    }
    if (attribute === 'imdsSupport') {
      return el('imageId', id) + (image.imdsSupport ? struct('imdsSupport', el('value', image.imdsSupport)) : '');
    }
    throw new Ec2Error('InvalidParameterValue', `Value (${attribute}) for parameter attribute is invalid.`);
  }

  // ---------------------------------------------------------------- snapshots

  private describeSnapshots(p: QueryParams): string {
    const ids = scalarList(p, 'SnapshotId');
    const owners = scalarList(p, 'Owner');
    const filters = parseFilters(p, 'Filter');
    ids.forEach((id) => checkIdFormat(id, 'snap', 'InvalidSnapshotID.Malformed'));
    const missing = ids.find((id) => !this.snapshots.has(id));
    if (missing) {
      throw snapshotNotFound(missing);
    }
    const candidates = ids.length > 0 ? unique(ids).map((id) => this.snapshots.get(id) as SnapshotState) : [...this.snapshots.values()];
    const matching = candidates
      .filter((s) => owners.length === 0 || owners.some((o) => o === 'self' || o === s.ownerId))
      .filter((s) => filters.every((f) => matchesFilter(f, snapshotFilterValues(s, f.name))));
    const page = paginate(matching, p);
    return xmlSet('snapshotSet', page.items.map(snapshotXml)) + el('nextToken', page.nextToken);
  }

  private deleteSnapshot(p: QueryParams): string {
    const id = requireParam(p, 'SnapshotId');
    checkIdFormat(id, 'snap', 'InvalidSnapshotID.Malformed');
    if (!this.snapshots.has(id)) {
      throw snapshotNotFound(id);
    }
    const user = [...this.images.values()].find((img) => img.blockDevices.some((d) => d.snapshotId === id));
    if (user) {
      throw new Ec2Error('InvalidSnapshot.InUse', `The snapshot ${id} is currently in use by ${user.imageId}`);
    }
    const releasing = this.releasing.get(id);
    if (releasing !== undefined && releasing > 0) {
      this.releasing.set(id, releasing - 1);
      throw new Ec2Error('InvalidSnapshot.InUse', `The snapshot ${id} is currently in use by an AMI being deregistered`);
    }
    this.snapshots.delete(id);
    return el('return', true);
  }
}

// ================================================================== task life cycle

function stagesToComplete(b: { readonly stagesToComplete?: number }): number {
  return Math.max(1, b.stagesToComplete ?? DEFAULT_BEHAVIOUR.stagesToComplete);
}

/** Sets StatusMessage/Progress of an active task from its stage counter. */
function setStage(task: ImportTaskState): void {
  const b = task.behaviour;
  const total = Math.max(stagesToComplete(b), b.failAfter ? b.failAfter.stages + 1 : 0);
  const index = Math.min(IMPORT_STAGES.length - 1, Math.floor((task.stage * IMPORT_STAGES.length) / total));
  task.statusMessage = IMPORT_STAGES[index];
  task.progress = String(2 + Math.floor((task.stage * 96) / total));
  const size = task.stage > 0 ? b.diskImageSizeBytes ?? DEFAULT_BEHAVIOUR.diskImageSizeBytes : 0;
  task.snapshotDetails.forEach((d) => { d.diskImageSize = size; });
}

/** StatusMessage/Progress/DiskImageSize of an active snapshot task from its stage counter. */
function setSnapshotStage(task: ImportSnapshotTaskState): void {
  const b = task.behaviour;
  const total = Math.max(stagesToComplete(b), b.failAfter ? b.failAfter.stages + 1 : 0);
  const index = Math.min(SNAPSHOT_IMPORT_STAGES.length - 1, Math.floor((task.stage * SNAPSHOT_IMPORT_STAGES.length) / total));
  task.statusMessage = SNAPSHOT_IMPORT_STAGES[index];
  task.progress = String(2 + Math.floor((task.stage * 96) / total));
  task.diskImageSize = task.stage > 0 ? b.diskImageSizeBytes ?? DEFAULT_BEHAVIOUR.diskImageSizeBytes : 0;
}

/**
 * One step of a task's life cycle, image or snapshot: a cancelled task goes from
 * `deleting` to `deleted`; an active one (not held) moves a stage, and fails, completes or
 * reports its new stage as its behaviour says.
 */
function advanceLifeCycle<T extends ImportTaskState | ImportSnapshotTaskState>(
  task: T, complete: (task: T) => void, report: (task: T) => void,
): void {
  if (task.status === 'deleting') {
    task.status = 'deleted';
    task.progress = undefined;
    return;
  }
  if (task.status !== 'active' || task.behaviour.hold) {
    return;
  }
  task.stage += 1;
  const failAfter = task.behaviour.failAfter;
  if (failAfter) {
    if (task.stage >= failAfter.stages) {
      failTask(task, failAfter.message);
      return;
    }
  } else if (task.stage >= stagesToComplete(task.behaviour)) {
    complete(task);
    return;
  }
  report(task);
}

function failTask(task: ImportTaskState | ImportSnapshotTaskState, message: string): void {
  task.status = 'deleted';
  task.statusMessage = message;
  task.progress = undefined;
}

function deviceName(index: number): string {
  return index === 0 ? '/dev/sda1' : `/dev/sd${String.fromCharCode('a'.charCodeAt(0) + index)}`;
}

/** EC2 reports the disk format inside an OVA (a stream-optimized VMDK), upper case. */
function reportedFormat(format: string | undefined): string | undefined {
  const upper = format?.toUpperCase();
  return upper === 'OVA' ? 'VMDK' : upper;
}

function usageOperationFor(platform: string, licenseType: string): string {
  return platform === 'Windows' && licenseType === 'AWS' ? 'RunInstances:0002' : 'RunInstances';
}

function platformDetails(image: ImageState): string {
  if (image.platform !== 'Windows') {
    return 'Linux/UNIX';
  }
  return image.usageOperation === 'RunInstances:0002' ? 'Windows' : 'Windows BYOL';
}

// ================================================================== request parsing

async function readBody(req: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += buf.length;
    if (size > MAX_BODY_BYTES) {
      throw new Error(`request body larger than ${MAX_BODY_BYTES} bytes`);
    }
    chunks.push(buf);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Merges URL query string and form body (body wins). SigV4 headers are not looked at. */
function parseQuery(url: string, body: string): Record<string, string> {
  const out: Record<string, string> = {};
  const query = url.includes('?') ? url.slice(url.indexOf('?') + 1) : '';
  for (const source of [query, body]) {
    new URLSearchParams(source).forEach((value, key) => {
      out[key] = value;
    });
  }
  return out;
}

function withoutKeys(params: Record<string, string>, keys: readonly string[]): QueryParams {
  return Object.fromEntries(Object.entries(params).filter(([k]) => !keys.includes(k)));
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Indices present under `prefix.N` (scalar) or `prefix.N.…` (struct), ascending. */
function indices(p: QueryParams, prefix: string): number[] {
  const re = new RegExp(`^${escapeRegExp(prefix)}\\.(\\d+)(?:\\.|$)`);
  const found = new Set<number>();
  for (const key of Object.keys(p)) {
    const m = re.exec(key);
    if (m) {
      found.add(Number(m[1]));
    }
  }
  return [...found].sort((a, b) => a - b);
}

/** `Prefix.1`, `Prefix.2`, … as a list of strings. */
function scalarList(p: QueryParams, prefix: string): string[] {
  return indices(p, prefix).map((i) => p[`${prefix}.${i}`]).filter((v): v is string => v !== undefined);
}

/** Parameters under `prefix.` with the prefix removed. */
function sub(p: QueryParams, prefix: string): QueryParams {
  const start = `${prefix}.`;
  return Object.fromEntries(Object.entries(p).filter(([k]) => k.startsWith(start)).map(([k, v]) => [k.slice(start.length), v]));
}

/** `Prefix.1.Member`, `Prefix.2.Member`, … as a list of sub-parameter maps. */
function structList(p: QueryParams, prefix: string): QueryParams[] {
  return indices(p, prefix).map((i) => sub(p, `${prefix}.${i}`));
}

function parseBool(value: string | undefined): boolean {
  return value?.toLowerCase() === 'true';
}

function optionalBool(value: string | undefined): boolean | undefined {
  return value === undefined ? undefined : parseBool(value);
}

function requireParam(p: QueryParams, name: string): string {
  const value = p[name];
  if (value === undefined || value === '') {
    throw new Ec2Error('MissingParameter', `The request must contain the parameter ${name}`);
  }
  return value;
}

function parseFilters(p: QueryParams, prefix: string): Filter[] {
  return structList(p, prefix).map((f) => ({ name: f.Name ?? '', values: scalarList(f, 'Value') }));
}

function parseUserBucket(p: QueryParams): UserBucketParams | undefined {
  if (p.S3Bucket === undefined && p.S3Key === undefined) {
    return undefined;
  }
  return { s3Bucket: p.S3Bucket, s3Key: p.S3Key };
}

function parseDiskContainer(p: QueryParams): DiskContainerParams {
  return {
    description: p.Description,
    deviceName: p.DeviceName,
    format: p.Format,
    snapshotId: p.SnapshotId,
    url: p.Url,
    userBucket: parseUserBucket(sub(p, 'UserBucket')),
  };
}

function parseClientData(p: QueryParams): ClientDataParams | undefined {
  if (Object.keys(p).length === 0) {
    return undefined;
  }
  return {
    comment: p.Comment,
    uploadStart: p.UploadStart,
    uploadEnd: p.UploadEnd,
    uploadSize: p.UploadSize === undefined ? undefined : Number(p.UploadSize),
  };
}

function parseImportImageParams(p: QueryParams): ImportImageParams {
  return {
    architecture: p.Architecture,
    bootMode: p.BootMode,
    clientData: parseClientData(sub(p, 'ClientData')),
    clientToken: p.ClientToken,
    description: p.Description,
    diskContainers: structList(p, 'DiskContainer').map(parseDiskContainer),
    encrypted: optionalBool(p.Encrypted),
    hypervisor: p.Hypervisor,
    kmsKeyId: p.KmsKeyId,
    licenseType: p.LicenseType,
    platform: p.Platform,
    roleName: p.RoleName,
    usageOperation: p.UsageOperation,
    licenseSpecifications: structList(p, 'LicenseSpecifications')
      .map((l) => l.LicenseConfigurationArn)
      .filter((arn): arn is string => arn !== undefined),
    tagSpecifications: parseTagSpecifications(p),
  };
}

function parseTagSpecifications(p: QueryParams): TagSpecificationParams[] {
  return structList(p, 'TagSpecification').map((s) => ({
    resourceType: s.ResourceType,
    tags: structList(s, 'Tag').map((t) => ({ key: t.Key ?? '', value: t.Value ?? '' })),
  }));
}

function parseImportSnapshotParams(p: QueryParams): ImportSnapshotParams {
  const disk = sub(p, 'DiskContainer');
  return {
    clientData: parseClientData(sub(p, 'ClientData')),
    clientToken: p.ClientToken,
    description: p.Description,
    diskContainer: Object.keys(disk).length === 0 ? undefined : {
      description: disk.Description,
      format: disk.Format,
      url: disk.Url,
      userBucket: parseUserBucket(sub(disk, 'UserBucket')),
    },
    encrypted: optionalBool(p.Encrypted),
    kmsKeyId: p.KmsKeyId,
    roleName: p.RoleName,
    tagSpecifications: parseTagSpecifications(p),
  };
}

/** A stable rendering of request parameters, for idempotency comparisons. */
function canonical(p: QueryParams): string {
  return JSON.stringify(Object.entries(p).filter(([k]) => k !== 'DryRun').sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

// ================================================================== validation

function canonicalCase(value: string | undefined, allowed: readonly string[]): string | undefined {
  return value === undefined ? undefined : allowed.find((a) => a.toLowerCase() === value.toLowerCase());
}

function checkOneOf(name: string, value: string | undefined, allowed: readonly string[]): void {
  if (value !== undefined && canonicalCase(value, allowed) === undefined) {
    throw new Ec2Error('InvalidParameterValue', `Value (${value}) for parameter ${name} is invalid. Valid values: ${allowed.join(', ')}`);
  }
}

function validateDiskContainer(c: DiskContainerParams, index: number): void {
  const name = `DiskContainer.${index + 1}`;
  checkOneOf(`${name}.Format`, c.format, ['OVA', 'VHD', 'VHDX', 'VMDK', 'RAW']);
  if (!c.url && !c.userBucket && !c.snapshotId) {
    throw new Ec2Error('InvalidParameter', `${name} must specify one of Url, UserBucket or SnapshotId`);
  }
  if (c.url && !/^(https|s3):\/\//.test(c.url)) {
    throw new Ec2Error('InvalidParameter', `${name}.Url must be an https:// or s3:// URL`);
  }
  if (c.userBucket && (!c.userBucket.s3Bucket || !c.userBucket.s3Key)) {
    throw new Ec2Error('MissingParameter', `${name}.UserBucket requires S3Bucket and S3Key`);
  }
}

function validateTag(tag: Ec2Tag): void {
  if (tag.key === '') {
    throw new Ec2Error('InvalidParameterValue', 'Tag key cannot be empty');
  }
  if (tag.key.toLowerCase().startsWith('aws:')) {
    throw new Ec2Error('InvalidParameterValue', "Tag keys starting with 'aws:' are reserved for internal use");
  }
  if (tag.key.length > 127) {
    throw new Ec2Error('InvalidParameterValue', `Tag key exceeds the maximum length of 127 characters: ${tag.key}`);
  }
  if (tag.value.length > 256) {
    throw new Ec2Error('InvalidParameterValue', `Tag value exceeds the maximum length of 256 characters for key ${tag.key}`);
  }
}

function validateImportImage(p: ImportImageParams): void {
  checkOneOf('Architecture', p.architecture, ['i386', 'x86_64']);
  checkOneOf('BootMode', p.bootMode, ['legacy-bios', 'uefi']);
  checkOneOf('Hypervisor', p.hypervisor, ['xen']);
  checkOneOf('LicenseType', p.licenseType, ['AWS', 'BYOL']);
  checkOneOf('Platform', p.platform, ['Windows', 'Linux']);
  if (p.kmsKeyId !== undefined && p.encrypted !== true) {
    throw new Ec2Error('InvalidParameterCombination', 'KmsKeyId can only be specified when Encrypted is set to true');
  }
  if (p.diskContainers.length === 0) {
    throw new Ec2Error('MissingParameter', 'The request must contain the parameter DiskContainer');
  }
  if (p.diskContainers.length > 21) {
    throw new Ec2Error('InvalidParameterValue', 'An import can contain at most 21 disk containers');
  }
  p.diskContainers.forEach(validateDiskContainer);
  for (const spec of p.tagSpecifications) {
    if (spec.resourceType !== 'import-image-task') {
      throw new Ec2Error('InvalidParameterValue', `'${spec.resourceType ?? ''}' is not a valid taggable resource type for this operation.`);
    }
    spec.tags.forEach(validateTag);
  }
}

/**
 * ImportSnapshot's rules in our model: one DiskContainer (`MissingParameter` without one;
 * its Format required too — unconfirmed whether EC2 would detect a missing one) in VHD,
 * VMDK or RAW, case-insensitive (the API reference lists only these; OVA and VHDX are
 * ImportImage formats); exactly one of Url (https:// or s3://) and UserBucket (with S3Bucket
 * and S3Key); KmsKeyId only with Encrypted (`InvalidParameterDependency`); tag
 * specifications for `import-snapshot-task` only.
 */
function validateImportSnapshot(p: ImportSnapshotParams): void {
  const disk = p.diskContainer ?? throwError(new Ec2Error('MissingParameter', 'The request must contain the parameter DiskContainer'));
  const format = disk.format ?? throwError(new Ec2Error('MissingParameter', 'The request must contain the parameter DiskContainer.Format'));
  if (['OVA', 'VHDX'].includes(format.toUpperCase())) {
    throw new Ec2Error('InvalidParameter', `The disk image format ${format} is not supported for ImportSnapshot. Supported formats: VHD, VMDK, RAW.`);
  }
  checkOneOf('DiskContainer.Format', format, ['VHD', 'VMDK', 'RAW']);
  if (disk.url !== undefined && disk.userBucket !== undefined) {
    throw new Ec2Error('InvalidParameterCombination', 'DiskContainer must specify either Url or UserBucket, not both');
  }
  if (disk.url === undefined && disk.userBucket === undefined) {
    throw new Ec2Error('InvalidParameter', 'DiskContainer must specify one of Url or UserBucket');
  }
  if (disk.url !== undefined && !/^(https|s3):\/\//.test(disk.url)) {
    throw new Ec2Error('InvalidParameter', 'DiskContainer.Url must be an https:// or s3:// URL');
  }
  if (disk.userBucket && (!disk.userBucket.s3Bucket || !disk.userBucket.s3Key)) {
    throw new Ec2Error('MissingParameter', 'DiskContainer.UserBucket requires S3Bucket and S3Key');
  }
  if (p.kmsKeyId !== undefined && p.encrypted !== true) {
    throw new Ec2Error('InvalidParameterDependency', 'The parameter KmsKeyId requires the parameter Encrypted to be set.');
  }
  for (const spec of p.tagSpecifications) {
    if (spec.resourceType !== 'import-snapshot-task') {
      throw new Ec2Error('InvalidParameterValue', `'${spec.resourceType ?? ''}' is not a valid taggable resource type for this operation.`);
    }
    spec.tags.forEach(validateTag);
  }
}

function checkIdFormat(id: string, prefix: string, code: string): void {
  if (!new RegExp(`^${prefix}-[0-9a-f]{8}([0-9a-f]{9})?$`).test(id)) {
    throw new Ec2Error(code, `Invalid id: "${id}" (expecting "${prefix}-...")`);
  }
}

function imageNotFound(ids: readonly string[]): Ec2Error {
  return new Ec2Error('InvalidAMIID.NotFound', `The image id '[${ids.join(', ')}]' does not exist`);
}

function snapshotNotFound(id: string): Ec2Error {
  return new Ec2Error('InvalidSnapshot.NotFound', `The snapshot '${id}' does not exist.`);
}

function throwError(err: Error): never {
  throw err;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

// ================================================================== filters, tags, paging

/** EC2 filter values accept `*` (any run) and `?` (one character) wildcards. */
function wildcardMatch(pattern: string, value: string): boolean {
  const re = '^' + pattern.split('').map((ch) => (ch === '*' ? '.*' : ch === '?' ? '.' : escapeRegExp(ch))).join('') + '$';
  return new RegExp(re, 's').test(value);
}

function matchesFilter(filter: Filter, actual: readonly string[]): boolean {
  return filter.values.some((pattern) => actual.some((value) => wildcardMatch(pattern, value)));
}

function tagFilterValues(tags: readonly Ec2Tag[], name: string): string[] | undefined {
  if (name === 'tag-key') {
    return tags.map((t) => t.key);
  }
  if (name === 'tag-value') {
    return tags.map((t) => t.value);
  }
  if (name.startsWith('tag:')) {
    const key = name.slice('tag:'.length);
    return tags.filter((t) => t.key === key).map((t) => t.value);
  }
  return undefined;
}

function invalidFilter(name: string): Ec2Error {
  return new Ec2Error('InvalidParameterValue', `The filter '${name}' is invalid`);
}

function taskFilterValues(task: ImportTaskState, name: string): string[] {
  if (name === 'task-state') {
    return [task.status];
  }
  return tagFilterValues(task.tags, name) ?? throwError(invalidFilter(name));
}

function snapshotTaskFilterValues(task: ImportSnapshotTaskState, name: string): string[] {
  if (name === 'task-state') {
    return [task.status];
  }
  return tagFilterValues(task.tags, name) ?? throwError(invalidFilter(name));
}

function imageFilterValues(image: ImageState, name: string): string[] {
  const simple: Record<string, string | undefined> = {
    'image-id': image.imageId,
    'name': image.name,
    'state': image.state,
    'owner-id': image.ownerId,
    'architecture': image.architecture,
    'description': image.description,
    'platform': image.platform === 'Windows' ? 'windows' : undefined,
    'image-type': 'machine',
    'is-public': 'false',
    'root-device-type': 'ebs',
    'virtualization-type': image.virtualizationType ?? 'hvm',
  };
  if (name === 'block-device-mapping.snapshot-id') {
    return image.blockDevices.map((d) => d.snapshotId);
  }
  if (Object.prototype.hasOwnProperty.call(simple, name)) {
    const value = simple[name];
    return value === undefined ? [] : [value];
  }
  return tagFilterValues(image.tags, name) ?? throwError(invalidFilter(name));
}

function snapshotFilterValues(snapshot: SnapshotState, name: string): string[] {
  const simple: Record<string, string> = {
    'snapshot-id': snapshot.snapshotId,
    'status': snapshot.state,
    'owner-id': snapshot.ownerId,
    'description': snapshot.description,
    'encrypted': String(snapshot.encrypted),
    'volume-size': String(snapshot.volumeSize),
  };
  if (Object.prototype.hasOwnProperty.call(simple, name)) {
    return [simple[name] as string];
  }
  return tagFilterValues(snapshot.tags, name) ?? throwError(invalidFilter(name));
}

function mergeTags(existing: readonly Ec2Tag[], added: readonly Ec2Tag[]): Ec2Tag[] {
  const byKey = new Map(existing.map((t) => [t.key, t] as const));
  added.forEach((t) => byKey.set(t.key, { key: t.key, value: t.value }));
  return [...byKey.values()];
}

function unique(ids: readonly string[]): string[] {
  return [...new Set(ids)];
}

/** MaxResults/NextToken paging; the token is an opaque offset. */
function paginate<T>(items: readonly T[], p: QueryParams): { items: readonly T[]; nextToken?: string } {
  let start = 0;
  if (p.NextToken !== undefined) {
    const m = /^lec2-(\d+)$/.exec(p.NextToken);
    if (!m) {
      throw new Ec2Error('InvalidParameterValue', `The token '${p.NextToken}' is invalid`);
    }
    start = Number(m[1]);
  }
  if (p.MaxResults === undefined) {
    return { items: items.slice(start) };
  }
  const max = Number(p.MaxResults);
  if (!Number.isInteger(max) || max < 1) {
    throw new Ec2Error('InvalidParameterValue', `Value (${p.MaxResults}) for parameter MaxResults is invalid`);
  }
  const end = start + max;
  return { items: items.slice(start, end), nextToken: end < items.length ? `lec2-${end}` : undefined };
}

function newId(prefix: string): string {
  return `${prefix}-${randomBytes(9).toString('hex').slice(0, 17)}`;
}

// ================================================================== XML rendering

function escapeXml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

/** `<name>value</name>`, or nothing when the value is undefined. */
function el(name: string, value: string | number | boolean | undefined): string {
  return value === undefined ? '' : `<${name}>${escapeXml(String(value))}</${name}>`;
}

/** `<name>children</name>` (children already rendered), or nothing when empty. */
function struct(name: string, children: string): string {
  return children === '' ? '' : `<${name}>${children}</${name}>`;
}

/** `<name><item>…</item>…</name>`, or nothing for an empty list. */
function xmlSet(name: string, items: readonly string[]): string {
  return items.length === 0 ? '' : `<${name}>${items.map((i) => `<item>${i}</item>`).join('')}</${name}>`;
}

function tagSetXml(tags: readonly Ec2Tag[]): string {
  return xmlSet('tagSet', tags.map((t) => el('key', t.key) + el('value', t.value)));
}

function userBucketXml(bucket: UserBucketParams | undefined): string {
  return bucket ? struct('userBucket', el('s3Bucket', bucket.s3Bucket) + el('s3Key', bucket.s3Key)) : '';
}

function snapshotDetailXml(d: SnapshotDetailState): string {
  return el('description', d.description)
    + el('deviceName', d.deviceName)
    + el('diskImageSize', d.diskImageSize)
    + el('format', d.format)
    + el('snapshotId', d.snapshotId)
    + el('status', d.status)
    + el('url', d.url)
    + userBucketXml(d.userBucket);
}

/**
 * The fields of an ImportImageResult / ImportImageTask. `bootMode` only exists on
 * ImportImageTask (the SDK's ImportImageResult has no such member).
 */
function taskXml(t: ImportTaskState, withBootMode: boolean): string {
  return el('architecture', t.architecture)
    + el('description', t.params.description)
    + el('encrypted', t.encrypted)
    + el('hypervisor', t.params.hypervisor)
    + el('imageId', t.imageId)
    + el('importTaskId', t.importTaskId)
    + el('kmsKeyId', t.kmsKeyId)
    + el('licenseType', t.licenseType)
    + el('platform', t.platform)
    + el('progress', t.progress)
    + xmlSet('snapshotDetailSet', t.snapshotDetails.map(snapshotDetailXml))
    + el('status', t.status)
    + el('statusMessage', t.statusMessage)
    + tagSetXml(t.tags)
    + xmlSet('licenseSpecifications', t.params.licenseSpecifications.map((arn) => el('licenseConfigurationArn', arn)))
    + el('usageOperation', t.params.usageOperation)
    + (withBootMode ? el('bootMode', t.bootMode) : '');
}

/**
 * The fields of an ImportSnapshotResult / ImportSnapshotTask (the same members). In
 * SnapshotTaskDetail, `description` is the disk's description, or the task's when the disk
 * has none (AWS's example shows the task's Description in both places).
 */
function snapshotTaskXml(t: ImportSnapshotTaskState): string {
  const disk = t.params.diskContainer;
  const detail = el('description', disk?.description ?? t.params.description)
    + el('diskImageSize', t.diskImageSize)
    + el('encrypted', t.encrypted)
    + el('format', t.format)
    + el('kmsKeyId', t.kmsKeyId)
    + el('progress', t.progress)
    + el('snapshotId', t.snapshotId)
    + el('status', t.status)
    + el('statusMessage', t.statusMessage)
    + el('url', disk?.url)
    + userBucketXml(disk?.userBucket);
  return el('description', t.params.description)
    + el('importTaskId', t.importTaskId)
    + struct('snapshotTaskDetail', detail)
    + tagSetXml(t.tags);
}

function blockDeviceXml(d: BlockDeviceState): string {
  const ebs = el('deleteOnTermination', d.deleteOnTermination ?? true)
    + el('snapshotId', d.snapshotId)
    + el('volumeSize', d.volumeSize)
    + el('volumeType', d.volumeType ?? 'gp2')
    + el('encrypted', d.encrypted)
    + el('kmsKeyId', d.kmsKeyId);
  return el('deviceName', d.deviceName) + struct('ebs', ebs);
}

function imageXml(img: ImageState): string {
  return el('imageId', img.imageId)
    + el('imageLocation', `${img.ownerId}/${img.name}`)
    + el('imageState', img.state)
    + el('imageOwnerId', img.ownerId)
    + el('creationDate', img.creationDate)
    + el('isPublic', false)
    + el('architecture', img.architecture)
    + el('imageType', 'machine')
    + el('platform', img.platform === 'Windows' ? 'windows' : undefined)
    + el('platformDetails', platformDetails(img))
    + el('usageOperation', img.usageOperation)
    + el('name', img.name)
    + el('description', img.description)
    + el('rootDeviceType', 'ebs')
    + el('rootDeviceName', img.rootDeviceName)
    + xmlSet('blockDeviceMapping', img.blockDevices.map(blockDeviceXml))
    + el('virtualizationType', img.virtualizationType ?? 'hvm')
    + tagSetXml(img.tags)
    + el('hypervisor', 'xen')
    + el('enaSupport', (img.enaSupport ?? true) ? true : undefined)
    + el('sriovNetSupport', 'simple')
    + el('bootMode', img.bootMode)
    + el('tpmSupport', img.tpmSupport)
    + el('imdsSupport', img.imdsSupport)
    + (img.stateReason ? struct('stateReason', el('code', img.stateReason.code) + el('message', img.stateReason.message)) : '');
}

function snapshotXml(s: SnapshotState): string {
  return el('snapshotId', s.snapshotId)
    + el('volumeId', 'vol-ffffffff')
    + el('status', s.state)
    + el('startTime', s.startTime.toISOString())
    + el('progress', '100%')
    + el('ownerId', s.ownerId)
    + el('volumeSize', s.volumeSize)
    + el('description', s.description)
    + el('encrypted', s.encrypted)
    + el('kmsKeyId', s.kmsKeyId)
    + tagSetXml(s.tags)
    + el('storageTier', 'standard');
}

function responseXml(action: string, requestId: string, inner: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<${action}Response xmlns="${XMLNS}">`
    + `<requestId>${requestId}</requestId>${inner}</${action}Response>`;
}

function errorXml(code: string, message: string, requestId: string): string {
  return '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
    + `${el('Code', code)}${el('Message', message)}</Error></Errors>${el('RequestID', requestId)}</Response>`;
}

function sendXml(res: http.ServerResponse, status: number, requestId: string, xml: string): void {
  res.writeHead(status, {
    'Content-Type': 'text/xml;charset=UTF-8',
    'Content-Length': Buffer.byteLength(xml),
    'x-amzn-RequestId': requestId,
    'Server': 'AmazonEC2',
  });
  res.end(xml);
}
