import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testHasher } from '../../store-testkit/src/index.ts';
import { openSqliteStore } from '../src/index.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mandate-sqlite-cache-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('a connection with a bounded read cache (cacheKiB)', () => {
  it('sets its page cache to that many KiB and maps none of the file', async () => {
    const store = openSqliteStore({ path: join(dir, 'bounded.db'), hasher: testHasher, cacheKiB: 512 });
    try {
      const db = store.unsafeDatabase();
      expect(db.prepare('PRAGMA cache_size').get()).toEqual({ cache_size: -512 });
      expect(db.prepare('PRAGMA mmap_size').get()).toEqual({ mmap_size: 0 });
    } finally {
      await store.close();
    }
  });

  it.each([0, -1, 1.5, Number.NaN])('refuses a cacheKiB of %s, naming the value', (cacheKiB) => {
    expect(() => openSqliteStore({ path: join(dir, 'refused.db'), hasher: testHasher, cacheKiB })).toThrow(/cacheKiB must be a positive integer/);
  });
});
