import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

// The release path as projen generates it from .projenrc.ts: these tests read the generated
// files, so a change of .projenrc.ts (or of projen) that breaks what the comments there promise
// fails here, before a release would publish a package without its translated examples.
const root = path.join(__dirname, '..');
const read = (file: string) => fs.readFileSync(path.join(root, file), 'utf8');
const tasks = JSON.parse(read('.projen/tasks.json')).tasks as Record<string, { steps?: any[]; env?: Record<string, string> }>;
const steps = (name: string) => (tasks[name].steps ?? []).map((step) => step.exec ?? (step.spawn ? `spawn ${step.spawn}` : step.builtin ?? ''));

/** The text of one job of the release workflow. */
function job(name: string): string {
  const workflow = read('.github/workflows/release.yml');
  const start = workflow.indexOf(`\n  ${name}:\n`);
  expect(start).toBeGreaterThan(0);
  const next = workflow.slice(start + 1).search(/\n {2}[a-z_]+:\n/);
  return next < 0 ? workflow.slice(start) : workflow.slice(start, start + 1 + next);
}

describe('the release', () => {
  test('the first version is 0.1.0; after it, the conventional commits decide', () => {
    const command = steps('bump:next-version')[0];
    const run = (latestTag: string) => execFileSync('bash', ['-c', command], { env: { ...process.env, LATEST_TAG: latestTag } }).toString().trim();
    expect(run('')).toBe('0.1.0');
    expect(run('v0.1.0')).toBe('');
    expect(tasks.release.env).toMatchObject({ MAJOR: '0' });
    expect(tasks.dist.env).toMatchObject({ MAJOR: '0' });
  });

  test('its build makes the rosetta tablet and the engine bundle before any package', () => {
    expect(steps('build')).toEqual(['spawn default', 'spawn pre-compile', 'spawn compile', 'spawn post-compile', 'spawn test', 'spawn package']);
    expect(steps('pre-compile')).toContain('spawn bundle');
    expect(steps('post-compile')).toContain('spawn rosetta');
    expect(steps('rosetta')).toEqual(['jsii-rosetta extract --strict .jsii']);
  });

  test.each(['js', 'python', 'java', 'go'])('package:%s refuses to run without the bundle and the tablet', (language) => {
    expect(steps(`package:${language}`)[0]).toBe('bash scripts/check-package-inputs.sh');
  });

  test('package:dotnet builds only where a .NET SDK is installed', () => {
    expect(steps('package:dotnet')).toEqual(['bash scripts/package-dotnet.sh']);
    expect(read('scripts/package-dotnet.sh')).toMatch(/command -v dotnet[\s\S]*check-package-inputs\.sh[\s\S]*--target dotnet/);
  });

  test('the npm tarball carries the tablet and the bundle to the language jobs', () => {
    const ignored = read('.npmignore').split('\n');
    expect(ignored).not.toContain('/.jsii.tabl.json');
    expect(ignored).toContain('!/assets/');
    expect(steps('package:js')).toContain('bash scripts/check-npm-package.sh dist/js');
  });

  test.each([
    ['release_pypi', 'python'],
    ['release_maven', 'java'],
    ['release_golang', 'go'],
    ['release_nuget', 'dotnet'],
  ])('%s builds the %s package from the npm tarball, with the tablet inside', (name, language) => {
    const text = job(name);
    const extract = text.indexOf('tar --strip-components=1 -xzvf dist/js/*.tgz -C .repo');
    const build = text.indexOf(`cd .repo && npx projen package:${language}`);
    expect(extract).toBeGreaterThan(0);
    expect(build).toBeGreaterThan(extract);
    // Between the two, nothing rebuilds .jsii: the package is made from the tarball's .jsii and tablet.
    expect(text.slice(extract, build)).not.toMatch(/projen (compile|build|rosetta)/);
  });
});
