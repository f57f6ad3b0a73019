import { createHash } from 'crypto';
import {
  Annotations,
  CfnWaitCondition,
  CustomResource,
  Duration,
  Fn,
  ITaggable,
  Lazy,
  RemovalPolicy,
  SizeRoundingBehavior,
  Stack,
  TagManager,
  TagType,
  Token,
  Tokenization,
} from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { DiskImage, DiskImageBindOptions, DiskImageConfig } from './disk-image';
import { Architecture, BootMode, ClientData, Hypervisor, ImportMethod, LicenseType, Platform } from './import-options';
import {
  ATTR_IMAGE_ID,
  ATTR_IMPORT_TASK_ID,
  ATTR_SNAPSHOT_IDS,
  REMOVAL_DESTROY,
  REMOVAL_RETAIN,
  RESOURCE_TYPE,
  RESULT_RESOURCE_TYPE,
  METHOD_SNAPSHOTS,
  WireClientData,
  WireDiskContainer,
  WireImageProperties,
  WireProperties,
  WireResultProperties,
} from './private/contract';
import { DEFAULT_POLL_INTERVAL, DEFAULT_TIMEOUT, MAX_TIMEOUT, VmImportEngine } from './private/engine';
import { validateEngineSettings } from './private/engine-settings';
import { grantEncryptSnapshots, grantLicenseConfigurations, roleForGrants } from './private/grants';
import { acceptInPacks, COMPLIANCE_PACKS } from './private/nag';
import { checkImageRegion } from './private/placement';
import { validatePropTypes } from './private/prop-types';
import { SharedBucketOptions, SharedImportResources } from './private/shared';
import { allowSharedLaunches, grantEbsKeyUse, grantLaunch, isShared, validateSharing, wireLaunchPermissions } from './private/sharing';
import { validateAmiTags, validateDisks, validateImport, validateMappings, validateResources } from './private/validate';

const MAX_WAIT_CONDITION_SECONDS = MAX_TIMEOUT.toSeconds();
/** How long CloudFormation waits for the engine's function to answer a custom resource request. */
const ANSWER_TIMEOUT = Duration.minutes(20);

/**
 * Properties of a `VmImageImport`.
 *
 * Checked at synth for JavaScript and Python callers: each prop has its declared type
 * (a `DiskImage`, a `Duration`, a `Size`, a `Date`, …), and each enum prop one of its
 * enum's values, which are case-sensitive strings. A wrong one is an error naming the prop.
 */
export interface VmImageImportProps {
  /**
   * The disks to import, boot disk first.
   *
   * Checked at synth: given, and a list of `DiskImage` (not paths); 1 to 21 disks; an OVA
   * holds all of its disks and must be the only disk of its import; no two disks on the
   * same `deviceName`; no disk twice (the same S3 object, URL, snapshot, or file bytes).
   */
  readonly diskImages: DiskImage[];

  /**
   * The service role VM Import assumes. It must trust `vmie.amazonaws.com` with
   * `sts:ExternalId` `vmimport`; it is granted read access to the disk images and use of
   * the encryption key.
   *
   * Checked at synth: it must belong to the stack's account. Passing the account-wide
   * `vmimport` role (named in any case: IAM ignores it) gives a warning, since this stack
   * then adds permissions to a shared role.
   *
   * A role of another stack is granted through a policy in this stack, attached to the role
   * by name: that stack's template does not change and deploys without this one.
   *
   * @default - the stack's `VmImportRole`, one per stack, shared by its imports that pass no
   * role: it reads exactly the disk images of those imports and uses exactly their keys
   */
  readonly role?: iam.IRole;

  /**
   * A bucket for disk images, such as images a build pipeline uploads, imported with
   * `DiskImage.fromImportBucket(key)`.
   *
   * Checked at synth: it must be in the stack's Region; another account gives a warning.
   *
   * @default - the stack's bucket, one per stack, created only when an import of the stack
   * reads from it (`DiskImage.fromImportBucket`) or reads its `bucket` attribute: SSL only,
   * public access blocked, versioned, encrypted with the stack's key, retained when the stack
   * is deleted unless `bucketRemovalPolicy` says otherwise
   */
  readonly bucket?: s3.IBucket;

  /**
   * What `cdk destroy` does with the stack's disk image bucket.
   *
   * When the stack is deleted (or the bucket leaves it), `RETAIN` keeps it and the disk
   * images in it, `DESTROY` deletes every object version and then the bucket (through
   * aws-cdk-lib's `autoDeleteObjects`, which adds a function to the stack). Every import of
   * the stack that uses the bucket must choose the same.
   *
   * Checked at synth: `RETAIN` or `DESTROY`; not with `bucket` (a bucket passed in keeps its
   * own policy); the same on every import that uses the stack's bucket.
   *
   * @default RemovalPolicy.RETAIN
   */
  readonly bucketRemovalPolicy?: RemovalPolicy;

  /**
   * Where the created bucket writes its server access logs. The stack's bucket is shared:
   * every import that uses it must give the same.
   *
   * @default - no server access logs
   */
  readonly accessLogsBucket?: s3.IBucket;

  /**
   * The key prefix of the created bucket's server access logs. The stack's bucket is shared:
   * every import that uses it must give the same.
   *
   * @default - no prefix
   */
  readonly accessLogsPrefix?: string;

  /**
   * Delete disk images from the created bucket this long after they are uploaded (and
   * their old versions as long after they are replaced). An AMI does not depend on its
   * disk image once imported. The stack's bucket is shared: every import that uses it must
   * give the same.
   *
   * Checked at synth: a `Duration`.
   *
   * @default - disk images are kept
   */
  readonly diskImageExpiration?: Duration;

  /**
   * Whether the AMI's snapshots are encrypted.
   *
   * Checked at synth: a boolean.
   *
   * @default true
   */
  readonly encrypted?: boolean;

  /**
   * The KMS key that encrypts the AMI's snapshots (and the bucket this construct creates).
   * It must stay enabled during the import.
   *
   * Checked at synth: not with `encrypted: false`; in the stack's Region; a key of another
   * account, or one imported by reference (whose key policy this stack cannot change),
   * gives a warning.
   *
   * A key passed in is used as it is: its key policy is not changed. For Auto Scaling groups
   * to launch the AMI, its key policy must allow the service-linked role
   * `arn:<partition>:iam::<account>:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling`
   * `kms:Encrypt`, `kms:Decrypt`, `kms:ReEncryptFrom`, `kms:ReEncryptTo`, `kms:GenerateDataKey`,
   * `kms:GenerateDataKeyWithoutPlaintext` and `kms:DescribeKey`, and `kms:CreateGrant` with the condition
   * `"Bool": {"kms:GrantIsForAWSResource": true}`; without them launches fail with
   * `Client.InternalError: Client error on launch`.
   *
   * @see https://docs.aws.amazon.com/autoscaling/ec2/userguide/key-policy-requirements-EBS-encryption.html
   * @default - the stack's key, one per stack, shared by its imports that pass no key, with
   * rotation enabled; created only when an import encrypts with it or the stack's bucket is
   * created. When it encrypts an AMI, its key policy also allows Auto Scaling's
   * service-linked role `AWSServiceRoleForAutoScaling` to use it (the statements above), so
   * Auto Scaling groups can launch the AMI. The role is named by an `aws:PrincipalArn`
   * condition, because KMS rejects a key policy whose principal does not exist yet (as in an
   * account that has never used Auto Scaling).
   */
  readonly encryptionKey?: kms.IKey;

  /**
   * What `cdk destroy` does with the stack's KMS key.
   *
   * When the stack is deleted (or the key leaves it), `RETAIN` keeps it, `DESTROY` schedules
   * its deletion (KMS waits 30 days, during which the deletion can be cancelled). Once the key
   * is deleted, snapshots and AMIs it encrypts can never be read again: with `DESTROY` here
   * and `removalPolicy` `RETAIN`, synth gives a warning. Every import of the stack that uses
   * the key must choose the same.
   *
   * Checked at synth: `RETAIN` or `DESTROY`; not when this import can use no key of the stack
   * (`encryptionKey` or `encrypted: false`, together with `bucket`); the same on every import
   * that uses the stack's key.
   *
   * @default RemovalPolicy.RETAIN
   */
  readonly encryptionKeyRemovalPolicy?: RemovalPolicy;

  /**
   * What `cdk destroy` does with the log group of the stack's import engine.
   *
   * When the stack is deleted, `RETAIN` keeps it (with its one-year retention), `DESTROY`
   * deletes it. Every import of the stack shares the engine, so every import must choose the
   * same.
   *
   * Checked at synth: `RETAIN` or `DESTROY`; the same on every import of the stack.
   *
   * @default RemovalPolicy.RETAIN
   */
  readonly logGroupRemovalPolicy?: RemovalPolicy;

  /**
   * A description of the import task and the AMI.
   *
   * @default - no description
   */
  readonly description?: string;

  /**
   * The AMI's name. ImportImage cannot name an AMI (it names it after the import task), so
   * with a name the engine copies the imported AMI to it (`CopyImage`, encrypted with the
   * same key, named explicitly, tagged as it is made), waits until the copy is available,
   * then deregisters the imported AMI and deletes its snapshots. `imageId` is then the
   * copy's, and the tags, sharing, `ssmParameterName` and `requireImdsv2` apply to it.
   *
   * The copy runs within `timeout`, after the import. An AMI name is unique per account
   * and Region: a name already taken fails the deployment before the import starts. Since
   * CloudFormation deletes an AMI it replaces only after the new one exists, an import that
   * is replaced (its disks or options change) needs a new name as well, such as one with a
   * version. Changing the name or `imageDescription` imports again. With
   * `importMethod: ImportMethod.SNAPSHOTS` the name is required, and RegisterImage names the
   * AMI as it makes it: there is no copy.
   *
   * Checked at synth: 3 to 128 characters of letters, digits, spaces and `( ) [ ] . / - ' @ _`.
   *
   * @see https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CopyImage.html
   * @default - the name VM Import gives the AMI (its import task ID), and no copy
   */
  readonly imageName?: string;

  /**
   * The named AMI's description (with `imageName`).
   *
   * Checked at synth: at most 255 characters; only with `imageName`.
   *
   * @default - `description`, or "Imported by VM Import (<import task ID>)"
   */
  readonly imageDescription?: string;

  /**
   * Information about the upload of the disk images.
   *
   * Checked at synth: `uploadStart` and `uploadEnd` valid `Date`s, `uploadEnd` not before
   * `uploadStart`, `uploadSize` a `Size` above zero.
   *
   * @default - none recorded
   */
  readonly clientData?: ClientData;

  /**
   * The license type of the operating system.
   *
   * AWS recommends setting this or `usageOperation`: with neither, synth gives a warning (on
   * the ImportImage route only: the snapshot route registers no license).
   *
   * Checked at synth: one of `LicenseType`'s values (`AWS` or `BYOL`, case-sensitive); not
   * together with `usageOperation` (VM Import rejects both); not
   * `LicenseType.AWS` with `Platform.LINUX` (Linux supports only BYOL).
   *
   * @see https://docs.aws.amazon.com/vm-import/latest/userguide/licensing-specify-option.html
   * @default - VM Import chooses from the operating system
   */
  readonly licenseType?: LicenseType;

  /**
   * The usage operation (billing code) of the AMI, such as `RunInstances:0002` for Windows.
   *
   * Checked at synth: `RunInstances` or `RunInstances:` and four letters or digits; not
   * together with `licenseType` (VM Import rejects both).
   *
   * @see https://docs.aws.amazon.com/vm-import/latest/userguide/licensing-specify-option.html
   * @default - VM Import chooses from the operating system
   */
  readonly usageOperation?: string;

  /**
   * ARNs of License Manager license configurations for the AMI.
   *
   * Checked at synth: each is an
   * `arn:<partition>:license-manager:<region>:<account>:license-configuration:lic-<32 hex>` ARN.
   * The import role is granted the License Manager actions VM Import needs on them.
   *
   * @default - none
   */
  readonly licenseConfigurationArns?: string[];

  /**
   * Tags for the import task, the AMI and each of its snapshots. Tags applied with
   * `Tags.of(...)` to this construct or the stack are added too.
   *
   * Checked at synth, for these tags and also for those from `Tags.of(...)` and the stack's
   * tags: keys of 1 to 127 characters that start neither with `aws:` (reserved by AWS) nor
   * with `cdk-vm-import:` (this library's own), values of at most 256; at most 47 tags in
   * all, since EC2 allows 50 per resource and the library adds 4 of its own.
   *
   * @default - none besides the handler's own `cdk-vm-import:*` tags
   */
  readonly tags?: { [key: string]: string };

  /**
   * The boot mode of the image.
   *
   * Checked at synth: one of `BootMode`'s values; `uefi-preferred` is rejected (not
   * supported for imports). A local disk
   * image with an EFI System Partition imported without `BootMode.UEFI` gives a warning.
   *
   * @default - VM Import detects it
   */
  readonly bootMode?: BootMode;

  /**
   * The operating system of the image. Required for a UEFI image imported from an EBS
   * snapshot. Also decides the operating system type and user data of instances launched
   * from this construct as an `ec2.IMachineImage`.
   *
   * Checked at synth: one of `Platform`'s values (`Linux` or `Windows`, case-sensitive); set
   * for a UEFI image imported from an EBS snapshot; not `Linux` with `LicenseType.AWS`.
   *
   * @default - VM Import detects it; instances built from this construct are Linux
   */
  readonly platform?: Platform;

  /**
   * The architecture of the image.
   *
   * Checked at synth: one of `Architecture`'s values (case-sensitive); `ARM64` only with
   * `importMethod: ImportMethod.SNAPSHOTS` (ImportImage does not import arm64 images) and
   * `bootMode: BootMode.UEFI`.
   *
   * @default - with `ImportMethod.IMAGE`, VM Import detects it; with `ImportMethod.SNAPSHOTS`, `x86_64`
   */
  readonly architecture?: Architecture;

  /**
   * How the disks become an AMI: `ImportImage` (VM Import converts the operating system
   * and registers the AMI), or `ImportSnapshot` for each disk in parallel and then
   * `RegisterImage` with every field set (architecture, `hvm`, the root device `/dev/xvda`
   * unless the first disk names one, the disks as block devices in order, deleted on
   * termination, gp3, ENA, the boot mode, TPM 2.0, UEFI data and IMDSv2 as asked).
   *
   * The snapshot route converts nothing: the disk must already boot on EC2 (cloud-ready
   * Linux, arm64, UEFI images). Checked at synth with `SNAPSHOTS`: `imageName` set (the AMI
   * is named as it is registered); disks VHD, VMDK or RAW (not OVA or VHDX, nor EBS
   * snapshots); `bootMode: UEFI` for arm64; no `platform: WINDOWS`, `licenseType: AWS`,
   * `usageOperation`, `licenseConfigurationArns` or `hypervisor` (RegisterImage would lose a
   * licensed system's billing code: import those with `IMAGE`).
   *
   * @default ImportMethod.IMAGE
   */
  readonly importMethod?: ImportMethod;

  /**
   * Register the AMI with NitroTPM 2.0 (`TpmSupport v2.0`), for Windows 11 and secure
   * boot. Only with `importMethod: ImportMethod.SNAPSHOTS` and `bootMode: BootMode.UEFI`.
   *
   * @default false
   */
  readonly tpmSupport?: boolean;

  /**
   * The UEFI variable store to register with the AMI (RegisterImage's `UefiData`, base64,
   * as `aws ec2 get-instance-uefi-data` returns it), such as secure boot keys. Only with
   * `importMethod: ImportMethod.SNAPSHOTS` and `bootMode: BootMode.UEFI`.
   *
   * @default - none: the instance starts with an empty store
   */
  readonly uefiData?: string;

  /**
   * The target hypervisor.
   *
   * Checked at synth: one of `Hypervisor`'s values (only `xen`).
   *
   * @default - VM Import's default
   */
  readonly hypervisor?: Hypervisor;

  /**
   * What happens to the AMI and its snapshots when this resource leaves the stack or is
   * replaced: `RETAIN` keeps them, `DESTROY` deregisters the AMI and deletes its snapshots.
   * An import still running is cancelled either way. Other policies are rejected at synth.
   *
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;

  /**
   * AWS accounts to share the AMI with: they may launch instances from it.
   *
   * An encrypted AMI is shared with the use of its key: the key policy of the key this
   * construct creates lets each account's principals (their administrators then grant it
   * through IAM) `kms:DescribeKey`, `Decrypt`, `ReEncryptFrom`, `ReEncryptTo`, `GenerateDataKey`,
   * `GenerateDataKeyWithoutPlaintext`, and
   * `kms:CreateGrant` for AWS resources. An Update that removes an account removes its
   * launch permission; a `DESTROY` delete deregisters the AMI, which ends every share.
   *
   * Checked at synth: 12-digit account IDs, not this stack's own; with `encrypted` (the
   * default), `encryptionKey` unset or a `kms.Key` of this stack, since the AWS managed EBS
   * key cannot be shared and another key's policy is not this stack's to write.
   *
   * @see https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/sharingamis-explicit.html
   * @default - shared with no account
   */
  readonly shareWithAccounts?: string[];

  /**
   * AWS Organizations organizations to share the AMI with, by ARN
   * (`arn:aws:organizations::<management account>:organization/o-<id>`). The key policy
   * allows their principals through `aws:PrincipalOrgID`.
   *
   * Checked at synth: organization ARNs; the key rule of `shareWithAccounts`.
   *
   * @default - shared with no organization
   */
  readonly shareWithOrganizations?: string[];

  /**
   * Organizational units to share the AMI with, by ARN
   * (`arn:aws:organizations::<management account>:ou/o-<id>/ou-<id>`). The key policy allows
   * their principals through `aws:PrincipalOrgPaths`.
   *
   * Checked at synth: organizational unit ARNs; the key rule of `shareWithAccounts`.
   *
   * @default - shared with no organizational unit
   */
  readonly shareWithOrganizationalUnits?: string[];

  /**
   * Publish the AMI's ID in an SSM parameter of this name (data type `aws:ec2:image`), so
   * other stacks and tools find it with `ec2.MachineImage.fromSsmParameter(name)`. The
   * parameter is created only once the AMI is available, and follows it on a re-import.
   *
   * Checked at synth, by SSM's naming rules: 1 to 1,011 characters of letters, digits and
   * `. - _ /`; not starting with `aws` or `ssm` (in any case, also after a leading `/`); a name
   * in a hierarchy starts with `/`, has no empty level and at most 15 levels.
   *
   * @see https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html
   * @default - no parameter
   */
  readonly ssmParameterName?: string;

  /**
   * Require IMDSv2 of every instance launched from the AMI (`ImdsSupport` `v2.0`).
   *
   * EC2 cannot undo this on an AMI: once set, turning it off here changes nothing on the
   * existing AMI (only a new import drops it). Most current operating systems and SDKs use
   * IMDSv2, but old agents that call IMDSv1 would break, so it is off unless asked.
   *
   * @default false
   */
  readonly requireImdsv2?: boolean;

  /**
   * How long to wait for EC2 to finish the import, counted from its start (time spent
   * waiting for EC2's concurrent-import quota counts too). When it runs out, the import
   * task is cancelled and the deployment fails with the task's last progress.
   *
   * The wait runs in a Step Functions execution behind an `AWS::CloudFormation::WaitCondition`,
   * whose 12 hours are the most CloudFormation waits for anything: a 12-hour timeout ends
   * one poll interval and 15 seconds early, so the stack reports the import's own reason.
   * Changing only the timeout does not import again.
   *
   * Checked at synth: a `Duration` of whole seconds from one `pollInterval` to 12 hours, and
   * short enough for its polls to fit the import's Step Functions execution: counted as Step
   * Functions counts history events (9 a poll on the ImportImage route, 11 on the snapshot
   * route, plus the start, its quota waits and every retry), the worst case must stay within
   * 20,000 of the 25,000 after which Step Functions stops an execution without a signal. At
   * the default 30-second `pollInterval` every timeout up to 12 hours fits; 12 hours needs
   * at least 22 seconds on the ImportImage route and 28 on the snapshot route.
   *
   * @default Duration.hours(6)
   */
  readonly timeout?: Duration;

  /**
   * How often the import task is polled. A failed import fails the stack within one
   * interval of EC2 reporting it; each poll costs three Step Functions state transitions.
   *
   * Checked at synth: from 5 seconds to 1 hour, whole seconds, and with `timeout` within the
   * execution's history (see `timeout`): the default 6 hours needs at least 11 seconds.
   *
   * @default Duration.seconds(30)
   */
  readonly pollInterval?: Duration;

  /**
   * The VPC to run the stack's import engine function in.
   *
   * The function calls the EC2, Step Functions and CloudFormation APIs and answers
   * CloudFormation through a pre-signed S3 URL: its subnets need interface endpoints for
   * `ec2`, `states` and `cloudformation` (with private DNS) and an S3 gateway endpoint, or a
   * NAT gateway (see the README's "Running the engine in a VPC").
   *
   * The engine is one per stack: every import of a stack must give the same `vpc`,
   * `vpcSubnets` and `securityGroups`, or synth fails naming both imports.
   *
   * Checked at synth: in the stack's Region.
   *
   * @default - the function runs outside any VPC
   */
  readonly vpc?: ec2.IVpc;

  /**
   * Where in `vpc` the engine function runs.
   *
   * Checked at synth: only with `vpc`; aws-cdk-lib refuses public subnets, where a
   * function cannot reach the internet.
   *
   * @default - the VPC's private subnets (with egress, else isolated)
   */
  readonly vpcSubnets?: ec2.SubnetSelection;

  /**
   * The security groups of the engine function in `vpc`. They must allow outbound HTTPS
   * (TCP 443) to the VPC endpoints or the NAT gateway.
   *
   * Checked at synth: only with `vpc`; not an empty list.
   *
   * @default - with `vpc`, a new security group that allows only outbound HTTPS (TCP 443)
   */
  readonly securityGroups?: ec2.ISecurityGroup[];

  /**
   * The KMS key that encrypts the log group of the stack's import engine.
   *
   * Its key policy must let CloudWatch Logs use it: principal `logs.<region>.amazonaws.com`
   * with `kms:Encrypt*`, `kms:Decrypt*`, `kms:ReEncrypt*`, `kms:GenerateDataKey*` and
   * `kms:Describe*`, under an `ArnLike` condition on `kms:EncryptionContext:aws:logs:arn`
   * matching the log group. A key passed in is used as it is. Every import of a stack must
   * give the same key (the engine is one per stack).
   *
   * Checked at synth: in the stack's Region.
   *
   * @see https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html
   * @default - a new key per stack with yearly rotation, retained like the log group, whose
   * key policy lets CloudWatch Logs use it for this account's log groups in the Region
   * (a KMS key costs about $1 a month)
   */
  readonly logEncryptionKey?: kms.IKey;
}

/**
 * Imports a virtual machine disk image into an Amazon Machine Image with EC2 VM Import.
 *
 * A custom resource calls `ImportImage`, waits for the import task to complete and returns
 * the AMI's ID. The construct creates what VM Import needs, once per stack and only when used:
 * the service role, a KMS key that encrypts the AMI's snapshots and, for
 * `DiskImage.fromImportBucket`, a bucket for disk images; each can be passed in.
 * It is an `ec2.IMachineImage`, so an instance can be launched from it directly.
 *
 * @see https://docs.aws.amazon.com/vm-import/latest/userguide/what-is-vmimport.html
 *
 * @example
 * import * as ec2 from 'aws-cdk-lib/aws-ec2';
 * import { BootMode, DiskImage, LicenseType, Platform, VmImageImport } from 'cdk-vm-import';
 *
 * declare const vpc: ec2.IVpc;
 *
 * const image = new VmImageImport(this, 'Image', {
 *   diskImages: [DiskImage.fromAsset('images/web-server.vmdk')],
 *   platform: Platform.LINUX,
 *   bootMode: BootMode.LEGACY_BIOS,
 *   licenseType: LicenseType.BYOL,
 * });
 *
 * new ec2.Instance(this, 'WebServer', {
 *   vpc,
 *   machineImage: image,
 *   instanceType: ec2.InstanceType.of(ec2.InstanceClass.T3, ec2.InstanceSize.MICRO),
 * });
 */
export class VmImageImport extends Construct implements ec2.IMachineImage, ITaggable {
  /**
   * The ID of the imported AMI.
   *
   * Checked at synth: neither it nor `snapshotIds` nor `importTaskId` is inside a
   * CloudFormation Mapping of the app (as `ec2.MachineImage.genericLinux({ region: image.imageId })`
   * makes in a stack whose Region is unknown at synth), which CloudFormation would reject at
   * deploy: pass the import itself as the `machineImage`.
   */
  public readonly imageId: string;
  /** The IDs of the AMI's snapshots, one per disk. */
  public readonly snapshotIds: string[];
  /**
   * The ID of the import task, such as `import-ami-0123456789abcdef0`; with
   * `ImportMethod.SNAPSHOTS`, the first disk's ImportSnapshot task (`import-snap-…`).
   */
  public readonly importTaskId: string;
  /**
   * The stack's import engine state machine; each import is one execution of it, whose
   * history shows the task's progress. Shared by every import in the stack.
   */
  public readonly stateMachine: sfn.IStateMachine;
  /** The log group of the stack's import engine (its function and state machine). */
  public readonly logGroup: logs.ILogGroup;
  /** The service role VM Import assumes: the one passed in, or the stack's. */
  public readonly role: iam.IRole;
  /**
   * The KMS key that encrypts the AMI's snapshots: the one passed in, or the stack's.
   *
   * Undefined when the snapshots are not encrypted.
   */
  public readonly encryptionKey?: kms.IKey;
  /** Tags for the import task, the AMI and its snapshots. */
  public readonly tags: TagManager;
  /** The SSM parameter that publishes the AMI's ID, with `ssmParameterName`. */
  public readonly parameter?: ssm.IStringParameter;

  private readonly platform?: Platform;
  private readonly encrypted: boolean;
  private readonly givenBucket?: s3.IBucket;
  private readonly bucketOptions: SharedBucketOptions;

  constructor(scope: Construct, id: string, props: VmImageImportProps) {
    super(scope, id);
    validatePropTypes(props);
    validateImport(this, props);
    validateResources(this, props);
    const { vpc, vpcSubnets, securityGroups, logEncryptionKey } = props;
    const engineSettings = { vpc, vpcSubnets, securityGroups, logEncryptionKey };
    validateEngineSettings(this, engineSettings);

    const encrypted = props.encrypted ?? true;
    this.platform = props.platform;
    this.tags = new TagManager(TagType.KEY_VALUE, RESOURCE_TYPE, props.tags);
    // The stack's own tags (`StackProps.tags`) reach only what CloudFormation manages, not the
    // AMI: add them at the lowest priority, so that this construct's tags and Tags.of() win,
    // and Tags.of(...).remove() and excludeResourceTypes keep working.
    for (const [key, value] of Object.entries(Stack.of(this).tags.tagValues())) {
      this.tags.setTag(key, value, 0);
    }
    // Tags.of() sets tags when aspects run, before validations: check all of them then.
    this.node.addValidation({ validate: () => validateAmiTags(this.tags.tagValues()) });

    // The key, bucket and role are the stack's unless passed in: one of each per stack, each
    // made when an import first uses it.
    const shared = SharedImportResources.of(this);
    const keyRemovalPolicy = props.encryptionKeyRemovalPolicy ?? RemovalPolicy.RETAIN;
    this.encryptionKey = props.encryptionKey ?? (encrypted ? shared.useKey(this, keyRemovalPolicy, true) : undefined);
    this.givenBucket = props.bucket;
    this.bucketOptions = {
      removalPolicy: props.bucketRemovalPolicy ?? RemovalPolicy.RETAIN,
      keyRemovalPolicy,
      diskImageExpiration: props.diskImageExpiration,
      accessLogsBucket: props.accessLogsBucket,
      accessLogsPrefix: props.accessLogsPrefix,
    };
    this.role = props.role ?? shared.useRole();
    const grantRole = roleForGrants(this, this.role);
    if (encrypted && this.encryptionKey) {
      grantEncryptSnapshots(grantRole, this.encryptionKey);
      if (props.encryptionKey === undefined && keyRemovalPolicy === RemovalPolicy.DESTROY && props.removalPolicy !== RemovalPolicy.DESTROY) {
        Annotations.of(this).addWarningV2('cdk-vm-import:keyDestroyedImageKept',
          "'encryptionKeyRemovalPolicy' is DESTROY but 'removalPolicy' keeps the AMI: once the stack is deleted and KMS deletes the key, " +
          "the kept AMI and its snapshots can never be read again. Set 'removalPolicy: RemovalPolicy.DESTROY' too, or keep the key.");
      }
    }
    if (props.licenseConfigurationArns?.length) {
      grantLicenseConfigurations(grantRole, props.licenseConfigurationArns);
    }

    // The stack's bucket is made only if a disk reads it (DiskImage.fromImportBucket).
    const self = this;
    const bindOptions: DiskImageBindOptions = {
      role: grantRole,
      bootMode: props.bootMode,
      get bucket() {
        return self.bucket;
      },
    };
    const dataDiskOptions: DiskImageBindOptions = {
      role: grantRole,
      bootMode: props.bootMode,
      bootDisk: false,
      get bucket() {
        return self.bucket;
      },
    };
    const disks = props.diskImages.map((disk, i) => disk.bind(this, i === 0 ? bindOptions : dataDiskOptions));
    validateDisks(this, props, disks);
    const grantsPolicy = grantRole === this.role ? undefined : grantRole.node.tryFindChild('Policy');
    if (grantsPolicy) {
      acceptInPacks(grantsPolicy, 'IAMNoInlinePolicy', COMPLIANCE_PACKS,
        "This stack's grants to a role of another stack are a policy of this stack attached to that role, so that the other stack's " +
        'template does not change: a customer managed policy would hold the same statements for the same one role.');
    }

    const engine = VmImportEngine.getOrCreate(this, engineSettings);
    engine.useLogGroupRemovalPolicy(this, props.logGroupRemovalPolicy ?? RemovalPolicy.RETAIN);
    this.role.grantPassRole(engine.handlerRole);
    this.stateMachine = engine.stateMachine;
    this.logGroup = engine.logGroup;

    const timeout = props.timeout ?? DEFAULT_TIMEOUT;
    const pollInterval = props.pollInterval ?? DEFAULT_POLL_INTERVAL;
    const tags = Lazy.any({ produce: () => (this.tags.hasTags() ? this.tags.renderTags() : undefined) }) as unknown as WireProperties['Tags'];
    const removalPolicy = (props.removalPolicy ?? RemovalPolicy.RETAIN) === RemovalPolicy.DESTROY ? REMOVAL_DESTROY : REMOVAL_RETAIN;
    const image: WireImageProperties = {
      DiskContainers: disks.map(toWireDisk),
      Description: props.description,
      Encrypted: String(encrypted),
      KmsKeyId: encrypted ? this.encryptionKey?.keyArn : undefined,
      LicenseType: props.licenseType,
      UsageOperation: props.usageOperation,
      Platform: props.platform,
      BootMode: props.bootMode,
      Architecture: props.architecture,
      Hypervisor: props.hypervisor,
      LicenseConfigurationArns: props.licenseConfigurationArns,
      ImageName: props.imageName,
      ImageDescription: props.imageDescription,
      ImportMethod: props.importMethod === ImportMethod.SNAPSHOTS ? METHOD_SNAPSHOTS : undefined,
      TpmSupport: props.tpmSupport ? 'v2.0' : undefined,
      UefiData: props.uefiData,
    };
    if (props.imageName !== undefined && props.importMethod !== ImportMethod.SNAPSHOTS && encrypted && this.encryptionKey) {
      // The state machine's role makes the copy: CopyImage uses the key on its behalf.
      grantEbsKeyUse(this, engine.stateMachine.role, this.encryptionKey);
    }

    // A WaitCondition cannot be updated: a change that shapes the image needs a new one,
    // so its ID carries a hash of those properties (tags, the role, the upload data, the
    // removal policy and the timeouts are not among them).
    const waitCondition = new CfnWaitCondition(this, `Wait${imageHash(this, image)}`, {});
    waitCondition.cfnOptions.creationPolicy = {
      // CloudFormation's documented form: PT#H#M#S.
      resourceSignal: { count: 1, timeout: Duration.seconds(waitConditionSeconds(timeout, pollInterval)).toIsoString() },
    };

    const properties: WireProperties = {
      ...image,
      StateMachineArn: engine.stateMachine.stateMachineArn,
      RoleName: this.role.roleName,
      ClientData: props.clientData && toWireClientData(props.clientData),
      Tags: tags,
      RemovalPolicy: removalPolicy,
      WaitTimeoutSeconds: String(timeout.toSeconds()),
      PollIntervalSeconds: String(pollInterval.toSeconds()),
      WaitConditionId: waitCondition.logicalId,
      // The snapshot route registers the AMI with it; the result resource sets it on either route.
      ImdsSupport: props.requireImdsv2 && props.importMethod === ImportMethod.SNAPSHOTS ? 'v2.0' : undefined,
    };
    const start = new CustomResource(this, 'Resource', {
      serviceToken: engine.serviceToken,
      // The function answers within its own 15 minutes: a lost answer fails the stack then, not after an hour.
      serviceTimeout: ANSWER_TIMEOUT,
      resourceType: RESOURCE_TYPE,
      properties: properties as unknown as Record<string, unknown>,
    });
    // The execution needs the import role and its policies before ImportImage runs, and the
    // function needs its permissions on the state machine.
    start.node.addDependency(this.role, grantRole, engine.executionsPolicy);
    // A construct dependency (available in every supported aws-cdk-lib): CfnResource#addDependency
    // is deprecated from aws-cdk-lib 2.263, and its replacement is missing from the 2.257 floor.
    waitCondition.node.addDependency(start);

    validateSharing(this, props, encrypted, this.encryptionKey);
    if (encrypted && isShared(props) && this.encryptionKey instanceof kms.Key) {
      allowSharedLaunches(this, this.encryptionKey, props);
    }
    const resultProperties: WireResultProperties = {
      ExecutionArn: start.ref,
      Tags: tags,
      RemovalPolicy: removalPolicy,
      LaunchPermissions: wireLaunchPermissions(props),
      ImdsSupport: props.requireImdsv2 ? 'v2.0' : undefined,
    };
    const result = new CustomResource(this, 'Result', {
      serviceToken: engine.serviceToken,
      serviceTimeout: ANSWER_TIMEOUT,
      resourceType: RESULT_RESOURCE_TYPE,
      properties: resultProperties as unknown as Record<string, unknown>,
    });
    result.node.addDependency(waitCondition);

    this.importTaskId = result.getAttString(ATTR_IMPORT_TASK_ID);
    this.imageId = result.getAttString(ATTR_IMAGE_ID);
    this.snapshotIds = Fn.split(',', result.getAttString(ATTR_SNAPSHOT_IDS));
    this.encrypted = encrypted;
    // CloudFormation rejects these in a template Mapping (genericLinux() in a stack of unknown Region): say so at synth.
    const attributes = new Map([[ATTR_IMAGE_ID, 'imageId'], [ATTR_SNAPSHOT_IDS, 'snapshotIds'], [ATTR_IMPORT_TASK_ID, 'importTaskId']]
      .map(([attribute, name]) => [Tokenization.reverseString(result.getAttString(attribute)).firstToken!, name]));
    this.node.addValidation({ validate: () => validateMappings(this, attributes) });

    if (props.ssmParameterName !== undefined) {
      validateParameterName(props.ssmParameterName);
      this.parameter = new ssm.StringParameter(this, 'Parameter', {
        parameterName: props.ssmParameterName,
        stringValue: this.imageId,
        dataType: ssm.ParameterDataType.AWS_EC2_IMAGE,
        description: `The AMI imported by ${this.node.path}`,
      });
    }
  }

  /**
   * Lets a principal launch instances from the AMI: `ec2:RunInstances` on the AMI and, for
   * an encrypted AMI, the key actions EC2 performs on its behalf (`kms:CreateGrant`,
   * `Decrypt`, `DescribeKey`, `GenerateDataKeyWithoutPlaintext`, `ReEncryptFrom`, `ReEncryptTo`), only through
   * EC2 in this Region (`kms:ViaService`). RunInstances also needs the instance's other
   * resources (subnet, network interface, security group, volume, instance): grant those
   * as for any launch.
   */
  public grantLaunch(grantee: iam.IGrantable): iam.Grant {
    return grantLaunch(this, grantee, this.imageId, this.encrypted ? this.encryptionKey : undefined);
  }

  /**
   * The disk image bucket: the one passed in, or the stack's.
   *
   * Reading this attribute creates the stack's bucket if no import of the stack has yet (an
   * import whose disks do not read it creates none). A pipeline can upload to it
   * (`image.bucket.grantPut(role)`) for `DiskImage.fromImportBucket`.
   */
  public get bucket(): s3.IBucket {
    return this.givenBucket ?? SharedImportResources.of(this).useBucket(this, this.bucketOptions);
  }

  /**
   * The AMI as a machine image for `ec2.Instance`, launch templates and Auto Scaling groups.
   *
   * Checked at synth: `scope` must be in the Region of the import (when both Regions are
   * known), since an AMI exists only in its own Region.
   */
  public getImage(scope: Construct): ec2.MachineImageConfig {
    checkImageRegion(this, scope);
    const osType = this.platform === Platform.WINDOWS ? ec2.OperatingSystemType.WINDOWS : ec2.OperatingSystemType.LINUX;
    return { imageId: this.imageId, osType, userData: ec2.UserData.forOperatingSystem(osType) };
  }
}

/** A short, stable hash of what shapes the image, as CloudFormation will see it. */
function imageHash(scope: Construct, image: WireImageProperties): string {
  const resolved: unknown = Stack.of(scope).resolve(image);
  return createHash('sha256').update(JSON.stringify(resolved)).digest('hex').slice(0, 12).toUpperCase();
}

/** The WaitCondition's timeout: the import's, plus room for one poll and for signalling, at most 12 hours. */
function waitConditionSeconds(timeout: Duration, pollInterval: Duration): number {
  if (timeout.isUnresolved() || pollInterval.isUnresolved()) {
    // Known only at deploy time, where CloudFormation cannot add them up (and a token's
    // arithmetic here yields the token itself): wait the longest. The execution's own
    // deadline, computed from the deployed values, still ends the import in time.
    return MAX_WAIT_CONDITION_SECONDS;
  }
  return Math.min(MAX_WAIT_CONDITION_SECONDS, timeout.toSeconds() + pollInterval.toSeconds() + 300);
}

function toWireDisk(disk: DiskImageConfig): WireDiskContainer {
  return {
    Format: disk.format,
    DeviceName: disk.deviceName,
    Description: disk.description,
    Url: disk.url,
    S3Bucket: disk.s3Bucket,
    S3Key: disk.s3Key,
    SnapshotId: disk.snapshotId,
  };
}

function toWireClientData(data: ClientData): WireClientData {
  return {
    Comment: data.comment,
    UploadStart: data.uploadStart?.toISOString(),
    UploadEnd: data.uploadEnd?.toISOString(),
    UploadSize: data.uploadSize === undefined ? undefined : String(data.uploadSize.toGibibytes({ rounding: SizeRoundingBehavior.NONE })),
  };
}

/** SSM's longest parameter name (its 2,048 include 1,037 for its own use), and deepest hierarchy. */
const MAX_PARAMETER_NAME = 1011;
const MAX_PARAMETER_LEVELS = 15;

/** Why SSM would refuse a parameter name (PutParameter's naming constraints), or undefined. */
function parameterNameProblem(name: string): string | undefined {
  const bad = [...new Set([...name].filter((ch) => !/[a-zA-Z0-9_.\-/]/.test(ch)))];
  const levels = name.replace(/^\//, '').split('/');
  const reserved = ['aws', 'ssm'].find((prefix) => levels[0].toLowerCase().startsWith(prefix));
  if (name.length === 0) return 'is empty';
  if (name.length > MAX_PARAMETER_NAME) return `has ${name.length} characters`;
  if (bad.length > 0) return `holds ${bad.map((ch) => JSON.stringify(ch)).join(', ')}`;
  if (reserved) return `starts with '${reserved}', which SSM reserves (in any case)`;
  if (name.includes('/') && !name.startsWith('/')) return `is in a hierarchy but does not start with '/': write ${JSON.stringify(`/${name}`)}`;
  if (levels.includes('')) return "has an empty level (two '/' in a row, or a '/' at the end)";
  if (levels.length > MAX_PARAMETER_LEVELS) return `has ${levels.length} levels`;
  return undefined;
}

function validateParameterName(name: string): void {
  if (Token.isUnresolved(name)) {
    return;
  }
  const problem = parameterNameProblem(name);
  if (problem) {
    throw new Error(
      `'ssmParameterName' is ${JSON.stringify(name)}: it ${problem}; a parameter name has 1 to 1,011 letters, digits and . - _ /, ` +
      "does not start with 'aws' or 'ssm', starts with '/' when it is in a hierarchy, and has at most 15 levels (such as '/images/web-server').",
    );
  }
}
