/**
 * One group commit's transaction, shared by the event loop's writer (audit.ts) and the commit
 * thread (commit-worker.ts): the chain head read, budgets spent and records linked in submission
 * order, all inside one BEGIN IMMEDIATE, so another connection appending to the same file cannot
 * fork the chain and a budget is counted exactly when its records commit.
 */
import type { AuditDraft, AuditRecord, DecisionCommit, DecisionCommitResult, Hasher } from '@mandate/core';
import { linkRecords } from '@mandate/core/chain-link';
import { canonicalJson } from '@mandate/core/json';
import type { SQLInputValue } from 'node:sqlite';
import { BudgetBatch } from './budgets.ts';
import { nullable, num, str, type Sql } from './sql.ts';

const COLUMNS = 'INSERT INTO audit_log (seq, ts, kind, call_id, task_id, agent_id, txn, data, prev_hash, hash) VALUES ';
/** rows per INSERT statement: one statement per chunk instead of one per record */
const CHUNK = 16;
const INSERTS = Array.from({ length: CHUNK + 1 }, (_, rows) => COLUMNS + Array.from({ length: rows }, () => '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', '));
const insertSql = (rows: number): string => INSERTS[rows] as string;

/** the batch's rows, a statement per CHUNK of them */
function insertRows(sql: Sql, rows: readonly AuditRecord[]): void {
  for (let at = 0; at < rows.length; at += CHUNK) {
    const n = Math.min(CHUNK, rows.length - at);
    const params: SQLInputValue[] = [];
    for (let i = at; i < at + n; i++) {
      const r = rows[i] as AuditRecord;
      params.push(r.seq, r.ts, r.kind, nullable(r.callId), nullable(r.taskId), nullable(r.agentId), nullable(r.txn), canonicalJson(r.data), r.prevHash, r.hash);
    }
    sql.run(insertSql(n), ...params);
  }
}

/**
 * Writes the whole batch in one transaction (committed by `sql.tx`); throws when nothing
 * committed. `beforeCommit` runs last inside the transaction: throwing there rolls it back.
 */
export function writeAuditBatch(sql: Sql, hasher: Hasher, entries: readonly DecisionCommit[], beforeCommit?: () => void): DecisionCommitResult[] {
  return sql.tx(() => {
    const headRow = sql.get('SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1');
    let head = headRow === undefined ? undefined : { seq: num(headRow, 'seq'), hash: str(headRow, 'hash') };
    const budgets = new BudgetBatch(sql);
    const rows: AuditRecord[] = [];
    const results = entries.map((e): DecisionCommitResult => {
      let drafts: readonly AuditDraft[] = e.drafts;
      let budget: DecisionCommitResult['budget'];
      if (e.budget) {
        budget = budgets.spend(e.budget.taskId, e.budget.tool, e.budget.limits);
        if (!budget.ok) drafts = e.budget.exhausted(budget.exhausted === 'tool' ? 'tool' : 'calls');
      }
      const records = linkRecords(head, drafts, hasher);
      for (const r of records) rows.push(r);
      const last = records.at(-1);
      if (last) head = { seq: last.seq, hash: last.hash };
      return budget ? { records, budget } : { records };
    });
    insertRows(sql, rows);
    budgets.flush();
    beforeCommit?.();
    return results;
  });
}
