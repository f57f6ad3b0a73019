// The first example of the README, type-checked. The lines between the README markers
// are the README's code block (test/readme.test.ts keeps the two equal).
import { Stack } from 'aws-cdk-lib';
import { Construct } from 'constructs';
// README:start
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { BootMode, DiskImage, LicenseType, Platform, VmImageImport } from 'cdk-vm-import';

declare const vpc: ec2.IVpc;
// README:end

export class BasicExample extends Stack {
  constructor(scope: Construct, id: string) {
    super(scope, id);
    // README:start
    const image = new VmImageImport(this, 'Image', {
      diskImages: [DiskImage.fromAsset('images/web-server.vmdk')],
      platform: Platform.LINUX,
      bootMode: BootMode.LEGACY_BIOS,
      licenseType: LicenseType.BYOL,
      tags: { Application: 'web' },
    });

    new ec2.Instance(this, 'WebServer', {
      vpc,
      machineImage: image, // the construct is an ec2.IMachineImage
      instanceType: ec2.InstanceType.of(ec2.InstanceClass.T3, ec2.InstanceSize.MICRO),
    });
    // README:end
  }
}
