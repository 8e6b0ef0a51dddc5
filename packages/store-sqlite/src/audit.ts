import {
  canonicalJson,
  describeError,
  linkRecords,
  MandateError,
  type AuditAppender,
  type AuditDraft,
  type AuditReader,
  type AuditRecord,
  type DecisionCommit,
  type DecisionCommitResult,
  type DecisionCommitter,
  type Hasher,
} from '@mandate/core';
import { BudgetBatch } from './budgets.ts';
import type { WalSync } from './wal-sync.ts';
import type { SQLInputValue } from 'node:sqlite';
import { checkLimit, nullable, num, str, type Sql } from './sql.ts';
import { auditFront, STORED_AUDIT_COLUMNS, storedAuditRecord, toAuditRecord } from '@mandate/store-sql';

const COLUMNS = 'INSERT INTO audit_log (seq, ts, kind, call_id, task_id, agent_id, txn, data, prev_hash, hash) VALUES ';
/** batches of at most this many entries commit with SQLite's own sync when no WAL sync is under way */
const INLINE_SYNC_MAX_ENTRIES = 4;
/** rows per INSERT statement: one statement per chunk instead of one per record */
const CHUNK = 16;
const INSERTS = Array.from({ length: CHUNK + 1 }, (_, rows) => COLUMNS + Array.from({ length: rows }, () => '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', '));
const insertSql = (rows: number): string => INSERTS[rows] as string;

/**
 * The audit log: append-only through this API (there is no update or delete). Appends are
 * group-committed; each batch reads the head and links the records inside the transaction that
 * inserts them, so another connection appending to the same file cannot fork the chain.
 */
export function sqliteAudit(sql: Sql, hasher: Hasher, schedule: (fn: () => void) => void, walSync?: WalSync) {

  /** links drafts after `head` and queues their rows for `insertRows` */
  const link = (head: { seq: number; hash: string } | undefined, drafts: readonly AuditDraft[], rows: AuditRecord[]): AuditRecord[] => {
    const records = linkRecords(head, drafts, hasher);
    for (const r of records) rows.push(r);
    return records;
  };

  /** the batch's rows, a statement per CHUNK of them */
  const insertRows = (rows: readonly AuditRecord[]): void => {
    for (let at = 0; at < rows.length; at += CHUNK) {
      const n = Math.min(CHUNK, rows.length - at);
      const params: SQLInputValue[] = [];
      for (let i = at; i < at + n; i++) {
        const r = rows[i] as AuditRecord;
        params.push(r.seq, r.ts, r.kind, nullable(r.callId), nullable(r.taskId), nullable(r.agentId), nullable(r.txn), canonicalJson(r.data), r.prevHash, r.hash);
      }
      sql.run(insertSql(n), ...params);
    }
  };

  /** One transaction for the whole batch: budgets spent and records linked in submission order. */
  const writeNow = (entries: readonly DecisionCommit[], deferSync = false): DecisionCommitResult[] => {
    try {
      if (!deferSync) return transact(entries);
      sql.db.exec('PRAGMA synchronous = NORMAL');
      try {
        return transact(entries);
      } finally {
        sql.db.exec('PRAGMA synchronous = FULL');
      }
    } catch (error) {
      throw new MandateError('AUDIT_UNAVAILABLE', `audit records were not committed: ${describeError(error)}`);
    }
  };

  const transact = (entries: readonly DecisionCommit[]): DecisionCommitResult[] =>
    sql.tx(() => {
      const headRow = sql.get('SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1');
      let head = headRow === undefined ? undefined : { seq: num(headRow, 'seq'), hash: str(headRow, 'hash') };
      const budgets = new BudgetBatch(sql);
      const rows: AuditRecord[] = [];
      const results = entries.map((e): DecisionCommitResult => {
        let drafts = e.drafts;
        let budget: DecisionCommitResult['budget'];
        if (e.budget) {
          budget = budgets.spend(e.budget.taskId, e.budget.tool, e.budget.limits);
          if (!budget.ok) drafts = e.budget.exhausted(budget.exhausted === 'tool' ? 'tool' : 'calls');
        }
        const records = link(head, drafts, rows);
        const last = records.at(-1);
        if (last) head = { seq: last.seq, hash: last.hash };
        return budget ? { records, budget } : { records };
      });
      insertRows(rows);
      budgets.flush();
      return results;
    });

  const front = auditFront(walSync ? (entries) => {
    // a small batch with no sync under way: SQLite syncs inside COMMIT, the quickest answer for
    // it (the thread pool's round trip costs more than the loop would do meanwhile)
    const inline = entries.length <= INLINE_SYNC_MAX_ENTRIES && walSync.idle();
    const results = writeNow(entries, !inline);
    walSync.wrote();
    if (inline) walSync.syncedInline();
    return results;
  } : writeNow, schedule);

  /**
   * With a WAL sync (durability full, on a file): the commit skips SQLite's own fsync, and each
   * caller is answered once the WAL is synced beside the event loop (wal-sync.ts). The group
   * commit does not wait for the sync: the next batch commits meanwhile. Every other write of
   * the store keeps SQLite's `FULL`.
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
