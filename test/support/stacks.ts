/** Stacks the cdk-nag tests check: one that uses every feature of the library, and a default one. */
import * as path from 'path';
import { App, Duration, RemovalPolicy, Size, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { NagSuppressions } from 'cdk-nag';
import { Architecture, BootMode, DiskImage, ImportMethod, LicenseType, Platform, VmImageImport, VmImportRole } from '../../src';

export const EXAMPLE_VMDK = path.join(__dirname, '..', '..', 'examples', 'images', 'web-server.vmdk');
export const LICENSE_ARN = 'arn:aws:license-manager:us-east-1:123456789012:license-configuration:lic-0123456789abcdef0123456789abcdef';
export const ENV = { account: '123456789012', region: 'us-east-1' };

/** The rule packs besides AwsSolutions whose every rule of a name this test stack's own resources break. */
const COMPLIANCE_PACKS = ['NIST.800.53.R5', 'HIPAA.Security', 'PCI.DSS.321'];

/** A stack that uses every feature of the library, the engine's VPC and log key included. */
/** The stack's own access log bucket, as a security team would have it (its own findings acknowledged). */
export function accessLogsBucket(stack: Stack): s3.Bucket {
  const logs = new s3.Bucket(stack, 'AccessLogs', {
    enforceSSL: true,
    encryption: s3.BucketEncryption.S3_MANAGED,
    blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
    versioned: true,
  });
  NagSuppressions.addResourceSuppressions(logs, [
    { id: 'AwsSolutions-S1', reason: 'This is the access log bucket of the test stack itself.' },
    ...COMPLIANCE_PACKS.flatMap((pack) => [
      { id: `${pack}-S3BucketLoggingEnabled`, reason: 'This is the access log bucket of the test stack itself.' },
      { id: `${pack}-S3BucketReplicationEnabled`, reason: 'The test stack keeps its access logs in one Region.' },
      { id: `${pack}-S3DefaultEncryptionKMS`, reason: 'S3 server access logs can only be delivered to SSE-S3 buckets.' },
    ]),
  ]);
  return logs;
}

export function everyFeatureStack(app: App): Stack {
  const stack = new Stack(app, 'Everything', { env: ENV });
  const logs = accessLogsBucket(stack);
  const vpc = ec2.Vpc.fromVpcAttributes(stack, 'Vpc', {
    vpcId: 'vpc-0123456789abcdef0',
    availabilityZones: ['us-east-1a', 'us-east-1b'],
    privateSubnetIds: ['subnet-0123456789abcdef0', 'subnet-0123456789abcdef1'],
    privateSubnetRouteTableIds: ['rtb-0123456789abcdef0', 'rtb-0123456789abcdef1'],
  });
  const engineGroup = new ec2.SecurityGroup(stack, 'EngineSecurityGroup', { vpc, allowAllOutbound: false, description: 'The test stack\'s engine function' });
  engineGroup.addEgressRule(ec2.Peer.ipv4('10.0.0.0/16'), ec2.Port.tcp(443), 'HTTPS to the VPC endpoints');
  const logKey = new kms.Key(stack, 'LogKey', { enableKeyRotation: true });
  logKey.addToResourcePolicy(new iam.PolicyStatement({
    actions: ['kms:Encrypt*', 'kms:Decrypt*', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:Describe*'],
    principals: [new iam.ServicePrincipal('logs.us-east-1.amazonaws.com')],
    resources: ['*'],
    conditions: { ArnLike: { 'kms:EncryptionContext:aws:logs:arn': 'arn:aws:logs:us-east-1:123456789012:log-group:*' } },
  }));
  const engine = { vpc, vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS }, securityGroups: [engineGroup], logEncryptionKey: logKey };

  const web = new VmImageImport(stack, 'Web', {
    diskImages: [DiskImage.fromAsset(EXAMPLE_VMDK)],
    platform: Platform.LINUX,
    bootMode: BootMode.LEGACY_BIOS,
    licenseType: LicenseType.BYOL,
    licenseConfigurationArns: [LICENSE_ARN],
    clientData: { comment: 'ci', uploadSize: Size.gibibytes(1) },
    tags: { app: 'web' },
    removalPolicy: RemovalPolicy.DESTROY,
    timeout: Duration.minutes(30),
    accessLogsBucket: logs,
    accessLogsPrefix: 'images/',
    diskImageExpiration: Duration.days(30),
    ...engine,
  });
  new VmImageImport(stack, 'Db', {
    diskImages: [
      DiskImage.fromImportBucket('db-boot.vhdx', { deviceName: '/dev/sda1' }),
      DiskImage.fromBucket(web.bucket, 'db-data.raw', { deviceName: '/dev/sdb' }),
    ],
    bucket: web.bucket,
    encryptionKey: web.encryptionKey,
    role: new VmImportRole(stack, 'SharedRole'),
    usageOperation: 'RunInstances:0002',
    platform: Platform.WINDOWS,
    ...engine,
  });
  new VmImageImport(stack, 'FromUrl', {
    diskImages: [DiskImage.fromUrl('s3://images-123456789012/legacy.ova')],
    licenseType: LicenseType.AWS,
    ...engine,
  });
  return stack;
}

/** A stack with one import and every default: the engine outside a VPC, with a log key of its own. */
export function defaultStack(app: App): Stack {
  const stack = new Stack(app, 'DefaultStack', { env: ENV });
  new VmImageImport(stack, 'Image', { diskImages: [DiskImage.fromAsset(EXAMPLE_VMDK)], licenseType: LicenseType.BYOL });
  return stack;
}

/** A stack whose engine runs in a VPC of its own making, with the security group the engine creates. */
export function vpcStack(app: App): Stack {
  const stack = new Stack(app, 'InVpc', { env: ENV });
  const vpc = ec2.Vpc.fromVpcAttributes(stack, 'Vpc', {
    vpcId: 'vpc-0123456789abcdef0',
    availabilityZones: ['us-east-1a'],
    isolatedSubnetIds: ['subnet-0123456789abcdef0'],
    isolatedSubnetRouteTableIds: ['rtb-0123456789abcdef0'],
  });
  new VmImageImport(stack, 'Image', { diskImages: [DiskImage.fromImportBucket('a.vmdk')], licenseType: LicenseType.BYOL, vpc });
  return stack;
}

/**
 * A named, shared and published import (as the example app), a named arm64 import on the
 * snapshot route, and an unencrypted named import, in one stack: the variants whose engine
 * states and grants differ from the default's (the copy, the key through EC2, the launch
 * permissions and the Auto Scaling key policy, RegisterImage).
 */
export function namedAndSharedStack(app: App): Stack {
  const stack = new Stack(app, 'Named', { env: ENV });
  new VmImageImport(stack, 'Web', {
    diskImages: [DiskImage.fromAsset(EXAMPLE_VMDK)],
    licenseType: LicenseType.BYOL,
    imageName: 'web-server-1.0.0',
    imageDescription: 'Web server',
    shareWithAccounts: ['111122223333'],
    shareWithOrganizations: ['arn:aws:organizations::123456789012:organization/o-a1b2c3d4e5'],
    ssmParameterName: '/images/web-server',
    requireImdsv2: true,
  });
  new VmImageImport(stack, 'Arm', {
    diskImages: [DiskImage.fromImportBucket('arm/boot.raw'), DiskImage.fromImportBucket('arm/data.vmdk', { deviceName: '/dev/xvdf' })],
    importMethod: ImportMethod.SNAPSHOTS,
    architecture: Architecture.ARM64,
    bootMode: BootMode.UEFI,
    imageName: 'arm-server-1.0.0',
    tpmSupport: true,
  });
  new VmImageImport(stack, 'Plain', {
    diskImages: [DiskImage.fromImportBucket('plain.vmdk')],
    licenseType: LicenseType.BYOL,
    encrypted: false,
    imageName: 'plain-1.0.0',
  });
  return stack;
}
