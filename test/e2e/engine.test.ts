/**
 * The import engine end to end, offline: the synthesized state machine, the bundled
 * function and the real AWS SDK against local EC2, Step Functions and CloudFormation
 * servers (see engine-harness.ts). Every scenario checks what CloudFormation received
 * AND what is left on the EC2 side.
 */
import * as fs from 'fs';
import * as ec2 from '@aws-sdk/client-ec2';
import * as sfnModule from '@aws-sdk/client-sfn';
import { jsonLines, MAX_RESPONSE_BYTES } from './drive';
import { Engine, IMPORT_ROLE, STACK_ID, STATE_MACHINE_ARN, startProps, tagsOf } from './engine-harness';
import { CANCELLED_MESSAGE, Ec2Fault } from './local-ec2';

jest.setTimeout(60_000);

const ROLE = IMPORT_ROLE;
const TAG_STACK_ID = 'cdk-vm-import:stack-id';
const UNKNOWN_OS = 'ClientError: Unknown OS / Missing OS files.';
const THROTTLED: Ec2Fault = { status: 503, code: 'RequestLimitExceeded', message: 'Request limit exceeded.' };
const IAM_NOT_READY: Ec2Fault = {
  status: 400,
  code: 'InvalidParameter',
  message: `The service role ${ROLE} provided does not exist or does not have sufficient permissions`,
};

type Props = Record<string, unknown>;

const props = startProps;

let engine: Engine;

afterEach(async () => {
  expect(engine.blockedRequests).toEqual([]);
  await engine.stop();
});


describe('create', () => {
  test('an import of three simulated hours succeeds: the result is the AMI, tagged with the snapshots; no Lambda runs per poll', async () => {
    engine = await Engine.start();
    engine.ec2.queueTaskBehaviour({ stagesToComplete: 360 });
    const { start, result, execution } = await engine.deploy(props());

    expect(start.Status).toBe('SUCCESS');
    expect(start.PhysicalResourceId).toMatch(/^arn:aws:states:us-east-1:123456789012:execution:CdkVmImportEngineStateMachine-AbCdEf:vmimport-[0-9a-f]{40}$/);
    expect(execution?.status).toBe('SUCCEEDED');
    const [task] = [...engine.ec2.state.tasks.values()];
    const image = engine.ec2.state.images.get(task.imageId!)!;
    expect(result).toMatchObject({
      Status: 'SUCCESS',
      PhysicalResourceId: image.imageId,
      Data: { ImageId: image.imageId, SnapshotIds: image.blockDevices.map((d) => d.snapshotId).join(','), ImportTaskId: task.importTaskId },
    });
    expect(engine.clockOffsetMs.get(start.PhysicalResourceId)).toBe(360 * 30_000);
    for (const resource of [image, ...image.blockDevices.map((d) => engine.ec2.state.snapshots.get(d.snapshotId))]) {
      expect(tagsOf(resource)).toEqual({
        'team': 'infra',
        [TAG_STACK_ID]: STACK_ID,
        'cdk-vm-import:logical-id': 'WebServerImage',
        'cdk-vm-import:import-task-id': task.importTaskId,
      });
    }
    // The task carries the user's tags and the stack tag from ImportImage's TagSpecifications.
    expect(tagsOf(task)).toEqual({ 'team': 'infra', [TAG_STACK_ID]: STACK_ID, 'cdk-vm-import:execution': start.PhysicalResourceId.split(':').pop() });
    expect(task.params.clientToken).toMatch(/^[0-9a-f]{64}$/);
    expect(task.params.kmsKeyId).toBe(props().KmsKeyId);
    // The state machine polled EC2 itself: the function ran twice (start, signal) in 360 polls.
    expect(engine.stepInvocations.get(start.PhysicalResourceId)).toBe(2);
    expect(engine.ec2.callsTo('DescribeImportImageTasks')).toHaveLength(360);
    expect(engine.cfn.signalsTo('WebServerImageWait0123456789AB')).toEqual([
      { stackName: STACK_ID, logicalResourceId: 'WebServerImageWait0123456789AB', uniqueId: task.importTaskId, status: 'SUCCESS' },
    ]);
    // Three state transitions a poll (wait, describe, choice) and eight once per import (imported before?, start, started?, tag image, tag snapshots, named?, signal, succeed).
    expect(execution!.transitions).toBe(3 * 360 + 8);
  });

  test('what one import-hour costs at the default 30-second interval: state transitions and Lambda invocations (read by the benchmark)', async () => {
    engine = await Engine.start();
    engine.ec2.queueTaskBehaviour({ stagesToComplete: 120 });
    const { start, execution } = await engine.deploy(props());
    const figures = {
      polls: engine.ec2.callsTo('DescribeImportImageTasks').length,
      stateTransitions: execution!.transitions,
      stepInvocations: engine.stepInvocations.get(start.PhysicalResourceId),
      // The custom resources' own invocations: one Create each.
      customResourceInvocations: 2,
    };
    expect(figures).toEqual({ polls: 120, stateTransitions: 368, stepInvocations: 2, customResourceInvocations: 2 });
    if (process.env.BENCH_ENGINE_COST_FILE) {
      fs.writeFileSync(process.env.BENCH_ENGINE_COST_FILE, JSON.stringify(figures));
    }
  });

  test('a task not listed yet right after ImportImage is "not yet", never "gone"', async () => {
    engine = await Engine.start({ ec2: { unlistedDescribes: 3 } });
    const { result } = await engine.deploy(props());
    expect(result?.Status).toBe('SUCCESS');
    expect(engine.ec2.state.images.size).toBe(1);
  });

  test('throttling of the poll and of the tagging is retried by the state machine', async () => {
    engine = await Engine.start();
    engine.ec2.failNext('DescribeImportImageTasks', THROTTLED, 2);
    engine.ec2.failNext('CreateTags', THROTTLED, 1);
    const { result } = await engine.deploy(props());
    expect(result?.Status).toBe('SUCCESS');
    expect(engine.ec2.callsTo('DescribeImportImageTasks').filter((c) => c.errorCode === 'RequestLimitExceeded')).toHaveLength(2);
  });

  test('a new role not yet usable by VM Import is retried until it is', async () => {
    engine = await Engine.start();
    engine.ec2.failNext('ImportImage', IAM_NOT_READY, 2);
    const { result } = await engine.deploy(props());
    expect(result?.Status).toBe('SUCCESS');
    expect(engine.ec2.callsTo('ImportImage')).toHaveLength(3);
    expect(engine.ec2.state.tasks.size).toBe(1);
  });

  test('a role that never becomes usable fails the stack with what to check, after the retry budget', async () => {
    engine = await Engine.start({ iamRetrySeconds: 60 });
    engine.ec2.failNext('ImportImage', IAM_NOT_READY, 100);
    const { result, execution } = await engine.deploy(props());
    expect(execution?.status).toBe('FAILED');
    expect(result?.Status).toBe('FAILED');
    expect(result?.Reason).toMatch(/ImportImage kept failing for \d+ s: The service role .* Check that the role 'VmImportStack-VmImportRole0A1B2C3D-4E5F6A7B8C9D' exists, trusts vmie.amazonaws.com/);
    expect(engine.ec2.state.tasks.size).toBe(0);
  });

  test('a 500 after EC2 created the task (the response was lost): the SDK retry carries the same ClientToken, so one task', async () => {
    engine = await Engine.start();
    engine.ec2.failNext('ImportImage', { status: 500, code: 'InternalError', message: 'An internal error has occurred', afterAction: true });
    const { result } = await engine.deploy(props());
    expect(result?.Status).toBe('SUCCESS');
    expect(engine.ec2.callsTo('ImportImage')).toHaveLength(2);
    expect(engine.ec2.state.tasks.size).toBe(1);
  });

  test('duplicate deliveries of a Create start one execution and one import', async () => {
    engine = await Engine.start();
    engine.ec2.queueTaskBehaviour({ hold: true });
    const first = await engine.request('Create', 'Custom::VmImageImport', 'WebServerImage', props());
    const again = await engine.request('Create', 'Custom::VmImageImport', 'WebServerImage', props());
    expect(again.PhysicalResourceId).toBe(first.PhysicalResourceId);
    expect(engine.sfn.executions.size).toBe(1);
    await engine.until(() => engine.ec2.state.tasks.size === 1);
    expect(engine.ec2.callsTo('ImportImage')).toHaveLength(1);
  });
});

describe('failure', () => {
  test('a failed import fails the stack at the next poll with EC2\'s StatusMessage and the remedy, within 4 KB', async () => {
    engine = await Engine.start();
    engine.ec2.queueTaskBehaviour({ failAfter: { stages: 5, message: UNKNOWN_OS } });
    const { result, execution } = await engine.deploy(props());
    const [task] = [...engine.ec2.state.tasks.values()];
    expect(result?.Status).toBe('FAILED');
    expect(result?.Reason).toBe(`VM import ${task.importTaskId} failed: ${UNKNOWN_OS} Remedy: VM Import found no supported operating system on the boot disk: ` +
      'check the OS is on the supported list and that the first disk is the boot disk.');
    expect(execution?.status).toBe('FAILED');
    expect(execution?.error).toBe('VmImportFailed');
    // EC2 reported it at the 5th describe; the state machine did not poll again.
    expect(engine.ec2.callsTo('DescribeImportImageTasks')).toHaveLength(5);
    expect(engine.ec2.state.images.size).toBe(0);
  });

  test('a very long StatusMessage is cut so the response fits CloudFormation\'s 4 KB, with a long stack ID', async () => {
    engine = await Engine.start();
    engine.ec2.queueTaskBehaviour({ failAfter: { stages: 1, message: `ClientError: ${'é'.repeat(5000)}` } });
    const { result } = await engine.deploy(props());
    const response = engine.cfn.responses.find((r) => r.body === result)!;
    expect(result?.Status).toBe('FAILED');
    expect(response.bytes).toBeLessThanOrEqual(MAX_RESPONSE_BYTES);
    expect(result?.Reason).toMatch(/…$/);
  });

  test('a failure before CloudFormation has created the WaitCondition is signalled once it exists', async () => {
    engine = await Engine.start();
    engine.ec2.queueTaskBehaviour({ failAfter: { stages: 1, message: UNKNOWN_OS } });
    // Each attempt asks CloudFormation (DescribeStackResource, then DescribeStacks): "not yet", while the stack is being created.
    const { result } = await engine.deploy(props(), {
      beforeWaitCondition: () => engine.until(() => engine.cfn.describeCalls >= 4),
    });
    expect(result?.Status).toBe('FAILED');
    expect(result?.Reason).toMatch(/Unknown OS/);
    // No signal was sent before the WaitCondition existed: the one sent was taken.
    expect(engine.cfn.signalAttempts).toBe(1);
    expect(engine.cfn.signals).toHaveLength(1);
  });
});

test('a task cancelled out of band fails the stack saying it was cancelled', async () => {
  engine = await Engine.start();
  engine.ec2.queueTaskBehaviour({ hold: true });
  const deployed = engine.deploy(props());
  await engine.until(() => engine.ec2.callsTo('DescribeImportImageTasks').length >= 1);
  const [task] = [...engine.ec2.state.tasks.values()];
  engine.ec2.failNow(task.importTaskId, CANCELLED_MESSAGE);
  const { result } = await deployed;
  expect(result?.Status).toBe('FAILED');
  expect(result?.Reason).toMatch(new RegExp(`^VM import ${task.importTaskId} failed: ${CANCELLED_MESSAGE} Remedy: The import task was cancelled`));
});

describe('timeout', () => {
  const twelveHours = props({ WaitTimeoutSeconds: String(12 * 3600) });

  test('an import of 11 h 59 min within a 12-hour timeout succeeds', async () => {
    engine = await Engine.start();
    engine.ec2.queueTaskBehaviour({ stagesToComplete: (11 * 60 + 59) * 2 });
    const { result } = await engine.deploy(twelveHours);
    expect(result?.Status).toBe('SUCCESS');
  });

  test('an import of 12 h 01 min is cancelled at the timeout; the stack fails with the last progress', async () => {
    engine = await Engine.start();
    engine.ec2.queueTaskBehaviour({ stagesToComplete: (12 * 60 + 1) * 2 });
    const { result, execution } = await engine.deploy(twelveHours);
    const [task] = [...engine.ec2.state.tasks.values()];
    expect(['deleting', 'deleted']).toContain(task.status);
    expect(task.statusMessage).toBe(CANCELLED_MESSAGE);
    expect(task.cancelReason).toBe('cdk-vm-import: wait of 43200 s exceeded');
    expect(execution?.status).toBe('FAILED');
    expect(result?.Reason).toMatch(new RegExp(`^VM import ${task.importTaskId} did not finish within 43200 seconds and was cancelled; last progress \\d+%, status message '[a-z ]+'`));
    // Ended before the WaitCondition's 12 hours: the stack reports this reason, not a WaitCondition timeout.
    expect(engine.clockOffsetMs.get(execution!.arn)).toBeLessThan(43_200_000);
    expect(engine.ec2.state.images.size).toBe(0);
  });

  test('a task that completes between the last poll and the cancel is a success, tagged', async () => {
    engine = await Engine.start();
    engine.ec2.queueTaskBehaviour({ hold: true });
    const short = props({ WaitTimeoutSeconds: '60' });
    engine.ec2.completeOnCancel = true;
    const { result } = await engine.deploy(short);
    const [task] = [...engine.ec2.state.tasks.values()];
    expect(engine.ec2.callsTo('CancelImportTask').map((c) => c.errorCode)).toEqual(['IncorrectState']);
    expect(result?.Status).toBe('SUCCESS');
    expect(result?.PhysicalResourceId).toBe(task.imageId);
    expect(tagsOf(engine.ec2.state.images.get(task.imageId!))[TAG_STACK_ID]).toBe(STACK_ID);
  });
});

describe('quota', () => {
  test('25 imports in one stack with a quota of 20 all complete: refused imports wait and retry', async () => {
    engine = await Engine.start({ ec2: { maxActiveTasks: 20, taskBehaviour: { stagesToComplete: 100 } } });
    const results = await Promise.all(Array.from({ length: 25 }, (_, i) =>
      engine.deploy(props({ WaitConditionId: `Image${i}Wait0123456789AB` }), { logicalId: `Image${i}` })));
    expect(results.map((r) => r.result?.Reason ?? r.result?.Status ?? r.execution?.status)).toEqual(Array(25).fill('SUCCESS'));
    expect(engine.ec2.callsTo('ImportImage').filter((c) => c.errorCode === 'ResourceCountLimitExceeded').length).toBeGreaterThan(0);
    expect(engine.ec2.peakActiveTasks).toBe(20);
    expect(engine.ec2.state.images.size).toBe(25);
  });
});

describe('delete and rollback while an import runs', () => {
  test('deleting the start resource cancels the task and stops the execution; nothing polls after', async () => {
    engine = await Engine.start();
    engine.ec2.queueTaskBehaviour({ hold: true });
    const start = await engine.request('Create', 'Custom::VmImageImport', 'WebServerImage', props());
    await engine.until(() => engine.ec2.callsTo('DescribeImportImageTasks').length >= 2);
    const deleted = await engine.request('Delete', 'Custom::VmImageImport', 'WebServerImage', props(), { physicalResourceId: start.PhysicalResourceId });
    expect(deleted).toMatchObject({ Status: 'SUCCESS', PhysicalResourceId: start.PhysicalResourceId });
    const [task] = [...engine.ec2.state.tasks.values()];
    expect(task.cancelReason).toBe('cdk-vm-import: the resource was deleted');
    const execution = engine.sfn.executions.get(start.PhysicalResourceId)!;
    expect(execution.status).toBe('ABORTED');
    await execution.done;
    const polls = engine.ec2.callsTo('DescribeImportImageTasks').length;
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(engine.ec2.callsTo('DescribeImportImageTasks')).toHaveLength(polls);
    expect(engine.ec2.state.images.size).toBe(0);
  });

  test('deleting it while ImportImage is still refused for the quota stops the execution; no import starts later', async () => {
    engine = await Engine.start({ ec2: { maxActiveTasks: 0 } });
    const start = await engine.request('Create', 'Custom::VmImageImport', 'WebServerImage', props());
    await engine.until(() => engine.ec2.callsTo('ImportImage').length >= 2);
    const deleted = await engine.request('Delete', 'Custom::VmImageImport', 'WebServerImage', props(), { physicalResourceId: start.PhysicalResourceId });
    expect(deleted.Status).toBe('SUCCESS');
    expect(engine.sfn.executions.get(start.PhysicalResourceId)!.status).toBe('ABORTED');
    await engine.sfn.executions.get(start.PhysicalResourceId)!.done;
    const calls = engine.ec2.callsTo('ImportImage').length;
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(engine.ec2.callsTo('ImportImage')).toHaveLength(calls);
    expect(engine.ec2.state.tasks.size).toBe(0);
  });

  test.each([
    ['destroy', 0],
    ['retain', 1],
  ])('a task that EC2 will not cancel because it is finishing is handled by the removal policy (%s)', async (policy, imagesLeft) => {
    engine = await Engine.start();
    engine.ec2.queueTaskBehaviour({ hold: true });
    const p = props({ RemovalPolicy: policy });
    const start = await engine.request('Create', 'Custom::VmImageImport', 'WebServerImage', p);
    await engine.until(() => engine.ec2.callsTo('DescribeImportImageTasks').length >= 1);
    engine.ec2.completeOnCancel = true;
    const deleted = await engine.request('Delete', 'Custom::VmImageImport', 'WebServerImage', p, { physicalResourceId: start.PhysicalResourceId });
    expect(deleted.Status).toBe('SUCCESS');
    expect(engine.ec2.state.images.size).toBe(imagesLeft);
    expect(engine.ec2.state.snapshots.size).toBe(imagesLeft);
    expect(engine.sfn.executions.get(start.PhysicalResourceId)!.status).not.toBe('RUNNING');
  });

  test('an Update that changes the image starts a new execution; its rollback takes back the first without importing again', async () => {
    engine = await Engine.start();
    const first = await engine.deploy(props());
    const changed = props({ DiskContainers: [{ Format: 'VMDK', S3Bucket: 'vm-images-bucket', S3Key: 'web/disk2.vmdk' }], WaitConditionId: 'WebServerImageWaitFEDCBA987654' });
    engine.ec2.queueTaskBehaviour({ hold: true });
    const update = await engine.request('Update', 'Custom::VmImageImport', 'WebServerImage', changed, { physicalResourceId: first.start.PhysicalResourceId, oldProps: props() });
    expect(update.Status).toBe('SUCCESS');
    expect(update.PhysicalResourceId).not.toBe(first.start.PhysicalResourceId);
    await engine.until(() => engine.ec2.state.tasks.size === 2);
    // Something else fails: CloudFormation rolls the start resource back to its old properties.
    const rollback = await engine.request('Update', 'Custom::VmImageImport', 'WebServerImage', props(), { physicalResourceId: update.PhysicalResourceId, oldProps: changed });
    expect(rollback.PhysicalResourceId).toBe(first.start.PhysicalResourceId);
    // ...then deletes the new physical resource: its import is cancelled.
    const cleanup = await engine.request('Delete', 'Custom::VmImageImport', 'WebServerImage', changed, { physicalResourceId: update.PhysicalResourceId });
    expect(cleanup.Status).toBe('SUCCESS');
    expect(engine.ec2.callsTo('ImportImage')).toHaveLength(2);
    expect([...engine.ec2.state.tasks.values()].map((t) => t.cancelReason)).toEqual([undefined, 'cdk-vm-import: the resource was deleted']);
    const result = await engine.request('Update', 'Custom::VmImageImportResult', 'WebServerImageResult',
      { ExecutionArn: rollback.PhysicalResourceId, Tags: props().Tags, RemovalPolicy: 'retain' },
      { physicalResourceId: first.result!.PhysicalResourceId, oldProps: { ExecutionArn: update.PhysicalResourceId, Tags: props().Tags, RemovalPolicy: 'retain' } });
    expect(result).toMatchObject({ Status: 'SUCCESS', PhysicalResourceId: first.result!.PhysicalResourceId });
  });
});

describe('outputs the execution could not tag', () => {
  const REFUSED: Ec2Fault = { status: 403, code: 'UnauthorizedOperation', message: 'You are not authorized to perform this operation (a tag policy).' };

  test.each([
    ['destroy', 0],
    ['retain', 1],
  ])('tagging refused for the whole of the execution\'s retries: the stack fails, and the rollback has the state machine adopt the AMI, then applies %s', async (policy, left) => {
    engine = await Engine.start();
    engine.ec2.queueTaskBehaviour({ stagesToComplete: 2 });
    // The execution's TagImage tries seven times (six retries); the eighth CreateTags, the adoption's, is allowed.
    engine.ec2.failNext('CreateTags', REFUSED, 7);
    const { start, result, execution } = await engine.deploy(props({ RemovalPolicy: policy }));
    expect(execution?.status).toBe('FAILED');
    expect(result?.Status).toBe('FAILED');
    expect(result?.Reason).toMatch(/stopped on an error: .*not authorized/);
    const [task] = [...engine.ec2.state.tasks.values()];
    expect(task.status).toBe('completed');
    const deleted = await engine.request('Delete', 'Custom::VmImageImport', 'WebServerImage', props({ RemovalPolicy: policy }), { physicalResourceId: start.PhysicalResourceId });
    expect(deleted.Status).toBe('SUCCESS');
    const adoption = [...engine.sfn.executions.values()].find((e) => e.name.endsWith('-adopt'));
    expect([adoption?.status, adoption?.error, adoption?.cause]).toEqual(['SUCCEEDED', undefined, undefined]);
    expect(engine.ec2.state.images.size).toBe(left);
    for (const resource of [...engine.ec2.state.images.values(), ...engine.ec2.state.snapshots.values()]) {
      expect(tagsOf(resource)).toMatchObject({ [TAG_STACK_ID]: STACK_ID, 'cdk-vm-import:import-task-id': task.importTaskId, 'team': 'infra' });
    }
    expect(engine.ec2.state.snapshots.size).toBe(left);
  });

  test('an adoption asked for a task that is not this stack\'s tags nothing', async () => {
    engine = await Engine.start();
    engine.ec2.queueTaskBehaviour({ stagesToComplete: 1 });
    const client = new ec2.EC2Client({ endpoint: engine.ec2.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
    // Someone else's import, tagged as theirs.
    const { ImportTaskId } = await client.send(new ec2.ImportImageCommand({
      DiskContainers: [{ Format: 'VMDK', UserBucket: { S3Bucket: 'other-bucket', S3Key: 'theirs.vmdk' } }],
      TagSpecifications: [{ ResourceType: 'import-image-task', Tags: [{ Key: TAG_STACK_ID, Value: 'arn:aws:cloudformation:us-east-1:123456789012:stack/Other/1' }] }],
    }));
    await client.send(new ec2.DescribeImportImageTasksCommand({ ImportTaskIds: [ImportTaskId!] }));
    client.destroy();
    const input = JSON.stringify({
      ...JSON.parse(JSON.stringify({ StackId: STACK_ID, LogicalResourceId: 'X', WaitConditionId: 'W', ClientToken: '', Deadline: new Date().toISOString(), PollIntervalSeconds: 30, Properties: props() })),
      Adopt: { ImportTaskId, OutputTags: [{ Key: TAG_STACK_ID, Value: STACK_ID }] },
    });
    const sfnClient = new sfnModule.SFNClient({ endpoint: engine.sfn.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
    const { executionArn } = await sfnClient.send(new sfnModule.StartExecutionCommand({ stateMachineArn: STATE_MACHINE_ARN, name: 'attacker', input }));
    sfnClient.destroy();
    const execution = engine.sfn.executions.get(executionArn!)!;
    await execution.done;
    expect(execution.status).toBe('FAILED');
    expect(execution.error).toBe('VmImportNotAdopted');
    const [image] = [...engine.ec2.state.images.values()];
    expect(tagsOf(image)).toEqual({});
  });
});

describe('updates in place', () => {
  test('an image property changed at deploy time under the same WaitCondition (a CfnParameter) fails the Update, saying why; nothing is imported', async () => {
    engine = await Engine.start();
    const { start } = await engine.deploy(props());
    const changed = props({ DiskContainers: [{ Format: 'VMDK', S3Bucket: 'vm-images-bucket', S3Key: 'web/disk2.vmdk' }] });
    const update = await engine.request('Update', 'Custom::VmImageImport', 'WebServerImage', changed, { physicalResourceId: start.PhysicalResourceId, oldProps: props() });
    expect(update.Status).toBe('FAILED');
    expect(update.Reason).toMatch(/^The properties that shape the image changed at deploy time \(DiskContainers\) while the synthesized template did not/);
    expect(update.PhysicalResourceId).toBe(start.PhysicalResourceId);
    expect(engine.sfn.executions.size).toBe(1);
  });

  test('a tags-only Update keeps both resources, starts nothing, re-tags the AMI and snapshots and drops removed keys', async () => {
    engine = await Engine.start();
    const before = props({ Tags: [{ Key: 'team', Value: 'infra' }, { Key: 'old', Value: 'x' }] });
    const { start, result } = await engine.deploy(before);
    const after = props({ Tags: [{ Key: 'team', Value: 'platform' }, { Key: 'cost-center', Value: '42' }], WaitTimeoutSeconds: '7200' });
    const startUpdate = await engine.request('Update', 'Custom::VmImageImport', 'WebServerImage', after, { physicalResourceId: start.PhysicalResourceId, oldProps: before });
    expect(startUpdate.PhysicalResourceId).toBe(start.PhysicalResourceId);
    const resultUpdate = await engine.request('Update', 'Custom::VmImageImportResult', 'WebServerImageResult',
      { ExecutionArn: start.PhysicalResourceId, Tags: after.Tags, RemovalPolicy: 'retain' },
      { physicalResourceId: result!.PhysicalResourceId, oldProps: { ExecutionArn: start.PhysicalResourceId, Tags: before.Tags, RemovalPolicy: 'retain' } });
    expect(resultUpdate).toMatchObject({ Status: 'SUCCESS', PhysicalResourceId: result!.PhysicalResourceId, Data: result!.Data });
    expect(engine.sfn.executions.size).toBe(1);
    expect(engine.ec2.callsTo('ImportImage')).toHaveLength(1);
    const image = engine.ec2.state.images.get(result!.PhysicalResourceId)!;
    for (const resource of [image, ...image.blockDevices.map((d) => engine.ec2.state.snapshots.get(d.snapshotId))]) {
      const tags = tagsOf(resource);
      expect(tags).toMatchObject({ 'team': 'platform', 'cost-center': '42', [TAG_STACK_ID]: STACK_ID });
      expect(tags).not.toHaveProperty('old');
    }
  });
});

describe('using the AMI', () => {
  const ORG = 'arn:aws:organizations::111111111111:organization/o-a1b2c3d4e5';
  const share = (userIds: string[], orgs: string[] = []) => ({ UserIds: userIds, OrganizationArns: orgs, OrganizationalUnitArns: [] });
  const resultProps = (start: string, extra: Props) => ({ ExecutionArn: start, Tags: props().Tags, RemovalPolicy: 'destroy', ...extra });

  test('the AMI is shared as asked, unshared on an Update that drops a principal, keeps shares made by hand, and IMDSv2 is set', async () => {
    engine = await Engine.start();
    const { start } = await engine.deploy(props({ RemovalPolicy: 'destroy' }));
    const first = resultProps(start.PhysicalResourceId, { LaunchPermissions: share(['111122223333', '444455556666'], [ORG]), ImdsSupport: 'v2.0' });
    const created = await engine.request('Create', 'Custom::VmImageImportResult', 'ImageResult', first);
    expect(created.Status).toBe('SUCCESS');
    const image = engine.ec2.state.images.get(created.PhysicalResourceId)!;
    expect(image.launchPermissions).toEqual([{ userId: '111122223333' }, { userId: '444455556666' }, { organizationArn: ORG }]);
    expect(image.imdsSupport).toBe('v2.0');
    // Someone shares it by hand with another account: not this resource's to remove.
    image.launchPermissions!.push({ userId: '999988887777' });
    const second = resultProps(start.PhysicalResourceId, { LaunchPermissions: share(['111122223333']), ImdsSupport: 'v2.0' });
    const updated = await engine.request('Update', 'Custom::VmImageImportResult', 'ImageResult', second, { physicalResourceId: created.PhysicalResourceId, oldProps: first });
    expect(updated).toMatchObject({ Status: 'SUCCESS', PhysicalResourceId: created.PhysicalResourceId });
    expect(image.launchPermissions).toEqual([{ userId: '111122223333' }, { userId: '999988887777' }]);
    // DESTROY leaves no AMI, snapshot or launch permission behind.
    const deleted = await engine.request('Delete', 'Custom::VmImageImportResult', 'ImageResult', second, { physicalResourceId: created.PhysicalResourceId });
    expect(deleted.Status).toBe('SUCCESS');
    expect(engine.ec2.state.images.size).toBe(0);
    expect(engine.ec2.state.snapshots.size).toBe(0);
  });

  test('a share EC2 refuses fails the stack with its message', async () => {
    engine = await Engine.start();
    const { start } = await engine.deploy(props());
    const created = await engine.request('Create', 'Custom::VmImageImportResult', 'ImageResult',
      resultProps(start.PhysicalResourceId, { LaunchPermissions: share(['not-an-account']) }));
    expect(created.Status).toBe('FAILED');
    expect(created.Reason).toMatch(/Invalid attribute item value "not-an-account" for userId item type/);
  });
});

describe('delete after success', () => {
  test('RETAIN keeps the AMI and its snapshots', async () => {
    engine = await Engine.start();
    const { result } = await engine.deploy(props());
    const deleted = await engine.request('Delete', 'Custom::VmImageImportResult', 'WebServerImageResult',
      { ExecutionArn: 'x', RemovalPolicy: 'retain' }, { physicalResourceId: result!.PhysicalResourceId });
    expect(deleted.Status).toBe('SUCCESS');
    expect(engine.ec2.state.images.size).toBe(1);
    expect(engine.ec2.state.snapshots.size).toBe(1);
  });

  test('DESTROY deregisters the AMI, then deletes its snapshots while EC2 still answers InvalidSnapshot.InUse; nothing is left', async () => {
    engine = await Engine.start({ ec2: { snapshotInUseAfterDeregister: 2 } });
    const p = props({ RemovalPolicy: 'destroy' });
    const { start, result } = await engine.deploy(p);
    const deleted = await engine.request('Delete', 'Custom::VmImageImportResult', 'WebServerImageResult',
      { ExecutionArn: start.PhysicalResourceId, RemovalPolicy: 'destroy' }, { physicalResourceId: result!.PhysicalResourceId });
    expect(deleted.Status).toBe('SUCCESS');
    expect(engine.ec2.callsTo('DeleteSnapshot').map((c) => c.errorCode)).toEqual(['InvalidSnapshot.InUse', 'InvalidSnapshot.InUse', undefined]);
    expect(engine.ec2.state.images.size).toBe(0);
    expect(engine.ec2.state.snapshots.size).toBe(0);
    // The start resource's Delete after it finds the AMI gone and succeeds.
    const startDeleted = await engine.request('Delete', 'Custom::VmImageImport', 'WebServerImage', p, { physicalResourceId: start.PhysicalResourceId });
    expect(startDeleted.Status).toBe('SUCCESS');
  });

  test('DESTROY after the AMI was deregistered by hand deletes the snapshots the execution recorded', async () => {
    engine = await Engine.start();
    const { start, result } = await engine.deploy(props({ RemovalPolicy: 'destroy' }));
    engine.ec2.deleteImageOutOfBand(result!.PhysicalResourceId);
    expect(engine.ec2.state.snapshots.size).toBe(1);
    const deleted = await engine.request('Delete', 'Custom::VmImageImportResult', 'WebServerImageResult',
      { ExecutionArn: start.PhysicalResourceId, RemovalPolicy: 'destroy' }, { physicalResourceId: result!.PhysicalResourceId });
    expect(deleted.Status).toBe('SUCCESS');
    expect(engine.ec2.state.snapshots.size).toBe(0);
  });

  test('DESTROY refuses an AMI that does not carry this stack\'s tag, naming it and its snapshots', async () => {
    engine = await Engine.start();
    const { start, result } = await engine.deploy(props());
    const image = engine.ec2.state.images.get(result!.PhysicalResourceId)!;
    image.tags = image.tags.filter((t) => t.key !== TAG_STACK_ID);
    const deleted = await engine.request('Delete', 'Custom::VmImageImportResult', 'WebServerImageResult',
      { ExecutionArn: start.PhysicalResourceId, RemovalPolicy: 'destroy' }, { physicalResourceId: image.imageId });
    expect(deleted.Status).toBe('FAILED');
    expect(deleted.Reason).toMatch(new RegExp(`^The AMI ${image.imageId} \\(snapshots snap-[0-9a-f]+\\) does not carry this stack's cdk-vm-import:stack-id tag`));
    expect(engine.ec2.state.images.has(image.imageId)).toBe(true);
  });

  test('the same properties created again after a DESTROY import again in a fresh execution', async () => {
    engine = await Engine.start();
    const p = props({ RemovalPolicy: 'destroy' });
    const first = await engine.deploy(p);
    await engine.request('Delete', 'Custom::VmImageImportResult', 'WebServerImageResult',
      { ExecutionArn: first.start.PhysicalResourceId, RemovalPolicy: 'destroy' }, { physicalResourceId: first.result!.PhysicalResourceId });
    engine.cfn.resetWaitCondition(STACK_ID, String(p.WaitConditionId));
    const second = await engine.deploy(p);
    expect(second.start.PhysicalResourceId).toMatch(new RegExp(`^${first.start.PhysicalResourceId}-[0-9a-f]{16}$`));
    expect(second.result?.Status).toBe('SUCCESS');
    expect(engine.ec2.state.images.size).toBe(1);
    expect(engine.ec2.callsTo('ImportImage')).toHaveLength(2);
  });
});

test('the pre-signed ResponseURL is never logged, and every request is answered with one JSON line per event', async () => {
  engine = await Engine.start();
  await engine.deploy(props());
  expect(engine.capture.lines.join('\n')).not.toMatch(/X-Amz-Signature|secret-request/);
  expect(jsonLines(engine.capture.lines).length).toBe(engine.capture.lines.length);
  expect(engine.cfn.responses.every((r) => r.contentType === '')).toBe(true);
});
