import * as path from 'path';
import { Aws, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as cr from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import { TAG_STACK_ID } from './contract';
import { acceptNagFindings } from './nag';

/** The handler bundle, built by esbuild before compile and shipped in the package. */
const HANDLER_ASSET = path.join(__dirname, '..', '..', 'assets', 'lambda', 'index');

/** How often isComplete polls an import task. */
export const QUERY_INTERVAL = Duration.seconds(30);

/** CloudFormation waits at most one hour for a custom resource: the provider's whole wait. */
export const TOTAL_TIMEOUT = Duration.hours(1);

/**
 * The longest an import may wait for EC2 before the handler cancels it: the provider's
 * hour less the time to start it (IAM propagation retries) and one poll.
 */
export const MAX_WAIT = Duration.minutes(55);

/**
 * The stack-wide custom resource provider shared by every `VmImageImport` in a stack:
 * one handler role, two handler functions and aws-cdk-lib's Provider framework.
 */
export class VmImportProvider extends Construct {
  /** Returns the stack's provider, creating it on first use. */
  public static getOrCreate(scope: Construct): VmImportProvider {
    const stack = Stack.of(scope);
    const id = 'CdkVmImportProvider';
    const existing = stack.node.tryFindChild(id);
    return existing instanceof VmImportProvider ? existing : new VmImportProvider(stack, id);
  }

  /** The Provider framework's service token. */
  public readonly serviceToken: string;
  /** The role both handler functions run with. */
  public readonly handlerRole: iam.Role;

  private constructor(scope: Construct, id: string) {
    super(scope, id);

    const logGroup = new logs.LogGroup(this, 'Logs', {
      retention: logs.RetentionDays.ONE_YEAR,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.handlerRole = new iam.Role(this, 'HandlerRole', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'Runs the cdk-vm-import custom resource handler',
    });
    logGroup.grantWrite(this.handlerRole);
    this.grantEc2(this.handlerRole);

    const code = lambda.Code.fromAsset(HANDLER_ASSET);
    const handler = (name: string, handlerName: string, timeout: Duration) => new lambda.Function(this, name, {
      code,
      handler: `index.${handlerName}`,
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      role: this.handlerRole,
      timeout,
      memorySize: 256,
      logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      description: `cdk-vm-import: ${handlerName} of the VM image import custom resource`,
    });
    // onEvent retries ImportImage for about two minutes while a new role propagates.
    const onEvent = handler('OnEvent', 'onEvent', Duration.minutes(5));
    const isComplete = handler('IsComplete', 'isComplete', Duration.minutes(2));

    // Roles for the framework's functions without the AWS managed policy the framework
    // would otherwise attach: they write only to this log group. (onEvent starts the
    // waiter, which runs isComplete: one shared role would make a dependency cycle.)
    const frameworkRole = (name: string) => {
      const role = new iam.Role(this, name, {
        assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
        description: 'Runs the custom resource Provider framework of cdk-vm-import',
      });
      logGroup.grantWrite(role);
      return role;
    };
    const frameworkRoles = [frameworkRole('FrameworkOnEventRole'), frameworkRole('FrameworkWaiterRole')];

    const provider = new cr.Provider(this, 'Provider', {
      onEventHandler: onEvent,
      isCompleteHandler: isComplete,
      queryInterval: QUERY_INTERVAL,
      totalTimeout: TOTAL_TIMEOUT,
      logGroup,
      frameworkOnEventRole: frameworkRoles[0],
      frameworkCompleteAndTimeoutRole: frameworkRoles[1],
    });
    this.serviceToken = provider.serviceToken;
    this.acceptNagFindings(provider, frameworkRoles);
  }

  /** The cdk-nag findings this design accepts, each on the resource it concerns. */
  private acceptNagFindings(provider: cr.Provider, frameworkRoles: iam.Role[]): void {
    acceptNagFindings(this.handlerRole.node.findChild('DefaultPolicy'), [{
      id: 'AwsSolutions-IAM5',
      reason: 'Describe* calls and ImportImage have no resource-level permissions; tagging, cancelling and deleting are limited to EC2 images, snapshots and import tasks of this account and Region, the destructive ones to those tagged with this stack ID.',
      appliesTo: [
        'Resource::*',
        'Resource::arn:<AWS::Partition>:ec2:<AWS::Region>::image/*',
        'Resource::arn:<AWS::Partition>:ec2:<AWS::Region>::snapshot/*',
        'Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:import-image-task/*',
      ],
    }]);
    const invokeVersions = {
      id: 'AwsSolutions-IAM5',
      reason: "aws-cdk-lib's Provider framework grants lambda:InvokeFunction on each function and its versions (<function ARN>:*).",
      appliesTo: [{ regex: '/^Resource::<CdkVmImportProvider.*\\.Arn>:\\*$/g' }] as unknown as string[],
    };
    for (const role of frameworkRoles) {
      acceptNagFindings(role.node.findChild('DefaultPolicy'), [invokeVersions]);
    }
    const waiter = provider.node.findChild('waiter-state-machine');
    acceptNagFindings(waiter.node.findChild('Role').node.findChild('DefaultPolicy'), [invokeVersions]);
    acceptNagFindings(waiter, [{
      id: 'AwsSolutions-SF1',
      reason: "The Provider framework's waiter only retries isComplete, which logs every poll to the provider's log group; logging the waiter too would need logs:* delivery permissions on every resource.",
    }, {
      id: 'AwsSolutions-SF2',
      reason: "The Provider framework's waiter only retries isComplete; aws-cdk-lib offers no X-Ray option for it.",
    }]);
    for (const id of ['framework-onEvent', 'framework-isComplete', 'framework-onTimeout']) {
      acceptNagFindings(provider.node.findChild(id), [{
        id: 'AwsSolutions-L1',
        reason: "The Provider framework's own functions use the runtime aws-cdk-lib chooses for them; the import handlers use the newest Node.js runtime.",
      }]);
    }
  }

  /** Exactly the EC2 actions the handler calls. */
  private grantEc2(role: iam.Role): void {
    const arn = (resource: string, account: string = Aws.ACCOUNT_ID) =>
      `arn:${Aws.PARTITION}:ec2:${Aws.REGION}:${account}:${resource}`;
    const image = arn('image/*', '');
    const snapshot = arn('snapshot/*', '');
    const task = arn('import-image-task/*');
    const ownedByThisStack = { StringEquals: { [`aws:ResourceTag/${TAG_STACK_ID}`]: Aws.STACK_ID } };

    role.addToPolicy(new iam.PolicyStatement({
      sid: 'DescribeImports',
      // Describe actions have no resource-level permissions.
      actions: ['ec2:DescribeImportImageTasks', 'ec2:DescribeImages', 'ec2:DescribeSnapshots'],
      resources: ['*'],
    }));
    role.addToPolicy(new iam.PolicyStatement({
      sid: 'StartImports',
      // ImportImage creates the task and reads snapshots and disks whose IDs are unknown
      // until the call; the service role, not this one, reads the disk images.
      actions: ['ec2:ImportImage'],
      resources: ['*'],
    }));
    role.addToPolicy(new iam.PolicyStatement({
      sid: 'TagImportOutputs',
      actions: ['ec2:CreateTags'],
      resources: [image, snapshot, task],
    }));
    role.addToPolicy(new iam.PolicyStatement({
      sid: 'ManageThisStacksImports',
      actions: ['ec2:CancelImportTask', 'ec2:DeregisterImage', 'ec2:DeleteSnapshot', 'ec2:DeleteTags'],
      resources: [image, snapshot, task],
      conditions: ownedByThisStack,
    }));
  }
}
