import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WalSync } from '../src/wal-sync.ts';

let dir: string;
let db: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'mandate-walsync-'));
  db = join(dir, 'm.db');
  writeFileSync(`${db}-wal`, '');
});

afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** an fdatasync whose completions the test releases one by one */
function manualSync() {
  const pending: ((err: Error | null) => void)[] = [];
  return {
    calls: () => pending.length,
    sync: (_fd: number, done: (err: Error | null) => void) => void pending.push(done),
    finish: (err: Error | null = null) => (pending.shift() as (err: Error | null) => void)(err),
  };
}

const settled = () => new Promise((r) => setImmediate(r));

describe('WalSync: commits answered only once a sync started after them has finished', () => {
  it('makes a commit written while a sync runs wait for the next sync, which covers every such commit', async () => {
    const m = manualSync();
    const w = new WalSync(db, m.sync);
    const seen: string[] = [];
    w.wrote();
    const first = w.durable().then(() => seen.push('first'));
    expect(m.calls()).toBe(1);
    // two commits land while that sync runs: neither may ride on it
    w.wrote();
    const second = w.durable().then(() => seen.push('second'));
    w.wrote();
    const third = w.durable().then(() => seen.push('third'));
    expect(m.calls()).toBe(1);
    m.finish();
    await first;
    await settled();
    expect(seen).toEqual(['first']);
    // one more sync, shared by both
    expect(m.calls()).toBe(1);
    m.finish();
    await Promise.all([second, third]);
    expect(seen).toEqual(['first', 'second', 'third']);
    // nothing new written: answered at once, no sync
    await w.durable();
    expect(m.calls()).toBe(0);
  });

  it('lets a caller join a running sync that started after its commit', async () => {
    const m = manualSync();
    const w = new WalSync(db, m.sync);
    const n = w.wrote();
    const a = w.durable();
    const b = w.durable(n);
    expect(m.calls()).toBe(1);
    m.finish();
    await Promise.all([a, b]);
  });

  it('fails every waiter of a failed sync, and every later one, with AUDIT_UNAVAILABLE', async () => {
    const m = manualSync();
    const w = new WalSync(db, m.sync);
    w.wrote();
    const a = w.durable();
    w.wrote();
    const b = w.durable();
    m.finish(new Error('EIO'));
    await expect(a).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE' });
    await expect(b).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE' });
    w.wrote();
    await expect(w.durable()).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE' });
    expect(m.calls()).toBe(0);
  });
});

describe('WalSync: a commit synced inline', () => {
  it('counts every commit written so far as on the disk, and is refused while a sync is under way', async () => {
    const m = manualSync();
    const w = new WalSync(db, m.sync);
    expect(w.idle()).toBe(true);
    w.wrote();
    const pending = w.durable();
    expect(w.idle()).toBe(false);
    m.finish();
    await pending;
    expect(w.idle()).toBe(true);
    w.wrote();
    w.wrote();
    w.syncedInline();
    await w.durable();
    expect(m.calls()).toBe(0);
  });
});
