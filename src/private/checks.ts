/**
 * Small helpers shared by the synth-time checks: how a value is shown in a message, and
 * the check of a string enum prop, which JavaScript and Python callers can give any value.
 */
import { Token } from 'aws-cdk-lib';

/** A value as a message shows it. */
export const show = (value: unknown): string => JSON.stringify(value) ?? String(value);

/** Whether a string is given and known at synth (not an unresolved token). */
export function known(value: string | undefined): value is string {
  return value !== undefined && !Token.isUnresolved(value);
}

/** What a value is, for a message about a value of the wrong type. */
export function describeValue(value: unknown): string {
  if (value === null || value === undefined) {
    return String(value);
  }
  if (typeof value === 'string') {
    return `the string ${show(value)}`;
  }
  if (typeof value !== 'object') {
    return `the ${typeof value} ${String(value)}`;
  }
  if (Array.isArray(value)) {
    return `an array of ${value.length}`;
  }
  const name = Object.getPrototypeOf(value)?.constructor?.name;
  return name && name !== 'Object' ? `a ${name}` : 'a plain object';
}

/**
 * Checks that a prop holds one of an enum's wire values. The message lists them, and
 * points out a value that differs only in case (`linux` for `Linux`).
 */
export function checkEnum(prop: string, value: unknown, allowed: Record<string, string>, hint = '', subject = `'${prop}'`): void {
  if (value === undefined || (typeof value === 'string' && Token.isUnresolved(value))) {
    return;
  }
  const values = Object.values(allowed);
  if (typeof value === 'string' && values.includes(value)) {
    return;
  }
  const sameButCase = typeof value === 'string' ? values.find((v) => v.toLowerCase() === value.toLowerCase()) : undefined;
  const caseHint = sameButCase === undefined ? '' : ` Values are case-sensitive: use ${show(sameButCase)}.`;
  throw new Error(`${subject} must be one of ${values.map(show).join(', ')}; got ${show(value)}.${caseHint}${hint}`);
}
