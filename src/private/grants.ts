import { Aws } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';

/** What VM Import does with a customer managed key that encrypts the AMI's snapshots. */
const SNAPSHOT_KEY_ACTIONS = [
  'kms:CreateGrant',
  'kms:Decrypt',
  'kms:DescribeKey',
  'kms:Encrypt',
  'kms:GenerateDataKey*',
  'kms:ReEncrypt*',
];

/** A disk image object VM Import must read. */
export interface DiskObject {
  readonly bucketArn: string;
  /** The object's ARN, or a pattern of object ARNs. */
  readonly objectArn: string;
  /** The bucket's SSE-KMS key, when known. */
  readonly encryptionKey?: kms.IKey;
}

/** A disk image object in a bucket construct. */
export function objectInBucket(bucket: s3.IBucket, keyPattern: string): DiskObject {
  return { bucketArn: bucket.bucketArn, objectArn: bucket.arnForObjects(keyPattern), encryptionKey: bucket.encryptionKey };
}

/** A disk image object known only by its bucket's name. */
export function objectByName(bucketName: string, keyPattern: string): DiskObject {
  const bucketArn = `arn:${Aws.PARTITION}:s3:::${bucketName}`;
  return { bucketArn, objectArn: `${bucketArn}/${keyPattern}` };
}

/** Grants a role read access to a disk image object; works for any `IRole`. */
export function grantReadDiskImage(role: iam.IGrantable, object: DiskObject): iam.Grant {
  const bucketGrant = iam.Grant.addToPrincipal({
    grantee: role,
    actions: ['s3:GetBucketLocation', 's3:ListBucket'],
    resourceArns: [object.bucketArn],
  });
  const combined = bucketGrant.combine(iam.Grant.addToPrincipal({
    grantee: role,
    actions: ['s3:GetObject'],
    resourceArns: [object.objectArn],
  }));
  return object.encryptionKey ? combined.combine(object.encryptionKey.grantDecrypt(role)) : combined;
}

/** Grants a role the KMS actions VM Import needs to encrypt snapshots with a key. */
export function grantEncryptSnapshots(role: iam.IGrantable, key: kms.IKey): iam.Grant {
  return key.grant(role, ...SNAPSHOT_KEY_ACTIONS);
}

/** Grants a role what VM Import does with License Manager license configurations. */
export function grantLicenseConfigurations(role: iam.IGrantable, licenseConfigurationArns: string[]): iam.Grant {
  return iam.Grant.addToPrincipal({
    grantee: role,
    actions: ['license-manager:GetLicenseConfiguration', 'license-manager:UpdateLicenseSpecificationsForResource'],
    resourceArns: licenseConfigurationArns,
  }).combine(iam.Grant.addToPrincipal({
    grantee: role,
    // Listing the license specifications of a resource has no resource-level permissions.
    actions: ['license-manager:ListLicenseSpecificationsForResource'],
    resourceArns: ['*'],
  }));
}
