import { describe, expect, it } from 'vitest';
import { randomBase64url, randomIds } from '../src/node-ports.ts';

describe('pooled random ids', () => {
  it('hands out distinct ids of the documented shape across several pool refills', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const id = randomIds.next('call');
      expect(id).toMatch(/^call_[A-Za-z0-9_-]{22}$/);
      seen.add(id);
    }
    expect(seen.size).toBe(2000);
  });

  it('gives the asked number of bytes, even when the pool has fewer left', () => {
    for (let i = 0; i < 300; i++) expect(Buffer.from(randomBase64url(9 + (i % 7)), 'base64url').length).toBe(9 + (i % 7));
    expect(() => randomBase64url(0)).toThrow(TypeError);
    expect(() => randomBase64url(257)).toThrow(TypeError);
  });
});
