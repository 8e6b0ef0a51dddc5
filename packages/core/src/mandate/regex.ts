import { RE2JSException, RE2Set } from 're2js';

/*
 * Mandate `regex` constraints come from agents, so they are hostile input (DESIGN invariant 11).
 * They run on RE2 (the `re2js` port of Go's regexp): an automaton, never backtracking, so a
 * match takes time linear in the value times the program's size. Both factors are bounded here,
 * and so is their product per mandate check, so one call can spend only so much on patterns:
 *
 * - a pattern's program is estimated from its text, before anything is compiled (compiling
 *   `\pL{1,1000}` repeated to 512 characters took 1.8 s and 88 MB before RE2 could refuse it):
 *   at most `maxProgram` instructions, and `maxMandateProgram` for all of a mandate's patterns;
 * - a value is matched only up to `maxInput` characters; a longer one fails the constraint;
 * - each match costs (value length + `compileWeight`) × (program + `stepOverhead`) units,
 *   whether the program was cached or not (so a decision never depends on what the cache held),
 *   and one check spends at most `workPerCheck`: past it, the constraint fails instead of running;
 * - compiled programs are cached, `cacheEntries` of them, each with at most `dfaBytes` of
 *   DFA states (the engine's default is 8 MB a pattern).
 *
 * Measured on the 2-core machine under load (bench/regex.ts): a full budget's worst pattern
 * took about 0.3 s; the classic ReDoS patterns against 65,536 characters take milliseconds.
 */
export const REGEX_LIMITS = {
  /** estimated instructions of one pattern's program */
  maxProgram: 1_000,
  /** estimated instructions of all the distinct patterns of one mandate */
  maxMandateProgram: 4_000,
  /** characters (UTF-16 code units) of the longest value a pattern is matched against */
  maxInput: 65_536,
  /** characters a compile is charged as, per instruction */
  compileWeight: 1_024,
  /** instructions each character is charged besides the program's: the engine's own work per step */
  stepOverhead: 64,
  /** work units (characters × instructions) one mandate check may spend on patterns */
  workPerCheck: 2 ** 24,
  /** compiled programs kept, least recently used dropped first */
  cacheEntries: 128,
  /** bytes of DFA states one compiled program may keep (then it falls back to the NFA) */
  dfaBytes: 256 * 1024,
} as const;

/** The work one mandate check may spend on patterns; create one per check, pass it along. */
export class RegexWork {
  private spentUnits = 0;
  readonly limit: number;

  constructor(limit: number = REGEX_LIMITS.workPerCheck) {
    this.limit = limit;
  }

  get spent(): number {
    return this.spentUnits;
  }

  /** Takes `units` if they fit in what is left; false (and nothing taken) otherwise. */
  take(units: number): boolean {
    if (!(this.spentUnits + units <= this.limit)) return false;
    this.spentUnits += units;
    return true;
  }
}

// ---------------------------------------------------------------------------------- program size

/** Sizes above this are all "too large"; keeps the arithmetic finite. */
const SIZE_CAP = 1_000_000_000;
/** what a flags-only group such as (?i), or an empty \Q\E, "costs": it is no atom */
const FLAGS_ONLY = -1;
/** the instructions every program has besides its pattern's (fail, match, the set's wrapper) */
const PROGRAM_OVERHEAD = 8;

function codePointLength(s: string, i: number): number {
  const c = s.codePointAt(i);
  return c !== undefined && c > 0xffff ? 2 : 1;
}

function isOctal(ch: string | undefined): boolean {
  return ch !== undefined && ch >= '0' && ch <= '7';
}

/**
 * An upper bound of the instructions RE2 compiles `source` to, read from its text the way RE2's
 * parser reads it (classes, escapes, `\Q…\E`, groups, counted repetition) without expanding
 * anything: each atom costs 1 (a literal character, a class, `.`, an anchor), a capture 2 more,
 * an alternative 1, `x*` `x+` `x?` 1 more than `x`, `x{n,m}` n × x + (m − n) × (x + 1) and
 * `x{n,}` n × x + x + 1, as RE2's compiler lays them out, plus a few for the program itself.
 * Where RE2 would refuse the text, the figure does not matter: the compile that follows
 * refuses it. Linear in the pattern's length.
 */
export function estimateProgramSize(source: string): number {
  const s = source;
  let i = 0;
  /** the characters of a \Q…\E block before its last, which `atom` returns as the atom */
  let literalsBefore = 0;

  /** the length of the escape at `i` (s[i] is a backslash), as RE2's parseEscape reads it */
  const escapeLength = (at: number): number => {
    const c = s[at + 1];
    if (c === undefined) return 1;
    if (isOctal(c)) {
      let n = 1;
      while (n < 3 && isOctal(s[at + 1 + n])) n += 1;
      return 1 + n;
    }
    if (c === 'x' || c === 'p' || c === 'P') {
      if (s[at + 2] === '{') {
        const close = s.indexOf('}', at + 3);
        return close < 0 ? s.length - at : close - at + 1;
      }
      return c === 'x' ? 4 : 2 + codePointLength(s, at + 2);
    }
    return 1 + codePointLength(s, at + 1);
  };

  /** one character of a class, or the low/high end of a range */
  const classCharLength = (at: number): number => (s[at] === '\\' ? escapeLength(at) : codePointLength(s, at));

  /** skips a bracketed class starting at `i` (s[i] is '['), as RE2's parseClass does */
  const skipClass = (): void => {
    i += 1;
    if (s[i] === '^') i += 1;
    let first = true;
    while (i < s.length && (s[i] !== ']' || first)) {
      first = false;
      if (s.startsWith('[:', i)) {
        const close = s.indexOf(':]', i + 1);
        if (close >= 0) {
          i = close + 2;
          continue;
        }
      }
      if (s.startsWith('\\p', i) || s.startsWith('\\P', i)) {
        i += escapeLength(i);
        continue;
      }
      if (s[i] === '\\' && s[i + 1] !== undefined && 'dDsSwW'.includes(s[i + 1] as string)) {
        i += 2;
        continue;
      }
      i += classCharLength(i);
      if (s[i] === '-' && i + 1 < s.length && s[i + 1] !== ']') {
        i += 1;
        i += classCharLength(i);
      }
    }
    i += 1; // the closing ']'
  };

  /** a repetition operator at `i` as [min, max] (max -1: unbounded), or undefined for none */
  const repetition = (): [number, number] | undefined => {
    const c = s[i];
    if (c === '*' || c === '+' || c === '?') {
      i += 1;
      if (s[i] === '?') i += 1; // non-greedy
      return c === '?' ? [0, 1] : [c === '+' ? 1 : 0, -1];
    }
    if (c !== '{') return undefined;
    const m = /^\{(\d+)(,(\d*))?\}/.exec(s.slice(i, i + 24));
    if (!m) return undefined; // RE2 reads the '{' as a literal
    i += m[0].length;
    if (s[i] === '?') i += 1;
    const min = Number(m[1]);
    if (m[2] === undefined) return [min, min];
    if (m[3] === undefined || m[3] === '') return [min, -1];
    return [min, Math.max(Number(m[3]), min)];
  };

  /** x{min,max}: min copies, then (max - min) optional ones (an alternative each), or a loop */
  const repeated = (x: number, [min, max]: [number, number]): number => {
    const tail = max < 0 ? x + 1 : (max - min) * (x + 1);
    return Math.min(SIZE_CAP, Math.max(1, min * x + tail));
  };

  const group = (): number => {
    i += 1; // '('
    let capture = true;
    if (s[i] === '?') {
      if (s.startsWith('?P<', i) || s.startsWith('?<', i)) {
        const close = s.indexOf('>', i);
        i = close < 0 ? s.length : close + 1;
      } else {
        i += 1;
        while (i < s.length && /[A-Za-z-]/.test(s[i] as string)) i += 1;
        if (s[i] === ')') {
          i += 1;
          return FLAGS_ONLY;
        }
        if (s[i] === ':') i += 1;
        capture = false;
      }
    }
    const inner = alternation();
    if (s[i] === ')') i += 1;
    return capture ? inner + 2 : inner;
  };

  const atom = (): number => {
    const c = s[i];
    if (c === '(') return group();
    if (c === '[') {
      skipClass();
      return 1;
    }
    if (c === '\\') {
      if (s[i + 1] === 'Q') {
        const end = s.indexOf('\\E', i + 2);
        const text = end < 0 ? s.slice(i + 2) : s.slice(i + 2, end);
        i = end < 0 ? s.length : end + 2;
        // literal characters; a repetition after \E applies to the last one only
        const n = [...text].length;
        if (n === 0) return FLAGS_ONLY;
        literalsBefore += n - 1;
        return 1;
      }
      i += escapeLength(i);
      return 1;
    }
    i += codePointLength(s, i);
    return 1;
  };

  const concatenation = (): number => {
    let total = 0;
    let last = 0;
    while (i < s.length && s[i] !== '|' && s[i] !== ')') {
      let size = atom();
      total = Math.min(SIZE_CAP, total + literalsBefore);
      literalsBefore = 0;
      if (size === FLAGS_ONLY) {
        // (?i) or \Q\E is no atom: a repetition after it applies to the atom before it, so
        // `a{3}(?i){3}` is `a` nine times (RE2 only refuses repetitions written side by side)
        if (total < SIZE_CAP) total -= last;
        size = last;
      }
      for (let r = repetition(); r !== undefined; r = repetition()) size = repeated(size, r);
      last = size;
      total = Math.min(SIZE_CAP, total + size);
    }
    return total;
  };

  function alternation(): number {
    let total = concatenation();
    while (s[i] === '|') {
      i += 1;
      total = Math.min(SIZE_CAP, total + concatenation() + 1);
    }
    return total;
  }

  let total = alternation();
  while (i < s.length) {
    i += 1; // a stray ')': RE2 refuses the pattern; keep counting the rest anyway
    total = Math.min(SIZE_CAP, total + alternation());
  }
  return total + PROGRAM_OVERHEAD;
}

// ---------------------------------------------------------------------------------- checking

export type RegexProblemKind = 'unsupported' | 'invalid' | 'too_large';

export interface RegexProblem {
  readonly kind: RegexProblemKind;
  /** names the pattern and what is wrong with it */
  readonly message: string;
}

const UNSUPPORTED: readonly { test: RegExp; what: string }[] = [
  { test: /\\[1-9]/, what: 'backreferences (\\1) need backtracking' },
  { test: /\\k<|\(\?P=/, what: 'named backreferences need backtracking' },
  { test: /\(\?<[=!]/, what: 'lookbehind ((?<= , (?<!) is not supported' },
  { test: /\(\?[=!]/, what: 'lookahead ((?= , (?!) is not supported' },
  { test: /\(\?>/, what: 'atomic groups ((?>) are not supported' },
  { test: /[*+?}][+]/, what: 'possessive quantifiers (*+, ++, ?+) are not supported' },
  { test: /\\u/, what: '\\u escapes are JavaScript syntax: write \\x{00E9}' },
];

function quote(source: string): string {
  return JSON.stringify(source.length > 80 ? source.slice(0, 77) + '...' : source);
}

function describeCompileError(source: string, e: unknown): RegexProblem {
  const detail = e instanceof Error ? e.message.replace(/^error parsing regexp: /, '') : 'unknown error';
  if (e instanceof RE2JSException) {
    const unsupported = UNSUPPORTED.find((u) => u.test.test(source));
    if (unsupported) {
      return { kind: 'unsupported', message: `regex ${quote(source)} is not supported: ${unsupported.what}; patterns use RE2 syntax, matched in linear time (${detail})` };
    }
    if (/expression too large|nests too deeply|invalid repeat count/.test(detail)) {
      return { kind: 'too_large', message: `regex ${quote(source)} is too large: ${detail}` };
    }
  }
  return { kind: 'invalid', message: `regex ${quote(source)} is invalid: ${detail}` };
}

/** A pattern's estimated size and, once compiled, its program (or why it has none). */
interface Entry {
  readonly size: number;
  compiled?: { readonly set: RE2Set } | { readonly problem: RegexProblem };
}

/** Patterns by text, least recently used first; at most `cacheEntries` of them. */
const cache = new Map<string, Entry>();
/** the pattern last used: the cache's last entry */
let newest: string | undefined;

function tooLarge(source: string, size: number): RegexProblem {
  return {
    kind: 'too_large',
    message: `regex ${quote(source)} is too large: its program is estimated at ${size} instructions, more than ${REGEX_LIMITS.maxProgram} (counted repetition multiplies the size of what it repeats)`,
  };
}

function entryFor(source: string): Entry {
  const hit = cache.get(source);
  if (hit !== undefined) {
    // the most recent already (the same constraint, call after call): nothing to move
    if (source !== newest) {
      cache.delete(source);
      cache.set(source, hit);
      newest = source;
    }
    return hit;
  }
  const size = estimateProgramSize(source);
  const entry: Entry = size > REGEX_LIMITS.maxProgram ? { size, compiled: { problem: tooLarge(source, size) } } : { size };
  if (cache.size >= REGEX_LIMITS.cacheEntries) {
    const oldest = cache.keys().next();
    if (oldest.done !== true) cache.delete(oldest.value);
  }
  cache.set(source, entry);
  newest = source;
  return entry;
}

function compiled(source: string, entry: Entry): { readonly set: RE2Set } | { readonly problem: RegexProblem } {
  if (entry.compiled === undefined) {
    try {
      // ANCHOR_BOTH: the whole value must match, decided by the engine rather than by wrapping
      // the text in ^(?:…)$, which a pattern like `a)|(b` could break out of.
      const set = new RE2Set(RE2Set.ANCHOR_BOTH, 0, REGEX_LIMITS.dfaBytes);
      set.add(source);
      set.compile();
      entry.compiled = { set };
    } catch (e) {
      entry.compiled = { problem: describeCompileError(source, e) };
    }
  }
  return entry.compiled;
}

/** How many patterns are cached now (for tests of the bound). */
export function regexCacheSize(): number {
  return cache.size;
}

/**
 * Why `source` cannot be a mandate pattern, or undefined when it can: RE2 syntax only (no
 * backreferences, lookaround, atomic groups or possessive quantifiers), and a program of at most
 * `REGEX_LIMITS.maxProgram` instructions, estimated before anything is compiled.
 */
export function regexProblem(source: string): RegexProblem | undefined {
  const c = compiled(source, entryFor(source));
  return 'problem' in c ? c.problem : undefined;
}

/** The estimated program size of a pattern (`estimateProgramSize`, cached). */
export function regexSize(source: string): number {
  return entryFor(source).size;
}

/** The work units one match of a program of `size` instructions on `length` characters costs. */
export function regexCost(size: number, length: number): number {
  return (length + REGEX_LIMITS.compileWeight) * (size + REGEX_LIMITS.stepOverhead);
}

export type RegexMatch = { readonly matched: boolean } | { readonly error: string };

/**
 * Whether the whole of `value` matches `source`, spending from `work`. An error (a pattern that
 * cannot be used, a value that is too long, a spent budget) is not a "no": callers deny on it.
 */
export function matchWhole(source: string, value: string, work: RegexWork): RegexMatch {
  if (value.length > REGEX_LIMITS.maxInput) {
    return { error: `the value is longer than ${REGEX_LIMITS.maxInput} characters, the most a regex constraint reads` };
  }
  const entry = entryFor(source);
  if (entry.size > REGEX_LIMITS.maxProgram) return { error: tooLarge(source, entry.size).message };
  // charged whether or not the program is cached, so a decision never depends on the cache
  if (!work.take(regexCost(entry.size, value.length))) {
    return { error: `the regex work budget of this check (${work.limit} units) is spent: the value was not matched` };
  }
  const c = compiled(source, entry);
  if ('problem' in c) return { error: c.problem.message };
  try {
    return { matched: c.set.match(value).length > 0 };
  } catch (e) {
    return { error: `regex ${quote(source)} failed: ${e instanceof Error ? e.message : 'unknown error'}` };
  }
}
