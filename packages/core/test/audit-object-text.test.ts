import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../src/index.ts';
import { isJsonObjectText } from '../src/audit/object-text.ts';

/** the definition it must agree with: JSON.parse reads a non-array object, and nothing surrounds its braces */
function oracle(t: string): boolean {
  let v: unknown;
  try {
    v = JSON.parse(t);
  } catch {
    return false;
  }
  return v !== null && typeof v === 'object' && !Array.isArray(v) && t.startsWith('{') && t.endsWith('}');
}

/** JSON texts with whitespace between their tokens, and texts one edit away from them */
const jsonish = fc.oneof(
  fc.jsonValue().map((v) => JSON.stringify(v)),
  fc.jsonValue().map((v) => JSON.stringify(v, null, 1)),
  fc.dictionary(fc.string(), fc.jsonValue()).map((v) => canonicalJson(v)),
  fc.dictionary(fc.string({ unit: 'binary' }), fc.jsonValue()).map((v) => JSON.stringify(v, null, '\t')),
);
const alphabet = fc.constantFrom(...'{}[]",:\\ \t\n\r0123456789-+.eEtrufalsn/bu'.split(''), '\u0000', '\u001f', '\ud800', 'é');
const mutated = fc.tuple(jsonish, fc.nat(), fc.nat({ max: 3 }), fc.string({ unit: alphabet, maxLength: 3 })).map(([t, at, cut, insert]) => {
  const i = t.length === 0 ? 0 : at % t.length;
  return t.slice(0, i) + insert + t.slice(i + cut);
});

describe('isJsonObjectText', () => {
  it('agrees with JSON.parse on JSON texts and on texts one edit away from them', () => {
    fc.assert(
      fc.property(fc.oneof(jsonish, mutated, fc.string({ unit: alphabet, maxLength: 40 })), (t) => {
        expect(isJsonObjectText(t)).toBe(oracle(t));
      }),
      { numRuns: 20_000 },
    );
  });

  it('rejects what JSON.parse rejects or reads as another value', () => {
    for (const t of ['', '{', '}', '{}}', '{} ', ' {}', '[]', '"{}"', '{"a"}', '{"a":}', '{"a":1,}', '{,}', '{"a":01}', '{"a":1.}', '{"a":.5}', '{"a":1e}', '{"a":+1}', '{"a":tru}', '{"a":"\\x"}', '{"a":"\\u12g4"}', '{"a":"\u0001"}', "{'a':1}", '{"a":[1,]}', '{"a":[1}', '{"a":{"b":1]}', '{"a":1}{"b":2}', '{"a":NaN}']) {
      expect([t, isJsonObjectText(t)]).toEqual([t, false]);
      expect(oracle(t)).toBe(false);
    }
  });

  it('accepts what JSON.parse reads as an object, at any depth', () => {
    for (const t of ['{}', '{ }', '{"a":1}', '{ "a" : [ 1 , -0.5e+3 , true , false , null , "\\u00e9\\n\\"" ] }', '{"a":{"b":{}},"a":[]}', '{"\ud800":"lone surrogate"}']) expect([t, isJsonObjectText(t)]).toEqual([t, true]);
    const deep = '{"a":' + '['.repeat(100_000) + ']'.repeat(100_000) + '}';
    expect(isJsonObjectText(deep)).toBe(oracle(deep));
  });
});
