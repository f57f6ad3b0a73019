import * as http from 'http';
import { AddressInfo } from 'net';
import { format } from 'util';
import { CloudFormationClient, DescribeStackResourceCommand, DescribeStacksCommand, SignalResourceCommand } from '@aws-sdk/client-cloudformation';
import {
  CancelImportTaskCommand,
  CreateTagsCommand,
  DeleteSnapshotCommand,
  DeleteTagsCommand,
  DeregisterImageCommand,
  DescribeImagesCommand,
  DescribeImportImageTasksCommand,
  EC2Client,
  GetEbsDefaultKmsKeyIdCommand,
  GetEbsEncryptionByDefaultCommand,
  ImportImageCommand,
} from '@aws-sdk/client-ec2';
import {
  DescribeExecutionCommand,
  GetExecutionHistoryCommand,
  SFNClient,
  StartExecutionCommand,
  StopExecutionCommand,
} from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { clientToken, executionName, timeoutReason } from '../../lambda/decisions';
import * as ec2Module from '../../lambda/ec2';
import { CloudFormationEvent, handler, StepEvent } from '../../lambda/index';
import type { ExecutionState } from '../../lambda/steps';

const ec2 = mockClient(EC2Client);
const sfn = mockClient(SFNClient);
const cfn = mockClient(CloudFormationClient);

const STACK = 'arn:aws:cloudformation:us-east-1:123456789012:stack/s/1';
const OTHER_STACK = 'arn:aws:cloudformation:us-east-1:123456789012:stack/other/2';
const TASK = 'import-ami-0123456789abcdef0';
const STATE_MACHINE = 'arn:aws:states:us-east-1:123456789012:stateMachine:Engine-abc';
const WAIT = 'ImageWaitABCDEF01234512345678';
const arnOf = (name: string) => `arn:aws:states:us-east-1:123456789012:execution:Engine-abc:${name}`;
const BASE_NAME = executionName(STACK, 'Image', WAIT);
const BASE_ARN = arnOf(BASE_NAME);
/** The name a fresh attempt of request req-1 gets. */
const FRESH_ARN = arnOf(executionName(STACK, 'Image', WAIT, 'req-1'));

const START_PROPS = {
  ServiceToken: 'arn:aws:lambda:us-east-1:123456789012:function:engine',
  StateMachineArn: STATE_MACHINE,
  DiskContainers: [{ Format: 'VMDK', S3Bucket: 'b', S3Key: 'k.vmdk' }],
  RoleName: 'import-role',
  Tags: [{ Key: 'team', Value: 'infra' }],
  RemovalPolicy: 'retain',
  WaitTimeoutSeconds: '600',
  PollIntervalSeconds: '30',
  WaitConditionId: WAIT,
};

/** The pre-signed URL's secret part: it must never reach the logs. */
const SECRET = 'X-Amz-Signature=5ec7e75ec7e75ec7e7';
let responseUrl: string;
let server: http.Server;
let responses: Array<{ method?: string; url?: string; headers: http.IncomingHttpHeaders; body: any }>;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => { body += chunk; });
    req.on('end', () => {
      responses.push({ method: req.method, url: req.url, headers: req.headers, body: JSON.parse(body) });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  responseUrl = `http://127.0.0.1:${port}/cloudformation-custom-resource-response/req-1?${SECRET}`;
});
afterAll(() => new Promise((resolve) => server.close(resolve)));

let logs: string[];
beforeEach(() => {
  ec2.reset();
  sfn.reset();
  cfn.reset();
  responses = [];
  logs = [];
  for (const level of ['log', 'info', 'warn', 'error', 'debug'] as const) {
    jest.spyOn(console, level).mockImplementation((...args: unknown[]) => { logs.push(format(...args)); });
  }
  // Unless a test says otherwise: no execution exists, and sleeping takes no time.
  sfn.on(DescribeExecutionCommand).rejects(named('ExecutionDoesNotExist', 'Execution Does Not Exist'));
  // EBS encryption by default is off; CloudFormation's WaitCondition waits for its signal.
  ec2.on(GetEbsEncryptionByDefaultCommand).resolves({ EbsEncryptionByDefault: false });
  cfn.on(DescribeStackResourceCommand).resolves({ StackResourceDetail: { ResourceStatus: 'CREATE_IN_PROGRESS' } as never });
  jest.spyOn(ec2Module, 'sleep').mockResolvedValue();
  delete process.env.VM_IMPORT_IAM_RETRY_SECONDS;
});
afterEach(() => {
  jest.restoreAllMocks();
  // The response URL is a credential: not in any log line, whatever the test did.
  const all = logs.join('\n');
  expect(all).not.toContain(SECRET);
  expect(all).not.toContain(responseUrl);
  expect(all).not.toMatch(/ResponseURL|127\.0\.0\.1/);
});

const named = (name: string, message: string) => Object.assign(new Error(message), { name });

function cfnEvent(
  resourceType: 'Custom::VmImageImport' | 'Custom::VmImageImportResult',
  requestType: 'Create' | 'Update' | 'Delete',
  properties: Record<string, unknown>,
  extra: Partial<CloudFormationEvent> = {},
): CloudFormationEvent {
  return {
    RequestType: requestType,
    RequestId: 'req-1',
    StackId: STACK,
    LogicalResourceId: resourceType === 'Custom::VmImageImport' ? 'Image' : 'ImageResult',
    ResourceType: resourceType,
    ResourceProperties: properties,
    ResponseURL: responseUrl,
    ServiceToken: START_PROPS.ServiceToken,
    ...extra,
  };
}

const start = (requestType: 'Create' | 'Update' | 'Delete', extra: Partial<CloudFormationEvent> = {}, props: Record<string, unknown> = START_PROPS) =>
  handler(cfnEvent('Custom::VmImageImport', requestType, props, extra));

/** The one response CloudFormation received. */
function response() {
  expect(responses).toHaveLength(1);
  return responses[0].body;
}

function execution(status: string, output?: unknown, extra: Record<string, unknown> = {}) {
  return { status: status as 'RUNNING', output: output === undefined ? undefined : JSON.stringify(output), ...extra };
}

const COMPLETED = { Outcome: 'completed', ImportTaskId: TASK, ImageId: 'ami-1', SnapshotIds: ['snap-1', 'snap-2'] };

describe('the response', () => {
  test('is PUT to the ResponseURL with an empty content type and the request\'s identity', async () => {
    sfn.on(StartExecutionCommand).resolves({ executionArn: BASE_ARN });
    const answer = await start('Create');
    expect(responses).toHaveLength(1);
    const [put] = responses;
    expect(put.method).toBe('PUT');
    expect(put.url).toBe(`/cloudformation-custom-resource-response/req-1?${SECRET}`);
    expect(put.headers['content-type']).toBe('');
    expect(put.body).toEqual({
      Status: 'SUCCESS',
      StackId: STACK,
      RequestId: 'req-1',
      LogicalResourceId: 'Image',
      PhysicalResourceId: BASE_ARN,
      Data: { ExecutionArn: BASE_ARN },
    });
    expect(answer).toEqual(put.body);
    // The handler logs, so the afterEach check of the logs is not vacuous.
    expect(logs.map((l) => JSON.parse(l).message)).toEqual(expect.arrayContaining(['request', 'execution started', 'response sent']));
  });

  test('a failure answers FAILED with the reason and an ID that names nothing, and logs neither the URL nor its signature', async () => {
    await start('Create', {}, { ...START_PROPS, StateMachineArn: undefined });
    expect(response()).toEqual(expect.objectContaining({
      Status: 'FAILED',
      Reason: 'The custom resource properties StateMachineArn and WaitConditionId must be set.',
      PhysicalResourceId: 'failed-req-1',
    }));
    expect(logs.map((l) => JSON.parse(l))).toContainEqual(expect.objectContaining({ message: 'request failed' }));
    expect(sfn.commandCalls(StartExecutionCommand)).toHaveLength(0);
  });

  test('a response URL that fails is tried again', async () => {
    sfn.on(StartExecutionCommand).resolves({ executionArn: BASE_ARN });
    let refusals = 1;
    const original = server.listeners('request')[0] as http.RequestListener;
    server.removeAllListeners('request');
    server.on('request', (req, res) => {
      if (refusals-- > 0) {
        req.resume();
        res.writeHead(500).end();
        return;
      }
      original(req, res);
    });
    try {
      await start('Create');
    } finally {
      server.removeAllListeners('request');
      server.on('request', original);
    }
    expect(response()).toEqual(expect.objectContaining({ Status: 'SUCCESS', PhysicalResourceId: BASE_ARN }));
  });

  test('malformed properties fail clearly', async () => {
    await start('Create', {}, { ...START_PROPS, DiskContainers: [] });
    expect(response()).toEqual(expect.objectContaining({ Status: 'FAILED', Reason: expect.stringMatching(/DiskContainers must be a non-empty list/) }));
  });
});

describe('start resource: Create', () => {
  test('starts one execution with a deterministic name and its input', async () => {
    sfn.on(StartExecutionCommand).resolves({ executionArn: BASE_ARN });
    const before = Date.now();
    await start('Create');
    const after = Date.now();
    expect(BASE_NAME).toMatch(/^vmimport-[0-9a-f]{40}$/);
    const calls = sfn.commandCalls(StartExecutionCommand);
    expect(calls).toHaveLength(1);
    const { stateMachineArn, name, input } = calls[0].args[0].input;
    expect([stateMachineArn, name]).toEqual([STATE_MACHINE, BASE_NAME]);
    const parsed = JSON.parse(input!);
    const { ServiceToken: _token, ...properties } = START_PROPS;
    expect(parsed).toEqual({
      StackId: STACK,
      LogicalResourceId: 'Image',
      WaitConditionId: WAIT,
      ClientToken: clientToken(BASE_ARN),
      Deadline: expect.any(String),
      PollIntervalSeconds: 30,
      Properties: properties,
    });
    const deadline = Date.parse(parsed.Deadline);
    expect(deadline).toBeGreaterThanOrEqual(before + 600_000);
    expect(deadline).toBeLessThanOrEqual(after + 600_000);
    expect(response()).toEqual(expect.objectContaining({ Status: 'SUCCESS', PhysicalResourceId: BASE_ARN }));
    // It looked for an execution of that name first, and touched no EC2 resource.
    expect(sfn.commandCalls(DescribeExecutionCommand)[0].args[0].input).toEqual({ executionArn: BASE_ARN });
    expect(ec2.calls()).toHaveLength(0);
  });

  test('a duplicated Create starts an execution of the same name with the same client token', async () => {
    sfn.on(StartExecutionCommand).resolves({ executionArn: BASE_ARN });
    await start('Create');
    await start('Create');
    const [a, b] = sfn.commandCalls(StartExecutionCommand).map((c) => c.args[0].input);
    expect(b.name).toBe(a.name);
    expect(JSON.parse(b.input!).ClientToken).toBe(JSON.parse(a.input!).ClientToken);
  });

  test('the deadline never passes the WaitCondition\'s 12 hours', async () => {
    sfn.on(StartExecutionCommand).resolves({ executionArn: BASE_ARN });
    const before = Date.now();
    await start('Create', {}, { ...START_PROPS, WaitTimeoutSeconds: '43200', PollIntervalSeconds: '60' });
    const after = Date.now();
    const input = JSON.parse(sfn.commandCalls(StartExecutionCommand)[0].args[0].input.input!);
    expect(input.PollIntervalSeconds).toBe(60);
    // One poll and 15 seconds early, so the import reports its own timeout before CloudFormation does.
    expect(Date.parse(input.Deadline)).toBeGreaterThanOrEqual(before + (43_200 - 60 - 15) * 1000);
    expect(Date.parse(input.Deadline)).toBeLessThanOrEqual(after + (43_200 - 60 - 15) * 1000);
  });

  test('missing wait properties take the defaults (6 hours, 30 seconds)', async () => {
    sfn.on(StartExecutionCommand).resolves({ executionArn: BASE_ARN });
    const before = Date.now();
    const { WaitTimeoutSeconds: _w, PollIntervalSeconds: _p, ...props } = START_PROPS;
    await start('Create', {}, props);
    const after = Date.now();
    const input = JSON.parse(sfn.commandCalls(StartExecutionCommand)[0].args[0].input.input!);
    expect(input.PollIntervalSeconds).toBe(30);
    expect(Date.parse(input.Deadline)).toBeGreaterThanOrEqual(before + 6 * 3600 * 1000);
    expect(Date.parse(input.Deadline)).toBeLessThanOrEqual(after + 6 * 3600 * 1000);
  });

  test('reuses a RUNNING execution of that name', async () => {
    sfn.on(DescribeExecutionCommand, { executionArn: BASE_ARN }).resolves(execution('RUNNING'));
    await start('Create');
    expect(sfn.commandCalls(StartExecutionCommand)).toHaveLength(0);
    expect(response()).toEqual(expect.objectContaining({ Status: 'SUCCESS', PhysicalResourceId: BASE_ARN, Data: { ExecutionArn: BASE_ARN } }));
  });

  test('reuses a SUCCEEDED execution whose AMI still exists while the WaitCondition it signalled stands (a rollback to imported properties)', async () => {
    sfn.on(DescribeExecutionCommand, { executionArn: BASE_ARN }).resolves(execution('SUCCEEDED', COMPLETED));
    ec2.on(DescribeImagesCommand, { ImageIds: ['ami-1'] }).resolves({ Images: [{ ImageId: 'ami-1' }] });
    cfn.on(DescribeStackResourceCommand, { StackName: STACK, LogicalResourceId: WAIT }).resolves({ StackResourceDetail: { ResourceStatus: 'CREATE_COMPLETE' } as never });
    await start('Create');
    expect(sfn.commandCalls(StartExecutionCommand)).toHaveLength(0);
    expect(ec2.commandCalls(DescribeImagesCommand)).toHaveLength(1);
    expect(response()).toEqual(expect.objectContaining({ Status: 'SUCCESS', PhysicalResourceId: BASE_ARN }));
  });

  test.each<[string, () => void]>([
    ['absent (a revert after the cleanup deleted it, or a redeploy after a rollback)', () => {
      cfn.on(DescribeStackResourceCommand).rejects(named('ValidationError', `Resource ${WAIT} does not exist for stack ${STACK}`));
    }],
    ['described as deleted', () => {
      cfn.on(DescribeStackResourceCommand).resolves({ StackResourceDetail: { ResourceStatus: 'DELETE_COMPLETE' } as never });
    }],
    ['failed', () => {
      cfn.on(DescribeStackResourceCommand).resolves({ StackResourceDetail: { ResourceStatus: 'CREATE_FAILED' } as never });
    }],
  ])('a SUCCEEDED execution whose AMI exists, its WaitCondition %s: a new execution signals the new WaitCondition with that AMI', async (_name, arrange) => {
    sfn.on(DescribeExecutionCommand, { executionArn: BASE_ARN }).resolves(execution('SUCCEEDED', COMPLETED));
    ec2.on(DescribeImagesCommand, { ImageIds: ['ami-1'] }).resolves({ Images: [{ ImageId: 'ami-1' }] });
    arrange();
    sfn.on(StartExecutionCommand).resolves({ executionArn: FRESH_ARN });
    await start('Update', { OldResourceProperties: { ...START_PROPS, WaitConditionId: 'ImageWaitOther' }, PhysicalResourceId: arnOf('other') });
    const calls = sfn.commandCalls(StartExecutionCommand);
    expect(calls).toHaveLength(1);
    expect(arnOf(calls[0].args[0].input.name!)).toBe(FRESH_ARN);
    expect(JSON.parse(calls[0].args[0].input.input!)).toEqual(expect.objectContaining({ ReuseExecutionArn: BASE_ARN, WaitConditionId: WAIT }));
    expect(ec2.commandCalls(ImportImageCommand)).toHaveLength(0);
    expect(response()).toEqual(expect.objectContaining({ Status: 'SUCCESS', PhysicalResourceId: FRESH_ARN }));
  });

  test.each([
    ['the AMI is gone', execution('SUCCEEDED', COMPLETED), true],
    ['the AMI was deregistered (EC2 answers NotFound)', execution('SUCCEEDED', COMPLETED), false],
    ['the execution failed', execution('FAILED', undefined, { error: 'VmImportFailed', cause: 'Unknown OS' }), true],
    ['the execution was stopped', execution('ABORTED'), true],
    ['the execution succeeded without an AMI', execution('SUCCEEDED', { Outcome: 'failed', Reason: 'x' }), true],
  ])('starts a fresh (suffixed) execution when %s', async (_name, earlier, listsNone) => {
    sfn.on(DescribeExecutionCommand, { executionArn: BASE_ARN }).resolves(earlier);
    if (listsNone) {
      ec2.on(DescribeImagesCommand).resolves({ Images: [] });
    } else {
      ec2.on(DescribeImagesCommand).rejects(named('InvalidAMIID.NotFound', 'The image id [ami-1] does not exist'));
    }
    sfn.on(StartExecutionCommand).resolves({ executionArn: FRESH_ARN });
    await start('Create');
    const calls = sfn.commandCalls(StartExecutionCommand);
    expect(calls).toHaveLength(1);
    expect(calls[0].args[0].input.name).toMatch(new RegExp(`^${BASE_NAME}-[0-9a-f]{16}$`));
    expect(arnOf(calls[0].args[0].input.name!)).toBe(FRESH_ARN);
    expect(JSON.parse(calls[0].args[0].input.input!).ClientToken).toBe(clientToken(FRESH_ARN));
    expect(response()).toEqual(expect.objectContaining({ Status: 'SUCCESS', PhysicalResourceId: FRESH_ARN }));
  });

  test('fails when this request\'s own fresh execution already ended without an AMI', async () => {
    sfn.on(DescribeExecutionCommand).resolves(execution('FAILED', undefined, { error: 'VmImportFailed', cause: 'x' }));
    await start('Create');
    expect(sfn.commandCalls(StartExecutionCommand)).toHaveLength(0);
    expect(response()).toEqual(expect.objectContaining({ Status: 'FAILED', Reason: expect.stringMatching(/already ended without an AMI; deploy again to retry/) }));
  });

  test('ExecutionAlreadyExists (a race with a duplicate) answers with that execution', async () => {
    sfn.on(StartExecutionCommand).rejects(named('ExecutionAlreadyExists', 'Execution Already Exists'));
    await start('Create');
    expect(response()).toEqual(expect.objectContaining({ Status: 'SUCCESS', PhysicalResourceId: BASE_ARN }));
  });
});

describe('start resource: Update', () => {
  test('with the same WaitConditionId keeps the physical ID and starts nothing', async () => {
    await start('Update', {
      PhysicalResourceId: BASE_ARN,
      OldResourceProperties: { ...START_PROPS, Tags: [], RoleName: 'old-role', WaitTimeoutSeconds: '3600' },
    });
    expect(response()).toEqual(expect.objectContaining({ Status: 'SUCCESS', PhysicalResourceId: BASE_ARN, Data: { ExecutionArn: BASE_ARN } }));
    expect(sfn.calls()).toHaveLength(0);
    expect(ec2.calls()).toHaveLength(0);
  });

  test('with another WaitConditionId starts the execution of the new properties', async () => {
    const newWait = 'ImageWait99999999999912345678';
    const newArn = arnOf(executionName(STACK, 'Image', newWait));
    sfn.on(StartExecutionCommand).resolves({ executionArn: newArn });
    await start('Update', { PhysicalResourceId: BASE_ARN, OldResourceProperties: START_PROPS }, { ...START_PROPS, WaitConditionId: newWait });
    expect(sfn.commandCalls(StartExecutionCommand)).toHaveLength(1);
    expect(JSON.parse(sfn.commandCalls(StartExecutionCommand)[0].args[0].input.input!).WaitConditionId).toBe(newWait);
    expect(response()).toEqual(expect.objectContaining({ Status: 'SUCCESS', PhysicalResourceId: newArn }));
  });

  test('with another state machine starts an execution there', async () => {
    const otherMachine = 'arn:aws:states:us-east-1:123456789012:stateMachine:Other';
    sfn.on(StartExecutionCommand).resolves({});
    await start('Update', { PhysicalResourceId: BASE_ARN, OldResourceProperties: START_PROPS }, { ...START_PROPS, StateMachineArn: otherMachine });
    expect(sfn.commandCalls(StartExecutionCommand)[0].args[0].input.stateMachineArn).toBe(otherMachine);
    expect(response().PhysicalResourceId).toBe(`arn:aws:states:us-east-1:123456789012:execution:Other:${BASE_NAME}`);
  });
});

describe('start resource: Delete', () => {
  const historyWith = (importTaskId?: string) => ({
    events: [
      { id: 9, type: 'TaskStateEntered', stateEnteredEventDetails: { name: 'DescribeImport', input: '{}' } },
      { id: 8, type: 'WaitStateExited', stateExitedEventDetails: { name: 'WaitForImport', output: 'not json' } },
      { id: 7, type: 'ChoiceStateExited', stateExitedEventDetails: { name: 'Started', output: JSON.stringify({ Import: { Started: false } }) } },
      ...(importTaskId
        ? [{ id: 6, type: 'TaskStateExited', stateExitedEventDetails: { name: 'StartImport', output: JSON.stringify({ Import: { Started: true, ImportTaskId: importTaskId } }) } }]
        : []),
    ] as any[],
  });
  const del = (props: Record<string, unknown> = START_PROPS, physicalId = BASE_ARN) => start('Delete', { PhysicalResourceId: physicalId }, props);

  test('of a running execution cancels the task found in its history and stops the execution', async () => {
    sfn.on(DescribeExecutionCommand, { executionArn: BASE_ARN }).resolves(execution('RUNNING'));
    sfn.on(GetExecutionHistoryCommand).resolves(historyWith(TASK));
    const order: string[] = [];
    ec2.on(CancelImportTaskCommand).callsFake(() => { order.push('cancel'); return { ImportTaskId: TASK, State: 'deleting' }; });
    sfn.on(StopExecutionCommand).callsFake(() => { order.push('stop'); return {}; });
    await del();
    expect(sfn.commandCalls(GetExecutionHistoryCommand)[0].args[0].input).toEqual(expect.objectContaining({
      executionArn: BASE_ARN, reverseOrder: true, includeExecutionData: true,
    }));
    expect(ec2.commandCalls(CancelImportTaskCommand).map((c) => c.args[0].input)).toEqual([{ ImportTaskId: TASK, CancelReason: 'cdk-vm-import: the resource was deleted' }]);
    expect(sfn.commandCalls(StopExecutionCommand).map((c) => c.args[0].input)).toEqual([
      { executionArn: BASE_ARN, error: 'VmImportStopped', cause: 'cdk-vm-import: the resource was deleted' },
    ]);
    // The task first: a stopped execution would no longer follow it.
    expect(order).toEqual(['cancel', 'stop']);
    expect(response()).toEqual(expect.objectContaining({ Status: 'SUCCESS', PhysicalResourceId: BASE_ARN }));
  });

  test('reads further pages of the history for the task', async () => {
    sfn.on(DescribeExecutionCommand, { executionArn: BASE_ARN }).resolves(execution('RUNNING'));
    sfn.on(GetExecutionHistoryCommand)
      .resolvesOnce({ ...historyWith(), nextToken: 'page-2' })
      .resolves(historyWith(TASK));
    ec2.on(CancelImportTaskCommand).resolves({});
    await del();
    expect(sfn.commandCalls(GetExecutionHistoryCommand).map((c) => c.args[0].input.nextToken)).toEqual([undefined, 'page-2']);
    expect(ec2.commandCalls(CancelImportTaskCommand)[0].args[0].input.ImportTaskId).toBe(TASK);
  });

  test('of an execution that started no import only stops it', async () => {
    sfn.on(DescribeExecutionCommand, { executionArn: BASE_ARN }).resolves(execution('RUNNING'));
    sfn.on(GetExecutionHistoryCommand).resolves(historyWith());
    await del();
    expect(ec2.calls()).toHaveLength(0);
    expect(sfn.commandCalls(StopExecutionCommand)).toHaveLength(1);
    expect(response().Status).toBe('SUCCESS');
  });

  test.each([
    ['a Create that failed before it had an execution', 'failed-req-0'],
    ['an execution that does not exist', BASE_ARN],
  ])('of %s needs nothing', async (_name, physicalId) => {
    await del(START_PROPS, physicalId);
    expect(ec2.calls()).toHaveLength(0);
    expect(sfn.commandCalls(StopExecutionCommand)).toHaveLength(0);
    expect(response()).toEqual(expect.objectContaining({ Status: 'SUCCESS', PhysicalResourceId: physicalId }));
  });

  test('a task that completed as it was cancelled is kept under RETAIN, once the running execution has tagged it', async () => {
    sfn.on(DescribeExecutionCommand, { executionArn: BASE_ARN }).resolves(execution('RUNNING'));
    sfn.on(GetExecutionHistoryCommand).resolves(historyWith(TASK));
    ec2.on(CancelImportTaskCommand).rejects(named('InvalidParameterValue', 'cannot cancel a completed task'));
    ec2.on(DescribeImportImageTasksCommand).resolves({ ImportImageTasks: [{ ImportTaskId: TASK, Status: 'completed', ImageId: 'ami-1' }] });
    const tagged = { ImageId: 'ami-1', State: 'available' as const, Tags: [{ Key: 'cdk-vm-import:stack-id', Value: STACK }] };
    // Untagged at first, then tagged by the execution; the import's AMIs by their tags: only the imported one (no copy was made).
    ec2.on(DescribeImagesCommand, { ImageIds: ['ami-1'] }).resolvesOnce({ Images: [{ ImageId: 'ami-1', State: 'available' }] }).resolves({ Images: [tagged] });
    ec2.on(DescribeImagesCommand, {
      Filters: [
        { Name: 'tag:cdk-vm-import:stack-id', Values: [STACK] },
        { Name: 'tag:cdk-vm-import:import-task-id', Values: [TASK] },
      ],
    }).resolves({ Images: [tagged] });
    await del();
    expect(ec2.commandCalls(DescribeImagesCommand).filter((c) => c.args[0].input.Filters)).toHaveLength(1);
    expect(ec2.commandCalls(DeregisterImageCommand)).toHaveLength(0);
    expect(sfn.commandCalls(StopExecutionCommand)).toHaveLength(1);
    // Tagged by the execution: no adoption.
    expect(sfn.commandCalls(StartExecutionCommand)).toHaveLength(0);
    expect(response().Status).toBe('SUCCESS');
  });

  test('a completed task whose stopped execution never tagged its AMI: the state machine adopts it, started with the task and the tags', async () => {
    sfn.on(DescribeExecutionCommand, { executionArn: BASE_ARN }).resolves(execution('FAILED'));
    sfn.on(DescribeExecutionCommand, { executionArn: `${BASE_ARN}-adopt` }).resolves(execution('SUCCEEDED'));
    sfn.on(GetExecutionHistoryCommand).resolves(historyWith(TASK));
    sfn.on(StartExecutionCommand).resolves({ executionArn: `${BASE_ARN}-adopt` });
    ec2.on(CancelImportTaskCommand).rejects(named('InvalidParameterValue', 'cannot cancel a completed task'));
    ec2.on(DescribeImportImageTasksCommand).resolves({ ImportImageTasks: [{ ImportTaskId: TASK, Status: 'completed', ImageId: 'ami-1' }] });
    ec2.on(DescribeImagesCommand).resolves({ Images: [{ ImageId: 'ami-1', State: 'available' }] });
    await del();
    const [adoption] = sfn.commandCalls(StartExecutionCommand);
    expect(adoption.args[0].input).toEqual(expect.objectContaining({ stateMachineArn: STATE_MACHINE, name: `${BASE_NAME}-adopt` }));
    expect(JSON.parse(adoption.args[0].input.input!).Adopt).toEqual({
      ImportTaskId: TASK,
      OutputTags: [
        { Key: 'team', Value: 'infra' },
        { Key: 'cdk-vm-import:stack-id', Value: STACK },
        { Key: 'cdk-vm-import:logical-id', Value: 'Image' },
        { Key: 'cdk-vm-import:import-task-id', Value: TASK },
      ],
    });
    expect(response().Status).toBe('SUCCESS');
  });

  test('a task that completed as it was cancelled is destroyed under DESTROY once the execution has tagged it, after stopping the execution', async () => {
    const order: string[] = [];
    sfn.on(DescribeExecutionCommand, { executionArn: BASE_ARN }).resolves(execution('RUNNING'));
    sfn.on(GetExecutionHistoryCommand).resolves(historyWith(TASK));
    sfn.on(StopExecutionCommand).callsFake(() => { order.push('stop'); return {}; });
    ec2.on(CancelImportTaskCommand).rejects(named('InvalidParameterValue', 'cannot cancel a completed task'));
    ec2.on(DescribeImportImageTasksCommand).resolves({
      ImportImageTasks: [{ ImportTaskId: TASK, Status: 'completed', ImageId: 'ami-1', SnapshotDetails: [{ SnapshotId: 'snap-1' }] }],
    });
    // Not yet tagged by the execution, then tagged.
    ec2.on(DescribeImagesCommand)
      .resolvesOnce({ Images: [{ ImageId: 'ami-1', Tags: [] }] })
      .resolves({ Images: [{ ImageId: 'ami-1', Tags: [{ Key: 'cdk-vm-import:stack-id', Value: STACK }] }] });
    ec2.on(DeregisterImageCommand).callsFake(() => { order.push('deregister'); return {}; });
    ec2.on(DeleteSnapshotCommand).callsFake(() => { order.push('delete-snapshot'); return {}; });
    await del({ ...START_PROPS, RemovalPolicy: 'destroy' });
    expect(ec2Module.sleep).toHaveBeenCalledTimes(1);
    expect(order).toEqual(['stop', 'deregister', 'delete-snapshot']);
    expect(response().Status).toBe('SUCCESS');
  });

  test('a refused cancel of a task still running fails the Delete with EC2\'s error', async () => {
    sfn.on(DescribeExecutionCommand, { executionArn: BASE_ARN }).resolves(execution('RUNNING'));
    sfn.on(GetExecutionHistoryCommand).resolves(historyWith(TASK));
    ec2.on(CancelImportTaskCommand).rejects(named('UnauthorizedOperation', 'You are not authorized to perform this operation.'));
    ec2.on(DescribeImportImageTasksCommand).resolves({ ImportImageTasks: [{ ImportTaskId: TASK, Status: 'active', Progress: '40' }] });
    await del();
    expect(sfn.commandCalls(StopExecutionCommand)).toHaveLength(0);
    expect(response()).toEqual(expect.objectContaining({ Status: 'FAILED', PhysicalResourceId: BASE_ARN, Reason: 'You are not authorized to perform this operation.' }));
  });

  test('a SUCCEEDED execution\'s AMI, never taken by a result resource, is destroyed under DESTROY', async () => {
    sfn.on(DescribeExecutionCommand, { executionArn: BASE_ARN }).resolves(execution('SUCCEEDED', COMPLETED));
    ec2.on(DescribeImagesCommand).resolves({ Images: [{ ImageId: 'ami-1', Tags: [{ Key: 'cdk-vm-import:stack-id', Value: STACK }] }] });
    await del({ ...START_PROPS, RemovalPolicy: 'destroy' });
    expect(ec2.commandCalls(DeregisterImageCommand)[0].args[0].input.ImageId).toBe('ami-1');
    expect(ec2.commandCalls(DeleteSnapshotCommand).map((c) => c.args[0].input.SnapshotId).sort()).toEqual(['snap-1', 'snap-2']);
    expect(sfn.commandCalls(StopExecutionCommand)).toHaveLength(0);
  });
});

describe('result resource', () => {
  const RESULT_PROPS = { ServiceToken: START_PROPS.ServiceToken, ExecutionArn: BASE_ARN, Tags: [{ Key: 'team', Value: 'infra' }], RemovalPolicy: 'retain' };
  const result = (requestType: 'Create' | 'Update' | 'Delete', extra: Partial<CloudFormationEvent> = {}, props: Record<string, unknown> = RESULT_PROPS) =>
    handler(cfnEvent('Custom::VmImageImportResult', requestType, props, extra));
  const OWNED = { ImageId: 'ami-1', Tags: [{ Key: 'cdk-vm-import:stack-id', Value: STACK }], BlockDeviceMappings: [{ Ebs: { SnapshotId: 'snap-1' } }, { Ebs: { SnapshotId: 'snap-3' } }] };

  test('Create returns ImageId, SnapshotIds and ImportTaskId with the AMI as physical ID', async () => {
    sfn.on(DescribeExecutionCommand, { executionArn: BASE_ARN }).resolves(execution('SUCCEEDED', COMPLETED));
    await result('Create');
    expect(response()).toEqual({
      Status: 'SUCCESS',
      StackId: STACK,
      RequestId: 'req-1',
      LogicalResourceId: 'ImageResult',
      PhysicalResourceId: 'ami-1',
      Data: { ImageId: 'ami-1', SnapshotIds: 'snap-1,snap-2', ImportTaskId: TASK },
    });
    expect(ec2.calls()).toHaveLength(0);
  });

  test('Create waits for an execution that has signalled but not yet ended', async () => {
    sfn.on(DescribeExecutionCommand, { executionArn: BASE_ARN })
      .resolvesOnce(execution('RUNNING'))
      .resolves(execution('SUCCEEDED', COMPLETED));
    await result('Create');
    expect(sfn.commandCalls(DescribeExecutionCommand)).toHaveLength(2);
    expect(ec2Module.sleep).toHaveBeenCalledTimes(1);
    expect(response().PhysicalResourceId).toBe('ami-1');
  });

  test.each([
    ['FAILED with a text cause', execution('FAILED', undefined, { error: 'VmImportFailed', cause: `VM import ${TASK} failed: ClientError: Unknown OS / Missing OS files.` }),
      `VM import ${TASK} failed: ClientError: Unknown OS / Missing OS files.`],
    ['FAILED with a Lambda error cause', execution('FAILED', undefined, { error: 'Error', cause: JSON.stringify({ errorMessage: 'The VM import could not start: Invalid S3 key' }) }),
      'The VM import could not start: Invalid S3 key'],
    ['SUCCEEDED with a failed outcome', execution('SUCCEEDED', { Outcome: 'failed', Reason: 'timed out' }), 'timed out'],
    ['ABORTED', execution('ABORTED'), /ended ABORTED before the import finished/],
  ])('Create fails with the execution\'s cause when it ended %s', async (_name, ended, reason) => {
    sfn.on(DescribeExecutionCommand, { executionArn: BASE_ARN }).resolves(ended);
    await result('Create');
    expect(response()).toEqual(expect.objectContaining({ Status: 'FAILED', Reason: typeof reason === 'string' ? reason : expect.stringMatching(reason), PhysicalResourceId: 'failed-req-1' }));
  });

  test('Create fails clearly when the execution is gone', async () => {
    await result('Create');
    expect(response()).toEqual(expect.objectContaining({ Status: 'FAILED', Reason: expect.stringMatching(/does not exist \(Step Functions keeps ended executions for 90 days\)/) }));
  });

  test('Update with only tags re-tags the AMI and its snapshots and drops removed keys', async () => {
    sfn.on(DescribeExecutionCommand, { executionArn: BASE_ARN }).resolves(execution('SUCCEEDED', COMPLETED));
    ec2.on(CreateTagsCommand).resolves({});
    ec2.on(DeleteTagsCommand).resolves({});
    await result('Update', {
      PhysicalResourceId: 'ami-1',
      OldResourceProperties: { ...RESULT_PROPS, Tags: [{ Key: 'team', Value: 'old' }, { Key: 'gone', Value: 'x' }] },
    }, { ...RESULT_PROPS, Tags: [{ Key: 'team', Value: 'infra' }, { Key: 'cost', Value: '42' }] });
    const resources = ['ami-1', 'snap-1', 'snap-2'];
    // Only the user's tags: the library's own stay as the engine set them, and this role could not set them anyway.
    expect(ec2.commandCalls(CreateTagsCommand).map((c) => c.args[0].input)).toEqual([
      { Resources: resources, Tags: [{ Key: 'team', Value: 'infra' }, { Key: 'cost', Value: '42' }] },
    ]);
    expect(ec2.commandCalls(DeleteTagsCommand).map((c) => c.args[0].input)).toEqual([{ Resources: resources, Tags: [{ Key: 'gone' }] }]);
    expect(response()).toEqual(expect.objectContaining({ Status: 'SUCCESS', PhysicalResourceId: 'ami-1' }));
    expect(sfn.commandCalls(StartExecutionCommand)).toHaveLength(0);
  });

  test('Update to another execution (a new import) reports it without re-tagging', async () => {
    sfn.on(DescribeExecutionCommand, { executionArn: FRESH_ARN }).resolves(execution('SUCCEEDED', { ...COMPLETED, ImageId: 'ami-2', SnapshotIds: ['snap-9'] }));
    await result('Update', { PhysicalResourceId: 'ami-1', OldResourceProperties: RESULT_PROPS }, { ...RESULT_PROPS, ExecutionArn: FRESH_ARN });
    expect(response()).toEqual(expect.objectContaining({ PhysicalResourceId: 'ami-2', Data: { ImageId: 'ami-2', SnapshotIds: 'snap-9', ImportTaskId: TASK } }));
    expect(ec2.commandCalls(CreateTagsCommand)).toHaveLength(0);
    expect(ec2.commandCalls(DeleteTagsCommand)).toHaveLength(0);
  });

  test('Delete with destroy deregisters, then deletes every snapshot, retrying InvalidSnapshot.InUse', async () => {
    sfn.on(DescribeExecutionCommand, { executionArn: BASE_ARN }).resolves(execution('SUCCEEDED', COMPLETED));
    ec2.on(DescribeImagesCommand, { ImageIds: ['ami-1'] }).resolves({ Images: [OWNED] });
    ec2.on(DeregisterImageCommand).resolves({});
    ec2.on(DeleteSnapshotCommand, { SnapshotId: 'snap-1' })
      .rejectsOnce(named('InvalidSnapshot.InUse', 'The snapshot snap-1 is currently in use by ami-1'))
      .resolves({});
    ec2.on(DeleteSnapshotCommand, { SnapshotId: 'snap-2' }).rejects(named('InvalidSnapshot.NotFound', 'already gone'));
    ec2.on(DeleteSnapshotCommand, { SnapshotId: 'snap-3' }).resolves({});
    await result('Delete', { PhysicalResourceId: 'ami-1' }, { ...RESULT_PROPS, RemovalPolicy: 'destroy' });
    const order = ec2.calls().map((c) => c.args[0].constructor.name).filter((n) => /Deregister|DeleteSnapshot/.test(n));
    expect(order).toEqual(['DeregisterImageCommand', 'DeleteSnapshotCommand', 'DeleteSnapshotCommand', 'DeleteSnapshotCommand', 'DeleteSnapshotCommand']);
    // The recorded snapshots and the AMI's own, snap-1 twice (in use, then deleted).
    expect(ec2.commandCalls(DeleteSnapshotCommand).map((c) => c.args[0].input.SnapshotId)).toEqual(['snap-1', 'snap-1', 'snap-2', 'snap-3']);
    expect(response()).toEqual(expect.objectContaining({ Status: 'SUCCESS', PhysicalResourceId: 'ami-1' }));
  });

  test('Delete with destroy refuses an AMI without this stack\'s tag', async () => {
    sfn.on(DescribeExecutionCommand, { executionArn: BASE_ARN }).resolves(execution('SUCCEEDED', COMPLETED));
    ec2.on(DescribeImagesCommand).resolves({ Images: [{ ...OWNED, Tags: [{ Key: 'cdk-vm-import:stack-id', Value: OTHER_STACK }] }] });
    await result('Delete', { PhysicalResourceId: 'ami-1' }, { ...RESULT_PROPS, RemovalPolicy: 'destroy' });
    expect(response()).toEqual(expect.objectContaining({
      Status: 'FAILED',
      PhysicalResourceId: 'ami-1',
      Reason: expect.stringMatching(/^The AMI ami-1 \(snapshots snap-1, snap-2, snap-3\) does not carry this stack's cdk-vm-import:stack-id tag/),
    }));
    expect(ec2.commandCalls(DeregisterImageCommand)).toHaveLength(0);
    expect(ec2.commandCalls(DeleteSnapshotCommand)).toHaveLength(0);
  });

  test('Delete with destroy of an AMI already removed by hand deletes the recorded snapshots and succeeds', async () => {
    sfn.on(DescribeExecutionCommand, { executionArn: BASE_ARN }).resolves(execution('SUCCEEDED', COMPLETED));
    ec2.on(DescribeImagesCommand).rejects(named('InvalidAMIID.NotFound', 'The image id [ami-1] does not exist'));
    ec2.on(DeleteSnapshotCommand).rejects(named('InvalidSnapshot.NotFound', 'gone'));
    await result('Delete', { PhysicalResourceId: 'ami-1' }, { ...RESULT_PROPS, RemovalPolicy: 'destroy' });
    expect(ec2.commandCalls(DeregisterImageCommand)).toHaveLength(0);
    expect(ec2.commandCalls(DeleteSnapshotCommand).map((c) => c.args[0].input.SnapshotId)).toEqual(['snap-1', 'snap-2']);
    expect(response().Status).toBe('SUCCESS');
  });

  test.each([
    ['RETAIN', 'retain', 'ami-1'],
    ['a result that never had an AMI', 'destroy', 'failed-req-0'],
  ])('Delete under %s touches nothing', async (_name, removal, physicalId) => {
    await result('Delete', { PhysicalResourceId: physicalId }, { ...RESULT_PROPS, RemovalPolicy: removal });
    expect(ec2.calls()).toHaveLength(0);
    expect(sfn.calls()).toHaveLength(0);
    expect(response()).toEqual(expect.objectContaining({ Status: 'SUCCESS', PhysicalResourceId: physicalId }));
  });
});

describe('state machine steps', () => {
  const EXECUTION_ARN = BASE_ARN;
  const { ServiceToken: _token, ...properties } = START_PROPS;
  const future = () => new Date(Date.now() + 3600_000).toISOString();
  const state = (extra: Partial<ExecutionState> = {}): ExecutionState => ({
    StackId: STACK,
    LogicalResourceId: 'Image',
    WaitConditionId: WAIT,
    ClientToken: clientToken(EXECUTION_ARN),
    Deadline: future(),
    PollIntervalSeconds: 30,
    Properties: properties,
    ...extra,
  });
  const step = (name: string, s: ExecutionState, extra: Partial<StepEvent> = {}) =>
    handler({ Step: name, State: s, ExecutionArn: EXECUTION_ARN, ...extra });
  const IAM_ERROR = named('InvalidParameter', 'The service role import-role provided does not exist or does not have sufficient permissions');

  afterEach(() => {
    // A step is not a custom resource: it never answers a ResponseURL.
    expect(responses).toHaveLength(0);
  });

  describe('start', () => {
    test('starts the import with the execution\'s client token and returns the output tags', async () => {
      ec2.on(ImportImageCommand).resolves({ ImportTaskId: TASK });
      sfn.on(DescribeExecutionCommand, { executionArn: EXECUTION_ARN }).resolves(execution('RUNNING'));
      await expect(step('start', state())).resolves.toEqual({
        Started: true,
        ImportTaskId: TASK,
        Attempts: 1,
        OutputTags: [
          { Key: 'team', Value: 'infra' },
          { Key: 'cdk-vm-import:stack-id', Value: STACK },
          { Key: 'cdk-vm-import:logical-id', Value: 'Image' },
          { Key: 'cdk-vm-import:import-task-id', Value: TASK },
        ],
      });
      const input = ec2.commandCalls(ImportImageCommand)[0].args[0].input;
      expect(input.ClientToken).toBe(clientToken(EXECUTION_ARN));
      expect(input.RoleName).toBe('import-role');
      expect(input.DiskContainers).toEqual([{ Format: 'VMDK', UserBucket: { S3Bucket: 'b', S3Key: 'k.vmdk' } }]);
      expect(input.TagSpecifications).toEqual([{ ResourceType: 'import-image-task', Tags: [{ Key: 'team', Value: 'infra' }, { Key: 'cdk-vm-import:stack-id', Value: STACK }, { Key: 'cdk-vm-import:execution', Value: BASE_NAME }] }]);
      expect(ec2.commandCalls(CancelImportTaskCommand)).toHaveLength(0);
    });

    test('cancels the task it started when the execution was stopped meanwhile', async () => {
      ec2.on(ImportImageCommand).resolves({ ImportTaskId: TASK });
      ec2.on(CancelImportTaskCommand).resolves({});
      sfn.on(DescribeExecutionCommand, { executionArn: EXECUTION_ARN }).resolves(execution('ABORTED'));
      await step('start', state());
      expect(ec2.commandCalls(CancelImportTaskCommand).map((c) => c.args[0].input.ImportTaskId)).toEqual([TASK]);
    });

    test.each([
      [0, 1, 15],
      [2, 3, 60],
      [9, 10, 300],
    ])('a quota error after %i refusals returns Started false (attempt %i, retry in %i s)', async (before, attempts, retry) => {
      ec2.on(ImportImageCommand).rejects(named('ResourceLimitExceeded', 'You have reached the limit of active import tasks'));
      await expect(step('start', state({ Import: { Started: false, Attempts: before } }))).resolves.toEqual({
        Started: false, Attempts: attempts, RetrySeconds: retry, Reason: 'You have reached the limit of active import tasks',
      });
    });

    test('a quota error past the deadline fails with what to do', async () => {
      ec2.on(ImportImageCommand).rejects(named('ResourceLimitExceeded', 'You have reached the limit of active import tasks'));
      await expect(step('start', state({ Deadline: new Date(Date.now() - 1000).toISOString() })))
        .rejects.toThrow(/^EC2 kept refusing to start the import until its timeout ran out: .*Too many imports run at once/);
    });

    test('retries while the new role propagates through IAM', async () => {
      ec2.on(ImportImageCommand).rejects(IAM_ERROR);
      await expect(step('start', state({ Import: { Started: false, Attempts: 1 } }))).resolves.toEqual({
        Started: false, Attempts: 2, RetrySeconds: 30, Reason: IAM_ERROR.message,
      });
    });

    test('gives up on the propagation error after its budget with what to check', async () => {
      ec2.on(ImportImageCommand).rejects(IAM_ERROR);
      // 15 + 30 + 60 + 120 = 225 s waited; the next wait passes the 300-second budget.
      await expect(step('start', state({ Import: { Started: false, Attempts: 4 } })))
        .rejects.toThrow(/^ImportImage kept failing for 225 s: .*Check that the role 'import-role' exists, trusts vmie\.amazonaws\.com with sts:ExternalId 'vmimport'/);
      await expect(step('start', state({ Import: { Started: false, Attempts: 3 } }))).resolves.toEqual(expect.objectContaining({ Started: false }));
    });

    test('the propagation budget can be set by VM_IMPORT_IAM_RETRY_SECONDS', async () => {
      process.env.VM_IMPORT_IAM_RETRY_SECONDS = '10';
      ec2.on(ImportImageCommand).rejects(IAM_ERROR);
      await expect(step('start', state())).rejects.toThrow(/kept failing for 0 s/);
    });

    test('any other ImportImage error fails at once', async () => {
      ec2.on(ImportImageCommand).rejects(named('InvalidParameter', 'Invalid S3 key'));
      await expect(step('start', state())).rejects.toThrow('Invalid S3 key');
      expect(ec2.commandCalls(ImportImageCommand)).toHaveLength(1);
    });
  });

  describe('timeout', () => {
    const last = { ImportTaskId: TASK, Status: 'active', Progress: '57', StatusMessage: 'booting' };
    const timedOut = () => state({ Import: { Started: true, ImportTaskId: TASK }, Poll: { Result: { ImportImageTasks: [last] } } });

    test('cancels the task and reports its last progress', async () => {
      ec2.on(CancelImportTaskCommand).resolves({});
      await expect(step('timeout', timedOut())).resolves.toEqual({
        Outcome: 'timed-out', Result: { ImportImageTasks: [last] }, Reason: timeoutReason(TASK, 600, '57', 'booting'),
      });
      expect(ec2.commandCalls(CancelImportTaskCommand).map((c) => c.args[0].input)).toEqual([{ ImportTaskId: TASK, CancelReason: 'cdk-vm-import: wait of 600 s exceeded' }]);
    });

    test('a refused cancel of a task that completed meanwhile gives Outcome completed', async () => {
      const done = { ImportTaskId: TASK, Status: 'completed', ImageId: 'ami-1', SnapshotDetails: [{ SnapshotId: 'snap-1' }] };
      ec2.on(CancelImportTaskCommand).rejects(named('InvalidParameterValue', 'The import task cannot be cancelled'));
      ec2.on(DescribeImportImageTasksCommand).resolves({ ImportImageTasks: [done] });
      await expect(step('timeout', timedOut())).resolves.toEqual({ Outcome: 'completed', Result: { ImportImageTasks: [done] } });
    });

    test('a refused cancel of a task that failed meanwhile gives Outcome failed with EC2\'s message', async () => {
      const failed = { ImportTaskId: TASK, Status: 'deleted', StatusMessage: 'ClientError: Unknown OS / Missing OS files.' };
      ec2.on(CancelImportTaskCommand).rejects(named('InvalidParameterValue', 'The import task cannot be cancelled'));
      ec2.on(DescribeImportImageTasksCommand).resolves({ ImportImageTasks: [failed] });
      await expect(step('timeout', timedOut())).resolves.toEqual({
        Outcome: 'failed', Result: { ImportImageTasks: [failed] }, Reason: expect.stringMatching(/^VM import import-ami-0123456789abcdef0 failed: ClientError: Unknown OS/),
      });
    });

    test('a refused cancel of a task still active fails the step', async () => {
      ec2.on(CancelImportTaskCommand).rejects(named('UnauthorizedOperation', 'not allowed'));
      ec2.on(DescribeImportImageTasksCommand).resolves({ ImportImageTasks: [last] });
      await expect(step('timeout', timedOut())).rejects.toThrow('not allowed');
    });
  });

  describe('signal', () => {
    const ended = () => state({
      Import: { Started: true, ImportTaskId: TASK },
      Poll: { Result: { ImportImageTasks: [{ ImportTaskId: TASK, Status: 'completed', ImageId: 'ami-1', SnapshotDetails: [{ SnapshotId: 'snap-1' }] }] } },
    });

    test('signals the WaitCondition with SUCCESS and returns the outcome', async () => {
      cfn.on(SignalResourceCommand).resolves({});
      await expect(step('signal', ended(), { Outcome: 'completed' })).resolves.toEqual({
        Outcome: 'completed', ImportTaskId: TASK, ImageId: 'ami-1', SnapshotIds: ['snap-1'],
      });
      expect(cfn.commandCalls(SignalResourceCommand).map((c) => c.args[0].input)).toEqual([
        { StackName: STACK, LogicalResourceId: WAIT, UniqueId: TASK, Status: 'SUCCESS' },
      ]);
    });

    test('signals SUCCESS on a failure too: the result resource reports it', async () => {
      cfn.on(SignalResourceCommand).resolves({});
      await expect(step('signal', state({ Error: { Error: 'States.TaskFailed', Cause: 'Invalid S3 key' } }), { Outcome: 'error' })).resolves.toEqual({
        Outcome: 'failed', ImportTaskId: undefined, Reason: 'The VM import could not start: Invalid S3 key',
      });
      expect(cfn.commandCalls(SignalResourceCommand)[0].args[0].input).toEqual({ StackName: STACK, LogicalResourceId: WAIT, UniqueId: 'not-started', Status: 'SUCCESS' });
    });

    test('a WaitCondition not created yet while its stack is still changing is an error named WaitConditionNotReady (the state machine retries it)', async () => {
      cfn.on(DescribeStackResourceCommand).rejects(named('ValidationError', `Resource ${WAIT} does not exist for stack ${STACK}`));
      cfn.on(DescribeStacksCommand, { StackName: STACK }).resolves({ Stacks: [{ StackName: 's', StackStatus: 'UPDATE_IN_PROGRESS', CreationTime: new Date() }] });
      const error = await step('signal', ended(), { Outcome: 'completed' }).catch((e: Error) => e);
      expect(error).toBeInstanceOf(Error);
      expect((error as Error).name).toBe('WaitConditionNotReady');
      expect((error as Error).message).toBe(`The WaitCondition ${WAIT} does not exist yet and its stack is still changing.`);
      expect(cfn.commandCalls(SignalResourceCommand)).toHaveLength(0);
    });

    test.each<[string, () => void]>([
      ['the WaitCondition already signalled', () => {
        cfn.on(DescribeStackResourceCommand).resolves({ StackResourceDetail: { ResourceStatus: 'CREATE_COMPLETE' } as never });
      }],
      ['the WaitCondition absent and the stack no longer changing', () => {
        cfn.on(DescribeStackResourceCommand).rejects(named('ValidationError', `Resource ${WAIT} does not exist for stack ${STACK}`));
        cfn.on(DescribeStacksCommand).resolves({ Stacks: [{ StackName: 's', StackStatus: 'UPDATE_ROLLBACK_COMPLETE', CreationTime: new Date() }] });
      }],
      ['the stack gone', () => {
        cfn.on(DescribeStackResourceCommand).rejects(named('ValidationError', `Stack with id ${STACK} does not exist`));
        cfn.on(DescribeStacksCommand).rejects(named('ValidationError', `Stack with id ${STACK} does not exist`));
      }],
    ])('%s: not signalled, and not an error', async (_name, arrange) => {
      arrange();
      await expect(step('signal', ended(), { Outcome: 'completed' })).resolves.toEqual(expect.objectContaining({ Outcome: 'completed' }));
      expect(cfn.commandCalls(SignalResourceCommand)).toHaveLength(0);
    });

    test("a refused signal is judged by CloudFormation's state afterwards, not by the refusal's wording", async () => {
      // CloudFormation's words for a stack that stopped changing as the signal was sent.
      cfn.on(SignalResourceCommand).rejects(named('ValidationError', `Stack ${STACK} is in UPDATE_COMPLETE state and cannot be signaled`));
      cfn.on(DescribeStackResourceCommand)
        .resolvesOnce({ StackResourceDetail: { ResourceStatus: 'CREATE_IN_PROGRESS' } as never })
        .resolves({ StackResourceDetail: { ResourceStatus: 'CREATE_FAILED' } as never });
      await expect(step('signal', ended(), { Outcome: 'completed' })).resolves.toEqual(expect.objectContaining({ Outcome: 'completed' }));
      expect(cfn.commandCalls(DescribeStackResourceCommand)).toHaveLength(2);
    });

    test('a refused signal while the WaitCondition still waits fails the step (the state machine retries it)', async () => {
      cfn.on(SignalResourceCommand).rejects(named('ValidationError', 'some wording nobody documented'));
      await expect(step('signal', ended(), { Outcome: 'completed' })).rejects.toThrow('some wording nobody documented');
    });

    test('access denied on DescribeStackResource is an error, never taken for a WaitCondition that is gone', async () => {
      cfn.on(DescribeStackResourceCommand).rejects(named('AccessDenied', 'User is not authorized to perform cloudformation:DescribeStackResource'));
      await expect(step('signal', ended(), { Outcome: 'completed' })).rejects.toThrow('not authorized');
      expect(cfn.commandCalls(SignalResourceCommand)).toHaveLength(0);
    });

    test('any other SignalResource error fails the step', async () => {
      cfn.on(SignalResourceCommand).rejects(named('AccessDenied', 'User is not authorized to perform cloudformation:SignalResource'));
      await expect(step('signal', ended(), { Outcome: 'completed' })).rejects.toThrow('not authorized');
    });

    test('an execution that reuses an earlier one signals with that execution\'s AMI, read from Step Functions', async () => {
      cfn.on(SignalResourceCommand).resolves({});
      sfn.on(DescribeExecutionCommand, { executionArn: BASE_ARN }).resolves(execution('SUCCEEDED', COMPLETED));
      await expect(step('signal', state({ ReuseExecutionArn: BASE_ARN }), { Outcome: 'completed' })).resolves.toEqual(COMPLETED);
    });

    test('an execution that names one of another state machine to reuse gets nothing from it', async () => {
      cfn.on(SignalResourceCommand).resolves({});
      const foreign = 'arn:aws:states:us-east-1:123456789012:execution:Other-xyz:vmimport-1';
      sfn.on(DescribeExecutionCommand, { executionArn: foreign }).resolves(execution('SUCCEEDED', COMPLETED));
      await expect(step('signal', state({ ReuseExecutionArn: foreign }), { Outcome: 'completed' })).resolves.toEqual(expect.objectContaining({ Outcome: 'failed' }));
      expect(sfn.commandCalls(DescribeExecutionCommand)).toHaveLength(0);
    });
  });

  describe('EBS encryption by default', () => {
    test('an unencrypted import where EBS encryption by default uses a customer managed key is refused before ImportImage', async () => {
      ec2.on(GetEbsEncryptionByDefaultCommand).resolves({ EbsEncryptionByDefault: true });
      ec2.on(GetEbsDefaultKmsKeyIdCommand).resolves({ KmsKeyId: 'arn:aws:kms:us-east-1:123456789012:key/abcd' });
      await expect(step('start', state({ Properties: { ...state().Properties, Encrypted: 'false' } })))
        .rejects.toThrow(/^EBS encryption by default is on in this account and Region with the key arn:aws:kms:us-east-1:123456789012:key\/abcd/);
      expect(ec2.commandCalls(ImportImageCommand)).toHaveLength(0);
    });

    test('an encrypted import does not ask', async () => {
      ec2.on(ImportImageCommand).resolves({ ImportTaskId: TASK });
      sfn.on(DescribeExecutionCommand, { executionArn: EXECUTION_ARN }).resolves(execution('RUNNING'));
      await step('start', state({ Properties: { ...state().Properties, Encrypted: 'true' } }));
      expect(ec2.commandCalls(GetEbsEncryptionByDefaultCommand)).toHaveLength(0);
    });
  });

  test('an unknown step is an error', async () => {
    await expect(step('poll', state())).rejects.toThrow('Unknown step "poll".');
  });
});
