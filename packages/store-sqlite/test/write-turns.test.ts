import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { Worker } from 'node:worker_threads';
import { sha256Hasher } from '@mandate/server';
import type { AuditDraft } from '@mandate/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openSqliteStore, type SqliteStore } from '../src/index.ts';
import { Sql, isBusy } from '../src/sql.ts';
import { WriteTurns, writeTurnsMemory } from '../src/write-turns.ts';

const HOLDER = new URL('./fixtures/lock-holder.ts', import.meta.url);
/**
 * a poll interval no wait should reach: a wait the holder's word did not end runs it out, and the
 * test then fails on `polled` (the thread is blocked meanwhile: no test timeout can interrupt it)
 */
const LONG_POLL_MS = 20_000;
/** for a lock held until the test lets it go */
const NEVER_MS = 600_000;
/** the tests that may run a long poll out before they fail */
const SLOW = { timeout: 120_000 };

let dir: string;
let path: string;
const open: (Sql | DatabaseSync | SqliteStore)[] = [];
const holders: Worker[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'mandate-write-turns-'));
  path = join(dir, 'turns.db');
  const db = new DatabaseSync(path);
  db.exec('PRAGMA journal_mode = WAL');
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, who TEXT NOT NULL)');
  db.close();
});

afterEach(async () => {
  for (const w of holders.splice(0)) await w.terminate();
  for (const c of open.splice(0)) {
    if (c instanceof Sql) c.close();
    else if (c instanceof DatabaseSync) {
      if (c.isOpen) c.close();
    } else await c.close();
  }
  rmSync(dir, { recursive: true, force: true });
});

/** the event loop's side: its own busy handler off, retrying through `turns` */
function loopSql(turns: WriteTurns): Sql {
  const sql = new Sql(new DatabaseSync(path));
  sql.db.exec('PRAGMA busy_timeout = 0');
  sql.turns = turns;
  open.push(sql);
  return sql;
}

/** a writer on another thread holding the write lock; resolves once it holds it */
async function holdLock(holdMs: number, memory?: SharedArrayBuffer): Promise<Worker> {
  const w = new Worker(HOLDER, { workerData: { path, holdMs, memory } });
  holders.push(w);
  const [m] = (await once(w, 'message')) as [string];
  expect(m).toBe('held');
  return w;
}

function rows(): string[] {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return (db.prepare('SELECT who FROM t ORDER BY id').all() as { who: string }[]).map((r) => r.who);
  } finally {
    db.close();
  }
}

describe('write turns: a write that meets the other connection’s lock', () => {
  it('is tried again when the other connection says it let the lock go, not after a poll, and is written once', SLOW, async () => {
    const memory = writeTurnsMemory();
    const turns = new WriteTurns(memory, 'loop', { timeoutMs: 60_000, pollMs: LONG_POLL_MS });
    const sql = loopSql(turns);
    await holdLock(200, memory);
    // blocks until the holder commits: only its word can end the wait before the test times out
    expect(sql.run('INSERT INTO t (who) VALUES (?)', 'loop')).toBe(1);
    expect(turns.stats()).toMatchObject({ woken: expect.any(Number) as unknown, polled: 0 });
    expect(turns.stats().woken).toBeGreaterThanOrEqual(1);
    expect(rows()).toEqual(['holder', 'loop']);
  });

  it('takes a transaction’s lock (BEGIN IMMEDIATE) the same way', SLOW, async () => {
    const memory = writeTurnsMemory();
    const turns = new WriteTurns(memory, 'loop', { timeoutMs: 60_000, pollMs: LONG_POLL_MS });
    const sql = loopSql(turns);
    await holdLock(200, memory);
    sql.tx(() => {
      sql.run('INSERT INTO t (who) VALUES (?)', 'loop-1');
      sql.run('INSERT INTO t (who) VALUES (?)', 'loop-2');
    });
    expect(turns.stats().woken).toBeGreaterThanOrEqual(1);
    expect(turns.stats().polled).toBe(0);
    expect(rows()).toEqual(['holder', 'loop-1', 'loop-2']);
  });

  it('polls a writer that says nothing (another process) until it lets go', async () => {
    const turns = new WriteTurns(writeTurnsMemory(), 'loop', { timeoutMs: 60_000, pollMs: 5 });
    const sql = loopSql(turns);
    await holdLock(200);
    expect(sql.get('INSERT INTO t (who) VALUES (?) RETURNING who', 'loop')).toEqual({ who: 'loop' });
    expect(turns.stats().polled).toBeGreaterThanOrEqual(1);
    expect(rows()).toEqual(['holder', 'loop']);
  });

  it('gives up at the timeout with STORE_UNAVAILABLE, having written nothing, and writes once the lock is free', async () => {
    const turns = new WriteTurns(writeTurnsMemory(), 'loop', { timeoutMs: 50, pollMs: 5 });
    const sql = loopSql(turns);
    const holder = await holdLock(NEVER_MS);
    expect(() => sql.run('INSERT INTO t (who) VALUES (?)', 'too-early')).toThrow(expect.objectContaining({ code: 'STORE_UNAVAILABLE' }) as Error);
    expect(() => sql.tx(() => sql.run('INSERT INTO t (who) VALUES (?)', 'too-early'))).toThrow(expect.objectContaining({ code: 'STORE_UNAVAILABLE' }) as Error);
    holder.postMessage('release');
    await once(holder, 'message');
    expect(sql.run('INSERT INTO t (who) VALUES (?)', 'later')).toBe(1);
    expect(rows()).toEqual(['holder', 'later']);
  });

  it('passes every other error through at once (a constraint, a syntax error)', () => {
    const turns = new WriteTurns(writeTurnsMemory(), 'loop', { timeoutMs: 60_000, pollMs: LONG_POLL_MS });
    const sql = loopSql(turns);
    sql.run('INSERT INTO t (id, who) VALUES (1, ?)', 'first');
    expect(() => sql.run('INSERT INTO t (id, who) VALUES (1, ?)', 'again')).toThrow(/UNIQUE/);
    expect(() => sql.run('INSERT INTO nowhere VALUES (1)')).toThrow(/no such table/);
    expect(turns.stats()).toEqual({ retried: 0, woken: 0, polled: 0 });
  });

  it('says when this side let the lock go: after a write outside a transaction and after a transaction, not after a read', () => {
    const memory = writeTurnsMemory();
    const seen = new Int32Array(memory);
    const sql = loopSql(new WriteTurns(memory, 'loop', { timeoutMs: 0 }));
    sql.get('SELECT count(*) AS n FROM t');
    expect(seen[0]).toBe(0);
    sql.run('INSERT INTO t (who) VALUES (?)', 'a');
    expect(seen[0]).toBe(1);
    sql.get('INSERT INTO t (who) VALUES (?) RETURNING id', 'b');
    expect(seen[0]).toBe(2);
    sql.tx(() => {
      sql.run('INSERT INTO t (who) VALUES (?)', 'c');
      sql.run('INSERT INTO t (who) VALUES (?)', 'd');
    });
    expect(seen[0]).toBe(3);
    expect(() => sql.tx(() => {
      sql.run('INSERT INTO t (who) VALUES (?)', 'e');
      throw new Error('rolled back');
    })).toThrow('rolled back');
    expect(seen[0]).toBe(4);
    expect(seen[1]).toBe(0);
    expect(rows()).toEqual(['a', 'b', 'c', 'd']);
  });

  it('refuses shared memory of the wrong kind or size, and bad timeouts', () => {
    expect(() => new WriteTurns(new SharedArrayBuffer(4), 'loop', { timeoutMs: 1 })).toThrow(TypeError);
    expect(() => new WriteTurns(new ArrayBuffer(8) as unknown as SharedArrayBuffer, 'loop', { timeoutMs: 1 })).toThrow(TypeError);
    expect(() => new WriteTurns(writeTurnsMemory(), 'loop', { timeoutMs: -1 })).toThrow(RangeError);
    expect(() => new WriteTurns(writeTurnsMemory(), 'loop', { timeoutMs: 1, pollMs: 0 })).toThrow(RangeError);
  });

  it('knows SQLite’s busy codes, extended ones included, from the others', () => {
    expect(isBusy({ errcode: 5 })).toBe(true);
    expect(isBusy({ errcode: 261 })).toBe(true); // BUSY_RECOVERY
    expect(isBusy({ errcode: 517 })).toBe(true); // BUSY_SNAPSHOT
    expect(isBusy({ errcode: 6 })).toBe(false); // LOCKED
    expect(isBusy({ errcode: 2067 })).toBe(false); // CONSTRAINT_UNIQUE
    expect(isBusy(new Error('x'))).toBe(false);
    expect(isBusy(undefined)).toBe(false);
  });
});

describe('write turns in the store: the event loop’s connection and the commit thread', () => {
  it('turns SQLite’s busy handler off on the event loop’s connection only when a commit thread writes beside it', async () => {
    const withThread = openSqliteStore({ path: join(dir, 'a.db'), hasher: sha256Hasher, commitThread: true });
    const without = openSqliteStore({ path: join(dir, 'b.db'), hasher: sha256Hasher });
    open.push(withThread, without);
    await withThread.started();
    const pragma = (s: SqliteStore) => (s.unsafeDatabase().prepare('PRAGMA busy_timeout').get() as Record<string, number>)['timeout'];
    expect(pragma(withThread)).toBe(0);
    expect(pragma(without)).toBe(5000);
  });

  it('keeps every write and one chain while control-plane writes and audit batches take turns', async () => {
    const s = openSqliteStore({ path: join(dir, 'c.db'), hasher: sha256Hasher, commitThread: true, backgroundCheckpointMs: 50 });
    open.push(s);
    await s.started();
    const draft = (n: number): AuditDraft => ({ kind: 'decision', ts: 1_700_000_000_000 + n, callId: `call-${n}`, taskId: 'task-turns', agentId: 'spiffe://test.local/agents/a', data: { n } });
    const batches: Promise<unknown>[] = [];
    const writes: Promise<unknown>[] = [];
    for (let i = 0; i < 400; i++) {
      batches.push(s.audit.append([draft(2 * i), draft(2 * i + 1)]));
      if (i % 4 === 0) writes.push(s.controls.setControl(`turns.${i}`, { i }, i));
      if (i % 16 === 0) await new Promise((r) => setImmediate(r));
    }
    await Promise.all([...batches, ...writes]);
    const stored = await s.audit.readRange(1, 1000);
    expect(stored.map((r) => r.seq)).toEqual(Array.from({ length: 800 }, (_, i) => i + 1));
    for (let i = 0; i < 400; i += 4) expect(await s.controls.getControl(`turns.${i}`)).toEqual({ i });
  });
});
