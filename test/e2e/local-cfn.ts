/**
 * A local CloudFormation endpoint (query protocol) on 127.0.0.1 for the calls the engine
 * makes, `SignalResource`, `DescribeStackResource` and `DescribeStacks`, and a receiver for
 * custom resource responses (the pre-signed ResponseURL's PUT). A WaitCondition exists only
 * once the test says CloudFormation created it (CREATE_IN_PROGRESS until signalled, then
 * CREATE_COMPLETE); a stack is CREATE_IN_PROGRESS until the test sets its status. Refusals
 * are ValidationErrors worded as CloudFormation words them where that is known (a stack no
 * longer in progress: "Stack arn:… is in UPDATE_COMPLETE state and cannot be signaled"); the
 * engine reads only their code and asks for the state itself.
 */
import * as http from 'http';
import { AddressInfo } from 'net';
import type { CustomResourceResponse } from '../../lambda/cloudformation';

export interface Signal {
  readonly stackName: string;
  readonly logicalResourceId: string;
  readonly uniqueId: string;
  readonly status: string;
}

/** What a custom resource answers CloudFormation: the handler's own type. */
export type { CustomResourceResponse };

export interface ReceivedResponse {
  readonly path: string;
  readonly body: CustomResourceResponse;
  readonly bytes: number;
  readonly contentType?: string;
}

export class LocalCloudFormation {
  public static async start(): Promise<LocalCloudFormation> {
    const cfn = new LocalCloudFormation();
    await new Promise<void>((resolve) => cfn.server.listen(0, '127.0.0.1', resolve));
    return cfn;
  }

  public readonly signals: Signal[] = [];
  /** SignalResource calls received, refused ones included. */
  public signalAttempts = 0;
  /** Custom resource responses received, with the raw body's size in bytes. */
  public readonly responses: ReceivedResponse[] = [];
  /** `${stackId}|${logicalId}` of the WaitConditions that exist, with their ResourceStatus. */
  public readonly resources = new Map<string, string>();
  /** Stack statuses by stack ID (a stack absent here is CREATE_IN_PROGRESS; `null`: deleted). */
  public readonly stacks = new Map<string, string | null>();
  /** DescribeStackResource and DescribeStacks calls received. */
  public describeCalls = 0;
  /** The next this many requests (of any action) are answered with a Throttling error. */
  public throttleNext = 0;
  private readonly server: http.Server;

  private constructor() {
    this.server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => { body += chunk.toString('utf8'); });
      req.on('end', () => {
        if (req.method === 'PUT') {
          this.responses.push({ path: req.url ?? '', body: JSON.parse(body) as CustomResourceResponse, bytes: Buffer.byteLength(body), contentType: req.headers['content-type'] });
          res.writeHead(200);
          res.end();
          return;
        }
        this.query(new URLSearchParams(body), res);
      });
    });
  }

  public get endpoint(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** A ResponseURL on this server, shaped like CloudFormation's pre-signed one. */
  public responseUrl(requestId: string): string {
    return `${this.endpoint}/cloudformation-custom-resource-response/${requestId}?X-Amz-Signature=secret-${requestId}`;
  }

  public responseTo(requestId: string): CustomResourceResponse | undefined {
    return this.responses.find((r) => r.body.RequestId === requestId)?.body;
  }

  /** CloudFormation creates the WaitCondition: from now on it takes a signal. */
  public createWaitCondition(stackId: string, logicalId: string): void {
    this.resources.set(`${stackId}|${logicalId}`, 'CREATE_IN_PROGRESS');
  }

  /** A WaitCondition of the same logical ID made anew (its resource was replaced). */
  public resetWaitCondition(stackId: string, logicalId: string): void {
    const key = `${stackId}|${logicalId}`;
    this.signals.splice(0, this.signals.length, ...this.signals.filter((s) => `${s.stackName}|${s.logicalResourceId}` !== key));
    this.resources.set(key, 'CREATE_IN_PROGRESS');
  }

  /** CloudFormation deleted the WaitCondition (a cleanup, a rollback, the stack's deletion). */
  public deleteWaitCondition(stackId: string, logicalId: string): void {
    this.resources.delete(`${stackId}|${logicalId}`);
  }

  /** The WaitCondition's ResourceStatus, or undefined when it does not exist. */
  public waitConditionStatus(stackId: string, logicalId: string): string | undefined {
    return this.resources.get(`${stackId}|${logicalId}`);
  }

  /** The stack's status from now on (null: the stack is deleted). */
  public setStackStatus(stackId: string, status: string | null): void {
    this.stacks.set(stackId, status);
  }

  public stackStatus(stackId: string): string | null {
    return this.stacks.has(stackId) ? this.stacks.get(stackId)! : 'CREATE_IN_PROGRESS';
  }

  public signalsTo(logicalId: string): Signal[] {
    return this.signals.filter((s) => s.logicalResourceId === logicalId);
  }

  public async stop(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private query(params: URLSearchParams, res: http.ServerResponse): void {
    const ns = 'http://cloudformation.amazonaws.com/doc/2010-05-15/';
    const fail = (message: string, code = 'ValidationError', status = 400) => {
      res.writeHead(status, { 'content-type': 'text/xml' });
      res.end(`<ErrorResponse xmlns="${ns}"><Error><Type>Sender</Type><Code>${code}</Code><Message>${message}</Message></Error><RequestId>r</RequestId></ErrorResponse>`);
    };
    const ok = (action: string, result: string) => {
      res.writeHead(200, { 'content-type': 'text/xml' });
      res.end(`<${action}Response xmlns="${ns}">${result ? `<${action}Result>${result}</${action}Result>` : ''}<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></${action}Response>`);
    };
    if (this.throttleNext > 0) {
      this.throttleNext -= 1;
      fail('Rate exceeded', 'Throttling');
      return;
    }
    const action = params.get('Action');
    const stackName = params.get('StackName') ?? '';
    const logicalId = params.get('LogicalResourceId') ?? '';
    const stackStatus = this.stackStatus(stackName);
    const key = `${stackName}|${logicalId}`;
    switch (action) {
      case 'DescribeStacks':
        this.describeCalls += 1;
        if (stackStatus === null) {
          fail(`Stack with id ${stackName} does not exist`);
          return;
        }
        ok(action, `<Stacks><member><StackId>${stackName}</StackId><StackName>${stackName.split('/')[1] ?? stackName}</StackName>` +
          `<CreationTime>2026-01-01T00:00:00.000Z</CreationTime><StackStatus>${stackStatus}</StackStatus></member></Stacks>`);
        return;
      case 'DescribeStackResource': {
        this.describeCalls += 1;
        const status = this.resources.get(key);
        if (stackStatus === null) {
          fail(`Stack with id ${stackName} does not exist`);
          return;
        }
        if (!status) {
          fail(`Resource ${logicalId} does not exist for stack ${stackName}`);
          return;
        }
        ok(action, `<StackResourceDetail><StackName>${stackName}</StackName><StackId>${stackName}</StackId><LogicalResourceId>${logicalId}</LogicalResourceId>` +
          '<ResourceType>AWS::CloudFormation::WaitCondition</ResourceType><LastUpdatedTimestamp>2026-01-01T00:00:00.000Z</LastUpdatedTimestamp>' +
          `<ResourceStatus>${status}</ResourceStatus></StackResourceDetail>`);
        return;
      }
      case 'SignalResource':
        break;
      default:
        fail(`Unsupported action ${action}`);
        return;
    }
    this.signalAttempts += 1;
    const signal: Signal = { stackName, logicalResourceId: logicalId, uniqueId: params.get('UniqueId') ?? '', status: params.get('Status') ?? '' };
    if (stackStatus === null) {
      fail(`Stack with id ${stackName} does not exist`);
      return;
    }
    if (!stackStatus.endsWith('_IN_PROGRESS')) {
      fail(`Stack ${stackName} is in ${stackStatus} state and cannot be signaled`);
      return;
    }
    const status = this.resources.get(key);
    if (!status) {
      fail(`Resource ${logicalId} does not exist for stack ${stackName}`);
      return;
    }
    if (status !== 'CREATE_IN_PROGRESS') {
      fail(`Resource ${logicalId} is in ${status} state and cannot be signaled`);
      return;
    }
    this.signals.push(signal);
    this.resources.set(key, 'CREATE_COMPLETE');
    ok('SignalResource', '');
  }
}
