import { awscdk, javascript, JsonFile } from 'projen';

const project = new awscdk.AwsCdkConstructLibrary({
  name: 'cdk-vm-import',
  description:
    'AWS CDK construct that imports a virtual machine disk image (OVA, VMDK, VHD, VHDX, RAW or an EBS snapshot) into an Amazon Machine Image with EC2 VM Import.',
  author: 'cdk-vm-import maintainers',
  authorAddress: 'maintainers@cdk-vm-import.dev',
  repositoryUrl: 'https://github.com/cdk-vm-import/cdk-vm-import.git',
  keywords: ['cdk', 'awscdk', 'aws-cdk', 'ec2', 'ami', 'vm-import', 'vmdk', 'ova', 'vhd', 'vhdx'],
  defaultReleaseBranch: 'main',
  packageManager: javascript.NodePackageManager.NPM,
  projenrcTs: true,
  stability: 'experimental',

  // Versions measured to work together here (see the toolchain notes).
  cdkVersion: '2.257.0',
  constructsVersion: '10.5.1',
  jsiiVersion: '~6.0.0',
  typescriptVersion: '~6.0.0',
  minNodeVersion: '20.0.0',

  publishToPypi: {
    distName: 'cdk-vm-import',
    module: 'cdk_vm_import',
  },
  publishToMaven: {
    javaPackage: 'dev.cdkvmimport',
    mavenGroupId: 'dev.cdk-vm-import',
    mavenArtifactId: 'cdk-vm-import',
  },
  publishToNuget: {
    dotNetNamespace: 'CdkVmImport',
    packageId: 'CdkVmImport',
  },
  publishToGo: {
    moduleName: 'github.com/cdk-vm-import/cdk-vm-import-go',
  },

  devDeps: [
    '@aws-sdk/client-ec2@^3',
    '@aws-sdk/client-sfn@^3',
    '@aws-sdk/client-cloudformation@^3',
    '@aws-sdk/client-ebs@^3',
    '@types/aws-lambda',
    'aws-sdk-client-mock@^4',
    'esbuild',
    'aws-cdk@^2',
    'cdk-assets@^4',
    'cdk-nag@~2.38.2',
    '@aws-cdk/integ-runner@2.197.10',
    '@aws-cdk/integ-tests-alpha@2.245.0-alpha.0',
    'aws-local-stepfunctions@3.0.0',
  ],

  eslintOptions: {
    dirs: ['src'],
    devdirs: ['test', 'lambda', 'examples', 'scripts', 'projenrc', '.projenrc.ts'],
  },
  jestOptions: {
    jestConfig: {
      testPathIgnorePatterns: ['/node_modules/', '/cdk\\.out', '/\\.tmp/'],
    },
  },
  tsconfigDev: {
    compilerOptions: {
      // README examples import the package by name; type-check them against src/.
      paths: { 'cdk-vm-import': ['../src/index.ts'] },
    },
    include: ['../lambda/**/*.ts', '../examples/**/*.ts', '../scripts/**/*.ts'],
  },
  gitignore: [
    '/.tmp/', 'cdk.out/', 'cdk.out.*/', '/examples/cdk.out/', '/test/**/*.snapshot/asset.*', '/.bench/',
    // The other languages' example apps build here (scripts/bindings.sh).
    '/examples/java/target/', '/examples/python/.venv/', '__pycache__/',
    // jsii-rosetta's translations of the README and doc comment examples.
    '/.jsii.tabl.json',
  ],

  // CHANGELOG.md sections for the conventional commit types this project uses
  // (npx projen changelog).
  versionrcOptions: {
    types: [
      { type: 'feat', section: 'Features' },
      { type: 'fix', section: 'Bug Fixes' },
      { type: 'perf', section: 'Performance' },
      { type: 'docs', section: 'Documentation' },
      { type: 'test', section: 'Tests' },
      { type: 'ci', section: 'Build and CI' },
      { type: 'build', section: 'Build and CI' },
      { type: 'refactor', hidden: true },
      { type: 'chore', hidden: true },
    ],
  },

  githubOptions: { mergify: false },
  depsUpgrade: false,
  pullRequestTemplate: false,
});

// The custom resource handler lives in lambda/ (outside src/ so jsii never sees the
// SDK). It is bundled with esbuild before compile into assets/, which ships in the
// npm package: users need neither esbuild nor Docker to synthesize.
const bundle = project.bundler.addBundle('./lambda/index.ts', {
  platform: 'node',
  target: 'node20',
  externals: [],
  minify: true,
  mainFields: ['module', 'main'],
  sourcemap: false,
});

// jest, esbuild and ts-node only transpile lambda/, test/ and examples/: type-check them.
const typecheck = project.addTask('typecheck', {
  description: 'Type-check the handler, the tests, the examples and the scripts',
  exec: 'tsc --noEmit -p test/tsconfig.json',
});

// eslint's project service takes each file's nearest tsconfig.json: point these folders at
// the dev config, which includes them.
for (const dir of ['lambda', 'examples', 'scripts']) {
  new JsonFile(project, `${dir}/tsconfig.json`, { obj: { extends: '../test/tsconfig.json' } });
}

// README snippets import the package by name, as users do, in a region of their own.
project.eslint?.addOverride({
  files: ['examples/snippets/**'],
  rules: { 'import/no-unresolved': 'off', 'import/no-duplicates': 'off', 'import/order': 'off' },
});

// Integration test snapshots, checked offline (a real run needs credentials).
const integ = project.addTask('integ', {
  description: 'Check the integration test snapshots (test/integ.*.ts) offline',
  exec: 'integ-runner --directory test --language typescript --app "ts-node -T {filePath}" --dry-run',
  receiveArgs: true,
});

// Template tests need the bundled handler asset.
project.testTask.prependSpawn(bundle.bundleTask);
project.testTask.spawn(typecheck);
project.testTask.spawn(integ);

// The main job of the quick start: synthesize the example app into a template.
project.addTask('example', {
  description: 'Synthesize the example app in examples/ into a CloudFormation template (no AWS account needed)',
  steps: [
    { spawn: bundle.bundleTask.name },
    {
      exec: 'cdk synth --app "ts-node -T examples/app.ts" --output examples/cdk.out --quiet',
      env: { JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION: '20', CDK_DISABLE_VERSION_CHECK: '1', CDK_CLI_NOTICES: 'false' },
    },
    { say: 'Template written to examples/cdk.out/VmImportExample.template.json' },
  ],
});

for (const pattern of ['/lambda/', '/examples/', '/scripts/', '/.ci/', '/.tmp/', '/.bench/', '/.jsii.tabl.json', '/.cfnlintrc.yaml']) {
  project.addPackageIgnore(pattern);
}

// Speed and size against baselines measured in the same run (not timed tests).
project.addTask('bench', {
  description: 'Benchmark synthesis with large disk images, the handler bundle and stacks of N imports; prints a table',
  steps: [
    { spawn: bundle.bundleTask.name },
    { exec: 'ts-node -T scripts/bench.ts', receiveArgs: true, env: { JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION: '20' } },
  ],
});

// jsii-pacmak writes the Go module's indirect requirements with the versions npm resolved
// (today @aws-cdk/cloud-assembly-schema 53.28.0), which the Go module proxy need not serve
// (it has cloud-assembly-schema-go v53.25.0), so its own `go mod tidy` fails. Generate the
// code, then let Go resolve the indirect requirements from aws-cdk-go's own go.mod, and
// build it: the module users get is one that builds.
project.tasks.tryFind('package:go')!.reset('jsii-pacmak -v --target go --code-only');
project.tasks.tryFind('package:go')!.exec('bash scripts/tidy-go-module.sh dist/go/cdkvmimport');

// Every example in the README and in doc comments compiles, so that Construct Hub's
// Python, Java, C# and Go renderings are right (fixtures: rosetta/*.ts-fixture).
project.addTask('rosetta', {
  description: 'Compile every README and doc comment example with jsii-rosetta (needs the compiled .jsii)',
  exec: 'jsii-rosetta extract --strict .jsii',
});

// CHANGELOG.md, generated from the conventional commits since the last release tag by
// projen's release tooling: bump writes the entry (dist/changelog.md), the
// update-changelog builtin prepends it to CHANGELOG.md and commits it as
// "chore(release): <version>", unbump resets package.json. Run it on a clean tree.
project.addTask('changelog', {
  description: 'Prepend the unreleased conventional commits to CHANGELOG.md and commit it (clean tree only)',
  env: { CHANGELOG: 'dist/changelog.md', PROJECT_CHANGELOG_FILE: 'CHANGELOG.md', VERSION_FILE: 'dist/version.txt' },
  steps: [
    { exec: 'git diff --quiet HEAD', name: 'the tree is clean' },
    { spawn: 'bump' },
    { builtin: 'release/update-changelog' },
    { spawn: 'unbump' },
  ],
});

project.synth();
