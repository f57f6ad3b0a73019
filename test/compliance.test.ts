/**
 * The five cdk-nag rule packs that security teams run: a stack using every feature, a
 * default one, one whose engine runs in a VPC, one granting a role of another stack, and
 * one with named, shared, published, snapshot-route and unencrypted imports have no
 * unsuppressed error or warning
 * under any of them, and each pack does report a violation planted beside the imports.
 */
import { App, Aspects, IAspect, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { AwsSolutionsChecks, HIPAASecurityChecks, NIST80053R5Checks, PCIDSS321Checks, ServerlessChecks } from 'cdk-nag';
import { Construct } from 'constructs';
import { DiskImage, LicenseType, VmImageImport, VmImportRole } from '../src';
import { accessLogsBucket, defaultStack, ENV, everyFeatureStack, namedAndSharedStack, vpcStack } from './support/stacks';

interface Pack {
  readonly prefix: string;
  readonly checks: () => IAspect;
  /** What the pack reports on the planted bucket and log group. */
  readonly planted: string[];
}

const PACKS: Pack[] = [
  { prefix: 'AwsSolutions', checks: () => new AwsSolutionsChecks(), planted: ['/Planted/Bucket/Resource: AwsSolutions-S1', '/Planted/Bucket/Resource: AwsSolutions-S10'] },
  { prefix: 'NIST.800.53.R5', checks: () => new NIST80053R5Checks(), planted: ['/Planted/Logs/Resource: NIST.800.53.R5-CloudWatchLogGroupEncrypted'] },
  { prefix: 'HIPAA.Security', checks: () => new HIPAASecurityChecks(), planted: ['/Planted/Logs/Resource: HIPAA.Security-CloudWatchLogGroupEncrypted'] },
  { prefix: 'PCI.DSS.321', checks: () => new PCIDSS321Checks(), planted: ['/Planted/Logs/Resource: PCI.DSS.321-CloudWatchLogGroupEncrypted'] },
  { prefix: 'Serverless', checks: () => new ServerlessChecks(), planted: ['/Planted/Logs/Resource: Serverless-CloudWatchLogGroupRetentionPeriod'] },
];
/** An import granting a role of another stack, with the stack's bucket removed by DESTROY. */
function crossStackStack(app: App): Stack {
  const roles = new Stack(app, 'Roles', { env: ENV });
  const role = new VmImportRole(roles, 'Role');
  const importer = new Stack(app, 'Importer', { env: ENV });
  new VmImageImport(importer, 'Import', {
    diskImages: [DiskImage.fromImportBucket('builds/web.vmdk')],
    role,
    licenseType: LicenseType.BYOL,
    accessLogsBucket: accessLogsBucket(importer),
    bucketRemovalPolicy: RemovalPolicy.DESTROY,
  });
  return importer;
}

const STACKS: Array<[string, (app: App) => Stack]> = [
  ['every feature', everyFeatureStack], ['default', defaultStack], ['engine in a VPC', vpcStack],
  ['role of another stack, bucket removed by DESTROY', crossStackStack],
  ['named, shared and published; the snapshot route; unencrypted and named', namedAndSharedStack],
];

/** The pack's unsuppressed errors and warnings, as `path: rule`, with the stack's name left out. */
function findings(stack: Stack, prefix: string): string[] {
  const annotations = Annotations.fromStack(stack);
  const rule = Match.stringLikeRegexp(`^${prefix.replace(/\./g, '\\.')}-`);
  return [...annotations.findError('*', rule), ...annotations.findWarning('*', rule)]
    .map((m) => `${m.id.replace(`/${stack.stackName}`, '')}: ${String(m.entry.data).split(':')[0]}`);
}

/** Any other error or warning: one from aws-cdk-lib, or a pack that could not read a resource. */
function otherMessages(stack: Stack): string[] {
  const annotations = Annotations.fromStack(stack);
  return [...annotations.findError('*', Match.anyValue()), ...annotations.findWarning('*', Match.anyValue())]
    .map((m) => `${m.id}: ${String(m.entry.data)}`);
}

describe.each(PACKS.map((p) => [p.prefix, p] as const))('cdk-nag %s', (_name, pack) => {
  test.each(STACKS)('a stack (%s) has no unsuppressed error or warning', (_stackName, make) => {
    const app = new App();
    const stack = make(app);
    Aspects.of(app).add(pack.checks());
    app.synth();
    expect(findings(stack, pack.prefix)).toEqual([]);
    expect(otherMessages(stack)).toEqual([]);
  });

  test('the check sees a violation planted beside the imports', () => {
    const app = new App();
    const stack = everyFeatureStack(app);
    const planted = new Construct(stack, 'Planted');
    new s3.Bucket(planted, 'Bucket'); // no SSL enforcement, no access logs
    new logs.LogGroup(planted, 'Logs', { retention: logs.RetentionDays.INFINITE }); // not encrypted, kept forever
    Aspects.of(app).add(pack.checks());
    app.synth();
    expect(findings(stack, pack.prefix)).toEqual(expect.arrayContaining(pack.planted));
  });
});
