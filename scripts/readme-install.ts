/**
 * The commands of the README's install section, for CI to run exactly as written.
 *
 * The section lies between `<!-- install:start -->` and `<!-- install:end -->`. Each fenced
 * block in it is one step a user takes: `sh` blocks are commands, the one `xml` block is the
 * Maven dependency. Every block must be one CI knows how to run, so that no command in the
 * section goes untested:
 *
 *   ts-node -T scripts/readme-install.ts build|npm|pip|mvn|go|maven-dependency|version
 */
import * as fs from 'fs';
import * as path from 'path';

export const START = '<!-- install:start -->';
export const END = '<!-- install:end -->';

/** The blocks of the install section, by what they install. */
export type BlockName = 'build' | 'npm' | 'pip' | 'mvn' | 'go' | 'maven-dependency';
export const BLOCK_NAMES: readonly BlockName[] = ['build', 'npm', 'pip', 'mvn', 'go', 'maven-dependency'];

export interface InstallSection {
  /** Each block's text, exactly as written (without its fences). */
  readonly blocks: Record<BlockName, string>;
  /** The version the section installs (from "Version x.y.z is not on ..."). */
  readonly version: string;
}

/** Which step a block is, from its language and its first command. */
function classify(language: string, text: string): BlockName | undefined {
  if (language === 'xml') return text.includes('<artifactId>cdk-vm-import</artifactId>') ? 'maven-dependency' : undefined;
  if (language !== 'sh') return undefined;
  if (/^npx projen dist$/m.test(text)) return 'build';
  const first = text.split('\n')[0].split(' ')[0];
  return ({ npm: 'npm', pip: 'pip', mvn: 'mvn', go: 'go' } as Record<string, BlockName>)[first];
}

/** Reads the install section of a README's text; throws, saying what to fix, when it is not as CI runs it. */
export function parseInstallSection(readme: string): InstallSection {
  const lines = readme.split('\n');
  const start = lines.indexOf(START);
  const end = lines.indexOf(END);
  if (start < 0 || end < start || lines.lastIndexOf(START) !== start || lines.lastIndexOf(END) !== end) {
    throw new Error(`README.md: the install section must be wrapped once in ${START} and ${END}, each on its own line`);
  }
  const region = lines.slice(start + 1, end);
  const blocks: Partial<Record<BlockName, string>> = {};
  for (let i = 0; i < region.length; i++) {
    const open = /^```(\S*)$/.exec(region[i]);
    if (!open) continue;
    const close = region.indexOf('```', i + 1);
    if (close < 0) throw new Error(`README.md install section: the block opened at "${region[i]}" is never closed`);
    const text = region.slice(i + 1, close).join('\n');
    const name = classify(open[1], text);
    if (!name) {
      throw new Error(`README.md install section: CI does not know how to run this ${open[1] || 'unlabelled'} block:\n${text}\n`
        + `(a block is one of: ${BLOCK_NAMES.join(', ')}; put other commands in prose, or teach scripts/readme-install.ts and scripts/bindings.sh to run them)`);
    }
    if (blocks[name] !== undefined) throw new Error(`README.md install section: two ${name} blocks; keep one per language`);
    blocks[name] = text;
    i = close;
  }
  const missing = BLOCK_NAMES.filter((name) => blocks[name] === undefined);
  if (missing.length > 0) throw new Error(`README.md install section: no ${missing.join(', ')} block`);
  const version = /Version (\d+\.\d+\.\d+) is not on/.exec(region.join('\n'))?.[1];
  if (!version) throw new Error('README.md install section: it must say which version it installs ("Version x.y.z is not on ...")');
  return { blocks: blocks as Record<BlockName, string>, version };
}

if (require.main === module) {
  const what = process.argv[2];
  const section = parseInstallSection(fs.readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8'));
  if (what === 'version') {
    process.stdout.write(`${section.version}\n`);
  } else if ((BLOCK_NAMES as readonly string[]).includes(what)) {
    process.stdout.write(`${section.blocks[what as BlockName]}\n`);
  } else {
    process.stderr.write(`usage: ts-node -T scripts/readme-install.ts ${BLOCK_NAMES.join('|')}|version\n`);
    process.exit(2);
  }
}
