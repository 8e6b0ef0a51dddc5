import {
  describeError,
  MandateError,
  type AuditAppender,
  type AuditReader,
  type DecisionCommit,
  type DecisionCommitResult,
  type DecisionCommitter,
  type Hasher,
} from '@mandate/core';
import { writeAuditBatch } from './audit-batch.ts';
import type { CommitThread } from './commit-thread.ts';
import type { WalSync } from './wal-sync.ts';
import { checkLimit, type Sql } from './sql.ts';
import { auditFront, STORED_AUDIT_COLUMNS, storedAuditRecord, toAuditRecord } from '@mandate/store-sql';

/** batches of at most this many entries commit with SQLite's own sync when no WAL sync is under way */
const INLINE_SYNC_MAX_ENTRIES = 4;

/**
 * The audit log: append-only through this API (there is no update or delete). Appends are
 * group-committed; each batch reads the head and links the records inside the transaction that
 * inserts them (audit-batch.ts), so another connection appending to the same file cannot fork
 * the chain. With a commit thread, that transaction and the WAL's sync run there (commit-thread.ts);
 * without one, on the event loop, the WAL synced beside it (wal-sync.ts) at durability full.
 */
export function sqliteAudit(sql: Sql, hasher: Hasher, schedule: (fn: () => void) => void, walSync?: WalSync, thread?: CommitThread) {
  /**
   * One transaction for the whole batch: budgets spent and records linked in submission order.
   * `syncInCommit`: SQLite syncs the WAL inside this COMMIT (with a WAL sync, the connection
   * otherwise commits without syncing: index.ts).
   */
  const writeNow = (entries: readonly DecisionCommit[], syncInCommit = false): DecisionCommitResult[] => {
    try {
      if (!syncInCommit) return writeAuditBatch(sql, hasher, entries);
      sql.db.exec('PRAGMA synchronous = FULL');
      try {
        return writeAuditBatch(sql, hasher, entries);
      } finally {
        sql.db.exec('PRAGMA synchronous = NORMAL');
      }
    } catch (error) {
      throw new MandateError('AUDIT_UNAVAILABLE', `audit records were not committed: ${describeError(error)}`);
    }
  };

  const writer = thread ? (entries: readonly DecisionCommit[]) => thread.write(entries) : walSync ? (entries: readonly DecisionCommit[]) => {
    // a small batch with no sync under way: SQLite syncs inside COMMIT, the quickest answer for
    // it (the thread pool's round trip costs more than the loop would do meanwhile)
    const inline = entries.length <= INLINE_SYNC_MAX_ENTRIES && walSync.idle();
    // the commit is counted by the connection (Sql.onCommit)
    const results = writeNow(entries, inline);
    if (inline) walSync.syncedInline();
    return results;
  } : writeNow;
  const front = auditFront(writer, schedule);

  /**
   * With a WAL sync (durability full, on a file): the commit skips SQLite's own fsync, and each
   * caller is answered once the WAL is synced beside the event loop (wal-sync.ts). The group
   * commit does not wait for the sync: the next batch commits meanwhile. The store's other
   * writes are synced the same way (`durableWrites`).
   */
  const durably = async <T>(committed: Promise<T>): Promise<T> => {
    const r = await committed;
    // every commit up to now, this caller's included (its batch committed before it resumed)
    if (walSync) await walSync.durable();
    return r;
  };

  const audit = {
    append: (drafts) => durably(front.append(drafts)),
    commitDecision: (entry) => durably(front.commitDecision(entry)),

    async head() {
      const r = sql.get('SELECT * FROM audit_log ORDER BY seq DESC LIMIT 1');
      return r === undefined ? undefined : toAuditRecord(r);
    },

    async readRange(fromSeq, limit) {
      return sql.all('SELECT * FROM audit_log WHERE seq >= ? ORDER BY seq LIMIT ?', fromSeq, checkLimit(limit)).map(toAuditRecord);
    },

    async readStored(fromSeq, limit) {
      return sql.allArrays(`SELECT ${STORED_AUDIT_COLUMNS} FROM audit_log WHERE seq >= ? ORDER BY seq LIMIT ?`, fromSeq, checkLimit(limit)).map(storedAuditRecord);
    },

    async readByTask(taskId, limit) {
      // by task only: call ids are chosen by agents and may equal another task's id
      return sql.all('SELECT * FROM audit_log WHERE task_id = ? ORDER BY seq LIMIT ?', taskId, checkLimit(limit)).map(toAuditRecord);
    },
  } satisfies AuditAppender & AuditReader & DecisionCommitter;

  return {
    audit,
    /** refuses new appends and waits until every accepted one has committed or failed, and is on the disk */
    drain: async () => {
      await front.drain();
      await walSync?.durable().catch(() => undefined);
    },
  };
}
