import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App, Stack, Token } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { DiskImage, DiskImageFormat, LicenseType, VmImageImport, VmImageImportProps } from '../src';
import { writeDiskFixture } from './support/disk-fixtures';

// Mistakes that CloudFormation or VM Import would only report at deploy (or never), caught at synth.

const ENV = { account: '123456789012', region: 'us-east-1' };

function importIn(stack: Stack, props: Partial<VmImageImportProps> = {}): VmImageImport {
  const images = (stack.node.tryFindChild('Images') as s3.IBucket | undefined) ?? s3.Bucket.fromBucketName(stack, 'Images', 'my-images');
  return new VmImageImport(stack, 'Import', { diskImages: [DiskImage.fromBucket(images, 'boot.vmdk')], licenseType: LicenseType.BYOL, ...props });
}

/** The message of what `fn` throws, or undefined. */
function errorOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return (e as Error).message;
  }
  return undefined;
}

describe('the same disk twice in diskImages', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'synth-mistakes-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const stackOf = () => new Stack(new App(), 'Test', { env: ENV });
  const images = (stack: Stack) => (stack.node.tryFindChild('Images') as s3.IBucket | undefined) ?? s3.Bucket.fromBucketName(stack, 'Images', 'my-images');
  const TWICE = 'VM Import would import it twice, as two volumes of the AMI. Remove one, or give each its own disk image.';

  test.each<[string, (stack: Stack) => DiskImage[], string]>([
    ['the same bucket and key', (stack) => [DiskImage.fromBucket(images(stack), 'boot.vmdk'), DiskImage.fromBucket(images(stack), 'data.vmdk'), DiskImage.fromBucket(images(stack), 'boot.vmdk')],
      `'diskImages[0]' and 'diskImages[2]' are the same disk (s3://my-images/boot.vmdk): ${TWICE}`],
    ['an S3 URL of an object also given by bucket and key', (stack) => [DiskImage.fromBucket(images(stack), 'boot.vmdk'), DiskImage.fromUrl('s3://my-images/boot.vmdk')],
      `'diskImages[0]' and 'diskImages[1]' are the same disk (s3://my-images/boot.vmdk): ${TWICE}`],
    ['the same URL', () => [DiskImage.fromUrl('https://example.com/disk.vmdk'), DiskImage.fromUrl('https://example.com/disk.vmdk')],
      `'diskImages[0]' and 'diskImages[1]' are the same disk (https://example.com/disk.vmdk): ${TWICE}`],
    ['the same snapshot ID', () => [DiskImage.fromSnapshot('snap-0123456789abcdef0'), DiskImage.fromSnapshot('snap-0123456789abcdef0')],
      `'diskImages[0]' and 'diskImages[1]' are the same disk (snap-0123456789abcdef0): ${TWICE}`],
    ['the same unresolved key', (stack) => [DiskImage.fromBucket(images(stack), Token.asString({ Ref: 'Key' }), { format: DiskImageFormat.VMDK }),
      DiskImage.fromBucket(images(stack), Token.asString({ Ref: 'Key' }), { format: DiskImageFormat.VMDK })],
    `'diskImages[0]' and 'diskImages[1]' are the same disk ({"Fn::Join":["",["s3://my-images/",{"Ref":"Key"}]]}): ${TWICE}`],
  ])('%s is refused', (_, disks, message) => {
    const stack = stackOf();
    expect(errorOf(() => importIn(stack, { diskImages: disks(stack) }))).toBe(message);
  });

  test('the same asset file twice is refused, naming the file', () => {
    const file = writeDiskFixture('gpt-stream.vmdk', dir);
    expect(errorOf(() => importIn(stackOf(), { diskImages: [DiskImage.fromAsset(file), DiskImage.fromAsset(file)] })))
      .toBe(`'diskImages[0]' and 'diskImages[1]' are the same disk (DiskImage.fromAsset('${file}')): ${TWICE}`);
  });

  test('two asset files with the same bytes are refused, naming both', () => {
    const file = writeDiskFixture('gpt-stream.vmdk', dir);
    const copy = path.join(dir, 'copy.vmdk');
    fs.copyFileSync(file, copy);
    expect(errorOf(() => importIn(stackOf(), { diskImages: [DiskImage.fromAsset(file), DiskImage.fromAsset(copy)] })))
      .toBe(`'diskImages[0]' and 'diskImages[1]' are the same disk (DiskImage.fromAsset('${file}') and DiskImage.fromAsset('${copy}') hold the same bytes): ${TWICE}`);
  });

  test('different objects, URLs and snapshots are accepted', () => {
    const stack = stackOf();
    expect(errorOf(() => importIn(stack, {
      diskImages: [
        DiskImage.fromBucket(images(stack), 'boot.vmdk'),
        DiskImage.fromBucket(s3.Bucket.fromBucketName(stack, 'Other', 'other-images'), 'boot.vmdk'),
        DiskImage.fromUrl('https://example.com/disk.vmdk?version=2'),
        DiskImage.fromUrl('https://example.com/disk.vmdk?version=3'),
        DiskImage.fromSnapshot('snap-0123456789abcdef0'),
        DiskImage.fromSnapshot('snap-0123456789abcdef1'),
      ],
    }))).toBeUndefined();
  });
});

describe('ssmParameterName follows SSM naming rules', () => {
  const nameError = (name: string) => errorOf(() => importIn(new Stack(new App(), 'Test', { env: ENV }), { ssmParameterName: name }));
  const RULES = "a parameter name has 1 to 1,011 letters, digits and . - _ /, does not start with 'aws' or 'ssm', " +
    "starts with '/' when it is in a hierarchy, and has at most 15 levels (such as '/images/web-server').";

  const levels = (n: number) => `/${Array.from({ length: n }, (_, i) => `l${i}`).join('/')}`;

  test.each<[string, string, string]>([
    ['an empty name', '', 'is empty'],
    ['1,012 characters', 'a'.repeat(1012), 'has 1012 characters'],
    ['a space', '/images/web server', 'holds " "'],
    ['a #', '/images/web#1', 'holds "#"'],
    ["'AWS' first", 'AWS-images', "starts with 'aws', which SSM reserves (in any case)"],
    ["'/ssm' first", '/ssm/images', "starts with 'ssm', which SSM reserves (in any case)"],
    ["a hierarchy without the leading '/'", 'images/web-server', "is in a hierarchy but does not start with '/': write \"/images/web-server\""],
    ["'//'", '/images//web-server', "has an empty level (two '/' in a row, or a '/' at the end)"],
    ["a '/' at the end", '/images/', "has an empty level (two '/' in a row, or a '/' at the end)"],
    ['16 levels', levels(16), 'has 16 levels'],
  ])('a name with %s is refused', (_, name, why) => {
    expect(nameError(name)).toBe(`'ssmParameterName' is ${JSON.stringify(name)}: it ${why}; ${RULES}`);
  });

  test.each<[string, string]>([
    ['a hierarchy', '/images/web-server'],
    ['no hierarchy', 'web-server_1.2'],
    ['15 levels', levels(15)],
    ['1,011 characters', `/${'a'.repeat(1010)}`],
  ])('a name with %s is accepted', (_, name) => {
    expect(nameError(name)).toBeUndefined();
  });
});
