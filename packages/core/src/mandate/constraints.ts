import type { JsonValue } from '../json.ts';
import { hostAllowed, readHost } from './hosts.ts';
import { matchWhole, RegexWork } from './regex.ts';
import type { Constraint } from './schema.ts';

export interface ConstraintResult {
  readonly ok: boolean;
  readonly why?: string;
  /**
   * The constraint could not be evaluated (a regex too costly to run on this value): neither a
   * yes nor a no. Callers deny on it, wherever a "no" would have been the more permissive answer.
   */
  readonly undecided?: true;
}

const OK: ConstraintResult = { ok: true };

/**
 * Normalises an absolute POSIX path: collapses repeated slashes, resolves "." and "..".
 * Returns undefined for anything that is not a plain absolute path (relative, NUL, backslash,
 * or ".." climbing above the root), so such values can never satisfy a prefix.
 */
export function normalisePath(value: string): string | undefined {
  if (!value.startsWith('/') || value.includes('\0') || value.includes('\\')) return undefined;
  const out: string[] = [];
  for (const seg of value.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (out.length === 0) return undefined;
      out.pop();
      continue;
    }
    out.push(seg);
  }
  return '/' + out.join('/');
}

function pathWithin(value: string, prefix: string): boolean {
  const v = normalisePath(value);
  const p = normalisePath(prefix);
  if (v === undefined || p === undefined) return false;
  if (p === '/') return true;
  return v === p || v.startsWith(p + '/');
}

/**
 * The host a value names: a bare host name, one e-mail address's domain or one http(s) URL's
 * host, each read strictly (hosts.ts); undefined for anything else, lists and ambiguous values
 * included.
 */
export function extractHost(value: string): string | undefined {
  const r = readHost(value);
  return 'host' in r ? r.host : undefined;
}

function scalarEquals(a: JsonValue | undefined, b: JsonValue): boolean {
  return a === b;
}

/**
 * Evaluates one argument constraint against the argument's value (undefined when absent).
 * `work` is what the caller's check may still spend on regexes: one per mandate check, shared by
 * all its constraints (a fresh one when omitted).
 */
export function evaluateConstraint(c: Constraint, value: JsonValue | undefined, work: RegexWork = new RegexWork()): ConstraintResult {
  if (value === undefined) return { ok: false, why: 'argument missing' };
  if ('equals' in c) return scalarEquals(value, c.equals) ? OK : { ok: false, why: 'not equal to the allowed value' };
  if ('one_of' in c) return c.one_of.some((x) => scalarEquals(value, x)) ? OK : { ok: false, why: 'not one of the allowed values' };
  if ('regex' in c) {
    if (typeof value !== 'string') return { ok: false, why: 'not a string' };
    const m = matchWhole(c.regex, value, work);
    if ('error' in m) return { ok: false, why: m.error, undecided: true };
    return m.matched ? OK : { ok: false, why: 'does not match the pattern' };
  }
  if ('range' in c) {
    if (typeof value !== 'number' || !Number.isFinite(value)) return { ok: false, why: 'not a number' };
    if (c.range.min !== undefined && value < c.range.min) return { ok: false, why: `below ${c.range.min}` };
    if (c.range.max !== undefined && value > c.range.max) return { ok: false, why: `above ${c.range.max}` };
    return OK;
  }
  if ('prefix' in c) {
    if (typeof value !== 'string') return { ok: false, why: 'not a string' };
    if (c.prefix.startsWith('/')) return pathWithin(value, c.prefix) ? OK : { ok: false, why: 'path outside the allowed prefix' };
    return value.startsWith(c.prefix) ? OK : { ok: false, why: 'outside the allowed prefix' };
  }
  // domains
  if (typeof value !== 'string') return { ok: false, why: 'not a string' };
  const r = readHost(value);
  if ('why' in r) return { ok: false, why: `no single host could be read: ${r.why}` };
  return hostAllowed(r.host, c.domains) ? OK : { ok: false, why: `host "${r.host}" is not in the allow-list` };
}

/** Reads `a.b.c` out of an arguments object; only own properties, never the prototype chain. */
export function readArg(args: { [k: string]: JsonValue }, path: string): JsonValue | undefined {
  let cur: JsonValue | undefined = args;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur)) return undefined;
    if (!Object.hasOwn(cur, part)) return undefined;
    cur = (cur as { [k: string]: JsonValue })[part];
  }
  return cur;
}
