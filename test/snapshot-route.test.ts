import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Architecture, BootMode, DiskImage, ImportMethod, VmImageImport, VmImageImportProps } from '../src';

function newStack(): Stack {
  return new Stack(new App(), 'Test', { env: { account: '123456789012', region: 'us-east-1' } });
}

function arm64(stack: Stack, extra: Partial<VmImageImportProps> = {}): VmImageImport {
  const source = s3.Bucket.fromBucketName(stack, 'Source', 'my-images');
  return new VmImageImport(stack, 'Image', {
    diskImages: [DiskImage.fromBucket(source, 'arm/boot.raw'), DiskImage.fromBucket(source, 'arm/data.vmdk', { deviceName: '/dev/xvdf' })],
    importMethod: ImportMethod.SNAPSHOTS,
    architecture: Architecture.ARM64,
    bootMode: BootMode.UEFI,
    imageName: 'arm-server-1.0',
    ...extra,
  });
}

describe('importMethod: SNAPSHOTS', () => {
  test('reaches the start resource with the registration fields; IMDSv2 is asked of RegisterImage and of the result resource', () => {
    const stack = newStack();
    arm64(stack, { tpmSupport: true, uefiData: 'QUJDRA==', requireImdsv2: true });
    const t = Template.fromStack(stack);
    t.hasResourceProperties('Custom::VmImageImport', {
      ImportMethod: 'snapshots',
      Architecture: 'arm64',
      BootMode: 'uefi',
      ImageName: 'arm-server-1.0',
      TpmSupport: 'v2.0',
      UefiData: 'QUJDRA==',
      ImdsSupport: 'v2.0',
      DiskContainers: [
        { Format: 'RAW', S3Bucket: 'my-images', S3Key: 'arm/boot.raw' },
        { Format: 'VMDK', S3Bucket: 'my-images', S3Key: 'arm/data.vmdk', DeviceName: '/dev/xvdf' },
      ],
    });
    t.hasResourceProperties('Custom::VmImageImportResult', { ImdsSupport: 'v2.0' });
  });

  test('the image route sends no ImportMethod and no IMDSv2 to the start resource (the result resource sets it)', () => {
    const stack = newStack();
    new VmImageImport(stack, 'Image', { diskImages: [DiskImage.fromUrl('s3://my-images/web.vmdk')], requireImdsv2: true });
    const t = Template.fromStack(stack);
    t.hasResourceProperties('Custom::VmImageImport', { ImportMethod: Match.absent(), ImdsSupport: Match.absent() });
  });

  test('the registration shapes the image: the route, TPM and UEFI data name a new WaitCondition; IMDSv2 does not', () => {
    const waitOf = (extra: Partial<VmImageImportProps>) => {
      const stack = newStack();
      arm64(stack, extra);
      return Object.keys(Template.fromStack(stack).findResources('AWS::CloudFormation::WaitCondition'));
    };
    const base = waitOf({});
    expect(waitOf({ tpmSupport: true })).not.toEqual(base);
    expect(waitOf({ uefiData: 'QUJD' })).not.toEqual(base);
    expect(waitOf({ requireImdsv2: true })).toEqual(base);
  });

  test('a named snapshot import makes no copy, so the state machine gets no key grant', () => {
    const stack = newStack();
    arm64(stack);
    const policies = Template.fromStack(stack).findResources('AWS::IAM::Policy', {
      Properties: { Roles: [{ Ref: Match.stringLikeRegexp('^CdkVmImportEngineStateMachineRole') }] },
    });
    const kms = Object.values(policies).flatMap((p: any) => p.Properties.PolicyDocument.Statement).filter((s: any) => JSON.stringify(s.Action).includes('kms:'));
    expect(kms).toEqual([]);
  });
});
