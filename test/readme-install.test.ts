import * as fs from 'fs';
import * as path from 'path';
import { BLOCK_NAMES, END, parseInstallSection, START } from '../scripts/readme-install';

const README = fs.readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8');
const fence = '```';
const section = (body: string) => `# x\n\n${START}\n## Install\n\nVersion 0.1.0 is not on npm yet.\n\n${body}\n${END}\n\n## Quick start\n`;
const allBlocks = [
  `${fence}sh\nnpm ci\nnpx projen dist\n${fence}`,
  `${fence}sh\nnpm install "$CDK_VM_IMPORT/dist/js/x.tgz"\n${fence}`,
  `${fence}sh\npip install x.whl\n${fence}`,
  `${fence}sh\nmvn install:install-file -Dfile=x.jar\n${fence}`,
  `${fence}xml\n<dependency>\n  <artifactId>cdk-vm-import</artifactId>\n</dependency>\n${fence}`,
  `${fence}sh\ngo mod edit -replace=a=b\ngo mod tidy\n${fence}`,
].join('\n\n');

describe('the README install section, as CI runs it', () => {
  test('holds one block per step, and the version it installs', () => {
    const parsed = parseInstallSection(README);
    expect(Object.keys(parsed.blocks).sort()).toEqual([...BLOCK_NAMES].sort());
    expect(parsed.version).toMatch(/^\d+\.\d+\.\d+$/);
    // Each command names the version the section says it installs.
    for (const name of ['npm', 'pip', 'mvn', 'go', 'maven-dependency'] as const) {
      expect(parsed.blocks[name]).toContain(parsed.version);
    }
  });

  test('returns each block exactly as written', () => {
    const parsed = parseInstallSection(section(allBlocks));
    expect(parsed.blocks.go).toBe('go mod edit -replace=a=b\ngo mod tidy');
    expect(parsed.blocks.build).toBe('npm ci\nnpx projen dist');
    expect(parsed.version).toBe('0.1.0');
  });

  test('refuses a block CI would not run, a second block of a kind, a missing one, and missing markers', () => {
    expect(() => parseInstallSection(section(`${allBlocks}\n\n${fence}sh\nyarn add x\n${fence}`))).toThrow(/does not know how to run this sh block:\nyarn add x/);
    expect(() => parseInstallSection(section(`${allBlocks}\n\n${fence}sh\npip install y.whl\n${fence}`))).toThrow(/two pip blocks/);
    expect(() => parseInstallSection(section(allBlocks.replace('pip install x.whl', 'echo')))).toThrow(/does not know how to run/);
    expect(() => parseInstallSection(section(allBlocks.split('\n\n').slice(1).join('\n\n')))).toThrow(/no build block/);
    expect(() => parseInstallSection(section(allBlocks).replace(START, ''))).toThrow(/wrapped once/);
    expect(() => parseInstallSection(section(allBlocks).replace('Version 0.1.0 is not on', 'Soon on'))).toThrow(/which version/);
  });
});
