/** The engine's settings given on a VmImageImport: its log group key and its VPC. */
import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as kms from 'aws-cdk-lib/aws-kms';
import { DiskImage, LicenseType, VmImageImport, VmImageImportProps } from '../src';
import { ENV } from './support/stacks';

const newStack = () => new Stack(new App(), 'Test', { env: ENV });
const importIn = (stack: Stack, id: string, props: Partial<VmImageImportProps> = {}) =>
  new VmImageImport(stack, id, { diskImages: [DiskImage.fromImportBucket(`${id}.vmdk`)], licenseType: LicenseType.BYOL, ...props });
const vpcOf = (stack: Stack, id = 'Vpc') => ec2.Vpc.fromVpcAttributes(stack, id, {
  vpcId: 'vpc-0123456789abcdef0',
  availabilityZones: ['us-east-1a', 'us-east-1b'],
  privateSubnetIds: ['subnet-a', 'subnet-b'],
  privateSubnetRouteTableIds: ['rtb-a', 'rtb-b'],
  isolatedSubnetIds: ['subnet-c', 'subnet-d'],
  isolatedSubnetRouteTableIds: ['rtb-c', 'rtb-d'],
});
const engineKeys = (t: Template) => Object.entries(t.findResources('AWS::KMS::Key')).filter(([id]) => id.startsWith('CdkVmImportEngine'));
const handler = (t: Template) => {
  const found = Object.values(t.findResources('AWS::Lambda::Function'));
  expect(found).toHaveLength(1);
  return found[0];
};
const handlerStatements = (t: Template) => Object.entries(t.findResources('AWS::IAM::Policy'))
  .filter(([id]) => id.startsWith('CdkVmImportEngineHandlerRoleDefaultPolicy'))
  .flatMap(([, p]) => p.Properties.PolicyDocument.Statement as any[]);

describe('the engine\'s log group', () => {
  test('is encrypted by default with a key of the engine that CloudWatch Logs may use for this account\'s log groups', () => {
    const stack = newStack();
    importIn(stack, 'A');
    importIn(stack, 'B');
    const t = Template.fromStack(stack);
    const keys = engineKeys(t);
    // One key per stack, however many imports.
    expect(keys).toHaveLength(1);
    const [keyId, key] = keys[0];
    expect(key.DeletionPolicy).toBe('Retain');
    expect(key.Properties.EnableKeyRotation).toBe(true);
    t.hasResourceProperties('AWS::Logs::LogGroup', { KmsKeyId: { 'Fn::GetAtt': [keyId, 'Arn'] }, RetentionInDays: 365 });
    expect(key.Properties.KeyPolicy.Statement).toContainEqual({
      Sid: 'LetCloudWatchLogsEncryptThisAccountsLogGroups',
      Effect: 'Allow',
      Principal: { Service: 'logs.us-east-1.amazonaws.com' },
      Action: ['kms:Encrypt*', 'kms:Decrypt*', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:Describe*'],
      Resource: '*',
      Condition: { ArnLike: { 'kms:EncryptionContext:aws:logs:arn': { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':logs:us-east-1:123456789012:log-group:*']] } } },
    });
  });

  test('in a stack of unknown Region, the key names the Region as CloudFormation resolves it', () => {
    const stack = new Stack(new App(), 'Agnostic');
    importIn(stack, 'A');
    const [[, key]] = engineKeys(Template.fromStack(stack));
    const statement = key.Properties.KeyPolicy.Statement.find((s: any) => s.Sid === 'LetCloudWatchLogsEncryptThisAccountsLogGroups');
    expect(statement.Principal).toEqual({ Service: { 'Fn::Join': ['', ['logs.', { Ref: 'AWS::Region' }, '.amazonaws.com']] } });
  });

  test('logEncryptionKey replaces the engine\'s key, used as it is', () => {
    const stack = newStack();
    const key = new kms.Key(stack, 'LogKey');
    const a = importIn(stack, 'A', { logEncryptionKey: key });
    const t = Template.fromStack(stack);
    expect(engineKeys(t)).toEqual([]);
    t.hasResourceProperties('AWS::Logs::LogGroup', { KmsKeyId: { 'Fn::GetAtt': [stack.getLogicalId(key.node.defaultChild as kms.CfnKey), 'Arn'] } });
    expect(JSON.stringify(t.findResources('AWS::KMS::Key'))).not.toContain('logs.us-east-1.amazonaws.com');
    expect(a.logGroup).toBeDefined();
  });

  test('a logEncryptionKey of another Region is an error', () => {
    const stack = newStack();
    const key = kms.Key.fromKeyArn(stack, 'K', 'arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555');
    expect(() => importIn(stack, 'A', { logEncryptionKey: key }))
      .toThrow("'logEncryptionKey' is in Region eu-west-1 but the stack deploys to us-east-1: CloudWatch Logs encrypts a log group with a key of its own Region. Use one in us-east-1.");
  });
});

describe('the engine in a VPC', () => {
  test('by default the function runs outside any VPC, with no network interface permissions', () => {
    const stack = newStack();
    importIn(stack, 'A');
    const t = Template.fromStack(stack);
    expect(handler(t).Properties.VpcConfig).toBeUndefined();
    t.resourceCountIs('AWS::EC2::SecurityGroup', 0);
    expect(handlerStatements(t).filter((s) => s.Sid === 'RunInTheVpc')).toEqual([]);
  });

  test('vpc puts the function in its private subnets with a security group that allows only outbound HTTPS', () => {
    const stack = newStack();
    importIn(stack, 'A', { vpc: vpcOf(stack) });
    const t = Template.fromStack(stack);
    const [groupId] = Object.keys(t.findResources('AWS::EC2::SecurityGroup'));
    expect(groupId).toMatch(/^CdkVmImportEngineHandlerSecurityGroup/);
    expect(handler(t).Properties.VpcConfig).toEqual({ SubnetIds: ['subnet-a', 'subnet-b'], SecurityGroupIds: [{ 'Fn::GetAtt': [groupId, 'GroupId'] }] });
    t.hasResourceProperties('AWS::EC2::SecurityGroup', {
      VpcId: 'vpc-0123456789abcdef0',
      SecurityGroupIngress: Match.absent(),
      SecurityGroupEgress: [{ CidrIp: '0.0.0.0/0', IpProtocol: 'tcp', FromPort: 443, ToPort: 443, Description: Match.anyValue() }],
    });
    // Lambda's network interface actions, in the role's own policy (which the function depends on): no AWS managed policy.
    expect(handlerStatements(t).filter((s) => s.Sid === 'RunInTheVpc')).toEqual([{
      Sid: 'RunInTheVpc',
      Effect: 'Allow',
      Action: ['ec2:CreateNetworkInterface', 'ec2:DescribeNetworkInterfaces', 'ec2:DescribeSubnets', 'ec2:DeleteNetworkInterface',
        'ec2:AssignPrivateIpAddresses', 'ec2:UnassignPrivateIpAddresses'],
      Resource: '*',
    }]);
    expect(handler(t).DependsOn).toEqual(expect.arrayContaining([expect.stringMatching(/^CdkVmImportEngineHandlerRoleDefaultPolicy/)]));
    const roles = t.findResources('AWS::IAM::Role');
    expect(Object.values(roles).filter((r) => r.Properties.ManagedPolicyArns)).toEqual([]);
  });

  test('vpcSubnets and securityGroups choose where and with what', () => {
    const stack = newStack();
    const vpc = vpcOf(stack);
    const group = ec2.SecurityGroup.fromSecurityGroupId(stack, 'Sg', 'sg-0123456789abcdef0');
    importIn(stack, 'A', { vpc, vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED }, securityGroups: [group] });
    // The same settings written again (a subnet selection compares by its fields).
    importIn(stack, 'B', { vpc, vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED }, securityGroups: [group] });
    const t = Template.fromStack(stack);
    expect(handler(t).Properties.VpcConfig).toEqual({ SubnetIds: ['subnet-c', 'subnet-d'], SecurityGroupIds: ['sg-0123456789abcdef0'] });
    t.resourceCountIs('AWS::EC2::SecurityGroup', 0);
  });

  test.each(['vpcSubnets', 'securityGroups'] as const)('%s without vpc is an error', (prop) => {
    const stack = newStack();
    const value = prop === 'vpcSubnets' ? { subnetType: ec2.SubnetType.PRIVATE_ISOLATED } : [ec2.SecurityGroup.fromSecurityGroupId(stack, 'Sg', 'sg-1')];
    expect(() => importIn(stack, 'A', { [prop]: value }))
      .toThrow(`'${prop}' is set but 'vpc' is not: it places the engine's function in a VPC. Set 'vpc' too, or remove '${prop}'.`);
  });

  test('an empty securityGroups list is an error', () => {
    const stack = newStack();
    expect(() => importIn(stack, 'A', { vpc: vpcOf(stack), securityGroups: [] }))
      .toThrow("'securityGroups' is an empty list: give at least one security group, or leave it unset for one that allows only outbound HTTPS.");
  });

  test('a vpc of another Region is an error', () => {
    const other = new Stack(new App(), 'Other', { env: { account: '123456789012', region: 'eu-west-1' } });
    const stack = new Stack(other.node.scope as App, 'Test', { env: ENV });
    const vpc = vpcOf(other);
    expect(() => importIn(stack, 'A', { vpc })).toThrow("'vpc' is in Region eu-west-1 but the stack deploys to us-east-1");
  });
});

describe('every import of a stack gives the engine the same settings', () => {
  const cases: Array<[string, (stack: Stack) => [Partial<VmImageImportProps>, Partial<VmImageImportProps>]]> = [
    ['vpc', (s) => [{ vpc: vpcOf(s) }, { vpc: vpcOf(s, 'OtherVpc') }]],
    ['vpc', (s) => [{ vpc: vpcOf(s) }, {}]],
    ['vpc', (s) => [{}, { vpc: vpcOf(s) }]],
    ['vpcSubnets', (s) => {
      const vpc = vpcOf(s);
      return [
        { vpc, vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED } },
        { vpc, vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS } },
      ];
    }],
    ['securityGroups', (s) => {
      const vpc = vpcOf(s);
      return [{ vpc, securityGroups: [ec2.SecurityGroup.fromSecurityGroupId(s, 'G1', 'sg-1')] }, { vpc }];
    }],
    ['logEncryptionKey', (s) => [{ logEncryptionKey: new kms.Key(s, 'K1') }, { logEncryptionKey: new kms.Key(s, 'K2') }]],
  ];
  test.each(cases)('a second import with another %s is an error naming both imports', (prop, settings) => {
    const stack = newStack();
    const [first, second] = settings(stack);
    importIn(stack, 'First', first);
    expect(() => importIn(stack, 'Second', second)).toThrow(
      `'${prop}' of Test/Second differs from that of Test/First, which created the stack's import engine: every VmImageImport of a stack shares one engine, ` +
      "so give each of them the same 'vpc', 'vpcSubnets', 'securityGroups' and 'logEncryptionKey' (the same objects), or none.");
  });

  test('imports in different stacks have engines of their own', () => {
    const app = new App();
    const a = new Stack(app, 'A', { env: ENV });
    const b = new Stack(app, 'B', { env: ENV });
    importIn(a, 'I', { vpc: vpcOf(a) });
    expect(() => importIn(b, 'I')).not.toThrow();
  });
});
