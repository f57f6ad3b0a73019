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

/** The rule-ID prefixes of the cdk-nag packs besides AwsSolutions that this library answers. */
export enum NagPack {
  NIST_800_53_R5 = 'NIST.800.53.R5',
  HIPAA_SECURITY = 'HIPAA.Security',
  PCI_DSS_321 = 'PCI.DSS.321',
  SERVERLESS = 'Serverless',
}

/** The packs that check compliance (not Serverless best practice). */
export const COMPLIANCE_PACKS = [NagPack.NIST_800_53_R5, NagPack.HIPAA_SECURITY, NagPack.PCI_DSS_321];

/** Accepts one rule, as each of the given packs names it (`<pack>-<rule>`), for one reason. */
export function acceptInPacks(construct: IConstruct, rule: string, packs: NagPack[], reason: string): void {
  acceptNagFindings(construct, packs.map((pack) => ({ id: `${pack}-${rule}`, reason })));
}

/** The findings a disk image bucket this library creates accepts. */
export function acceptBucketFindings(bucket: IConstruct, hasAccessLogs: boolean): void {
  if (!hasAccessLogs) {
    const reason = "Server access logs are opt-in ('accessLogsBucket'): the bucket only holds disk images that VM Import reads, and CloudTrail records the import.";
    acceptNagFindings(bucket, [{ id: 'AwsSolutions-S1', reason }]);
    acceptInPacks(bucket, 'S3BucketLoggingEnabled', COMPLIANCE_PACKS, reason);
  }
  acceptInPacks(bucket, 'S3BucketReplicationEnabled', COMPLIANCE_PACKS,
    'The bucket holds disk images on their way into an AMI, which does not depend on them once imported: they are versioned here ' +
    'and can be uploaded again; replicating them would need a second bucket in another Region to keep copies nothing reads.');
}
