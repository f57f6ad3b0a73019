/**
 * The settings of the stack-wide import engine that a `VmImageImport` passes on: where
 * its function runs and which key encrypts its log group. The engine is one per stack, so
 * every import of a stack must give the same ones.
 */
import { Stack, Token } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';

/** What configures the engine. */
export interface EngineSettings {
  readonly vpc?: ec2.IVpc;
  readonly vpcSubnets?: ec2.SubnetSelection;
  readonly securityGroups?: ec2.ISecurityGroup[];
  readonly logEncryptionKey?: kms.IKey;
}

/** The settings' names, in the order a message lists them. */
const SETTINGS: Array<keyof EngineSettings> = ['vpc', 'vpcSubnets', 'securityGroups', 'logEncryptionKey'];

/** Checks the settings one import gives, before the engine is created or reused. */
export function validateEngineSettings(scope: Construct, settings: EngineSettings): void {
  if (!settings.vpc) {
    for (const prop of ['vpcSubnets', 'securityGroups'] as const) {
      if (settings[prop] !== undefined) {
        throw new Error(`'${prop}' is set but 'vpc' is not: it places the engine's function in a VPC. Set 'vpc' too, or remove '${prop}'.`);
      }
    }
  }
  if (settings.securityGroups !== undefined && settings.securityGroups.length === 0) {
    throw new Error("'securityGroups' is an empty list: give at least one security group, or leave it unset for one that allows only outbound HTTPS.");
  }
  const region = Stack.of(scope).region;
  for (const prop of ['vpc', 'logEncryptionKey'] as const) {
    const resource = settings[prop];
    const other = resource?.env.region;
    if (other && !Token.isUnresolved(other) && !Token.isUnresolved(region) && other !== region) {
      throw new Error(`'${prop}' is in Region ${other} but the stack deploys to ${region}: ` +
        `${prop === 'vpc' ? 'a Lambda function runs in a VPC' : 'CloudWatch Logs encrypts a log group with a key'} of its own Region. Use one in ${region}.`);
    }
  }
}

/**
 * The first setting in which two imports differ, or undefined when they agree. Resources
 * are compared by identity; a subnet selection by each of its fields, so that the same
 * `{ subnetType: ... }` written twice agrees.
 */
export function differingSetting(a: EngineSettings, b: EngineSettings): keyof EngineSettings | undefined {
  return SETTINGS.find((prop) => !sameValue(a[prop], b[prop]));
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) {
    return true;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((item, i) => sameValue(item, b[i]));
  }
  if (isPlainObject(a) && isPlainObject(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    return [...keys].every((key) => sameValue(a[key], b[key]));
  }
  return false;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype;
}
