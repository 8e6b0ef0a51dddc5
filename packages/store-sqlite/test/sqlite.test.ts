import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { verifyAuditLog, type AuditDraft } from '@mandate/core';
import { agent, draft, operatorKey, seedTask, signingKey, T0, task, testHasher } from '../../store-testkit/src/index.ts';
import { killEvent } from '../../store-testkit/src/kill-outbox.ts';
import { MIGRATIONS, openSqliteStore, type SqliteStore, type SqliteStoreOptions } from '../src/index.ts';

let dir: string;
let path: string;
const opened: SqliteStore[] = [];

function open(opts: Partial<SqliteStoreOptions> = {}): SqliteStore {
  const s = openSqliteStore({ path, hasher: testHasher, ...opts });
  opened.push(s);
  return s;
}

function pragma(s: SqliteStore, name: string): unknown {
  const row = s.unsafeDatabase().prepare(`PRAGMA ${name}`).get();
  return row === undefined ? undefined : Object.values(row)[0];
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mandate-sqlite-'));
  path = join(dir, 'mandate.db');
});

afterEach(async () => {
  for (const s of opened.splice(0)) await s.close();
  await rm(dir, { recursive: true, force: true });
});

describe('sqlite store: the file', () => {
  it('creates a new database file, and its write-ahead log, readable only by its owner', async () => {
    await open().audit.append([draft(1)]);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await stat(`${path}-wal`)).mode & 0o777).toBe(0o600);
  });

  it('uses WAL, foreign keys and a busy timeout by default, and commits without SQLite’s own sync (the WAL is synced beside the event loop)', () => {
    const s = open();
    expect(pragma(s, 'journal_mode')).toBe('wal');
    expect(pragma(s, 'synchronous')).toBe(1);
    expect(pragma(s, 'foreign_keys')).toBe(1);
    expect(pragma(s, 'busy_timeout')).toBe(5000);
  });

  it('uses synchronous NORMAL when durability is normal', () => {
    expect(pragma(open({ durability: 'normal' }), 'synchronous')).toBe(1);
  });

  it('keeps every kind of record across close and reopen', async () => {
    const first = open();
    const t = await seedTask(first, 'task-1');
    await first.revocations.revokeToken('jti-1', 'task-1', T0 + 60_000, 'completed', T0);
    await first.budgets.consume('task-1', 'fs.read_file', {});
    const records = await first.audit.append([draft(1), draft(2)]);
    await first.checkpoints.addCheckpoint({ seq: 2, headHash: records[1]?.hash ?? '', ts: T0, kid: 'k', signature: 'sig' });
    await first.keys.addKey(signingKey('k1'));
    await first.operators.createOperatorKey(operatorKey('op-1'));
    await first.close();

    const second = open();
    expect(await second.agents.getAgent(t.agentId)).toEqual(agent(t.agentId));
    expect(await second.tasks.getTask('task-1')).toEqual(t);
    expect(await second.revocations.isTokenRevoked('jti-1')).toBe(true);
    expect(await second.budgets.usage('task-1', 'fs.read_file')).toEqual({ calls: 1, toolCalls: 1 });
    expect(await second.audit.readRange(1, 10)).toEqual(records);
    expect(await second.checkpoints.listCheckpoints()).toHaveLength(1);
    expect(await second.keys.listKeys('task-token')).toEqual([signingKey('k1')]);
    expect(await second.operators.listOperatorKeys()).toEqual([operatorKey('op-1')]);
  });

  it('applies each migration once, however often the file is opened', async () => {
    const migrations = () => open().unsafeDatabase().prepare('SELECT version, name, applied_at FROM schema_migrations ORDER BY version').all();
    const before = migrations();
    expect(before.map((r) => r['version'])).toEqual(MIGRATIONS.map((m) => m.version));
    for (const s of opened.splice(0)) await s.close();
    expect(migrations()).toEqual(before);
    expect(migrations()).toEqual(before);
  });

  it('refuses a database written by a newer schema version', async () => {
    const s = open();
    s.unsafeDatabase().prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, ?, ?)').run('from the future', T0);
    await s.close();
    expect(() => open()).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }) as Error);
  });

  it('works in memory without a file', async () => {
    const s = open({ path: ':memory:' });
    await s.audit.append([draft(1)]);
    expect(await s.audit.head()).toMatchObject({ seq: 1 });
  });
});

describe('sqlite store: durability of the audit log', () => {
  it('makes appended records visible to another connection as soon as the append resolves', async () => {
    const s = open();
    const other = new DatabaseSync(path, { readOnly: true });
    try {
      await s.audit.append([draft(1), draft(2), draft(3)]);
      expect(other.prepare('SELECT count(*) AS n FROM audit_log').get()).toEqual({ n: 3 });
    } finally {
      other.close();
    }
  });

  it('commits appends accepted before close, so they are there after reopening', async () => {
    const s = open();
    const pending = s.audit.append([draft(1)]);
    await s.close();
    const [r] = await pending;
    expect(await open().audit.readRange(1, 10)).toEqual([r]);
  });

  it('refuses appends after close with AUDIT_UNAVAILABLE', async () => {
    const s = open();
    await s.close();
    await expect(s.audit.append([draft(1)])).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE' });
  });

  it('rejects an append with AUDIT_UNAVAILABLE when the database fails, and loses no earlier record', async () => {
    const s = open();
    const earlier = await s.audit.append([draft(1), draft(2), draft(3)]);
    s.unsafeDatabase().close();
    await expect(s.audit.append([draft(4)])).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE' });
    expect(await s.ping()).toBe(false);
    await s.close();

    const reopened = open();
    expect(await reopened.audit.readRange(1, 10)).toEqual(earlier);
    expect(await verifyAuditLog(reopened.audit, [], new Map(), testHasher)).toMatchObject({ ok: true, records: 3 });
  });

  it('rolls back a whole batch when one insert fails, and continues the chain after it', async () => {
    const s = open();
    await s.audit.append([draft(1)]);
    s.unsafeDatabase().exec(`CREATE TRIGGER fail_outcome BEFORE INSERT ON audit_log WHEN NEW.kind = 'outcome'
                             BEGIN SELECT RAISE(ABORT, 'disk full (simulated)'); END`);
    // both appends join one group commit: the failure of the second takes the first with it
    const results = await Promise.allSettled([s.audit.append([draft(2)]), s.audit.append([draft(3, { kind: 'outcome' })])]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(results[0]).toMatchObject({ reason: { code: 'AUDIT_UNAVAILABLE' } });
    expect((await s.audit.readRange(1, 10)).map((r) => r.seq)).toEqual([1]);

    s.unsafeDatabase().exec('DROP TRIGGER fail_outcome');
    const [next] = await s.audit.append([draft(4)]);
    expect(next?.seq).toBe(2);
    expect(await verifyAuditLog(s.audit, [], new Map(), testHasher)).toMatchObject({ ok: true, records: 2 });
  });

  it('fails closed with AUDIT_UNAVAILABLE while another connection holds the write lock', async () => {
    const s = open({ busyTimeoutMs: 20 });
    const other = new DatabaseSync(path);
    try {
      other.exec('BEGIN IMMEDIATE');
      await expect(s.audit.append([draft(1)])).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE' });
      other.exec('ROLLBACK');
      await expect(s.audit.append([draft(2)])).resolves.toHaveLength(1);
    } finally {
      other.close();
    }
  });

  it('keeps one chain when two stores append to the same file', async () => {
    const a = open();
    const b = open();
    const appends: Promise<unknown>[] = [];
    for (let i = 0; i < 30; i++) appends.push((i % 2 === 0 ? a : b).audit.append([draft(i), draft(i + 100)]));
    await Promise.all(appends);
    const verdict = await verifyAuditLog(a.audit, [], new Map(), testHasher);
    expect(verdict).toMatchObject({ ok: true, records: 60 });
  });

  it('lets the raw connection tamper with the log, and verification notices', async () => {
    const s = open();
    await s.audit.append(Array.from({ length: 5 }, (_, i): AuditDraft => draft(i)));
    s.unsafeDatabase().prepare(`UPDATE audit_log SET data = '{"effect":"deny"}' WHERE seq = 3`).run();
    const verdict = await verifyAuditLog(s.audit, [], new Map(), testHasher);
    expect(verdict).toMatchObject({ ok: false, problem: { code: 'HASH_MISMATCH', seq: 3 } });
  });
});

describe('sqlite store: a database that cannot write', () => {
  /** no free page and no room for another: the next new page is SQLITE_FULL (a full disk, to SQLite) */
  function fill(s: SqliteStore): void {
    const db = s.unsafeDatabase();
    db.exec('CREATE TABLE test_filler (b BLOB)');
    db.exec('VACUUM');
    db.exec(`PRAGMA max_page_count = ${String(pragma(s, 'page_count'))}`);
    for (const size of [4096, 1024, 256, 64, 16, 1]) {
      for (;;) {
        try {
          db.prepare('INSERT INTO test_filler (b) VALUES (zeroblob(?))').run(size);
        } catch {
          break;
        }
      }
    }
  }

  it('answers writes to a full database with STORE_UNAVAILABLE (a stable code), and reads still work', async () => {
    const s = open();
    await seedTask(s, 'task-1');
    fill(s);
    // each table's last page may hold a few more rows: write until the store refuses
    const untilRefused = async (write: (i: number) => Promise<unknown>): Promise<unknown> => {
      for (let i = 0; i < 500; i++) {
        try {
          await write(i);
        } catch (e) {
          return e;
        }
      }
      return undefined;
    };
    const agentRefused = await untilRefused((i) => s.agents.createAgent(agent(`spiffe://acme.test/agents/filler-${i}-${'x'.repeat(200)}`)));
    expect(agentRefused).toMatchObject({ code: 'STORE_UNAVAILABLE', message: expect.stringContaining('full') as unknown });
    const taskRefused = await untilRefused((i) => s.tasks.createTask(task(`task-more-${i}`, 'spiffe://acme.test/agents/triage')));
    expect(taskRefused).toMatchObject({ code: 'STORE_UNAVAILABLE' });
    expect(await s.tasks.getTask('task-1')).toBeDefined();
    expect(await s.ping()).toBe(true);
  });

  it('fails its write probe while full and passes it once there is room, leaving nothing behind', async () => {
    const s = open();
    await s.audit.append([draft(1)]);
    await s.probeWrite();
    fill(s);
    await expect(s.probeWrite()).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    s.unsafeDatabase().exec('PRAGMA max_page_count = 1073741823');
    await s.probeWrite();
    expect(await s.controls.getControl('mandate.write_probe')).toBeUndefined();
    expect((await s.audit.head())?.seq).toBe(1);
    expect(pragma(s, 'synchronous')).toBe(1);
  });

  it('fails its write probe for good once a WAL sync failed', async () => {
    const s = open();
    await s.audit.append([draft(1)]);
    await rm(`${path}-wal`);
    await Promise.allSettled(Array.from({ length: 6 }, (_, i) => s.audit.append([draft(2 + i)])));
    await writeFile(`${path}-wal`, '');
    await expect(s.probeWrite()).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE' });
  });
});

describe('sqlite store: integrity', () => {
  it('refuses a task whose agent does not exist, with NOT_FOUND', async () => {
    const s = open();
    await expect(seedTask(s, 'task-1')).resolves.toBeDefined();
    await expect(s.tasks.createTask(task('task-2', 'spiffe://acme.test/nobody'))).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(s.tasks.createTask(task('task-3', 'spiffe://acme.test/agents/triage', { parentId: 'no-such-parent', depth: 1 }))).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
  });

  it('refuses a negative or fractional list limit instead of reading everything', async () => {
    const s = open();
    await expect(s.agents.listAgents({ limit: -1 })).rejects.toThrow(TypeError);
    await expect(s.audit.readRange(1, 1.5)).rejects.toThrow(TypeError);
  });

  it('refuses an audit draft with a fractional timestamp before it joins a batch', async () => {
    const s = open();
    await expect(s.audit.append([draft(1, { ts: T0 + 0.5 })])).rejects.toThrow(TypeError);
    expect(await s.audit.head()).toBeUndefined();
  });
});

describe('sqlite store: durability full syncs the WAL beside the event loop', () => {
  it('commits and answers each batch, and leaves the connection at synchronous = NORMAL (a lone batch syncs inside its COMMIT)', async () => {
    const s = open();
    const [a] = await Promise.all([s.audit.append([draft(1)]), s.audit.append([draft(2)])]);
    expect(a?.[0]?.seq).toBe(1);
    expect(pragma(s, 'synchronous')).toBe(1); // NORMAL
    await s.close();
    expect((await open().audit.readRange(1, 10)).map((r) => r.seq)).toEqual([1, 2]);
  });

  it('answers every other write once the WAL is synced past it, and refuses writes with STORE_UNAVAILABLE once it cannot be', async () => {
    const s = open();
    await seedTask(s, 'task-1');
    await s.revocations.revokeToken('jti-1', 'task-1', T0 + 60_000, 'completed', T0);
    // the WAL goes away under the store: a sync can no longer prove a write durable (SQLite's own
    // sync inside COMMIT would go on syncing its open descriptor of the removed file)
    await rm(`${path}-wal`);
    await expect(s.revocations.revokeToken('jti-2', 'task-1', T0 + 60_000, 'completed', T0)).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE', message: expect.stringContaining('not made durable') as unknown });
    // for good, as for the audit: a later write is refused too, while reads go on
    await writeFile(`${path}-wal`, '');
    await expect(s.controls.setControl('k', { v: 1 }, T0)).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    // a write read for its rows (INSERT … RETURNING) is a write too
    await expect(s.killOutbox.appendKillEvent(killEvent('k1'))).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    expect(await s.revocations.isTokenRevoked('jti-1', T0)).toBe(true);
    await expect(s.audit.append([draft(1)])).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE' });
    await expect(s.probeWrite()).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE' });
  });

  it('refuses the batch, and every batch after it, once the WAL cannot be synced', async () => {
    const s = open();
    await s.audit.append([draft(1)]);
    // the WAL goes away under the store: the sync cannot prove anything durable any more
    await rm(`${path}-wal`);
    // a batch too large to sync inline goes to the WAL sync, which fails
    const batch = (from: number) => Array.from({ length: 6 }, (_, i) => s.audit.append([draft(from + i)]));
    const first = await Promise.allSettled(batch(2));
    expect(first.every((r) => r.status === 'rejected')).toBe(true);
    expect(first[0]).toMatchObject({ reason: { code: 'AUDIT_UNAVAILABLE', message: expect.stringContaining('refusing every commit') as unknown } });
    // poisoned for good: with a file at the WAL's path again a sync would "succeed", yet later
    // batches are refused, a lone one included (it no longer syncs inline either)
    await writeFile(`${path}-wal`, '');
    expect((await Promise.allSettled(batch(10))).every((r) => r.status === 'rejected')).toBe(true);
    await expect(s.audit.append([draft(20)])).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE' });
    await expect(s.audit.commitDecision({ drafts: [draft(21)] })).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE' });
  });

  it('syncs a lone commit inside SQLite’s COMMIT when no WAL sync is under way', async () => {
    const s = open();
    await s.audit.append([draft(1)]);
    // no WAL sync involved: a vanished WAL path does not matter to an inline commit
    await rm(`${path}-wal`);
    await expect(s.audit.append([draft(2)])).resolves.toHaveLength(1);
  });

  it('keeps SQLite’s own fsync at durability normal and in memory (no WAL sync there)', async () => {
    const s = open({ durability: 'normal' });
    await s.audit.append([draft(1)]);
    expect(pragma(s, 'synchronous')).toBe(1); // NORMAL
    const mem = openSqliteStore({ path: ':memory:', hasher: testHasher });
    await expect(mem.audit.append([draft(1)])).resolves.toHaveLength(1);
    await mem.close();
  });
});

describe('sqlite store: the WAL checkpointed on a thread of its own', () => {
  it('copies the WAL into the database beside the writer, keeps SQLite’s own checkpoint only as a backstop, and stops on close', async () => {
    const s = open({ backgroundCheckpointMs: 10 });
    expect(pragma(s, 'wal_autocheckpoint')).toBe(16_384);
    for (let i = 0; i < 40; i++) await Promise.all(Array.from({ length: 25 }, (_, j) => s.audit.append([draft(i * 25 + j)])));
    const deadline = Date.now() + 5000;
    while ((s.checkpointStats()?.frames ?? 0) === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(s.checkpointStats()).toMatchObject({ errors: 0 });
    expect(s.checkpointStats()?.frames).toBeGreaterThan(0);
    await s.close();
    const again = open();
    expect(await verifyAuditLog(again.audit, [], new Map(), testHasher)).toMatchObject({ ok: true, records: 1000 });
    expect(again.checkpointStats()).toBeUndefined();
  });
});
