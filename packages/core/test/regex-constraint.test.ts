import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkCall, evaluateConstraint, parseMandate, unknownTool, type JsonObject, type MandateInput } from '../src/index.ts';

// A `regex` constraint is declared by the agent, so it is hostile input: it runs on RE2 (linear
// time), with the pattern's program, the value's length and the work of one check bounded.
// Pinned regression tests: they use only the API the backtracking engine had, and hang or fail
// on it. The engine's own bounds are tested in regex-engine.test.ts.

const N = 65_536;

/** Classic catastrophic-backtracking patterns, each with inputs that make a backtracker explode. */
const REDOS: readonly { pattern: string; inputs: readonly string[] }[] = [
  { pattern: '(a+)+b', inputs: ['a'.repeat(N), 'a'.repeat(N - 1) + '!'] },
  { pattern: '(a|a)*b', inputs: ['a'.repeat(N)] },
  { pattern: '(a|aa)+$', inputs: ['a'.repeat(N - 1) + '!', 'a'.repeat(N)] },
  { pattern: '(a|aa)+', inputs: ['a'.repeat(N - 1) + 'b'] },
  { pattern: '(.*a){20}', inputs: ['a'.repeat(N - 1) + 'b', 'a'.repeat(N)] },
  { pattern: '(.*){1,32}[bc]', inputs: ['a'.repeat(N)] },
  { pattern: '^(\\w+\\s?)*$', inputs: ['word '.repeat(N / 5 - 1) + 'word!', 'a'.repeat(N - 1) + '!'] },
  { pattern: '(x+x+)+y', inputs: ['x'.repeat(N)] },
  { pattern: '([a-zA-Z]+)*', inputs: ['a'.repeat(N - 1) + '0'] },
  { pattern: '(a|b|ab)*c', inputs: ['ab'.repeat(N / 2)] },
  // e-mail style "evil regexes" from the OWASP ReDoS page
  {
    pattern: '^([a-zA-Z0-9])(([\\-.]|[_]+)?([a-zA-Z0-9]+))*(@){1}[a-z0-9]+[.]{1}(([a-z]{2,3})|([a-z]{2,3}[.]{1}[a-z]{2,3}))$',
    inputs: ['a'.repeat(N - 1) + '!', 'a'.repeat(N / 2) + '@' + 'a'.repeat(N / 2 - 1)],
  },
  { pattern: '^[a-zA-Z]+(([\\\'\\,\\.\\-][a-zA-Z ])?[a-zA-Z]*)*$', inputs: ['a'.repeat(N - 1) + '!'] },
  { pattern: '^(([a-z])+.)+[A-Z]([a-z])+$', inputs: ['a'.repeat(N - 1) + '!'] },
  { pattern: '^[\\w.+-]+@([\\w-]+\\.)+[\\w-]{2,}$', inputs: ['a@' + 'a.'.repeat(N / 2 - 2) + '!'] },
];

describe('regex constraints run in linear time', () => {
  it('decides every classic ReDoS pattern against 65,536-character values (no backtracking)', { timeout: 120_000 }, () => {
    for (const { pattern, inputs } of REDOS) {
      for (const value of inputs) {
        expect(value.length).toBeLessThanOrEqual(N);
        const r = evaluateConstraint({ regex: pattern }, value);
        // decided: a yes or a no, never "not evaluated"
        expect(r.undecided, `${pattern}: ${r.why ?? ''}`).toBeUndefined();
      }
    }
    // the ones a whole value can match do match (the engine is not just saying no)
    expect(evaluateConstraint({ regex: '(a|aa)+$' }, 'a'.repeat(N)).ok).toBe(true);
    expect(evaluateConstraint({ regex: '(.*a){20}' }, 'a'.repeat(N)).ok).toBe(true);
    expect(evaluateConstraint({ regex: '^(\\w+\\s?)*$' }, 'word '.repeat(N / 5)).ok).toBe(true);
    expect(evaluateConstraint({ regex: '(a+)+b' }, 'a'.repeat(N - 1) + 'b').ok).toBe(true);
  });

  it('does not read a value longer than the stated bound: the constraint fails, undecided', () => {
    const r = evaluateConstraint({ regex: '.*' }, 'a'.repeat(N + 1));
    expect(r).toMatchObject({ ok: false, undecided: true });
    expect(r.why).toMatch(/longer than 65536 characters/);
    expect(evaluateConstraint({ regex: '.*' }, 'a'.repeat(N)).ok).toBe(true);
  });

});

describe('regex constraints keep full-match, Unicode semantics', () => {
  it('matches the whole value and cannot be unanchored from inside the pattern', () => {
    expect(evaluateConstraint({ regex: 'T-[0-9]+' }, 'T-1042').ok).toBe(true);
    expect(evaluateConstraint({ regex: 'T-[0-9]+' }, 'T-1042 OR 1=1').ok).toBe(false);
    expect(evaluateConstraint({ regex: 'T-[0-9]+' }, 'x T-1042').ok).toBe(false);
    expect(evaluateConstraint({ regex: 'a|ab' }, 'ab').ok).toBe(true);
    expect(evaluateConstraint({ regex: '(?m)^a$' }, 'a\nb').ok).toBe(false);
    // `^(?:a)|(.*)$` would have matched anything: the engine anchors, not the text
    expect(() => parseMandate({ purpose: 'p', environment: 'prod', tools: [{ name: 'x', args: { a: { regex: 'a)|(.*' } } }] })).toThrowError(expect.objectContaining({ code: 'MANDATE_INVALID' }));
  });

  it('reads code points: astral characters, Unicode classes, case folding', () => {
    expect(evaluateConstraint({ regex: '.' }, '😀').ok).toBe(true);
    expect(evaluateConstraint({ regex: '..' }, '😀').ok).toBe(false);
    expect(evaluateConstraint({ regex: '\\pL+' }, 'Ünïcødé').ok).toBe(true);
    expect(evaluateConstraint({ regex: '\\p{Greek}+' }, 'αβγ').ok).toBe(true);
    expect(evaluateConstraint({ regex: '(?i)straße' }, 'STRAßE').ok).toBe(true);
    expect(evaluateConstraint({ regex: '\\x{1F600}' }, '😀').ok).toBe(true);
    expect(evaluateConstraint({ regex: '.' }, '\n').ok).toBe(false);
  });

  it('agrees with a JavaScript RegExp on the syntax both share', () => {
    const atom = fc.constantFrom('a', 'b', 'c', '.', '[ab]', '[^a]', '(?:ab)', '(a|b)', '[a-c]', '(?:a|)');
    const piece = fc.tuple(atom, fc.constantFrom('', '', '*', '+', '?', '{0,2}', '{2}', '{1,3}', '*?')).map(([a, q]) => a + q);
    const pattern = fc.array(fc.array(piece, { minLength: 1, maxLength: 4 }).map((p) => p.join('')), { minLength: 1, maxLength: 3 }).map((alts) => alts.join('|'));
    const value = fc.array(fc.constantFrom('a', 'b', 'c', '😀'), { maxLength: 8 }).map((cs) => cs.join(''));
    fc.assert(
      fc.property(pattern, value, (p, v) => {
        const js = new RegExp(`^(?:${p})$`, 'u').test(v);
        expect(evaluateConstraint({ regex: p }, v).ok, `${p} on ${v}`).toBe(js);
      }),
      { numRuns: 2000, seed: 20261205 },
    );
  });
});

describe('regex constraints refused at mandate declaration', () => {
  const base: MandateInput = { purpose: 'p', environment: 'prod', tools: [{ name: 'x' }] };
  const withRegex = (regex: string): MandateInput => ({ ...base, tools: [{ name: 'x', args: { a: { regex } } }] });

  it.each([
    ['(a)\\1', /backreferences/],
    ['(?P<n>a)(?P=n)', /named backreferences/],
    ['(?<n>a)\\k<n>', /named backreferences/],
    ['(?=a)a', /lookahead/],
    ['(?!a)b', /lookahead/],
    ['(?<=a)b', /lookbehind/],
    ['(?<!a)b', /lookbehind/],
    ['(?>a+)b', /atomic groups/],
    ['a*+b', /possessive/],
    ['\\u00e9', /\\x\{00E9\}/],
  ])('refuses %s (what RE2 cannot do in linear time) with MANDATE_INVALID naming it', (regex, why) => {
    expect(() => parseMandate(withRegex(regex))).toThrowError(
      expect.objectContaining({ code: 'MANDATE_INVALID', message: expect.stringMatching(why), details: expect.objectContaining({ path: 'tools.x.args.a', pattern: regex, problem: 'unsupported' }) }),
    );
    expect(() => parseMandate(withRegex(regex))).toThrowError(JSON.stringify(regex));
  });

  it('refuses a pattern whose program would be too large, before compiling it', () => {
    for (const regex of ['(a{1000}){1000}', '((a{100}){100}){100}', '.{1000}'.repeat(73), '\\pL{1,1000}'.repeat(46), '(?:\\pL{1000}){1}', 'a{2}(?i){999}']) {
      expect(() => parseMandate(withRegex(regex))).toThrowError(expect.objectContaining({ code: 'MANDATE_INVALID', message: expect.stringMatching(/too large/) }));
    }
    expect(() => parseMandate(withRegex('[a-z]{1,400}'))).not.toThrow();
  });

  it('refuses a mandate whose patterns are too large together', () => {
    const big = (i: number): string => `[a-z]{1,450}x${i}`; // about 900 instructions each
    const tools = [0, 1, 2, 3, 4].map((i) => ({ name: `t${i}`, args: { a: { regex: big(i) } } }));
    expect(() => parseMandate({ ...base, tools: tools.slice(0, 4) })).not.toThrow();
    expect(() => parseMandate({ ...base, tools })).toThrowError(expect.objectContaining({ code: 'MANDATE_INVALID', message: expect.stringMatching(/together are too large/) }));
    // the same pattern many times counts once
    expect(() => parseMandate({ ...base, tools: [0, 0, 0, 0, 0, 0].map((i, n) => ({ name: `t${n}`, args: { a: { regex: big(i) } } })) })).not.toThrow();
  });

  it('refuses the same patterns in approval rules', () => {
    expect(() => parseMandate({ ...base, approvals: [{ tool: 'x', when: { 'args.a': { regex: '(a)\\1' } } }] })).toThrowError(
      expect.objectContaining({ code: 'MANDATE_INVALID', details: expect.objectContaining({ path: 'approvals.x.when.args.a' }) }),
    );
  });
});

describe('mandate checks with costly patterns fail closed', () => {
  const facts = (args: JsonObject) => ({ tool: 'x', resource: undefined, args, now: 0, toolInfo: unknownTool('x'), usage: { calls: 0, toolCalls: 0 } });

  it('denies a call whose constraints would spend more than one check may', () => {
    const value = 'a'.repeat(N);
    const args = Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`a${i}`, { regex: `(a+)+|y${i}` }]));
    const m = parseMandate({ purpose: 'p', environment: 'prod', tools: [{ name: 'x', args }] });
    const v = checkCall(m, facts(Object.fromEntries(Object.keys(args).map((k) => [k, value]))));
    expect(v.ok).toBe(false);
    expect(v.reasons).toEqual(['ARG_CONSTRAINT_FAILED']);
    expect(v.details.join(' ')).toMatch(/work budget/);
  });

  it('denies a call when an approval rule cannot be evaluated, rather than skipping the approval', () => {
    const m = parseMandate({ purpose: 'p', environment: 'prod', tools: [{ name: 'x' }], approvals: [{ tool: 'x', when: { 'args.to': { regex: '.*@outside\\.example' } } }] });
    expect(checkCall(m, facts({ to: 'a@outside.example' })).approval).toBeDefined();
    expect(checkCall(m, facts({ to: 'a@inside.example' }))).toMatchObject({ ok: true, approval: undefined });
    const v = checkCall(m, facts({ to: 'x'.repeat(N + 1) + '@outside.example' }));
    expect(v).toMatchObject({ ok: false, reasons: ['ARG_CONSTRAINT_FAILED'], approval: undefined });
    expect(v.details[0]).toMatch(/approval rule for "x", args\.to: the value is longer than/);
  });
});
