/**
 * Integration test: imports the example disk through the stack's engine (a start custom
 * resource, a Step Functions execution, a WaitCondition and a result custom resource),
 * launches nothing, and asserts the AMI is available. `npx projen integ` checks the
 * synthesized snapshot offline. A real run (`integ-runner --update-on-failed` with
 * credentials) needs a bootable image: set
 * CDK_VM_IMPORT_INTEG_IMAGE to its path (the example disk holds no operating system, so
 * VM Import would fail it with "Unknown OS / Missing OS files").
 */
import * as path from 'path';
import { ExpectedResult, IntegTest, Match } from '@aws-cdk/integ-tests-alpha';
import { App, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { BootMode, DiskImage, LicenseType, Platform, VmImageImport } from '../src';

const app = new App();
const stack = new Stack(app, 'VmImageImportInteg');
const image = new VmImageImport(stack, 'Image', {
  diskImages: [DiskImage.fromAsset(process.env.CDK_VM_IMPORT_INTEG_IMAGE ?? path.join(__dirname, '..', 'examples', 'images', 'web-server.vmdk'))],
  platform: Platform.LINUX,
  bootMode: BootMode.LEGACY_BIOS,
  licenseType: LicenseType.BYOL,
  tags: { purpose: 'integ' },
  // Named through CopyImage; the test's DESTROY frees the name for the next run.
  imageName: `cdk-vm-import-integ-${stack.stackName}`,
  removalPolicy: RemovalPolicy.DESTROY,
  // A test leaves nothing behind: the stack's key (scheduled for deletion) and the engine's logs go too.
  encryptionKeyRemovalPolicy: RemovalPolicy.DESTROY,
  logGroupRemovalPolicy: RemovalPolicy.DESTROY,
});

const integ = new IntegTest(app, 'VmImageImportTest', { testCases: [stack] });
integ.assertions
  .awsApiCall('EC2', 'describeImages', { ImageIds: [image.imageId] })
  // The AMI carries the library's own tags too (stack, logical ID and import task), in no set order.
  .expect(ExpectedResult.objectLike({ Images: [{ State: 'available', Name: `cdk-vm-import-integ-${stack.stackName}`, Tags: Match.arrayWith([{ Key: 'purpose', Value: 'integ' }]) }] }));
