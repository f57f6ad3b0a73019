import * as fs from 'fs';
import * as path from 'path';

// `npx projen example` runs the example app with ts-node, which fails with TypeScript 7
// ("Cannot read properties of undefined (reading 'fileExists')"): keep the two compatible.
const version = (pkg: string) => JSON.parse(fs.readFileSync(require.resolve(`${pkg}/package.json`), 'utf8')).version as string;
const projenTasks = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '.projen', 'tasks.json'), 'utf8'));

test('the example app runs with ts-node', () => {
  expect(JSON.stringify(projenTasks.tasks.example.steps)).toContain('ts-node -T examples/app.ts');
});

test('the TypeScript that ts-node loads is older than 7', () => {
  expect(Number(version('typescript').split('.')[0])).toBeLessThan(7);
  expect(version('ts-node')).toMatch(/^10\./);
});
