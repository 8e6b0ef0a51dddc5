import {
  canonicalJson,
  describeError,
  GroupCommit,
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
import { spendBudget } from './budgets.ts';
import { checkLimit, nullable, num, str, type Sql } from './sql.ts';
import { toAuditRecord } from '@mandate/store-sql';

const INSERT = `INSERT INTO audit_log (seq, ts, kind, call_id, task_id, agent_id, txn, data, prev_hash, hash)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`;

/**
 * The audit log: append-only through this API (there is no update or delete). Appends are
 * group-committed; each batch reads the head and links the records inside the transaction that
 * inserts them, so another connection appending to the same file cannot fork the chain.
 */
export function sqliteAudit(sql: Sql, hasher: Hasher, schedule: (fn: () => void) => void) {
  const inFlight = new Set<Promise<unknown>>();
  let closed = false;

  const insert = (head: { seq: number; hash: string } | undefined, drafts: readonly AuditDraft[]): AuditRecord[] => {
    const records = linkRecords(head, drafts, hasher);
    for (const r of records) {
      sql.run(
        INSERT,
        r.seq, r.ts, r.kind, nullable(r.callId), nullable(r.taskId), nullable(r.agentId), nullable(r.txn),
        canonicalJson(r.data), r.prevHash, r.hash,
      );
    }
    return records;
  };

  /** One transaction for the whole batch: budgets spent and records linked in submission order. */
  const writeBatch = (entries: readonly DecisionCommit[]): DecisionCommitResult[] => {
    try {
      return sql.tx(() => {
        const headRow = sql.get('SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1');
        let head = headRow === undefined ? undefined : { seq: num(headRow, 'seq'), hash: str(headRow, 'hash') };
        return entries.map((e): DecisionCommitResult => {
          let drafts = e.drafts;
          let budget: DecisionCommitResult['budget'];
          if (e.budget) {
            budget = spendBudget(sql, e.budget.taskId, e.budget.tool, e.budget.limits);
            if (!budget.ok) drafts = budget.exhausted === 'tool' ? e.budget.exhausted.tool : e.budget.exhausted.calls;
          }
          const records = insert(head, drafts);
          const last = records.at(-1);
          if (last) head = { seq: last.seq, hash: last.hash };
          return budget ? { records, budget } : { records };
        });
      });
    } catch (error) {
      throw new MandateError('AUDIT_UNAVAILABLE', `audit records were not committed: ${describeError(error)}`);
    }
  };

  const group = new GroupCommit(writeBatch, schedule);

  /** Checked per caller before joining a group: a draft that cannot be stored would otherwise fail every entry committed with it. */
  const check = (drafts: readonly AuditDraft[]): void => {
    for (const d of drafts) {
      if (!Number.isSafeInteger(d.ts)) throw new TypeError(`audit ts must be integer milliseconds, got ${String(d.ts)}`);
      canonicalJson(d.data);
    }
  };

  const submit = async (entry: DecisionCommit): Promise<DecisionCommitResult> => {
    if (closed) throw new MandateError('AUDIT_UNAVAILABLE', 'the store is closed');
    check(entry.drafts);
    if (entry.budget) {
      check(entry.budget.exhausted.calls);
      check(entry.budget.exhausted.tool);
    }
    const p = group.submit(entry);
    inFlight.add(p);
    try {
      return await p;
    } finally {
      inFlight.delete(p);
    }
  };

  const audit = {
    async append(drafts) {
      if (drafts.length === 0) return [];
      return (await submit({ drafts })).records;
    },

    commitDecision(entry) {
      return submit(entry);
    },

    async head() {
      const r = sql.get('SELECT * FROM audit_log ORDER BY seq DESC LIMIT 1');
      return r === undefined ? undefined : toAuditRecord(r);
    },

    async readRange(fromSeq, limit) {
      return sql.all('SELECT * FROM audit_log WHERE seq >= ? ORDER BY seq LIMIT ?', fromSeq, checkLimit(limit)).map(toAuditRecord);
    },

    async readByTask(taskId, limit) {
      return sql
        .all('SELECT * FROM audit_log WHERE task_id = ? OR call_id = ? ORDER BY seq LIMIT ?', taskId, taskId, checkLimit(limit))
        .map(toAuditRecord);
    },
  } satisfies AuditAppender & AuditReader & DecisionCommitter;

  return {
    audit,
    /** refuses new appends and waits until every accepted one has committed or failed */
    async drain(): Promise<void> {
      closed = true;
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    },
  };
}
