/**
 * The engine's one function. CloudFormation invokes it for the two custom resources of an
 * import (it answers through the request's pre-signed ResponseURL, which is never logged);
 * the state machine invokes it for its Lambda steps. The decisions live in ./decisions,
 * the AWS calls in ./ec2, ./sfn and ./cloudformation.
 */
import * as cfn from './cloudformation';
import { truncate } from './decisions';
import { log } from './log';
import { CustomResourceEvent, resultResource, startResource } from './resources';
import { runStep, StepEvent } from './steps';
import { RESULT_RESOURCE_TYPE } from '../src/private/contract';

export type { CustomResourceEvent } from './resources';
export type { StepEvent } from './steps';

/** A custom resource request as CloudFormation delivers it. */
export interface CloudFormationEvent extends CustomResourceEvent {
  readonly ResponseURL: string;
  readonly ServiceToken: string;
}

function isCloudFormationEvent(event: unknown): event is CloudFormationEvent {
  return typeof event === 'object' && event !== null && 'RequestType' in event && 'ResponseURL' in event;
}

export async function handler(event: CloudFormationEvent | StepEvent): Promise<unknown> {
  if (!isCloudFormationEvent(event)) {
    return runStep(event);
  }
  log({
    message: 'request',
    requestType: event.RequestType,
    resourceType: event.ResourceType,
    logicalResourceId: event.LogicalResourceId,
    physicalResourceId: event.PhysicalResourceId,
  });
  let answer: cfn.CustomResourceResponse;
  const base = { StackId: event.StackId, RequestId: event.RequestId, LogicalResourceId: event.LogicalResourceId };
  try {
    const result = event.ResourceType === RESULT_RESOURCE_TYPE ? await resultResource(event) : await startResource(event);
    answer = { ...base, Status: 'SUCCESS', PhysicalResourceId: result.PhysicalResourceId, Data: result.Data };
  } catch (error) {
    const reason = truncate(error instanceof Error ? error.message : String(error));
    log({ message: 'request failed', reason });
    // A Create that fails before it has an ID of its own gets one that names nothing.
    answer = { ...base, Status: 'FAILED', Reason: reason, PhysicalResourceId: event.PhysicalResourceId ?? `failed-${event.RequestId}` };
  }
  await cfn.sendResponse(event.ResponseURL, answer);
  log({ message: 'response sent', status: answer.Status, physicalResourceId: answer.PhysicalResourceId });
  return answer;
}
