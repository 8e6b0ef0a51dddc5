import fc from 'fast-check';
import { RE2Set } from 're2js';
import { describe, expect, it } from 'vitest';
import { constraintImplicationGap } from '../src/mandate/attenuation.ts';
import { evaluateConstraint } from '../src/mandate/constraints.ts';
import { estimateProgramSize, matchWhole, REGEX_LIMITS, regexCacheSize, regexProblem, RegexWork } from '../src/mandate/regex.ts';

const N = 65_536;

/** One value per pattern that a backtracking engine takes forever on. */
const REDOS: readonly [string, string][] = [
  ['(a+)+b', 'a'.repeat(N)],
  ['(a|a)*b', 'a'.repeat(N)],
  ['(a|aa)+$', 'a'.repeat(N - 1) + '!'],
  ['(.*a){20}', 'a'.repeat(N - 1) + 'b'],
  ['^(\\w+\\s?)*$', 'a'.repeat(N - 1) + '!'],
  ['^([a-zA-Z0-9])(([\\-.]|[_]+)?([a-zA-Z0-9]+))*(@){1}[a-z0-9]+[.]{1}(([a-z]{2,3})|([a-z]{2,3}[.]{1}[a-z]{2,3}))$', 'a'.repeat(N - 1) + '!'],
];

describe('the work a check spends on patterns', () => {
  it('charges each match its value length times its program size, so one check is bounded', () => {
    for (const [pattern, value] of REDOS) {
      const work = new RegexWork();
      const r = matchWhole(pattern, value, work);
      expect('matched' in r, pattern).toBe(true);
      // the work is linear in the value by construction, and within one check's budget
      expect(work.spent).toBe((value.length + REGEX_LIMITS.compileWeight) * (estimateProgramSize(pattern) + REGEX_LIMITS.stepOverhead));
      expect(work.spent).toBeLessThanOrEqual(REGEX_LIMITS.workPerCheck);
    }
  });

  it('stops a check that has spent its budget instead of running more patterns', () => {
    const value = 'a'.repeat(N);
    const work = new RegexWork();
    let decided = 0;
    let refused = 0;
    for (let i = 0; i < 100; i += 1) {
      const r = evaluateConstraint({ regex: `(a+)+b|x${i}` }, value, work);
      if (r.undecided) refused += 1;
      else decided += 1;
    }
    expect(decided).toBeGreaterThan(0);
    expect(refused).toBeGreaterThan(0);
    expect(work.spent).toBeLessThanOrEqual(work.limit);
  });

  it('refuses a delegated constraint whose values the parent pattern cannot afford to check', () => {
    const values = Array.from({ length: 256 }, (_, i) => `${'b'.repeat(4000)}${i}`);
    const gap = constraintImplicationGap({ one_of: values }, { regex: '[a-z0-9]{1,10}(?:[a-z0-9]{0,400})[a-z0-9]*' });
    expect(gap).toMatch(/could not be checked .*work budget/);
  });
});

describe('estimateProgramSize', () => {
  it('is never below the program RE2 compiles (the bound that keeps compiles cheap)', () => {
    const tokens = [
      'a', 'b', 'é', '😀', '.', '|', '(', ')', '(?:', '(?i)', '(?s)', '(?i:', '(?P<n>', '(?<m>', '[', ']', '[^a]', '[]a]', '[a-]', '[\\]]', '[:alpha:]', '[:', ':]',
      '^', '$', '-', ',', '\\', '\\d', '\\pL', '\\p{Greek}', '\\x{41}', '\\x41', '\\101', '\\b', '\\z', '\\Q', '\\E', '\\Qab\\E', '\\Q\\E',
      '*', '+', '?', '{', '}', '2', '{2}', '{1,3}', '{0,}', '{2,}', '{0}', '{5}', '{0,4}', '{3,}', '((', '))', '(a|b|)',
    ];
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...tokens), { minLength: 1, maxLength: 16 }), (parts) => {
        const p = parts.join('');
        let actual: number;
        try {
          const set = new RE2Set(RE2Set.ANCHOR_BOTH, 0, 1 << 16);
          set.add(p);
          set.compile();
          actual = set.prog.numInst();
        } catch {
          return; // RE2 refuses it: nothing is compiled
        }
        expect(estimateProgramSize(p), p).toBeGreaterThanOrEqual(actual);
      }),
      { numRuns: 20_000, seed: 20261205 },
    );
  });

  it('counts a repetition after a flags group against the atom before it', () => {
    // RE2 repeats `a{3}` three times here: `(?i)` is no atom
    expect(estimateProgramSize('a{3}(?i){3}')).toBeGreaterThanOrEqual(9);
    expect(estimateProgramSize('a{30}\\Q\\E{30}')).toBeGreaterThanOrEqual(900);
  });
});

describe('the compiled-pattern cache', () => {
  it('holds at most its stated number of patterns', () => {
    for (let i = 0; i < REGEX_LIMITS.cacheEntries * 2; i += 1) {
      expect(regexProblem(`cache-[0-9]+-${i}`)).toBeUndefined();
      expect(regexCacheSize()).toBeLessThanOrEqual(REGEX_LIMITS.cacheEntries);
    }
    // and a pattern dropped from it still evaluates the same
    expect(evaluateConstraint({ regex: 'cache-[0-9]+-0' }, 'cache-12-0').ok).toBe(true);
  });
});

