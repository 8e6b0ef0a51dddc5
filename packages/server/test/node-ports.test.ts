import { describe, expect, it } from 'vitest';
import { randomBase64url, randomIds, timePrefix } from '../src/node-ports.ts';

describe('pooled random ids', () => {
  it('hands out distinct ids of the documented shape across several pool refills', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const id = randomIds.next('call');
      expect(id).toMatch(/^call_[0-9A-HJKMNP-TV-Z]{10}[A-Za-z0-9_-]{22}$/);
      seen.add(id);
    }
    expect(seen.size).toBe(2000);
  });

  it('gives the asked number of bytes, even when the pool has fewer left', () => {
    for (let i = 0; i < 300; i++) expect(Buffer.from(randomBase64url(9 + (i % 7)), 'base64url').length).toBe(9 + (i % 7));
    expect(() => randomBase64url(0)).toThrow(TypeError);
    expect(() => randomBase64url(257)).toThrow(TypeError);
  });

  it('sorts ids in creation order: the time prefix is fixed-width and ASCII-ordered', () => {
    const times = [0, 1, 31, 32, 1_000, 1_700_000_000_000, 1_800_000_000_123, 2 ** 50 - 1];
    const prefixes = times.map(timePrefix);
    for (const p of prefixes) expect(p).toHaveLength(10);
    expect([...prefixes].sort()).toEqual(prefixes);
    const a = randomIds.next('call');
    const later = `call_${timePrefix(Date.now() + 1)}`;
    expect(a < later).toBe(true);
  });
});
