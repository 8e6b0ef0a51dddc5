import { mkdtemp, rm, stat } from 'node:fs/promises';
import { DatabaseSync } from 'node:sqlite';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { verifyAuditLog, type AuditDraft, type DecisionCommit } from '@mandate/core';
import { draft, seedTask, testHasher } from '../../store-testkit/src/index.ts';
import { openSqliteStore, type SqliteStore } from '../src/index.ts';

/** The audit's group commits on a thread of their own (commit-thread.ts), on a real SQLite file. */
let dir: string;
let path: string;
const opened: SqliteStore[] = [];

function open(opts: { durability?: 'full' | 'normal'; backgroundCheckpointMs?: number; busyTimeoutMs?: number } = {}): SqliteStore {
  const s = openSqliteStore({ path, hasher: testHasher, commitThread: true, ...opts });
  opened.push(s);
  return s;
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mandate-sqlite-thread-'));
  path = join(dir, 'mandate.db');
});

afterEach(async () => {
  for (const s of opened.splice(0)) await s.close();
  await rm(dir, { recursive: true, force: true });
});

const spend = (i: number, calls: number, exhausted: (which: 'calls' | 'tool') => readonly AuditDraft[]): DecisionCommit => ({
  drafts: [draft(i)],
  budget: { taskId: 'task-1', tool: 'helpdesk.search_tickets', limits: { calls }, exhausted },
});

describe('sqlite store: the commit thread', () => {
  it('says when the thread can commit, and answers a commit once it is committed, visible to the event loop’s own reads at once', async () => {
    const s = open();
    await s.started();
    await seedTask(s, 'task-1');
    const [r] = await s.audit.append([draft(1), draft(2)]);
    expect(r?.seq).toBe(1);
    // read-your-writes: the store's own connection reads what the thread committed
    expect((await s.audit.head())?.seq).toBe(2);
    const c = await s.audit.commitDecision(spend(3, 5, () => [draft(99)]));
    expect(c.budget).toMatchObject({ ok: true, usage: { calls: 1 } });
    expect(await s.budgets.usage('task-1', 'helpdesk.search_tickets')).toEqual({ calls: 1, toolCalls: 1 });
    expect(await verifyAuditLog(s.audit, [], new Map(), testHasher)).toMatchObject({ ok: true, records: 3 });
  });

  it('holds a budget under concurrent commits, writing the exhausted records built on the event loop', async () => {
    const s = open();
    await seedTask(s, 'task-1');
    let built = 0;
    const exhausted = (i: number) => (): readonly AuditDraft[] => {
      built += 1;
      return [draft(1000 + i, { data: { effect: 'deny', reasons: ['BUDGET_EXHAUSTED'] } })];
    };
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => s.audit.commitDecision(spend(i, 5, exhausted(i)))));
    expect(results.filter((r) => r.budget?.ok).length).toBe(5);
    const denied = results.filter((r) => r.budget?.ok === false);
    expect(denied).toHaveLength(7);
    // the denied ones carry the records built for them, as committed
    for (const r of denied) expect(r.records[0]?.data).toEqual({ effect: 'deny', reasons: ['BUDGET_EXHAUSTED'] });
    expect(built).toBe(7);
    expect((await s.budgets.usage('task-1', 'helpdesk.search_tickets')).calls).toBe(5);
    // what each caller was told is what the log holds, in submission order
    expect((await s.audit.readRange(1, 100)).map((r) => r.hash)).toEqual(results.flatMap((r) => r.records.map((x) => x.hash)));
    expect(await verifyAuditLog(s.audit, [], new Map(), testHasher)).toMatchObject({ ok: true, records: 12 });
  });

  it('fails the batch closed when an exhausted thunk throws, and commits nothing of it', async () => {
    const s = open();
    await seedTask(s, 'task-1');
    await s.audit.commitDecision(spend(1, 1, () => [draft(50)]));
    await expect(s.audit.commitDecision(spend(2, 1, () => { throw new Error('cannot build'); }))).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE' });
    expect((await s.audit.head())?.seq).toBe(1);
  });

  it('refuses a batch the database refuses, with AUDIT_UNAVAILABLE, and commits the next one', async () => {
    const s = open();
    await s.audit.append([draft(1)]);
    // the thread's connection sees the schema the event loop's changes
    s.unsafeDatabase().exec(`CREATE TRIGGER fail_outcome BEFORE INSERT ON audit_log WHEN NEW.kind = 'outcome'
                             BEGIN SELECT RAISE(ABORT, 'disk full (simulated)'); END`);
    await expect(s.audit.append([draft(2, { kind: 'outcome' })])).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE', message: expect.stringContaining('disk full') as unknown });
    await s.probeWrite();
    s.unsafeDatabase().exec('DROP TRIGGER fail_outcome');
    const [next] = await s.audit.append([draft(3)]);
    expect(next?.seq).toBe(2);
    expect(await verifyAuditLog(s.audit, [], new Map(), testHasher)).toMatchObject({ ok: true, records: 2 });
  });

  it('keeps one chain with a second store appending to the same file', async () => {
    const a = open();
    const b = openSqliteStore({ path, hasher: testHasher });
    opened.push(b);
    await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).audit.append([draft(i), draft(i + 100)])));
    expect(await verifyAuditLog(a.audit, [], new Map(), testHasher)).toMatchObject({ ok: true, records: 40 });
  });

  it('commits what was accepted before close, then ends the thread', async () => {
    const s = open();
    const pending = Promise.all(Array.from({ length: 5 }, (_, i) => s.audit.append([draft(i)])));
    const worker = s.unsafeCommitWorker();
    const exited = new Promise<number>((resolve) => worker?.once('exit', resolve));
    await s.close();
    expect((await pending).map((r) => r[0]?.seq)).toEqual([1, 2, 3, 4, 5]);
    await exited;
    await expect(s.audit.append([draft(9)])).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE' });
    expect((await open().audit.readRange(1, 10)).map((r) => r.seq)).toEqual([1, 2, 3, 4, 5]);
  });

  it('fails closed once the thread dies: waiting and later commits are refused, and so is the write probe', async () => {
    const s = open();
    await s.audit.append([draft(1)]);
    await s.probeWrite();
    const worker = s.unsafeCommitWorker();
    if (!worker) throw new Error('no commit thread');
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    const inFlight = s.audit.append([draft(2)]);
    await worker.terminate();
    await exited;
    // the one in flight either committed before the end or is refused: never answered otherwise
    const settled = await Promise.allSettled([inFlight]);
    if (settled[0]?.status === 'rejected') expect(settled[0].reason).toMatchObject({ code: 'AUDIT_UNAVAILABLE' });
    await expect(s.audit.append([draft(3)])).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE', message: expect.stringContaining('commit thread') as unknown });
    await expect(s.audit.commitDecision({ drafts: [draft(4)] })).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE' });
    await expect(s.probeWrite()).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE' });
    await expect(s.checkpoints.addCheckpoint({ seq: 1, headHash: 'h', ts: 1, kid: 'k', signature: 's' })).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE' });
  });

  it('writes a signed checkpoint on the thread, after the batches sent before it: the event loop never waits for the write lock', async () => {
    const s = open({ busyTimeoutMs: 60_000 });
    await s.started();
    const [r] = await s.audit.append([draft(1)]);
    // another connection holds the write lock until the event loop's next turn: on the event
    // loop's own connection, the insert would wait for it with the loop held, so that turn could
    // never come and the insert would give up (SQLITE_BUSY)
    const other = new DatabaseSync(path);
    other.exec('BEGIN IMMEDIATE');
    const cp = { seq: 1, headHash: r?.hash ?? '', ts: 1, kid: 'k', signature: 's' };
    let released = false;
    setTimeout(() => {
      other.exec('COMMIT');
      other.close();
      released = true;
    }, 20);
    const appended = s.audit.append([draft(2)]);
    await s.checkpoints.addCheckpoint(cp);
    expect(released).toBe(true);
    expect((await appended)[0]?.seq).toBe(2);
    expect(await s.checkpoints.listCheckpoints()).toEqual([{ ...cp }]);
  });

  it('refuses a checkpoint the database refuses, with STORE_UNAVAILABLE, and commits the next batch', async () => {
    const s = open();
    await s.started();
    s.unsafeDatabase().exec("CREATE TRIGGER refuse_checkpoints BEFORE INSERT ON checkpoints BEGIN SELECT RAISE(ABORT, 'refused'); END");
    await expect(s.checkpoints.addCheckpoint({ seq: 1, headHash: 'h', ts: 1, kid: 'k', signature: 's' })).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE', message: expect.stringContaining('refused') as unknown });
    await expect(s.audit.append([draft(1)])).resolves.toHaveLength(1);
    expect(await s.checkpoints.listCheckpoints()).toEqual([]);
  });

  it('refuses a hasher other than SHA-256 (the thread links with SHA-256)', () => {
    expect(() => openSqliteStore({ path, hasher: { sha256Hex: () => '0'.repeat(64) }, commitThread: true })).toThrow(TypeError);
  });

  it('commits at durability normal too', async () => {
    const s = open({ durability: 'normal' });
    await expect(s.audit.append([draft(1)])).resolves.toHaveLength(1);
  });

  it('leaves checkpoints to the checkpointer thread: a commit past SQLite’s 1,000-page mark does not checkpoint inside itself', async () => {
    // a checkpointer that does not run during the test: the WAL can only be checkpointed (and then
    // written again from its start) by SQLite's automatic checkpoint inside a commit
    const s = open({ backgroundCheckpointMs: 3_600_000 });
    await s.started();
    const page = 4096;
    // ~2 pages of data a record: 60 batches of 15 records take the WAL well past 1,000 pages
    const blob = 'x'.repeat(2 * page);
    for (let b = 0; b < 60; b++) await Promise.all(Array.from({ length: 15 }, (_, j) => s.audit.append([draft(b * 15 + j, { data: { blob } })])));
    const walPages = (await stat(`${path}-wal`)).size / (page + 24);
    // checkpointed at 1,000 pages, the WAL would have been restarted and stayed near that size
    expect(walPages).toBeGreaterThan(1_500);
    expect(await verifyAuditLog(s.audit, [], new Map(), testHasher)).toMatchObject({ ok: true, records: 900 });
  });
});
