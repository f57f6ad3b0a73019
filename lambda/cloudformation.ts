/**
 * The one module that talks to CloudFormation: the custom resource response, PUT to the
 * request's pre-signed ResponseURL (which is never logged), and the WaitCondition signal.
 */
import * as http from 'http';
import * as https from 'https';
import { CloudFormationClient, SignalResourceCommand } from '@aws-sdk/client-cloudformation';

let client: CloudFormationClient | undefined;

function cloudFormation(): CloudFormationClient {
  client ??= new CloudFormationClient({ maxAttempts: 8, retryMode: 'standard' });
  return client;
}

/** Signals a WaitCondition's creation policy with SUCCESS. */
export async function signalSuccess(stackId: string, logicalResourceId: string, uniqueId: string): Promise<void> {
  await cloudFormation().send(new SignalResourceCommand({
    StackName: stackId, LogicalResourceId: logicalResourceId, UniqueId: uniqueId, Status: 'SUCCESS',
  }));
}

/** What a custom resource answers CloudFormation. */
export interface CustomResourceResponse {
  readonly Status: 'SUCCESS' | 'FAILED';
  readonly Reason?: string;
  readonly PhysicalResourceId: string;
  readonly StackId: string;
  readonly RequestId: string;
  readonly LogicalResourceId: string;
  readonly Data?: Record<string, string>;
}

/** PUTs the response to the pre-signed URL, retrying network errors a few times. */
export async function sendResponse(responseUrl: string, response: CustomResourceResponse): Promise<void> {
  const body = JSON.stringify(response);
  for (let attempt = 1; ; attempt++) {
    try {
      await put(responseUrl, body);
      return;
    } catch (error) {
      if (attempt >= 5) {
        throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, 500 * 2 ** attempt));
    }
  }
}

function put(responseUrl: string, body: string): Promise<void> {
  const url = new URL(responseUrl);
  const transport = url.protocol === 'http:' ? http : https;
  return new Promise((resolve, reject) => {
    const request = transport.request(url, {
      method: 'PUT',
      // The pre-signed URL is signed for an empty content type.
      headers: { 'content-type': '', 'content-length': Buffer.byteLength(body) },
    }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode && res.statusCode < 300
        ? resolve()
        : reject(new Error(`the response URL answered HTTP ${res.statusCode}`))));
    });
    request.on('error', reject);
    request.end(body);
  });
}
