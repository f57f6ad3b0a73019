import { Annotations, IResource, Stack, Token } from 'aws-cdk-lib';
import { Construct } from 'constructs';

function differs(a: string, b: string): boolean {
  return !Token.isUnresolved(a) && !Token.isUnresolved(b) && a !== b;
}

/**
 * Checks that a resource passed in can serve an import in this stack: VM Import reads the
 * bucket, assumes the role and uses the key only in the importing account and Region.
 */
export function checkPlacement(scope: Construct, prop: string, resource: IResource, needsSameAccount: boolean): void {
  const stack = Stack.of(scope);
  const { account, region } = resource.env;
  if (differs(region, stack.region) && region !== '') {
    throw new Error(`'${prop}' is in Region ${region} but the stack deploys to ${stack.region}: VM Import only uses ${prop === 'role' ? 'roles' : 'buckets and keys'} of the importing Region. Use one in ${stack.region}.`);
  }
  if (differs(account, stack.account)) {
    const message = `'${prop}' belongs to account ${account} but the stack deploys to ${stack.account}`;
    if (needsSameAccount) {
      throw new Error(`${message}: VM Import assumes a service role of the importing account. Use a role of account ${stack.account}.`);
    }
    Annotations.of(scope).addWarningV2(`cdk-vm-import:crossAccount${prop}`,
      `${message}: its own policy must let this account's import role use it, which this stack cannot change.`);
  }
}

/**
 * Checks that a construct using an imported AMI is in the AMI's Region: an AMI ID means
 * nothing in another Region, and aws-cdk-lib would wire a cross-Region reference that
 * fails at deploy.
 */
export function checkImageRegion(image: Construct, user: Construct): void {
  const imported = Stack.of(image).region;
  const used = Stack.of(user).region;
  if (differs(imported, used)) {
    throw new Error(
      `${user.node.path} is in Region ${used} but uses the AMI of ${image.node.path}, which is imported in ${imported}: AMIs are regional. ` +
      `Import the disk image again with a VmImageImport in a stack in ${used}, or launch the instance in ${imported}.`,
    );
  }
}
