import { Aws, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';

/** What VM Import does with a customer managed key that encrypts the AMI's snapshots. */
const SNAPSHOT_KEY_ACTIONS = [
  'kms:CreateGrant',
  'kms:Decrypt',
  'kms:DescribeKey',
  'kms:Encrypt',
  // The VM Import guide's GenerateDataKey* and ReEncrypt*, spelled out: EBS asks for data keys without plaintext.
  'kms:GenerateDataKey',
  'kms:GenerateDataKeyWithoutPlaintext',
  'kms:ReEncryptFrom',
  'kms:ReEncryptTo',
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

/**
 * The role to grant an import's permissions to. A role of this stack (created or imported
 * here) is itself. A role of another stack is seen through a reference made here, whose
 * grants go to a policy in this stack attached to the role by name: granting to that stack's
 * role would write this stack's resources into that stack's policy, which then cannot deploy
 * without this one (and this stack already needs that one's role: a cycle).
 */
export function roleForGrants(scope: Construct, role: iam.IRole): iam.IRole {
  if (Stack.of(role) === Stack.of(scope)) {
    return role;
  }
  return iam.Role.fromRoleName(scope, 'RoleGrants', role.roleName, { mutable: true });
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

/** What an Auto Scaling group's service-linked role does with the key of an encrypted AMI. */
const AUTO_SCALING_KEY_ACTIONS = [
  'kms:Encrypt', 'kms:Decrypt', 'kms:ReEncryptFrom', 'kms:ReEncryptTo', 'kms:GenerateDataKey', 'kms:GenerateDataKeyWithoutPlaintext', 'kms:DescribeKey',
];

/**
 * Lets Auto Scaling groups launch instances from an AMI encrypted with this key, with the
 * key policy statements the EC2 Auto Scaling guide gives: its service-linked role cannot
 * be given an IAM policy, so only the key policy can allow it.
 *
 * @see https://docs.aws.amazon.com/autoscaling/ec2/userguide/key-policy-requirements-EBS-encryption.html
 */
export function allowAutoScalingLaunches(key: kms.Key): void {
  const stack = Stack.of(key);
  // Named through aws:PrincipalArn rather than as the principal: KMS refuses a key policy
  // whose principal does not exist yet, and the service-linked role exists only once the
  // account has used Auto Scaling. Only that role matches the condition.
  const serviceLinkedRole = {
    ArnEquals: {
      'aws:PrincipalArn': `arn:${stack.partition}:iam::${stack.account}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling`,
    },
  };
  key.addToResourcePolicy(new iam.PolicyStatement({
    sid: 'AllowAutoScalingToUseTheKey',
    principals: [new iam.AnyPrincipal()],
    actions: AUTO_SCALING_KEY_ACTIONS,
    resources: ['*'],
    conditions: serviceLinkedRole,
  }));
  key.addToResourcePolicy(new iam.PolicyStatement({
    sid: 'AllowAutoScalingToGrantTheKeyToAwsResources',
    principals: [new iam.AnyPrincipal()],
    actions: ['kms:CreateGrant'],
    resources: ['*'],
    conditions: { ...serviceLinkedRole, Bool: { 'kms:GrantIsForAWSResource': true } },
  }));
}
