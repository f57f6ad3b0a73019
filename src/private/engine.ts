import * as path from 'path';
import { Aws, Duration, Fn, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { STEP_COPY_TIMEOUT, STEP_FINISH_COPY, STEP_POLL_SNAPSHOTS, STEP_REGISTER, STEP_SIGNAL, STEP_START, STEP_TIMEOUT, TAG_STACK_ID } from './contract';
import { differingSetting, EngineSettings } from './engine-settings';
import { acceptInPacks, acceptNagFindings, COMPLIANCE_PACKS, NagPack } from './nag';
import { SharedChoice, showRemovalPolicy } from './shared';

/** The handler bundle, built by esbuild before compile and shipped in the package. */
const HANDLER_ASSET = path.join(__dirname, '..', '..', 'assets', 'lambda', 'index');

/** How often the task is polled by default. */
export const DEFAULT_POLL_INTERVAL = Duration.seconds(30);
/** The shortest and longest poll interval. */
export const MIN_POLL_INTERVAL = Duration.seconds(5);
export const MAX_POLL_INTERVAL = Duration.hours(1);
/** How long an import waits by default. */
export const DEFAULT_TIMEOUT = Duration.hours(6);
/** The longest an import may wait: CloudFormation's WaitCondition waits at most 12 hours. */
export const MAX_TIMEOUT = Duration.hours(12);

/**
 * The stack-wide import engine shared by every `VmImageImport` in a stack: one function
 * (both custom resources and the state machine's Lambda steps), its role, a Standard
 * state machine that runs each import, and one log group.
 *
 * The state machine, per import: start the import (waiting out EC2's quota and IAM
 * propagation), poll the task through the EC2 SDK integration, tag the AMI and its
 * snapshots, signal the import's WaitCondition; cancel the task when its wait runs out.
 * With a name, it copies the imported AMI to that name (CopyImage, tagged as it is made),
 * polls the copy, removes the imported AMI once the copy is available, and stops the copy
 * when the wait runs out.
 */
export class VmImportEngine extends Construct {
  /**
   * Returns the stack's engine, creating it on first use with the settings of the import
   * that asks first. A later import must give the same settings: the engine is one per stack.
   */
  public static getOrCreate(requester: Construct, settings: EngineSettings = {}): VmImportEngine {
    const stack = Stack.of(requester);
    const id = 'CdkVmImportEngine';
    const existing = stack.node.tryFindChild(id);
    if (!(existing instanceof VmImportEngine)) {
      return new VmImportEngine(stack, id, requester, settings);
    }
    const differs = differingSetting(existing.settings, settings);
    if (differs) {
      throw new Error(`'${differs}' of ${requester.node.path} differs from that of ${existing.createdFor}, which created the stack's import engine: ` +
        "every VmImageImport of a stack shares one engine, so give each of them the same 'vpc', 'vpcSubnets', 'securityGroups' and 'logEncryptionKey' (the same objects), or none.");
    }
    return existing;
  }

  /** The function's ARN: the custom resources' service token. */
  public readonly serviceToken: string;
  /** The role the function runs with. */
  public readonly handlerRole: iam.Role;
  /** Lets the function start, read and stop the state machine's executions (apart from its role's default policy, which the state machine depends on). */
  public readonly executionsPolicy: iam.Policy;
  public readonly stateMachine: sfn.StateMachine;
  public readonly logGroup: logs.LogGroup;
  /** The key that encrypts the log group. */
  public readonly logEncryptionKey: kms.IKey;
  /** The security groups of the function, when it runs in a VPC. */
  public readonly securityGroups?: ec2.ISecurityGroup[];
  private readonly logGroupRemoval = new SharedChoice('logGroupRemovalPolicy', "the stack's engine log group", showRemovalPolicy);

  private readonly settings: EngineSettings;
  /** The path of the import whose settings created the engine. */
  private readonly createdFor: string;

  private constructor(scope: Construct, id: string, requester: Construct, settings: EngineSettings) {
    super(scope, id);
    this.settings = settings;
    this.createdFor = requester.node.path;

    this.logEncryptionKey = settings.logEncryptionKey ?? this.createLogKey();
    this.logGroup = new logs.LogGroup(this, 'Logs', {
      // Under /aws/vendedlogs/, so that the state machine's log delivery does not grow the account's CloudWatch Logs
      // resource policy (5,120 characters) with each stack; the stack's own ID makes the name unique, also for a stack
      // made again with the name of one whose retained log group is still there.
      logGroupName: Fn.join('', ['/aws/vendedlogs/states/cdk-vm-import/', Aws.STACK_NAME, '-', Fn.select(2, Fn.split('/', Aws.STACK_ID))]),
      retention: logs.RetentionDays.ONE_YEAR,
      encryptionKey: this.logEncryptionKey,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.handlerRole = new iam.Role(this, 'HandlerRole', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'Runs the cdk-vm-import handler: starts imports, reports and deletes them',
    });
    this.logGroup.grantWrite(this.handlerRole);
    grantHandlerEc2(this.handlerRole);
    this.handlerRole.addToPolicy(new iam.PolicyStatement({
      sid: 'SignalThisStacksWaitConditions',
      // Whether a WaitCondition waits is asked of CloudFormation before it is signalled.
      actions: ['cloudformation:SignalResource', 'cloudformation:DescribeStackResource', 'cloudformation:DescribeStacks'],
      resources: [Aws.STACK_ID],
    }));
    if (settings.vpc) {
      this.handlerRole.addToPolicy(new iam.PolicyStatement({
        sid: 'RunInTheVpc',
        // What Lambda needs to attach the function to the VPC (AWSLambdaVPCAccessExecutionRole's
        // EC2 actions, without its logs:* on *); Lambda's guide grants them on "*".
        actions: [
          'ec2:CreateNetworkInterface',
          'ec2:DescribeNetworkInterfaces',
          'ec2:DescribeSubnets',
          'ec2:DeleteNetworkInterface',
          'ec2:AssignPrivateIpAddresses',
          'ec2:UnassignPrivateIpAddresses',
        ],
        resources: ['*'],
      }));
      this.securityGroups = settings.securityGroups ?? [this.createSecurityGroup(settings.vpc)];
    }

    const handler = new lambda.Function(this, 'Handler', {
      code: lambda.Code.fromAsset(HANDLER_ASSET),
      handler: 'index.handler',
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      role: this.handlerRole,
      // Long enough for a Delete that waits out InvalidSnapshot.InUse; a custom resource must answer within an hour.
      timeout: Duration.minutes(15),
      memorySize: 256,
      logGroup: this.logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      description: 'cdk-vm-import: the VM image import custom resources and state machine steps',
      vpc: settings.vpc,
      vpcSubnets: settings.vpcSubnets,
      securityGroups: this.securityGroups,
    });
    this.serviceToken = handler.functionArn;

    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      stateMachineType: sfn.StateMachineType.STANDARD,
      definitionBody: sfn.DefinitionBody.fromChainable(this.definition(handler)),
      comment: 'cdk-vm-import: runs one VM image import per execution',
      logs: { destination: this.logGroup, level: sfn.LogLevel.ERROR, includeExecutionData: false },
    });

    const executions = `arn:${Aws.PARTITION}:states:${Aws.REGION}:${Aws.ACCOUNT_ID}:execution:${this.stateMachine.stateMachineName}:*`;
    this.executionsPolicy = new iam.Policy(this, 'ExecutionsPolicy', {
      roles: [this.handlerRole],
      statements: [
        new iam.PolicyStatement({ sid: 'StartImports', actions: ['states:StartExecution'], resources: [this.stateMachine.stateMachineArn] }),
        new iam.PolicyStatement({
          sid: 'FollowImports',
          actions: ['states:DescribeExecution', 'states:GetExecutionHistory', 'states:StopExecution'],
          resources: [executions],
        }),
      ],
    });
    this.acceptNagFindings(handler);
  }

  /** A key for the log group, whose policy lets CloudWatch Logs use it for this account's log groups, as aws-cdk-lib's ECS services do. */
  private createLogKey(): kms.Key {
    const stack = Stack.of(this);
    const key = new kms.Key(this, 'LogsKey', {
      enableKeyRotation: true,
      description: `Encrypts the log group of the cdk-vm-import engine of ${stack.stackName}`,
      // The log group is retained: so is the key that decrypts it.
      removalPolicy: RemovalPolicy.RETAIN,
    });
    key.addToResourcePolicy(new iam.PolicyStatement({
      sid: 'LetCloudWatchLogsEncryptThisAccountsLogGroups',
      actions: ['kms:Encrypt*', 'kms:Decrypt*', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:Describe*'],
      principals: [new iam.ServicePrincipal(`logs.${stack.region}.amazonaws.com`)],
      resources: ['*'],
      // The log group's ARN would make a cycle (the group needs the key first).
      conditions: { ArnLike: { 'kms:EncryptionContext:aws:logs:arn': `arn:${stack.partition}:logs:${stack.region}:${stack.account}:log-group:*` } },
    }));
    return key;
  }

  /** The function's security group: outbound HTTPS only, to the AWS APIs and the response URL. */
  private createSecurityGroup(vpc: ec2.IVpc): ec2.SecurityGroup {
    const group = new ec2.SecurityGroup(this, 'HandlerSecurityGroup', {
      vpc,
      description: 'cdk-vm-import engine function: outbound HTTPS only',
      allowAllOutbound: false,
    });
    group.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'HTTPS to EC2, Step Functions, CloudFormation and S3 (endpoints or NAT)');
    return group;
  }

  /**
   * What `cdk destroy` does with the log group (retained unless asked): every import of the
   * stack shares it, so every import must ask the same.
   */
  public useLogGroupRemovalPolicy(by: Construct, policy: RemovalPolicy): void {
    this.logGroupRemoval.agree(by, policy);
    this.logGroup.applyRemovalPolicy(policy);
    // The engine's own log key goes with the log group it encrypts (a key passed in keeps its own policy).
    if (!this.settings.logEncryptionKey && this.logEncryptionKey instanceof kms.Key) {
      this.logEncryptionKey.applyRemovalPolicy(policy);
    }
  }

  private definition(handler: lambda.IFunction): sfn.IChainable {
    const step = (id: string, name: string, resultPath: string, extra: Record<string, string> = {}) => tasks.LambdaInvoke.jsonPath(this, id, {
      lambdaFunction: handler,
      payloadResponseOnly: true,
      payload: sfn.TaskInput.fromObject({
        Step: name,
        State: sfn.JsonPath.entirePayload,
        ExecutionArn: sfn.JsonPath.stringAt('$$.Execution.Id'),
        ...extra,
      }),
      resultPath,
      // Lambda's own errors, throttling and timeouts included (the CDK default leaves out the last two): every step is idempotent.
      retryOnServiceExceptions: false,
    }).addRetry(LAMBDA_RETRY);
    const retryEc2 = (task: tasks.CallAwsService) => task.addRetry({
      // What retrying cannot fix fails at once (named as Step Functions documents its SDK errors; where EC2's differ, the next retrier takes them).
      errors: EC2_PERMANENT_ERRORS,
      maxAttempts: 0,
    }).addRetry({
      // Throttling, 5xx and other transient EC2 errors.
      errors: ['States.TaskFailed'],
      interval: Duration.seconds(5),
      backoffRate: 2,
      maxAttempts: 6,
    });
    // A poll: wait one interval, then describe through the SDK integration (no function runs), keeping the whole
    // result (its list may be empty or absent while EC2 does not list a new resource yet) and the time of the poll.
    const pollWaitState = (id: string) => sfn.Wait.jsonPath(this, id, { time: sfn.WaitTime.secondsPath('$.PollIntervalSeconds') });
    const describeForPoll = (id: string, action: string, parameters: Record<string, unknown>, resultPath: string) =>
      retryEc2(tasks.CallAwsService.jsonPath(this, id, {
        service: 'ec2',
        action,
        parameters,
        iamAction: `ec2:${action[0].toUpperCase()}${action.slice(1)}`,
        // Describe actions have no resource-level permissions.
        iamResources: ['*'],
        resultSelector: { Result: sfn.JsonPath.objectAt('$'), Now: sfn.JsonPath.stringAt('$$.State.EnteredTime') },
        resultPath,
      }));
    const task0 = '$.Poll.Result.ImportImageTasks[0]';
    const imageArn = `arn:${Aws.PARTITION}:ec2:${Aws.REGION}::image/*`;
    const snapshotArn = `arn:${Aws.PARTITION}:ec2:${Aws.REGION}::snapshot/*`;

    const failed = sfn.Fail.jsonPath(this, 'ImportFailed', { error: 'VmImportFailed', causePath: '$.Outcome.Reason' });
    // The last step of every path: as hard to stop as the first. Whether the WaitCondition waits is CloudFormation's answer.
    const signal = (id: string, outcome: string) => step(id, STEP_SIGNAL, '$.Outcome', { Outcome: outcome })
      .addRetry(SIGNAL_NOT_READY_RETRY)
      .addRetry(SIGNAL_ERROR_RETRY);
    const signalFailed = signal('SignalFailed', 'failed').next(failed);
    const signalError = signal('SignalError', 'error').next(failed);
    const catchAll = { resultPath: '$.Error' };

    const succeeded = signal('SignalCompleted', 'completed').next(new sfn.Succeed(this, 'ImportCompleted', { outputPath: '$.Outcome' }));
    const named = this.copyStates(step, retryEc2, {
      task0, imageArn, snapshotArn, succeeded, signalFailed, signalError, catchAll, pollWaitState, describeForPoll,
    });
    const tagSnapshots = retryEc2(new TagCall(this, 'TagSnapshots', {
      parameters: {
        Resources: sfn.JsonPath.listAt(`${task0}.SnapshotDetails[*].SnapshotId`),
        Tags: sfn.JsonPath.listAt('$.Import.OutputTags'),
      },
      iamResources: [snapshotArn],
      resultPath: sfn.JsonPath.DISCARD,
    })).addCatch(signalError, catchAll);
    const tagImage = retryEc2(new TagCall(this, 'TagImage', {
      parameters: {
        Resources: sfn.JsonPath.array(sfn.JsonPath.stringAt(`${task0}.ImageId`)),
        Tags: sfn.JsonPath.listAt('$.Import.OutputTags'),
      },
      iamResources: [imageArn],
      resultPath: sfn.JsonPath.DISCARD,
    })).addCatch(signalError, catchAll);
    tagImage.next(tagSnapshots).next(named);

    const cancel = step('CancelOnTimeout', STEP_TIMEOUT, '$.Poll').addCatch(signalError, catchAll);
    cancel.next(new sfn.Choice(this, 'CancelledOrEnded')
      .when(sfn.Condition.stringEquals('$.Poll.Outcome', 'completed'), tagImage)
      .otherwise(signalFailed));

    const describe = describeForPoll('DescribeImport', 'describeImportImageTasks',
      { ImportTaskIds: sfn.JsonPath.array(sfn.JsonPath.stringAt('$.Import.ImportTaskId')) }, '$.Poll').addCatch(signalError, catchAll);
    const pollWait = pollWaitState('WaitForImport');
    pollWait.next(describe).next(new sfn.Choice(this, 'ImportStatus')
      .when(sfn.Condition.and(sfn.Condition.isPresent(`${task0}.Status`), sfn.Condition.stringEquals(`${task0}.Status`, 'completed')), tagImage)
      .when(sfn.Condition.and(
        sfn.Condition.isPresent(`${task0}.Status`),
        sfn.Condition.or(sfn.Condition.stringEquals(`${task0}.Status`, 'deleted'), sfn.Condition.stringEquals(`${task0}.Status`, 'deleting')),
      ), signalFailed)
      // A task not listed yet (right after ImportImage) is still running.
      .when(sfn.Condition.timestampGreaterThanEqualsJsonPath('$.Poll.Now', '$.Deadline'), cancel)
      .otherwise(pollWait));

    // The snapshot route: a Lambda step polls the disks' tasks (one Choice cannot tell "all completed"), the state
    // machine tags each snapshot as its task completes, then the function registers the AMI, tagged like an imported one.
    const register = step('RegisterImage', STEP_REGISTER, '$.Poll').addCatch(signalError, catchAll);
    register.next(tagImage);
    const snapshotWait = pollWaitState('WaitForSnapshots');
    const pollSnapshots = step('PollSnapshots', STEP_POLL_SNAPSHOTS, '$.Poll', { Now: sfn.JsonPath.stringAt('$$.State.EnteredTime') })
      .addCatch(signalError, catchAll);
    const snapshotsStatus = new sfn.Choice(this, 'SnapshotsStatus')
      .when(sfn.Condition.stringEquals('$.Poll.Status', 'completed'), register)
      .when(sfn.Condition.stringEquals('$.Poll.Status', 'failed'), signalFailed)
      .otherwise(snapshotWait);
    const tagNewSnapshots = retryEc2(new TagCall(this, 'TagImportedSnapshots', {
      parameters: { Resources: sfn.JsonPath.listAt('$.Poll.Untagged'), Tags: sfn.JsonPath.listAt('$.Import.OutputTags') },
      iamResources: [snapshotArn],
      resultPath: sfn.JsonPath.DISCARD,
    })).addCatch(signalError, catchAll);
    tagNewSnapshots.next(snapshotsStatus);
    snapshotWait.next(pollSnapshots).next(new sfn.Choice(this, 'SnapshotsToTag')
      .when(sfn.Condition.isPresent('$.Poll.Untagged[0]'), tagNewSnapshots)
      .otherwise(snapshotsStatus));

    const start = step('StartImport', STEP_START, '$.Import').addCatch(signalError, catchAll);
    const queueWait = sfn.Wait.jsonPath(this, 'WaitToStart', { time: sfn.WaitTime.secondsPath('$.Import.RetrySeconds') });
    queueWait.next(start);
    start.next(new sfn.Choice(this, 'Started')
      .when(sfn.Condition.and(sfn.Condition.booleanEquals('$.Import.Started', true), sfn.Condition.isPresent('$.Import.ImportTaskIds')), snapshotWait)
      .when(sfn.Condition.booleanEquals('$.Import.Started', true), pollWait)
      .otherwise(queueWait));
    // These properties were imported before and CloudFormation made a new WaitCondition for them: signal it with that AMI.
    return new sfn.Choice(this, 'ImportedBefore')
      .when(sfn.Condition.isPresent('$.ReuseExecutionArn'), succeeded)
      .when(sfn.Condition.isPresent('$.Adopt.ImportTaskId'), this.adoptStates(retryEc2, imageArn, snapshotArn))
      .otherwise(start);
  }

  /**
   * An import whose execution stopped or failed after its task completed, its outputs not
   * yet tagged (the start resource's delete starts this): describe the task through EC2
   * itself, and tag its AMI and snapshots as this stack's only if the task carries this
   * stack's tag (which only this stack's imports put there), so that the delete can apply
   * the removal policy to them.
   */
  private adoptStates(retryEc2: (task: tasks.CallAwsService) => sfn.TaskStateBase, imageArn: string, snapshotArn: string): sfn.IChainable {
    const found = '$.Adopt.Found.ImportImageTasks[0]';
    const stackTag = new sfn.Pass(this, 'AdoptStackTag', {
      parameters: { Key: TAG_STACK_ID, Value: Aws.STACK_ID },
      resultPath: '$.Adopt.StackTag',
    });
    const describe = retryEc2(tasks.CallAwsService.jsonPath(this, 'DescribeToAdopt', {
      service: 'ec2',
      action: 'describeImportImageTasks',
      parameters: { ImportTaskIds: sfn.JsonPath.array(sfn.JsonPath.stringAt('$.Adopt.ImportTaskId')) },
      iamAction: 'ec2:DescribeImportImageTasks',
      iamResources: ['*'],
      resultPath: '$.Adopt.Found',
    }));
    const owned = new sfn.Pass(this, 'AdoptIfThisStacks', {
      parameters: { 'Owned.$': `States.ArrayContains(${found}.Tags, $.Adopt.StackTag)` },
      resultPath: '$.Adopt.Check',
    });
    const tagImage = retryEc2(new TagCall(this, 'TagAdoptedImage', {
      parameters: { Resources: sfn.JsonPath.array(sfn.JsonPath.stringAt(`${found}.ImageId`)), Tags: sfn.JsonPath.listAt('$.Adopt.OutputTags') },
      iamResources: [imageArn],
      resultPath: sfn.JsonPath.DISCARD,
    }));
    const tagSnapshots = retryEc2(new TagCall(this, 'TagAdoptedSnapshots', {
      parameters: { Resources: sfn.JsonPath.listAt(`${found}.SnapshotDetails[*].SnapshotId`), Tags: sfn.JsonPath.listAt('$.Adopt.OutputTags') },
      iamResources: [snapshotArn],
      resultPath: sfn.JsonPath.DISCARD,
    }));
    tagImage.next(tagSnapshots).next(new sfn.Succeed(this, 'Adopted'));
    return stackTag.next(describe).next(owned).next(new sfn.Choice(this, 'AdoptWhenCompleted')
      .when(sfn.Condition.and(
        sfn.Condition.booleanEquals('$.Adopt.Check.Owned', true),
        sfn.Condition.isPresent(`${found}.ImageId`),
        sfn.Condition.stringEquals(`${found}.Status`, 'completed'),
      ), tagImage)
      .otherwise(new sfn.Fail(this, 'NotAdopted', { error: 'VmImportNotAdopted', cause: "The task is not this stack's, or did not complete with an AMI." })));
  }

  /**
   * With a name (`$.Import.Copy`): CopyImage with the key named explicitly and every tag
   * given as the copy is made, a poll of the copy until it is available, then the step that
   * removes the imported AMI. Without one, straight to the signal.
   */
  private copyStates(
    step: (id: string, name: string, resultPath: string) => sfn.TaskStateBase,
    retryEc2: (task: tasks.CallAwsService) => sfn.TaskStateBase,
    c: {
      task0: string;
      imageArn: string;
      snapshotArn: string;
      succeeded: sfn.IChainable;
      signalFailed: sfn.IChainable;
      signalError: sfn.IChainable;
      catchAll: sfn.CatchProps;
      pollWaitState: (id: string) => sfn.Wait;
      describeForPoll: (id: string, action: string, parameters: Record<string, unknown>, resultPath: string) => sfn.TaskStateBase;
    },
  ): sfn.IChainable {
    const copy0 = '$.CopyPoll.Result.Images[0]';
    const finish = step('FinishCopy', STEP_FINISH_COPY, '$.Final').addCatch(c.signalError, c.catchAll);
    finish.next(c.succeeded);
    const cancel = step('CancelCopyOnTimeout', STEP_COPY_TIMEOUT, '$.CopyPoll').addCatch(c.signalError, c.catchAll);
    cancel.next(new sfn.Choice(this, 'CopyCancelledOrEnded')
      .when(sfn.Condition.stringEquals('$.CopyPoll.Outcome', 'completed'), finish)
      .otherwise(c.signalFailed));

    const describe = c.describeForPoll('DescribeCopy', 'describeImages',
      { ImageIds: sfn.JsonPath.array(sfn.JsonPath.stringAt('$.Copy.ImageId')) }, '$.CopyPoll').addCatch(c.signalError, c.catchAll);
    const wait = c.pollWaitState('WaitForCopy');
    const stateIs = (...states: string[]) => {
      const equals = states.map((state) => sfn.Condition.stringEquals(`${copy0}.State`, state));
      return sfn.Condition.and(sfn.Condition.isPresent(`${copy0}.State`), equals.length === 1 ? equals[0] : sfn.Condition.or(...equals));
    };
    wait.next(describe).next(new sfn.Choice(this, 'CopyStatus')
      .when(stateIs('available'), finish)
      .when(stateIs('failed', 'error', 'invalid', 'deregistered', 'disabled'), c.signalFailed)
      .when(sfn.Condition.timestampGreaterThanEqualsJsonPath('$.CopyPoll.Now', '$.Deadline'), cancel)
      .otherwise(wait));

    const copy = (id: string, encrypted: boolean) => retryEc2(tasks.CallAwsService.jsonPath(this, id, {
      service: 'ec2',
      action: 'copyImage',
      parameters: {
        SourceImageId: sfn.JsonPath.stringAt(`${c.task0}.ImageId`),
        SourceRegion: Aws.REGION,
        Name: sfn.JsonPath.stringAt('$.Import.Copy.Name'),
        Description: sfn.JsonPath.stringAt('$.Import.Copy.Description'),
        // With no key named, the copy is as the imported AMI is (EC2 cannot copy an encrypted snapshot unencrypted).
        Encrypted: encrypted,
        ...(encrypted ? { KmsKeyId: sfn.JsonPath.stringAt('$.Import.Copy.KmsKeyId') } : {}),
        ClientToken: sfn.JsonPath.stringAt('$.Import.Copy.ClientToken'),
        TagSpecifications: [
          { ResourceType: 'image', Tags: sfn.JsonPath.listAt('$.Import.Copy.Tags') },
          { ResourceType: 'snapshot', Tags: sfn.JsonPath.listAt('$.Import.Copy.Tags') },
        ],
      },
      iamAction: 'ec2:CopyImage',
      iamResources: [c.imageArn, c.snapshotArn],
      resultSelector: { ImageId: sfn.JsonPath.stringAt('$.ImageId') },
      resultPath: '$.Copy',
    })).addCatch(c.signalError, c.catchAll);
    const withKey = copy('CopyImage', true);
    const asImported = copy('CopyImageAsImported', false);
    withKey.next(wait);
    asImported.next(wait);
    return new sfn.Choice(this, 'Named')
      .when(sfn.Condition.isPresent('$.Import.Copy'), new sfn.Choice(this, 'CopyWithKey')
        .when(sfn.Condition.isPresent('$.Import.Copy.KmsKeyId'), withKey)
        .otherwise(asImported))
      .otherwise(c.succeeded);
  }

  /** The cdk-nag findings this design accepts, each on the resource it concerns. */
  private acceptNagFindings(handler: lambda.Function): void {
    this.acceptComplianceFindings(handler);
    acceptNagFindings(this.handlerRole.node.findChild('DefaultPolicy'), [{
      id: 'AwsSolutions-IAM5',
      reason: 'Describe* calls, ImportImage and ImportSnapshot have no resource-level permissions (in a VPC, neither have the network interfaces ' +
        'Lambda creates IDs before it creates them: its guide grants those actions on *); RegisterImage takes snapshots whose IDs are known only ' +
        'at deploy time and makes an untagged AMI; tagging, cancelling and deleting are limited to EC2 images, ' +
        'snapshots and import tasks of this account and Region that carry this stack\'s tag, which this role cannot add.',
      appliesTo: [
        'Resource::*',
        'Resource::arn:<AWS::Partition>:ec2:<AWS::Region>::image/*',
        'Resource::arn:<AWS::Partition>:ec2:<AWS::Region>::snapshot/*',
        'Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:import-image-task/*',
        'Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:import-snapshot-task/*',
      ],
    }]);
    acceptNagFindings(this.executionsPolicy, [{
      id: 'AwsSolutions-IAM5',
      reason: "Execution names are made per import at deploy time: the statement covers the executions of this stack's one state machine only.",
      appliesTo: [{ regex: '/^Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:<CdkVmImportEngineStateMachine.*\\.Name>:\\*$/g' } as unknown as string],
    }]);
    acceptNagFindings(this.stateMachine.role.node.findChild('DefaultPolicy'), [{
      id: 'AwsSolutions-IAM5',
      reason: 'DescribeImportImageTasks has no resource-level permissions; the state machine tags the AMI and snapshots of the import tasks it started, ' +
        'whose IDs are unknown before the import; CloudWatch Logs delivery needs Resource *; Lambda invocations cover the function\'s versions.',
      appliesTo: [
        'Resource::*',
        'Resource::arn:<AWS::Partition>:ec2:<AWS::Region>::image/*',
        'Resource::arn:<AWS::Partition>:ec2:<AWS::Region>::snapshot/*',
        { regex: '/^Resource::<CdkVmImportEngineHandler.*\\.Arn>:\\*$/g' } as unknown as string,
      ],
    }]);
    acceptNagFindings(this.stateMachine, [{
      id: 'AwsSolutions-SF1',
      reason: 'The state machine logs errors to the engine\'s log group without execution data; logging ALL events would log every poll. ' +
        'Each import\'s progress is in its execution history.',
    }, {
      id: 'AwsSolutions-SF2',
      reason: 'The state machine only calls EC2 and the engine\'s function; X-Ray traces would add cost without showing more than the execution history.',
    }]);
  }
  /**
   * What the NIST 800-53 rev 5, HIPAA Security, PCI DSS 3.2.1 and Serverless packs find on
   * the engine and this design accepts. The log group's encryption and the VPC are settings.
   */
  private acceptComplianceFindings(handler: lambda.Function): void {
    const policies = [
      this.handlerRole.node.findChild('DefaultPolicy'),
      this.executionsPolicy,
      this.stateMachine.role.node.findChild('DefaultPolicy'),
    ];
    for (const policy of policies) {
      acceptInPacks(policy, 'IAMNoInlinePolicy', COMPLIANCE_PACKS,
        'The policy belongs to one role of the engine and is written for it (aws-cdk-lib grants); a customer managed policy would hold the ' +
        'same statements as a separately attachable resource that nothing else should attach.');
    }
    if (!this.settings.vpc) {
      acceptInPacks(handler, 'LambdaInsideVPC', COMPLIANCE_PACKS,
        "The function calls only AWS APIs (EC2, Step Functions, CloudFormation) and the CloudFormation response URL, and reaches nothing in a VPC. Set 'vpc' to run it in one.");
    }
    acceptInPacks(handler, 'LambdaConcurrency', [NagPack.NIST_800_53_R5, NagPack.HIPAA_SECURITY],
      'The function runs only when CloudFormation or the engine\'s state machine invokes it, a few times per import; reserved concurrency would take ' +
      'from the account\'s unreserved pool, and fails the deployment where that would fall below 100 (as in new accounts).');
    acceptInPacks(handler, 'LambdaDLQ', [NagPack.NIST_800_53_R5, NagPack.HIPAA_SECURITY, NagPack.SERVERLESS],
      'The state machine invokes the function synchronously and catches its errors; CloudFormation\'s requests are answered through their ResponseURL, ' +
      'FAILED included, and one the function cannot answer fails the stack on CloudFormation\'s timeout: a queued request (with its pre-signed URL) would reach no one.');
    acceptNagFindings(handler, [{
      id: 'Serverless-LambdaTracing',
      reason: 'Each import\'s steps are in its Step Functions execution history and the function\'s JSON logs; X-Ray would add cost, ' +
        'xray:PutTraceSegments on *, and in a VPC one more endpoint, without showing more.',
    }]);
    acceptNagFindings(this.stateMachine, [{
      id: 'Serverless-StepFunctionStateMachineXray',
      reason: 'The state machine only calls EC2 and the engine\'s function; X-Ray traces would add cost without showing more than the execution history.',
    }]);
  }
}

/**
 * A CreateTags call of the state machine. Its role may tag only with this stack's tag in
 * the request, and never a resource that another stack's engine already tagged: what it
 * tags are the outputs of the import tasks this execution started (their client tokens
 * derive from its own ARN), and these conditions hold even if a step named anything else.
 */
class TagCall extends tasks.CallAwsService {
  constructor(scope: Construct, id: string, props: Omit<tasks.CallAwsServiceJsonPathProps, 'service' | 'action'>) {
    super(scope, id, { ...props, service: 'ec2', action: 'createTags' });
    for (const statement of this.taskPolicies ?? []) {
      statement.addCondition('StringEquals', { [`aws:RequestTag/${TAG_STACK_ID}`]: Aws.STACK_ID });
      statement.addCondition('StringEqualsIfExists', { [`aws:ResourceTag/${TAG_STACK_ID}`]: Aws.STACK_ID });
    }
  }
}

/**
 * The retry of every Lambda step: Lambda's service errors, throttling and timeouts. The
 * steps are idempotent (client tokens, lookups before changes), so a retry repeats nothing.
 */
const LAMBDA_RETRY: sfn.RetryProps = {
  errors: [
    'Lambda.ClientExecutionTimeoutException', 'Lambda.ServiceException', 'Lambda.AWSLambdaException', 'Lambda.SdkClientException',
    'Lambda.TooManyRequestsException', 'Lambda.Unknown', 'Sandbox.Timedout', 'States.Timeout',
  ],
  interval: Duration.seconds(2),
  backoffRate: 2,
  maxDelay: Duration.minutes(1),
  maxAttempts: 8,
};

/**
 * The signal step while CloudFormation has not created the WaitCondition yet (its stack
 * still changing): 5 s doubling to 5 minutes, 160 attempts, longer than the 12 hours a
 * WaitCondition can wait. A stack that stops changing ends it at the next attempt.
 */
export const SIGNAL_NOT_READY_RETRY: sfn.RetryProps = {
  errors: ['WaitConditionNotReady'],
  interval: Duration.seconds(5),
  backoffRate: 2,
  maxDelay: Duration.minutes(5),
  maxAttempts: 160,
};

/** The signal step on any other error (CloudFormation throttling or refusing, the function failing): about 80 minutes of attempts. */
export const SIGNAL_ERROR_RETRY: sfn.RetryProps = {
  errors: ['States.ALL'],
  interval: Duration.seconds(5),
  backoffRate: 2,
  maxDelay: Duration.minutes(2),
  maxAttempts: 40,
};

/**
 * EC2 errors that retrying cannot fix, in Step Functions' documented naming of SDK
 * integration errors (`Ec2.<Code>Exception`).
 */
const EC2_PERMANENT_ERRORS = [
  'Ec2.UnauthorizedOperationException', 'Ec2.AuthFailureException', 'Ec2.InvalidParameterValueException',
  'Ec2.InvalidParameterCombinationException', 'Ec2.MissingParameterException', 'Ec2.InvalidParameterException',
  'Ec2.InvalidAMINameDuplicateException', 'Ec2.InvalidAMINameMalformedException',
];

/**
 * The EC2 actions the function calls. Its destructive actions need this stack's tag on the
 * resource, and its tagging actions can neither add that tag nor reach a resource without
 * it; only the state machine tags a new import's AMI and snapshots with it, and only the
 * outputs of import tasks it started.
 */
function grantHandlerEc2(role: iam.Role): void {
  const arn = (resource: string, account: string = Aws.ACCOUNT_ID) =>
    `arn:${Aws.PARTITION}:ec2:${Aws.REGION}:${account}:${resource}`;
  const image = arn('image/*', '');
  const snapshot = arn('snapshot/*', '');
  const task = arn('import-image-task/*');
  const snapshotTask = arn('import-snapshot-task/*');
  const ownedByThisStack = { [`aws:ResourceTag/${TAG_STACK_ID}`]: Aws.STACK_ID };

  role.addToPolicy(new iam.PolicyStatement({
    sid: 'DescribeImports',
    // Describe and Get actions have no resource-level permissions (EBS encryption by default is read before an unencrypted import).
    actions: [
      'ec2:DescribeImportImageTasks', 'ec2:DescribeImportSnapshotTasks', 'ec2:DescribeImages', 'ec2:DescribeImageAttribute', 'ec2:DescribeSnapshots',
      'ec2:GetEbsEncryptionByDefault', 'ec2:GetEbsDefaultKmsKeyId',
    ],
    resources: ['*'],
  }));
  role.addToPolicy(new iam.PolicyStatement({
    sid: 'StartImports',
    // ImportImage creates the task and reads snapshots and disks whose IDs are unknown
    // until the call; the service role, not this one, reads the disk images.
    actions: ['ec2:ImportImage', 'ec2:ImportSnapshot'],
    resources: ['*'],
  }));
  role.addToPolicy(new iam.PolicyStatement({
    sid: 'RegisterSnapshotImports',
    // The snapshot route registers the AMI from the snapshots its tasks made. The AMI gets no
    // tags from this role (only the state machine tags it), so it cannot be shared or deleted
    // by this role until the state machine has made it this stack's.
    actions: ['ec2:RegisterImage'],
    resources: [image, snapshot],
  }));
  role.addToPolicy(new iam.PolicyStatement({
    sid: 'TagNewImportTasks',
    // Tags in ImportImage's and ImportSnapshot's TagSpecifications, on the task being created: nothing else.
    actions: ['ec2:CreateTags'],
    resources: [task, snapshotTask],
    conditions: { StringEquals: { 'ec2:CreateAction': ['ImportImage', 'ImportSnapshot'] } },
  }));
  role.addToPolicy(new iam.PolicyStatement({
    sid: 'RetagThisStacksImports',
    actions: ['ec2:CreateTags', 'ec2:DeleteTags'],
    resources: [image, snapshot],
    conditions: {
      'StringEquals': ownedByThisStack,
      'ForAllValues:StringNotEquals': { 'aws:TagKeys': [TAG_STACK_ID] },
    },
  }));
  role.addToPolicy(new iam.PolicyStatement({
    sid: 'ShareThisStacksImports',
    // Launch permissions and IMDSv2 of the AMI: only this stack's.
    actions: ['ec2:ModifyImageAttribute'],
    resources: [image],
    conditions: { StringEquals: ownedByThisStack },
  }));
  role.addToPolicy(new iam.PolicyStatement({
    sid: 'RemoveThisStacksImports',
    actions: ['ec2:CancelImportTask', 'ec2:DeregisterImage', 'ec2:DeleteSnapshot'],
    resources: [image, snapshot, task, snapshotTask],
    conditions: { StringEquals: ownedByThisStack },
  }));
}
