import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { verifyAuditLog } from '@mandate/core';
import { draft, testHasher } from '../../store-testkit/src/index.ts';
import { openSqliteStore, type SqliteStore } from '../src/index.ts';

/** Lazy commit entries (outcome records) through the SQL audit front, on a real SQLite file. */
let dir: string;
let store: SqliteStore | undefined;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mandate-sqlite-lazy-'));
  store = openSqliteStore({ path: join(dir, 'mandate.db'), hasher: testHasher });
});

afterEach(async () => {
  await store?.close();
  store = undefined;
  await rm(dir, { recursive: true, force: true });
});

describe('sqlite store: lazy audit entries', () => {
  it('commits a lone lazy entry within a few milliseconds, with its sequence number', async () => {
    const s = store as SqliteStore;
    const start = performance.now();
    const r = await s.audit.commitDecision({ drafts: [draft(1)], lazy: true });
    expect(performance.now() - start).toBeLessThan(1000);
    expect(r.records.map((x) => x.seq)).toEqual([1]);
    expect((await s.audit.head())?.seq).toBe(1);
  });

  it('links a lazy entry and the next urgent one in submission order, in one valid chain', async () => {
    const s = store as SqliteStore;
    const lazy = s.audit.commitDecision({ drafts: [draft(1)], lazy: true });
    await new Promise<void>((resolve) => setImmediate(resolve));
    const urgent = s.audit.commitDecision({ drafts: [draft(2), draft(3)] });
    const [a, b] = await Promise.all([lazy, urgent]);
    expect(a.records.map((x) => x.seq)).toEqual([1]);
    expect(b.records.map((x) => x.seq)).toEqual([2, 3]);
    expect(b.records[0]?.prevHash).toBe(a.records[0]?.hash);
    const v = await verifyAuditLog(s.audit, [], new Map(), testHasher);
    expect(v).toMatchObject({ ok: true, records: 3 });
  });

  it('commits pending lazy entries at close instead of losing them', async () => {
    const s = store as SqliteStore;
    const lazy = s.audit.commitDecision({ drafts: [draft(1)], lazy: true });
    await s.close();
    store = undefined;
    expect((await lazy).records.map((x) => x.seq)).toEqual([1]);
    const again = openSqliteStore({ path: join(dir, 'mandate.db'), hasher: testHasher });
    try {
      expect((await again.audit.head())?.seq).toBe(1);
    } finally {
      await again.close();
    }
  });
});
