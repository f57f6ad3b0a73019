import {
  CancelImportTaskCommand,
  CreateTagsCommand,
  DeleteSnapshotCommand,
  DeleteTagsCommand,
  DeregisterImageCommand,
  DescribeImagesCommand,
  DescribeImportImageTasksCommand,
  DescribeSnapshotsCommand,
  EC2Client,
  ImportImageCommand,
} from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import { HandlerEvent, isComplete, onEvent } from '../../lambda/index';

const ec2 = mockClient(EC2Client);
const STACK = 'arn:aws:cloudformation:us-east-1:123456789012:stack/s/1';
const TASK = 'import-ami-0123456789abcdef0';
const PROPS = {
  ServiceToken: 'arn:aws:lambda:us-east-1:123456789012:function:p',
  DiskContainers: [{ Format: 'VMDK', S3Bucket: 'b', S3Key: 'k.vmdk' }],
  RoleName: 'import-role',
  Tags: [{ Key: 'team', Value: 'infra' }],
  RemovalPolicy: 'retain',
  WaitTimeoutSeconds: '600',
};

function event(overrides: Partial<HandlerEvent> = {}): HandlerEvent {
  return {
    RequestType: 'Create',
    RequestId: 'req-1',
    StackId: STACK,
    LogicalResourceId: 'Image',
    ResourceProperties: PROPS,
    ...overrides,
  };
}

const named = (name: string, message: string) => Object.assign(new Error(message), { name });

let logs: string[];
beforeEach(() => {
  ec2.reset();
  logs = [];
  jest.spyOn(console, 'log').mockImplementation((line: string) => { logs.push(line); });
  process.env.VM_IMPORT_IAM_RETRY_SECONDS = '3';
});
afterEach(() => jest.restoreAllMocks());

describe('Create', () => {
  test('starts the import with a deterministic client token and returns the task as physical ID', async () => {
    ec2.on(ImportImageCommand).resolves({ ImportTaskId: TASK });
    const result = await onEvent(event());
    expect(result.PhysicalResourceId).toBe(TASK);
    expect(result.Data?.ImportTaskId).toBe(TASK);
    expect(Number(result.Data?.StartedAt)).toBeGreaterThan(0);
    const input = ec2.commandCalls(ImportImageCommand)[0].args[0].input;
    expect(input.RoleName).toBe('import-role');
    expect(input.ClientToken).toMatch(/^[0-9a-f]{64}$/);
    expect(input.DiskContainers).toEqual([{ Format: 'VMDK', UserBucket: { S3Bucket: 'b', S3Key: 'k.vmdk' } }]);
  });

  test('a duplicated Create sends the same client token', async () => {
    ec2.on(ImportImageCommand).resolves({ ImportTaskId: TASK });
    await onEvent(event());
    await onEvent(event());
    const [a, b] = ec2.commandCalls(ImportImageCommand).map((c) => c.args[0].input.ClientToken);
    expect(a).toBe(b);
  });

  test('retries while the new role propagates through IAM, then succeeds', async () => {
    ec2.on(ImportImageCommand)
      .rejectsOnce(named('InvalidParameter', 'The service role import-role provided does not exist or does not have sufficient permissions'))
      .resolves({ ImportTaskId: TASK });
    const result = await onEvent(event());
    expect(result.PhysicalResourceId).toBe(TASK);
    expect(ec2.commandCalls(ImportImageCommand)).toHaveLength(2);
  });

  test('gives up on the propagation error after its budget with what to check', async () => {
    ec2.on(ImportImageCommand).rejects(named('InvalidParameter', 'The service role import-role provided does not exist or does not have sufficient permissions'));
    await expect(onEvent(event())).rejects.toThrow(/kept failing .*Check that the role 'import-role' exists, trusts vmie\.amazonaws\.com with sts:ExternalId 'vmimport'/);
    expect(ec2.commandCalls(ImportImageCommand).length).toBeGreaterThanOrEqual(2);
  }, 15_000);

  test('any other ImportImage error fails at once', async () => {
    ec2.on(ImportImageCommand).rejects(named('InvalidParameter', 'Invalid S3 key'));
    await expect(onEvent(event())).rejects.toThrow('Invalid S3 key');
    expect(ec2.commandCalls(ImportImageCommand)).toHaveLength(1);
  });

  test('never logs the response URL', async () => {
    ec2.on(ImportImageCommand).resolves({ ImportTaskId: TASK });
    await onEvent({ ...event(), ResponseURL: 'https://cloudformation-custom-resource-response.s3.amazonaws.com/secret' } as HandlerEvent);
    expect(logs.join('\n')).not.toMatch(/secret|ResponseURL/);
  });
});

describe('isComplete', () => {
  const polled = (data: Record<string, string> = { StartedAt: String(Date.now()) }) =>
    event({ PhysicalResourceId: TASK, Data: { ImportTaskId: TASK, ...data } });

  test('an active task is not complete, and its progress is logged', async () => {
    ec2.on(DescribeImportImageTasksCommand).resolves({ ImportImageTasks: [{ ImportTaskId: TASK, Status: 'active', Progress: '28', StatusMessage: 'converting' }] });
    await expect(isComplete(polled())).resolves.toEqual({ IsComplete: false });
    expect(logs.map((l) => JSON.parse(l))).toContainEqual({ message: 'import progress', importTaskId: TASK, status: 'active', progress: '28', statusMessage: 'converting' });
  });

  test('a completed task returns the AMI and snapshots and tags them', async () => {
    ec2.on(DescribeImportImageTasksCommand).resolves({
      ImportImageTasks: [{
        ImportTaskId: TASK, Status: 'completed', ImageId: 'ami-1', SnapshotDetails: [{ SnapshotId: 'snap-1' }, { SnapshotId: 'snap-2' }],
      }],
    });
    ec2.on(CreateTagsCommand).resolves({});
    await expect(isComplete(polled())).resolves.toEqual({
      IsComplete: true,
      Data: { ImageId: 'ami-1', SnapshotIds: 'snap-1,snap-2', ImportTaskId: TASK },
    });
    expect(ec2.commandCalls(CreateTagsCommand)[0].args[0].input).toEqual({
      Resources: ['ami-1', 'snap-1', 'snap-2'],
      Tags: [
        { Key: 'team', Value: 'infra' },
        { Key: 'cdk-vm-import:stack-id', Value: STACK },
        { Key: 'cdk-vm-import:logical-id', Value: 'Image' },
        { Key: 'cdk-vm-import:import-task-id', Value: TASK },
        { Key: 'cdk-vm-import:image-hash', Value: expect.stringMatching(/^[0-9a-f]{64}$/) },
      ],
    });
  });

  test('a failed task throws with EC2\'s StatusMessage', async () => {
    ec2.on(DescribeImportImageTasksCommand).resolves({ ImportImageTasks: [{ ImportTaskId: TASK, Status: 'deleted', StatusMessage: 'ClientError: Unknown OS / Missing OS files.' }] });
    await expect(isComplete(polled())).rejects.toThrow(`VM import ${TASK} failed: ClientError: Unknown OS / Missing OS files.`);
  });

  test('past its deadline the task is cancelled and the error carries the last progress', async () => {
    ec2.on(DescribeImportImageTasksCommand).resolves({ ImportImageTasks: [{ ImportTaskId: TASK, Status: 'active', Progress: '57', StatusMessage: 'booting' }] });
    ec2.on(CancelImportTaskCommand).resolves({ ImportTaskId: TASK, State: 'deleting' });
    await expect(isComplete(polled({ StartedAt: String(Date.now() - 601_000) }))).rejects.toThrow(/did not finish within 600 seconds and was cancelled; last progress 57%, status message 'booting'/);
    expect(ec2.commandCalls(CancelImportTaskCommand)[0].args[0].input.ImportTaskId).toBe(TASK);
  });

  test('an in-place update of an import no longer listed finds its AMI by tag, re-tags it and drops removed tags', async () => {
    ec2.on(DescribeImportImageTasksCommand).resolves({ ImportImageTasks: [] });
    ec2.on(DescribeImagesCommand).resolves({ Images: [{ ImageId: 'ami-9', BlockDeviceMappings: [{ Ebs: { SnapshotId: 'snap-9' } }] }] });
    ec2.on(CreateTagsCommand).resolves({});
    ec2.on(DeleteTagsCommand).resolves({});
    const result = await isComplete(event({
      RequestType: 'Update',
      PhysicalResourceId: TASK,
      OldResourceProperties: { ...PROPS, Tags: [{ Key: 'old', Value: 'x' }] },
      Data: { ImportTaskId: TASK },
    }));
    expect(result.Data).toEqual({ ImageId: 'ami-9', SnapshotIds: 'snap-9', ImportTaskId: TASK });
    expect(ec2.commandCalls(DescribeImagesCommand)[0].args[0].input.Filters).toEqual([{ Name: 'tag:cdk-vm-import:import-task-id', Values: [TASK] }]);
    expect(ec2.commandCalls(DeleteTagsCommand)[0].args[0].input).toEqual({ Resources: ['ami-9', 'snap-9'], Tags: [{ Key: 'old' }] });
  });

  test('Delete needs no wait', async () => {
    await expect(isComplete(event({ RequestType: 'Delete', PhysicalResourceId: TASK }))).resolves.toEqual({ IsComplete: true });
    expect(ec2.calls()).toHaveLength(0);
  });
});

describe('Update', () => {
  test('a tag change keeps the import', async () => {
    const result = await onEvent(event({
      RequestType: 'Update',
      PhysicalResourceId: TASK,
      OldResourceProperties: { ...PROPS, Tags: [] },
    }));
    expect(result.PhysicalResourceId).toBe(TASK);
    expect(ec2.commandCalls(ImportImageCommand)).toHaveLength(0);
  });

  test('a disk change starts a new import', async () => {
    ec2.on(DescribeImagesCommand).resolves({ Images: [] });
    ec2.on(ImportImageCommand).resolves({ ImportTaskId: 'import-ami-new' });
    const result = await onEvent(event({
      RequestType: 'Update',
      RequestId: 'req-2',
      PhysicalResourceId: TASK,
      OldResourceProperties: { ...PROPS, DiskContainers: [{ Format: 'VMDK', S3Bucket: 'b', S3Key: 'old.vmdk' }] },
    }));
    expect(result.PhysicalResourceId).toBe('import-ami-new');
  });

  test('a change back to earlier properties takes the AMI imported for them, found by its tags', async () => {
    ec2.on(DescribeImagesCommand).resolves({ Images: [{ ImageId: 'ami-old', State: 'available', Tags: [{ Key: 'cdk-vm-import:import-task-id', Value: 'import-ami-old' }] }] });
    const result = await onEvent(event({
      RequestType: 'Update',
      RequestId: 'req-3',
      PhysicalResourceId: 'import-ami-failed',
      OldResourceProperties: { ...PROPS, DiskContainers: [{ Format: 'VMDK', S3Bucket: 'b', S3Key: 'broken.vmdk' }] },
    }));
    expect(result.PhysicalResourceId).toBe('import-ami-old');
    expect(ec2.commandCalls(ImportImageCommand)).toHaveLength(0);
    expect(ec2.commandCalls(DescribeImagesCommand)[0].args[0].input).toEqual({
      Owners: ['self'],
      Filters: [
        { Name: 'tag:cdk-vm-import:stack-id', Values: [STACK] },
        { Name: 'tag:cdk-vm-import:logical-id', Values: ['Image'] },
        { Name: 'tag:cdk-vm-import:image-hash', Values: [expect.stringMatching(/^[0-9a-f]{64}$/)] },
      ],
    });
  });
});

describe('Delete', () => {
  const del = (props: Record<string, unknown> = PROPS, physicalId = TASK) =>
    onEvent(event({ RequestType: 'Delete', PhysicalResourceId: physicalId, ResourceProperties: props }));
  const destroy = { ...PROPS, RemovalPolicy: 'destroy' };

  test('a Create that never started needs nothing', async () => {
    await expect(del(PROPS, 'AWSCDK::CustomResourceProviderFramework::CREATE_FAILED')).resolves.toEqual({
      PhysicalResourceId: 'AWSCDK::CustomResourceProviderFramework::CREATE_FAILED',
    });
    expect(ec2.calls()).toHaveLength(0);
  });

  test('an active task is cancelled', async () => {
    ec2.on(DescribeImportImageTasksCommand).resolves({ ImportImageTasks: [{ ImportTaskId: TASK, Status: 'active' }] });
    ec2.on(CancelImportTaskCommand).resolves({});
    await del();
    expect(ec2.commandCalls(CancelImportTaskCommand)).toHaveLength(1);
  });

  test('a task that completes while being cancelled is destroyed under DESTROY', async () => {
    ec2.on(DescribeImportImageTasksCommand)
      .resolvesOnce({ ImportImageTasks: [{ ImportTaskId: TASK, Status: 'active' }] })
      .resolves({ ImportImageTasks: [{ ImportTaskId: TASK, Status: 'completed', ImageId: 'ami-1', SnapshotDetails: [{ SnapshotId: 'snap-1' }] }] });
    ec2.on(CancelImportTaskCommand).rejects(named('InvalidParameterValue', 'cannot cancel a completed task'));
    ec2.on(DescribeImagesCommand).resolves({ Images: [{ ImageId: 'ami-1', BlockDeviceMappings: [{ Ebs: { SnapshotId: 'snap-1' } }] }] });
    ec2.on(DescribeSnapshotsCommand).resolves({ Snapshots: [] });
    await del(destroy);
    expect(ec2.commandCalls(DeregisterImageCommand)[0].args[0].input.ImageId).toBe('ami-1');
    expect(ec2.commandCalls(DeleteSnapshotCommand)[0].args[0].input.SnapshotId).toBe('snap-1');
  });

  test('RETAIN keeps a completed import', async () => {
    ec2.on(DescribeImportImageTasksCommand).resolves({ ImportImageTasks: [{ ImportTaskId: TASK, Status: 'completed', ImageId: 'ami-1' }] });
    await del();
    expect(ec2.commandCalls(DeregisterImageCommand)).toHaveLength(0);
    expect(ec2.commandCalls(DeleteSnapshotCommand)).toHaveLength(0);
  });

  test('DESTROY deregisters the AMI before deleting every snapshot', async () => {
    ec2.on(DescribeImportImageTasksCommand).resolves({
      ImportImageTasks: [{
        ImportTaskId: TASK, Status: 'completed', ImageId: 'ami-1', SnapshotDetails: [{ SnapshotId: 'snap-1' }],
      }],
    });
    ec2.on(DescribeImagesCommand).resolves({ Images: [{ ImageId: 'ami-1', BlockDeviceMappings: [{ Ebs: { SnapshotId: 'snap-1' } }, { Ebs: { SnapshotId: 'snap-2' } }] }] });
    ec2.on(DescribeSnapshotsCommand).resolves({ Snapshots: [{ SnapshotId: 'snap-3' }] });
    await del(destroy);
    const order = ec2.calls().map((c) => c.args[0].constructor.name).filter((n) => /Deregister|DeleteSnapshot/.test(n));
    expect(order).toEqual(['DeregisterImageCommand', 'DeleteSnapshotCommand', 'DeleteSnapshotCommand', 'DeleteSnapshotCommand']);
    expect(ec2.commandCalls(DeleteSnapshotCommand).map((c) => c.args[0].input.SnapshotId).sort()).toEqual(['snap-1', 'snap-2', 'snap-3']);
  });

  test('DESTROY of an AMI already removed by hand still deletes its snapshots and succeeds', async () => {
    ec2.on(DescribeImportImageTasksCommand).resolves({
      ImportImageTasks: [{
        ImportTaskId: TASK, Status: 'completed', ImageId: 'ami-1', SnapshotDetails: [{ SnapshotId: 'snap-1' }],
      }],
    });
    ec2.on(DescribeImagesCommand).rejects(named('InvalidAMIID.NotFound', 'The image id [ami-1] does not exist'));
    ec2.on(DescribeSnapshotsCommand).resolves({ Snapshots: [] });
    ec2.on(DeleteSnapshotCommand).rejects(named('InvalidSnapshot.NotFound', 'gone'));
    await expect(del(destroy)).resolves.toEqual({ PhysicalResourceId: TASK });
    expect(ec2.commandCalls(DeregisterImageCommand)).toHaveLength(0);
  });

  test('DESTROY of an import older than EC2\'s 7-day listing finds the AMI by tag', async () => {
    ec2.on(DescribeImportImageTasksCommand).rejects(named('InvalidConversionTaskId.Malformed', 'not found'));
    ec2.on(DescribeImagesCommand, { Owners: ['self'] }).resolves({ Images: [{ ImageId: 'ami-7' }] });
    ec2.on(DescribeImagesCommand, { ImageIds: ['ami-7'] }).resolves({ Images: [{ ImageId: 'ami-7', BlockDeviceMappings: [{ Ebs: { SnapshotId: 'snap-7' } }] }] });
    ec2.on(DescribeSnapshotsCommand).resolves({ Snapshots: [] });
    await del(destroy);
    expect(ec2.commandCalls(DeregisterImageCommand)[0].args[0].input.ImageId).toBe('ami-7');
    expect(ec2.commandCalls(DeleteSnapshotCommand)[0].args[0].input.SnapshotId).toBe('snap-7');
  });

  test('a failed task needs nothing', async () => {
    ec2.on(DescribeImportImageTasksCommand).resolves({ ImportImageTasks: [{ ImportTaskId: TASK, Status: 'deleted', StatusMessage: 'x' }] });
    await del(destroy);
    expect(ec2.commandCalls(CancelImportTaskCommand)).toHaveLength(0);
    expect(ec2.commandCalls(DeregisterImageCommand)).toHaveLength(0);
  });
});
