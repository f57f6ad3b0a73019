import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App, CfnMapping, Fn, Stack, Token } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { DiskImage, DiskImageFormat, LicenseType, VmImageImport, VmImageImportProps } from '../src';
import { writeDiskFixture } from './support/disk-fixtures';

// Mistakes that CloudFormation or VM Import would only report at deploy (or never), caught at synth.

const ENV = { account: '123456789012', region: 'us-east-1' };

function importIn(stack: Stack, props: Partial<VmImageImportProps> = {}): VmImageImport {
  const images = (stack.node.tryFindChild('Images') as s3.IBucket | undefined) ?? s3.Bucket.fromBucketName(stack, 'Images', 'my-images');
  return new VmImageImport(stack, 'Import', { diskImages: [DiskImage.fromBucket(images, 'boot.vmdk')], licenseType: LicenseType.BYOL, ...props });
}

function serverIn(stack: Stack, machineImage: ec2.IMachineImage): void {
  const vpc = new ec2.Vpc(stack, 'Vpc', { maxAzs: 1, natGateways: 0 });
  new ec2.Instance(stack, 'Server', { vpc, machineImage, instanceType: new ec2.InstanceType('t3.micro') });
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

const MAPPING_FIX = 'CloudFormation accepts no reference (Fn::GetAtt, Fn::ImportValue) in a Mapping and rejects the template at deploy. ' +
  "Give the import itself as the 'machineImage' (it is an ec2.IMachineImage), use ec2.MachineImage.genericLinux() or genericWindows() " +
  "only in a stack with a concrete 'env.region', or publish the AMI with 'ssmParameterName' and read it with ec2.MachineImage.fromSsmParameter().";

const mappingError = (importPath: string, mappingPath: string, attribute: string, at: string) =>
  `[${importPath}] The CloudFormation Mapping ${mappingPath} holds this import's '${attribute}' (at ${at}), as ec2.MachineImage.genericLinux() ` +
  `and genericWindows() make in a stack whose Region is unknown at synth: ${MAPPING_FIX}`;

describe("this import's values inside a CloudFormation Mapping", () => {
  test('genericLinux in an environment-agnostic stack is refused at synth', () => {
    const app = new App();
    const stack = new Stack(app, 'Test');
    const image = importIn(stack);
    serverIn(stack, ec2.MachineImage.genericLinux({ 'us-east-1': image.imageId }));
    expect(errorOf(() => app.synth())).toContain(mappingError('Test/Import', 'Test/Server/AmiMap', 'imageId', 'us-east-1.ami'));
  });

  test('genericWindows in an environment-agnostic stack is refused at synth', () => {
    const app = new App();
    const stack = new Stack(app, 'Test');
    const image = importIn(stack);
    serverIn(stack, ec2.MachineImage.genericWindows({ 'eu-west-1': image.imageId }));
    expect(errorOf(() => app.synth())).toContain(mappingError('Test/Import', 'Test/Server/AmiMap', 'imageId', 'eu-west-1.ami'));
  });

  test('a Mapping of another stack that imports the value is refused too', () => {
    const app = new App();
    const images = new Stack(app, 'Images');
    const image = importIn(images);
    const servers = new Stack(app, 'Servers');
    serverIn(servers, ec2.MachineImage.genericLinux({ 'us-east-1': image.imageId }));
    expect(errorOf(() => app.synth())).toContain(mappingError('Images/Import', 'Servers/Server/AmiMap', 'imageId', 'us-east-1.ami'));
  });

  test('a hand-made Mapping holding a snapshot ID is refused, naming the attribute', () => {
    const app = new App();
    const stack = new Stack(app, 'Test', { env: ENV });
    const image = importIn(stack);
    new CfnMapping(stack, 'Snapshots', { mapping: { boot: { id: Fn.select(0, image.snapshotIds) } } });
    expect(errorOf(() => app.synth())).toContain(mappingError('Test/Import', 'Test/Snapshots', 'snapshotIds', 'boot.id'));
  });

  test('another resource of the import in a Mapping is named by its path in the import', () => {
    const app = new App();
    const stack = new Stack(app, 'Test', { env: ENV });
    const image = importIn(stack, { ssmParameterName: '/images/web-server' });
    new CfnMapping(stack, 'Parameters', { mapping: { web: { arn: image.parameter!.parameterArn } } });
    expect(errorOf(() => app.synth())).toContain(mappingError('Test/Import', 'Test/Parameters', 'Parameter.Ref', 'web.arn'));
  });

  test.each<[string, (image: VmImageImport) => ec2.IMachineImage, boolean]>([
    ['the import itself as the machine image', (image) => image, false],
    ['genericLinux in a stack with a concrete Region', (image) => ec2.MachineImage.genericLinux({ 'us-east-1': image.imageId }), true],
    ['a Mapping of literal AMI IDs beside the import', () => ec2.MachineImage.genericLinux({ 'us-east-1': 'ami-0123456789abcdef0' }), false],
  ])('%s synthesizes', (_, machineImage, concreteRegion) => {
    const app = new App();
    const stack = new Stack(app, 'Test', concreteRegion ? { env: ENV } : {});
    const image = importIn(stack);
    serverIn(stack, machineImage(image));
    expect(errorOf(() => app.synth())).toBeUndefined();
  });
});

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
