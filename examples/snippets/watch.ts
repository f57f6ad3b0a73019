// The README's "Watching one" example, type-checked. The lines between the README markers
// are the README's code block (test/readme.test.ts keeps the two equal).
import { Stack } from 'aws-cdk-lib';
import { Construct } from 'constructs';
// README:start
import { CfnOutput } from 'aws-cdk-lib';
import { DiskImage, LicenseType, VmImageImport } from 'cdk-vm-import';
// README:end

export class WatchExample extends Stack {
  constructor(scope: Construct, id: string) {
    super(scope, id);
    // README:start
    const image = new VmImageImport(this, 'Image', {
      diskImages: [DiskImage.fromAsset('images/web-server.vmdk')],
      licenseType: LicenseType.BYOL,
    });
    new CfnOutput(this, 'ImportStateMachine', { value: image.stateMachine.stateMachineArn });
    new CfnOutput(this, 'ImportLogs', { value: image.logGroup.logGroupName });
    // README:end
  }
}
