import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { DiskImage, LicenseType, VmImageImport } from '../src';

// What the README and docs/ say of the synthesized templates, checked against them.
const root = path.join(__dirname, '..');
const read = (file: string) => fs.readFileSync(path.join(root, file), 'utf8');

jest.mock('cdk-vm-import', () => jest.requireActual('../src'), { virtual: true });

describe("the README's complete app", () => {
  let template: Record<string, any>;
  beforeAll(() => {
    // Run as `cdk synth` would: from the app's folder (examples/, where images/web-server.vmdk is).
    const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'readme-app-'));
    const cwd = process.cwd();
    const env = process.env.CDK_OUTDIR;
    process.chdir(path.join(root, 'examples'));
    process.env.CDK_OUTDIR = outdir;
    try {
      jest.isolateModules(() => {
        jest.requireActual('../examples/snippets/app');
      });
    } finally {
      process.chdir(cwd);
      if (env === undefined) delete process.env.CDK_OUTDIR; else process.env.CDK_OUTDIR = env;
    }
    template = JSON.parse(fs.readFileSync(path.join(outdir, 'WebServer.template.json'), 'utf8'));
  });

  test('synthesizes what the README says it holds, and no bucket', () => {
    const t = Template.fromJSON(template);
    t.resourceCountIs('AWS::Lambda::Function', 1);
    t.resourceCountIs('AWS::StepFunctions::StateMachine', 1);
    t.resourceCountIs('AWS::Logs::LogGroup', 1);
    t.resourceCountIs('AWS::KMS::Key', 2); // the import's key and the log group's
    t.resourceCountIs('Custom::VmImageImport', 1);
    t.resourceCountIs('AWS::CloudFormation::WaitCondition', 1);
    t.resourceCountIs('Custom::VmImageImportResult', 1);
    t.resourceCountIs('AWS::EC2::VPC', 1);
    t.resourceCountIs('AWS::EC2::Instance', 1);
    t.resourceCountIs('AWS::S3::Bucket', 0);
    const roles = Object.values(t.findResources('AWS::IAM::Role'))
      .filter((r: any) => JSON.stringify(r.Properties.AssumeRolePolicyDocument).includes('vmie.amazonaws.com'));
    expect(roles).toHaveLength(1);
  });
});

/** The synthesized state machine definition, tokens replaced by placeholders. */
function definition(): { StartAt: string; States: Record<string, any> } {
  const stack = new Stack(new App(), 'Docs');
  new VmImageImport(stack, 'Image', { diskImages: [DiskImage.fromImportBucket('a.vmdk')], licenseType: LicenseType.BYOL });
  const machines = Template.fromStack(stack).findResources('AWS::StepFunctions::StateMachine');
  const body = Object.values(machines)[0].Properties.DefinitionString;
  const text = typeof body === 'string' ? body : body['Fn::Join'][1].map((part: unknown) => typeof part === 'string' ? part : 'TOKEN').join('');
  return JSON.parse(text);
}

/** Every transition of the definition but the catches, as "From --> To" ([*] for start and end). */
function transitions(def: ReturnType<typeof definition>): Set<string> {
  const edges = new Set([`[*] --> ${def.StartAt}`]);
  for (const [name, state] of Object.entries(def.States)) {
    const targets = [state.Next, state.Default, ...(state.Choices ?? []).map((c: any) => c.Next)].filter((t) => t);
    for (const target of targets) edges.add(`${name} --> ${target}`);
    if (state.End || state.Type === 'Succeed' || state.Type === 'Fail') edges.add(`${name} --> [*]`);
  }
  return edges;
}

/** The transitions of docs/design.md's Mermaid diagram, labels dropped. */
function diagram(): Set<string> {
  const block = /```mermaid\n([\s\S]*?)```/.exec(read('docs/design.md'));
  if (!block) throw new Error('docs/design.md has no Mermaid diagram');
  return new Set([...block[1].matchAll(/^\s*(\[\*\]|\w+) --> (\[\*\]|\w+)/gm)].map((m) => `${m[1]} --> ${m[2]}`));
}

describe("docs/design.md's state machine", () => {
  const def = definition();

  test('the diagram has every transition of the synthesized definition, and no other', () => {
    expect([...diagram()].sort()).toEqual([...transitions(def)].sort());
  });

  test('every task but the signals and the adoption branch catches its errors into SignalError, as the page says', () => {
    const tasks = Object.entries(def.States).filter(([, s]) => s.Type === 'Task');
    const signals = tasks.filter(([name]) => name.startsWith('Signal')).map(([name]) => name).sort();
    expect(signals).toEqual(['SignalCompleted', 'SignalError', 'SignalFailed']);
    for (const [name, state] of tasks) {
      const catches = (state.Catch ?? []).map((c: any) => c.Next);
      // The adoption branch (started by a delete, with no WaitCondition of its own) ends in its own failure.
      expect([name, catches]).toEqual([name, signals.includes(name) || name.includes('Adopt') ? [] : ['SignalError']]);
    }
  });
});

test("the README's Python, Java and Go notes quote the library's own message", () => {
  const quoted = "'pollInterval' is 2 seconds; it must be whole seconds from 5 seconds to 1 hour.";
  expect(read('README.md')).toContain(`RuntimeError: ${quoted}`);
  expect(read('README.md')).toContain(`JsiiError: ${quoted}`);
  expect(read('README.md')).toContain(`panic: ${quoted}`);
  const stack = new Stack(new App(), 'Errors');
  expect(() => new VmImageImport(stack, 'Image', {
    diskImages: [DiskImage.fromImportBucket('builds/web.vmdk')],
    licenseType: LicenseType.BYOL,
    pollInterval: Duration.seconds(2),
  })).toThrow(quoted);
});
