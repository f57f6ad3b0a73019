import * as fs from 'fs';
import * as path from 'path';
import * as lib from '../src';

// JavaScript and Python users may pass an enum member's wire value ('legacy-bios') where
// the type names the member, and EC2's messages quote the value: API.md shows each.
const api = fs.readFileSync(path.join(__dirname, '..', 'API.md'), 'utf8');
const enums = Object.entries(lib).filter(([name]) => api.includes(`### ${name} <a name="${name}" id="cdk-vm-import.${name}"></a>`) && api.indexOf(`id="cdk-vm-import.${name}"`) > api.indexOf('## Enums'));

/** The text of API.md's section on one enum member, up to the next rule. */
function memberSection(enumName: string, member: string): string {
  const anchor = `id="cdk-vm-import.${enumName}.${member}"></a>`;
  const start = api.indexOf(`##### \`${member}\` <a name="${member}" ${anchor}`);
  if (start < 0) throw new Error(`API.md has no section for ${enumName}.${member}`);
  return api.slice(start, api.indexOf('\n---', start));
}

test('API.md documents every enum of the library', () => {
  expect(enums.map(([name]) => name).sort()).toEqual(['Architecture', 'BootMode', 'DiskImageFormat', 'Hypervisor', 'ImportMethod', 'LicenseType', 'Platform']);
});

test.each(enums.flatMap(([name, values]) => Object.entries(values as Record<string, string>).map(([member, value]) => [name, member, value])))(
  "API.md shows %s.%s's wire value %s",
  (enumName, member, value) => {
    expect(memberSection(enumName, member)).toContain(`(value \`${value}\`)`);
  },
);
