import {
  backoffDelay,
  causeMessage,
  classifyTask,
  clientToken,
  DEFAULT_POLL_INTERVAL_SECONDS,
  DEFAULT_WAIT_TIMEOUT_SECONDS,
  executionName,
  ExistingExecution,
  failureReason,
  importDeadline,
  importImageInput,
  isAlreadyGone,
  isIamPropagationError,
  isImageId,
  isQuotaError,
  isSnapshotInUse,
  MAX_REASON_LENGTH,
  MAX_WAIT_CONDITION_SECONDS,
  parseProperties,
  parseResultProperties,
  remedyFor,
  removedTagKeys,
  resourceTags,
  reuseExecution,
  signalStillStands,
  signalTarget,
  defaultEncryptionConflict,
  timeoutReason,
  userTags,
  WAIT_CONDITION_MARGIN_SECONDS,
  wireSeconds,
  launchPermissionChanges,
  changedImageProperties,
  copyClientToken,
  copyRequest,
  libraryTags,
} from '../../lambda/decisions';
import { executionOutcome, ExecutionState, retryDelaySeconds } from '../../lambda/steps';
import { LIBRARY_TAG_COUNT } from '../../src/private/contract';

const STACK = 'arn:aws:cloudformation:us-east-1:123456789012:stack/s/1';
const OTHER_STACK = 'arn:aws:cloudformation:us-east-1:123456789012:stack/s/2';
const EXECUTION = 'arn:aws:states:us-east-1:123456789012:execution:Engine:vmimport-1';
const BASE = { DiskContainers: [{ Format: 'VMDK', S3Bucket: 'b', S3Key: 'k.vmdk' }], RoleName: 'r' };
const named = (name: string, message = '') => Object.assign(new Error(message), { name });

describe('classifyTask', () => {
  test.each([
    ['no task', undefined, { kind: 'missing' }],
    ['active', { Status: 'active', Progress: '28', StatusMessage: 'converting' }, { kind: 'running', status: 'active', progress: '28', message: 'converting' }],
    ['active without progress', { Status: 'active' }, { kind: 'running', status: 'active', progress: '0', message: '' }],
    ['completed', { Status: 'completed', ImageId: 'ami-1', SnapshotDetails: [{ SnapshotId: 'snap-1' }, { SnapshotId: 'snap-2' }] },
      { kind: 'completed', imageId: 'ami-1', snapshotIds: ['snap-1', 'snap-2'] }],
    ['completed without an image', { Status: 'completed', StatusMessage: 'odd' }, { kind: 'failed', message: 'the task is completed but EC2 reported no ImageId (odd)' }],
    ['deleted with a message', { Status: 'deleted', StatusMessage: 'ClientError: Unknown OS / Missing OS files.' },
      { kind: 'failed', message: 'ClientError: Unknown OS / Missing OS files.' }],
    ['deleting', { Status: 'deleting' }, { kind: 'failed', message: 'the task is deleting' }],
  ])('%s', (_name, task, expected) => {
    expect(classifyTask(task)).toEqual(expected);
  });
});

describe('remedyFor', () => {
  test.each([
    ['ClientError: Unknown OS / Missing OS files.', /no supported operating system/],
    ['ClientError: Unsupported kernel version 2.6.18', /kernel version is not supported/],
    ['ClientError: UEFI boot mode is not supported by the image', /bootMode/],
    ['Disk validation failed [Unsupported OVA format]', /OVA is not in a format/],
    ['Disk validation failed [We do not have access to the given resource. Reason 403 Forbidden]', /could not read the disk image/],
    ['ClientError: The specified KMS key is not accessible', /KMS key is not accessible/],
    ['The service role vmimport provided does not exist or does not have sufficient permissions', /import role is missing/],
    ['User-initiated task cancellation', /cancelled/],
  ])('%s', (message, expected) => {
    expect(remedyFor(message)).toMatch(expected);
  });

  test('an unknown message has no remedy', () => {
    expect(remedyFor('ServerError: something new')).toBeUndefined();
  });
});

test('failureReason carries EC2\'s message first, then the remedy, within the response limit', () => {
  expect(failureReason('import-ami-1', 'ClientError: Unknown OS / Missing OS files.'))
    .toMatch(/^VM import import-ami-1 failed: ClientError: Unknown OS \/ Missing OS files\. Remedy: /);
  const long = failureReason('import-ami-1', 'x'.repeat(10_000));
  expect(Buffer.byteLength(long)).toBe(MAX_REASON_LENGTH);
  expect(long.endsWith('…')).toBe(true);
  // Multi-byte text is cut by bytes, never in the middle of a character.
  const wide = failureReason('import-ami-1', '検証'.repeat(5000));
  expect(Buffer.byteLength(wide)).toBeLessThanOrEqual(MAX_REASON_LENGTH);
  expect(wide).not.toMatch(/\uFFFD/);
  expect(wide.endsWith('…')).toBe(true);
});

test('timeoutReason says how long, the last progress and status', () => {
  expect(timeoutReason('import-ami-1', 600, '42', 'converting'))
    .toBe("VM import import-ami-1 did not finish within 600 seconds and was cancelled; last progress 42%, status message 'converting'. Raise the import's timeout, or import a smaller image.");
});

test('importImageInput maps every property', () => {
  const input = importImageInput({
    ...BASE,
    DiskContainers: [
      { Format: 'VMDK', S3Bucket: 'b', S3Key: 'k.vmdk', DeviceName: '/dev/sda1', Description: 'boot' },
      { Format: 'RAW', Url: 's3://b/data.raw' },
      { SnapshotId: 'snap-0123456789abcdef0' },
    ],
    Description: 'd',
    Encrypted: 'true',
    KmsKeyId: 'arn:aws:kms:us-east-1:123456789012:key/k',
    LicenseType: 'BYOL',
    UsageOperation: 'RunInstances:0002',
    Platform: 'Windows',
    BootMode: 'uefi',
    Architecture: 'x86_64',
    Hypervisor: 'xen',
    ClientData: { Comment: 'c', UploadStart: '2026-01-01T00:00:00.000Z', UploadEnd: '2026-01-01T01:00:00.000Z', UploadSize: '8.5' },
    LicenseConfigurationArns: ['arn:lic'],
    Tags: [{ Key: 'team', Value: 'infra' }],
  }, 'tok', STACK, 'vmimport-0123');
  expect(input).toEqual({
    ClientToken: 'tok',
    RoleName: 'r',
    Description: 'd',
    Encrypted: true,
    KmsKeyId: 'arn:aws:kms:us-east-1:123456789012:key/k',
    LicenseType: 'BYOL',
    UsageOperation: 'RunInstances:0002',
    Platform: 'Windows',
    BootMode: 'uefi',
    Architecture: 'x86_64',
    Hypervisor: 'xen',
    ClientData: { Comment: 'c', UploadStart: new Date('2026-01-01T00:00:00Z'), UploadEnd: new Date('2026-01-01T01:00:00Z'), UploadSize: 8.5 },
    LicenseSpecifications: [{ LicenseConfigurationArn: 'arn:lic' }],
    DiskContainers: [
      { Format: 'VMDK', DeviceName: '/dev/sda1', Description: 'boot', UserBucket: { S3Bucket: 'b', S3Key: 'k.vmdk' } },
      { Format: 'RAW', Url: 's3://b/data.raw' },
      { SnapshotId: 'snap-0123456789abcdef0' },
    ],
    TagSpecifications: [{
      ResourceType: 'import-image-task',
      Tags: [{ Key: 'team', Value: 'infra' }, { Key: 'cdk-vm-import:stack-id', Value: STACK }, { Key: 'cdk-vm-import:execution', Value: 'vmimport-0123' }],
    }],
  });
});

test('importImageInput sends Encrypted false as false', () => {
  expect(importImageInput({ ...BASE, Encrypted: 'false' }, 't', STACK, 'vmimport-0123').Encrypted).toBe(false);
});

describe('parseProperties', () => {
  test.each([
    [undefined, /no properties/],
    [{ RoleName: 'r' }, /DiskContainers must be a non-empty list/],
    [{ DiskContainers: [], RoleName: 'r' }, /DiskContainers must be a non-empty list/],
    [{ DiskContainers: [{}] }, /RoleName must be a non-empty string/],
    [{ ...BASE, RemovalPolicy: 'snapshot' }, /RemovalPolicy must be 'retain' or 'destroy', got 'snapshot'/],
  ])('%o is rejected', (raw, message) => {
    expect(() => parseProperties(raw as Record<string, unknown>)).toThrow(message);
  });
});

describe('parseResultProperties', () => {
  test.each([
    [undefined, /ExecutionArn must be a non-empty string/],
    [{}, /ExecutionArn must be a non-empty string/],
    [{ ExecutionArn: '' }, /ExecutionArn must be a non-empty string/],
    [{ ExecutionArn: 42 }, /ExecutionArn must be a non-empty string/],
    [{ ExecutionArn: EXECUTION, RemovalPolicy: 'snapshot' }, /RemovalPolicy must be 'retain' or 'destroy', got 'snapshot'/],
  ])('%o is rejected', (raw, message) => {
    expect(() => parseResultProperties(raw as Record<string, unknown>)).toThrow(message);
  });

  test.each([
    [{ ExecutionArn: EXECUTION }],
    [{ ExecutionArn: EXECUTION, RemovalPolicy: 'retain' }],
    [{ ExecutionArn: EXECUTION, RemovalPolicy: 'destroy', Tags: [{ Key: 'a', Value: '1' }] }],
  ])('%o is accepted as is', (raw) => {
    expect(parseResultProperties(raw)).toBe(raw);
  });
});

describe('executionName', () => {
  const name = executionName(STACK, 'Image', 'ImageWaitABCDEF012345');

  test('is deterministic, of the characters and length Step Functions allows', () => {
    expect(name).toMatch(/^vmimport-[0-9a-f]{40}$/);
    expect(executionName(STACK, 'Image', 'ImageWaitABCDEF012345')).toBe(name);
  });

  test.each([
    ['another stack', [OTHER_STACK, 'Image', 'ImageWaitABCDEF012345']],
    ['another resource', [STACK, 'Other', 'ImageWaitABCDEF012345']],
    ['another WaitCondition (other image-shaping properties)', [STACK, 'Image', 'ImageWait000000000000']],
    // The parts are separated, so moving characters from one to the next is another name.
    ['the same characters split differently', [STACK, 'ImageI', 'mageWaitABCDEF012345']],
  ])('differs for %s', (_name, args) => {
    expect(executionName(...(args as [string, string, string]))).not.toBe(name);
  });

  test('an attempt (a request ID) suffixes a fresh name, deterministic per attempt', () => {
    const fresh = executionName(STACK, 'Image', 'ImageWaitABCDEF012345', 'req-2');
    expect(fresh).toMatch(new RegExp(`^${name}-[0-9a-f]{16}$`));
    expect(fresh.length).toBeLessThanOrEqual(80);
    expect(executionName(STACK, 'Image', 'ImageWaitABCDEF012345', 'req-2')).toBe(fresh);
    expect(executionName(STACK, 'Image', 'ImageWaitABCDEF012345', 'req-3')).not.toBe(fresh);
  });
});

test('clientToken is deterministic, 64 hex characters (EC2\'s maximum), and differs per execution', () => {
  const a = clientToken(EXECUTION);
  expect(a).toMatch(/^[0-9a-f]{64}$/);
  expect(clientToken(EXECUTION)).toBe(a);
  expect(clientToken(`${EXECUTION}-0123456789abcdef`)).not.toBe(a);
});

describe('importDeadline', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  const latest = MAX_WAIT_CONDITION_SECONDS - 30 - WAIT_CONDITION_MARGIN_SECONDS;
  test.each([
    ['the default 6 hours', DEFAULT_WAIT_TIMEOUT_SECONDS, 30, 6 * 3600],
    ['a short timeout', 600, 30, 600],
    ['a timeout just under the cap', latest, 30, latest],
    // 12 hours ends one poll and the margin early, so the import reports its own timeout first.
    ['12 hours', 43_200, 30, 43_200 - 30 - 15],
    ['12 hours with a 1-hour poll', 43_200, 3600, 43_200 - 3600 - 15],
    ['more than 12 hours', 100_000, 30, 43_200 - 30 - 15],
  ])('%s', (_name, timeout, poll, seconds) => {
    expect(importDeadline(now, timeout, poll)).toEqual(new Date(now + seconds * 1000));
  });

  test('the defaults are 6 hours and 30 seconds, and a WaitCondition waits 12 hours', () => {
    expect([DEFAULT_WAIT_TIMEOUT_SECONDS, DEFAULT_POLL_INTERVAL_SECONDS, MAX_WAIT_CONDITION_SECONDS]).toEqual([21_600, 30, 43_200]);
  });
});

test.each([
  ['600', 600],
  ['5', 5],
  [undefined, 99],
  ['', 99],
  ['0', 99],
  ['-5', 99],
  ['1.5', 99],
  ['abc', 99],
])('wireSeconds(%p) = %p', (value, expected) => {
  expect(wireSeconds(value, 99)).toBe(expected);
});

test.each([
  ['ami-0123456789abcdef0', true],
  ['ami-1', true],
  ['arn:aws:states:us-east-1:123456789012:execution:Engine:vmimport-1', false],
  ['failed-3a4f1c2e-request-id', false],
  ['import-ami-0123456789abcdef0', false],
  ['ami-', false],
  ['AMI-1', false],
  ['', false],
  [undefined, false],
])('isImageId(%p) = %p', (id, expected) => {
  expect(isImageId(id)).toBe(expected);
});

describe('tags', () => {
  const identity = { stackId: STACK, logicalResourceId: 'Image', importTaskId: 'import-ami-1' };

  test('resourceTags puts the user\'s tags first, then the library\'s three', () => {
    const tags = resourceTags({ Tags: [{ Key: 'a', Value: '1' }, { Key: 'b', Value: '2' }] }, identity);
    expect(tags).toEqual([
      { Key: 'a', Value: '1' },
      { Key: 'b', Value: '2' },
      { Key: 'cdk-vm-import:stack-id', Value: STACK },
      { Key: 'cdk-vm-import:logical-id', Value: 'Image' },
      { Key: 'cdk-vm-import:import-task-id', Value: 'import-ami-1' },
    ]);
    expect(tags.filter((t) => t.Key.startsWith('cdk-vm-import:'))).toHaveLength(LIBRARY_TAG_COUNT);
  });

  test('resourceTags without user tags is the library\'s three alone', () => {
    expect(resourceTags({}, identity).map((t) => t.Key)).toEqual(['cdk-vm-import:stack-id', 'cdk-vm-import:logical-id', 'cdk-vm-import:import-task-id']);
  });

  test.each([
    [undefined, []],
    [[], []],
    [[{ Key: 'a', Value: '1' }], [{ Key: 'a', Value: '1' }]],
  ])('userTags(%o) is the user\'s tags alone, never the library\'s', (tags, expected) => {
    expect(userTags({ Tags: tags })).toEqual(expected);
  });

  test('userTags copies only Key and Value', () => {
    const extra = [{ Key: 'a', Value: '1', Other: 'x' }] as unknown as { Key: string; Value: string }[];
    expect(userTags({ Tags: extra })).toEqual([{ Key: 'a', Value: '1' }]);
  });

  test.each([
    ['a dropped key', [{ Key: 'a', Value: '1' }, { Key: 'b', Value: '2' }], [{ Key: 'b', Value: '3' }], ['a']],
    ['a changed value only', [{ Key: 'a', Value: '1' }], [{ Key: 'a', Value: '2' }], []],
    ['every tag removed', [{ Key: 'a', Value: '1' }], undefined, ['a']],
    ['none before', undefined, [{ Key: 'a', Value: '1' }], []],
  ])('removedTagKeys: %s', (_name, before, after, expected) => {
    expect(removedTagKeys({ Tags: before }, { Tags: after })).toEqual(expected);
  });
});

describe('reuseExecution', () => {
  test.each<[ExistingExecution, boolean, string]>([
    ['none', false, 'start'],
    ['running', false, 'reuse'],
    // The rollback of a failed update: the WaitCondition of these properties still stands.
    ['succeeded-image-present', true, 'reuse'],
    // A revert, or a redeploy after a rollback: a new WaitCondition that only a new execution signals.
    ['succeeded-image-present', false, 'resignal'],
    ['succeeded-image-gone', false, 'start-fresh'],
    ['ended-otherwise', false, 'start-fresh'],
  ])('%s (signal stands: %s) → %s', (existing, stands, expected) => {
    expect(reuseExecution(existing, stands)).toBe(expected);
  });
});

describe('causeMessage', () => {
  test.each([
    ['a Lambda error\'s JSON cause gives its errorMessage', 'Error', JSON.stringify({ errorType: 'Error', errorMessage: 'ImportImage kept failing', trace: [] }), 'ImportImage kept failing'],
    ['a text cause is the message', 'States.TaskFailed', 'EC2 said no', 'EC2 said no'],
    ['JSON without errorMessage is kept as text', 'States.TaskFailed', '{"Message":"x"}', '{"Message":"x"}'],
    ['a non-string errorMessage is kept as text', 'Error', '{"errorMessage":42}', '{"errorMessage":42}'],
    ['JSON null is kept as text', 'Error', 'null', 'null'],
    ['no cause gives the error name', 'States.Timeout', undefined, 'States.Timeout'],
    ['an empty cause gives the error name', 'States.Timeout', '', 'States.Timeout'],
    ['nothing at all', undefined, undefined, 'unknown error'],
  ])('%s', (_name, error, cause, expected) => {
    expect(causeMessage(error, cause)).toBe(expected);
  });
});

describe('error classifiers', () => {
  test.each([
    [named('ResourceLimitExceeded', 'x'), true],
    [named('ResourceCountLimitExceeded', 'x'), true],
    [named('TaskLimitExceeded', 'x'), true],
    [named('InvalidParameter', 'You have too many active import tasks'), true],
    [named('InvalidParameter', 'Too many concurrent import tasks'), true],
    [named('InvalidParameter', 'The active import tasks limit has been reached'), true],
    [named('InvalidParameter', 'You have reached the maximum number of active import image tasks'), true],
    [named('InvalidParameter', 'Invalid S3 key'), false],
    [named('RequestLimitExceeded', 'Request limit exceeded.'), false],
    [named('ResourceLimitExceededX', 'x'), false],
    ['too many active tasks', true],
  ])('isQuotaError(%p) = %p', (error, expected) => {
    expect(isQuotaError(error)).toBe(expected);
  });

  test.each([
    [named('InvalidSnapshot.InUse', 'The snapshot snap-1 is currently in use by ami-1'), true],
    [named('InvalidSnapshot.NotFound', 'gone'), false],
    [named('InvalidParameter', 'InvalidSnapshot.InUse'), false],
    ['InvalidSnapshot.InUse', false],
  ])('isSnapshotInUse(%p) = %p', (error, expected) => {
    expect(isSnapshotInUse(error)).toBe(expected);
  });

  test('IAM propagation and already-gone errors', () => {
    expect(isIamPropagationError(named('InvalidParameter', 'The service role vmimport-abc provided does not exist or does not have sufficient permissions'))).toBe(true);
    expect(isIamPropagationError(named('InvalidParameter', 'Something else'))).toBe(false);
    expect(isAlreadyGone(named('InvalidAMIID.NotFound'))).toBe(true);
    expect(isAlreadyGone(named('InvalidAMIID.Unavailable'))).toBe(true);
    expect(isAlreadyGone(named('InvalidSnapshot.NotFound'))).toBe(true);
    expect(isAlreadyGone(named('InvalidSnapshot.InUse'))).toBe(false);
    expect(isAlreadyGone(named('UnauthorizedOperation'))).toBe(false);
  });

  // CloudFormation's own answer about the WaitCondition decides: its ResourceStatus when it is described, else the stack's status.
  test.each<[string, string | undefined, string | undefined, string]>([
    ['created and waiting', 'CREATE_IN_PROGRESS', 'UPDATE_IN_PROGRESS', 'waiting'],
    ['already signalled', 'CREATE_COMPLETE', 'UPDATE_IN_PROGRESS', 'done'],
    ['timed out or signalled FAILURE', 'CREATE_FAILED', 'UPDATE_ROLLBACK_IN_PROGRESS', 'done'],
    ['being deleted', 'DELETE_IN_PROGRESS', 'UPDATE_COMPLETE_CLEANUP_IN_PROGRESS', 'done'],
    ['deleted but still described', 'DELETE_COMPLETE', 'UPDATE_COMPLETE', 'done'],
    ['not created yet, stack being created', undefined, 'CREATE_IN_PROGRESS', 'not-yet'],
    ['not created yet, stack being updated', undefined, 'UPDATE_IN_PROGRESS', 'not-yet'],
    ['absent, stack updated', undefined, 'UPDATE_COMPLETE', 'done'],
    ['absent, stack rolling back', undefined, 'UPDATE_ROLLBACK_IN_PROGRESS', 'done'],
    ['absent, stack rolled back', undefined, 'ROLLBACK_COMPLETE', 'done'],
    ['absent, stack being deleted', undefined, 'DELETE_IN_PROGRESS', 'done'],
    ['the stack gone', undefined, undefined, 'done'],
  ])('signalTarget: %s', (_name, resource, stack, expected) => {
    expect(signalTarget(resource, stack)).toBe(expected);
  });

  test.each<[string | undefined, boolean]>([
    ['CREATE_COMPLETE', true],
    ['UPDATE_COMPLETE', true],
    ['CREATE_IN_PROGRESS', false],
    ['CREATE_FAILED', false],
    ['DELETE_COMPLETE', false],
    ['DELETE_IN_PROGRESS', false],
    [undefined, false],
  ])('signalStillStands: %s → %s', (status, expected) => {
    expect(signalStillStands(status)).toBe(expected);
  });

  test.each<[string | undefined, string | undefined, boolean]>([
    ['false', 'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab', true],
    [undefined, 'alias/my-ebs-default', true],
    ['false', 'alias/aws/ebs', false],
    ['false', 'arn:aws:kms:us-east-1:123456789012:alias/aws/ebs', false],
    ['false', undefined, false],
    ['true', 'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab', false],
  ])('defaultEncryptionConflict: Encrypted %s, default key %s → %s', (encrypted, key, conflict) => {
    const reason = defaultEncryptionConflict({ Encrypted: encrypted }, key);
    expect(reason !== undefined).toBe(conflict);
    if (reason) {
      expect(reason).toContain(`EBS encryption by default is on in this account and Region with the key ${key}`);
      expect(reason).toContain("Remove 'encrypted: false'");
    }
  });

  test('backoff doubles to its cap', () => {
    expect([0, 1, 2, 3, 4, 5].map((a) => backoffDelay(a, 1000, 15_000))).toEqual([1000, 2000, 4000, 8000, 15_000, 15_000]);
  });
});

test('retryDelaySeconds waits 15 s, doubling to 5 minutes', () => {
  expect([0, 1, 2, 3, 4, 5, 6, 20].map(retryDelaySeconds)).toEqual([15, 30, 60, 120, 240, 300, 300, 300]);
});

describe('executionOutcome', () => {
  const TASK = 'import-ami-0123456789abcdef0';
  const state = (extra: Partial<ExecutionState> = {}): ExecutionState => ({
    StackId: STACK,
    LogicalResourceId: 'Image',
    WaitConditionId: 'ImageWaitABC',
    ClientToken: 'tok',
    Deadline: '2026-01-01T06:00:00.000Z',
    PollIntervalSeconds: 30,
    Properties: BASE,
    Import: { Started: true, ImportTaskId: TASK },
    ...extra,
  });
  const completedTask = { ImportTaskId: TASK, Status: 'completed', ImageId: 'ami-1', SnapshotDetails: [{ SnapshotId: 'snap-1' }, { SnapshotId: 'snap-2' }] };

  test.each<[string, 'completed' | 'failed' | 'error', Partial<ExecutionState>, unknown]>([
    ['a completed task', 'completed', { Poll: { Result: { ImportImageTasks: [completedTask] } } },
      { Outcome: 'completed', ImportTaskId: TASK, ImageId: 'ami-1', SnapshotIds: ['snap-1', 'snap-2'] }],
    ['completed without a completed task', 'completed', { Poll: { Result: { ImportImageTasks: [{ Status: 'active' }] } } },
      { Outcome: 'failed', ImportTaskId: TASK, Reason: `VM import ${TASK} ended without an AMI.` }],
    ['completed but no ImageId', 'completed', { Poll: { Result: { ImportImageTasks: [{ Status: 'completed' }] } } },
      { Outcome: 'failed', ImportTaskId: TASK, Reason: `VM import ${TASK} ended without an AMI.` }],
    ['failed with the timeout step\'s reason', 'failed', { Poll: { Result: { ImportImageTasks: [] }, Reason: 'did not finish within 600 seconds' } },
      { Outcome: 'failed', ImportTaskId: TASK, Reason: 'did not finish within 600 seconds' }],
    ['failed with EC2\'s message', 'failed', { Poll: { Result: { ImportImageTasks: [{ Status: 'deleted', StatusMessage: 'ClientError: Unknown OS / Missing OS files.' }] } } },
      { Outcome: 'failed', ImportTaskId: TASK, Reason: failureReason(TASK, 'ClientError: Unknown OS / Missing OS files.') }],
    ['failed on a task no longer listed', 'failed', { Poll: { Result: { ImportImageTasks: [] } } },
      { Outcome: 'failed', ImportTaskId: TASK, Reason: failureReason(TASK, 'the task is gone') }],
    ['an error after the import started', 'error', { Error: { Error: 'Error', Cause: JSON.stringify({ errorMessage: 'tagging refused' }) } },
      { Outcome: 'failed', ImportTaskId: TASK, Reason: `VM import ${TASK} stopped on an error: tagging refused` }],
    ['an error before the import started', 'error', { Import: undefined, Error: { Error: 'States.TaskFailed', Cause: 'Invalid S3 key' } },
      { Outcome: 'failed', ImportTaskId: undefined, Reason: 'The VM import could not start: Invalid S3 key' }],
  ])('%s', (_name, kind, extra, expected) => {
    expect(executionOutcome(kind, state(extra))).toEqual(expected);
  });

  test('a long error is cut to fit the response', () => {
    const outcome = executionOutcome('error', state({ Error: { Error: 'Error', Cause: 'x'.repeat(10_000) } }));
    expect(Buffer.byteLength(outcome.Reason!)).toBe(MAX_REASON_LENGTH);
  });
});

describe('launchPermissionChanges', () => {
  const perms = (users: string[], orgs: string[] = []) => ({ UserIds: users, OrganizationArns: orgs, OrganizationalUnitArns: [] });
  test.each([
    ['first share', perms(['111111111111']), undefined, [], { add: [{ UserId: '111111111111' }], remove: [] }],
    ['already shared', perms(['111111111111']), perms(['111111111111']), [{ UserId: '111111111111' }], { add: [], remove: [] }],
    ['an account dropped', perms([]), perms(['111111111111', '222222222222']), [{ UserId: '111111111111' }, { UserId: '222222222222' }],
      { add: [], remove: [{ UserId: '111111111111' }, { UserId: '222222222222' }] }],
    ['a share made by hand is kept', perms(['111111111111']), perms(['111111111111']), [{ UserId: '111111111111' }, { UserId: '333333333333' }], { add: [], remove: [] }],
    ['a dropped share already gone is not removed again', undefined, perms(['111111111111']), [], { add: [], remove: [] }],
    ['an organization', perms([], ['arn:aws:organizations::1:organization/o-1']), undefined, [], { add: [{ OrganizationArn: 'arn:aws:organizations::1:organization/o-1' }], remove: [] }],
  ])('%s', (_name, desired, previous, current, expected) => {
    expect(launchPermissionChanges(desired, previous, current)).toEqual(expected);
  });
});

test.each([
  ['nothing', {}, []],
  ['a disk', { DiskContainers: [{ Format: 'VMDK', S3Key: 'b.vmdk' }] }, ['DiskContainers']],
  ['the key and the boot mode', { KmsKeyId: 'arn:aws:kms:us-east-1:1:key/2', BootMode: 'uefi' }, ['KmsKeyId', 'BootMode']],
  ['tags, the role, the upload data and the timeouts do not shape the image', {
    Tags: [{ Key: 'a', Value: 'b' }], RoleName: 'other', ClientData: { Comment: 'x' }, WaitTimeoutSeconds: '60', PollIntervalSeconds: '10', RemovalPolicy: 'destroy',
  }, []],
])('changedImageProperties: %s', (_name, change, expected) => {
  const before = { DiskContainers: [{ Format: 'VMDK', S3Key: 'a.vmdk' }], KmsKeyId: 'arn:aws:kms:us-east-1:1:key/1', RoleName: 'r' };
  expect(changedImageProperties(before, { ...before, ...change })).toEqual(expected);
});

describe('copyRequest (imageName)', () => {
  const base = { DiskContainers: [], RoleName: 'r', Encrypted: 'true', KmsKeyId: 'arn:aws:kms:us-east-1:123456789012:key/k' };
  const tags = [{ Key: 'team', Value: 'web' }];

  test('none without a name', () => {
    expect(copyRequest(base, EXECUTION, 'import-ami-1', tags)).toBeUndefined();
  });

  test('names the key, with a token of the execution and every tag; the description falls back to the import\'s, then to the task', () => {
    expect(copyRequest({ ...base, ImageName: 'web', ImageDescription: 'd' }, EXECUTION, 'import-ami-1', tags)).toEqual({
      Name: 'web', Description: 'd', Encrypted: true, KmsKeyId: base.KmsKeyId, ClientToken: copyClientToken(EXECUTION), Tags: tags,
    });
    expect(copyRequest({ ...base, ImageName: 'web', Description: 'import' }, EXECUTION, 'import-ami-1', tags)?.Description).toBe('import');
    expect(copyRequest({ ...base, ImageName: 'web' }, EXECUTION, 'import-ami-1', tags)?.Description).toBe('Imported by VM Import (import-ami-1)');
    expect(copyClientToken(EXECUTION)).toMatch(/^[0-9a-f]{64}$/);
    expect(copyClientToken(EXECUTION)).not.toBe(clientToken(EXECUTION));
  });

  test('unencrypted: no key', () => {
    expect(copyRequest({ ...base, Encrypted: 'false', KmsKeyId: undefined, ImageName: 'web' }, EXECUTION, 'import-ami-1', tags))
      .toMatchObject({ Encrypted: false, KmsKeyId: undefined });
  });

  test('the imported AMI of a named import gets the library\'s tags alone', () => {
    expect(libraryTags({ stackId: STACK, logicalResourceId: 'Image', importTaskId: 'import-ami-1' }).map((t) => t.Key))
      .toEqual(['cdk-vm-import:stack-id', 'cdk-vm-import:logical-id', 'cdk-vm-import:import-task-id']);
  });

  test('a deploy-time change of the name or description under the same WaitCondition is a change of the image', () => {
    expect(changedImageProperties({ ImageName: 'a' }, { ImageName: 'b' })).toEqual(['ImageName']);
    expect(changedImageProperties({ ImageDescription: 'a' }, {})).toEqual(['ImageDescription']);
  });
});
