import { CfnResource } from 'aws-cdk-lib';
import { IConstruct } from 'constructs';

/** A cdk-nag finding this library accepts on one resource, with the reason. */
export interface NagAcceptance {
  readonly id: string;
  readonly reason: string;
  /** The findings of the rule it applies to, such as `Resource::*`. */
  readonly appliesTo?: string[];
}

/**
 * Records accepted cdk-nag findings in the resource's `cdk_nag` metadata, the format cdk-nag
 * reads, so this library needs no dependency on cdk-nag.
 */
export function acceptNagFindings(construct: IConstruct, acceptances: NagAcceptance[]): void {
  const resource = construct instanceof CfnResource ? construct : construct.node.defaultChild;
  if (!(resource instanceof CfnResource)) {
    throw new Error(`${construct.node.path} has no CloudFormation resource to record cdk-nag acceptances on.`);
  }
  const existing = resource.getMetadata('cdk_nag') ?? {};
  const rules = acceptances.map((a) => ({ id: a.id, reason: a.reason, ...(a.appliesTo ? { applies_to: a.appliesTo } : {}) }));
  resource.addMetadata('cdk_nag', { ...existing, rules_to_suppress: [...(existing.rules_to_suppress ?? []), ...rules] });
}
