import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_ARG_LIMITS, canonicalJson, checkJsonBounds, checkJsonTextBounds, findDuplicateKey, sealJson, type JsonValue } from '../src/index.ts';

describe('canonicalJson', () => {
  it('sorts keys and drops whitespace', () => {
    expect(canonicalJson({ b: 1, a: [true, null, 'x'], c: { z: 1, y: 2 } })).toBe('{"a":[true,null,"x"],"b":1,"c":{"y":2,"z":1}}');
  });
  it('refuses values JSON cannot represent instead of dropping them', () => {
    expect(() => canonicalJson({ a: Number.NaN })).toThrow();
    expect(() => canonicalJson({ a: Infinity })).toThrow();
    expect(() => canonicalJson({ a: () => 1 })).toThrow();
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    expect(() => canonicalJson(cyclic)).toThrow();
  });
  it('gives equal output for objects that differ only in key order', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), (obj) => {
        const reversed = Object.fromEntries(Object.entries(obj).reverse());
        expect(canonicalJson(reversed)).toBe(canonicalJson(obj));
        expect(JSON.parse(canonicalJson(obj))).toEqual(JSON.parse(JSON.stringify(obj)));
      }),
    );
  });
});

/** the writer as it was before it skipped the sort for keys already in order: always sorts */
function sortingCanonical(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return '[' + v.map(sortingCanonical).join(',') + ']';
  const o = v as Record<string, unknown>;
  return '{' + Object.keys(o).sort().map((k) => JSON.stringify(k) + ':' + sortingCanonical(o[k])).join(',') + '}';
}

describe('canonicalJson key order', () => {
  it('writes what a writer that always sorts writes, whatever order the keys were built in', () => {
    // keys from a small alphabet (and integer-like ones, which objects list first) collide and interleave often
    const key = fc.oneof(fc.string({ maxLength: 3, unit: fc.constantFrom('a', 'b', 'B', '_', '\u00e9', '\ud83d', '1', '0') }), fc.nat({ max: 20 }).map(String), fc.string({ unit: 'binary' }));
    const value = fc.letrec((tie) => ({
      v: fc.oneof({ depthSize: 'small' }, fc.jsonValue({ maxDepth: 0 }), fc.array(tie('v'), { maxLength: 4 }), fc.array(fc.tuple(key, tie('v')), { maxLength: 8 }).map((kv) => Object.fromEntries(kv))),
    })).v;
    fc.assert(
      fc.property(value, (v) => {
        expect(canonicalJson(v)).toBe(sortingCanonical(v));
      }),
      { numRuns: 2000 },
    );
  });
  it('writes objects built in sorted order and in reverse order alike', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.string(), { maxLength: 12 }), (keys) => {
        const sorted = [...keys].sort();
        const a = Object.fromEntries(sorted.map((k, i) => [k, i]));
        const b = Object.fromEntries([...sorted].reverse().map((k, i) => [k, sorted.length - 1 - i]));
        expect(canonicalJson(a)).toBe(canonicalJson(b));
        expect(canonicalJson(a)).toBe(sortingCanonical(a));
      }),
    );
  });
});

describe('canonicalJson cycles', () => {
  it('finds a cycle however deep it closes, and still writes deep acyclic values', () => {
    const root: Record<string, unknown> = {};
    let cur = root;
    for (let i = 0; i < 200; i++) {
      const next: Record<string, unknown> = {};
      cur['n'] = next;
      cur = next;
    }
    expect(canonicalJson(root)).toBe('{"n":'.repeat(200) + '{}' + '}'.repeat(200));
    cur['back'] = root;
    expect(() => canonicalJson(root)).toThrow(/cyclic/);
    const arr: unknown[] = [];
    arr.push([arr]);
    expect(() => canonicalJson(arr)).toThrow(/cyclic/);
  });
  it('does not mistake a shared (acyclic) value for a cycle', () => {
    const shared = { x: 1 };
    let deep: unknown = { a: shared, b: shared };
    for (let i = 0; i < 100; i++) deep = { d: deep, s: shared };
    expect(() => canonicalJson(deep)).not.toThrow();
  });
});

describe('canonicalJson of values already in canonical order (written by JSON.stringify)', () => {
  // values whose objects are all built in sorted order, with sealed parts sealed in any order
  const key = fc.oneof(fc.string({ maxLength: 3, unit: fc.constantFrom('a', 'b', 'B', '_', '\u00e9', '\ud83d', '1', '0') }), fc.nat({ max: 20 }).map(String));
  const sortedObject = (kv: [string, unknown][]) => Object.fromEntries([...new Map(kv)].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0)));
  const value = fc.letrec((tie) => ({
    v: fc.oneof(
      { depthSize: 'small' },
      fc.jsonValue({ maxDepth: 0 }),
      fc.array(tie('v'), { maxLength: 4 }),
      fc.array(fc.tuple(key, tie('v')), { maxLength: 6 }).map(sortedObject),
      fc.array(fc.tuple(key, tie('v')), { maxLength: 6 }).map((kv) => Object.fromEntries(kv)),
      fc.jsonValue({ maxDepth: 2 }).map((v) => sealJson(v as JsonValue)),
    ),
  })).v;

  it('writes what a writer that always sorts writes, sealed parts in order or not', () => {
    fc.assert(
      fc.property(value, (v) => {
        expect(canonicalJson(v)).toBe(sortingCanonical(v));
        expect(canonicalJson(sealJson(structuredClone(v) as JsonValue))).toBe(sortingCanonical(v));
      }),
      { numRuns: 2000 },
    );
  });
  it('seals a value holding sealed parts with the text a sorting writer writes (their text spliced in)', () => {
    const text = fc.oneof(
      fc.string({ unit: fc.constantFrom('"', '\\', '\u0000', '\u001f', '\u007f', '\u2028', '\ud83d', '\ude00', '\u00e9', 'a', 'Z', ' ', '~', '/'), maxLength: 8 }),
      fc.string({ unit: 'binary', maxLength: 8 }),
    );
    fc.assert(
      fc.property(value, value, text, fc.array(fc.tuple(key, fc.oneof(value, text)), { maxLength: 6 }), (sealedOrNot, other, s, more) => {
        const part = sealedOrNot !== null && typeof sealedOrNot === 'object' && !Object.isFrozen(sealedOrNot) ? sealJson(sealedOrNot as JsonValue) : sealedOrNot;
        const outer = { ...sortedObject(more), '': s, a: part, b: other, c: [] } as Record<string, unknown>;
        const ordered = sortedObject(Object.entries(outer));
        expect(canonicalJson(sealJson(structuredClone(ordered) as JsonValue))).toBe(sortingCanonical(ordered));
        const withParts = sealJson(sortedObject(Object.entries(outer)) as JsonValue);
        expect(canonicalJson(withParts)).toBe(sortingCanonical(ordered));
        expect(canonicalJson(sealJson([part, s, [], other] as JsonValue))).toBe(sortingCanonical([part, s, [], other]));
      }),
      { numRuns: 2000 },
    );
  });
  it('sorts a sealed part built out of order inside a value built in order', () => {
    const inner = sealJson({ z: 1, a: 2 });
    expect(canonicalJson({ a: inner, b: [inner] })).toBe('{"a":{"a":2,"z":1},"b":[{"a":2,"z":1}]}');
    expect(canonicalJson(sealJson({ a: inner }))).toBe('{"a":{"a":2,"z":1}}');
  });
  it('lists integer-like keys as a sort does, not as objects order them', () => {
    expect(canonicalJson({ '10': 1, '9': 2 })).toBe('{"10":1,"9":2}');
    expect(canonicalJson(sealJson({ '10': 1, '9': 2 }))).toBe('{"10":1,"9":2}');
  });
  it('leaves out absent fields and writes -0 as 0, as before', () => {
    expect(canonicalJson({ a: undefined, b: -0 })).toBe('{"b":0}');
    expect(canonicalJson([-0, 1e21, 'x'])).toBe('[0,1e+21,"x"]');
  });
  it('never lets toJSON, prototypes or holes change the text (they are written as data, or refused)', () => {
    expect(canonicalJson(new Date(0))).toBe('{}');
    class Point {
      x = 1;
      toJSON() {
        return 'p';
      }
    }
    expect(canonicalJson({ p: new Point() })).toBe('{"p":{"x":1}}');
    expect(() => canonicalJson({ toJSON: () => 'x' })).toThrow();
    expect(() => canonicalJson([1, undefined])).toThrow();
    expect(() => canonicalJson([1, , 2])).toThrow();
    expect(() => canonicalJson({ a: [Number.NaN] })).toThrow();
    expect(() => canonicalJson({ a: 1n })).toThrow();
  });
});

describe('sealJson', () => {
  it('writes the same canonical text, alone and inside other values, as an unsealed copy', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.jsonValue(), (v, other) => {
        const plain = JSON.parse(JSON.stringify(v)) as JsonValue;
        const sealed = sealJson(JSON.parse(JSON.stringify(v)) as JsonValue);
        expect(canonicalJson(sealed)).toBe(canonicalJson(plain));
        expect(canonicalJson({ a: sealed, b: [sealed, other] })).toBe(canonicalJson({ a: plain, b: [plain, other] }));
      }),
    );
  });
  it('freezes the value all the way down, so its remembered text can never go stale', () => {
    const v = sealJson({ a: { b: [1, { c: 'x' }] } });
    expect(Object.isFrozen(v)).toBe(true);
    expect(Object.isFrozen(v.a)).toBe(true);
    expect(() => {
      ((v.a as { b: unknown[] }).b[1] as { c: string }).c = 'changed';
    }).toThrow(TypeError);
    expect(canonicalJson(v)).toBe('{"a":{"b":[1,{"c":"x"}]}}');
  });
  it('freezes a value holding a sealed one all the way down too, and writes the same text', () => {
    const inner = sealJson({ b: [1, { x: 'y' }] });
    const outer = sealJson({ a: inner, c: { d: [2] } });
    expect(Object.isFrozen(outer.c)).toBe(true);
    expect(Object.isFrozen((outer.c as { d: unknown[] }).d)).toBe(true);
    expect(Object.isFrozen((inner.b as unknown[])[1])).toBe(true);
    expect(canonicalJson(outer)).toBe('{"a":{"b":[1,{"x":"y"}]},"c":{"d":[2]}}');
  });

  it('leaves no trace in keys, JSON, spreads or clones', () => {
    const v = sealJson({ k: 'v', n: [1] });
    expect(Object.keys(v)).toEqual(['k', 'n']);
    expect(JSON.stringify(v)).toBe('{"k":"v","n":[1]}');
    expect({ ...v }).toStrictEqual({ k: 'v', n: [1] });
    expect(structuredClone(v)).toStrictEqual({ k: 'v', n: [1] });
    // a copy is not sealed: changing it changes its text
    const copy: Record<string, JsonValue> = { ...v };
    copy['k'] = 'w';
    expect(canonicalJson(copy)).toBe('{"k":"w","n":[1]}');
  });
  it('refuses what canonicalJson refuses, and seals nothing then', () => {
    const bad = { a: Number.NaN } as unknown as JsonValue;
    expect(() => sealJson(bad)).toThrow();
    expect(Object.isFrozen(bad)).toBe(false);
  });
});

describe('checkJsonBounds', () => {
  it('rejects nesting deeper than the limit, naming the limit', () => {
    let deep: unknown = 'x';
    for (let i = 0; i < 20; i++) deep = { d: deep };
    expect(() => checkJsonBounds(deep, DEFAULT_ARG_LIMITS, 'args')).toThrow(/deeper than 8/);
  });
  it('rejects prototype-pollution keys', () => {
    const evil = JSON.parse('{"__proto__": {"admin": true}}') as unknown;
    expect(() => checkJsonBounds(evil, DEFAULT_ARG_LIMITS, 'args')).toThrow(/forbidden key/);
    expect(() => checkJsonBounds({ constructor: { prototype: 1 } }, DEFAULT_ARG_LIMITS, 'args')).toThrow(/forbidden key/);
  });
  it('rejects oversized strings and lists', () => {
    expect(() => checkJsonBounds({ s: 'x'.repeat(70_000) }, DEFAULT_ARG_LIMITS, 'args')).toThrow(/longer than/);
    expect(() => checkJsonBounds({ l: new Array(300).fill(1) }, DEFAULT_ARG_LIMITS, 'args')).toThrow(/more than 256/);
  });
});

describe('checkJsonTextBounds', () => {
  const limits = { maxDepth: 4, maxEntries: 3, maxNodes: 12 };
  const refused = (text: string): boolean => {
    try {
      checkJsonTextBounds(text, limits, 'body');
      return false;
    } catch {
      return true;
    }
  };

  it('refuses nesting past the limit before parsing, naming the limit', () => {
    expect(() => checkJsonTextBounds('[[[[1]]]]', limits, 'body')).not.toThrow();
    expect(() => checkJsonTextBounds('[[[[[1]]]]]', limits, 'body')).toThrow(/body is nested deeper than 4 levels/);
    expect(() => checkJsonTextBounds('{"a":{"b":{"c":{"d":{}}}}}', limits, 'body')).toThrow(/deeper than 4/);
    // a megabyte of brackets: refused at the fifth, not read to the end
    expect(() => checkJsonTextBounds('['.repeat(1 << 20), limits, 'body')).toThrow(/deeper than 4/);
  });

  it('refuses more entries in one array or object, or more values in all, than the limits', () => {
    expect(() => checkJsonTextBounds('[1,2,3]', limits, 'body')).not.toThrow();
    expect(() => checkJsonTextBounds('[1,2,3,4]', limits, 'body')).toThrow(/an array with more than 3 items/);
    expect(() => checkJsonTextBounds('{"a":1,"b":2,"c":3,"d":4}', limits, 'body')).toThrow(/an object with more than 3 keys/);
    const wide = { maxDepth: 4, maxEntries: 100, maxNodes: 9 };
    expect(() => checkJsonTextBounds('[[1,2],[3,4],5,6]', wide, 'body')).not.toThrow();
    expect(() => checkJsonTextBounds('[[1,2,3],[4,5,6],7,8,9,10]', wide, 'body')).toThrow(/more than 9 values/);
  });

  it('does not count brackets, commas or escaped quotes inside strings', () => {
    expect(() => checkJsonTextBounds(JSON.stringify({ s: '[[[[[[,,,,,,{{{{{{', t: 'a\\"[[[[[[' }), limits, 'body')).not.toThrow();
    expect(() => checkJsonTextBounds('["\\\\",[[[[1]]]]]', limits, 'body')).toThrow(/deeper than 4/);
    expect(() => checkJsonTextBounds('["\\"', limits, 'body')).not.toThrow();
  });

  it('never refuses a value that checkJsonBounds accepts once parsed, however it is spaced', () => {
    const bounds = { ...limits, maxStringLength: 1_000 };
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), fc.constantFrom(undefined, 1, '\t'), (value, space) => {
        const text = JSON.stringify(value, null, space);
        let accepted = true;
        try {
          checkJsonBounds(JSON.parse(text), bounds, 'body');
        } catch {
          accepted = false;
        }
        if (accepted) expect(refused(text)).toBe(false);
        // and depth is judged alike both ways
        const deeper = `[${text}]`;
        let deeperAccepted = true;
        try {
          checkJsonBounds(JSON.parse(deeper), bounds, 'body');
        } catch {
          deeperAccepted = false;
        }
        if (deeperAccepted) expect(refused(deeper)).toBe(false);
      }),
      { numRuns: 2_000 },
    );
  });
});

describe('findDuplicateKey', () => {
  it('finds a key repeated in the same object, after decoding escapes', () => {
    expect(findDuplicateKey('{"a":1,"b":2}')).toBeUndefined();
    expect(findDuplicateKey('{"a":1,"a":2}')).toBe('a');
    expect(findDuplicateKey('{"a":1,"\\u0061":2}')).toBe('a');
    expect(findDuplicateKey('{"x":{"a":1},"y":{"a":2}}')).toBeUndefined();
    expect(findDuplicateKey('[{"a":1},{"a":1}]')).toBeUndefined();
    expect(findDuplicateKey('{"s":"{\\"a\\":1,\\"a\\":2}","t":["a","a"]}')).toBeUndefined();
    expect(findDuplicateKey('{"o":{"k":[1,{"z":0,"z":1}]}}')).toBe('z');
    expect(findDuplicateKey('{"a":[1,2],"b":{"c":"]}"},"a":3}')).toBe('a');
  });
});
