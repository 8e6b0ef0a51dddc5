/**
 * One group commit's transaction, shared by the event loop's writer (audit.ts) and the commit
 * thread (commit-worker.ts): the chain head read, budgets spent and records linked in submission
 * order, all inside one BEGIN IMMEDIATE, so another connection appending to the same file cannot
 * fork the chain and a budget is counted exactly when its records commit.
 *
 * A record's data is written as canonical text once, for its hash and its row alike (TextDraft):
 * the event loop's writer takes it from the draft (a sealed value's text is cached), the commit
 * thread receives it as text (a structured clone would drop the cache and cost more than the text).
 */
import type { AuditDraft, AuditRecord, BudgetLimits, DecisionCommit, DecisionCommitResult, Hasher } from '@mandate/core';
import { GENESIS_HASH, linkDrafts, type ChainHead } from '@mandate/core/chain-link';
import { canonicalJson } from '@mandate/core/json';
import type { SQLInputValue } from 'node:sqlite';
import { BudgetBatch } from './budgets.ts';
import { nullable, num, str, type Sql } from './sql.ts';

const COLUMNS = 'INSERT INTO audit_log (seq, ts, kind, call_id, task_id, agent_id, txn, data, prev_hash, hash) VALUES ';
/** rows per INSERT statement: one statement per chunk instead of one per record */
const CHUNK = 16;
const INSERTS = Array.from({ length: CHUNK + 1 }, (_, rows) => COLUMNS + Array.from({ length: rows }, () => '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', '));
const insertSql = (rows: number): string => INSERTS[rows] as string;

/** A draft with its data as canonical JSON text. */
export interface TextDraft extends Omit<AuditDraft, 'data'> {
  readonly dataText: string;
}

export interface TextCommit {
  readonly drafts: readonly TextDraft[];
  readonly budget?: { readonly taskId: string; readonly tool: string; readonly limits: BudgetLimits; exhausted(which: 'calls' | 'tool'): readonly TextDraft[] };
}

export type BudgetOutcome = NonNullable<DecisionCommitResult['budget']>;

/** What one entry became: the drafts written (its own or its budget's exhausted ones), linked. */
export interface LinkedEntry {
  readonly drafts: readonly TextDraft[];
  /** the first record's number and previous hash (the chain head before the entry) */
  readonly seq: number;
  readonly prevHash: string;
  readonly hashes: readonly string[];
  readonly budget?: BudgetOutcome;
}

interface Row {
  readonly d: TextDraft;
  readonly seq: number;
  readonly prevHash: string;
  readonly hash: string;
}

/** the batch's rows, a statement per CHUNK of them */
function insertRows(sql: Sql, rows: readonly Row[]): void {
  for (let at = 0; at < rows.length; at += CHUNK) {
    const n = Math.min(CHUNK, rows.length - at);
    const params: SQLInputValue[] = [];
    for (let i = at; i < at + n; i++) {
      const { d, seq, prevHash, hash } = rows[i] as Row;
      params.push(seq, d.ts, d.kind, nullable(d.callId), nullable(d.taskId), nullable(d.agentId), nullable(d.txn), d.dataText, prevHash, hash);
    }
    sql.run(insertSql(n), ...params);
  }
}

/**
 * Writes the whole batch in one transaction (committed by `sql.tx`); throws when nothing
 * committed. `beforeCommit` runs last inside the transaction: throwing there rolls it back.
 */
export function writeTextBatch(sql: Sql, hasher: Hasher, entries: readonly TextCommit[], beforeCommit?: () => void): LinkedEntry[] {
  return sql.tx(() => {
    const headRow = sql.get('SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1');
    let head: ChainHead | undefined = headRow === undefined ? undefined : { seq: num(headRow, 'seq'), hash: str(headRow, 'hash') };
    const budgets = new BudgetBatch(sql);
    const rows: Row[] = [];
    const results = entries.map((e): LinkedEntry => {
      let drafts = e.drafts;
      let budget: BudgetOutcome | undefined;
      if (e.budget) {
        budget = budgets.spend(e.budget.taskId, e.budget.tool, e.budget.limits);
        if (!budget.ok) drafts = e.budget.exhausted(budget.exhausted === 'tool' ? 'tool' : 'calls');
      }
      const first = { seq: (head?.seq ?? 0) + 1, prevHash: head?.hash ?? GENESIS_HASH };
      const hashes: string[] = [];
      head = linkDrafts(head, drafts, (d) => d.dataText, hasher, (d, seq, prevHash, hash) => {
        rows.push({ d, seq, prevHash, hash });
        hashes.push(hash);
      });
      return budget ? { drafts, ...first, hashes, budget } : { drafts, ...first, hashes };
    });
    insertRows(sql, rows);
    budgets.flush();
    beforeCommit?.();
    return results;
  });
}

/** A draft's data as canonical text (a sealed value's is cached): once per draft. */
export function textDraft(d: AuditDraft): TextDraft {
  return { kind: d.kind, ts: d.ts, callId: d.callId, taskId: d.taskId, agentId: d.agentId, txn: d.txn, dataText: canonicalJson(d.data) };
}

/** The records as linked: the caller's drafts (values), with their numbers and hashes. */
export function auditRecords(drafts: readonly AuditDraft[], linked: Pick<LinkedEntry, 'seq' | 'prevHash' | 'hashes'>): AuditRecord[] {
  let prevHash = linked.prevHash;
  return drafts.map((d, k): AuditRecord => {
    const hash = linked.hashes[k] as string;
    const rec: AuditRecord = { kind: d.kind, ts: d.ts, callId: d.callId, taskId: d.taskId, agentId: d.agentId, txn: d.txn, data: d.data, seq: linked.seq + k, prevHash, hash };
    prevHash = hash;
    return rec;
  });
}

/** `writeTextBatch` for drafts with values (the event loop's writer), answering with full records. */
export function writeAuditBatch(sql: Sql, hasher: Hasher, entries: readonly DecisionCommit[], beforeCommit?: () => void): DecisionCommitResult[] {
  const used = entries.map((e) => e.drafts);
  const linked = writeTextBatch(
    sql,
    hasher,
    entries.map((e, i): TextCommit => {
      const b = e.budget;
      const drafts = e.drafts.map(textDraft);
      if (!b) return { drafts };
      return {
        drafts,
        budget: {
          taskId: b.taskId,
          tool: b.tool,
          limits: b.limits,
          exhausted: (which) => {
            const ds = b.exhausted(which);
            used[i] = ds;
            return ds.map(textDraft);
          },
        },
      };
    }),
    beforeCommit,
  );
  return linked.map((l, i): DecisionCommitResult => {
    const records = auditRecords(used[i] as readonly AuditDraft[], l);
    return l.budget ? { records, budget: l.budget } : { records };
  });
}
