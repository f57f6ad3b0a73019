// The README's "Share, publish and harden the AMI" example, type-checked. The lines between
// the README markers are the README's code block (test/readme.test.ts keeps the two equal).
import { App, Stack } from 'aws-cdk-lib';
import { Construct } from 'constructs';
// README:start
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import { DiskImage, LicenseType, VmImageImport } from 'cdk-vm-import';

declare const launcher: iam.IRole;
// README:end

export class UseAmiExample extends Stack {
  constructor(scope: Construct, id: string) {
    super(scope, id);
    // README:start
    const image = new VmImageImport(this, 'Image', {
      diskImages: [DiskImage.fromAsset('images/web-server.vmdk')],
      licenseType: LicenseType.BYOL,
      imageName: 'web-server-2026.12.01', // copied to this name; the import-ami-… AMI is removed
      imageDescription: 'Web server, from the VMware build of 1 December',
      shareWithAccounts: ['111122223333'],
      shareWithOrganizations: ['arn:aws:organizations::444455556666:organization/o-a1b2c3d4e5'],
      ssmParameterName: '/images/web-server',
      requireImdsv2: true,
    });
    image.grantLaunch(launcher); // ec2:RunInstances on the AMI, and its key through EC2
    // README:end
  }
}

export class ServersExample extends Stack {
  constructor(scope: App, id: string) {
    super(scope, id);
    // README:start
    // In another stack, app or account of the same Region:
    const machineImage = ec2.MachineImage.fromSsmParameter('/images/web-server');
    // README:end
    void machineImage;
  }
}
