// The README's "Choosing the route" example, type-checked. The lines between the README
// markers are the README's code block (test/readme.test.ts keeps the two equal).
import { Stack } from 'aws-cdk-lib';
import { Construct } from 'constructs';
// README:start
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Architecture, BootMode, DiskImage, DiskImageFormat, ImportMethod, VmImageImport } from 'cdk-vm-import';

declare const vpc: ec2.IVpc;
// README:end

export class Arm64Example extends Stack {
  constructor(scope: Construct, id: string) {
    super(scope, id);
    // README:start
    // An arm64 cloud image (qemu-img convert -O raw image.qcow2 arm-server.raw), as it is:
    const image = new VmImageImport(this, 'ArmImage', {
      diskImages: [DiskImage.fromAsset('images/arm-server.raw', { format: DiskImageFormat.RAW })],
      importMethod: ImportMethod.SNAPSHOTS, // ImportSnapshot, then RegisterImage
      architecture: Architecture.ARM64,
      bootMode: BootMode.UEFI, // arm64 boots only with UEFI
      imageName: 'arm-server-2026.12.01', // RegisterImage names the AMI as it makes it
      requireImdsv2: true,
    });

    new ec2.Instance(this, 'ArmServer', {
      vpc,
      machineImage: image,
      instanceType: ec2.InstanceType.of(ec2.InstanceClass.T4G, ec2.InstanceSize.MICRO),
    });
    // README:end
  }
}
