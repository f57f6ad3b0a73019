// The README's "leave nothing behind" example, type-checked. The lines between the README
// markers are the README's code block (test/readme.test.ts keeps the two equal).
import { Stack } from 'aws-cdk-lib';
import { Construct } from 'constructs';
// README:start
import { RemovalPolicy } from 'aws-cdk-lib';
import { DiskImage, LicenseType, VmImageImport } from 'cdk-vm-import';
// README:end

export class DestroyAllExample extends Stack {
  constructor(scope: Construct, id: string) {
    super(scope, id);
    // README:start
    new VmImageImport(this, 'Scratch', {
      diskImages: [DiskImage.fromImportBucket('builds/scratch.vmdk')],
      licenseType: LicenseType.BYOL,
      removalPolicy: RemovalPolicy.DESTROY,
      encryptionKeyRemovalPolicy: RemovalPolicy.DESTROY,
      bucketRemovalPolicy: RemovalPolicy.DESTROY,
      logGroupRemovalPolicy: RemovalPolicy.DESTROY,
    });
    // README:end
  }
}
