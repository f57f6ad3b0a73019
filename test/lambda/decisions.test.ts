import {
  backoffDelay,
  classifyTask,
  clientToken,
  deadlinePassed,
  deleteAction,
  failureReason,
  imageDefinitionHash,
  importImageInput,
  isAlreadyGone,
  isIamPropagationError,
  isImportTaskId,
  MAX_REASON_LENGTH,
  parseProperties,
  remedyFor,
  removedTagKeys,
  resourceTags,
  timeoutReason,
  updateNeedsNewImport,
} from '../../lambda/decisions';

const STACK = 'arn:aws:cloudformation:us-east-1:123456789012:stack/s/1';
const BASE = { DiskContainers: [{ Format: 'VMDK', S3Bucket: 'b', S3Key: 'k.vmdk' }], RoleName: 'r' };

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

describe('deleteAction', () => {
  const completed = { kind: 'completed', imageId: 'ami-1', snapshotIds: [] as string[] } as const;
  test.each([
    [{ kind: 'running', status: 'active', progress: '1', message: '' } as const, 'retain', 'cancel'],
    [{ kind: 'running', status: 'active', progress: '1', message: '' } as const, 'destroy', 'cancel'],
    [completed, 'retain', 'nothing'],
    [completed, undefined, 'nothing'],
    [completed, 'destroy', 'destroy'],
    [{ kind: 'missing' } as const, 'retain', 'nothing'],
    [{ kind: 'missing' } as const, 'destroy', 'find-and-destroy'],
    [{ kind: 'failed', message: 'x' } as const, 'destroy', 'nothing'],
  ])('%o with %s → %s', (outcome, policy, expected) => {
    expect(deleteAction(outcome, policy)).toBe(expected);
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

test('clientToken is deterministic, 64 characters, and differs per request', () => {
  const a = clientToken(STACK, 'Image', 'req-1');
  expect(a).toMatch(/^[0-9a-f]{64}$/);
  expect(clientToken(STACK, 'Image', 'req-1')).toBe(a);
  expect(clientToken(STACK, 'Image', 'req-2')).not.toBe(a);
  expect(clientToken(STACK, 'Other', 'req-1')).not.toBe(a);
});

describe('updateNeedsNewImport', () => {
  test.each([
    ['same properties', {}, false],
    ['tags only', { Tags: [{ Key: 'a', Value: 'b' }] }, false],
    ['removal policy only', { RemovalPolicy: 'destroy' }, false],
    ['wait only', { WaitTimeoutSeconds: '600' }, false],
    ['service token only', { ServiceToken: 'arn:other' }, false],
    ['another disk', { DiskContainers: [{ Format: 'VMDK', S3Bucket: 'b', S3Key: 'k2.vmdk' }] }, true],
    ['boot mode', { BootMode: 'uefi' }, true],
    ['encryption key', { KmsKeyId: 'arn:key' }, true],
    ['license', { LicenseType: 'AWS' }, true],
  ])('%s → %s', (_name, change, expected) => {
    expect(updateNeedsNewImport({ ...BASE, ServiceToken: 'arn:x' }, { ...BASE, ServiceToken: 'arn:x', ...change })).toBe(expected);
  });
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
  }, 'tok', STACK);
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
      Tags: [{ Key: 'team', Value: 'infra' }, { Key: 'cdk-vm-import:stack-id', Value: STACK }],
    }],
  });
});

test('importImageInput sends Encrypted false as false', () => {
  expect(importImageInput({ ...BASE, Encrypted: 'false' }, 't', STACK).Encrypted).toBe(false);
});

test('resourceTags adds the stack and task tags; removedTagKeys finds dropped keys', () => {
  expect(resourceTags({ ...BASE, Tags: [{ Key: 'a', Value: '1' }] }, {
    stackId: STACK, logicalResourceId: 'Image', importTaskId: 'import-ami-1', imageHash: 'h',
  })).toEqual([
    { Key: 'a', Value: '1' },
    { Key: 'cdk-vm-import:stack-id', Value: STACK },
    { Key: 'cdk-vm-import:logical-id', Value: 'Image' },
    { Key: 'cdk-vm-import:import-task-id', Value: 'import-ami-1' },
    { Key: 'cdk-vm-import:image-hash', Value: 'h' },
  ]);
  expect(removedTagKeys(
    { ...BASE, Tags: [{ Key: 'a', Value: '1' }, { Key: 'b', Value: '2' }] },
    { ...BASE, Tags: [{ Key: 'b', Value: '3' }] },
  )).toEqual(['a']);
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

test.each([
  ['import-ami-0123456789abcdef0', true],
  ['import-ami-1', true],
  ['AWSCDK::CustomResourceProviderFramework::CREATE_FAILED', false],
  ['3a4f1c2e-request-id', false],
  [undefined, false],
])('isImportTaskId(%s) = %s', (id, expected) => {
  expect(isImportTaskId(id)).toBe(expected);
});

test('error classifiers', () => {
  const named = (name: string, message = '') => Object.assign(new Error(message), { name });
  expect(isIamPropagationError(named('InvalidParameter', 'The service role vmimport-abc provided does not exist or does not have sufficient permissions'))).toBe(true);
  expect(isIamPropagationError(named('InvalidParameter', 'Something else'))).toBe(false);
  expect(isAlreadyGone(named('InvalidAMIID.NotFound'))).toBe(true);
  expect(isAlreadyGone(named('InvalidAMIID.Unavailable'))).toBe(true);
  expect(isAlreadyGone(named('InvalidSnapshot.NotFound'))).toBe(true);
  expect(isAlreadyGone(named('InvalidSnapshot.InUse'))).toBe(false);
  expect(isAlreadyGone(named('UnauthorizedOperation'))).toBe(false);
});

test('deadline and backoff', () => {
  expect(deadlinePassed(0, 599_999, 600)).toBe(false);
  expect(deadlinePassed(0, 600_000, 600)).toBe(true);
  expect([0, 1, 2, 3, 4, 5].map((a) => backoffDelay(a, 1000, 15_000))).toEqual([1000, 2000, 4000, 8000, 15_000, 15_000]);
});

test('updateNeedsNewImport ignores the order of object keys but not of list items', () => {
  const a = { ...BASE, ClientData: { Comment: 'c', UploadSize: '1' } };
  const b = { RoleName: 'r', ClientData: { UploadSize: '1', Comment: 'c' }, DiskContainers: [{ S3Key: 'k.vmdk', S3Bucket: 'b', Format: 'VMDK' }] };
  expect(updateNeedsNewImport(a, b)).toBe(false);
  const twoDisks = { ...BASE, DiskContainers: [{ S3Key: 'a.vmdk' }, { S3Key: 'b.vmdk' }] };
  expect(updateNeedsNewImport(twoDisks, { ...BASE, DiskContainers: [{ S3Key: 'b.vmdk' }, { S3Key: 'a.vmdk' }] })).toBe(true);
});

test('imageDefinitionHash ignores key order and the in-place properties, and changes with the image', () => {
  const a = imageDefinitionHash({ ...BASE, Tags: [{ Key: 'x', Value: '1' }], RemovalPolicy: 'retain', ServiceToken: 's1' });
  expect(a).toMatch(/^[0-9a-f]{64}$/);
  expect(imageDefinitionHash({ RoleName: 'r', DiskContainers: BASE.DiskContainers, RemovalPolicy: 'destroy', WaitTimeoutSeconds: '60', ServiceToken: 's2' })).toBe(a);
  expect(imageDefinitionHash({ ...BASE, BootMode: 'uefi' })).not.toBe(a);
});
