import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { durableWrites, WalSync } from '../src/wal-sync.ts';

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

describe('durableWrites: a store capability whose writes are answered once synced', () => {
  /** a capability over a counter of commits, as the SQLite capabilities count theirs (Sql.onCommit) */
  function capability(w: WalSync) {
    return {
      rows: [] as string[],
      async write(row: string): Promise<number> {
        this.rows.push(row);
        w.wrote();
        return this.rows.length;
      },
      async writeThenFail(row: string): Promise<void> {
        this.rows.push(row);
        w.wrote();
        throw new Error('refused after its commit');
      },
      async read(): Promise<number> {
        return this.rows.length;
      },
    };
  }

  it('answers a write only after a sync that started after its commit, shares one sync between writes made meanwhile, and adds nothing to a read', async () => {
    const m = manualSync();
    const w = new WalSync(db, m.sync);
    const cap = durableWrites(capability(w), w);
    const answered: string[] = [];
    const a = cap.write('a').then(() => answered.push('a'));
    // the sync starts with the write, and the write is not answered before it finishes
    expect(m.calls()).toBe(1);
    await settled();
    expect(answered).toEqual([]);
    // two writes while it runs: neither may ride on it; the next sync covers both
    const b = cap.write('b').then(() => answered.push('b'));
    const c = cap.write('c').then(() => answered.push('c'));
    // a read meanwhile: answered at once, with no sync of its own
    expect(await cap.read()).toBe(3);
    m.finish();
    await a;
    await settled();
    expect(answered).toEqual(['a']);
    expect(m.calls()).toBe(1);
    m.finish();
    await Promise.all([b, c]);
    expect(answered).toEqual(['a', 'b', 'c']);
    expect(m.calls()).toBe(0);
  });

  it('waits for the sync before passing on the error of a call that committed, then throws it', async () => {
    const m = manualSync();
    const w = new WalSync(db, m.sync);
    const cap = durableWrites(capability(w), w);
    let settledYet = false;
    const p = cap.writeThenFail('x').finally(() => (settledYet = true));
    p.catch(() => undefined);
    await settled();
    expect(settledYet).toBe(false);
    m.finish();
    await expect(p).rejects.toThrow('refused after its commit');
  });

  it('refuses a write whose sync failed with STORE_UNAVAILABLE, and every later write, while reads go on', async () => {
    const m = manualSync();
    const w = new WalSync(db, m.sync);
    const cap = durableWrites(capability(w), w);
    const p = cap.write('a');
    m.finish(new Error('EIO'));
    await expect(p).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE', message: expect.stringContaining('EIO') as unknown });
    await expect(cap.write('b')).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    expect(m.calls()).toBe(0);
    expect(await cap.read()).toBe(2);
  });
});
