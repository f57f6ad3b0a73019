/**
 * What the imports of a stack share (one key, one role, one bucket only when an import reads
 * it), what `cdk destroy` removes, and grants to resources of another stack.
 */
import { App, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { DiskImage, LicenseType, VmImageImport, VmImageImportProps, VmImportRole } from '../src';

const ENV = { account: '123456789012', region: 'us-east-1' };

function newStack(app = new App(), id = 'Test'): Stack {
  return new Stack(app, id, { env: ENV });
}


/** The stack's keys besides the engine's own log group key. */
function importKeyCount(t: Template): number {
  return Object.keys(t.findResources('AWS::KMS::Key')).filter((id) => !id.startsWith('CdkVmImportEngine')).length;
}

/** An import of one disk from a bucket outside the construct, under its own key. */
function bucketImport(stack: Stack, id: string, extra: Partial<VmImageImportProps> = {}): VmImageImport {
  const source = s3.Bucket.fromBucketName(stack, `${id}Source`, 'my-images');
  return new VmImageImport(stack, id, { diskImages: [DiskImage.fromBucket(source, `builds/${id}.vmdk`)], licenseType: LicenseType.BYOL, ...extra });
}

function ownBucketImport(stack: Stack, id: string, extra: Partial<VmImageImportProps> = {}): VmImageImport {
  return new VmImageImport(stack, id, { diskImages: [DiskImage.fromImportBucket(`builds/${id}.vmdk`)], licenseType: LicenseType.BYOL, ...extra });
}

/** The roles VM Import assumes. */
function importRoles(t: Template): string[] {
  return Object.entries(t.findResources('AWS::IAM::Role'))
    .filter(([, r]) => JSON.stringify(r.Properties.AssumeRolePolicyDocument).includes('vmie.amazonaws.com'))
    .map(([id]) => id);
}

/** The bytes of the stack's template as `cdk synth` writes it. */
function templateBytes(stack: Stack): number {
  return Buffer.byteLength(JSON.stringify(Template.fromStack(stack).toJSON(), undefined, 1));
}

describe('the imports of a stack share what they can', () => {
  test('two imports whose disks are elsewhere: one key, one import role, no bucket', () => {
    const stack = newStack();
    bucketImport(stack, 'A');
    bucketImport(stack, 'B');
    const t = Template.fromStack(stack);
    expect(importKeyCount(t)).toBe(1);
    t.resourceCountIs('AWS::S3::Bucket', 0);
    expect(importRoles(t)).toHaveLength(1);
    t.resourceCountIs('AWS::CloudFormation::WaitCondition', 2);
  });

  test('DiskImage.fromAsset creates no bucket either', () => {
    const stack = newStack();
    new VmImageImport(stack, 'A', { diskImages: [DiskImage.fromAsset(`${__dirname}/../examples/images/web-server.vmdk`)], licenseType: LicenseType.BYOL });
    Template.fromStack(stack).resourceCountIs('AWS::S3::Bucket', 0);
  });

  test('one bucket when one import reads from it, the same for a second, encrypted with the one key', () => {
    const stack = newStack();
    const a = ownBucketImport(stack, 'A');
    bucketImport(stack, 'B');
    const c = ownBucketImport(stack, 'C');
    const t = Template.fromStack(stack);
    t.resourceCountIs('AWS::S3::Bucket', 1);
    expect(importKeyCount(t)).toBe(1);
    expect(a.bucket).toBe(c.bucket);
    const [keyId] = Object.keys(t.findResources('AWS::KMS::Key'));
    t.hasResourceProperties('AWS::S3::Bucket', {
      BucketEncryption: { ServerSideEncryptionConfiguration: [Match.objectLike({ ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: { 'Fn::GetAtt': [keyId, 'Arn'] } } })] },
    });
  });

  test('a bucket passed in is the attribute and creates none', () => {
    const stack = newStack();
    const given = s3.Bucket.fromBucketName(stack, 'Given', 'given-images');
    expect(bucketImport(stack, 'A', { bucket: given }).bucket).toBe(given);
    Template.fromStack(stack).resourceCountIs('AWS::S3::Bucket', 0);
  });

  test('reading the bucket attribute creates the stack\'s bucket, for a pipeline to upload to', () => {
    const stack = newStack();
    const a = bucketImport(stack, 'A');
    a.bucket.grantPut(new iam.Role(stack, 'Pipeline', { assumedBy: new iam.AccountRootPrincipal() }));
    Template.fromStack(stack).resourceCountIs('AWS::S3::Bucket', 1);
  });

  test('with encrypted: false and no disk in the stack\'s bucket, no key at all', () => {
    const stack = newStack();
    const a = bucketImport(stack, 'A', { encrypted: false });
    expect(importKeyCount(Template.fromStack(stack))).toBe(0);
    expect(a.encryptionKey).toBeUndefined();
  });

  test('the stack\'s role reads exactly the disks of the imports that use it, and nothing of one with its own role', () => {
    const stack = newStack();
    bucketImport(stack, 'A');
    bucketImport(stack, 'B');
    bucketImport(stack, 'C', { role: new VmImportRole(stack, 'OwnRole') });
    const t = Template.fromStack(stack);
    const reads = (prefix: string) => Object.entries(t.findResources('AWS::IAM::Policy'))
      .filter(([id]) => id.startsWith(prefix))
      .flatMap(([, p]) => p.Properties.PolicyDocument.Statement)
      .filter((st: any) => st.Action === 's3:GetObject')
      .map((st: any) => JSON.stringify(st.Resource));
    expect(reads('CdkVmImportSharedRole').sort()).toEqual([
      expect.stringContaining('my-images/builds/A.vmdk'),
      expect.stringContaining('my-images/builds/B.vmdk'),
    ]);
    expect(reads('OwnRole')).toEqual([expect.stringContaining('my-images/builds/C.vmdk')]);
  });

  test('the key\'s Auto Scaling statements appear once, however many imports encrypt with it', () => {
    const stack = newStack();
    bucketImport(stack, 'A');
    bucketImport(stack, 'B');
    const [, key] = Object.entries(Template.fromStack(stack).findResources('AWS::KMS::Key'))[0];
    expect(key.Properties.KeyPolicy.Statement.map((st: any) => st.Sid).filter(Boolean)).toEqual([
      'AllowAutoScalingToUseTheKey', 'AllowAutoScalingToGrantTheKeyToAwsResources',
    ]);
  });

  test.each([
    ['from an outside bucket', (stack: Stack, id: string) => bucketImport(stack, id)],
    ['from the stack\'s bucket', (stack: Stack, id: string) => ownBucketImport(stack, id)],
  ])('each extra import %s adds 3 resources and at most 3,072 template bytes', (_name, add) => {
    const sizes = [1, 2, 3].map((n) => {
      const stack = newStack();
      for (let i = 0; i < n; i++) add(stack, `Image${i}`);
      return { resources: Object.keys(Template.fromStack(stack).toJSON().Resources).length, bytes: templateBytes(stack) };
    });
    for (const [before, after] of [[sizes[0], sizes[1]], [sizes[1], sizes[2]]]) {
      // The WaitCondition and the start and result custom resources.
      expect(after.resources - before.resources).toBe(3);
      expect(after.bytes - before.bytes).toBeLessThanOrEqual(3072);
    }
  });
});

describe('what cdk destroy removes', () => {
  const policiesOf = (t: Template, type: string, engine: boolean) => Object.entries(t.findResources(type))
    .filter(([id]) => id.startsWith('CdkVmImportEngine') === engine).map(([, r]) => [r.DeletionPolicy, r.UpdateReplacePolicy]);
  /** The import's resources of a type (the engine's apart). */
  const policies = (t: Template, type: string) => type === 'AWS::Logs::LogGroup' ? policiesOf(t, type, true) : policiesOf(t, type, false);
  /** The engine's log key follows the log group it encrypts. */
  const logKeyPolicies = (t: Template) => policiesOf(t, 'AWS::KMS::Key', true);

  test('by default the key, the bucket and the log group are retained', () => {
    const stack = newStack();
    ownBucketImport(stack, 'A');
    const t = Template.fromStack(stack);
    expect(policies(t, 'AWS::KMS::Key')).toEqual([['Retain', 'Retain']]);
    expect(policies(t, 'AWS::S3::Bucket')).toEqual([['Retain', 'Retain']]);
    expect(policies(t, 'AWS::Logs::LogGroup')).toEqual([['Retain', 'Retain']]);
    expect(logKeyPolicies(t)).toEqual([['Retain', 'Retain']]);
    t.resourceCountIs('Custom::S3AutoDeleteObjects', 0);
  });

  test('DESTROY deletes each: the bucket is emptied of every version first, the key scheduled for deletion', () => {
    const stack = newStack();
    ownBucketImport(stack, 'A', {
      removalPolicy: RemovalPolicy.DESTROY,
      bucketRemovalPolicy: RemovalPolicy.DESTROY,
      encryptionKeyRemovalPolicy: RemovalPolicy.DESTROY,
      logGroupRemovalPolicy: RemovalPolicy.DESTROY,
    });
    const t = Template.fromStack(stack);
    expect(policies(t, 'AWS::KMS::Key')).toEqual([['Delete', 'Delete']]);
    expect(policies(t, 'AWS::S3::Bucket')).toEqual([['Delete', 'Delete']]);
    expect(policies(t, 'AWS::Logs::LogGroup')).toEqual([['Delete', 'Delete']]);
    expect(logKeyPolicies(t)).toEqual([['Delete', 'Delete']]);
    t.resourceCountIs('Custom::S3AutoDeleteObjects', 1);
    Annotations.fromStack(stack).hasNoWarning('*', Match.stringLikeRegexp('encryptionKeyRemovalPolicy'));
  });

  test('choices for what an import does not use do not matter: the bucket is made by the import that reads it', () => {
    const stack = newStack();
    bucketImport(stack, 'A', { bucketRemovalPolicy: RemovalPolicy.DESTROY });
    ownBucketImport(stack, 'B');
    expect(policies(Template.fromStack(stack), 'AWS::S3::Bucket')).toEqual([['Retain', 'Retain']]);
  });

  test('a key deleted under a kept AMI is a warning', () => {
    const stack = newStack();
    bucketImport(stack, 'A', { encryptionKeyRemovalPolicy: RemovalPolicy.DESTROY });
    Annotations.fromStack(stack).hasWarning('/Test/A', Match.stringLikeRegexp("'encryptionKeyRemovalPolicy' is DESTROY but 'removalPolicy' keeps the AMI"));
  });

  test.each([
    ['bucketRemovalPolicy', (stack: Stack) => {
      ownBucketImport(stack, 'A', { bucketRemovalPolicy: RemovalPolicy.DESTROY });
      ownBucketImport(stack, 'B');
    }, "'bucketRemovalPolicy' of Test/B is RemovalPolicy.RETAIN, but the stack's import bucket is shared by the imports of the stack that use it, and Test/A made it RemovalPolicy.DESTROY"],
    ['bucketRemovalPolicy, the bucket read through the attribute', (stack: Stack) => {
      ownBucketImport(stack, 'A');
      const b = bucketImport(stack, 'B', { bucketRemovalPolicy: RemovalPolicy.DESTROY });
      return b.bucket;
    }, "'bucketRemovalPolicy' of Test/B is RemovalPolicy.DESTROY"],
    ['diskImageExpiration', (stack: Stack) => {
      ownBucketImport(stack, 'A', { diskImageExpiration: Duration.days(30) });
      ownBucketImport(stack, 'B', { diskImageExpiration: Duration.days(7) });
    }, "'diskImageExpiration' of Test/B is Duration.days(7), but the stack's import bucket"],
    ['accessLogsBucket', (stack: Stack) => {
      ownBucketImport(stack, 'A', { accessLogsBucket: s3.Bucket.fromBucketName(stack, 'Logs', 'my-logs') });
      ownBucketImport(stack, 'B');
    }, "'accessLogsBucket' of Test/B is unset, but the stack's import bucket"],
    ['encryptionKeyRemovalPolicy', (stack: Stack) => {
      bucketImport(stack, 'A', { encryptionKeyRemovalPolicy: RemovalPolicy.DESTROY, removalPolicy: RemovalPolicy.DESTROY });
      bucketImport(stack, 'B');
    }, "'encryptionKeyRemovalPolicy' of Test/B is RemovalPolicy.RETAIN, but the stack's import key is shared"],
    ['encryptionKeyRemovalPolicy, the key used by the bucket only', (stack: Stack) => {
      bucketImport(stack, 'A');
      ownBucketImport(stack, 'B', { encryptionKey: new kms.Key(stack, 'Own'), encryptionKeyRemovalPolicy: RemovalPolicy.DESTROY });
    }, "'encryptionKeyRemovalPolicy' of Test/B is RemovalPolicy.DESTROY"],
    ['logGroupRemovalPolicy', (stack: Stack) => {
      bucketImport(stack, 'A', { logGroupRemovalPolicy: RemovalPolicy.DESTROY });
      bucketImport(stack, 'B');
    }, "'logGroupRemovalPolicy' of Test/B is RemovalPolicy.RETAIN, but the stack's engine log group is shared"],
  ])('imports that share a resource must choose alike: %s', (_name, build, message) => {
    expect(() => build(newStack())).toThrow(message);
  });

  test.each([
    ['bucketRemovalPolicy SNAPSHOT', { bucketRemovalPolicy: RemovalPolicy.SNAPSHOT }, "'bucketRemovalPolicy' must be RemovalPolicy.RETAIN or RemovalPolicy.DESTROY"],
    ['encryptionKeyRemovalPolicy SNAPSHOT', { encryptionKeyRemovalPolicy: RemovalPolicy.SNAPSHOT }, "'encryptionKeyRemovalPolicy' must be RemovalPolicy.RETAIN or RemovalPolicy.DESTROY"],
    ['logGroupRemovalPolicy RETAIN_ON_UPDATE_OR_DELETE', { logGroupRemovalPolicy: RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE }, "'logGroupRemovalPolicy' must be RemovalPolicy.RETAIN or RemovalPolicy.DESTROY"],
    ['bucketRemovalPolicy with a bucket', { bucketRemovalPolicy: RemovalPolicy.DESTROY, bucket: 'given' }, "'bucketRemovalPolicy' is set but so is 'bucket'"],
    ['encryptionKeyRemovalPolicy with a key and a bucket', { encryptionKeyRemovalPolicy: RemovalPolicy.DESTROY, bucket: 'given', encryptionKey: 'given' },
      "'encryptionKeyRemovalPolicy' is set, but with 'encryptionKey' and 'bucket' this import never uses the stack's key"],
    ['encryptionKeyRemovalPolicy with encrypted: false and a bucket', { encryptionKeyRemovalPolicy: RemovalPolicy.RETAIN, bucket: 'given', encrypted: false },
      "'encryptionKeyRemovalPolicy' is set, but with 'encrypted: false' and 'bucket' this import never uses the stack's key"],
  ])('%s is an error', (_name, props, message) => {
    const stack = newStack();
    const resolved: any = { ...props };
    if (resolved.bucket) resolved.bucket = s3.Bucket.fromBucketName(stack, 'Given', 'given-images');
    if (resolved.encryptionKey) resolved.encryptionKey = new kms.Key(stack, 'GivenKey');
    expect(() => bucketImport(stack, 'A', resolved)).toThrow(message);
  });

  test('the key alone with encryptionKey is fine when the stack\'s bucket may still need the stack\'s key', () => {
    const stack = newStack();
    ownBucketImport(stack, 'A', { encryptionKey: new kms.Key(stack, 'Own'), encryptionKeyRemovalPolicy: RemovalPolicy.DESTROY, bucketRemovalPolicy: RemovalPolicy.DESTROY });
    const keys = Template.fromStack(stack).findResources('AWS::KMS::Key');
    expect(Object.entries(keys).map(([id, k]) => [id.replace(/[0-9A-F]{8}$/, ''), k.DeletionPolicy]).sort()).toEqual([
      ['CdkVmImportEngineLogsKey', 'Retain'],
      ['CdkVmImportSharedKey', 'Delete'],
      ['Own', 'Retain'],
    ]);
  });
});

describe('resources of another stack', () => {
  /** Stack A with a role, a bucket and a key for imports elsewhere. */
  function providerStack(app: App) {
    const a = newStack(app, 'A');
    const key = new kms.Key(a, 'Key');
    return {
      a,
      role: new VmImportRole(a, 'Role'),
      bucket: new s3.Bucket(a, 'Images', { encryption: s3.BucketEncryption.KMS, encryptionKey: key }),
      key: new kms.Key(a, 'AmiKey'),
    };
  }

  test('an import in B with A\'s role, bucket and key: B holds B\'s grants, A\'s resources are unchanged, and the app synthesizes', () => {
    const alone = new App();
    const before = Template.fromStack(providerStack(alone).a).toJSON().Resources;

    const app = new App();
    const { a, role, bucket, key } = providerStack(app);
    const b = newStack(app, 'B');
    new VmImageImport(b, 'Import', { diskImages: [DiskImage.fromBucket(bucket, 'builds/web.vmdk')], role, bucket, encryptionKey: key, licenseType: LicenseType.BYOL });
    expect(() => app.synth()).not.toThrow();

    expect(Template.fromStack(a).toJSON().Resources).toEqual(before);
    const t = Template.fromStack(b);
    // B creates no role, key or bucket of its own, and grants A's role what B's import needs, in B.
    expect(importRoles(t)).toEqual([]);
    expect(importKeyCount(t)).toBe(0);
    t.resourceCountIs('AWS::S3::Bucket', 0);
    const [, policy] = Object.entries(t.findResources('AWS::IAM::Policy')).find(([id]) => id.startsWith('ImportRoleGrants'))!;
    expect(policy.Properties.Roles).toEqual([{ 'Fn::ImportValue': expect.stringMatching(/^A:ExportsOutputRefRole/) }]);
    const statements = policy.Properties.PolicyDocument.Statement.map((st: any) => [[st.Action].flat().join(','), JSON.stringify(st.Resource)]);
    expect(statements).toEqual([
      ['kms:CreateGrant,kms:Decrypt,kms:DescribeKey,kms:Encrypt,kms:GenerateDataKey,kms:GenerateDataKeyWithoutPlaintext,kms:ReEncryptFrom,kms:ReEncryptTo', expect.stringContaining('AmiKey')],
      ['s3:GetBucketLocation,s3:ListBucket', expect.stringContaining('Images')],
      ['s3:GetObject', expect.stringMatching(/Images.*builds\/web\.vmdk/)],
      ['kms:Decrypt', expect.stringContaining('Key')],
    ]);
    // The import waits for B's grants.
    const [, start] = Object.entries(t.findResources('Custom::VmImageImport'))[0];
    expect(start.DependsOn).toEqual(expect.arrayContaining([expect.stringMatching(/^ImportRoleGrantsPolicy/)]));
  });

  test('an import in B with the role and key of an import in A', () => {
    const before = JSON.stringify(Template.fromStack((() => {
      const alone = newStack(new App(), 'A');
      bucketImport(alone, 'First');
      return alone;
    })()).toJSON().Resources);
    const app = new App();
    const a = newStack(app, 'A');
    const first = bucketImport(a, 'First');
    const b = newStack(app, 'B');
    bucketImport(b, 'Second', { role: first.role, encryptionKey: first.encryptionKey });
    expect(() => app.synth()).not.toThrow();
    expect(JSON.stringify(Template.fromStack(a).toJSON().Resources)).toEqual(before);
    const t = Template.fromStack(b);
    expect(importKeyCount(t)).toBe(0);
    expect(importRoles(t)).toEqual([]);
  });

  test('a role imported by ARN in this stack is granted as before, in its own policy here', () => {
    const stack = newStack();
    const role = iam.Role.fromRoleArn(stack, 'Given', 'arn:aws:iam::123456789012:role/my-import-role');
    bucketImport(stack, 'A', { role });
    Template.fromStack(stack).hasResourceProperties('AWS::IAM::Policy', { Roles: ['my-import-role'] });
  });
});
