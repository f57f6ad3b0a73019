/**
 * `imageName` end to end, offline: the synthesized state machine copies the imported AMI
 * to its name (CopyImage through the SDK integration), polls the copy and removes the
 * imported AMI, against LocalEc2's model of CopyImage (see engine-harness.ts).
 */
import { Engine, KMS_KEY, STACK_ID, startProps, tagsOf } from './engine-harness';
import { ImageState } from './local-ec2';

jest.setTimeout(60_000);

const TAG_STACK_ID = 'cdk-vm-import:stack-id';
const NAME = 'web-server 2026.12 (build 7)';
const KEY = KMS_KEY;

type Props = Record<string, unknown>;

/** A one-disk import named through CopyImage. */
const props = (overrides: Props = {}): Props => startProps({ ImageName: NAME, ImageDescription: 'Web server, imported', ...overrides });

let engine: Engine;

afterEach(async () => {
  expect(engine.blockedRequests).toEqual([]);
  await engine.stop();
});

const images = () => [...engine.ec2.state.images.values()];
const onlyTask = () => {
  const tasks = [...engine.ec2.state.tasks.values()];
  expect(tasks).toHaveLength(1);
  return tasks[0];
};
const snapshotsOf = (image: ImageState) => image.blockDevices.map((d) => engine.ec2.state.snapshots.get(d.snapshotId));

/** Deletes the start resource as CloudFormation would (a rollback or the stack's deletion). */
async function deleteStart(physicalResourceId: string, p: Props) {
  return engine.request('Delete', 'Custom::VmImageImport', 'WebServerImage', p, { physicalResourceId });
}

describe('imageName: the imported AMI is copied to its name', () => {
  test('the copy has the name, the description and the same key; the imported AMI and its snapshots are gone; every tag is on the copy only', async () => {
    engine = await Engine.start();
    const { start, result, execution } = await engine.deploy(props());
    expect(execution?.status).toBe('SUCCEEDED');
    const task = onlyTask();
    const [copy] = images();
    expect(images()).toHaveLength(1);
    expect(copy).toMatchObject({ name: NAME, description: 'Web server, imported', state: 'available', sourceImageId: task.imageId });
    // The imported AMI and its snapshots were removed once the copy was available.
    expect(engine.ec2.state.images.has(task.imageId!)).toBe(false);
    for (const detail of task.snapshotDetails) {
      expect(engine.ec2.state.snapshots.has(detail.snapshotId!)).toBe(false);
    }
    expect(engine.ec2.state.snapshots.size).toBe(copy.blockDevices.length);
    // The key was named explicitly and kept.
    const [call] = engine.ec2.callsTo('CopyImage');
    expect(call.params).toMatchObject({ Encrypted: 'true', KmsKeyId: KEY, SourceImageId: task.imageId, SourceRegion: 'us-east-1', Name: NAME });
    expect(call.params.ClientToken).toMatch(/^[0-9a-f]{64}$/);
    for (const snapshot of snapshotsOf(copy)) {
      expect(snapshot).toMatchObject({ encrypted: true, kmsKeyId: KEY, state: 'completed' });
    }
    // The user's tags and the library's, on the copy and its snapshots as CopyImage made them.
    const expected = {
      'team': 'infra',
      [TAG_STACK_ID]: STACK_ID,
      'cdk-vm-import:logical-id': 'WebServerImage',
      'cdk-vm-import:import-task-id': task.importTaskId,
    };
    for (const resource of [copy, ...snapshotsOf(copy)]) {
      expect(tagsOf(resource)).toEqual(expected);
    }
    // The imported AMI got the library's tags alone (they let the function remove it), never the user's.
    const tagCalls = engine.ec2.callsTo('CreateTags').map((c) => c.params);
    expect(tagCalls).toHaveLength(2);
    for (const params of tagCalls) {
      expect(Object.values(params)).not.toContain('team');
    }
    expect(result).toMatchObject({
      Status: 'SUCCESS',
      PhysicalResourceId: copy.imageId,
      Data: { ImageId: copy.imageId, SnapshotIds: copy.blockDevices.map((d) => d.snapshotId).join(','), ImportTaskId: task.importTaskId },
    });
    // Start, finish-copy and signal: no Lambda runs per poll of the copy either.
    expect(engine.stepInvocations.get(start.PhysicalResourceId)).toBe(3);
    expect(engine.ec2.callsTo('DescribeImages').filter((c) => c.params['ImageId.1'] === copy.imageId).length).toBeGreaterThanOrEqual(3);
  });

  test('an unencrypted import is copied unencrypted, naming no key', async () => {
    engine = await Engine.start();
    const { result } = await engine.deploy(props({ Encrypted: 'false', KmsKeyId: undefined, ImageDescription: undefined, Description: 'from CI' }));
    expect(result?.Status).toBe('SUCCESS');
    const [copy] = images();
    expect(copy.description).toBe('from CI');
    const [call] = engine.ec2.callsTo('CopyImage');
    expect(call.params.Encrypted).toBe('false');
    expect(call.params.KmsKeyId).toBeUndefined();
    for (const snapshot of snapshotsOf(copy)) {
      expect(snapshot?.encrypted).toBe(false);
    }
  });

  test('a copy not listed yet right after CopyImage (eventual consistency) is retried, never reported gone', async () => {
    engine = await Engine.start({ ec2: { copyUnlistedDescribes: 2 } });
    const { result } = await engine.deploy(props());
    expect(result?.Status).toBe('SUCCESS');
    expect(images()).toHaveLength(1);
  });

  test('a failed copy fails the stack with EC2\'s StateReason; the rollback removes the failed copy and RETAIN keeps the imported AMI', async () => {
    engine = await Engine.start();
    engine.ec2.failNextCopy('Snapshot copy failed: the KMS key is pending deletion');
    const { start, result, execution } = await engine.deploy(props());
    expect(execution?.status).toBe('FAILED');
    const task = onlyTask();
    const failed = images().find((i) => i.state === 'failed')!;
    expect(result?.Status).toBe('FAILED');
    expect(result?.Reason).toBe(
      `The copy of the imported AMI ${task.imageId} to the name "${NAME}" (${failed.imageId}) is failed: ` +
      'Snapshot copy failed: the KMS key is pending deletion. The imported AMI is kept or deleted with the import\'s removal policy when the stack rolls back.');
    await deleteStart(start.PhysicalResourceId, props());
    expect(images().map((i) => i.imageId)).toEqual([task.imageId]);
    expect(engine.ec2.state.snapshots.size).toBe(1);
  });

  test('a failed copy with DESTROY: the rollback removes the copy, the imported AMI and every snapshot', async () => {
    engine = await Engine.start();
    engine.ec2.failNextCopy('Internal error');
    const p = props({ RemovalPolicy: 'destroy' });
    const { start, result } = await engine.deploy(p);
    expect(result?.Status).toBe('FAILED');
    expect(images()).toHaveLength(2);
    await deleteStart(start.PhysicalResourceId, p);
    expect(images()).toEqual([]);
    expect(engine.ec2.state.snapshots.size).toBe(0);
  });

  test('a name already taken fails the stack before anything is imported, naming the AMI that has it', async () => {
    engine = await Engine.start();
    const first = await engine.deploy(props());
    expect(first.result?.Status).toBe('SUCCESS');
    const owner = first.result!.PhysicalResourceId;
    const second = await engine.deploy(props({ WaitConditionId: 'OtherImageWaitABCDEF012345' }), { logicalId: 'OtherImage' });
    expect(second.execution?.status).toBe('FAILED');
    expect(second.result?.Status).toBe('FAILED');
    expect(second.result?.Reason).toBe(
      `The VM import could not start: 'imageName' "${NAME}" is already the name of ${owner} in this account and Region, and an AMI name is unique there. ` +
      `Choose another name, or deregister ${owner}. An import that replaces an earlier one needs a new name too (such as one with a version): ` +
      'CloudFormation deletes the earlier AMI only after the new one exists.');
    expect(engine.ec2.callsTo('ImportImage')).toHaveLength(1);
  });

  test('a name CopyImage itself refuses (taken meanwhile) fails the stack with EC2\'s message; the rollback leaves the AMI that has it alone', async () => {
    engine = await Engine.start();
    engine.ec2.failNext('CopyImage', { status: 400, code: 'InvalidAMIName.Duplicate', message: `AMI name ${NAME} is already in use by AMI ami-0123456789abcdef0` }, 10);
    const p = props({ RemovalPolicy: 'destroy' });
    const { start, result } = await engine.deploy(p);
    expect(result?.Status).toBe('FAILED');
    expect(result?.Reason).toContain(`AMI name ${NAME} is already in use by AMI ami-0123456789abcdef0`);
    await deleteStart(start.PhysicalResourceId, p);
    expect(images()).toEqual([]);
  });

  test('the wait running out during the copy stops the copy (deregistering it) and fails the stack saying so', async () => {
    engine = await Engine.start({ ec2: { copyPendingDescribes: 1000 } });
    engine.ec2.queueTaskBehaviour({ stagesToComplete: 10 });
    const { start, result } = await engine.deploy(props({ WaitTimeoutSeconds: '900' }));
    const task = onlyTask();
    const [call] = engine.ec2.callsTo('CopyImage');
    expect(call).toBeDefined();
    expect(result?.Status).toBe('FAILED');
    expect(result?.Reason).toMatch(new RegExp(
      `^The copy of the imported AMI ${task.imageId} to the name "${NAME.replace(/[()]/g, '\\$&')}" \\(ami-[0-9a-f]+\\) did not finish within the import's timeout of 900 seconds and was stopped`));
    // The pending copy is gone; the imported AMI waits for the rollback and its removal policy.
    expect(images().map((i) => i.imageId)).toEqual([task.imageId]);
    await deleteStart(start.PhysicalResourceId, props({ WaitTimeoutSeconds: '900' }));
    expect(images().map((i) => i.imageId)).toEqual([task.imageId]);
  });

  test.each([
    ['destroy', 0],
    ['retain', 1],
  ])('deleting the start resource while the copy runs (%s): the execution stops and the pending copy is removed; %d AMI is left', async (removal, left) => {
    engine = await Engine.start({ ec2: { copyPendingDescribes: 1000 } });
    const p = props({ RemovalPolicy: removal });
    const start = await engine.request('Create', 'Custom::VmImageImport', 'WebServerImage', p);
    const execution = engine.sfn.executions.get(start.PhysicalResourceId)!;
    await engine.until(() => engine.ec2.callsTo('DescribeImages').some((c) => c.params['ImageId.1'] !== undefined));
    const task = onlyTask();
    expect(images()).toHaveLength(2);
    const deleted = await deleteStart(start.PhysicalResourceId, p);
    expect(deleted.Status).toBe('SUCCESS');
    await execution.done;
    expect(execution.status).toBe('ABORTED');
    expect(images().map((i) => i.imageId)).toEqual(left ? [task.imageId] : []);
    expect(engine.ec2.state.snapshots.size).toBe(left);
  });

  test('a renamed, shared AMI deleted with DESTROY leaves no AMI, snapshot or launch permission; a tags-only Update re-tags the copy', async () => {
    engine = await Engine.start();
    const p = props({ RemovalPolicy: 'destroy' });
    const shares = { UserIds: ['111122223333'], OrganizationArns: [], OrganizationalUnitArns: [] };
    const resultProps = (arn: string) => ({ ExecutionArn: arn, Tags: p.Tags, RemovalPolicy: 'destroy', LaunchPermissions: shares });
    const { start, result } = await engine.deploy(p, { resultProps });
    expect(result?.Status).toBe('SUCCESS');
    const [copy] = images();
    expect(copy.launchPermissions).toEqual([{ userId: '111122223333', organizationArn: undefined, organizationalUnitArn: undefined }]);

    const retagged = { ...resultProps(start.PhysicalResourceId), Tags: [{ Key: 'team', Value: 'web' }] };
    const update = await engine.request('Update', 'Custom::VmImageImportResult', 'WebServerImageResult', retagged,
      { physicalResourceId: copy.imageId, oldProps: resultProps(start.PhysicalResourceId) });
    expect(update).toMatchObject({ Status: 'SUCCESS', PhysicalResourceId: copy.imageId });
    expect(tagsOf(copy).team).toBe('web');

    await engine.request('Delete', 'Custom::VmImageImportResult', 'WebServerImageResult', retagged, { physicalResourceId: copy.imageId });
    await deleteStart(start.PhysicalResourceId, p);
    expect(images()).toEqual([]);
    expect(engine.ec2.state.snapshots.size).toBe(0);
  });
});
