import {
  CancelImportTaskCommand,
  CreateTagsCommand,
  DeleteSnapshotCommand,
  DeleteTagsCommand,
  DeregisterImageCommand,
  DescribeImagesCommand,
  DescribeImagesCommandInput,
  DescribeImportImageTasksCommand,
  DescribeRegionsCommand,
  DescribeSnapshotsCommand,
  EC2Client,
  EC2ClientConfig,
  EC2ServiceException,
  ImportImageCommand,
  ImportImageCommandInput,
  ImportImageTask,
  ImportSnapshotCommand,
  ImportSnapshotCommandInput,
  ImportSnapshotTask,
  DescribeImportSnapshotTasksCommand,
  RegisterImageCommand,
  RegisterImageCommandInput,
  DescribeImageAttributeCommand,
} from '@aws-sdk/client-ec2';
import { CANCELLED_MESSAGE, IMPORT_STAGES, LocalEc2, SNAPSHOT_IMPORT_STAGES } from './local-ec2';

jest.setTimeout(10_000);

const HEX17 = /^[0-9a-f]{17}$/;

function makeClient(endpoint: string, config: Partial<EC2ClientConfig> = {}): EC2Client {
  return new EC2Client({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
    maxAttempts: 1,
    ...config,
  });
}

/** Runs a promise that must fail with an EC2 service error and returns that error. */
async function ec2Error(promise: Promise<unknown>): Promise<EC2ServiceException> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof EC2ServiceException) {
      return err;
    }
    throw err;
  }
  throw new Error('expected the call to fail');
}

async function expectEc2Error(promise: Promise<unknown>, name: string, status: number, message?: string | RegExp): Promise<EC2ServiceException> {
  const err = await ec2Error(promise);
  expect(err.name).toBe(name);
  expect(err.$metadata.httpStatusCode).toBe(status);
  if (message !== undefined) {
    expect(err.message).toMatch(message);
  }
  return err;
}

/** Number of leaf elements (`<a>text</a>`) in an XML document, not counting `requestId`. */
function xmlLeafCount(xml: string): number {
  const leaves = xml.match(/<([A-Za-z][A-Za-z0-9]*)>[^<]*<\/\1>/g) ?? [];
  return leaves.filter((leaf) => !leaf.startsWith('<requestId>')).length;
}

/** Number of scalar values in an SDK output, not counting `$metadata`. */
function outputLeafCount(value: unknown): number {
  if (value === undefined) {
    return 0;
  }
  if (value === null || typeof value !== 'object' || value instanceof Date) {
    return 1;
  }
  if (Array.isArray(value)) {
    return value.reduce((n: number, v: unknown) => n + outputLeafCount(v), 0);
  }
  return Object.entries(value)
    .filter(([key]) => key !== '$metadata')
    .reduce((n, [, v]) => n + outputLeafCount(v), 0);
}

function basicImport(overrides: Partial<ImportImageCommandInput> = {}): ImportImageCommand {
  return new ImportImageCommand({
    DiskContainers: [{ Format: 'VMDK', UserBucket: { S3Bucket: 'images', S3Key: 'disk.vmdk' } }],
    RoleName: 'vmimport-role',
    LicenseType: 'BYOL',
    ...overrides,
  });
}

describe('LocalEc2', () => {
  let ec2: LocalEc2;
  let client: EC2Client;

  beforeAll(async () => {
    ec2 = await LocalEc2.start();
    client = makeClient(ec2.endpoint);
  });

  beforeEach(() => {
    ec2.reset();
  });

  afterAll(async () => {
    client.destroy();
    await ec2.stop();
  });

  async function startImport(overrides: Partial<ImportImageCommandInput> = {}): Promise<string> {
    const res = await client.send(basicImport(overrides));
    return res.ImportTaskId ?? '';
  }

  async function describeTask(id: string): Promise<ImportImageTask> {
    const res = await client.send(new DescribeImportImageTasksCommand({ ImportTaskIds: [id] }));
    expect(res.ImportImageTasks).toHaveLength(1);
    return res.ImportImageTasks?.[0] ?? {};
  }

  interface Imported {
    readonly taskId: string;
    readonly imageId: string;
    readonly snapshotIds: string[];
  }

  async function importedImage(overrides: Partial<ImportImageCommandInput> = {}): Promise<Imported> {
    const taskId = await startImport(overrides);
    const image = ec2.completeNow(taskId);
    return { taskId, imageId: image.imageId, snapshotIds: image.blockDevices.map((d) => d.snapshotId) };
  }

  /** Replays a request the SDK made, byte for byte in meaning, and returns the raw XML answer. */
  async function rawReplay(action: string, index = 0): Promise<string> {
    const call = ec2.callsTo(action)[index];
    const body = new URLSearchParams({ Action: action, Version: '2016-11-15', ...call?.params });
    const res = await fetch(`${ec2.endpoint}/`, { method: 'POST', body });
    expect(res.status).toBe(200);
    return res.text();
  }

  describe('server', () => {
    test('listens on 127.0.0.1 only, on its own port, and stops', async () => {
      const other = await LocalEc2.start();
      expect(other.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(other.endpoint).not.toBe(ec2.endpoint);
      const c = makeClient(other.endpoint);
      await c.send(new DescribeImagesCommand({}));
      c.destroy();
      await other.stop();
      await other.stop();
      await expect(fetch(`${other.endpoint}/`, { method: 'POST', body: 'Action=DescribeImages' })).rejects.toThrow();
    });

    test('answers in the EC2 response envelope with a requestId', async () => {
      const res = await fetch(`${ec2.endpoint}/`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'Action=DescribeImages&Version=2016-11-15&Owner.1=self',
      });
      const text = await res.text();
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/xml/);
      expect(text).toMatch(/^<\?xml version="1.0" encoding="UTF-8"\?>\n<DescribeImagesResponse xmlns="http:\/\/ec2.amazonaws.com\/doc\/2016-11-15\/"><requestId>[0-9a-f-]{36}<\/requestId><\/DescribeImagesResponse>$/);
      expect(ec2.calls).toEqual([{ action: 'DescribeImages', params: { 'Owner.1': 'self' }, injectedFault: undefined, status: 200 }]);
    });

    test('answers errors in the EC2 error envelope', async () => {
      const res = await fetch(`${ec2.endpoint}/`, { method: 'POST', body: 'Action=RunFooBar&Version=2016-11-15' });
      const text = await res.text();
      expect(res.status).toBe(400);
      expect(text).toMatch(/^<\?xml version="1.0" encoding="UTF-8"\?>\n<Response><Errors><Error><Code>InvalidAction<\/Code><Message>The action RunFooBar is not valid for this web service.<\/Message><\/Error><\/Errors><RequestID>[0-9a-f-]{36}<\/RequestID><\/Response>$/);
    });

    test('accepts GET query strings too', async () => {
      const res = await fetch(`${ec2.endpoint}/?Action=DescribeSnapshots&Version=2016-11-15`);
      expect(res.status).toBe(200);
      expect(await res.text()).toContain('<DescribeSnapshotsResponse');
    });

    test('unknown action through the SDK is InvalidAction 400', async () => {
      await expectEc2Error(client.send(new DescribeRegionsCommand({})), 'InvalidAction', 400, 'The action DescribeRegions is not valid for this web service.');
      expect(ec2.callsTo('DescribeRegions')).toHaveLength(1);
    });

    test('DryRun answers DryRunOperation 412', async () => {
      await expectEc2Error(client.send(basicImport({ DryRun: true })), 'DryRunOperation', 412, /DryRun flag is set/);
      expect(ec2.state.tasks.size).toBe(0);
    });

    test('the SDK sees the request id header', async () => {
      const res = await client.send(new DescribeImagesCommand({}));
      expect(res.$metadata.requestId).toMatch(/^[0-9a-f-]{36}$/);
      expect(res.$metadata.httpStatusCode).toBe(200);
    });
  });

  describe('ImportImage', () => {
    test('creates a pending task, records every parameter and mirrors them back', async () => {
      const uploadStart = new Date('2024-05-01T10:00:00Z');
      const res = await client.send(new ImportImageCommand({
        Architecture: 'x86_64',
        BootMode: 'uefi',
        ClientData: { Comment: 'from ci', UploadStart: uploadStart, UploadSize: 2.5 },
        ClientToken: 'token-1',
        Description: 'web server & <friends>',
        DiskContainers: [
          { Description: 'root', DeviceName: '/dev/sda1', Format: 'vmdk', UserBucket: { S3Bucket: 'images', S3Key: 'root.vmdk' } },
          { Format: 'RAW', Url: 's3://images/data.raw' },
        ],
        Encrypted: true,
        Hypervisor: 'xen',
        KmsKeyId: 'alias/images',
        LicenseType: 'BYOL',
        Platform: 'Linux',
        RoleName: 'my-vmimport',
        UsageOperation: 'RunInstances',
        LicenseSpecifications: [{ LicenseConfigurationArn: 'arn:aws:license-manager:us-east-1:123456789012:license-configuration:lic-1' }],
        TagSpecifications: [{ ResourceType: 'import-image-task', Tags: [{ Key: 'Name', Value: 'web' }, { Key: 'team', Value: '' }] }],
      }));

      expect(res.ImportTaskId).toMatch(/^import-ami-[0-9a-f]{17}$/);
      expect(res).toMatchObject({
        Architecture: 'x86_64',
        Description: 'web server & <friends>',
        Encrypted: true,
        Hypervisor: 'xen',
        KmsKeyId: 'alias/images',
        LicenseType: 'BYOL',
        Platform: 'Linux',
        Progress: '2',
        Status: 'active',
        StatusMessage: 'pending',
        UsageOperation: 'RunInstances',
        LicenseSpecifications: [{ LicenseConfigurationArn: 'arn:aws:license-manager:us-east-1:123456789012:license-configuration:lic-1' }],
        Tags: [{ Key: 'Name', Value: 'web' }, { Key: 'team', Value: '' }],
        SnapshotDetails: [
          { Description: 'root', DeviceName: '/dev/sda1', DiskImageSize: 0, Format: 'VMDK', Status: 'active', UserBucket: { S3Bucket: 'images', S3Key: 'root.vmdk' } },
          { DeviceName: '/dev/sdb', DiskImageSize: 0, Format: 'RAW', Status: 'active', Url: 's3://images/data.raw' },
        ],
      });
      expect(res.ImageId).toBeUndefined();

      const params = ec2.callsTo('ImportImage')[0]?.params ?? {};
      expect(params).toMatchObject({
        'DiskContainer.1.Format': 'vmdk',
        'DiskContainer.1.UserBucket.S3Bucket': 'images',
        'DiskContainer.1.UserBucket.S3Key': 'root.vmdk',
        'DiskContainer.2.Url': 's3://images/data.raw',
        'TagSpecification.1.ResourceType': 'import-image-task',
        'TagSpecification.1.Tag.1.Key': 'Name',
        'TagSpecification.1.Tag.2.Value': '',
        'LicenseSpecifications.1.LicenseConfigurationArn': 'arn:aws:license-manager:us-east-1:123456789012:license-configuration:lic-1',
        'ClientData.UploadStart': '2024-05-01T10:00:00Z',
        'RoleName': 'my-vmimport',
        'Encrypted': 'true',
      });

      const task = ec2.state.tasks.get(res.ImportTaskId ?? '');
      expect(task?.params).toEqual({
        architecture: 'x86_64',
        bootMode: 'uefi',
        clientData: { comment: 'from ci', uploadStart: '2024-05-01T10:00:00Z', uploadEnd: undefined, uploadSize: 2.5 },
        clientToken: 'token-1',
        description: 'web server & <friends>',
        diskContainers: [
          { description: 'root', deviceName: '/dev/sda1', format: 'vmdk', snapshotId: undefined, url: undefined, userBucket: { s3Bucket: 'images', s3Key: 'root.vmdk' } },
          { description: undefined, deviceName: undefined, format: 'RAW', snapshotId: undefined, url: 's3://images/data.raw', userBucket: undefined },
        ],
        encrypted: true,
        hypervisor: 'xen',
        kmsKeyId: 'alias/images',
        licenseType: 'BYOL',
        platform: 'Linux',
        roleName: 'my-vmimport',
        usageOperation: 'RunInstances',
        licenseSpecifications: ['arn:aws:license-manager:us-east-1:123456789012:license-configuration:lic-1'],
        tagSpecifications: [{ resourceType: 'import-image-task', tags: [{ key: 'Name', value: 'web' }, { key: 'team', value: '' }] }],
      });
      expect(task).toMatchObject({ status: 'active', statusMessage: 'pending', progress: '2', stage: 0, tags: [{ key: 'Name', value: 'web' }, { key: 'team', value: '' }] });
    });

    test('a repeated ClientToken with the same parameters returns the same task', async () => {
      const first = await client.send(basicImport({ ClientToken: 'abc' }));
      const second = await client.send(basicImport({ ClientToken: 'abc' }));
      expect(second.ImportTaskId).toBe(first.ImportTaskId);
      expect(ec2.state.tasks.size).toBe(1);
      const third = await client.send(basicImport({ ClientToken: 'other' }));
      expect(third.ImportTaskId).not.toBe(first.ImportTaskId);
      expect(ec2.state.tasks.size).toBe(2);
    });

    test('a repeated ClientToken with different parameters is IdempotentParameterMismatch', async () => {
      await client.send(basicImport({ ClientToken: 'abc' }));
      await expectEc2Error(client.send(basicImport({ ClientToken: 'abc', Description: 'changed' })),
        'IdempotentParameterMismatch', 400, /inconsistent with arguments used in previous request/);
      expect(ec2.state.tasks.size).toBe(1);
    });

    test.each<[string, Partial<ImportImageCommandInput>, string, RegExp]>([
      ['arm64', { Architecture: 'arm64' }, 'InvalidParameterValue', /Value \(arm64\) for parameter Architecture is invalid/],
      ['uefi-preferred', { BootMode: 'uefi-preferred' }, 'InvalidParameterValue', /BootMode/],
      ['an unknown format', { DiskContainers: [{ Format: 'QCOW2', Url: 'https://example.com/a' }] }, 'InvalidParameterValue', /Format/],
      ['no disk containers', { DiskContainers: [] }, 'MissingParameter', /DiskContainer/],
      ['a disk without a source', { DiskContainers: [{ Format: 'VMDK' }] }, 'InvalidParameter', /Url, UserBucket or SnapshotId/],
      ['an http url', { DiskContainers: [{ Format: 'VMDK', Url: 'http://example.com/a' }] }, 'InvalidParameter', /https:\/\/ or s3:\/\//],
      ['KmsKeyId without Encrypted', { KmsKeyId: 'alias/x' }, 'InvalidParameterCombination', /Encrypted/],
      ['a tag spec for images', { TagSpecifications: [{ ResourceType: 'image', Tags: [{ Key: 'a', Value: 'b' }] }] }, 'InvalidParameterValue', /not a valid taggable resource type/],
      ['an aws: tag', { TagSpecifications: [{ ResourceType: 'import-image-task', Tags: [{ Key: 'aws:x', Value: 'b' }] }] }, 'InvalidParameterValue', /reserved/],
    ])('rejects %s', async (_label, overrides, code, message) => {
      await expectEc2Error(client.send(basicImport(overrides)), code, 400, message);
      expect(ec2.state.tasks.size).toBe(0);
    });
  });

  describe('DescribeImportImageTasks life cycle', () => {
    test('advances one stage per call and completes with an AMI and snapshots', async () => {
      const id = await startImport({ Description: 'app' });
      const seen: ImportImageTask[] = [];
      for (let i = 0; i < 3; i++) {
        seen.push(await describeTask(id));
      }
      expect(seen.map((t) => t.Status)).toEqual(['active', 'active', 'completed']);
      expect(seen.map((t) => t.StatusMessage)).toEqual(['validated', 'preparing to boot', undefined]);
      expect(Number(seen[1]?.Progress)).toBeGreaterThan(Number(seen[0]?.Progress));
      expect(Number(seen[0]?.Progress)).toBeGreaterThan(2);
      expect(seen[0]?.SnapshotDetails?.[0]?.DiskImageSize).toBe(1073741824);

      const done = seen[2] ?? {};
      expect(done.Progress).toBeUndefined();
      expect(done.ImageId).toMatch(/^ami-[0-9a-f]{17}$/);
      expect(done).toMatchObject({
        Architecture: 'x86_64', BootMode: 'legacy-bios', Encrypted: false, LicenseType: 'BYOL', Platform: 'Linux', Description: 'app',
      });
      const detail = done.SnapshotDetails?.[0] ?? {};
      expect(detail).toMatchObject({ DeviceName: '/dev/sda1', DiskImageSize: 1073741824, Format: 'VMDK', Status: 'completed' });
      expect(detail.SnapshotId).toMatch(/^snap-[0-9a-f]{17}$/);
      expect(detail.SnapshotId?.slice(5)).toMatch(HEX17);

      const image = ec2.state.images.get(done.ImageId ?? '');
      expect(image).toMatchObject({ state: 'available', importTaskId: id, name: id, blockDevices: [{ deviceName: '/dev/sda1', snapshotId: detail.SnapshotId }] });
      expect(ec2.state.snapshots.get(detail.SnapshotId ?? '')).toMatchObject({ state: 'completed', volumeSize: 8, encrypted: false });

      const again = await describeTask(id);
      expect(again.Status).toBe('completed');
      expect(again.ImageId).toBe(done.ImageId);
      expect(ec2.state.images.size).toBe(1);
    });

    test('walks through every StatusMessage with rising Progress when given enough stages', async () => {
      ec2.queueTaskBehaviour({ stagesToComplete: IMPORT_STAGES.length });
      const id = await startImport();
      const messages = ['pending'];
      const progress = [2];
      for (let i = 1; i < IMPORT_STAGES.length; i++) {
        const t = await describeTask(id);
        expect(t.Status).toBe('active');
        messages.push(t.StatusMessage ?? '');
        progress.push(Number(t.Progress));
      }
      expect(messages).toEqual(IMPORT_STAGES);
      expect([...progress].sort((a, b) => a - b)).toEqual(progress);
      expect(new Set(progress).size).toBe(progress.length);
      expect((await describeTask(id)).Status).toBe('completed');
    });

    test('each call advances every active task; listing all returns them all', async () => {
      const a = await startImport();
      const b = await startImport();
      await client.send(new DescribeImportImageTasksCommand({ ImportTaskIds: [a] }));
      expect(ec2.state.tasks.get(b)?.stage).toBe(1);
      const all = await client.send(new DescribeImportImageTasksCommand({}));
      expect(all.ImportImageTasks?.map((t) => t.ImportTaskId)).toEqual([a, b]);
      expect(ec2.callsTo('DescribeImportImageTasks')[0]?.params).toEqual({ 'ImportTaskId.1': a });
    });

    test('imports several disks into one AMI with one snapshot each', async () => {
      const id = await startImport({
        DiskContainers: [
          { Format: 'ova', UserBucket: { S3Bucket: 'b', S3Key: 'vm.ova' } },
          { Format: 'VHDX', UserBucket: { S3Bucket: 'b', S3Key: 'data.vhdx' } },
        ],
      });
      const image = ec2.completeNow(id);
      const task = await describeTask(id);
      expect(task.SnapshotDetails?.map((d) => [d.DeviceName, d.Format, d.SnapshotId])).toEqual([
        ['/dev/sda1', 'VMDK', image.blockDevices[0]?.snapshotId],
        ['/dev/sdb', 'VHDX', image.blockDevices[1]?.snapshotId],
      ]);
      expect(ec2.state.snapshots.size).toBe(2);
    });

    test('encrypted imports produce encrypted snapshots with the KMS key', async () => {
      const id = await startImport({ Encrypted: true, KmsKeyId: '1234abcd-12ab-34cd-56ef-1234567890ab', Platform: 'Windows', LicenseType: 'AWS' });
      const image = ec2.completeNow(id);
      const task = await describeTask(id);
      expect(task).toMatchObject({ Encrypted: true, KmsKeyId: '1234abcd-12ab-34cd-56ef-1234567890ab', Platform: 'Windows', LicenseType: 'AWS' });
      expect(image.blockDevices[0]).toMatchObject({ encrypted: true, kmsKeyId: 'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab' });
      const images = await client.send(new DescribeImagesCommand({ ImageIds: [image.imageId] }));
      expect(images.Images?.[0]).toMatchObject({
        Platform: 'windows',
        PlatformDetails: 'Windows',
        UsageOperation: 'RunInstances:0002',
        BlockDeviceMappings: [{ Ebs: { Encrypted: true, KmsKeyId: 'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab' } }],
      });
    });

    test('a task configured to fail ends deleted with its message and no AMI', async () => {
      ec2.queueTaskBehaviour({ failAfter: { stages: 2, message: 'ClientError: Unknown OS / Missing OS files.' } });
      const id = await startImport();
      expect((await describeTask(id)).Status).toBe('active');
      const failed = await describeTask(id);
      expect(failed).toMatchObject({ Status: 'deleted', StatusMessage: 'ClientError: Unknown OS / Missing OS files.' });
      expect(failed.Progress).toBeUndefined();
      expect(failed.ImageId).toBeUndefined();
      expect((await describeTask(id)).Status).toBe('deleted');
      expect(ec2.state.images.size).toBe(0);
    });

    test('the default behaviour comes from start options', async () => {
      const other = await LocalEc2.start({ taskBehaviour: { stagesToComplete: 1, volumeSizeGiB: 30, detectedArchitecture: 'i386' } });
      const c = makeClient(other.endpoint);
      try {
        const { ImportTaskId } = await c.send(basicImport());
        const res = await c.send(new DescribeImportImageTasksCommand({ ImportTaskIds: [ImportTaskId ?? ''] }));
        expect(res.ImportImageTasks?.[0]).toMatchObject({ Status: 'completed', Architecture: 'i386' });
        const images = await c.send(new DescribeImagesCommand({ Owners: ['self'] }));
        expect(images.Images?.[0]?.BlockDeviceMappings?.[0]?.Ebs?.VolumeSize).toBe(30);
      } finally {
        c.destroy();
        await other.stop();
      }
    });

    test('hold keeps a task active until released; completeNow finishes it at once', async () => {
      ec2.queueTaskBehaviour({ hold: true });
      const held = await startImport();
      for (let i = 0; i < 5; i++) {
        expect(await describeTask(held)).toMatchObject({ Status: 'active', StatusMessage: 'pending', Progress: '2' });
      }
      ec2.setTaskBehaviour(held, { stagesToComplete: 1 });
      expect((await describeTask(held)).Status).toBe('completed');

      ec2.queueTaskBehaviour({ hold: true });
      const other = await startImport();
      const image = ec2.completeNow(other);
      expect(await describeTask(other)).toMatchObject({ Status: 'completed', ImageId: image.imageId });
      expect(() => ec2.completeNow(other)).toThrow(/not active/);
    });

    test('failNow fails an active task at once', async () => {
      const id = await startImport();
      ec2.failNow(id, 'ClientError: Unsupported kernel version 6.1');
      expect(await describeTask(id)).toMatchObject({ Status: 'deleted', StatusMessage: 'ClientError: Unsupported kernel version 6.1' });
    });

    test('an unknown task id is InvalidConversionTaskId.Malformed; a malformed one too', async () => {
      await expectEc2Error(client.send(new DescribeImportImageTasksCommand({ ImportTaskIds: ['import-ami-0123456789abcdef0'] })),
        'InvalidConversionTaskId.Malformed', 400, "The import task ID 'import-ami-0123456789abcdef0' does not exist");
      await expectEc2Error(client.send(new DescribeImportImageTasksCommand({ ImportTaskIds: ['ami-12345678'] })),
        'InvalidConversionTaskId.Malformed', 400, 'Invalid id: "ami-12345678" (expecting "import-ami-...")');
    });

    test('the unknown-task error code is configurable', async () => {
      const other = await LocalEc2.start({ unknownImportTaskErrorCode: 'InvalidConversionTaskId.NotFound' });
      const c = makeClient(other.endpoint);
      try {
        await expectEc2Error(c.send(new CancelImportTaskCommand({ ImportTaskId: 'import-ami-0123456789abcdef0' })), 'InvalidConversionTaskId.NotFound', 400);
      } finally {
        c.destroy();
        await other.stop();
      }
    });

    test('an expired task is absent from results, listed or asked for by id', async () => {
      const old = await startImport();
      const recent = await startImport();
      ec2.expireTask(old);
      const all = await client.send(new DescribeImportImageTasksCommand({}));
      expect(all.ImportImageTasks?.map((t) => t.ImportTaskId)).toEqual([recent]);
      const byId = await client.send(new DescribeImportImageTasksCommand({ ImportTaskIds: [old] }));
      expect(byId.ImportImageTasks ?? []).toEqual([]);
      expect(ec2.state.tasks.get(old)?.stage).toBe(0);
    });

    test('filters by task-state and tags, and rejects unknown filters', async () => {
      const a = await startImport({ TagSpecifications: [{ ResourceType: 'import-image-task', Tags: [{ Key: 'app', Value: 'web-1' }] }] });
      const b = await startImport();
      ec2.completeNow(b);
      const byTag = await client.send(new DescribeImportImageTasksCommand({ Filters: [{ Name: 'tag:app', Values: ['web-*'] }] }));
      expect(byTag.ImportImageTasks?.map((t) => t.ImportTaskId)).toEqual([a]);
      expect(byTag.ImportImageTasks?.[0]?.Tags).toEqual([{ Key: 'app', Value: 'web-1' }]);
      const completed = await client.send(new DescribeImportImageTasksCommand({ Filters: [{ Name: 'task-state', Values: ['completed'] }] }));
      expect(completed.ImportImageTasks?.map((t) => t.ImportTaskId)).toEqual([b]);
      expect(ec2.callsTo('DescribeImportImageTasks')[0]?.params).toEqual({ 'Filters.1.Name': 'tag:app', 'Filters.1.Value.1': 'web-*' });
      await expectEc2Error(client.send(new DescribeImportImageTasksCommand({ Filters: [{ Name: 'bogus', Values: ['x'] }] })),
        'InvalidParameterValue', 400, "The filter 'bogus' is invalid");
    });

    test('pages with MaxResults and NextToken', async () => {
      const ids = [await startImport(), await startImport(), await startImport()];
      const first = await client.send(new DescribeImportImageTasksCommand({ MaxResults: 2 }));
      expect(first.ImportImageTasks?.map((t) => t.ImportTaskId)).toEqual(ids.slice(0, 2));
      expect(first.NextToken).toBeDefined();
      const second = await client.send(new DescribeImportImageTasksCommand({ MaxResults: 2, NextToken: first.NextToken }));
      expect(second.ImportImageTasks?.map((t) => t.ImportTaskId)).toEqual(ids.slice(2));
      expect(second.NextToken).toBeUndefined();
    });
  });

  describe('CancelImportTask', () => {
    test('cancels an active task: deleting, then deleted with the cancellation message', async () => {
      const id = await startImport();
      const res = await client.send(new CancelImportTaskCommand({ ImportTaskId: id, CancelReason: 'stack deleted' }));
      expect(res).toMatchObject({ ImportTaskId: id, PreviousState: 'active', State: 'deleting' });
      expect(ec2.state.tasks.get(id)).toMatchObject({ status: 'deleting', cancelReason: 'stack deleted' });
      expect(await describeTask(id)).toMatchObject({ Status: 'deleted', StatusMessage: 'User-initiated task cancellation' });
      expect(ec2.state.images.size).toBe(0);
    });

    test('cancels a held task too', async () => {
      ec2.queueTaskBehaviour({ hold: true });
      const id = await startImport();
      await client.send(new CancelImportTaskCommand({ ImportTaskId: id }));
      expect((await describeTask(id)).Status).toBe('deleted');
    });

    test('cancelling a task that is not active is IncorrectState 400', async () => {
      const id = await startImport();
      ec2.completeNow(id);
      await expectEc2Error(client.send(new CancelImportTaskCommand({ ImportTaskId: id })),
        'IncorrectState', 400, `The import task ${id} is in the completed state and cannot be cancelled.`);
      const cancelled = await startImport();
      await client.send(new CancelImportTaskCommand({ ImportTaskId: cancelled }));
      await expectEc2Error(client.send(new CancelImportTaskCommand({ ImportTaskId: cancelled })), 'IncorrectState', 400, /deleting/);
      await describeTask(cancelled);
      await expectEc2Error(client.send(new CancelImportTaskCommand({ ImportTaskId: cancelled })), 'IncorrectState', 400, /deleted/);
    });

    test('cancelling an unknown or expired task is the unknown-task error', async () => {
      await expectEc2Error(client.send(new CancelImportTaskCommand({ ImportTaskId: 'import-ami-0123456789abcdef0' })), 'InvalidConversionTaskId.Malformed', 400);
      const id = await startImport();
      ec2.expireTask(id);
      await expectEc2Error(client.send(new CancelImportTaskCommand({ ImportTaskId: id })), 'InvalidConversionTaskId.Malformed', 400);
    });
  });

  describe('tags', () => {
    test('CreateTags tags images, snapshots and import tasks; the describes show them', async () => {
      const { taskId, imageId, snapshotIds } = await importedImage();
      const snapshotId = snapshotIds[0] ?? '';
      await client.send(new CreateTagsCommand({ Resources: [imageId, snapshotId, taskId], Tags: [{ Key: 'Name', Value: 'web' }, { Key: 'env', Value: 'test' }] }));
      expect(ec2.callsTo('CreateTags')[0]?.params).toEqual({
        'ResourceId.1': imageId,
        'ResourceId.2': snapshotId,
        'ResourceId.3': taskId,
        'Tag.1.Key': 'Name',
        'Tag.1.Value': 'web',
        'Tag.2.Key': 'env',
        'Tag.2.Value': 'test',
      });
      await client.send(new CreateTagsCommand({ Resources: [imageId], Tags: [{ Key: 'Name', Value: 'web-2' }] }));

      const images = await client.send(new DescribeImagesCommand({ ImageIds: [imageId] }));
      expect(images.Images?.[0]?.Tags).toEqual([{ Key: 'Name', Value: 'web-2' }, { Key: 'env', Value: 'test' }]);
      const snapshots = await client.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] }));
      expect(snapshots.Snapshots?.[0]?.Tags).toEqual([{ Key: 'Name', Value: 'web' }, { Key: 'env', Value: 'test' }]);
      expect((await describeTask(taskId)).Tags).toEqual([{ Key: 'Name', Value: 'web' }, { Key: 'env', Value: 'test' }]);
    });

    test('DeleteTags removes by key, by key and value, or everything', async () => {
      const { imageId } = await importedImage();
      const tags = [{ Key: 'a', Value: '1' }, { Key: 'b', Value: '2' }, { Key: 'c', Value: '3' }];
      await client.send(new CreateTagsCommand({ Resources: [imageId], Tags: tags }));
      await client.send(new DeleteTagsCommand({ Resources: [imageId], Tags: [{ Key: 'a' }, { Key: 'b', Value: 'not-2' }] }));
      expect(ec2.state.images.get(imageId)?.tags).toEqual([{ key: 'b', value: '2' }, { key: 'c', value: '3' }]);
      await client.send(new DeleteTagsCommand({ Resources: [imageId], Tags: [{ Key: 'b', Value: '2' }] }));
      expect(ec2.state.images.get(imageId)?.tags).toEqual([{ key: 'c', value: '3' }]);
      await client.send(new CreateTagsCommand({ Resources: [imageId], Tags: tags }));
      await client.send(new DeleteTagsCommand({ Resources: [imageId] }));
      expect(ec2.state.images.get(imageId)?.tags).toEqual([]);
    });

    test('unknown resources are errors and nothing is tagged', async () => {
      const { imageId } = await importedImage();
      const tags = [{ Key: 'k', Value: 'v' }];
      await expectEc2Error(client.send(new CreateTagsCommand({ Resources: [imageId, 'ami-0123456789abcdef0'], Tags: tags })),
        'InvalidAMIID.NotFound', 400, "The image id '[ami-0123456789abcdef0]' does not exist");
      expect(ec2.state.images.get(imageId)?.tags).toEqual([]);
      await expectEc2Error(client.send(new CreateTagsCommand({ Resources: ['snap-0123456789abcdef0'], Tags: tags })),
        'InvalidSnapshot.NotFound', 400, "The snapshot 'snap-0123456789abcdef0' does not exist.");
      await expectEc2Error(client.send(new CreateTagsCommand({ Resources: ['import-ami-0123456789abcdef0'], Tags: tags })),
        'InvalidID', 400, "The ID 'import-ami-0123456789abcdef0' is not valid");
      await expectEc2Error(client.send(new DeleteTagsCommand({ Resources: ['vol-0123456789abcdef0'] })), 'InvalidID', 400);
      await expectEc2Error(client.send(new CreateTagsCommand({ Resources: ['ami-zz'], Tags: tags })), 'InvalidAMIID.Malformed', 400);
    });

    test('tag keys are validated', async () => {
      const { imageId } = await importedImage();
      await expectEc2Error(client.send(new CreateTagsCommand({ Resources: [imageId], Tags: [{ Key: 'aws:cloudformation:stack-name', Value: 'x' }] })),
        'InvalidParameterValue', 400, /reserved/);
      await expectEc2Error(client.send(new CreateTagsCommand({ Resources: [imageId], Tags: [{ Key: 'k'.repeat(128), Value: 'x' }] })),
        'InvalidParameterValue', 400, /127/);
      await expectEc2Error(client.send(new CreateTagsCommand({ Resources: [imageId], Tags: [{ Key: 'k', Value: 'v'.repeat(257) }] })),
        'InvalidParameterValue', 400, /256/);
      const many = Array.from({ length: 51 }, (_, i) => ({ Key: `k${i}`, Value: 'v' }));
      await expectEc2Error(client.send(new CreateTagsCommand({ Resources: [imageId], Tags: many })), 'TagLimitExceeded', 400);
    });
  });

  describe('images and snapshots', () => {
    test('DescribeImages returns every field the SDK models for an imported AMI', async () => {
      const { taskId, imageId, snapshotIds } = await importedImage({ Description: 'imported', BootMode: 'uefi' });
      const res = await client.send(new DescribeImagesCommand({ ImageIds: [imageId], Owners: ['self'] }));
      expect(ec2.callsTo('DescribeImages')[0]?.params).toEqual({ 'ImageId.1': imageId, 'Owner.1': 'self' });
      const image = res.Images?.[0] ?? {};
      expect(image).toEqual({
        ImageId: imageId,
        ImageLocation: `123456789012/${taskId}`,
        State: 'available',
        OwnerId: '123456789012',
        CreationDate: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        Public: false,
        Architecture: 'x86_64',
        ImageType: 'machine',
        PlatformDetails: 'Linux/UNIX',
        UsageOperation: 'RunInstances',
        Name: taskId,
        Description: 'imported',
        RootDeviceType: 'ebs',
        RootDeviceName: '/dev/sda1',
        BlockDeviceMappings: [{
          DeviceName: '/dev/sda1',
          Ebs: { DeleteOnTermination: true, SnapshotId: snapshotIds[0], VolumeSize: 8, VolumeType: 'gp2', Encrypted: false },
        }],
        VirtualizationType: 'hvm',
        Hypervisor: 'xen',
        EnaSupport: true,
        SriovNetSupport: 'simple',
        BootMode: 'uefi',
      });
    });

    test('DescribeImages filters by owner, image-id, tags, name wildcards and snapshot', async () => {
      const one = await importedImage();
      const two = await importedImage();
      await client.send(new CreateTagsCommand({ Resources: [two.imageId], Tags: [{ Key: 'cdk-vm-import:id', Value: 'abc' }] }));
      const ids = async (input: DescribeImagesCommandInput): Promise<string[]> =>
        ((await client.send(new DescribeImagesCommand(input))).Images ?? []).map((i) => i.ImageId ?? '');

      expect(await ids({ Owners: ['self'] })).toEqual([one.imageId, two.imageId]);
      expect(await ids({ Owners: ['amazon'] })).toEqual([]);
      expect(await ids({ Filters: [{ Name: 'image-id', Values: [one.imageId] }] })).toEqual([one.imageId]);
      expect(await ids({ Filters: [{ Name: 'tag:cdk-vm-import:id', Values: ['abc'] }] })).toEqual([two.imageId]);
      expect(await ids({ Filters: [{ Name: 'tag-key', Values: ['cdk-vm-import:*'] }] })).toEqual([two.imageId]);
      expect(await ids({ Filters: [{ Name: 'name', Values: ['import-ami-*'] }, { Name: 'state', Values: ['available'] }] })).toEqual([one.imageId, two.imageId]);
      expect(await ids({ Filters: [{ Name: 'block-device-mapping.snapshot-id', Values: [two.snapshotIds[0] ?? ''] }] })).toEqual([two.imageId]);
      expect(await ids({ Filters: [{ Name: 'tag:cdk-vm-import:id', Values: ['nope'] }] })).toEqual([]);
      expect(ec2.callsTo('DescribeImages')[2]?.params).toEqual({ 'Filter.1.Name': 'image-id', 'Filter.1.Value.1': one.imageId });
      await expectEc2Error(client.send(new DescribeImagesCommand({ Filters: [{ Name: 'colour', Values: ['red'] }] })), 'InvalidParameterValue', 400);
    });

    test('DescribeImages: an unknown explicit id is InvalidAMIID.NotFound; a malformed one InvalidAMIID.Malformed', async () => {
      const { imageId } = await importedImage();
      await expectEc2Error(client.send(new DescribeImagesCommand({ ImageIds: [imageId, 'ami-0123456789abcdef0'] })),
        'InvalidAMIID.NotFound', 400, "The image id '[ami-0123456789abcdef0]' does not exist");
      await expectEc2Error(client.send(new DescribeImagesCommand({ ImageIds: ['not-an-ami'] })),
        'InvalidAMIID.Malformed', 400, 'Invalid id: "not-an-ami" (expecting "ami-...")');
    });

    test('deleteImageOutOfBand removes the AMI but keeps snapshots and the task reference', async () => {
      const { taskId, imageId, snapshotIds } = await importedImage();
      ec2.deleteImageOutOfBand(imageId);
      await expectEc2Error(client.send(new DescribeImagesCommand({ ImageIds: [imageId] })), 'InvalidAMIID.NotFound', 400);
      expect((await describeTask(taskId)).ImageId).toBe(imageId);
      const snaps = await client.send(new DescribeSnapshotsCommand({ SnapshotIds: snapshotIds }));
      expect(snaps.Snapshots).toHaveLength(1);
      await client.send(new DeleteSnapshotCommand({ SnapshotId: snapshotIds[0] }));
      expect(ec2.state.snapshots.size).toBe(0);
    });

    test('DeregisterImage and DeleteSnapshot, with their errors', async () => {
      const { imageId, snapshotIds } = await importedImage();
      const snapshotId = snapshotIds[0] ?? '';
      await expectEc2Error(client.send(new DeleteSnapshotCommand({ SnapshotId: snapshotId })),
        'InvalidSnapshot.InUse', 400, `The snapshot ${snapshotId} is currently in use by ${imageId}`);
      const res = await client.send(new DeregisterImageCommand({ ImageId: imageId }));
      expect(res.Return).toBe(true);
      await expectEc2Error(client.send(new DeregisterImageCommand({ ImageId: imageId })), 'InvalidAMIID.NotFound', 400, `The image id '[${imageId}]' does not exist`);
      await client.send(new DeleteSnapshotCommand({ SnapshotId: snapshotId }));
      await expectEc2Error(client.send(new DeleteSnapshotCommand({ SnapshotId: snapshotId })),
        'InvalidSnapshot.NotFound', 400, `The snapshot '${snapshotId}' does not exist.`);
      await expectEc2Error(client.send(new DeleteSnapshotCommand({ SnapshotId: 'vol-1234' })), 'InvalidSnapshotID.Malformed', 400);
    });

    test('DeregisterImage can delete the associated snapshots', async () => {
      const { imageId, snapshotIds } = await importedImage({
        DiskContainers: [{ Format: 'VMDK', Url: 'https://example.com/a.vmdk' }, { Format: 'VMDK', Url: 'https://example.com/b.vmdk' }],
      });
      const res = await client.send(new DeregisterImageCommand({ ImageId: imageId, DeleteAssociatedSnapshots: true }));
      expect(res.DeleteSnapshotResults).toEqual(snapshotIds.map((id) => ({ SnapshotId: id, ReturnCode: 'success' })));
      expect(ec2.state.snapshots.size).toBe(0);
    });

    test('DescribeSnapshots returns the snapshots of imports', async () => {
      const { taskId, snapshotIds } = await importedImage({ Encrypted: true });
      const res = await client.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'], Filters: [{ Name: 'status', Values: ['completed'] }] }));
      expect(ec2.callsTo('DescribeSnapshots')[0]?.params).toEqual({ 'Owner.1': 'self', 'Filter.1.Name': 'status', 'Filter.1.Value.1': 'completed' });
      expect(res.Snapshots).toEqual([{
        SnapshotId: snapshotIds[0],
        VolumeId: 'vol-ffffffff',
        State: 'completed',
        StartTime: expect.any(Date),
        Progress: '100%',
        OwnerId: '123456789012',
        VolumeSize: 8,
        Description: `Created by AWS-VMImport service for ${taskId}`,
        Encrypted: true,
        KmsKeyId: 'arn:aws:kms:us-east-1:123456789012:alias/aws/ebs',
        StorageTier: 'standard',
      }]);
      await expectEc2Error(client.send(new DescribeSnapshotsCommand({ SnapshotIds: ['snap-0123456789abcdef0'] })), 'InvalidSnapshot.NotFound', 400);
    });
  });

  describe('every emitted XML element is read by the SDK', () => {
    test('ImportImage', async () => {
      const res = await client.send(new ImportImageCommand({
        Architecture: 'x86_64',
        BootMode: 'uefi',
        ClientToken: 'wire',
        Description: 'd',
        Encrypted: true,
        Hypervisor: 'xen',
        KmsKeyId: 'alias/k',
        LicenseType: 'AWS',
        Platform: 'Windows',
        UsageOperation: 'RunInstances:0002',
        DiskContainers: [{ Description: 'root', Format: 'VHD', UserBucket: { S3Bucket: 'b', S3Key: 'k' } }, { Format: 'RAW', Url: 'https://example.com/x' }],
        LicenseSpecifications: [{ LicenseConfigurationArn: 'arn:lic' }],
        TagSpecifications: [{ ResourceType: 'import-image-task', Tags: [{ Key: 'a', Value: 'b' }] }],
      }));
      const xml = await rawReplay('ImportImage');
      expect(xml).toContain(`<importTaskId>${res.ImportTaskId}</importTaskId>`);
      expect(outputLeafCount(res)).toBe(xmlLeafCount(xml));
      expect(outputLeafCount(res)).toBeGreaterThan(20);
    });

    test('DescribeImportImageTasks', async () => {
      const { taskId } = await importedImage({
        Encrypted: true,
        BootMode: 'uefi',
        Hypervisor: 'xen',
        UsageOperation: 'RunInstances',
        LicenseSpecifications: [{ LicenseConfigurationArn: 'arn:lic' }],
        TagSpecifications: [{ ResourceType: 'import-image-task', Tags: [{ Key: 'a', Value: '' }] }],
      });
      ec2.queueTaskBehaviour({ hold: true });
      await startImport({ Description: 'held' });
      const res = await client.send(new DescribeImportImageTasksCommand({}));
      expect(res.ImportImageTasks?.[0]?.ImportTaskId).toBe(taskId);
      expect(res.ImportImageTasks?.[0]?.BootMode).toBe('uefi');
      const xml = await rawReplay('DescribeImportImageTasks');
      expect(outputLeafCount(res)).toBe(xmlLeafCount(xml));
    });

    test('DescribeImages and DescribeSnapshots', async () => {
      const { imageId, snapshotIds } = await importedImage({ Encrypted: true, Platform: 'Windows', BootMode: 'uefi', Description: 'x' });
      await client.send(new CreateTagsCommand({ Resources: [imageId, ...snapshotIds], Tags: [{ Key: 'k', Value: 'v' }] }));
      const images = await client.send(new DescribeImagesCommand({ ImageIds: [imageId] }));
      expect(outputLeafCount(images)).toBe(xmlLeafCount(await rawReplay('DescribeImages')));
      const snapshots = await client.send(new DescribeSnapshotsCommand({ SnapshotIds: snapshotIds }));
      expect(outputLeafCount(snapshots)).toBe(xmlLeafCount(await rawReplay('DescribeSnapshots')));
    });

    test('paged results carry a nextToken the SDK reads', async () => {
      await startImport();
      await startImport();
      ec2.state.tasks.forEach((t) => ec2.setTaskBehaviour(t.importTaskId, { hold: true }));
      const res = await client.send(new DescribeImportImageTasksCommand({ MaxResults: 1 }));
      expect(res.NextToken).toBe('lec2-1');
      expect(outputLeafCount(res)).toBe(xmlLeafCount(await rawReplay('DescribeImportImageTasks')));
    });
  });

  describe('fault injection and retries', () => {
    test('failNext answers with the fault before the action runs, then recovers', async () => {
      const message = 'The service role vmimport provided does not exist or does not have sufficient permissions';
      ec2.failNext('ImportImage', { status: 400, code: 'InvalidParameter', message });
      await expectEc2Error(client.send(basicImport()), 'InvalidParameter', 400, message);
      expect(ec2.state.tasks.size).toBe(0);
      const ok = await client.send(basicImport());
      expect(ok.Status).toBe('active');
      const calls = ec2.callsTo('ImportImage');
      expect(calls.map((c) => [c.status, c.errorCode, c.injectedFault?.code])).toEqual([[400, 'InvalidParameter', 'InvalidParameter'], [200, undefined, undefined]]);
      expect(calls[0]?.params['DiskContainer.1.Format']).toBe('VMDK');
    });

    test('faults apply `times` times, per action or to any action with *', async () => {
      ec2.failNext('DescribeImages', { status: 500, code: 'InternalError', message: 'An internal error has occurred' }, 2);
      ec2.failNext('*', { status: 503, code: 'Unavailable', message: 'The server is overloaded' });
      await expectEc2Error(client.send(new DescribeImagesCommand({})), 'InternalError', 500, 'An internal error has occurred');
      await expectEc2Error(client.send(new DescribeImagesCommand({})), 'InternalError', 500);
      await expectEc2Error(client.send(new DescribeImagesCommand({})), 'Unavailable', 503, 'The server is overloaded');
      await client.send(new DescribeImagesCommand({}));
      await client.send(new DescribeSnapshotsCommand({}));
    });

    test('a faulted describe does not advance tasks', async () => {
      const id = await startImport();
      ec2.failNext('DescribeImportImageTasks', { status: 503, code: 'RequestLimitExceeded', message: 'Request limit exceeded.' });
      await expectEc2Error(client.send(new DescribeImportImageTasksCommand({ ImportTaskIds: [id] })), 'RequestLimitExceeded', 503);
      expect(ec2.state.tasks.get(id)?.stage).toBe(0);
    });

    test('the SDK retry strategy retries 503 RequestLimitExceeded', async () => {
      // The standard strategy waits random() * 1000 ms * 2^attempt after throttling; pin random() to keep this fast.
      const random = jest.spyOn(Math, 'random').mockReturnValue(0.001);
      const retrying = makeClient(ec2.endpoint, { maxAttempts: 3 });
      try {
        const id = await startImport();
        ec2.failNext('DescribeImportImageTasks', { status: 503, code: 'RequestLimitExceeded', message: 'Request limit exceeded.' }, 2);
        const res = await retrying.send(new DescribeImportImageTasksCommand({ ImportTaskIds: [id] }));
        expect(res.$metadata.attempts).toBe(3);
        expect(res.ImportImageTasks?.[0]?.ImportTaskId).toBe(id);
        expect(ec2.callsTo('DescribeImportImageTasks').map((c) => c.status)).toEqual([503, 503, 200]);

        ec2.failNext('DescribeImages', { status: 503, code: 'RequestLimitExceeded', message: 'Request limit exceeded.' }, 3);
        const err = await expectEc2Error(retrying.send(new DescribeImagesCommand({})), 'RequestLimitExceeded', 503, 'Request limit exceeded.');
        expect(err.$metadata.attempts).toBe(3);
        expect(ec2.callsTo('DescribeImages')).toHaveLength(3);
      } finally {
        random.mockRestore();
        retrying.destroy();
      }
    });

    test('the SDK retries a 500 InternalError but not a 400', async () => {
      const retrying = makeClient(ec2.endpoint, { maxAttempts: 2 });
      try {
        ec2.failNext('DescribeSnapshots', { status: 500, code: 'InternalError', message: 'An internal error has occurred' });
        const res = await retrying.send(new DescribeSnapshotsCommand({}));
        expect(res.$metadata.attempts).toBe(2);
        ec2.failNext('DescribeSnapshots', { status: 400, code: 'InvalidParameter', message: 'nope' });
        const err = await expectEc2Error(retrying.send(new DescribeSnapshotsCommand({})), 'InvalidParameter', 400);
        expect(err.$metadata.attempts).toBe(1);
      } finally {
        retrying.destroy();
      }
    });
  });
});

describe('LocalEc2 snapshot route (ImportSnapshot + RegisterImage)', () => {
  let ec2: LocalEc2;
  let client: EC2Client;

  beforeAll(async () => {
    ec2 = await LocalEc2.start();
    client = makeClient(ec2.endpoint);
  });

  beforeEach(() => {
    ec2.reset();
  });

  afterAll(async () => {
    client.destroy();
    await ec2.stop();
  });

  function basicSnapshotImport(overrides: Partial<ImportSnapshotCommandInput> = {}): ImportSnapshotCommand {
    return new ImportSnapshotCommand({
      DiskContainer: { Format: 'RAW', UserBucket: { S3Bucket: 'images', S3Key: 'arm.raw' } },
      RoleName: 'vmimport-role',
      ...overrides,
    });
  }

  async function startSnapshotImport(overrides: Partial<ImportSnapshotCommandInput> = {}): Promise<string> {
    const res = await client.send(basicSnapshotImport(overrides));
    return res.ImportTaskId ?? '';
  }

  async function describeSnapshotTask(id: string): Promise<ImportSnapshotTask> {
    const res = await client.send(new DescribeImportSnapshotTasksCommand({ ImportTaskIds: [id] }));
    expect(res.ImportSnapshotTasks).toHaveLength(1);
    return res.ImportSnapshotTasks?.[0] ?? {};
  }

  /** A completed snapshot import; returns the snapshot ID. */
  async function importedSnapshot(overrides: Partial<ImportSnapshotCommandInput> = {}): Promise<string> {
    return ec2.completeSnapshotTaskNow(await startSnapshotImport(overrides)).snapshotId;
  }

  function register(snapshotId: string, overrides: Partial<RegisterImageCommandInput> = {}): RegisterImageCommand {
    return new RegisterImageCommand({
      Name: 'my-arm-image',
      Architecture: 'arm64',
      VirtualizationType: 'hvm',
      BootMode: 'uefi',
      RootDeviceName: '/dev/xvda',
      BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { SnapshotId: snapshotId } }],
      ...overrides,
    });
  }

  async function rawReplay(action: string, index = 0): Promise<string> {
    const call = ec2.callsTo(action)[index];
    const body = new URLSearchParams({ Action: action, Version: '2016-11-15', ...call?.params });
    const res = await fetch(`${ec2.endpoint}/`, { method: 'POST', body });
    expect(res.status).toBe(200);
    return res.text();
  }

  describe('ImportSnapshot', () => {
    test('creates an active task, records every parameter and mirrors them back', async () => {
      const res = await client.send(new ImportSnapshotCommand({
        ClientData: { Comment: 'from ci', UploadSize: 1.5 },
        ClientToken: 'snap-token-1',
        Description: 'arm root disk',
        DiskContainer: { Description: 'root', Format: 'vmdk', UserBucket: { S3Bucket: 'images', S3Key: 'root.vmdk' } },
        Encrypted: true,
        KmsKeyId: 'alias/images',
        RoleName: 'my-vmimport',
        TagSpecifications: [{ ResourceType: 'import-snapshot-task', Tags: [{ Key: 'Name', Value: 'arm' }] }],
      }));

      expect(res.ImportTaskId).toMatch(/^import-snap-[0-9a-f]{17}$/);
      expect(res).toMatchObject({
        Description: 'arm root disk',
        SnapshotTaskDetail: {
          Description: 'root',
          DiskImageSize: 0,
          Encrypted: true,
          Format: 'VMDK',
          KmsKeyId: 'alias/images',
          Progress: '2',
          Status: 'active',
          StatusMessage: 'pending',
          UserBucket: { S3Bucket: 'images', S3Key: 'root.vmdk' },
        },
        Tags: [{ Key: 'Name', Value: 'arm' }],
      });
      expect(res.SnapshotTaskDetail?.SnapshotId).toBeUndefined();

      expect(ec2.callsTo('ImportSnapshot')[0]?.params).toEqual({
        'ClientData.Comment': 'from ci',
        'ClientData.UploadSize': '1.5',
        'ClientToken': 'snap-token-1',
        'Description': 'arm root disk',
        'DiskContainer.Description': 'root',
        'DiskContainer.Format': 'vmdk',
        'DiskContainer.UserBucket.S3Bucket': 'images',
        'DiskContainer.UserBucket.S3Key': 'root.vmdk',
        'Encrypted': 'true',
        'KmsKeyId': 'alias/images',
        'RoleName': 'my-vmimport',
        'TagSpecification.1.ResourceType': 'import-snapshot-task',
        'TagSpecification.1.Tag.1.Key': 'Name',
        'TagSpecification.1.Tag.1.Value': 'arm',
      });

      const task = ec2.state.snapshotTasks.get(res.ImportTaskId ?? '');
      expect(task?.params).toEqual({
        clientData: { comment: 'from ci', uploadStart: undefined, uploadEnd: undefined, uploadSize: 1.5 },
        clientToken: 'snap-token-1',
        description: 'arm root disk',
        diskContainer: { description: 'root', format: 'vmdk', url: undefined, userBucket: { s3Bucket: 'images', s3Key: 'root.vmdk' } },
        encrypted: true,
        kmsKeyId: 'alias/images',
        roleName: 'my-vmimport',
        tagSpecifications: [{ resourceType: 'import-snapshot-task', tags: [{ key: 'Name', value: 'arm' }] }],
      });
      expect(task).toMatchObject({ status: 'active', statusMessage: 'pending', progress: '2', stage: 0, format: 'VMDK', encrypted: true });
      expect(ec2.state.tasks.size).toBe(0);
    });

    test('takes a Url instead of a UserBucket', async () => {
      const res = await client.send(basicSnapshotImport({ DiskContainer: { Format: 'VHD', Url: 's3://images/disk.vhd' } }));
      expect(res.SnapshotTaskDetail).toMatchObject({ Format: 'VHD', Url: 's3://images/disk.vhd', Encrypted: false });
      expect(res.SnapshotTaskDetail?.UserBucket).toBeUndefined();
      expect(ec2.callsTo('ImportSnapshot')[0]?.params['DiskContainer.Url']).toBe('s3://images/disk.vhd');
    });

    test('a repeated ClientToken with the same parameters returns the same task', async () => {
      const first = await client.send(basicSnapshotImport({ ClientToken: 'abc' }));
      const second = await client.send(basicSnapshotImport({ ClientToken: 'abc' }));
      expect(second.ImportTaskId).toBe(first.ImportTaskId);
      expect(ec2.state.snapshotTasks.size).toBe(1);
      const third = await client.send(basicSnapshotImport({ ClientToken: 'other' }));
      expect(third.ImportTaskId).not.toBe(first.ImportTaskId);
      expect(ec2.state.snapshotTasks.size).toBe(2);
    });

    test('a repeated ClientToken with different parameters is IdempotentParameterMismatch', async () => {
      await client.send(basicSnapshotImport({ ClientToken: 'abc' }));
      await expectEc2Error(client.send(basicSnapshotImport({ ClientToken: 'abc', Description: 'changed' })),
        'IdempotentParameterMismatch', 400, /inconsistent with arguments used in previous request/);
      expect(ec2.state.snapshotTasks.size).toBe(1);
    });

    test.each<[string, Partial<ImportSnapshotCommandInput>, string, RegExp]>([
      ['OVA', { DiskContainer: { Format: 'OVA', Url: 'https://example.com/vm.ova' } }, 'InvalidParameter', /format OVA is not supported for ImportSnapshot/],
      ['VHDX', { DiskContainer: { Format: 'vhdx', Url: 'https://example.com/d.vhdx' } }, 'InvalidParameter', /format vhdx is not supported for ImportSnapshot/],
      ['an unknown format', { DiskContainer: { Format: 'QCOW2', Url: 'https://example.com/a' } }, 'InvalidParameterValue', /DiskContainer\.Format/],
      ['no format', { DiskContainer: { Url: 'https://example.com/a' } }, 'MissingParameter', /DiskContainer\.Format/],
      ['no disk container', { DiskContainer: undefined }, 'MissingParameter', /DiskContainer/],
      ['a disk without a source', { DiskContainer: { Format: 'RAW' } }, 'InvalidParameter', /one of Url or UserBucket/],
      ['both Url and UserBucket', { DiskContainer: { Format: 'RAW', Url: 's3://b/k', UserBucket: { S3Bucket: 'b', S3Key: 'k' } } },
        'InvalidParameterCombination', /either Url or UserBucket, not both/],
      ['an http url', { DiskContainer: { Format: 'RAW', Url: 'http://example.com/a' } }, 'InvalidParameter', /https:\/\/ or s3:\/\//],
      ['a bucket without a key', { DiskContainer: { Format: 'RAW', UserBucket: { S3Bucket: 'b' } } }, 'MissingParameter', /S3Bucket and S3Key/],
      ['KmsKeyId without Encrypted', { KmsKeyId: 'alias/x' }, 'InvalidParameterDependency', /KmsKeyId requires the parameter Encrypted/],
      ['KmsKeyId with Encrypted false', { KmsKeyId: 'alias/x', Encrypted: false }, 'InvalidParameterDependency', /Encrypted/],
      ['a tag spec for image tasks', { TagSpecifications: [{ ResourceType: 'import-image-task', Tags: [{ Key: 'a', Value: 'b' }] }] },
        'InvalidParameterValue', /not a valid taggable resource type/],
      ['an aws: tag', { TagSpecifications: [{ ResourceType: 'import-snapshot-task', Tags: [{ Key: 'aws:x', Value: 'b' }] }] }, 'InvalidParameterValue', /reserved/],
    ])('rejects %s', async (_label, overrides, code, message) => {
      await expectEc2Error(client.send(basicSnapshotImport(overrides)), code, 400, message);
      expect(ec2.state.snapshotTasks.size).toBe(0);
    });

    test('the active-task quota counts image and snapshot tasks together', async () => {
      const other = await LocalEc2.start({ maxActiveTasks: 2 });
      const c = makeClient(other.endpoint);
      try {
        await c.send(new ImportImageCommand({ DiskContainers: [{ Format: 'VMDK', Url: 's3://b/k.vmdk' }] }));
        const snap = await c.send(basicSnapshotImport());
        await expectEc2Error(c.send(basicSnapshotImport()), 'ResourceCountLimitExceeded', 400, /maximum number of active import snapshot tasks \(2\)/);
        await expectEc2Error(c.send(new ImportImageCommand({ DiskContainers: [{ Format: 'VMDK', Url: 's3://b/k.vmdk' }] })),
          'ResourceCountLimitExceeded', 400, /image tasks/);
        other.completeSnapshotTaskNow(snap.ImportTaskId ?? '');
        expect((await c.send(basicSnapshotImport())).SnapshotTaskDetail?.Status).toBe('active');
        expect(other.peakActiveTasks).toBe(2);
      } finally {
        c.destroy();
        await other.stop();
      }
    });
  });

  describe('DescribeImportSnapshotTasks life cycle', () => {
    test('advances one stage per listing and completes with a snapshot', async () => {
      const id = await startSnapshotImport({ Description: 'app' });
      const seen: ImportSnapshotTask[] = [];
      for (let i = 0; i < 3; i++) {
        seen.push(await describeSnapshotTask(id));
      }
      expect(seen.map((t) => t.SnapshotTaskDetail?.Status)).toEqual(['active', 'active', 'completed']);
      expect(seen.map((t) => t.SnapshotTaskDetail?.StatusMessage)).toEqual(['validating', 'validated', undefined]);
      expect(Number(seen[1]?.SnapshotTaskDetail?.Progress)).toBeGreaterThan(Number(seen[0]?.SnapshotTaskDetail?.Progress));
      expect(seen[0]?.SnapshotTaskDetail?.DiskImageSize).toBe(1073741824);

      const done = seen[2]?.SnapshotTaskDetail ?? {};
      expect(done.Progress).toBeUndefined();
      expect(done.SnapshotId).toMatch(/^snap-[0-9a-f]{17}$/);
      expect(done).toMatchObject({ Description: 'app', DiskImageSize: 1073741824, Encrypted: false, Format: 'RAW', UserBucket: { S3Bucket: 'images', S3Key: 'arm.raw' } });
      expect(seen[2]).toMatchObject({ ImportTaskId: id, Description: 'app' });
      expect(ec2.state.snapshots.get(done.SnapshotId ?? '')).toMatchObject({
        state: 'completed', volumeSize: 8, encrypted: false, kmsKeyId: undefined, description: `Created by AWS-VMImport service for ${id}`,
      });
      expect(ec2.state.snapshotTasks.get(id)).toMatchObject({ status: 'completed', snapshotId: done.SnapshotId });

      expect((await describeSnapshotTask(id)).SnapshotTaskDetail?.SnapshotId).toBe(done.SnapshotId);
      expect(ec2.state.snapshots.size).toBe(1);
      expect(ec2.callsTo('DescribeImportSnapshotTasks')[0]?.params).toEqual({ 'ImportTaskId.1': id });
    });

    test('walks through every StatusMessage with rising Progress when given enough stages', async () => {
      ec2.queueSnapshotTaskBehaviour({ stagesToComplete: SNAPSHOT_IMPORT_STAGES.length });
      const id = await startSnapshotImport();
      const messages = ['pending'];
      const progress = [2];
      for (let i = 1; i < SNAPSHOT_IMPORT_STAGES.length; i++) {
        const t = (await describeSnapshotTask(id)).SnapshotTaskDetail;
        expect(t?.Status).toBe('active');
        messages.push(t?.StatusMessage ?? '');
        progress.push(Number(t?.Progress));
      }
      expect(messages).toEqual(['pending', 'validating', 'validated', 'downloading/converting']);
      expect([...progress].sort((a, b) => a - b)).toEqual(progress);
      expect(new Set(progress).size).toBe(progress.length);
      expect((await describeSnapshotTask(id)).SnapshotTaskDetail?.Status).toBe('completed');
    });

    test('a listing advances only the tasks it lists; listing all returns them all', async () => {
      const a = await startSnapshotImport();
      const b = await startSnapshotImport();
      await client.send(new DescribeImportSnapshotTasksCommand({ ImportTaskIds: [a] }));
      expect(ec2.state.snapshotTasks.get(a)?.stage).toBe(1);
      expect(ec2.state.snapshotTasks.get(b)?.stage).toBe(0);
      const all = await client.send(new DescribeImportSnapshotTasksCommand({}));
      expect(all.ImportSnapshotTasks?.map((t) => t.ImportTaskId)).toEqual([a, b]);
      expect(ec2.state.snapshotTasks.get(b)?.stage).toBe(1);
      // Image and snapshot tasks are listed by their own actions only.
      expect((await client.send(new DescribeImportImageTasksCommand({}))).ImportImageTasks ?? []).toEqual([]);
    });

    test('encrypted imports: the key asked for, or the EBS default key with Encrypted alone', async () => {
      const keyed = await startSnapshotImport({ Encrypted: true, KmsKeyId: '1234abcd-12ab-34cd-56ef-1234567890ab' });
      const snapshot = ec2.completeSnapshotTaskNow(keyed);
      expect(snapshot).toMatchObject({ encrypted: true, kmsKeyId: 'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab' });
      expect((await describeSnapshotTask(keyed)).SnapshotTaskDetail).toMatchObject({ Encrypted: true, KmsKeyId: '1234abcd-12ab-34cd-56ef-1234567890ab' });

      const defaultKey = await startSnapshotImport({ Encrypted: true });
      expect(ec2.completeSnapshotTaskNow(defaultKey)).toMatchObject({ encrypted: true, kmsKeyId: 'arn:aws:kms:us-east-1:123456789012:alias/aws/ebs' });
      expect((await describeSnapshotTask(defaultKey)).SnapshotTaskDetail).toMatchObject({
        Encrypted: true, KmsKeyId: 'arn:aws:kms:us-east-1:123456789012:alias/aws/ebs',
      });
    });

    test('a task configured to fail ends deleted with its message and no snapshot', async () => {
      ec2.queueSnapshotTaskBehaviour({ failAfter: { stages: 2, message: 'ClientError: Disk validation failed [Invalid RAW image]' } });
      const id = await startSnapshotImport();
      expect((await describeSnapshotTask(id)).SnapshotTaskDetail?.Status).toBe('active');
      const failed = (await describeSnapshotTask(id)).SnapshotTaskDetail ?? {};
      expect(failed).toMatchObject({ Status: 'deleted', StatusMessage: 'ClientError: Disk validation failed [Invalid RAW image]' });
      expect(failed.Progress).toBeUndefined();
      expect(failed.SnapshotId).toBeUndefined();
      expect((await describeSnapshotTask(id)).SnapshotTaskDetail?.Status).toBe('deleted');
      expect(ec2.state.snapshots.size).toBe(0);
    });

    test('behaviours: start options, volume size, hold and release, complete and fail at once', async () => {
      const other = await LocalEc2.start({ snapshotTaskBehaviour: { stagesToComplete: 1, volumeSizeGiB: 30 } });
      const c = makeClient(other.endpoint);
      try {
        const { ImportTaskId } = await c.send(basicSnapshotImport());
        const res = await c.send(new DescribeImportSnapshotTasksCommand({ ImportTaskIds: [ImportTaskId ?? ''] }));
        const snapshotId = res.ImportSnapshotTasks?.[0]?.SnapshotTaskDetail?.SnapshotId ?? '';
        expect(other.state.snapshots.get(snapshotId)?.volumeSize).toBe(30);
      } finally {
        c.destroy();
        await other.stop();
      }

      ec2.queueSnapshotTaskBehaviour({ hold: true });
      const held = await startSnapshotImport();
      for (let i = 0; i < 3; i++) {
        expect((await describeSnapshotTask(held)).SnapshotTaskDetail).toMatchObject({ Status: 'active', StatusMessage: 'pending', Progress: '2' });
      }
      ec2.setSnapshotTaskBehaviour(held, { stagesToComplete: 1, volumeSizeGiB: 16 });
      const released = (await describeSnapshotTask(held)).SnapshotTaskDetail;
      expect(released?.Status).toBe('completed');
      expect(ec2.state.snapshots.get(released?.SnapshotId ?? '')?.volumeSize).toBe(16);
      expect(() => ec2.completeSnapshotTaskNow(held)).toThrow(/not active/);

      const failing = await startSnapshotImport();
      ec2.failSnapshotTaskNow(failing, 'ClientError: Unsupported VHD footer');
      expect((await describeSnapshotTask(failing)).SnapshotTaskDetail).toMatchObject({ Status: 'deleted', StatusMessage: 'ClientError: Unsupported VHD footer' });
      expect(() => ec2.failSnapshotTaskNow(failing, 'again')).toThrow(/not active/);
      expect(() => ec2.setSnapshotTaskBehaviour('import-snap-0123456789abcdef0', {})).toThrow(/no import snapshot task/);
    });

    test('a new task is unlisted for its first unlistedDescribes calls by ID', async () => {
      const other = await LocalEc2.start({ unlistedDescribes: 2 });
      const c = makeClient(other.endpoint);
      try {
        const { ImportTaskId } = await c.send(basicSnapshotImport());
        const id = ImportTaskId ?? '';
        for (let i = 0; i < 2; i++) {
          const res = await c.send(new DescribeImportSnapshotTasksCommand({ ImportTaskIds: [id] }));
          expect(res.ImportSnapshotTasks ?? []).toEqual([]);
        }
        expect(other.state.snapshotTasks.get(id)?.stage).toBe(0);
        const listed = await c.send(new DescribeImportSnapshotTasksCommand({ ImportTaskIds: [id] }));
        expect(listed.ImportSnapshotTasks?.[0]?.ImportTaskId).toBe(id);
      } finally {
        c.destroy();
        await other.stop();
      }
    });

    test('unknown and malformed IDs answer as for image tasks', async () => {
      await expectEc2Error(client.send(new DescribeImportSnapshotTasksCommand({ ImportTaskIds: ['import-snap-0123456789abcdef0'] })),
        'InvalidConversionTaskId.Malformed', 400, "The import task ID 'import-snap-0123456789abcdef0' does not exist");
      await expectEc2Error(client.send(new DescribeImportSnapshotTasksCommand({ ImportTaskIds: ['import-ami-0123456789abcdef0'] })),
        'InvalidConversionTaskId.Malformed', 400, 'Invalid id: "import-ami-0123456789abcdef0" (expecting "import-snap-...")');
      const other = await LocalEc2.start({ unknownImportTaskErrorCode: 'InvalidConversionTaskId.NotFound' });
      const c = makeClient(other.endpoint);
      try {
        await expectEc2Error(c.send(new DescribeImportSnapshotTasksCommand({ ImportTaskIds: ['import-snap-0123456789abcdef0'] })),
          'InvalidConversionTaskId.NotFound', 400);
      } finally {
        c.destroy();
        await other.stop();
      }
    });

    test('filters by task-state and tags; pages with MaxResults and NextToken', async () => {
      const a = await startSnapshotImport({ TagSpecifications: [{ ResourceType: 'import-snapshot-task', Tags: [{ Key: 'app', Value: 'web-1' }] }] });
      const b = await startSnapshotImport();
      const c = await startSnapshotImport();
      ec2.completeSnapshotTaskNow(b);
      const byTag = await client.send(new DescribeImportSnapshotTasksCommand({ Filters: [{ Name: 'tag:app', Values: ['web-*'] }] }));
      expect(byTag.ImportSnapshotTasks?.map((t) => t.ImportTaskId)).toEqual([a]);
      expect(byTag.ImportSnapshotTasks?.[0]?.Tags).toEqual([{ Key: 'app', Value: 'web-1' }]);
      const completed = await client.send(new DescribeImportSnapshotTasksCommand({ Filters: [{ Name: 'task-state', Values: ['completed'] }] }));
      expect(completed.ImportSnapshotTasks?.map((t) => t.ImportTaskId)).toEqual([b]);
      expect(ec2.callsTo('DescribeImportSnapshotTasks')[0]?.params).toEqual({ 'Filters.1.Name': 'tag:app', 'Filters.1.Value.1': 'web-*' });
      await expectEc2Error(client.send(new DescribeImportSnapshotTasksCommand({ Filters: [{ Name: 'bogus', Values: ['x'] }] })),
        'InvalidParameterValue', 400, "The filter 'bogus' is invalid");

      const first = await client.send(new DescribeImportSnapshotTasksCommand({ MaxResults: 2 }));
      expect(first.ImportSnapshotTasks?.map((t) => t.ImportTaskId)).toEqual([a, b]);
      expect(first.NextToken).toBe('lec2-2');
      const second = await client.send(new DescribeImportSnapshotTasksCommand({ MaxResults: 2, NextToken: first.NextToken }));
      expect(second.ImportSnapshotTasks?.map((t) => t.ImportTaskId)).toEqual([c]);
      expect(second.NextToken).toBeUndefined();
    });
  });

  describe('CancelImportTask and tags on snapshot tasks', () => {
    test('cancels an active task: deleting, then deleted with the cancellation message', async () => {
      const id = await startSnapshotImport();
      const res = await client.send(new CancelImportTaskCommand({ ImportTaskId: id, CancelReason: 'stack deleted' }));
      expect(res).toMatchObject({ ImportTaskId: id, PreviousState: 'active', State: 'deleting' });
      expect(ec2.state.snapshotTasks.get(id)).toMatchObject({ status: 'deleting', statusMessage: CANCELLED_MESSAGE, cancelReason: 'stack deleted' });
      expect((await describeSnapshotTask(id)).SnapshotTaskDetail).toMatchObject({ Status: 'deleted', StatusMessage: CANCELLED_MESSAGE });
      expect(ec2.state.snapshots.size).toBe(0);
      await expectEc2Error(client.send(new CancelImportTaskCommand({ ImportTaskId: id })), 'IncorrectState', 400, /deleted state/);
    });

    test('cancelling a completed task is IncorrectState; completeOnCancel models the race', async () => {
      const done = await startSnapshotImport();
      ec2.completeSnapshotTaskNow(done);
      await expectEc2Error(client.send(new CancelImportTaskCommand({ ImportTaskId: done })),
        'IncorrectState', 400, `The import task ${done} is in the completed state and cannot be cancelled.`);

      const racing = await startSnapshotImport();
      ec2.completeOnCancel = true;
      try {
        await expectEc2Error(client.send(new CancelImportTaskCommand({ ImportTaskId: racing })), 'IncorrectState', 400, /completed/);
      } finally {
        ec2.completeOnCancel = false;
      }
      expect(ec2.state.snapshotTasks.get(racing)?.snapshotId).toMatch(/^snap-/);
      await expectEc2Error(client.send(new CancelImportTaskCommand({ ImportTaskId: 'import-snap-0123456789abcdef0' })), 'InvalidConversionTaskId.Malformed', 400);
    });

    test('CreateTags and DeleteTags accept import-snap IDs', async () => {
      const id = await startSnapshotImport();
      await client.send(new CreateTagsCommand({ Resources: [id], Tags: [{ Key: 'owner', Value: 'ci' }, { Key: 'stage', Value: 'dev' }] }));
      expect((await describeSnapshotTask(id)).Tags).toEqual([{ Key: 'owner', Value: 'ci' }, { Key: 'stage', Value: 'dev' }]);
      await client.send(new DeleteTagsCommand({ Resources: [id], Tags: [{ Key: 'owner' }] }));
      expect(ec2.state.snapshotTasks.get(id)?.tags).toEqual([{ key: 'stage', value: 'dev' }]);
      await expectEc2Error(client.send(new CreateTagsCommand({ Resources: ['import-snap-0123456789abcdef0'], Tags: [{ Key: 'a', Value: 'b' }] })), 'InvalidID', 400);
    });
  });
  describe('RegisterImage', () => {
    test('registers a full arm64/UEFI/TPM/IMDSv2 image, read back through DescribeImages', async () => {
      const root = await importedSnapshot({ Encrypted: true, KmsKeyId: 'alias/images' });
      const data = await importedSnapshot();
      const res = await client.send(new RegisterImageCommand({
        Name: "web (arm) [v1.2] it's/@_-",
        Description: 'arm web server',
        Architecture: 'arm64',
        VirtualizationType: 'hvm',
        RootDeviceName: '/dev/xvda',
        BlockDeviceMappings: [
          { DeviceName: '/dev/xvda', Ebs: { SnapshotId: root, DeleteOnTermination: true, VolumeType: 'gp3', VolumeSize: 20 } },
          { DeviceName: '/dev/xvdb', Ebs: { SnapshotId: data, DeleteOnTermination: false } },
        ],
        EnaSupport: true,
        BootMode: 'uefi',
        TpmSupport: 'v2.0',
        UefiData: 'QU1aTlVFRkk=',
        ImdsSupport: 'v2.0',
        TagSpecifications: [{ ResourceType: 'image', Tags: [{ Key: 'Name', Value: 'web' }] }],
      }));
      expect(res.ImageId).toMatch(/^ami-[0-9a-f]{17}$/);
      expect(ec2.callsTo('RegisterImage')[0]?.params).toEqual({
        'Name': "web (arm) [v1.2] it's/@_-",
        'Description': 'arm web server',
        'Architecture': 'arm64',
        'VirtualizationType': 'hvm',
        'RootDeviceName': '/dev/xvda',
        'BlockDeviceMapping.1.DeviceName': '/dev/xvda',
        'BlockDeviceMapping.1.Ebs.SnapshotId': root,
        'BlockDeviceMapping.1.Ebs.DeleteOnTermination': 'true',
        'BlockDeviceMapping.1.Ebs.VolumeType': 'gp3',
        'BlockDeviceMapping.1.Ebs.VolumeSize': '20',
        'BlockDeviceMapping.2.DeviceName': '/dev/xvdb',
        'BlockDeviceMapping.2.Ebs.SnapshotId': data,
        'BlockDeviceMapping.2.Ebs.DeleteOnTermination': 'false',
        'EnaSupport': 'true',
        'BootMode': 'uefi',
        'TpmSupport': 'v2.0',
        'UefiData': 'QU1aTlVFRkk=',
        'ImdsSupport': 'v2.0',
        'TagSpecification.1.ResourceType': 'image',
        'TagSpecification.1.Tag.1.Key': 'Name',
        'TagSpecification.1.Tag.1.Value': 'web',
      });

      const images = await client.send(new DescribeImagesCommand({ ImageIds: [res.ImageId ?? ''] }));
      const keyArn = 'arn:aws:kms:us-east-1:123456789012:alias/images';
      expect(images.Images?.[0]).toMatchObject({
        ImageId: res.ImageId,
        Name: "web (arm) [v1.2] it's/@_-",
        Description: 'arm web server',
        State: 'available',
        OwnerId: '123456789012',
        Architecture: 'arm64',
        VirtualizationType: 'hvm',
        EnaSupport: true,
        BootMode: 'uefi',
        TpmSupport: 'v2.0',
        ImdsSupport: 'v2.0',
        PlatformDetails: 'Linux/UNIX',
        UsageOperation: 'RunInstances',
        RootDeviceType: 'ebs',
        RootDeviceName: '/dev/xvda',
        BlockDeviceMappings: [
          { DeviceName: '/dev/xvda', Ebs: { SnapshotId: root, VolumeSize: 20, VolumeType: 'gp3', DeleteOnTermination: true, Encrypted: true, KmsKeyId: keyArn } },
          { DeviceName: '/dev/xvdb', Ebs: { SnapshotId: data, VolumeSize: 8, VolumeType: 'gp2', DeleteOnTermination: false, Encrypted: false } },
        ],
        Tags: [{ Key: 'Name', Value: 'web' }],
      });
      expect(images.Images?.[0]?.Platform).toBeUndefined();
      const uefi = await client.send(new DescribeImageAttributeCommand({ ImageId: res.ImageId, Attribute: 'uefiData' }));
      expect(uefi.UefiData?.Value).toBe('QU1aTlVFRkk=');
      expect(ec2.state.images.get(res.ImageId ?? '')).toMatchObject({ virtualizationType: 'hvm', enaSupport: true, tpmSupport: 'v2.0', uefiData: 'QU1aTlVFRkk=' });
      const byType = await client.send(new DescribeImagesCommand({ Filters: [{ Name: 'virtualization-type', Values: ['hvm'] }] }));
      expect(byType.Images?.map((i) => i.ImageId)).toEqual([res.ImageId]);
    });

    test("EC2's defaults apply when unset: i386, paravirtual, no ENA, no boot mode", async () => {
      const snapshotId = await importedSnapshot();
      const { ImageId } = await client.send(new RegisterImageCommand({
        Name: 'defaults',
        RootDeviceName: '/dev/sda1',
        BlockDeviceMappings: [{ DeviceName: '/dev/sda1', Ebs: { SnapshotId: snapshotId } }],
      }));
      const image = (await client.send(new DescribeImagesCommand({ ImageIds: [ImageId ?? ''] }))).Images?.[0];
      expect(image).toMatchObject({ Architecture: 'i386', VirtualizationType: 'paravirtual', State: 'available', RootDeviceName: '/dev/sda1' });
      expect(image?.EnaSupport).toBeUndefined();
      expect(image?.BootMode).toBeUndefined();
      expect(image?.TpmSupport).toBeUndefined();
      expect(image?.ImdsSupport).toBeUndefined();
      expect(image?.BlockDeviceMappings?.[0]?.Ebs).toMatchObject({
        SnapshotId: snapshotId, VolumeSize: 8, DeleteOnTermination: true, Encrypted: false,
      });
    });

    test('an arm64 image without BootMode boots UEFI', async () => {
      const { ImageId } = await client.send(register(await importedSnapshot(), { BootMode: undefined }));
      expect(ec2.state.images.get(ImageId ?? '')?.bootMode).toBe('uefi');
    });

    test('imported AMIs keep reporting hvm and ENA', async () => {
      const taskId = (await client.send(new ImportImageCommand({ DiskContainers: [{ Format: 'VMDK', Url: 's3://b/k.vmdk' }] }))).ImportTaskId ?? '';
      const image = ec2.completeNow(taskId);
      const described = (await client.send(new DescribeImagesCommand({ ImageIds: [image.imageId] }))).Images?.[0];
      expect(described).toMatchObject({ VirtualizationType: 'hvm', EnaSupport: true });
    });

    test('a registered image and its snapshot go away by DeregisterImage and DeleteSnapshot', async () => {
      const snapshotId = await importedSnapshot();
      const { ImageId } = await client.send(register(snapshotId));
      await expectEc2Error(client.send(new DeleteSnapshotCommand({ SnapshotId: snapshotId })), 'InvalidSnapshot.InUse', 400, new RegExp(ImageId ?? ''));
      await client.send(new DeregisterImageCommand({ ImageId }));
      await client.send(new DeleteSnapshotCommand({ SnapshotId: snapshotId }));
      expect(ec2.state.snapshots.size).toBe(0);
    });

    test('the name must be unique among the account\'s images', async () => {
      const snapshotId = await importedSnapshot();
      const { ImageId } = await client.send(register(snapshotId));
      await expectEc2Error(client.send(register(snapshotId)), 'InvalidAMIName.Duplicate', 400, `AMI name my-arm-image is already in use by AMI ${ImageId}`);
    });

    test.each<[string, (snap: string) => Partial<RegisterImageCommandInput>, string, RegExp]>([
      ['no name', () => ({ Name: undefined }), 'MissingParameter', /Name/],
      ['a short name', () => ({ Name: 'ab' }), 'InvalidAMIName.Malformed', /between 3 and 128/],
      ['a long name', () => ({ Name: 'a'.repeat(129) }), 'InvalidAMIName.Malformed', /between 3 and 128/],
      ['a name with a bad character', () => ({ Name: 'web#1' }), 'InvalidAMIName.Malformed', /between 3 and 128/],
      ['an unknown architecture', () => ({ Architecture: 'sparc' as never }), 'InvalidParameterValue', /Architecture/],
      ['arm64 paravirtual', () => ({ VirtualizationType: 'paravirtual' }), 'InvalidParameterCombination', /paravirtual/],
      ['arm64 with the default (paravirtual) virtualization', () => ({ VirtualizationType: undefined }), 'InvalidParameterCombination', /paravirtual/],
      ['arm64 legacy-bios', () => ({ BootMode: 'legacy-bios' }), 'InvalidParameterCombination', /legacy-bios/],
      ['an unknown boot mode', () => ({ BootMode: 'bios' as never }), 'InvalidParameterValue', /BootMode/],
      ['TPM without uefi', () => ({ Architecture: 'x86_64', BootMode: 'legacy-bios', TpmSupport: 'v2.0' }), 'InvalidParameterCombination', /TpmSupport v2.0 requires BootMode uefi/],
      ['TPM with uefi-preferred', () => ({ Architecture: 'x86_64', BootMode: 'uefi-preferred', TpmSupport: 'v2.0' }), 'InvalidParameterCombination', /requires BootMode uefi/],
      ['TPM v1.2', () => ({ TpmSupport: 'v1.2' as never }), 'InvalidParameterValue', /TpmSupport/],
      ['IMDS v1.0', () => ({ ImdsSupport: 'v1.0' as never }), 'InvalidParameterValue', /ImdsSupport/],
      ['no root device name', () => ({ RootDeviceName: undefined }), 'MissingParameter', /RootDeviceName/],
      ['a root device name no mapping has', () => ({ RootDeviceName: '/dev/sda1' }), 'InvalidBlockDeviceMapping', /\/dev\/sda1/],
      ['no mappings', () => ({ BlockDeviceMappings: [] }), 'MissingParameter', /BlockDeviceMapping/],
      ['a mapping without a snapshot', () => ({ BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { VolumeSize: 8 } }] }), 'InvalidBlockDeviceMapping', /SnapshotId/],
      ['a device named twice', (snap) => ({ BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { SnapshotId: snap } }, { DeviceName: '/dev/xvda', Ebs: { SnapshotId: snap } }] }),
        'InvalidBlockDeviceMapping', /more than once/],
      ['Ebs.Encrypted with a snapshot', (snap) => ({ BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { SnapshotId: snap, Encrypted: true } }] }),
        'InvalidParameterCombination', /Encrypted cannot be used with SnapshotId/],
      ['an unknown snapshot', () => ({ BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { SnapshotId: 'snap-0123456789abcdef0' } }] }),
        'InvalidSnapshot.NotFound', /snap-0123456789abcdef0/],
      ['a malformed snapshot ID', () => ({ BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { SnapshotId: 'snapshot-1' } }] }), 'InvalidSnapshotID.Malformed', /snapshot-1/],
      ['a volume smaller than its snapshot', (snap) => ({ BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { SnapshotId: snap, VolumeSize: 4 } }] }),
        'InvalidBlockDeviceMapping', /smaller than snapshot/],
      ['an unknown volume type', (snap) => ({ BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { SnapshotId: snap, VolumeType: 'gp9' as never } }] }),
        'InvalidParameterValue', /VolumeType/],
      ['a tag spec for snapshots', () => ({ TagSpecifications: [{ ResourceType: 'snapshot', Tags: [{ Key: 'a', Value: 'b' }] }] }), 'InvalidParameterValue', /not a valid taggable resource type/],
      ['an aws: tag', () => ({ TagSpecifications: [{ ResourceType: 'image', Tags: [{ Key: 'aws:a', Value: 'b' }] }] }), 'InvalidParameterValue', /reserved/],
    ])('rejects %s', async (_label, overrides, code, message) => {
      const snapshotId = await importedSnapshot();
      await expectEc2Error(client.send(register(snapshotId, overrides(snapshotId))), code, 400, message);
      expect(ec2.state.images.size).toBe(0);
    });

    test('a snapshot that is not completed is IncorrectState; one of another account is not found', async () => {
      const snapshotId = await importedSnapshot();
      const snapshot = ec2.state.snapshots.get(snapshotId);
      if (!snapshot) {
        throw new Error('no snapshot');
      }
      snapshot.state = 'pending';
      await expectEc2Error(client.send(register(snapshotId)), 'IncorrectState', 400, /not in the completed state: pending/);
      (ec2.state.snapshots as Map<string, typeof snapshot>).set(snapshotId, { ...snapshot, state: 'completed', ownerId: '210987654321' });
      await expectEc2Error(client.send(register(snapshotId)), 'InvalidSnapshot.NotFound', 400, snapshotId);
      expect(ec2.state.images.size).toBe(0);
    });
  });

  describe('every emitted XML element is read by the SDK', () => {
    test('ImportSnapshot and DescribeImportSnapshotTasks', async () => {
      const res = await client.send(basicSnapshotImport({
        ClientToken: 'wire',
        Description: 'd',
        DiskContainer: { Description: 'disk', Format: 'VMDK', UserBucket: { S3Bucket: 'b', S3Key: 'k' } },
        Encrypted: true,
        KmsKeyId: 'alias/k',
        TagSpecifications: [{ ResourceType: 'import-snapshot-task', Tags: [{ Key: 'a', Value: 'b' }] }],
      }));
      const xml = await rawReplay('ImportSnapshot');
      expect(xml).toContain(`<importTaskId>${res.ImportTaskId}</importTaskId>`);
      expect(outputLeafCount(res)).toBe(xmlLeafCount(xml));
      expect(outputLeafCount(res)).toBeGreaterThanOrEqual(13);

      ec2.completeSnapshotTaskNow(res.ImportTaskId ?? '');
      await startSnapshotImport({ DiskContainer: { Format: 'RAW', Url: 'https://example.com/x.raw' } });
      const listed = await client.send(new DescribeImportSnapshotTasksCommand({ MaxResults: 5 }));
      expect(listed.ImportSnapshotTasks).toHaveLength(2);
      expect(outputLeafCount(listed)).toBe(xmlLeafCount(await rawReplay('DescribeImportSnapshotTasks')));
    });

    test('DescribeImages of a registered image', async () => {
      const snapshotId = await importedSnapshot({ Encrypted: true });
      const { ImageId } = await client.send(register(snapshotId, {
        Description: 'x',
        EnaSupport: true,
        TpmSupport: 'v2.0',
        ImdsSupport: 'v2.0',
        TagSpecifications: [{ ResourceType: 'image', Tags: [{ Key: 'k', Value: 'v' }] }],
      }));
      const images = await client.send(new DescribeImagesCommand({ ImageIds: [ImageId ?? ''] }));
      expect(images.Images?.[0]?.TpmSupport).toBe('v2.0');
      expect(outputLeafCount(images)).toBe(xmlLeafCount(await rawReplay('DescribeImages')));
    });
  });
});
