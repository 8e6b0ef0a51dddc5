import { describe, expect, it } from 'vitest';
import { SecretScrubber } from '../src/secrets.ts';

const SECRET = 'sk-live-0123456789abcdef';
const WITHHELD = '[secret withheld by mandate]';

describe('secret scrubber', () => {
  it('scrubs a secret from every string and key, however deep, and in its JSON-escaped form', () => {
    const quoted = 'ab"cd\\ef-0123456789';
    const s = new SecretScrubber([SECRET, quoted]);
    const value = {
      content: [{ type: 'text', text: `token=${SECRET}` }, { type: 'text', text: 'clean' }],
      nested: { deep: [[{ v: SECRET }]], [`key-${SECRET}`]: 1, n: 3, b: true, z: null },
      printed: JSON.stringify({ quoted }),
    };
    const out = s.scrub(value);
    expect(JSON.stringify(out)).not.toContain(SECRET);
    expect(JSON.stringify(out)).not.toContain(JSON.stringify(quoted).slice(1, -1));
    expect(out.content[0]?.text).toBe(`token=${WITHHELD}`);
    expect(out.content[1]).toEqual({ type: 'text', text: 'clean' });
    expect(out.nested).toEqual({ deep: [[{ v: WITHHELD }]], [`key-${WITHHELD}`]: 1, n: 3, b: true, z: null });
    expect(out.printed).toBe(`{"quoted":"${WITHHELD}"}`);
  });

  it('leaves the original value untouched when it copies', () => {
    const s = new SecretScrubber([SECRET]);
    const value = { a: { b: [SECRET, 'x'] }, c: 'keep' };
    const before = structuredClone(value);
    const out = s.scrub(value);
    expect(value).toEqual(before);
    expect(out).toEqual({ a: { b: [WITHHELD, 'x'] }, c: 'keep' });
    expect(out).not.toBe(value);
    // the untouched branch may be shared, the changed path is new
    expect(out.a).not.toBe(value.a);
  });

  it('returns a clean value itself, without copying it', () => {
    const s = new SecretScrubber([SECRET]);
    const value = { content: [{ type: 'text', text: 'Echo: hello gateway' }], structured: { list: [1, 2, { k: 'v' }] } };
    expect(s.scrub(value)).toBe(value);
  });

  it('scrubs nothing and copies nothing without secrets', () => {
    const value = { text: SECRET };
    expect(new SecretScrubber([]).scrub(value)).toBe(value);
  });
});
