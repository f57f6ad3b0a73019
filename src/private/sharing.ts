/**
 * Using the imported AMI: whom it is shared with (launch permissions and the key policy
 * statements those principals need to launch an encrypted AMI), IMDSv2, and what a role
 * needs to launch instances from it.
 */
import { Fn, Stack, Token } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { show } from './checks';
import { WireLaunchPermissions } from './contract';

/** What the sharing props ask for. */
export interface SharingProps {
  readonly shareWithAccounts?: string[];
  readonly shareWithOrganizations?: string[];
  readonly shareWithOrganizationalUnits?: string[];
}

const ACCOUNT = /^\d{12}$/;
const ORGANIZATION_ARN = /^arn:aws[a-z-]*:organizations::\d{12}:organization\/(o-[a-z0-9]{10,32})$/;
const OU_ARN = /^arn:aws[a-z-]*:organizations::\d{12}:ou\/(o-[a-z0-9]{10,32})\/(ou-[0-9a-z]{4,32}-[a-z0-9]{8,32})$/;

/** What a principal needs of the AMI's key to launch it (EC2 user guide, sharing encrypted AMIs). */
const LAUNCH_KEY_ACTIONS = ['kms:DescribeKey', 'kms:Decrypt', 'kms:ReEncryptFrom', 'kms:ReEncryptTo', 'kms:GenerateDataKey', 'kms:GenerateDataKeyWithoutPlaintext'];

function checkEach(prop: string, values: string[] | undefined, pattern: RegExp, what: string): void {
  for (const value of values ?? []) {
    if (!Token.isUnresolved(value) && !pattern.test(value)) {
      throw new Error(`'${prop}' has ${show(value)}, which is not ${what}.`);
    }
  }
}

/** Whether the props share the AMI with anyone. */
export function isShared(props: SharingProps): boolean {
  return [props.shareWithAccounts, props.shareWithOrganizations, props.shareWithOrganizationalUnits].some((list) => (list?.length ?? 0) > 0);
}

/**
 * Checks the sharing props at synth. Sharing an encrypted AMI needs a customer managed key
 * whose policy this stack writes: the AWS managed EBS key cannot be shared, and the policy
 * of a key from elsewhere is not this stack's to change.
 */
export function validateSharing(scope: Construct, props: SharingProps, encrypted: boolean, key: kms.IKey | undefined): void {
  checkEach('shareWithAccounts', props.shareWithAccounts, ACCOUNT, 'an AWS account ID (12 digits)');
  checkEach('shareWithOrganizations', props.shareWithOrganizations, ORGANIZATION_ARN,
    'an organization ARN (arn:aws:organizations::<management account>:organization/o-<id>)');
  checkEach('shareWithOrganizationalUnits', props.shareWithOrganizationalUnits, OU_ARN,
    'an organizational unit ARN (arn:aws:organizations::<management account>:ou/o-<id>/ou-<id>)');
  const own = Stack.of(scope).account;
  if ((props.shareWithAccounts ?? []).some((a) => a === own)) {
    throw new Error(`'shareWithAccounts' has this stack's own account ${show(own)}: the AMI is the account's already; remove it.`);
  }
  if (!isShared(props) || !encrypted) {
    return;
  }
  if (!(key instanceof kms.Key) || Stack.of(key) !== Stack.of(scope)) {
    throw new Error(
      `${scope.node.path}: an encrypted AMI is shared only with the key's use, and ${key ? `the key ${key.node.path}` : 'its key'} is not a ` +
      'customer managed key whose policy this stack writes (a key imported by reference, or of another stack). Leave `encryptionKey` ' +
      "unset so the construct creates one, pass a kms.Key of this stack, or add the principals to your key's policy and share the AMI yourself.",
    );
  }
}

/** The launch permissions on the wire. */
export function wireLaunchPermissions(props: SharingProps): WireLaunchPermissions | undefined {
  if (!isShared(props)) {
    return undefined;
  }
  return {
    UserIds: props.shareWithAccounts ?? [],
    OrganizationArns: props.shareWithOrganizations ?? [],
    OrganizationalUnitArns: props.shareWithOrganizationalUnits ?? [],
  };
}

/**
 * Lets the principals the AMI is shared with use its key to launch it: accounts by their
 * root principal (their administrators then grant it through IAM), organizations through
 * `aws:PrincipalOrgID` and organizational units through `aws:PrincipalOrgPaths`. CreateGrant
 * only for AWS resources (the EBS volumes EC2 creates).
 */
export function allowSharedLaunches(owner: Construct, key: kms.Key, props: SharingProps): void {
  // The key may be the stack's, shared by several imports: each import's statements get Sids of their own.
  const suffix = owner.node.addr.slice(0, 10);
  const statements: { sid: string; principals: iam.IPrincipal[]; conditions?: Record<string, unknown> }[] = [];
  const accounts = props.shareWithAccounts ?? [];
  if (accounts.length > 0) {
    statements.push({ sid: 'SharedAccounts', principals: accounts.map((a) => new iam.AccountPrincipal(a)) });
  }
  // A token ARN is split by CloudFormation: organization/o-<id>, ou/o-<id>/ou-<id>.
  const part = (arn: string, index: number) => Fn.select(index, Fn.split('/', arn));
  const orgIds = (props.shareWithOrganizations ?? []).map((arn) => ORGANIZATION_ARN.exec(arn)?.[1] ?? part(arn, 1));
  if (orgIds.length > 0) {
    statements.push({ sid: 'SharedOrganizations', principals: [new iam.AnyPrincipal()], conditions: { StringEquals: { 'aws:PrincipalOrgID': orgIds } } });
  }
  const paths = (props.shareWithOrganizationalUnits ?? []).map((arn) => {
    const m = OU_ARN.exec(arn);
    // The OU ARN has no root ID: match any root between the organization and the OU.
    return m ? `${m[1]}/*/${m[2]}/*` : Fn.join('', [part(arn, 1), '/*/', part(arn, 2), '/*']);
  });
  if (paths.length > 0) {
    statements.push({ sid: 'SharedOrganizationalUnits', principals: [new iam.AnyPrincipal()], conditions: { 'ForAnyValue:StringLike': { 'aws:PrincipalOrgPaths': paths } } });
  }
  for (const s of statements) {
    key.addToResourcePolicy(new iam.PolicyStatement({
      sid: `LaunchFrom${s.sid}${suffix}`, principals: s.principals, actions: LAUNCH_KEY_ACTIONS, resources: ['*'], conditions: s.conditions,
    }));
    key.addToResourcePolicy(new iam.PolicyStatement({
      sid: `GrantFor${s.sid}${suffix}`,
      principals: s.principals,
      actions: ['kms:CreateGrant'],
      resources: ['*'],
      conditions: { ...s.conditions, Bool: { 'kms:GrantIsForAWSResource': true } },
    }));
  }
}

/**
 * What a role needs to launch instances from the AMI: `ec2:RunInstances` on it, and the key
 * actions EC2 performs on the role's behalf, only through EC2 in this Region.
 */
export function grantLaunch(scope: Construct, grantee: iam.IGrantable, imageId: string, key: kms.IKey | undefined): iam.Grant {
  const stack = Stack.of(scope);
  const image = iam.Grant.addToPrincipal({
    grantee,
    actions: ['ec2:RunInstances'],
    resourceArns: [`arn:${stack.partition}:ec2:${stack.region}::image/${imageId}`],
  });
  return key ? image.combine(grantEbsKeyUse(scope, grantee, key)) : image;
}

/**
 * The key actions EC2 performs on a principal's behalf when it launches from, or copies, an
 * AMI encrypted with the key: only through EC2 in this Region (`kms:ViaService`).
 */
export function grantEbsKeyUse(scope: Construct, grantee: iam.IGrantable, key: kms.IKey): iam.Grant {
  const stack = Stack.of(scope);
  return iam.Grant.addToPrincipal({
    grantee,
    actions: ['kms:CreateGrant', 'kms:Decrypt', 'kms:DescribeKey', 'kms:GenerateDataKeyWithoutPlaintext', 'kms:ReEncryptFrom', 'kms:ReEncryptTo'],
    resourceArns: [key.keyArn],
    conditions: { StringEquals: { 'kms:ViaService': `ec2.${stack.region}.${stack.urlSuffix}` } },
  });
}
