/**
 * The one module that talks to CloudFormation: the custom resource response, PUT to the
 * request's pre-signed ResponseURL (which is never logged), the WaitCondition signal, and
 * what state CloudFormation says a WaitCondition and its stack are in.
 */
import * as http from 'http';
import * as https from 'https';
import {
  CloudFormationClient,
  DescribeStackResourceCommand,
  DescribeStacksCommand,
  SignalResourceCommand,
} from '@aws-sdk/client-cloudformation';
import { signalTarget, SignalTarget } from './decisions';

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

/**
 * The resource's status as DescribeStackResource reports it, or undefined when
 * CloudFormation does not know it (a resource not created yet, or gone): then the stack's
 * own status decides (see waitConditionState).
 */
export async function resourceStatus(stackId: string, logicalResourceId: string): Promise<string | undefined> {
  try {
    const out = await cloudFormation().send(new DescribeStackResourceCommand({ StackName: stackId, LogicalResourceId: logicalResourceId }));
    return out.StackResourceDetail?.ResourceStatus;
  } catch (error) {
    if (isNotKnown(error)) {
      return undefined;
    }
    throw error;
  }
}

/** The stack's status, or undefined when CloudFormation no longer knows the stack. */
export async function stackStatus(stackId: string): Promise<string | undefined> {
  try {
    const out = await cloudFormation().send(new DescribeStacksCommand({ StackName: stackId }));
    const status = out.Stacks?.[0]?.StackStatus;
    return status === 'DELETE_COMPLETE' ? undefined : status;
  } catch (error) {
    if (isNotKnown(error)) {
      return undefined;
    }
    throw error;
  }
}

/** Whether the WaitCondition waits for a signal, may still be created, or no longer waits: CloudFormation's own answer. */
export async function waitConditionState(stackId: string, logicalResourceId: string): Promise<SignalTarget> {
  const status = await resourceStatus(stackId, logicalResourceId);
  return signalTarget(status, status === undefined ? await stackStatus(stackId) : undefined);
}

/**
 * CloudFormation's answer for a stack or resource it does not know: the error code
 * ValidationError, whatever its message says. Access denied, throttling and the rest are
 * thrown, so that a step retries them rather than take them for "gone".
 */
function isNotKnown(error: unknown): boolean {
  return error instanceof Error && error.name === 'ValidationError';
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
