// The README's pipeline bucket example, type-checked. The lines between the README
// markers are the README's code block (test/readme.test.ts keeps the two equal).
import { Stack } from 'aws-cdk-lib';
import { Construct } from 'constructs';
// README:start
import { RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { DiskImage, DiskImageFormat, LicenseType, VmImageImport } from 'cdk-vm-import';

// The role your image pipeline runs as.
declare const pipelineRole: iam.IRole;
// README:end

export class PipelineBucketExample extends Stack {
  constructor(scope: Construct, id: string) {
    super(scope, id);
    // README:start
    const web = new VmImageImport(this, 'Web', {
      diskImages: [DiskImage.fromImportBucket('builds/web-1.4.2.ova')],
      licenseType: LicenseType.BYOL,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    web.bucket.grantPut(pipelineRole);

    // A second import in the stack shares the bucket, the key and the role: nothing to pass.
    new VmImageImport(this, 'Db', {
      diskImages: [
        DiskImage.fromImportBucket('builds/db-boot.vmdk', { deviceName: '/dev/sda1' }),
        DiskImage.fromImportBucket('builds/db-data.img', { format: DiskImageFormat.RAW, deviceName: '/dev/sdb' }),
      ],
      licenseType: LicenseType.BYOL,
    });
    // README:end
  }
}
