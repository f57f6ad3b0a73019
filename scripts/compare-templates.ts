/**
 * Compares CloudFormation templates synthesized from the same app in different languages:
 * the same resources, types and properties, with what legitimately differs masked.
 *
 *   ts-node -T scripts/compare-templates.ts REFERENCE.template.json OTHER.template.json...
 *
 * Exits 1 and lists the differing JSON paths when any template differs from the reference.
 */
import * as fs from 'fs';

/** Content hashes (asset hashes in S3 keys, asset paths and metadata). */
const HASH = /\b[0-9a-f]{64}\b/g;

/**
 * Replaces what may differ between languages for the same app: asset hashes (a bundle
 * made on another machine or by another runtime), and the CDKMetadata resource's
 * `Analytics`, which encodes the runtime's language and versions.
 */
export function normalizeTemplate(template: any): any {
  const masked = mask(template);
  for (const resource of Object.values<any>(masked.Resources ?? {})) {
    if (resource?.Type === 'AWS::CDK::Metadata' && resource.Properties?.Analytics !== undefined) {
      resource.Properties.Analytics = '<analytics>';
    }
  }
  return masked;
}

function mask(value: any): any {
  if (typeof value === 'string') return value.replace(HASH, '<hash>');
  if (Array.isArray(value)) return value.map(mask);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k.replace(HASH, '<hash>'), mask(v)]));
  }
  return value;
}

/** The JSON paths at which `a` and `b` differ (at most `limit`). */
export function differences(a: any, b: any, limit = 20, at = '$'): string[] {
  const found: string[] = [];
  const walk = (x: any, y: any, where: string) => {
    if (found.length >= limit) return;
    if (x === y) return;
    const bothObjects = x && y && typeof x === 'object' && typeof y === 'object' && Array.isArray(x) === Array.isArray(y);
    if (!bothObjects) {
      found.push(`${where}: ${JSON.stringify(x)?.slice(0, 120)} ≠ ${JSON.stringify(y)?.slice(0, 120)}`);
      return;
    }
    const keys = new Set([...Object.keys(x), ...Object.keys(y)]);
    for (const key of [...keys].sort()) {
      const next = Array.isArray(x) ? `${where}[${key}]` : `${where}.${key}`;
      if (!(key in x)) found.push(`${next}: missing in the reference`);
      else if (!(key in y)) found.push(`${next}: missing`);
      else walk(x[key], y[key], next);
      if (found.length >= limit) return;
    }
  };
  walk(a, b, at);
  return found;
}

/** A one-line summary of a template's resources: how many of each type. */
export function summarize(template: any): string {
  const counts: Record<string, number> = {};
  for (const r of Object.values<any>(template.Resources ?? {})) counts[r.Type] = (counts[r.Type] ?? 0) + 1;
  const total = Object.values(counts).reduce((s, n) => s + n, 0);
  return `${total} resources of ${Object.keys(counts).length} types`;
}

function main(): void {
  const [reference, ...others] = process.argv.slice(2);
  if (!reference || others.length === 0) throw new Error('usage: compare-templates.ts REFERENCE OTHER...');
  const read = (f: string) => normalizeTemplate(JSON.parse(fs.readFileSync(f, 'utf8')));
  const expected = read(reference);
  let failed = false;
  for (const other of others) {
    const diff = differences(expected, read(other));
    if (diff.length === 0) {
      console.log(`${other}: same as ${reference} (${summarize(expected)})`);
    } else {
      failed = true;
      console.error(`${other} differs from ${reference}:\n  ${diff.join('\n  ')}`);
    }
  }
  if (failed) process.exit(1);
}

if (require.main === module) main();
