import { App, Aspects, CfnResource, Duration, IAspect, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { AwsSolutionsChecks, HIPAASecurityChecks, NIST80053R5Checks, PCIDSS321Checks, ServerlessChecks } from 'cdk-nag';
import { DiskImage, LicenseType, VmImageImport, VmImportRole } from '../src';
import { defaultStack, ENV, everyFeatureStack, LICENSE_ARN } from './support/stacks';

/** The acceptances of every pack, on the resources they concern (each pack's zero findings are in compliance.test.ts). */
describe('cdk-nag acceptances', () => {
  test('every acceptance carries a specific reason and sits on the resource it concerns', () => {
    const app = new App();
    const stack = everyFeatureStack(app);
    const resources = Template.fromStack(stack).toJSON().Resources as Record<string, any>;
    const accepted = Object.entries(resources)
      .filter(([id, r]) => r.Metadata?.cdk_nag && !id.startsWith('AccessLogs')) // that one is the test's own
      .flatMap(([id, r]) => r.Metadata.cdk_nag.rules_to_suppress.map((rule: any) => [id, r.Type, rule.id, rule.reason]));
    for (const [, , , reason] of accepted) {
      expect(reason.length).toBeGreaterThan(40);
    }
    const packs = ['NIST.800.53.R5', 'HIPAA.Security', 'PCI.DSS.321'];
    const inPacks = (rule: string, line: (id: string) => string) => packs.map((pack) => line(`${pack}-${rule}`));
    // The engine's policies, the stack's import role's, and the role the test stack passes in ('Shared').
    const policies = ['CdkVmImportEngineExecutionsPolicy', 'CdkVmImportEngineHandlerRoleDefaultPolicy', 'CdkVmImportEngineStateMachineRoleDefaultPolicy',
      'CdkVmImportSharedRoleDefaultPolicy', 'SharedRoleDefaultPolicy'];
    expect(accepted.map(([id, type, rule]) => `${type} ${rule} ${id.replace(/[0-9A-F]{8}$/, '')}`).sort()).toEqual([
      ...policies.map((p) => `AWS::IAM::Policy AwsSolutions-IAM5 ${p}`),
      ...policies.flatMap((p) => inPacks('IAMNoInlinePolicy', (rule) => `AWS::IAM::Policy ${rule} ${p}`)),
      // The stack's one bucket writes access logs (the imports that read it agree on it): no S1 or logging acceptance.
      ...inPacks('S3BucketReplicationEnabled', (rule) => `AWS::S3::Bucket ${rule} CdkVmImportSharedBucket`),
      // In a VPC: no LambdaInsideVPC acceptance.
      ...['NIST.800.53.R5-LambdaConcurrency', 'HIPAA.Security-LambdaConcurrency'].map((rule) => `AWS::Lambda::Function ${rule} CdkVmImportEngineHandler`),
      ...['NIST.800.53.R5-LambdaDLQ', 'HIPAA.Security-LambdaDLQ', 'Serverless-LambdaDLQ'].map((rule) => `AWS::Lambda::Function ${rule} CdkVmImportEngineHandler`),
      'AWS::Lambda::Function Serverless-LambdaTracing CdkVmImportEngineHandler',
      'AWS::StepFunctions::StateMachine AwsSolutions-SF1 CdkVmImportEngineStateMachine',
      'AWS::StepFunctions::StateMachine AwsSolutions-SF2 CdkVmImportEngineStateMachine',
      'AWS::StepFunctions::StateMachine Serverless-StepFunctionStateMachineXray CdkVmImportEngineStateMachine',
    ].sort());
  });

  test('outside a VPC, the function accepts LambdaInsideVPC, pointing at the vpc prop', () => {
    const stack = defaultStack(new App());
    const [fn] = Object.values(Template.fromStack(stack).findResources('AWS::Lambda::Function'));
    const rules = fn.Metadata.cdk_nag.rules_to_suppress.filter((r: any) => r.id.endsWith('-LambdaInsideVPC'));
    expect(rules.map((r: any) => r.id)).toEqual(['NIST.800.53.R5-LambdaInsideVPC', 'HIPAA.Security-LambdaInsideVPC', 'PCI.DSS.321-LambdaInsideVPC']);
    expect(rules[0].reason).toContain("Set 'vpc'");
  });

  const PACKS: Array<[string, () => IAspect, (app: App) => Stack]> = [
    ['AwsSolutions', () => new AwsSolutionsChecks(), everyFeatureStack],
    ['NIST.800.53.R5', () => new NIST80053R5Checks(), defaultStack],
    ['HIPAA.Security', () => new HIPAASecurityChecks(), defaultStack],
    ['PCI.DSS.321', () => new PCIDSS321Checks(), defaultStack],
    ['Serverless', () => new ServerlessChecks(), defaultStack],
  ];
  test.each(PACKS)('the engine\'s %s acceptances are no broader than what cdk-nag finds on it', (prefix, checks, make) => {
    const app = new App();
    const stack = make(app);
    const engine = stack.node.findChild('CdkVmImportEngine');
    const ours = (id: string) => id.startsWith(`${prefix}-`);
    // What each acceptance covers, by resource and rule: its findings, or every finding of the rule.
    const accepted = new Map<string, Array<string | { regex: string }>>();
    for (const construct of engine.node.findAll()) {
      if (construct instanceof CfnResource && construct.getMetadata('cdk_nag')) {
        for (const rule of construct.getMetadata('cdk_nag').rules_to_suppress.filter((r: any) => ours(r.id))) {
          accepted.set(`/${construct.node.path} ${rule.id}`, rule.applies_to ?? []);
        }
        // Take the acceptances away and see what cdk-nag finds.
        delete (construct.cfnOptions.metadata as Record<string, unknown>).cdk_nag;
      }
    }
    expect(accepted.size).toBeGreaterThan(0);
    Aspects.of(app).add(checks());
    app.synth();
    const found = new Map<string, string[]>();
    const annotations = Annotations.fromStack(stack);
    const rulePattern = Match.stringLikeRegexp(`^${prefix.replace(/\./g, '\\.')}-`);
    for (const m of [...annotations.findError('*', rulePattern), ...annotations.findWarning('*', rulePattern)]) {
      const [, rule, finding] = /^([A-Za-z0-9.]+-[A-Za-z0-9]+)(?:\[([^\]]+)\])?/.exec(String(m.entry.data))!;
      const key = `${m.id} ${rule}`;
      found.set(key, [...(found.get(key) ?? []), ...(finding ? [finding] : [])]);
    }
    // Every finding on the engine is one it accepts, and every acceptance is of a finding.
    const enginePath = `/${stack.stackName}/CdkVmImportEngine/`;
    expect([...found.keys()].filter((k) => k.startsWith(enginePath)).sort()).toEqual([...accepted.keys()].sort());
    for (const [key, patterns] of accepted) {
      const findings = found.get(key) ?? [];
      const matchers = patterns.map((pattern) => typeof pattern === 'string'
        ? (f: string) => f === pattern
        : (f: string) => new RegExp(pattern.regex.slice(1, pattern.regex.lastIndexOf('/'))).test(f));
      for (const [i, matches] of matchers.entries()) {
        expect([key, patterns[i], findings.some(matches)]).toEqual([key, patterns[i], true]);
      }
      for (const finding of findings) {
        expect([key, finding, matchers.length === 0 || matchers.some((m) => m(finding))]).toEqual([key, finding, true]);
      }
    }
  });

  test('the engine\'s AwsSolutions acceptances are these', () => {
    const stack = everyFeatureStack(new App());
    const engine = stack.node.findChild('CdkVmImportEngine');
    const accepted = engine.node.findAll()
      .filter((c): c is CfnResource => c instanceof CfnResource && c.getMetadata('cdk_nag'))
      .flatMap((c) => c.getMetadata('cdk_nag').rules_to_suppress
        .filter((r: any) => r.id.startsWith('AwsSolutions-'))
        .map((r: any) => `${c.node.path.replace('Everything/CdkVmImportEngine/', '')} ${r.id}`));
    expect(accepted.sort()).toEqual([
      'ExecutionsPolicy/Resource AwsSolutions-IAM5',
      'HandlerRole/DefaultPolicy/Resource AwsSolutions-IAM5',
      'StateMachine/Resource AwsSolutions-SF1',
      'StateMachine/Resource AwsSolutions-SF2',
      'StateMachine/Role/DefaultPolicy/Resource AwsSolutions-IAM5',
    ]);
  });
});

describe('engine permissions', () => {
  const template = () => {
    const stack = new Stack(new App(), 'Test', { env: ENV });
    new VmImageImport(stack, 'Import', { diskImages: [DiskImage.fromImportBucket('a.vmdk')], licenseType: LicenseType.BYOL });
    return Template.fromStack(stack);
  };
  const policy = (t: Template, prefix: string) => {
    const found = Object.entries(t.findResources('AWS::IAM::Policy')).filter(([id]) => id.startsWith(prefix));
    expect(found).toHaveLength(1);
    return found[0][1].Properties;
  };
  const statements = (t: Template = template()) => policy(t, 'CdkVmImportEngineHandlerRoleDefaultPolicy').PolicyDocument.Statement as any[];
  // Images and snapshots have no account in their ARN.
  const image = { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':ec2:', { Ref: 'AWS::Region' }, '::image/*']] };
  const snapshot = { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':ec2:', { Ref: 'AWS::Region' }, '::snapshot/*']] };
  const task = { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':ec2:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':import-image-task/*']] };
  const snapshotTask = { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':ec2:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':import-snapshot-task/*']] };
  const ownedByThisStack = { 'aws:ResourceTag/cdk-vm-import:stack-id': { Ref: 'AWS::StackId' } };
  const tagConditions = {
    StringEquals: { 'aws:RequestTag/cdk-vm-import:stack-id': { Ref: 'AWS::StackId' } },
    StringEqualsIfExists: ownedByThisStack,
  };

  test('the function\'s EC2 statements: tagging and removing only what carries this stack\'s tag, which it cannot add', () => {
    const ec2 = statements().filter((s) => [s.Action].flat().some((a: string) => a.startsWith('ec2:')));
    expect(ec2).toEqual([
      {
        Sid: 'DescribeImports',
        Effect: 'Allow',
        Action: [
          'ec2:DescribeImportImageTasks', 'ec2:DescribeImportSnapshotTasks', 'ec2:DescribeImages', 'ec2:DescribeImageAttribute', 'ec2:DescribeSnapshots',
          'ec2:GetEbsEncryptionByDefault', 'ec2:GetEbsDefaultKmsKeyId',
        ],
        Resource: '*',
      },
      { Sid: 'StartImports', Effect: 'Allow', Action: ['ec2:ImportImage', 'ec2:ImportSnapshot'], Resource: '*' },
      // The snapshot route's AMI: registered untagged, so this role can neither share nor delete it until the state machine tags it.
      { Sid: 'RegisterSnapshotImports', Effect: 'Allow', Action: 'ec2:RegisterImage', Resource: [image, snapshot] },
      {
        Sid: 'TagNewImportTasks',
        Effect: 'Allow',
        Action: 'ec2:CreateTags',
        Resource: [task, snapshotTask],
        Condition: { StringEquals: { 'ec2:CreateAction': ['ImportImage', 'ImportSnapshot'] } },
      },
      {
        Sid: 'RetagThisStacksImports',
        Effect: 'Allow',
        Action: ['ec2:CreateTags', 'ec2:DeleteTags'],
        Resource: [image, snapshot],
        Condition: {
          'StringEquals': ownedByThisStack,
          'ForAllValues:StringNotEquals': { 'aws:TagKeys': ['cdk-vm-import:stack-id'] },
        },
      },
      {
        Sid: 'ShareThisStacksImports',
        Effect: 'Allow',
        Action: 'ec2:ModifyImageAttribute',
        Resource: image,
        Condition: { StringEquals: ownedByThisStack },
      },
      {
        Sid: 'RemoveThisStacksImports',
        Effect: 'Allow',
        Action: ['ec2:CancelImportTask', 'ec2:DeregisterImage', 'ec2:DeleteSnapshot'],
        Resource: [image, snapshot, task, snapshotTask],
        Condition: { StringEquals: ownedByThisStack },
      },
    ]);
  });

  test('iam:PassRole only on the import role', () => {
    const pass = statements().filter((s) => JSON.stringify(s.Action).includes('iam:'));
    expect(pass).toEqual([{ Effect: 'Allow', Action: 'iam:PassRole', Resource: { 'Fn::GetAtt': [expect.stringMatching(/^CdkVmImportSharedRole[0-9A-F]{8}$/), 'Arn'] } }]);
  });

  test('cloudformation:SignalResource, and the two reads that tell whether a WaitCondition waits, only on this stack', () => {
    const signal = statements().filter((s) => JSON.stringify(s.Action).includes('cloudformation:'));
    expect(signal).toEqual([{
      Sid: 'SignalThisStacksWaitConditions',
      Effect: 'Allow',
      Action: ['cloudformation:SignalResource', 'cloudformation:DescribeStackResource', 'cloudformation:DescribeStacks'],
      Resource: { Ref: 'AWS::StackId' },
    }]);
  });

  test('the function writes logs only to the engine\'s log group', () => {
    const t = template();
    const [logsId] = Object.keys(t.findResources('AWS::Logs::LogGroup'));
    const logs = statements(t).filter((s) => JSON.stringify(s.Action).includes('logs:'));
    expect(logs).toEqual([{ Effect: 'Allow', Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: { 'Fn::GetAtt': [logsId, 'Arn'] } }]);
  });

  test('the function\'s role has nothing else', () => {
    const services = statements().flatMap((s) => [s.Action].flat()).map((a: string) => a.split(':')[0]);
    expect([...new Set(services)].sort()).toEqual(['cloudformation', 'ec2', 'iam', 'logs']);
  });

  test('states actions only on the state machine and its executions, in the ExecutionsPolicy', () => {
    const t = template();
    const [machineId] = Object.keys(t.findResources('AWS::StepFunctions::StateMachine'));
    const [roleId] = Object.keys(t.findResources('AWS::IAM::Role')).filter((id) => id.startsWith('CdkVmImportEngineHandlerRole'));
    const executions = policy(t, 'CdkVmImportEngineExecutionsPolicy');
    expect(executions.Roles).toEqual([{ Ref: roleId }]);
    expect(executions.PolicyDocument.Statement).toEqual([
      { Sid: 'StartImports', Effect: 'Allow', Action: 'states:StartExecution', Resource: { Ref: machineId } },
      {
        Sid: 'FollowImports',
        Effect: 'Allow',
        Action: ['states:DescribeExecution', 'states:GetExecutionHistory', 'states:StopExecution'],
        Resource: {
          'Fn::Join': ['', [
            'arn:', { Ref: 'AWS::Partition' }, ':states:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':execution:',
            { 'Fn::GetAtt': [machineId, 'Name'] }, ':*',
          ]],
        },
      },
    ]);
    // No other policy of the stack grants a states action.
    const elsewhere = Object.entries(t.findResources('AWS::IAM::Policy'))
      .filter(([id]) => !id.startsWith('CdkVmImportEngineExecutionsPolicy'))
      .flatMap(([, p]) => p.Properties.PolicyDocument.Statement)
      .filter((st: any) => JSON.stringify(st.Action).includes('states:'));
    expect(elsewhere).toEqual([]);
  });

  test('the state machine may tag only images and snapshots, describe import tasks and images, copy images, invoke the engine\'s function and deliver logs', () => {
    const t = template();
    const [functionId] = Object.keys(t.findResources('AWS::Lambda::Function'));
    const document = policy(t, 'CdkVmImportEngineStateMachineRoleDefaultPolicy').PolicyDocument.Statement as any[];
    const ec2 = document.filter((st) => JSON.stringify(st.Action).toLowerCase().includes('ec2:'));
    // In any order: aws-cdk-lib writes them in the order the states are visited.
    const byJson = (list: any[]) => [...list].sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y)));
    expect(byJson(ec2)).toEqual(byJson([
      { Effect: 'Allow', Action: 'ec2:DescribeImportImageTasks', Resource: '*' },
      // Tagging only with this stack's tag in the request, and never what another stack's engine tagged.
      { Effect: 'Allow', Action: 'ec2:createTags', Resource: image, Condition: tagConditions },
      // CopyImage (with a name) and its poll; the copy is tagged as it is made, with the createTags above.
      { Effect: 'Allow', Action: 'ec2:DescribeImages', Resource: '*' },
      { Effect: 'Allow', Action: 'ec2:CopyImage', Resource: [image, snapshot] },
      { Effect: 'Allow', Action: 'ec2:createTags', Resource: snapshot, Condition: tagConditions },
    ]));
    expect(document.filter((st) => JSON.stringify(st.Action).includes('lambda:'))).toEqual([{
      Effect: 'Allow',
      Action: 'lambda:InvokeFunction',
      Resource: [{ 'Fn::GetAtt': [functionId, 'Arn'] }, { 'Fn::Join': ['', [{ 'Fn::GetAtt': [functionId, 'Arn'] }, ':*']] }],
    }]);
    const services = document.flatMap((st) => [st.Action].flat()).map((a: string) => a.split(':')[0]);
    expect([...new Set(services)].sort()).toEqual(['ec2', 'lambda', 'logs']);
  });

  test('no other statement of the function uses Resource "*"', () => {
    const stars = statements().filter((s) => s.Resource === '*' || (Array.isArray(s.Resource) && s.Resource.includes('*')));
    expect(stars.map((s) => s.Sid)).toEqual(['DescribeImports', 'StartImports']);
  });

  test('imports add a PassRole to the one function role for each role they use: the stack\'s, and one passed in', () => {
    const stack = new Stack(new App(), 'Test', { env: ENV });
    new VmImageImport(stack, 'A', { diskImages: [DiskImage.fromImportBucket('a.vmdk')], licenseType: LicenseType.BYOL });
    new VmImageImport(stack, 'A2', { diskImages: [DiskImage.fromImportBucket('a2.vmdk')], licenseType: LicenseType.BYOL });
    new VmImageImport(stack, 'B', { diskImages: [DiskImage.fromImportBucket('b.vmdk')], licenseType: LicenseType.BYOL, role: new VmImportRole(stack, 'BRole') });
    const pass = statements(Template.fromStack(stack)).filter((s) => JSON.stringify(s.Action).includes('iam:PassRole'));
    const roles = pass.flatMap((s) => [s.Resource].flat()).map((r: any) => r['Fn::GetAtt'][0].replace(/[0-9A-F]{8}$/, '')).sort();
    expect(roles).toEqual(['BRole', 'CdkVmImportSharedRole']);
  });
});

test('license configurations add License Manager actions to the import role, only when set', () => {
  const stack = new Stack(new App(), 'Test', { env: ENV });
  new VmImageImport(stack, 'Plain', { diskImages: [DiskImage.fromImportBucket('a.vmdk')], licenseType: LicenseType.BYOL, role: new VmImportRole(stack, 'PlainRole') });
  new VmImageImport(stack, 'Licensed', {
    diskImages: [DiskImage.fromImportBucket('a.vmdk')],
    licenseType: LicenseType.BYOL,
    licenseConfigurationArns: [LICENSE_ARN],
  });
  const policies = Template.fromStack(stack).findResources('AWS::IAM::Policy');
  const licenseStatements = (prefix: string) => Object.entries(policies)
    .filter(([id]) => id.startsWith(prefix))
    .flatMap(([, p]) => p.Properties.PolicyDocument.Statement)
    .filter((s: any) => JSON.stringify(s.Action).includes('license-manager'));
  expect(licenseStatements('PlainRole')).toEqual([]);
  expect(licenseStatements('CdkVmImportSharedRole')).toEqual([
    { Effect: 'Allow', Action: ['license-manager:GetLicenseConfiguration', 'license-manager:UpdateLicenseSpecificationsForResource'], Resource: LICENSE_ARN },
    { Effect: 'Allow', Action: 'license-manager:ListLicenseSpecificationsForResource', Resource: '*' },
  ]);
});

describe('resources from elsewhere', () => {
  const newStack = () => new Stack(new App(), 'Test', { env: ENV });
  const disks = [DiskImage.fromImportBucket('a.vmdk')];

  test('a role of another account is an error', () => {
    const stack = newStack();
    const role = iam.Role.fromRoleArn(stack, 'R', 'arn:aws:iam::999999999999:role/import');
    expect(() => new VmImageImport(stack, 'I', { diskImages: disks, role, licenseType: LicenseType.BYOL }))
      .toThrow("'role' belongs to account 999999999999 but the stack deploys to 123456789012: VM Import assumes a service role of the importing account.");
  });

  test('a bucket of another Region is an error', () => {
    const stack = newStack();
    const bucket = s3.Bucket.fromBucketAttributes(stack, 'B', { bucketName: 'images', region: 'eu-west-1' });
    expect(() => new VmImageImport(stack, 'I', { diskImages: disks, bucket, licenseType: LicenseType.BYOL }))
      .toThrow("'bucket' is in Region eu-west-1 but the stack deploys to us-east-1");
  });

  test('a DiskImage.fromBucket bucket of another Region is an error', () => {
    const stack = newStack();
    const bucket = s3.Bucket.fromBucketAttributes(stack, 'B', { bucketName: 'images', region: 'eu-west-1' });
    expect(() => new VmImageImport(stack, 'I', { diskImages: [DiskImage.fromBucket(bucket, 'a.vmdk')], licenseType: LicenseType.BYOL }))
      .toThrow("'DiskImage.fromBucket bucket' is in Region eu-west-1 but the stack deploys to us-east-1");
  });

  test('a key of another Region is an error; of another account, a warning', () => {
    const stack = newStack();
    const far = kms.Key.fromKeyArn(stack, 'Far', 'arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555');
    expect(() => new VmImageImport(stack, 'I', { diskImages: disks, encryptionKey: far, licenseType: LicenseType.BYOL }))
      .toThrow("'encryptionKey' is in Region eu-west-1 but the stack deploys to us-east-1");
    const foreign = kms.Key.fromKeyArn(stack, 'Foreign', 'arn:aws:kms:us-east-1:999999999999:key/11111111-2222-3333-4444-555555555555');
    new VmImageImport(stack, 'J', { diskImages: disks, encryptionKey: foreign, licenseType: LicenseType.BYOL });
    Annotations.fromStack(stack).hasWarning('/Test/J', Match.stringLikeRegexp("'encryptionKey' belongs to account 999999999999"));
  });

  test('a key imported by reference gives a warning about its key policy', () => {
    const stack = newStack();
    const key = kms.Key.fromKeyArn(stack, 'K', 'arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555');
    new VmImageImport(stack, 'I', { diskImages: disks, encryptionKey: key, licenseType: LicenseType.BYOL });
    Annotations.fromStack(stack).hasWarning('/Test/I', Match.stringLikeRegexp("'encryptionKey' is imported by reference, so this stack cannot change its key policy"));
  });

  test.each(['vmimport', 'VMImport', 'VmImport'])('the account-wide vmimport role passed in as %s gives a warning (IAM ignores case)', (name) => {
    const stack = newStack();
    const role = iam.Role.fromRoleName(stack, 'R', name);
    new VmImageImport(stack, 'I', { diskImages: disks, role, licenseType: LicenseType.BYOL });
    Annotations.fromStack(stack).hasWarning('/Test/I', Match.stringLikeRegexp(`'role' is "${name}", the account-wide 'vmimport' role`));
  });

  test('a role of another name gives no such warning', () => {
    const stack = newStack();
    const role = iam.Role.fromRoleName(stack, 'R', 'vmimport-web');
    new VmImageImport(stack, 'I', { diskImages: disks, role, licenseType: LicenseType.BYOL });
    expect(Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('account-wide'))).toHaveLength(0);
  });

  test.each(['vmimport', 'VMImport', 'VmImport'])('a VmImportRole named %s is an error (IAM ignores case)', (name) => {
    const stack = newStack();
    expect(() => new VmImportRole(stack, 'R', { roleName: name }))
      .toThrow(`VmImportRole 'roleName' is '${name}', the account-wide role the VM Import guide has users create by hand (IAM compares role names ignoring case)`);
  });

  test('a VmImportRole of another name is fine', () => {
    const stack = newStack();
    expect(() => new VmImportRole(stack, 'R', { roleName: 'vmimport-web' })).not.toThrow();
  });
});

test('diskImageExpiration expires current and old versions; access logs go where asked', () => {
  const stack = new Stack(new App(), 'Test', { env: ENV });
  const logs = new s3.Bucket(stack, 'Logs');
  new VmImageImport(stack, 'I', {
    diskImages: [DiskImage.fromImportBucket('a.vmdk')],
    licenseType: LicenseType.BYOL,
    diskImageExpiration: Duration.days(14),
    accessLogsBucket: logs,
    accessLogsPrefix: 'vm/',
  });
  Template.fromStack(stack).hasResourceProperties('AWS::S3::Bucket', {
    LifecycleConfiguration: {
      Rules: [{ AbortIncompleteMultipartUpload: { DaysAfterInitiation: 7 }, ExpirationInDays: 14, NoncurrentVersionExpiration: { NoncurrentDays: 14 }, Status: 'Enabled' }],
    },
    LoggingConfiguration: { DestinationBucketName: { Ref: Match.stringLikeRegexp('^Logs') }, LogFilePrefix: 'vm/' },
  });
});
