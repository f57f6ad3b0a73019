import { differences, normalizeTemplate } from '../scripts/compare-templates';

// scripts/bindings.sh compares each language's example template with the TypeScript one.
const HASH_A = 'a'.repeat(64);
const HASH_B = 'b'.repeat(64);
const template = (hash: string, overrides: Record<string, unknown> = {}) => ({
  Resources: {
    Image: { Type: 'Custom::VmImageImport', Properties: { DiskContainers: [{ Format: 'VMDK', UserBucket: { S3Key: `${hash}.vmdk` } }], ...overrides } },
    CDKMetadata: { Type: 'AWS::CDK::Metadata', Properties: { Analytics: `v2:deflate64:${hash.slice(0, 10)}` }, Metadata: { 'aws:cdk:path': 'Stack/CDKMetadata/Default' } },
  },
});

test('asset hashes and the CDKMetadata analytics are masked', () => {
  expect(differences(normalizeTemplate(template(HASH_A)), normalizeTemplate(template(HASH_B)))).toEqual([]);
});

test.each([
  ['a property value', { Platform: 'Windows' }, '$.Resources.Image.Properties.Platform: missing in the reference'],
  ['a nested value', { DiskContainers: [{ Format: 'RAW', UserBucket: { S3Key: `${HASH_B}.vmdk` } }] }, '$.Resources.Image.Properties.DiskContainers[0].Format: "VMDK" ≠ "RAW"'],
])('a difference in %s is reported', (_, overrides, expected) => {
  expect(differences(normalizeTemplate(template(HASH_A)), normalizeTemplate(template(HASH_B, overrides)))).toEqual([expected]);
});

test('a missing resource or another type is reported', () => {
  const other = normalizeTemplate(template(HASH_A));
  other.Resources.Image.Type = 'AWS::CloudFormation::CustomResource';
  delete other.Resources.CDKMetadata;
  expect(differences(normalizeTemplate(template(HASH_A)), other)).toEqual([
    '$.Resources.CDKMetadata: missing',
    '$.Resources.Image.Type: "Custom::VmImageImport" ≠ "AWS::CloudFormation::CustomResource"',
  ]);
});
