import { App, Stack } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { DiskImage, LicenseType, VmImageImport, VmImageImportProps } from '../src';

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
