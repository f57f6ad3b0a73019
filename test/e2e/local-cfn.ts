/**
 * A local CloudFormation endpoint (query protocol) on 127.0.0.1 for the one call the
 * engine makes, `SignalResource`, and a receiver for custom resource responses (the
 * pre-signed ResponseURL's PUT). A WaitCondition exists only once the test says
 * CloudFormation created it; signalling one that does not exist (yet) is an error, as is
 * signalling one that no longer waits.
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
  /** `${stackId}|${logicalId}` of WaitConditions in CREATE_IN_PROGRESS. */
  private readonly waiting = new Set<string>();
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
    this.waiting.add(`${stackId}|${logicalId}`);
  }

  /** A WaitCondition of the same logical ID made anew (its resource was replaced). */
  public resetWaitCondition(stackId: string, logicalId: string): void {
    const key = `${stackId}|${logicalId}`;
    this.signals.splice(0, this.signals.length, ...this.signals.filter((s) => `${s.stackName}|${s.logicalResourceId}` !== key));
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
    const fail = (message: string) => {
      res.writeHead(400, { 'content-type': 'text/xml' });
      res.end(`<ErrorResponse xmlns="${ns}"><Error><Type>Sender</Type><Code>ValidationError</Code><Message>${message}</Message></Error><RequestId>r</RequestId></ErrorResponse>`);
    };
    if (params.get('Action') !== 'SignalResource') {
      fail(`Unsupported action ${params.get('Action')}`);
      return;
    }
    this.signalAttempts += 1;
    const signal: Signal = {
      stackName: params.get('StackName') ?? '',
      logicalResourceId: params.get('LogicalResourceId') ?? '',
      uniqueId: params.get('UniqueId') ?? '',
      status: params.get('Status') ?? '',
    };
    const key = `${signal.stackName}|${signal.logicalResourceId}`;
    if (!this.waiting.has(key)) {
      fail(`Resource ${signal.logicalResourceId} does not exist for stack ${signal.stackName}`);
      return;
    }
    if (this.signals.some((s) => `${s.stackName}|${s.logicalResourceId}` === key)) {
      fail(`Resource ${signal.logicalResourceId} is not in CREATE_IN_PROGRESS state`);
      return;
    }
    this.signals.push(signal);
    res.writeHead(200, { 'content-type': 'text/xml' });
    res.end(`<SignalResourceResponse xmlns="${ns}"><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></SignalResourceResponse>`);
  }
}
