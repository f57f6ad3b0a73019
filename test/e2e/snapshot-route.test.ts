/**
 * The snapshot route end to end, offline: the synthesized state machine and the bundled
 * function run ImportSnapshot for each disk, poll the tasks, tag each snapshot as its task
 * completes and register the AMI, against LocalEc2's model of ImportSnapshot,
 * DescribeImportSnapshotTasks and RegisterImage (see engine-harness.ts).
 */
import { Engine, IMPORT_ROLE, KMS_KEY, snapshotRouteProps, STACK_ID, tagsOf } from './engine-harness';
import { CANCELLED_MESSAGE } from './local-ec2';

jest.setTimeout(60_000);

const ROLE = IMPORT_ROLE;
const KEY = KMS_KEY;
const TAG_STACK_ID = 'cdk-vm-import:stack-id';

type Props = Record<string, unknown>;

/** A two-disk arm64 import on the snapshot route, as the construct synthesizes it. */
function props(overrides: Props = {}): Props {
  return snapshotRouteProps({
    ImageDescription: 'Arm server',
    TpmSupport: 'v2.0',
    ImdsSupport: 'v2.0',
    WaitConditionId: 'ArmImageWait0123456789AB',
    ...overrides,
  });
}

let engine: Engine;

afterEach(async () => {
  expect(engine.blockedRequests).toEqual([]);
  await engine.stop();
});

const tasks = () => [...engine.ec2.state.snapshotTasks.values()];
const images = () => [...engine.ec2.state.images.values()];
const snapshots = () => [...engine.ec2.state.snapshots.values()];

async function deleteStart(physicalResourceId: string, p: Props) {
  return engine.request('Delete', 'Custom::VmImageImport', 'WebServerImage', p, { physicalResourceId });
}

describe('importMethod snapshots: ImportSnapshot per disk, then RegisterImage', () => {
  test('an arm64 two-disk import: both disks imported at once, encrypted with the key; the AMI registered with every field; all tagged', async () => {
    engine = await Engine.start();
    engine.ec2.queueSnapshotTaskBehaviour({ stagesToComplete: 4 });
    engine.ec2.queueSnapshotTaskBehaviour({ stagesToComplete: 9 });
    const { start, result, execution } = await engine.deploy(props());
    expect(execution?.status).toBe('SUCCEEDED');
    expect(engine.ec2.callsTo('ImportImage')).toHaveLength(0);

    // Both tasks, with their own tokens, the key, and the user's tags and the stack tag.
    const [boot, data] = tasks();
    expect(tasks()).toHaveLength(2);
    expect(boot.params).toMatchObject({ encrypted: true, kmsKeyId: KEY, roleName: ROLE, diskContainer: { format: 'RAW', userBucket: { s3Bucket: 'vm-images-bucket', s3Key: 'arm/boot.raw' } } });
    expect(data.params).toMatchObject({ diskContainer: { format: 'VMDK', userBucket: { s3Key: 'arm/data.vmdk' } } });
    expect(boot.params.clientToken).toMatch(/^[0-9a-f]{64}$/);
    expect(data.params.clientToken).not.toBe(boot.params.clientToken);
    for (const task of [boot, data]) {
      expect(tagsOf(task)).toEqual({ 'team': 'infra', [TAG_STACK_ID]: STACK_ID, 'cdk-vm-import:execution': start.PhysicalResourceId.split(':').pop() });
      expect(task.status).toBe('completed');
    }

    // RegisterImage with every field set, the disks in order.
    const [register] = engine.ec2.callsTo('RegisterImage');
    expect(register.params).toEqual(expect.objectContaining({
      'Name': 'arm-server-1.0',
      'Description': 'Arm server',
      'Architecture': 'arm64',
      'VirtualizationType': 'hvm',
      'RootDeviceName': '/dev/xvda',
      'BlockDeviceMapping.1.DeviceName': '/dev/xvda',
      'BlockDeviceMapping.1.Ebs.SnapshotId': boot.snapshotId,
      'BlockDeviceMapping.1.Ebs.DeleteOnTermination': 'true',
      'BlockDeviceMapping.1.Ebs.VolumeType': 'gp3',
      'BlockDeviceMapping.2.DeviceName': '/dev/xvdf',
      'BlockDeviceMapping.2.Ebs.SnapshotId': data.snapshotId,
      'EnaSupport': 'true',
      'BootMode': 'uefi',
      'TpmSupport': 'v2.0',
      'ImdsSupport': 'v2.0',
    }));
    expect(Object.keys(register.params).filter((k) => k.endsWith('Ebs.Encrypted'))).toEqual([]);

    const [image] = images();
    expect(images()).toHaveLength(1);
    expect(image).toMatchObject({ name: 'arm-server-1.0', architecture: 'arm64', bootMode: 'uefi', virtualizationType: 'hvm', tpmSupport: 'v2.0', imdsSupport: 'v2.0' });
    const expected = {
      'team': 'infra',
      [TAG_STACK_ID]: STACK_ID,
      'cdk-vm-import:logical-id': 'WebServerImage',
      'cdk-vm-import:import-task-id': boot.importTaskId,
    };
    expect(tagsOf(image)).toEqual(expected);
    for (const snapshot of snapshots()) {
      expect(tagsOf(snapshot)).toEqual(expected);
      expect(snapshot).toMatchObject({ encrypted: true, kmsKeyId: KEY });
    }
    expect(result).toMatchObject({
      Status: 'SUCCESS',
      PhysicalResourceId: image.imageId,
      Data: { ImageId: image.imageId, SnapshotIds: `${boot.snapshotId},${data.snapshotId}`, ImportTaskId: boot.importTaskId },
    });
    // The boot disk's snapshot was tagged as its task completed, before the data disk's.
    const tagCalls = engine.ec2.callsTo('CreateTags').map((c) => c.params['ResourceId.1']);
    expect(tagCalls.indexOf(boot.snapshotId!)).toBeLessThan(tagCalls.indexOf(data.snapshotId!));
    // Start, register and signal, and one poll step per poll.
    expect(engine.stepInvocations.get(start.PhysicalResourceId)).toBe(3 + engine.ec2.callsTo('DescribeImportSnapshotTasks').length);
  });

  test('one disk\'s task failing cancels the other and fails the stack with its StatusMessage; DESTROY on rollback leaves no snapshot', async () => {
    engine = await Engine.start();
    engine.ec2.queueSnapshotTaskBehaviour({ stagesToComplete: 1 });
    engine.ec2.queueSnapshotTaskBehaviour({ failAfter: { stages: 3, message: 'ClientError: Disk validation failed [Unsupported VMDK File Format]' } });
    engine.ec2.queueSnapshotTaskBehaviour({ hold: true });
    const p = props({
      RemovalPolicy: 'destroy',
      DiskContainers: [...props().DiskContainers as object[], { Format: 'RAW', Url: 'https://example.com/third.raw' }],
    });
    const { start, result } = await engine.deploy(p);
    const [first, second, third] = tasks();
    expect(result?.Status).toBe('FAILED');
    expect(result?.Reason).toMatch(new RegExp(`^VM import ${second.importTaskId} \\(ImportSnapshot of disk 2\\) failed: ClientError: Disk validation failed \\[Unsupported VMDK File Format\\] Remedy: `));
    expect(result?.Reason).toMatch(/The other disks' tasks were cancelled\.$/);
    // Cancelled: EC2 reports it deleting, then deleted.
    expect(['deleting', 'deleted']).toContain(third.status);
    expect(third.statusMessage).toBe(CANCELLED_MESSAGE);
    expect(first.status).toBe('completed');
    // The first disk's snapshot was tagged as its task completed, so the rollback may remove it.
    expect(tagsOf(engine.ec2.state.snapshots.get(first.snapshotId!))[TAG_STACK_ID]).toBe(STACK_ID);
    expect(engine.ec2.callsTo('RegisterImage')).toHaveLength(0);
    await deleteStart(start.PhysicalResourceId, p);
    expect(snapshots()).toEqual([]);
    expect(images()).toEqual([]);
  });

  test.each([
    ['destroy', 0],
    ['retain', 1],
  ])('deleting the start resource with one task finished and one running (%s): the running one is cancelled; %d snapshot is left', async (removal, left) => {
    engine = await Engine.start();
    engine.ec2.queueSnapshotTaskBehaviour({ stagesToComplete: 1 });
    engine.ec2.queueSnapshotTaskBehaviour({ hold: true });
    const p = props({ RemovalPolicy: removal });
    const start = await engine.request('Create', 'Custom::VmImageImport', 'WebServerImage', p);
    const execution = engine.sfn.executions.get(start.PhysicalResourceId)!;
    await engine.until(() => snapshots().some((s) => tagsOf(s)[TAG_STACK_ID] === STACK_ID));
    const [done, running] = tasks();
    const deleted = await deleteStart(start.PhysicalResourceId, p);
    expect(deleted.Status).toBe('SUCCESS');
    await execution.done;
    expect(execution.status).toBe('ABORTED');
    expect(['deleting', 'deleted']).toContain(running.status);
    expect(engine.ec2.callsTo('CancelImportTask').map((c) => c.params.ImportTaskId)).toContain(running.importTaskId);
    expect(snapshots().map((s) => s.snapshotId)).toEqual(left ? [done.snapshotId] : []);
    expect(images()).toEqual([]);
  });

  test('a completed import deleted with DESTROY leaves no AMI and no snapshot', async () => {
    engine = await Engine.start();
    const p = props({ RemovalPolicy: 'destroy' });
    const { start, result } = await engine.deploy(p);
    expect(result?.Status).toBe('SUCCESS');
    expect(snapshots()).toHaveLength(2);
    const resultProps = { ExecutionArn: start.PhysicalResourceId, Tags: p.Tags, RemovalPolicy: 'destroy' };
    await engine.request('Delete', 'Custom::VmImageImportResult', 'WebServerImageResult', resultProps, { physicalResourceId: result!.PhysicalResourceId });
    await deleteStart(start.PhysicalResourceId, p);
    expect(images()).toEqual([]);
    expect(snapshots()).toEqual([]);
  });

  test('the wait running out cancels every task still running and fails the stack with each task\'s progress', async () => {
    engine = await Engine.start();
    engine.ec2.queueSnapshotTaskBehaviour({ stagesToComplete: 1 });
    engine.ec2.queueSnapshotTaskBehaviour({ stagesToComplete: 10_000 });
    const { result } = await engine.deploy(props({ WaitTimeoutSeconds: '600' }));
    const [done, slow] = tasks();
    expect(result?.Status).toBe('FAILED');
    expect(result?.Reason).toMatch(new RegExp(`^VM import ${done.importTaskId} \\(ImportSnapshot of 2 disks\\) did not finish within 600 seconds and was cancelled; ` +
      `last progress: ${done.importTaskId} completed, ${slow.importTaskId} \\d+% '`));
    expect(['deleting', 'deleted']).toContain(slow.status);
    expect(slow.statusMessage).toBe(CANCELLED_MESSAGE);
  });

  test('a name already taken fails before any ImportSnapshot', async () => {
    engine = await Engine.start();
    const first = await engine.deploy(props());
    expect(first.result?.Status).toBe('SUCCESS');
    const second = await engine.deploy(props({ WaitConditionId: 'OtherWaitABCDEF012345' }), { logicalId: 'Other' });
    expect(second.result?.Status).toBe('FAILED');
    expect(second.result?.Reason).toContain(`'imageName' "arm-server-1.0" is already the name of ${first.result!.PhysicalResourceId}`);
    expect(engine.ec2.callsTo('ImportSnapshot')).toHaveLength(2);
  });
});
