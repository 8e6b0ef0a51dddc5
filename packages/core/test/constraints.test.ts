import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { evaluateConstraint, extractHost, globCovers, globMatch, normalisePath } from '../src/index.ts';

describe('argument constraints', () => {
  it('equals and one_of compare exactly, without type coercion', () => {
    expect(evaluateConstraint({ equals: 5 }, 5).ok).toBe(true);
    expect(evaluateConstraint({ equals: 5 }, '5').ok).toBe(false);
    expect(evaluateConstraint({ one_of: ['a', 'b'] }, 'b').ok).toBe(true);
    expect(evaluateConstraint({ one_of: ['a', 'b'] }, 'c').ok).toBe(false);
  });
  it('a missing argument never satisfies a constraint', () => {
    expect(evaluateConstraint({ regex: '.*' }, undefined)).toEqual({ ok: false, why: 'argument missing' });
  });
  it('regex matches the whole value, not a substring (no "1042 OR 1=1")', () => {
    expect(evaluateConstraint({ regex: 'T-[0-9]+' }, 'T-1042').ok).toBe(true);
    expect(evaluateConstraint({ regex: 'T-[0-9]+' }, 'T-1042 OR 1=1').ok).toBe(false);
    expect(evaluateConstraint({ regex: '^T-[0-9]+$' }, 'x T-1').ok).toBe(false);
    expect(evaluateConstraint({ regex: 'T-[0-9]+' }, 42).ok).toBe(false);
  });
  it('range accepts numbers inside the bounds only', () => {
    expect(evaluateConstraint({ range: { min: 0, max: 100 } }, 100).ok).toBe(true);
    expect(evaluateConstraint({ range: { min: 0, max: 100 } }, 100.01).ok).toBe(false);
    expect(evaluateConstraint({ range: { min: 0 } }, -1).ok).toBe(false);
    expect(evaluateConstraint({ range: { max: 10 } }, '5').ok).toBe(false);
  });
  it('path prefix resolves dot segments before comparing', () => {
    const c = { prefix: '/srv/kb/' };
    expect(evaluateConstraint(c, '/srv/kb/faq.md').ok).toBe(true);
    expect(evaluateConstraint(c, '/srv/kb/../../etc/passwd').ok).toBe(false);
    expect(evaluateConstraint(c, '/srv/kb-private/x').ok).toBe(false);
    expect(evaluateConstraint(c, '/srv//kb/./a').ok).toBe(true);
    expect(evaluateConstraint(c, 'srv/kb/a').ok).toBe(false);
    expect(evaluateConstraint(c, '/srv/kb/a\0.txt').ok).toBe(false);
    expect(evaluateConstraint(c, '/srv/kb\\..\\x').ok).toBe(false);
  });
  it('domain allow-list reads hosts from URLs, e-mail addresses and bare names', () => {
    const c = { domains: ['acme.com', '*.acme.io'] };
    expect(evaluateConstraint(c, 'https://acme.com/x').ok).toBe(true);
    expect(evaluateConstraint(c, 'bob@acme.com').ok).toBe(true);
    expect(evaluateConstraint(c, 'api.acme.io').ok).toBe(true);
    expect(evaluateConstraint(c, 'acme.io').ok).toBe(false);
    expect(evaluateConstraint(c, 'https://acme.com@evil.com/').ok).toBe(false);
    expect(evaluateConstraint(c, 'https://evil.com/?acme.com').ok).toBe(false);
    expect(evaluateConstraint(c, 'https://acme.com.evil.com').ok).toBe(false);
    expect(evaluateConstraint(c, 'x@evil.com').ok).toBe(false);
    expect(evaluateConstraint(c, 'HTTPS://ACME.COM.').ok).toBe(true);
  });
  it('extractHost refuses URLs with userinfo', () => {
    expect(extractHost('https://user:pw@acme.com')).toBeUndefined();
  });
});

describe('normalisePath', () => {
  it('never yields a path with dot segments or climbing above the root', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom('a', 'b', '.', '..', '', 'kb'), { maxLength: 12 }), (segs) => {
        const p = normalisePath('/' + segs.join('/'));
        if (p !== undefined) {
          expect(p.startsWith('/')).toBe(true);
          expect(p.split('/').some((s) => s === '.' || s === '..')).toBe(false);
        }
      }),
    );
  });
  it('a value accepted under a prefix normalises to a path inside it', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom('srv', 'kb', '..', '.', 'x', ''), { maxLength: 10 }), (segs) => {
        const v = '/' + segs.join('/');
        if (evaluateConstraint({ prefix: '/srv/kb' }, v).ok) {
          const n = normalisePath(v) as string;
          expect(n === '/srv/kb' || n.startsWith('/srv/kb/')).toBe(true);
        }
      }),
    );
  });
});

describe('globs', () => {
  it('matches with * as any run of characters', () => {
    expect(globMatch('helpdesk.*', 'helpdesk.search')).toBe(true);
    expect(globMatch('helpdesk.*', 'helpdesk')).toBe(false);
    expect(globMatch('*', '')).toBe(true);
    expect(globMatch('a*b*c', 'aXbYc')).toBe(true);
    expect(globMatch('a*b*c', 'aXbY')).toBe(false);
  });
  it('containment is sound: whatever the inner pattern matches, the outer matches too', () => {
    const alphabet = fc.constantFrom('a', 'b', '.', '*');
    fc.assert(
      fc.property(fc.array(alphabet, { maxLength: 6 }), fc.array(alphabet, { maxLength: 6 }), fc.array(fc.constantFrom('a', 'b', '.', 'c'), { maxLength: 4 }), (o, i, fill) => {
        const outer = o.join('');
        const inner = i.join('');
        if (!globCovers(outer, inner)) return;
        const concrete = inner.replaceAll('*', fill.join(''));
        expect(globMatch(outer, concrete)).toBe(true);
      }),
    );
  });
});
