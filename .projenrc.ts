import { awscdk, javascript, JsonFile, ReleasableCommits } from 'projen';

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
    // Model-based tests of the engine's life cycle (fc.commands, fc.asyncModelRun).
    'fast-check@^4',
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

  // Releases (npx projen release; the release workflow on pushes to main): semantic versions
  // from the conventional commits since the last release tag. The first release, with no tag
  // yet, is 0.1.0; after it, a feat or fix commit makes the next one, and every version stays
  // 0.x until majorVersion changes (a bump to 1.0.0 fails instead of happening by accident).
  majorVersion: 0,
  nextVersionCommand: '[ -n "$LATEST_TAG" ] || echo 0.1.0',
  releasableCommits: ReleasableCommits.featuresAndFixes(),

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

// The rosetta tablet (.jsii.tabl.json) ships in the npm package: see the package tasks below.
for (const pattern of ['/lambda/', '/examples/', '/scripts/', '/.ci/', '/.tmp/', '/.bench/', '/.cfnlintrc.yaml']) {
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

// Every example in the README and in doc comments compiles, so that Construct Hub's
// Python, Java, C# and Go renderings are right (fixtures: rosetta/*.ts-fixture).
// The translations land in the tablet .jsii.tabl.json beside .jsii, where jsii-pacmak reads
// them: post-compile makes it, so `npx projen build` and the release build have it.
const rosetta = project.addTask('rosetta', {
  description: 'Compile every README and doc comment example with jsii-rosetta into the tablet .jsii.tabl.json (needs the compiled .jsii)',
  exec: 'jsii-rosetta extract --strict .jsii',
});
project.postCompileTask.spawn(rosetta);

// Every language's package is made from three inputs: the compiled .jsii, the engine bundle
// the construct deploys (assets/lambda/index) and the rosetta tablet (.jsii.tabl.json).
// `npx projen compile` makes only the first, so each package task starts with a check that
// fails loudly, naming the command that makes what is missing.
//
// The release workflow (.github/workflows/release.yml, generated by projen) builds the npm
// tarball in its release job, then builds each other language in a job of its own from that
// tarball alone: a fresh checkout, `npm ci`, the tarball extracted over it, then
// `npx projen package:<language>`. So the tablet ships IN the npm tarball (it is not in
// .npmignore), and those jobs find it beside .jsii, where jsii-pacmak loads it: the Python,
// Java, Go and .NET packages get the examples rosetta compiled and translated, as the packages
// CI builds do (CI checks both: scripts/check-translated-docs.sh and scripts/release-job.sh).
// Construct Hub reads the same tablet from the npm package. An example jsii-pacmak finds in no
// tablet (the few that subclasses inherit from aws-cdk-lib's own doc comments) is translated on
// the fly rather than left in TypeScript.
const checkInputs = 'bash scripts/check-package-inputs.sh';
const pacmak = (target: string) => `jsii-pacmak -v --target ${target} --rosetta-unknown-snippets translate`;
project.tasks.tryFind('package:js')!.reset(checkInputs);
project.tasks.tryFind('package:js')!.exec('jsii-pacmak -v --target js');
project.tasks.tryFind('package:js')!.exec('bash scripts/check-npm-package.sh dist/js');
for (const language of ['python', 'java']) {
  project.tasks.tryFind(`package:${language}`)!.reset(checkInputs);
  project.tasks.tryFind(`package:${language}`)!.exec(pacmak(language));
}
// jsii-pacmak writes the Go module's indirect requirements with the versions npm resolved
// (today @aws-cdk/cloud-assembly-schema 53.28.0), which the Go module proxy need not serve
// (it has cloud-assembly-schema-go v53.25.0), so its own `go mod tidy` fails. Generate the
// code, then let Go resolve the indirect requirements from aws-cdk-go's own go.mod, and
// build it: the module users get is one that builds.
project.tasks.tryFind('package:go')!.reset(checkInputs);
project.tasks.tryFind('package:go')!.exec(`${pacmak('go')} --code-only`);
project.tasks.tryFind('package:go')!.exec('bash scripts/tidy-go-module.sh dist/go/cdkvmimport');
// Without a .NET SDK (NuGet is out of reach on the project's build machines) package:dotnet
// says so in one line and succeeds, so `npx projen build` and package-all go on to Go.
project.tasks.tryFind('package:dotnet')!.reset('bash scripts/package-dotnet.sh');

// What the release would publish, built from a clone without the tests (the README's install
// section runs it, and so does CI): the version the release would give (bump), the engine
// bundle, jsii, API.md, the rosetta tablet and every language's package in dist/, then the
// version in package.json back to 0.0.0 (unbump), as the release task does.
project.addTask('dist', {
  description: 'Build every language\'s package into dist/ at the version the release would publish (no tests)',
  // The release task's major version line (majorVersion above), for its bump.
  env: { MAJOR: '0' },
  steps: [
    { exec: 'rm -rf dist' },
    { spawn: 'bump' },
    { spawn: project.preCompileTask.name },
    { spawn: project.compileTask.name },
    { spawn: project.postCompileTask.name },
    { spawn: 'package-all' },
    { spawn: 'unbump' },
  ],
});

// CHANGELOG.md, generated from the conventional commits since the last release tag by
// projen's release tooling: bump writes the entry (dist/changelog.md), the
// update-changelog builtin prepends it to CHANGELOG.md and commits it as
// "chore(release): <version>", unbump resets package.json. Run it on a clean tree.
project.addTask('changelog', {
  description: 'Prepend the unreleased conventional commits to CHANGELOG.md and commit it (clean tree only)',
  env: { CHANGELOG: 'dist/changelog.md', PROJECT_CHANGELOG_FILE: 'CHANGELOG.md', VERSION_FILE: 'dist/version.txt', MAJOR: '0' },
  steps: [
    { exec: 'git diff --quiet HEAD', name: 'the tree is clean' },
    // bump prepends to the entry file: start it afresh, or an earlier bump's entry comes twice.
    { exec: 'rm -f dist/changelog.md' },
    { spawn: 'bump' },
    { builtin: 'release/update-changelog' },
    { spawn: 'unbump' },
  ],
});

project.synth();
