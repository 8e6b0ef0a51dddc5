import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { commonPathPrefix, domainsOf, evaluateConstraint, generaliseArg, parseMandate, shapeRegex, type JsonValue } from '@mandate/core';

/** every value the generaliser saw satisfies the constraint it made, and the mandate parser accepts it */
function holdsForAll(values: JsonValue[]) {
  const g = generaliseArg(values);
  if (g.constraint !== undefined) {
    for (const v of values) expect(evaluateConstraint(g.constraint, v).ok, `${JSON.stringify(v)} under ${JSON.stringify(g.constraint)}`).toBe(true);
    parseMandate({ purpose: 'p', environment: 'prod', tools: [{ name: 't', args: { a: g.constraint } }] });
  }
  return g;
}

describe('argument generalisers', () => {
  it('absent: an argument left out of one call is left open', () => {
    const g = generaliseArg(['x', undefined, 'x']);
    expect(g.rule).toBe('absent');
    expect(g.constraint).toBeUndefined();
  });

  it('redacted: a value the audit redacted or may have cut is left open', () => {
    expect(generaliseArg(['Bearer [REDACTED]', 'a']).rule).toBe('redacted');
    expect(generaliseArg(['x'.repeat(1024)]).rule).toBe('redacted');
  });

  it('list: lists and objects are left open', () => {
    expect(generaliseArg([['a@x.example'], ['b@x.example']]).rule).toBe('list');
  });

  it('boolean: one_of the booleans seen, never both when one was seen', () => {
    const g = holdsForAll([true, true]);
    expect(g).toMatchObject({ rule: 'boolean', constraint: { one_of: [true] } });
    expect(evaluateConstraint(g.constraint!, false).ok).toBe(false);
  });

  it('range: from the least to the greatest number seen, nothing beyond', () => {
    const g = holdsForAll([5, 12.5, 7]);
    expect(g).toMatchObject({ rule: 'range', constraint: { range: { min: 5, max: 12.5 } } });
    expect(evaluateConstraint(g.constraint!, 12.6).ok).toBe(false);
    expect(evaluateConstraint(g.constraint!, 4.9).ok).toBe(false);
    expect(evaluateConstraint(g.constraint!, '7').ok).toBe(false);
  });

  it('enum: repeated values become one_of exactly those', () => {
    const g = holdsForAll(['asc', 'desc', 'asc', 'asc', 'desc']);
    expect(g).toMatchObject({ rule: 'enum', constraint: { one_of: ['asc', 'desc'] } });
    expect(evaluateConstraint(g.constraint!, 'random').ok).toBe(false);
  });

  it('domains: e-mail addresses and URLs become their exact hosts', () => {
    const g = holdsForAll(['ann@acme.example', 'https://docs.acme.example/a', 'bob@partner.example']);
    expect(g).toMatchObject({ rule: 'domains', constraint: { domains: ['acme.example', 'docs.acme.example', 'partner.example'] } });
    expect(evaluateConstraint(g.constraint!, 'eve@evil.example').ok).toBe(false);
    expect(evaluateConstraint(g.constraint!, 'https://other.acme.example/').ok).toBe(false);
  });

  it('domains: three hosts under one parent of two labels become *.<parent>, two do not', () => {
    expect(domainsOf(['a@x.acme.example', 'b@y.acme.example', 'c@z.acme.example'], 3)).toEqual(['*.acme.example']);
    expect(domainsOf(['a@x.acme.example', 'b@y.acme.example'], 3)).toEqual(['x.acme.example', 'y.acme.example']);
    // a parent of one label (a public suffix such as `com`) is never widened to
    expect(domainsOf(['a@x.com', 'b@y.com', 'c@z.com'], 3)).toEqual(['x.com', 'y.com', 'z.com']);
    expect(domainsOf(['a@x.com', 'b@y.com', 'c@z.com'], 0)).toEqual(['x.com', 'y.com', 'z.com']);
  });

  it('domains: a bare word or a file name is not read as a host', () => {
    expect(domainsOf(['report.pdf', 'notes.txt'], 3)).toBeUndefined();
  });

  it('prefix: absolute paths become the deepest directory holding them all', () => {
    const g = holdsForAll(['/srv/kb/a/one.md', '/srv/kb/b/two.md', '/srv/kb/a/../c.md']);
    expect(g).toMatchObject({ rule: 'prefix', constraint: { prefix: '/srv/kb' } });
    expect(evaluateConstraint(g.constraint!, '/srv/kbx/secret').ok).toBe(false);
    expect(evaluateConstraint(g.constraint!, '/srv/kb/../etc/passwd').ok).toBe(false);
    expect(commonPathPrefix(['/etc/a', '/srv/b'])).toBeUndefined();
    expect(commonPathPrefix(['relative/a'])).toBeUndefined();
  });

  it('shape: identifiers of one skeleton become a bounded pattern', () => {
    const g = holdsForAll(['T-1042', 'T-77', 'T-3']);
    expect(g).toMatchObject({ rule: 'shape', constraint: { regex: 'T\\-[0-9]{1,4}' } });
    expect(evaluateConstraint(g.constraint!, 'T-10420').ok).toBe(false);
    expect(evaluateConstraint(g.constraint!, 'T-1 OR 1=1').ok).toBe(false);
    expect(shapeRegex(['2024-05-19', '2023-11-02'])).toBe('[0-9]{4}\\-[0-9]{2}\\-[0-9]{2}');
    expect(shapeRegex(['GB29NWBK6016', 'DE89CONT3704'])).toBe('[A-Za-z]{2}[0-9]{2}[A-Za-z]{4}[0-9]{4}');
    // no digits: not an identifier
    expect(shapeRegex(['alpha', 'gamma'])).toBeUndefined();
    // different skeletons
    expect(shapeRegex(['T-1', 'T_1'])).toBeUndefined();
  });

  it('exact: a few distinct values of no shape become one_of them', () => {
    const g = holdsForAll(['bill-december-2023.txt', 'landlord notices']);
    expect(g).toMatchObject({ rule: 'exact', constraint: { one_of: ['bill-december-2023.txt', 'landlord notices'] } });
  });

  it('text: many distinct free-text values are left open', () => {
    const g = generaliseArg(Array.from({ length: 20 }, (_, i) => `a message number ${i} for you`));
    expect(g).toMatchObject({ rule: 'text', constraint: undefined, distinct: 20 });
  });

  it('takes the range of 300,000 values (no spread of the values on the stack)', () => {
    const values = Array.from({ length: 300_000 }, (_, i) => (i * 7919) % 1000);
    expect(generaliseArg(values).constraint).toEqual({ range: { min: 0, max: 999 } });
  });

  it('never makes a constraint that refuses a value it saw (property)', () => {
    const scalar = fc.oneof(fc.boolean(), fc.integer({ min: -1e6, max: 1e6 }), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constantFrom('ann@acme.example', 'https://acme.example/x', '/srv/a/b', '/srv/a/c', 'T-1', 'T-22', 'x'), fc.string({ maxLength: 30 }));
    fc.assert(
      fc.property(fc.array(scalar, { minLength: 1, maxLength: 30 }), (values) => {
        holdsForAll(values);
      }),
      { numRuns: 400 },
    );
  });
});
