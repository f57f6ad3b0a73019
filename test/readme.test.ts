import * as fs from 'fs';
import * as path from 'path';

const root = path.join(__dirname, '..');
const read = (file: string) => fs.readFileSync(path.join(root, file), 'utf8');
const readme = read('README.md');

/** The README, the pages of docs/ and CONTRIBUTING.md: every Markdown file a reader is sent to. */
const pages = ['README.md', 'CONTRIBUTING.md', ...fs.readdirSync(path.join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

/** The code blocks of a page that name the example file they come from. */
function examples(text: string): Array<[string, string]> {
  const found: Array<[string, string]> = [];
  const pattern = /<!-- example: (\S+) -->\n```ts(?: nofixture)?\n([\s\S]*?)```/g;
  for (let m = pattern.exec(text); m; m = pattern.exec(text)) {
    found.push([m[1], m[2]]);
  }
  return found;
}

/** The lines between README:start and README:end markers, de-indented, regions joined by a blank line. */
function markedRegions(file: string): string {
  const regions: string[] = [];
  const pattern = /^([ \t]*)\/\/ README:start\n([\s\S]*?)^[ \t]*\/\/ README:end$/gm;
  const text = read(file);
  for (let m = pattern.exec(text); m; m = pattern.exec(text)) {
    const indent = m[1];
    regions.push(m[2].split('\n').map((line) => line.startsWith(indent) ? line.slice(indent.length) : line).join('\n'));
  }
  return regions.map((r) => r.replace(/\n+$/, '\n')).join('\n');
}

/** GitHub's anchor for a heading. */
function slug(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
}

/** The anchors of a Markdown file's headings. */
function anchors(text: string): Set<string> {
  return new Set([...text.replace(/```[\s\S]*?```/g, '').matchAll(/^#{1,6} (.+)$/gm)].map((m) => slug(m[1])));
}

test('the README has type-checked examples', () => {
  expect(examples(readme).length).toBeGreaterThanOrEqual(2);
});

test.each(pages.flatMap((page) => examples(read(page)).map(([file, block]) => [page, file, block])))(
  '%s: the block from %s is the type-checked example',
  (_page, file, block) => {
    expect(block).toBe(markedRegions(file));
  },
);

test.each(pages)('%s has no TypeScript block that is not a type-checked example', (page) => {
  // Shell, text and Mermaid blocks are fine; TypeScript must come from examples/snippets.
  const text = read(page);
  const tsBlocks = [...text.matchAll(/^```(ts|typescript)\b/gm)].length;
  expect(tsBlocks).toBe(examples(text).length);
});

test('the README shows a complete app, compiled by jsii-rosetta without a fixture', () => {
  const app = examples(readme).find(([file]) => file === 'examples/snippets/app.ts');
  expect(app).toBeDefined();
  expect(readme).toContain('<!-- example: examples/snippets/app.ts -->\n```ts nofixture\n');
  expect(app![1]).toMatch(/^const app = new App\(\);$/m);
  expect(app![1]).toMatch(/^app\.synth\(\);$/m);
});

test('the README keeps the quick-start commands', () => {
  expect(readme).toContain('npm ci && npx projen example');
  expect(readme).toContain('npm ci && npx projen test');
});

test('the install section sits between its markers, each on a line of its own', () => {
  const start = readme.split('\n').indexOf('<!-- install:start -->');
  const end = readme.split('\n').indexOf('<!-- install:end -->');
  expect(start).toBeGreaterThan(0);
  expect(end).toBeGreaterThan(start);
  expect(readme.split('\n').filter((l) => l.includes('install:start') || l.includes('install:end'))).toHaveLength(2);
  expect(readme.split('\n')[start + 1]).toBe('## Install');
});

test('the README is for a ten-minute read: under 18,000 bytes besides the install section', () => {
  const outsideInstall = readme.replace(/<!-- install:start -->[\s\S]*<!-- install:end -->/, '');
  expect(Buffer.byteLength(outsideInstall)).toBeLessThan(18_000);
});

test.each(pages)('%s links only to files and headings that exist', (page) => {
  const text = read(page).replace(/```[\s\S]*?```/g, '');
  const broken: string[] = [];
  for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
    if (/^[a-z]+:/.test(target)) continue;
    const [file, anchor] = target.split('#');
    const resolved = file ? path.join(path.dirname(path.join(root, page)), file) : path.join(root, page);
    if (!fs.existsSync(resolved)) {
      broken.push(target);
    } else if (anchor && !anchors(fs.readFileSync(resolved, 'utf8')).has(anchor)) {
      broken.push(target);
    }
  }
  expect(broken).toEqual([]);
});
