import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { VmImportRole } from '../vm-import-role';
import { allowAutoScalingLaunches } from './grants';
import { acceptBucketFindings } from './nag';

/**
 * A choice that every import sharing one stack-wide resource must make alike, such as what
 * `cdk destroy` does with it: the first import that uses the resource makes it, and any other
 * that makes another is an error naming both. Defaults count as choices, so the outcome never
 * depends on the order of the imports.
 */
export class SharedChoice<T> {
  private first?: { readonly value: T; readonly by: string };

  /**
   * @param prop the prop that makes the choice
   * @param what the resource, as the message names it
   * @param show how the message shows a value
   */
  constructor(private readonly prop: string, private readonly what: string, private readonly show: (value: T) => string) {}

  public agree(by: Construct, value: T): void {
    if (!this.first) {
      this.first = { value, by: by.node.path };
      return;
    }
    if (this.show(this.first.value) !== this.show(value)) {
      throw new Error(
        `'${this.prop}' of ${by.node.path} is ${this.show(value)}, but ${this.what} is shared by the imports of the stack that use it, ` +
        `and ${this.first.by} made it ${this.show(this.first.value)}: give every import that uses it the same '${this.prop}' ` +
        '(unset counts as the default).',
      );
    }
  }
}

/** Shows a removal policy as code. */
export function showRemovalPolicy(policy: RemovalPolicy): string {
  return `RemovalPolicy.${policy.toUpperCase()}`;
}

/** How an import wants the stack's bucket made. */
export interface SharedBucketOptions {
  readonly removalPolicy: RemovalPolicy;
  readonly keyRemovalPolicy: RemovalPolicy;
  readonly diskImageExpiration?: Duration;
  readonly accessLogsBucket?: s3.IBucket;
  readonly accessLogsPrefix?: string;
}

/**
 * What the imports of one stack share, each made on first use: the KMS key that encrypts
 * their AMIs (and the bucket), the disk image bucket (only when an import reads from it),
 * and the service role VM Import assumes (granted read access to each import's disks).
 */
export class SharedImportResources extends Construct {
  /** Returns the stack's shared resources, creating the (empty) container on first use. */
  public static of(scope: Construct): SharedImportResources {
    const stack = Stack.of(scope);
    const id = 'CdkVmImportShared';
    const existing = stack.node.tryFindChild(id);
    return existing instanceof SharedImportResources ? existing : new SharedImportResources(stack, id);
  }

  private key?: kms.Key;
  private bucket?: s3.Bucket;
  private role?: VmImportRole;

  private readonly keyRemoval = new SharedChoice('encryptionKeyRemovalPolicy', "the stack's import key", showRemovalPolicy);
  private readonly bucketRemoval = new SharedChoice('bucketRemovalPolicy', "the stack's import bucket", showRemovalPolicy);
  private readonly bucketExpiration = new SharedChoice<Duration | undefined>('diskImageExpiration', "the stack's import bucket",
    (d) => (d === undefined ? 'unset' : d.toString()));
  private readonly bucketLogs = new SharedChoice<s3.IBucket | undefined>('accessLogsBucket', "the stack's import bucket",
    (b) => (b === undefined ? 'unset' : b.node.path));
  private readonly bucketLogsPrefix = new SharedChoice<string | undefined>('accessLogsPrefix', "the stack's import bucket",
    (p) => (p === undefined ? 'unset' : JSON.stringify(p)));

  private constructor(scope: Construct, id: string) {
    super(scope, id);
  }

  /**
   * The stack's key, made on first use: rotated yearly; when it encrypts AMIs, its policy also
   * lets Auto Scaling launch them.
   */
  public useKey(by: Construct, removalPolicy: RemovalPolicy, encryptsImages: boolean): kms.Key {
    this.keyRemoval.agree(by, removalPolicy);
    this.key ??= new kms.Key(this, 'Key', {
      enableKeyRotation: true,
      description: `Encrypts the disk images and AMI snapshots of the VM image imports of ${Stack.of(this).stackName}`,
      removalPolicy,
    });
    if (encryptsImages) {
      // The README offers the AMI to Auto Scaling groups, whose service-linked role only
      // the key policy can allow. (A second call adds nothing: CDK drops repeated statements.)
      allowAutoScalingLaunches(this.key);
    }
    return this.key;
  }

  /**
   * The stack's disk image bucket, made on first use: SSL only, public access blocked,
   * versioned, encrypted with the stack's key. Under `RemovalPolicy.DESTROY` it is emptied
   * (every version) and deleted with the stack.
   */
  public useBucket(by: Construct, options: SharedBucketOptions): s3.Bucket {
    this.bucketRemoval.agree(by, options.removalPolicy);
    this.bucketExpiration.agree(by, options.diskImageExpiration);
    this.bucketLogs.agree(by, options.accessLogsBucket);
    this.bucketLogsPrefix.agree(by, options.accessLogsPrefix);
    const encryptionKey = this.useKey(by, options.keyRemovalPolicy, false);
    if (this.bucket) {
      return this.bucket;
    }
    const expiration = options.diskImageExpiration;
    const destroy = options.removalPolicy === RemovalPolicy.DESTROY;
    this.bucket = new s3.Bucket(this, 'Bucket', {
      encryption: s3.BucketEncryption.KMS,
      encryptionKey,
      bucketKeyEnabled: true,
      enforceSSL: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      versioned: true,
      serverAccessLogsBucket: options.accessLogsBucket,
      serverAccessLogsPrefix: options.accessLogsPrefix,
      lifecycleRules: [{
        abortIncompleteMultipartUploadAfter: Duration.days(7),
        expiration,
        noncurrentVersionExpiration: expiration,
      }],
      removalPolicy: options.removalPolicy,
      // CloudFormation deletes only an empty bucket: DESTROY means emptying it first.
      autoDeleteObjects: destroy,
    });
    acceptBucketFindings(this.bucket, options.accessLogsBucket !== undefined);
    return this.bucket;
  }

  /** The stack's service role, made on first use. */
  public useRole(): VmImportRole {
    this.role ??= new VmImportRole(this, 'Role');
    return this.role;
  }
}
