// The README's complete app, type-checked; test/docs.test.ts also synthesizes it, from
// examples/ (where images/web-server.vmdk is), and jsii-rosetta compiles it without a fixture.
// README:start
import { App, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { BootMode, DiskImage, LicenseType, Platform, VmImageImport } from 'cdk-vm-import';
import { Construct } from 'constructs';

export class WebServerStack extends Stack {
  constructor(scope: Construct, id: string) {
    super(scope, id);

    // The disk exported from VMware, next to cdk.json.
    const image = new VmImageImport(this, 'Image', {
      diskImages: [DiskImage.fromAsset('images/web-server.vmdk')],
      platform: Platform.LINUX,
      bootMode: BootMode.LEGACY_BIOS,
      licenseType: LicenseType.BYOL,
      imageName: 'web-server-1.0.0',
      tags: { Application: 'web' },
    });

    const vpc = new ec2.Vpc(this, 'Vpc', { maxAzs: 1, natGateways: 0 });
    new ec2.Instance(this, 'WebServer', {
      vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PUBLIC },
      machineImage: image, // the construct is an ec2.IMachineImage
      instanceType: ec2.InstanceType.of(ec2.InstanceClass.T3, ec2.InstanceSize.MICRO),
    });
  }
}

const app = new App();
new WebServerStack(app, 'WebServer');
app.synth();
// README:end
