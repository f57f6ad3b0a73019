/**
 * The import engine end to end, offline: the synthesized state machine, the bundled
 * function and the real AWS SDK against local EC2, Step Functions and CloudFormation
 * servers (see engine-harness.ts). Every scenario checks what CloudFormation received
 * AND what is left on the EC2 side.
 */
import { jsonLines, MAX_RESPONSE_BYTES } from './drive';
import { ACCOUNT, Engine, STACK_ID, STATE_MACHINE_ARN } from './engine-harness';
import { CANCELLED_MESSAGE, Ec2Fault } from './local-ec2';

jest.setTimeout(60_000);

const ROLE = 'VmImportStack-VmImportRole0A1B2C3D-4E5F6A7B8C9D';
const TAG_STACK_ID = 'cdk-vm-import:stack-id';
const UNKNOWN_OS = 'ClientError: Unknown OS / Missing OS files.';
const THROTTLED: Ec2Fault = { status: 503, code: 'RequestLimitExceeded', message: 'Request limit exceeded.' };
const IAM_NOT_READY: Ec2Fault = {
  status: 400, code: 'InvalidParameter',
  message: `The service role ${ROLE} provided does not exist or does not have sufficient permissions`,
};

type Props = Record<string, unknown>;

/** A one-disk import's start resource properties, as the construct synthesizes them (every value a string). */
function props(overrides: Props = {}): Props {
  return {
    StateMachineArn: STATE_MACHINE_ARN,
    DiskContainers: [{ Format: 'VMDK', S3Bucket: 'vm-images-bucket', S3Key: 'web/disk1.vmdk' }],
    RoleName: ROLE,
    Encrypted: 'true',
    KmsKeyId: `arn:aws:kms:us-east-1:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`,
    LicenseType: 'BYOL',
    Tags: [{ Key: 'team', Value: 'infra' }],
    RemovalPolicy: 'retain',
    WaitTimeoutSeconds: String(6 * 3600),
    PollIntervalSeconds: '30',
    WaitConditionId: 'WebServerImageWait0123456789AB',
    ...overrides,
  };
}

let engine: Engine;

afterEach(async () => {
  expect(engine.blockedRequests).toEqual([]);
  await engine.stop();
});

const tagsOf = (resource: { tags: { key: string; value: string }[] } | undefined) =>
  Object.fromEntries((resource?.tags ?? []).map((t) => [t.key, t.value]));

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
    expect(engine.clockOffsetMs).toBe(360 * 30_000);
    for (const resource of [image, ...image.blockDevices.map((d) => engine.ec2.state.snapshots.get(d.snapshotId))]) {
      expect(tagsOf(resource)).toEqual({
        'team': 'infra',
        [TAG_STACK_ID]: STACK_ID,
        'cdk-vm-import:logical-id': 'WebServerImage',
        'cdk-vm-import:import-task-id': task.importTaskId,
      });
    }
    // The task carries the user's tags and the stack tag from ImportImage's TagSpecifications.
    expect(tagsOf(task)).toEqual({ team: 'infra', [TAG_STACK_ID]: STACK_ID });
    expect(task.params.clientToken).toMatch(/^[0-9a-f]{64}$/);
    expect(task.params.kmsKeyId).toBe(props().KmsKeyId);
    // The state machine polled EC2 itself: the function ran twice (start, signal) in 360 polls.
    expect(engine.stepInvocations.get(start.PhysicalResourceId)).toBe(2);
    expect(engine.ec2.callsTo('DescribeImportImageTasks')).toHaveLength(360);
    expect(engine.cfn.signalsTo('WebServerImageWait0123456789AB')).toEqual([
      { stackName: STACK_ID, logicalResourceId: 'WebServerImageWait0123456789AB', uniqueId: task.importTaskId, status: 'SUCCESS' },
    ]);
    const perHour = (execution!.transitions + engine.stepInvocations.get(start.PhysicalResourceId)!) / 3;
    console.info(`state transitions + Lambda invocations per import-hour at 30 s polls: ${perHour.toFixed(1)}`);
  });
});
