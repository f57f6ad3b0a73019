/**
 * End-to-end life cycle of the VM image import custom resource: the BUNDLED handler
 * (assets/lambda/index/index.js, with the real @aws-sdk/client-ec2 inside) runs in this
 * process against a LocalEc2 server on 127.0.0.1, driven as aws-cdk-lib's Provider
 * framework drives it (onEvent, then isComplete until done). Every scenario checks what
 * the handler answered AND what is left on the "EC2" side.
 *
 * Needs the bundle: `npx projen bundle` (the projen test task runs it first).
 */
import { randomUUID } from 'crypto';
import { CancelImportTaskCommand, EC2Client } from '@aws-sdk/client-ec2';
import {
  CfnEvent,
  CREATE_FAILED_MARKER,
  jsonLines,
  LifecycleDriver,
  LifecycleOptions,
  LifecycleOutcome,
  LocalHandler,
  LogCapture,
  MAX_RESPONSE_BYTES,
  startLocalHandler,
} from './drive';
import {
  CANCELLED_MESSAGE,
  Ec2Fault,
  Ec2Tag,
  IMPORT_STAGES,
  ImageState,
  ImportTaskState,
  LocalEc2,
  SnapshotState,
} from './local-ec2';

jest.setTimeout(15_000);

const ACCOUNT = '123456789012';
const STACK_ID = `arn:aws:cloudformation:us-east-1:${ACCOUNT}:stack/VmImportStack/0f1e2d3c-4b5a-4978-8a9b-0c1d2e3f4a5b`;
const SERVICE_TOKEN = `arn:aws:lambda:us-east-1:${ACCOUNT}:function:VmImportStack-ProviderframeworkonEvent-AbCdEf123456`;
const LOGICAL_ID = 'WebServerImageImport1A2B3C4D';
const ROLE = 'VmImportStack-VmImportRole0A1B2C3D-4E5F6A7B8C9D';
const TAG_STACK_ID = 'cdk-vm-import:stack-id';
const TAG_IMPORT_TASK_ID = 'cdk-vm-import:import-task-id';
const TAG_LOGICAL_ID = 'cdk-vm-import:logical-id';
const TAG_IMAGE_HASH = 'cdk-vm-import:image-hash';
/** A pre-signed S3 URL like CloudFormation's; neither it nor its signature may be logged. */
const RESPONSE_SIGNATURE = '5ec2e7a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d';
const RESPONSE_URL = 'https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/'
  + `arn%3Aaws%3Acloudformation%3Aus-east-1%3A${ACCOUNT}%3Astack/VmImportStack/0f1e2d3c%7C${LOGICAL_ID}%7C7d1c`
  + `?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20240501T100000Z&X-Amz-Expires=7200&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE&X-Amz-Signature=${RESPONSE_SIGNATURE}`;

const THROTTLED: Ec2Fault = { status: 503, code: 'RequestLimitExceeded', message: 'Request limit exceeded.' };
const INTERNAL: Ec2Fault = { status: 500, code: 'InternalError', message: 'An internal error has occurred' };
const IAM_NOT_READY: Ec2Fault = {
  status: 400,
  code: 'InvalidParameter',
  message: `The service role ${ROLE} provided does not exist or does not have sufficient permissions`,
};
const UNKNOWN_OS = 'ClientError: Unknown OS / Missing OS files.';

const SUITE = 'bundled handler against LocalEc2';

type Props = Record<string, unknown>;

/** A one-disk import, as the construct synthesizes it (every value a string). */
function basicProps(overrides: Props = {}): Props {
  return {
    ServiceToken: SERVICE_TOKEN,
    DiskContainers: [{ Format: 'VMDK', S3Bucket: 'vm-images-bucket', S3Key: 'web/disk1.vmdk' }],
    RoleName: ROLE,
    LicenseType: 'BYOL',
    Tags: [{ Key: 'team', Value: 'infra' }],
    RemovalPolicy: 'retain',
    WaitTimeoutSeconds: '600',
    ...overrides,
  };
}

const KMS_KEY = `arn:aws:kms:us-east-1:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;
const LICENSE_CONFIG = `arn:aws:license-manager:us-east-1:${ACCOUNT}:license-configuration:lic-0123456789abcdef0123456789abcdef`;

/** Every ImportImage property the wire contract carries; two disks. */
function fullProps(overrides: Props = {}): Props {
  return {
    ServiceToken: SERVICE_TOKEN,
    DiskContainers: [
      { Format: 'VMDK', DeviceName: '/dev/sda1', Description: 'boot disk', S3Bucket: 'vm-images-bucket', S3Key: 'web/boot.vmdk' },
      { Format: 'RAW', Description: 'data disk', Url: 's3://vm-images-bucket/web/data.raw' },
    ],
    RoleName: ROLE,
    Description: 'web server image',
    Encrypted: 'true',
    KmsKeyId: KMS_KEY,
    LicenseType: 'BYOL',
    Platform: 'Linux',
    BootMode: 'uefi',
    Architecture: 'x86_64',
    Hypervisor: 'xen',
    ClientData: { Comment: 'uploaded by cdk', UploadStart: '2024-05-01T10:00:00.000Z', UploadEnd: '2024-05-01T10:30:00.000Z', UploadSize: '12.5' },
    LicenseConfigurationArns: [LICENSE_CONFIG],
    Tags: [{ Key: 'team', Value: 'infra' }, { Key: 'cost-center', Value: '42' }],
    RemovalPolicy: 'destroy',
    WaitTimeoutSeconds: '3000',
    ...overrides,
  };
}

interface EventOptions {
  readonly RequestId?: string;
  readonly PhysicalResourceId?: string;
  readonly OldResourceProperties?: Props;
}

function cfnEvent(requestType: CfnEvent['RequestType'], props: Props, options: EventOptions = {}): CfnEvent {
  return {
    RequestType: requestType,
    ServiceToken: SERVICE_TOKEN,
    ResponseURL: RESPONSE_URL,
    StackId: STACK_ID,
    RequestId: options.RequestId ?? randomUUID(),
    LogicalResourceId: LOGICAL_ID,
    ResourceType: 'Custom::VmImageImport',
    ResourceProperties: props,
    ...(options.PhysicalResourceId !== undefined ? { PhysicalResourceId: options.PhysicalResourceId } : {}),
    ...(options.OldResourceProperties !== undefined ? { OldResourceProperties: options.OldResourceProperties } : {}),
  };
}

// ------------------------------------------------------------------ shared fixture

let local: LocalHandler;
let server: LocalEc2;
let driver: LifecycleDriver;
let capture: LogCapture;
let outOfBand: EC2Client;

interface CountRow {
  readonly scenario: string;
  readonly request: string;
  readonly status: string;
  readonly onEvent: number;
  readonly isComplete: number;
  readonly ec2Calls: number;
}
const invocationCounts: CountRow[] = [];

beforeAll(async () => {
  // HTTPS is blocked (a real AWS endpoint is always HTTPS; LocalEc2 is plain HTTP on 127.0.0.1).
  local = await startLocalHandler({ accountId: ACCOUNT });
  ({ server, driver, capture } = local);
  outOfBand = new EC2Client({
    endpoint: server.endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
    maxAttempts: 1,
  });
});

afterAll(async () => {
  outOfBand?.destroy();
  await local?.stop();
  if (invocationCounts.length > 0) {
    const header = 'handler invocations per simulated request (onEvent + isComplete; EC2 API calls incl. retries)';
    const rows = invocationCounts.map((r) =>
      `${r.scenario.slice(0, 56).padEnd(56)} | ${r.request.padEnd(42)} | ${r.status.padEnd(11)} | onEvent ${r.onEvent} | isComplete ${String(r.isComplete).padStart(2)} | ec2 ${String(r.ec2Calls).padStart(2)}`);
    console.log([header, ...rows].join('\n'));
  }
});

beforeEach(() => {
  server.reset();
  process.env.VM_IMPORT_IAM_RETRY_SECONDS = '2';
});

afterEach(() => {
  const leaked = capture.lines.filter((line) => line.includes(RESPONSE_SIGNATURE) || line.includes('cloudformation-custom-resource-response'));
  capture.clear();
  expect(leaked).toEqual([]);
  expect(local.blockedRequests).toEqual([]);
});

/** Runs one request through the driver and records its invocation counts. */
async function run(request: string, event: CfnEvent, options: LifecycleOptions = {}): Promise<LifecycleOutcome> {
  const before = server.calls.length;
  const outcome = await driver.run(event, options);
  invocationCounts.push({
    scenario: (expect.getState().currentTestName ?? '').replace(`${SUITE} `, ''),
    request,
    status: outcome.status,
    onEvent: outcome.onEventCalls,
    isComplete: outcome.isCompleteCalls,
    ec2Calls: server.calls.length - before,
  });
  expect(outcome.error?.message ?? '').not.toContain(RESPONSE_SIGNATURE);
  return outcome;
}

/** Runs a Create to success and returns the outcome with the server's task and AMI. */
async function createImport(props: Props, request = 'Create → completed'): Promise<{ outcome: LifecycleOutcome; task: ImportTaskState; image: ImageState }> {
  const outcome = await run(request, cfnEvent('Create', props));
  expect(outcome.error).toBeUndefined();
  expect(outcome.status).toBe('SUCCESS');
  const task = taskOf(outcome.physicalResourceId);
  return { outcome, task, image: imageOfTask(task) };
}

function taskOf(importTaskId: string): ImportTaskState {
  const task = server.state.tasks.get(importTaskId);
  if (!task) {
    throw new Error(`the server has no task ${importTaskId}`);
  }
  return task;
}

function onlyTask(): ImportTaskState {
  expect(server.state.tasks.size).toBe(1);
  return [...server.state.tasks.values()][0] as ImportTaskState;
}

function imageOfTask(task: ImportTaskState): ImageState {
  const image = task.imageId ? server.state.images.get(task.imageId) : undefined;
  if (!image) {
    throw new Error(`the server has no AMI for ${task.importTaskId} (status ${task.status})`);
  }
  return image;
}

function snapshotIdsOf(image: ImageState): string[] {
  return image.blockDevices.map((d) => d.snapshotId);
}

function snapshotsOf(image: ImageState): SnapshotState[] {
  return snapshotIdsOf(image).map((id) => server.state.snapshots.get(id)).filter((s): s is SnapshotState => s !== undefined);
}

function tagMap(tags: readonly Ec2Tag[]): Record<string, string> {
  return Object.fromEntries(tags.map((t) => [t.key, t.value]));
}

function activeTasks(): ImportTaskState[] {
  return [...server.state.tasks.values()].filter((t) => t.status === 'active');
}

function callCount(action: string): number {
  return server.callsTo(action).length;
}

function expectHandlerTags(image: ImageState, task: ImportTaskState, userTags: Record<string, string>): void {
  const expected = {
    ...userTags,
    [TAG_STACK_ID]: STACK_ID,
    [TAG_LOGICAL_ID]: LOGICAL_ID,
    [TAG_IMPORT_TASK_ID]: task.importTaskId,
    [TAG_IMAGE_HASH]: expect.stringMatching(/^[0-9a-f]{64}$/),
  };
  expect(tagMap(image.tags)).toEqual(expected);
  const snapshots = snapshotsOf(image);
  expect(snapshots).toHaveLength(image.blockDevices.length);
  for (const snapshot of snapshots) {
    expect(tagMap(snapshot.tags)).toEqual(expected);
  }
}

// ------------------------------------------------------------------ scenarios

describe(SUITE, () => {
  test('1. Create polls to success: IDs match the server, every property reaches ImportImage, everything is tagged', async () => {
    const { outcome, task, image } = await createImport(fullProps(), 'Create → completed (full props)');

    expect(onlyTask()).toBe(task);
    expect(task.status).toBe('completed');
    expect(outcome.physicalResourceId).toBe(task.importTaskId);
    expect(outcome.data).toEqual({
      ImportTaskId: task.importTaskId,
      StartedAt: expect.stringMatching(/^\d+$/),
      ImageId: image.imageId,
      SnapshotIds: snapshotIdsOf(image).join(','),
    });
    expect(image.blockDevices).toHaveLength(2);
    expect(outcome.responseBytes).toBeLessThanOrEqual(MAX_RESPONSE_BYTES);
    // The Provider framework's default: one onEvent, then one isComplete per poll (LocalEc2 completes on the 3rd describe).
    expect(outcome.onEventCalls).toBe(1);
    expect(outcome.isCompleteCalls).toBe(3);

    // Every property, as EC2 received it.
    const p = task.params;
    expect(p).toEqual({
      architecture: 'x86_64',
      bootMode: 'uefi',
      clientData: { comment: 'uploaded by cdk', uploadStart: expect.any(String), uploadEnd: expect.any(String), uploadSize: 12.5 },
      clientToken: expect.stringMatching(/^[0-9a-f]{64}$/),
      description: 'web server image',
      diskContainers: [
        { description: 'boot disk', deviceName: '/dev/sda1', format: 'VMDK', userBucket: { s3Bucket: 'vm-images-bucket', s3Key: 'web/boot.vmdk' } },
        { description: 'data disk', format: 'RAW', url: 's3://vm-images-bucket/web/data.raw' },
      ],
      encrypted: true,
      hypervisor: 'xen',
      kmsKeyId: KMS_KEY,
      licenseType: 'BYOL',
      platform: 'Linux',
      roleName: ROLE,
      licenseSpecifications: [LICENSE_CONFIG],
      tagSpecifications: [{
        resourceType: 'import-image-task',
        tags: [{ key: 'team', value: 'infra' }, { key: 'cost-center', value: '42' }, { key: TAG_STACK_ID, value: STACK_ID }],
      }],
    });
    expect(new Date(p.clientData?.uploadStart ?? '').toISOString()).toBe('2024-05-01T10:00:00.000Z');
    expect(new Date(p.clientData?.uploadEnd ?? '').toISOString()).toBe('2024-05-01T10:30:00.000Z');

    // The task carries the TagSpecifications tags; the AMI and every snapshot the user's and the handler's.
    expect(tagMap(task.tags)).toEqual({ 'team': 'infra', 'cost-center': '42', [TAG_STACK_ID]: STACK_ID });
    expectHandlerTags(image, task, { 'team': 'infra', 'cost-center': '42' });
    for (const snapshot of snapshotsOf(image)) {
      expect(snapshot).toMatchObject({ encrypted: true, kmsKeyId: KMS_KEY });
    }
    expect(callCount('ImportImage')).toBe(1);
    expect(callCount('DescribeImportImageTasks')).toBe(3);
    expect(callCount('DeleteTags')).toBe(0);
    expect(activeTasks()).toEqual([]);
  });

  test('1b. Create with only the required properties sends nothing else and applies the defaults', async () => {
    const { task, image } = await createImport({
      ServiceToken: SERVICE_TOKEN,
      DiskContainers: [{ Format: 'VHD', Url: 'https://vm-images-bucket.s3.amazonaws.com/disk.vhd' }],
      RoleName: ROLE,
      UsageOperation: 'RunInstances:0010',
    }, 'Create → completed (minimal props)');
    expect(task.params).toEqual({
      clientToken: expect.stringMatching(/^[0-9a-f]{64}$/),
      diskContainers: [{ format: 'VHD', url: 'https://vm-images-bucket.s3.amazonaws.com/disk.vhd' }],
      roleName: ROLE,
      usageOperation: 'RunInstances:0010',
      licenseSpecifications: [],
      tagSpecifications: [{ resourceType: 'import-image-task', tags: [{ key: TAG_STACK_ID, value: STACK_ID }] }],
    });
    expectHandlerTags(image, task, {});
    // RemovalPolicy defaults to retain.
    const deleted = await run('Delete (default policy)', cfnEvent('Delete', { ServiceToken: SERVICE_TOKEN, DiskContainers: [{ Format: 'VHD' }], RoleName: ROLE }, {
      PhysicalResourceId: task.importTaskId,
    }));
    expect(deleted.status).toBe('SUCCESS');
    expect(server.state.images.has(image.imageId)).toBe(true);
  });

  describe('2. Update', () => {
    test('a tags-only change keeps the physical ID, re-tags the AMI and snapshots, drops removed keys, starts no task', async () => {
      const oldProps = basicProps({ Tags: [{ Key: 'team', Value: 'infra' }, { Key: 'owner', Value: 'alice' }] });
      const { task, image } = await createImport(oldProps);
      const newProps = basicProps({
        Tags: [{ Key: 'team', Value: 'platform' }, { Key: 'project', Value: 'web' }],
        RemovalPolicy: 'destroy',
        WaitTimeoutSeconds: '900',
      });
      const updated = await run('Update (tags only)', cfnEvent('Update', newProps, { PhysicalResourceId: task.importTaskId, OldResourceProperties: oldProps }));
      expect(updated.error).toBeUndefined();
      expect(updated.status).toBe('SUCCESS');
      expect(updated.physicalResourceId).toBe(task.importTaskId);
      expect(updated.data).toMatchObject({ ImageId: image.imageId, SnapshotIds: snapshotIdsOf(image).join(','), ImportTaskId: task.importTaskId });
      expect(updated.onEventCalls).toBe(1);
      expect(updated.isCompleteCalls).toBe(1);
      expect(callCount('ImportImage')).toBe(1);
      expect(onlyTask()).toBe(task);
      expectHandlerTags(image, task, { team: 'platform', project: 'web' });

      // The new removal policy applies from now on.
      const deleted = await run('Delete (destroy, after update)', cfnEvent('Delete', newProps, { PhysicalResourceId: task.importTaskId }));
      expect(deleted.status).toBe('SUCCESS');
      expect(server.state.images.size).toBe(0);
      expect(server.state.snapshots.size).toBe(0);
    });

    test.each([
      ['destroy', 'retain'],
      ['retain', 'destroy'],
    ])('a disk change starts a new import; the Delete of the OLD physical ID applies the OLD policy (%s → %s)', async (oldPolicy, newPolicy) => {
      const oldProps = basicProps({ RemovalPolicy: oldPolicy });
      const first = await createImport(oldProps);
      const newProps = basicProps({
        RemovalPolicy: newPolicy,
        DiskContainers: [{ Format: 'VMDK', S3Bucket: 'vm-images-bucket', S3Key: 'web/disk2.vmdk' }],
      });
      const updated = await run('Update (new disk) → completed', cfnEvent('Update', newProps, {
        PhysicalResourceId: first.task.importTaskId, OldResourceProperties: oldProps,
      }));
      expect(updated.error).toBeUndefined();
      expect(updated.status).toBe('SUCCESS');
      expect(updated.physicalResourceId).not.toBe(first.task.importTaskId);
      expect(server.state.tasks.size).toBe(2);
      const second = taskOf(updated.physicalResourceId);
      expect(second.params.diskContainers[0]?.userBucket?.s3Key).toBe('web/disk2.vmdk');
      const secondImage = imageOfTask(second);
      expect(updated.data.ImageId).toBe(secondImage.imageId);
      expectHandlerTags(secondImage, second, { team: 'infra' });

      // CloudFormation then deletes the replaced resource, with its old properties.
      const deleted = await run(`Delete old (${oldPolicy})`, cfnEvent('Delete', oldProps, { PhysicalResourceId: first.task.importTaskId }));
      expect(deleted.status).toBe('SUCCESS');
      expect(deleted.physicalResourceId).toBe(first.task.importTaskId);
      const oldSnapshots = snapshotIdsOf(first.image);
      if (oldPolicy === 'destroy') {
        expect(server.state.images.has(first.image.imageId)).toBe(false);
        oldSnapshots.forEach((id) => expect(server.state.snapshots.has(id)).toBe(false));
      } else {
        expect(server.state.images.has(first.image.imageId)).toBe(true);
        oldSnapshots.forEach((id) => expect(server.state.snapshots.has(id)).toBe(true));
      }
      // The new import is untouched either way.
      expect(server.state.images.has(secondImage.imageId)).toBe(true);
      expect(snapshotsOf(secondImage)).toHaveLength(1);
      expect(activeTasks()).toEqual([]);
    });

    test('the rollback of a failed disk change takes back the earlier AMI instead of importing again', async () => {
      const oldProps = basicProps();
      const first = await createImport(oldProps);
      const newProps = basicProps({ DiskContainers: [{ Format: 'VMDK', S3Bucket: 'vm-images-bucket', S3Key: 'web/broken.vmdk' }] });
      server.queueTaskBehaviour({ failAfter: { stages: 1, message: 'ClientError: Unknown OS / Missing OS files.' } });
      const failed = await run('Update (new disk) → failed', cfnEvent('Update', newProps, {
        PhysicalResourceId: first.task.importTaskId, OldResourceProperties: oldProps,
      }));
      expect(failed.status).toBe('FAILED');
      expect(server.state.tasks.size).toBe(2);

      // CloudFormation rolls back with an Update to the old properties. Whichever physical ID
      // it names, the handler finds the AMI it imported for those properties.
      for (const physicalId of [first.task.importTaskId, failed.physicalResourceId]) {
        const rolledBack = await run('Update (rollback)', cfnEvent('Update', oldProps, {
          PhysicalResourceId: physicalId, OldResourceProperties: newProps,
        }));
        expect(rolledBack.error).toBeUndefined();
        expect(rolledBack.status).toBe('SUCCESS');
        expect(rolledBack.physicalResourceId).toBe(first.task.importTaskId);
        expect(rolledBack.data.ImageId).toBe(first.image.imageId);
      }
      expect(callCount('ImportImage')).toBe(2);
      expect(server.state.tasks.size).toBe(2);
      expect(activeTasks()).toEqual([]);
    });

    test('an earlier AMI of the same properties that was destroyed is imported again', async () => {
      const oldProps = basicProps({ RemovalPolicy: 'destroy' });
      const first = await createImport(oldProps);
      const newProps = basicProps({ RemovalPolicy: 'destroy', DiskContainers: [{ Format: 'VMDK', S3Bucket: 'vm-images-bucket', S3Key: 'web/disk2.vmdk' }] });
      const second = await run('Update (new disk)', cfnEvent('Update', newProps, { PhysicalResourceId: first.task.importTaskId, OldResourceProperties: oldProps }));
      await run('Delete old (destroy)', cfnEvent('Delete', oldProps, { PhysicalResourceId: first.task.importTaskId }));
      const back = await run('Update (back to the first disk)', cfnEvent('Update', oldProps, {
        PhysicalResourceId: second.physicalResourceId, OldResourceProperties: newProps,
      }));
      expect(back.status).toBe('SUCCESS');
      expect([first.task.importTaskId, second.physicalResourceId]).not.toContain(back.physicalResourceId);
      expect(callCount('ImportImage')).toBe(3);
    });

    test('the same properties in another key order (e.g. after a construct upgrade) are not a change: no new import', async () => {
      const oldProps = fullProps();
      const { task } = await createImport(oldProps);
      // Same values; object keys in reverse order, as a refactored construct might synthesize them.
      const reversed = (o: object): Props => Object.fromEntries(Object.entries(o).reverse());
      const newProps: Props = reversed({
        ...oldProps,
        DiskContainers: (oldProps.DiskContainers as object[]).map(reversed),
        ClientData: reversed(oldProps.ClientData as object),
      });
      expect(JSON.stringify(newProps)).not.toBe(JSON.stringify(oldProps));
      const updated = await run('Update (same props, other key order)', cfnEvent('Update', newProps, {
        PhysicalResourceId: task.importTaskId, OldResourceProperties: oldProps,
      }));
      expect(updated.status).toBe('SUCCESS');
      expect(updated.physicalResourceId).toBe(task.importTaskId);
      expect(callCount('ImportImage')).toBe(1);
      expect(server.state.tasks.size).toBe(1);
    });
  });

  describe('3. Delete after success', () => {
    test('RETAIN keeps the AMI and its snapshots', async () => {
      const { task, image } = await createImport(basicProps({ RemovalPolicy: 'retain' }));
      const deleted = await run('Delete (retain)', cfnEvent('Delete', basicProps({ RemovalPolicy: 'retain' }), { PhysicalResourceId: task.importTaskId }));
      expect(deleted.status).toBe('SUCCESS');
      expect(deleted.physicalResourceId).toBe(task.importTaskId);
      expect(deleted.isCompleteCalls).toBe(1);
      expect(server.state.images.has(image.imageId)).toBe(true);
      expect(snapshotsOf(image)).toHaveLength(1);
      expect(callCount('DeregisterImage') + callCount('DeleteSnapshot') + callCount('CancelImportTask')).toBe(0);
    });

    test('DESTROY deregisters the AMI and deletes every one of its snapshots', async () => {
      const { task, image } = await createImport(fullProps({ RemovalPolicy: 'destroy' }));
      expect(image.blockDevices).toHaveLength(2);
      const deleted = await run('Delete (destroy)', cfnEvent('Delete', fullProps({ RemovalPolicy: 'destroy' }), { PhysicalResourceId: task.importTaskId }));
      expect(deleted.error).toBeUndefined();
      expect(deleted.status).toBe('SUCCESS');
      expect(server.state.images.size).toBe(0);
      expect(server.state.snapshots.size).toBe(0);
      expect(callCount('DeregisterImage')).toBe(1);
      expect(callCount('DeleteSnapshot')).toBe(2);
      expect(server.callsTo('DeleteSnapshot').every((c) => c.status === 200)).toBe(true);
    });
  });

  test('4. throttling (503 RequestLimitExceeded) on ImportImage and DescribeImportImageTasks is retried by the SDK', async () => {
    server.failNext('ImportImage', THROTTLED, 1);
    server.failNext('DescribeImportImageTasks', THROTTLED, 2);
    const { outcome, task } = await createImport(basicProps(), 'Create (throttled) → completed');
    expect(onlyTask()).toBe(task);
    expect(outcome.onEventCalls).toBe(1);
    expect(outcome.isCompleteCalls).toBe(3);
    expect(server.callsTo('ImportImage').map((c) => c.status)).toEqual([503, 200]);
    expect(server.callsTo('DescribeImportImageTasks').map((c) => c.status)).toEqual([503, 503, 200, 200, 200]);
    expect(activeTasks()).toEqual([]);
  });

  describe('5. 500 InternalError', () => {
    test('on ImportImage and CreateTags is retried; the import succeeds', async () => {
      server.failNext('ImportImage', INTERNAL, 2);
      server.failNext('CreateTags', INTERNAL, 2);
      const { task, image } = await createImport(basicProps(), 'Create (500s) → completed');
      expect(onlyTask()).toBe(task);
      expect(server.callsTo('ImportImage').map((c) => c.status)).toEqual([500, 500, 200]);
      expect(server.callsTo('CreateTags').map((c) => c.status)).toEqual([500, 500, 200]);
      expectHandlerTags(image, task, { team: 'infra' });
    });

    test('a 500 after EC2 created the task (response lost): the retry carries the same ClientToken, so still ONE task', async () => {
      server.failNext('ImportImage', { ...INTERNAL, afterAction: true }, 1);
      const { task } = await createImport(basicProps(), 'Create (lost response) → completed');
      expect(server.callsTo('ImportImage').map((c) => c.status)).toEqual([500, 200]);
      expect(server.state.tasks.size).toBe(1);
      expect(onlyTask()).toBe(task);
    });
  });

  describe('6. IAM propagation', () => {
    test('"service role does not exist" twice, then success: one task', async () => {
      process.env.VM_IMPORT_IAM_RETRY_SECONDS = '10';
      server.failNext('ImportImage', IAM_NOT_READY, 2);
      const { outcome, task } = await createImport(basicProps(), 'Create (IAM not ready ×2) → completed');
      expect(onlyTask()).toBe(task);
      expect(outcome.onEventCalls).toBe(1);
      expect(server.callsTo('ImportImage').map((c) => c.status)).toEqual([400, 400, 200]);
      const retries = jsonLines(outcome.invocations[0]?.logs ?? []).filter((l) => l.message === 'import role not usable yet, retrying');
      expect(retries).toHaveLength(2);
    });

    test('budget exceeded: the error names the role and what to check; no task', async () => {
      process.env.VM_IMPORT_IAM_RETRY_SECONDS = '2';
      server.failNext('ImportImage', IAM_NOT_READY, 20);
      const outcome = await run('Create (IAM never ready)', cfnEvent('Create', basicProps()));
      expect(outcome.status).toBe('FAILED');
      expect(outcome.physicalResourceId).toBe(CREATE_FAILED_MARKER);
      const message = outcome.error?.message ?? '';
      expect(message).toContain(IAM_NOT_READY.message);
      expect(message).toContain(`'${ROLE}'`);
      expect(message).toMatch(/vmie\.amazonaws\.com/);
      expect(message).toMatch(/sts:ExternalId 'vmimport'/);
      expect(message).toMatch(/s3:GetObject/);
      expect(message).toMatch(/iam:PassRole/);
      expect(outcome.responseBytes).toBeLessThanOrEqual(MAX_RESPONSE_BYTES);
      expect(callCount('ImportImage')).toBeGreaterThanOrEqual(2);
      expect(server.state.tasks.size).toBe(0);
    });
  });

  describe('7. failed import', () => {
    test('isComplete throws with EC2\'s StatusMessage and a remedy; the rollback Delete succeeds and leaves nothing', async () => {
      server.queueTaskBehaviour({ failAfter: { stages: 2, message: UNKNOWN_OS } });
      const props = basicProps({ RemovalPolicy: 'destroy' });
      const outcome = await run('Create → import failed', cfnEvent('Create', props));
      expect(outcome.status).toBe('FAILED');
      const task = onlyTask();
      expect(outcome.physicalResourceId).toBe(task.importTaskId);
      expect(outcome.isCompleteCalls).toBe(2);
      const message = outcome.error?.message ?? '';
      expect(message).toContain(task.importTaskId);
      expect(message).toContain(UNKNOWN_OS);
      expect(message).toMatch(/Remedy: .*operating system/);
      expect(Buffer.byteLength(message)).toBeLessThanOrEqual(MAX_RESPONSE_BYTES);
      expect(outcome.responseBytes).toBeLessThanOrEqual(MAX_RESPONSE_BYTES);

      const rollback = await run('Delete (rollback of failed import)', cfnEvent('Delete', props, { PhysicalResourceId: task.importTaskId }));
      expect(rollback.error).toBeUndefined();
      expect(rollback.status).toBe('SUCCESS');
      expect(task.status).toBe('deleted');
      expect(server.state.images.size).toBe(0);
      expect(server.state.snapshots.size).toBe(0);
      expect(callCount('CancelImportTask') + callCount('DeregisterImage') + callCount('DeleteSnapshot')).toBe(0);
    });

    test('a very long StatusMessage is cut so the whole response fits in 4096 bytes', async () => {
      const longMessage = `ClientError: Disk validation failed [${'unsupported OVF descriptor element; '.repeat(200)}]`;
      server.queueTaskBehaviour({ failAfter: { stages: 1, message: longMessage } });
      const outcome = await run('Create → import failed (long message)', cfnEvent('Create', basicProps()));
      expect(outcome.status).toBe('FAILED');
      const message = outcome.error?.message ?? '';
      expect(message).toMatch(/^VM import import-ami-[0-9a-f]+ failed: ClientError: Disk validation failed/);
      expect(Buffer.byteLength(message)).toBeLessThanOrEqual(MAX_RESPONSE_BYTES);
      expect(outcome.responseBytes).toBeLessThanOrEqual(MAX_RESPONSE_BYTES);
    });
  });

  test('8. a task cancelled out of band: the error says it was cancelled', async () => {
    server.queueTaskBehaviour({ hold: true });
    const outcome = await run('Create → cancelled out of band', cfnEvent('Create', basicProps()), {
      beforePoll: async (poll) => {
        if (poll === 2) {
          await outOfBand.send(new CancelImportTaskCommand({ ImportTaskId: onlyTask().importTaskId }));
        }
      },
    });
    expect(outcome.status).toBe('FAILED');
    expect(outcome.isCompleteCalls).toBe(2);
    const message = outcome.error?.message ?? '';
    expect(message).toContain(CANCELLED_MESSAGE);
    expect(message).toMatch(/was cancelled/);
    expect(activeTasks()).toEqual([]);
    expect(server.state.images.size).toBe(0);
  });

  describe('9. timeout', () => {
    test('a task that outlives WaitTimeoutSeconds is cancelled; the error gives the last progress and status', async () => {
      server.queueTaskBehaviour({ hold: true });
      const props = basicProps({ WaitTimeoutSeconds: '1' });
      const outcome = await run('Create → timed out (1 s wait)', cfnEvent('Create', props), { pollIntervalMs: 250 });
      expect(outcome.status).toBe('FAILED');
      const task = onlyTask();
      expect(outcome.physicalResourceId).toBe(task.importTaskId);
      expect(outcome.isCompleteCalls).toBeGreaterThanOrEqual(2);
      const message = outcome.error?.message ?? '';
      expect(message).toContain(`VM import ${task.importTaskId} did not finish within 1 seconds and was cancelled`);
      expect(message).toContain("last progress 2%, status message 'pending'");
      expect(callCount('CancelImportTask')).toBe(1);
      expect(['deleting', 'deleted']).toContain(task.status);
      expect(task.cancelReason).toMatch(/wait of 1 s exceeded/);
      expect(activeTasks()).toEqual([]);

      const rollback = await run('Delete (rollback of timed-out import)', cfnEvent('Delete', props, { PhysicalResourceId: task.importTaskId }));
      expect(rollback.status).toBe('SUCCESS');
      expect(callCount('CancelImportTask')).toBe(1);
      expect(server.state.images.size).toBe(0);
    });

    test('the task completes between the last describe and the cancel: the import succeeds (no orphaned, untagged AMI)', async () => {
      server.queueTaskBehaviour({ stagesToComplete: 2 });
      const props = basicProps({ WaitTimeoutSeconds: '1' });
      const outcome = await run('Create → deadline races completion', cfnEvent('Create', props), {
        beforePolling: (event) => ({ ...event, Data: { ...event.Data, StartedAt: String(Date.now() - 5_000) } }),
        beforePoll: () => {
          const task = onlyTask();
          // EC2's answer to cancelling a task that has just completed; the next describe reports it completed.
          server.failNext('CancelImportTask', { status: 400, code: 'IncorrectState', message: `The import task ${task.importTaskId} is in the completed state and cannot be cancelled.` });
        },
      });
      expect(outcome.error?.message).toBeUndefined();
      expect(outcome.status).toBe('SUCCESS');
      const task = onlyTask();
      expect(task.status).toBe('completed');
      expect(callCount('CancelImportTask')).toBe(1);
      expectHandlerTags(imageOfTask(task), task, { team: 'infra' });
    });

    test('the default wait (55 min) applies when WaitTimeoutSeconds is absent: an import started 56 min ago is cancelled', async () => {
      server.queueTaskBehaviour({ hold: true });
      const props = basicProps();
      delete props.WaitTimeoutSeconds;
      const outcome = await run('Create → timed out (StartedAt in the past)', cfnEvent('Create', props), {
        beforePolling: (event) => ({ ...event, Data: { ...event.Data, StartedAt: String(Date.now() - 56 * 60 * 1000) } }),
      });
      expect(outcome.status).toBe('FAILED');
      expect(outcome.isCompleteCalls).toBe(1);
      expect(outcome.error?.message).toMatch(/did not finish within 3300 seconds and was cancelled/);
      expect(activeTasks()).toEqual([]);
      expect(['deleting', 'deleted']).toContain(onlyTask().status);
    });
  });

  describe('10. duplicate Create (same RequestId, as a Lambda or CloudFormation retry)', () => {
    test('one after the other: same physical ID, ONE task', async () => {
      const event = cfnEvent('Create', basicProps());
      const first = await run('Create (first delivery)', event);
      const second = await run('Create (duplicate delivery)', event);
      expect(first.status).toBe('SUCCESS');
      expect(second.status).toBe('SUCCESS');
      expect(second.physicalResourceId).toBe(first.physicalResourceId);
      expect(second.data.ImageId).toBe(first.data.ImageId);
      expect(callCount('ImportImage')).toBe(2);
      expect(server.state.tasks.size).toBe(1);
      expect(server.state.images.size).toBe(1);
    });

    test('concurrently, while the first is still running: same physical ID, ONE task', async () => {
      const event = cfnEvent('Create', basicProps());
      const [a, b] = await Promise.all([run('Create (concurrent delivery A)', event), run('Create (concurrent delivery B)', event)]);
      expect(a.status).toBe('SUCCESS');
      expect(b.status).toBe('SUCCESS');
      expect(a.physicalResourceId).toBe(b.physicalResourceId);
      expect(a.data.ImageId).toBe(b.data.ImageId);
      expect(server.state.tasks.size).toBe(1);
      expect(server.state.images.size).toBe(1);
    });

    test('a different RequestId is a different import', async () => {
      await run('Create (request 1)', cfnEvent('Create', basicProps()));
      await run('Create (request 2)', cfnEvent('Create', basicProps()));
      expect(server.state.tasks.size).toBe(2);
    });
  });

  describe('11. Delete while the import is running', () => {
    test.each(['retain', 'destroy'])('cancels the task and leaves nothing running (%s)', async (policy) => {
      server.queueTaskBehaviour({ hold: true });
      const props = basicProps({ RemovalPolicy: policy });
      const started = await run('Create (abandoned after 1 poll)', cfnEvent('Create', props), { stopAfterPolls: 1 });
      expect(started.status).toBe('IN_PROGRESS');
      const task = onlyTask();
      const deleted = await run(`Delete during import (${policy})`, cfnEvent('Delete', props, { PhysicalResourceId: task.importTaskId }));
      expect(deleted.error).toBeUndefined();
      expect(deleted.status).toBe('SUCCESS');
      expect(callCount('CancelImportTask')).toBe(1);
      expect(task.cancelReason).toMatch(/deleted/);
      expect(['deleting', 'deleted']).toContain(task.status);
      expect(activeTasks()).toEqual([]);
      expect(server.state.images.size).toBe(0);
    });

    test('the task completes between the describe and the cancel: DESTROY still removes the (untagged) AMI and snapshots', async () => {
      server.queueTaskBehaviour({ stagesToComplete: 2 });
      const props = basicProps({ RemovalPolicy: 'destroy' });
      const started = await run('Create (abandoned before polling)', cfnEvent('Create', props), { stopAfterPolls: 0 });
      const task = taskOf(started.physicalResourceId);
      // EC2's answer to cancelling a task that has just completed.
      server.failNext('CancelImportTask', { status: 400, code: 'IncorrectState', message: `The import task ${task.importTaskId} is in the completed state and cannot be cancelled.` });
      const deleted = await run('Delete racing completion (destroy)', cfnEvent('Delete', props, { PhysicalResourceId: task.importTaskId }));
      expect(deleted.error).toBeUndefined();
      expect(deleted.status).toBe('SUCCESS');
      expect(task.status).toBe('completed');
      expect(server.state.images.size).toBe(0);
      expect(server.state.snapshots.size).toBe(0);
      // The outputs were tagged with the stack ID before the (tag-conditioned) destructive calls.
      const tagged = server.callsTo('CreateTags').filter((c) => c.status === 200).map((c) => c.params);
      expect(tagged.some((p) => p['ResourceId.1']?.startsWith('ami-') && p['Tag.1.Key'] === TAG_STACK_ID && p['Tag.1.Value'] === STACK_ID)).toBe(true);
      expect(tagged.some((p) => p['ResourceId.1']?.startsWith('snap-') && p['Tag.1.Key'] === TAG_STACK_ID)).toBe(true);
    });
  });

  test('12. Delete (DESTROY) after the AMI was deregistered by hand deletes the remaining snapshots', async () => {
    const props = fullProps({ RemovalPolicy: 'destroy' });
    const { task, image } = await createImport(props);
    server.deleteImageOutOfBand(image.imageId);
    expect(snapshotsOf(image)).toHaveLength(2);
    const deleted = await run('Delete (destroy, AMI gone)', cfnEvent('Delete', props, { PhysicalResourceId: task.importTaskId }));
    expect(deleted.error).toBeUndefined();
    expect(deleted.status).toBe('SUCCESS');
    expect(server.state.snapshots.size).toBe(0);
    expect(server.state.images.size).toBe(0);
  });

  describe('13. an import older than the 7-day listing window', () => {
    test('DESTROY finds the AMI by its import-task-id tag and destroys it with its snapshots', async () => {
      const props = fullProps({ RemovalPolicy: 'destroy' });
      const { task, image } = await createImport(props);
      server.expireTask(task.importTaskId);
      const deleted = await run('Delete (destroy, task expired)', cfnEvent('Delete', props, { PhysicalResourceId: task.importTaskId }));
      expect(deleted.error).toBeUndefined();
      expect(deleted.status).toBe('SUCCESS');
      expect(server.state.images.has(image.imageId)).toBe(false);
      expect(server.state.snapshots.size).toBe(0);
      const filters = server.callsTo('DescribeImages').map((c) => c.params);
      expect(filters).toContainEqual(expect.objectContaining({ 'Filter.1.Name': `tag:${TAG_IMPORT_TASK_ID}`, 'Filter.1.Value.1': task.importTaskId }));
    });

    test('RETAIN keeps it', async () => {
      const props = basicProps({ RemovalPolicy: 'retain' });
      const { task, image } = await createImport(props);
      server.expireTask(task.importTaskId);
      const deleted = await run('Delete (retain, task expired)', cfnEvent('Delete', props, { PhysicalResourceId: task.importTaskId }));
      expect(deleted.status).toBe('SUCCESS');
      expect(server.state.images.has(image.imageId)).toBe(true);
      expect(snapshotsOf(image)).toHaveLength(1);
      expect(callCount('DeregisterImage') + callCount('DeleteSnapshot')).toBe(0);
    });

    test('a tags-only Update finds the AMI by tag and re-tags it', async () => {
      const oldProps = basicProps();
      const { task, image } = await createImport(oldProps);
      server.expireTask(task.importTaskId);
      const newProps = basicProps({ Tags: [{ Key: 'team', Value: 'platform' }] });
      const updated = await run('Update (tags only, task expired)', cfnEvent('Update', newProps, { PhysicalResourceId: task.importTaskId, OldResourceProperties: oldProps }));
      expect(updated.error).toBeUndefined();
      expect(updated.status).toBe('SUCCESS');
      expect(updated.data.ImageId).toBe(image.imageId);
      expectHandlerTags(image, task, { team: 'platform' });
    });
  });

  test.each([
    ['the CREATE_FAILED marker', 'retain', CREATE_FAILED_MARKER],
    ['the CREATE_FAILED marker', 'destroy', CREATE_FAILED_MARKER],
    ['a request ID', 'destroy', 'f3a2c1d0-5b6e-4f70-8a91-b2c3d4e5f607'],
  ])('14. Delete of a Create that never started (%s, %s): success, zero EC2 calls', async (_what, policy, physicalId) => {
    const deleted = await run(`Delete (never started, ${policy})`, cfnEvent('Delete', basicProps({ RemovalPolicy: policy }), { PhysicalResourceId: physicalId }));
    expect(deleted.error).toBeUndefined();
    expect(deleted.status).toBe('SUCCESS');
    expect(deleted.physicalResourceId).toBe(physicalId);
    expect(server.calls).toEqual([]);
  });

  test('15. every isComplete poll logs exactly one JSON line with importTaskId, progress and statusMessage', async () => {
    server.queueTaskBehaviour({ stagesToComplete: 6 });
    const outcome = await run('Create → completed (6 polls)', cfnEvent('Create', basicProps()));
    expect(outcome.status).toBe('SUCCESS');
    const importTaskId = outcome.physicalResourceId;
    const polls = outcome.invocations.filter((i) => i.entry === 'isComplete');
    expect(polls).toHaveLength(6);
    const lines = polls.map((p) => {
      const json = jsonLines(p.logs);
      expect(json).toHaveLength(1);
      expect(p.logs).toHaveLength(1);
      return json[0] as Record<string, unknown>;
    });
    const running = lines.slice(0, -1);
    for (const line of running) {
      expect(line).toMatchObject({ message: 'import progress', importTaskId, status: 'active' });
      expect(typeof line.progress).toBe('string');
      expect(IMPORT_STAGES).toContain(line.statusMessage);
    }
    const progress = running.map((l) => Number(l.progress));
    expect(progress).toEqual([...progress].sort((x, y) => x - y));
    expect(new Set(progress).size).toBe(progress.length);
    // The last poll reports completion (EC2 has no Progress or StatusMessage for a completed task).
    expect(lines[lines.length - 1]).toMatchObject({ message: 'import completed', importTaskId, imageId: outcome.data.ImageId });
  });
});
