/**
 * The embedded default store: one SQLite file (WAL) through node:sqlite. Every capability is a
 * small object checked against its port; this file only opens, migrates and wires them.
 */
import { DatabaseSync } from 'node:sqlite';
import { chmodSync, closeSync, existsSync, openSync } from 'node:fs';
import type { Worker } from 'node:worker_threads';
import type { Hasher, Store } from '@mandate/core';
import { sqliteAgents } from './agents.ts';
import { sqliteApprovals } from './approvals.ts';
import { sqliteAlertSinks, sqliteAlerts, sqliteContainment } from './behaviour.ts';
import { sqliteKillOutbox } from './kill-outbox.ts';
import { sqliteControls } from './controls.ts';
import { sqliteAudit } from './audit.ts';
import { sqliteBudgets } from './budgets.ts';
import { sqliteCheckpoints } from './checkpoints.ts';
import { sqliteKeys } from './keys.ts';
import { migrate } from './migrations.ts';
import { sqliteOperators } from './operators.ts';
import { sqliteRevocations } from './revocations.ts';
import { sqliteTasks } from './tasks.ts';
import { sqliteSupervision } from './supervision.ts';
import { sqliteLabels } from './labels.ts';
import { Sql, unavailable } from './sql.ts';
import { startThread, storeModule } from './thread.ts';
import { WriteTurns, writeTurnsMemory } from './write-turns.ts';
import { durableWrites, WalSync } from './wal-sync.ts';
import { CommitThread } from './commit-thread.ts';

export { MIGRATIONS, type Migration } from './migrations.ts';

export interface SqliteStoreOptions {
  /** a file path, or ':memory:' for a private in-memory database */
  readonly path: string;
  readonly hasher: Hasher;
  /** runs a group commit after the current turn; default setImmediate */
  readonly schedule?: ((fn: () => void) => void) | undefined;
  /**
   * 'full' (default) fsyncs the WAL on every commit: an acknowledged audit record survives a
   * power cut. 'normal' may lose the last commits on power loss (not on a process crash).
   */
  readonly durability?: 'full' | 'normal' | undefined;
  /** how long a writer waits for another connection's lock, in ms; default 5000 */
  readonly busyTimeoutMs?: number | undefined;
  /**
   * Checkpoint the WAL on a thread of its own every this many ms (a file store only), instead of
   * inside the commit that crosses SQLite's threshold, which holds the event loop for the copy and
   * its syncs. SQLite's automatic checkpoint stays as a backstop at a far larger WAL. Absent: the
   * automatic checkpoint alone (tests and tools).
   */
  readonly backgroundCheckpointMs?: number | undefined;
  /**
   * Run the audit's group commits (transaction and WAL sync) on a thread of their own with their
   * own connection (a file store only; commit-thread.ts), so the event loop is not held while
   * the disk works. Callers are still answered only once their records are durable. Absent or
   * false: on the event loop (tests and tools). Needs a SHA-256 hasher.
   */
  readonly commitThread?: boolean | undefined;
  /**
   * Bounds this connection's memory for reading: its page cache at this many KiB (PRAGMA
   * cache_size) and no memory-mapped I/O (PRAGMA mmap_size = 0), so a walk of a large file
   * holds at most this much of it. Absent: SQLite's defaults (a 2000 KiB cache; this build maps
   * nothing).
   */
  readonly cacheKiB?: number | undefined;
}

/** the write probe's row: in `controls`, present only inside the probe's own transaction */
const WRITE_PROBE_KEY = 'mandate.write_probe';
/** random bytes in the probe row (twice as many hex characters: a few pages) */
const WRITE_PROBE_BYTES = 8192;

/** with background checkpoints, SQLite's own checkpoint only past this many WAL pages (~64 MiB) */
const BACKSTOP_CHECKPOINT_PAGES = 16_384;

export interface SqliteStore extends Store {
  readonly path: string;
  /**
   * TEST ONLY: the raw connection, for tests that tamper with the log or break the file on
   * purpose. Production code must go through the capability objects.
   */
  unsafeDatabase(): DatabaseSync;
  /**
   * Resolves once the store can commit at once: with a commit thread, once the thread has its
   * connection (rejects if it failed to start); without one, at once.
   */
  started(): Promise<void>;
  /** TEST ONLY: the commit thread's worker, for tests that end it on purpose (undefined without one) */
  unsafeCommitWorker(): Worker | undefined;
  /** what the background checkpointer did so far (undefined without one) */
  checkpointStats(): { readonly runs: number; readonly frames: number; readonly errors: number } | undefined;
}

/** The database holds signing keys and operator secrets' hashes: only its owner may read it. */
function createPrivateFile(path: string): void {
  if (path === ':memory:' || path.startsWith('file:') || existsSync(path)) return;
  // created empty with 0600 before SQLite opens it, so it is never readable by others, even briefly
  closeSync(openSync(path, 'wx', 0o600));
  chmodSync(path, 0o600); // in case the umask or the file system altered the mode
}

export function openSqliteStore(opts: SqliteStoreOptions): SqliteStore {
  createPrivateFile(opts.path);
  const db = new DatabaseSync(opts.path);
  const sql = new Sql(db);
  const busyTimeoutMs = Math.max(0, Math.floor(opts.busyTimeoutMs ?? 5000));
  try {
    db.exec(`PRAGMA busy_timeout = ${busyTimeoutMs}`);
    db.exec('PRAGMA journal_mode = WAL');
    db.exec(`PRAGMA synchronous = ${opts.durability === 'normal' ? 'NORMAL' : 'FULL'}`);
    db.exec('PRAGMA foreign_keys = ON');
    if (opts.cacheKiB !== undefined) {
      if (!(Number.isInteger(opts.cacheKiB) && opts.cacheKiB >= 1)) throw new RangeError(`cacheKiB must be a positive integer (got ${String(opts.cacheKiB)})`);
      db.exec(`PRAGMA cache_size = -${opts.cacheKiB}`);
      db.exec('PRAGMA mmap_size = 0');
    }
    migrate(sql);
  } catch (error) {
    sql.close();
    throw error;
  }

  const schedule = opts.schedule ?? ((fn: () => void) => void setImmediate(fn));
  // durability full on a file: audit batches sync the WAL off the event loop (wal-sync.ts)
  const onFile = opts.path !== ':memory:' && !opts.path.startsWith('file:');
  const durability = opts.durability === 'normal' ? 'normal' : 'full';
  // with a checkpointer thread, SQLite's own checkpoint is only a backstop on every connection
  // that writes (it is set per connection): the event loop's and the commit thread's
  const backstopPages = opts.backgroundCheckpointMs !== undefined && onFile ? BACKSTOP_CHECKPOINT_PAGES : undefined;
  let thread: CommitThread | undefined;
  try {
    if (opts.commitThread === true && onFile) {
      // two writers in this process: each retries a locked write when the other lets the lock go,
      // instead of SQLite's busy handler sleeping (on the event loop, every request with it)
      const writeTurns = writeTurnsMemory();
      thread = new CommitThread({ path: opts.path, busyTimeoutMs, durability, autocheckpointPages: backstopPages, writeTurns }, opts.hasher);
      db.exec('PRAGMA busy_timeout = 0');
      sql.turns = new WriteTurns(writeTurns, 'loop', { timeoutMs: busyTimeoutMs });
    }
  } catch (error) {
    sql.close();
    throw error;
  }
  // durability full on a file: the event loop's connection commits without SQLite's own sync, and
  // a write is answered once the WAL is synced off the loop (wal-sync.ts: `durableWrites`, and the
  // audit's group commits without a commit thread), so no write holds the loop for the disk
  const walSync = durability === 'full' && onFile ? new WalSync(opts.path) : undefined;
  if (walSync) {
    sql.onCommit = () => void walSync.wrote();
    db.exec('PRAGMA synchronous = NORMAL');
  }
  // every capability but the audit (its commits are synced by its own path)
  const durable = <T extends Record<string, object>>(caps: T): T => {
    if (!walSync) return caps;
    const out: Record<string, object> = {};
    for (const [name, cap] of Object.entries(caps)) out[name] = durableWrites(cap, walSync);
    return out as T;
  };
  const { audit, drain } = sqliteAudit(sql, opts.hasher, schedule, thread ? undefined : walSync, thread);
  const checkpointer = opts.backgroundCheckpointMs !== undefined && backstopPages !== undefined ? startCheckpointer(db, opts.path, opts.backgroundCheckpointMs, backstopPages) : undefined;
  let closing: Promise<void> | undefined;

  return {
    path: opts.path,
    audit,
    ...durable({
      agents: sqliteAgents(sql),
      tasks: sqliteTasks(sql),
      revocations: sqliteRevocations(sql),
      supervision: sqliteSupervision(sql),
      approvals: sqliteApprovals(sql),
      controls: sqliteControls(sql),
      budgets: sqliteBudgets(sql),
      checkpoints: sqliteCheckpoints(sql, thread ? (row) => thread.writeCheckpoint(row) : undefined),
      keys: sqliteKeys(sql),
      operators: sqliteOperators(sql),
      alerts: sqliteAlerts(sql),
      alertSinks: sqliteAlertSinks(sql),
      killOutbox: sqliteKillOutbox(sql),
      containment: sqliteContainment(sql),
      labels: sqliteLabels(sql),
    }),

    async ping() {
      try {
        return sql.get('SELECT 1 AS one') !== undefined;
      } catch {
        return false;
      }
    },

    async probeWrite() {
      // a failed WAL sync refuses every audit commit until restart, whatever a probe could write
      const failed = walSync?.failed() ?? thread?.failed();
      if (failed) throw failed;
      // a row with a few pages of payload, written and removed in one committed transaction: the
      // store must find room for it (a full disk or max_page_count fails here) and write the WAL;
      // its sync is not awaited (write errors suffice; a failed sync shows above)
      try {
        sql.tx(() => {
          sql.run('INSERT INTO controls (key, value, updated_at) VALUES (?, hex(randomblob(?)), 0)', WRITE_PROBE_KEY, WRITE_PROBE_BYTES);
          sql.run('DELETE FROM controls WHERE key = ?', WRITE_PROBE_KEY);
        });
      } catch (error) {
        // closed, full, I/O error: STORE_UNAVAILABLE
        throw unavailable(error);
      }
    },

    close() {
      // idempotent; appends already accepted commit first, so closing never drops a record
      closing ??= drain().then(async () => {
        await thread?.stop();
        await checkpointer?.stop();
        // the last writes' sync, before its descriptor is closed
        await walSync?.durable().catch(() => undefined);
        sql.close();
        walSync?.close();
      });
      return closing;
    },

    unsafeDatabase() {
      return db;
    },

    async started() {
      await thread?.started();
    },

    unsafeCommitWorker() {
      return thread?.unsafeWorker();
    },

    checkpointStats() {
      return checkpointer?.stats();
    },
  } satisfies SqliteStore;
}

/** The checkpointer thread (checkpoint-worker.ts); SQLite's own checkpoint is kept as a backstop. */
function startCheckpointer(db: DatabaseSync, path: string, intervalMs: number, backstopPages: number) {
  if (!(Number.isInteger(intervalMs) && intervalMs >= 1)) throw new RangeError('backgroundCheckpointMs must be a positive integer');
  db.exec(`PRAGMA wal_autocheckpoint = ${backstopPages}`);
  const worker = startThread(storeModule('checkpoint-worker'), { path, intervalMs });
  // never keeps the process alive; an error leaves the backstop to SQLite
  worker.unref();
  const counts = { runs: 0, frames: 0, errors: 0 };
  worker.on('message', (m: { kind: string; runs?: number; frames?: number }) => {
    if (m.kind === 'checkpointed') {
      counts.runs = m.runs ?? counts.runs;
      counts.frames = m.frames ?? counts.frames;
    } else if (m.kind === 'error') {
      counts.errors += 1;
    }
  });
  worker.on('error', () => {
    counts.errors += 1;
  });
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  return {
    stats: () => ({ ...counts }),
    async stop(): Promise<void> {
      worker.postMessage('stop');
      // it closes its connection and exits; a stuck one is ended after a second
      const timeout = setTimeout(() => void worker.terminate(), 1000);
      await exited;
      clearTimeout(timeout);
    },
  };
}
