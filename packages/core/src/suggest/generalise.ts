/**
 * Argument generalisers: from the values one argument of one tool took in the observed calls, the
 * narrowest constraint of the mandate language that allows every one of them, or no constraint
 * with the reason why none fits. Each rule is written down here and in docs/suggest.md; a rule
 * widens beyond the values it saw only in the one way its comment names.
 *
 * Tried in this order, first fit wins:
 *
 * 1. `absent`  the argument is missing from some observed call: no constraint (a constraint
 *              denies a call that leaves its argument out), reported open.
 * 2. `redacted` a recorded value was redacted or cut by the audit: the real values are unknown,
 *              no constraint, reported open.
 * 3. `list`    a value is a list or an object: the mandate language constrains scalars only.
 * 4. `boolean` every value is a boolean: `one_of` the booleans seen. Never widens.
 * 5. `range`   every value is a finite number: `range` from the least to the greatest seen.
 *              Widens to the numbers between them (and to fractions between integers).
 * 6. `enum`    the values repeat (at most `maxEnum` distinct values, each seen twice on average):
 *              `one_of` the values seen. Never widens.
 * 7. `domains` every value is an e-mail address or an http(s) URL with one host: `domains` of the
 *              hosts seen, exactly. Widens to any local part at a seen domain, any path of a
 *              seen host; `wildcardMin` or more distinct hosts under one parent of two labels or
 *              more become `*.<parent>` (every host under that parent).
 * 8. `prefix`  every value is an absolute POSIX path: `prefix` the deepest directory (segment by
 *              segment) that holds them all, when it is not `/`. Widens to that directory's
 *              whole subtree.
 * 9. `shape`   at least two distinct values, each at most 64 characters of letters, digits and
 *              punctuation, with the same skeleton (runs of digits, runs of letters and the
 *              punctuation between them, in the same order) and at least one run of digits:
 *              `regex` with each digit run as `[0-9]{least,most}` seen and each letter run as the
 *              letters seen when they are the same in every value, else `[A-Za-z]{least,most}`.
 *              Widens to every value of that skeleton.
 * 10. `exact`  at most `maxEnum` distinct values: `one_of` the values seen. Never widens.
 * 11. `text`   anything else (free text): no constraint, reported open.
 */
import type { JsonPrimitive, JsonValue } from '../json.ts';
import { normalisePath } from '../mandate/constraints.ts';
import { normaliseDomainEntry, readHost } from '../mandate/hosts.ts';
import { regexProblem } from '../mandate/regex.ts';
import type { Constraint } from '../mandate/schema.ts';

export type GeneraliserRule = 'absent' | 'redacted' | 'list' | 'boolean' | 'range' | 'enum' | 'domains' | 'prefix' | 'shape' | 'exact' | 'text';

export interface Generalised {
  readonly rule: GeneraliserRule;
  /** undefined: the argument is left open (no rule fits) */
  readonly constraint: Constraint | undefined;
  /** how many observed values, and how many distinct ones */
  readonly seen: number;
  readonly distinct: number;
}

export interface GeneraliseOptions {
  /** most distinct values an `enum` or `exact` rule lists (default 8; at most 256) */
  readonly maxEnum?: number;
  /** distinct hosts under one parent that become `*.<parent>` (default 3; 0 never) */
  readonly wildcardMin?: number;
}

/** what the audit writes in place of a secret; a recorded value holding it is not the real one */
const REDACTED_MARK = '[REDACTED]';
/** the audit cuts strings at 1,024 characters: one that long may have been cut */
const AUDIT_CUT = 1024;
const MAX_SHAPE_CHARS = 64;
const MAX_DOMAINS = 256;

function scalarKey(v: JsonPrimitive): string {
  return typeof v === 'string' ? `s${v}` : `${typeof v}${String(v)}`;
}

function distinctScalars(values: readonly JsonPrimitive[]): JsonPrimitive[] {
  const seen = new Map<string, JsonPrimitive>();
  for (const v of values) if (!seen.has(scalarKey(v))) seen.set(scalarKey(v), v);
  return [...seen.values()].sort((a, b) => (scalarKey(a) < scalarKey(b) ? -1 : scalarKey(a) > scalarKey(b) ? 1 : 0));
}

/** Rule 7: the host of each value, or undefined unless every value is an e-mail address or an http(s) URL. */
export function domainsOf(values: readonly string[], wildcardMin: number): string[] | undefined {
  const hosts = new Set<string>();
  for (const v of values) {
    if (!v.includes('@') && !/^https?:\/\//i.test(v)) return undefined;
    const r = readHost(v);
    if (!('host' in r)) return undefined;
    hosts.add(r.host);
  }
  if (wildcardMin > 0) {
    // group by parent (the host without its first label); a parent must keep two labels
    const byParent = new Map<string, string[]>();
    for (const h of hosts) {
      const dot = h.indexOf('.');
      const parent = h.slice(dot + 1);
      if (dot < 0 || !parent.includes('.') || /^[0-9.]+$/.test(h)) continue;
      byParent.set(parent, [...(byParent.get(parent) ?? []), h]);
    }
    for (const [parent, members] of byParent) {
      if (members.length < wildcardMin) continue;
      for (const m of members) hosts.delete(m);
      hosts.add(`*.${parent}`);
    }
  }
  if (hosts.size > MAX_DOMAINS) return undefined;
  return [...hosts].sort();
}

/** Rule 8: the deepest directory holding every path, or undefined when one is not an absolute path or it is `/`. */
export function commonPathPrefix(values: readonly string[]): string | undefined {
  let common: string[] | undefined;
  for (const v of values) {
    const n = normalisePath(v);
    if (n === undefined) return undefined;
    const segs = n.split('/').slice(1).filter((s) => s !== '');
    if (common === undefined) common = segs;
    else {
      let i = 0;
      while (i < common.length && i < segs.length && common[i] === segs[i]) i += 1;
      common = common.slice(0, i);
    }
  }
  if (common === undefined || common.length === 0) return undefined;
  return '/' + common.join('/');
}

type Run = { kind: 'digits' | 'letters'; text: string } | { kind: 'punct'; text: string };

function runsOf(value: string): Run[] | undefined {
  if (value.length === 0 || value.length > MAX_SHAPE_CHARS || !/^[\x21-\x7e]+$/.test(value)) return undefined;
  const out: Run[] = [];
  for (const m of value.matchAll(/[0-9]+|[A-Za-z]+|[^0-9A-Za-z]/g)) {
    const t = m[0];
    out.push({ kind: /^[0-9]/.test(t) ? 'digits' : /^[A-Za-z]/.test(t) ? 'letters' : 'punct', text: t });
  }
  return out;
}

/** least and greatest, without spreading (a spread of 100,000 values overflows the stack) */
export function extent(values: readonly number[]): [number, number] {
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (const v of values) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return [min, max];
}

function escapeRegex(c: string): string {
  return /[\\^$.|?*+()[\]{}/-]/.test(c) ? `\\${c}` : c;
}

function quantifier(min: number, max: number): string {
  return min === max ? `{${min}}` : `{${min},${max}}`;
}

/** Rule 9: one pattern for every value of the same skeleton, or undefined when they differ in shape. */
export function shapeRegex(values: readonly string[]): string | undefined {
  const all = values.map(runsOf);
  if (all.some((r) => r === undefined)) return undefined;
  const runs = all as Run[][];
  const first = runs[0];
  if (first === undefined) return undefined;
  for (const r of runs) {
    if (r.length !== first.length) return undefined;
    for (let i = 0; i < r.length; i++) {
      const a = r[i] as Run;
      const b = first[i] as Run;
      if (a.kind !== b.kind || (a.kind === 'punct' && a.text !== b.text)) return undefined;
    }
  }
  if (!first.some((r) => r.kind === 'digits')) return undefined;
  let source = '';
  for (let i = 0; i < first.length; i++) {
    const column = runs.map((r) => r[i] as Run);
    const kind = (first[i] as Run).kind;
    const [min, max] = extent(column.map((r) => r.text.length));
    if (kind === 'punct') source += escapeRegex((first[i] as Run).text);
    else if (kind === 'digits') source += `[0-9]${quantifier(min, max)}`;
    else if (column.every((r) => r.text === (first[i] as Run).text)) source += (first[i] as Run).text;
    else source += `[A-Za-z]${quantifier(min, max)}`;
  }
  return regexProblem(source) === undefined ? source : undefined;
}

/**
 * The narrowest constraint for one argument (see the module comment). `values` holds one entry
 * per observed call of the tool, undefined where the call did not pass the argument.
 */
export function generaliseArg(values: readonly (JsonValue | undefined)[], opts: GeneraliseOptions = {}): Generalised {
  const maxEnum = Math.min(Math.max(opts.maxEnum ?? 8, 1), 256);
  const wildcardMin = opts.wildcardMin ?? 3;
  const present = values.filter((v): v is JsonValue => v !== undefined);
  const seen = present.length;
  const open = (rule: GeneraliserRule, distinct = 0): Generalised => ({ rule, constraint: undefined, seen, distinct });
  if (present.length < values.length || present.length === 0) return open('absent');
  if (present.some((v) => typeof v === 'string' && (v.includes(REDACTED_MARK) || v.length >= AUDIT_CUT))) return open('redacted');
  if (present.some((v) => v !== null && typeof v === 'object')) return open('list');
  const distinct = distinctScalars(present as JsonPrimitive[]);
  const d = distinct.length;
  const fit = (rule: GeneraliserRule, constraint: Constraint): Generalised => ({ rule, constraint, seen, distinct: d });
  if (present.every((v) => typeof v === 'boolean')) return fit('boolean', { one_of: distinct });
  if (present.every((v) => typeof v === 'number' && Number.isFinite(v))) {
    const [min, max] = extent(present as number[]);
    return fit('range', { range: { min, max } });
  }
  if (d <= maxEnum && seen >= 2 * d) return fit('enum', { one_of: distinct });
  if (present.every((v) => typeof v === 'string')) {
    const strings = distinct as string[];
    const hosts = domainsOf(strings, wildcardMin);
    if (hosts !== undefined && hosts.length > 0 && hosts.every((h) => normaliseDomainEntry(h) !== undefined)) return fit('domains', { domains: hosts });
    const prefix = commonPathPrefix(strings);
    if (prefix !== undefined) return fit('prefix', { prefix });
    if (d >= 2) {
      const regex = shapeRegex(strings);
      if (regex !== undefined) return fit('shape', { regex });
    }
  }
  if (d <= maxEnum && distinct.every((v) => typeof v !== 'string' || v.length <= 4096)) return fit('exact', { one_of: distinct });
  return open('text', d);
}
