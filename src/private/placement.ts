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
