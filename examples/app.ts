/**
 * A small app a newcomer can synthesize without an AWS account:
 *   npx projen example
 * It imports a VMDK disk image into an AMI named web-server-1.0.0, publishes its ID in an
 * SSM parameter, and launches an instance from it in a VPC.
 */
import * as path from 'path';
import { App, RemovalPolicy, Stack, StackProps, Tags } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Construct } from 'constructs';
import { BootMode, DiskImage, LicenseType, Platform, VmImageImport } from '../src';

export class VmImportExampleStack extends Stack {
  constructor(scope: Construct, id: string, props?: StackProps) {
    super(scope, id, props);

    const image = new VmImageImport(this, 'WebServerImage', {
      diskImages: [DiskImage.fromAsset(path.join(__dirname, 'images', 'web-server.vmdk'))],
      platform: Platform.LINUX,
      bootMode: BootMode.LEGACY_BIOS,
      licenseType: LicenseType.BYOL,
      description: 'Web server imported from a VMware disk',
      imageName: 'web-server-1.0.0',
      ssmParameterName: '/images/web-server',
      tags: { Application: 'web' },
      removalPolicy: RemovalPolicy.DESTROY,
    });

    const vpc = new ec2.Vpc(this, 'Vpc', { maxAzs: 1, natGateways: 0 });
    new ec2.Instance(this, 'WebServer', {
      vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PUBLIC },
      machineImage: image,
      instanceType: ec2.InstanceType.of(ec2.InstanceClass.T3, ec2.InstanceSize.MICRO),
    });
  }
}

const app = new App();
const stack = new VmImportExampleStack(app, 'VmImportExample');
Tags.of(stack).add('Project', 'cdk-vm-import-example');
app.synth();
