import * as fs from 'fs';
import * as path from 'path';

const root = path.join(__dirname, '..');
const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');

/** The README's code blocks that name the example file they come from. */
function readmeExamples(): Array<[string, string]> {
  const found: Array<[string, string]> = [];
  const pattern = /<!-- example: (\S+) -->\n```ts\n([\s\S]*?)```/g;
  for (let m = pattern.exec(readme); m; m = pattern.exec(readme)) {
    found.push([m[1], m[2]]);
  }
  return found;
}

/** The lines between README:start and README:end markers, de-indented, regions joined by a blank line. */
function markedRegions(file: string): string {
  const regions: string[] = [];
  const pattern = /^([ \t]*)\/\/ README:start\n([\s\S]*?)^[ \t]*\/\/ README:end$/gm;
  const text = fs.readFileSync(path.join(root, file), 'utf8');
  for (let m = pattern.exec(text); m; m = pattern.exec(text)) {
    const indent = m[1];
    regions.push(m[2].split('\n').map((line) => line.startsWith(indent) ? line.slice(indent.length) : line).join('\n'));
  }
  return regions.map((r) => r.replace(/\n+$/, '\n')).join('\n');
}

test('the README has type-checked examples', () => {
  expect(readmeExamples().length).toBeGreaterThanOrEqual(2);
});

test.each(readmeExamples())('the README block from %s is the type-checked example', (file, block) => {
  expect(block).toBe(markedRegions(file));
});
