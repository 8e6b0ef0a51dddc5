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
import { spendBudgets, type BudgetSpend } from './budgets.ts';
import { checkLimit, num, str, type Db, type Row } from './db.ts';
import { auditFront, STORED_AUDIT_COLUMNS, storedAuditRecord, toAuditRecord } from '@mandate/store-sql';

// One statement for the whole batch: the rows (as parallel arrays) and the new head.
const INSERT_AND_MOVE_HEAD = `
  WITH ins AS (
    INSERT INTO audit_log (seq, ts, kind, call_id, task_id, agent_id, txn, data, prev_hash, hash)
    SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[]))
  UPDATE audit_head SET seq = $11, hash = $12`;

function insertValues(records: readonly AuditRecord[]): unknown[] {
  const last = records.at(-1) as AuditRecord;
  return [
    records.map((r) => r.seq),
    records.map((r) => r.ts),
    records.map((r) => r.kind),
    records.map((r) => r.callId ?? null),
    records.map((r) => r.taskId ?? null),
    records.map((r) => r.agentId ?? null),
    records.map((r) => r.txn ?? null),
    records.map((r) => canonicalJson(r.data)),
    records.map((r) => r.prevHash),
    records.map((r) => r.hash),
    last.seq,
    last.hash,
  ];
}

/** PostgreSQL text cannot hold U+0000; refusing it up front keeps one bad draft from failing a whole batch */
function checkText(name: string, v: string | undefined): void {
  if (v !== undefined && v.includes('\u0000')) throw new TypeError(`audit ${name} must not contain U+0000`);
}

/** PostgreSQL's own rule on top of the shared checks: no U+0000 in text columns. */
function checkTexts(d: AuditDraft): void {
  checkText('kind', d.kind);
  checkText('callId', d.callId);
  checkText('taskId', d.taskId);
  checkText('agentId', d.agentId);
  checkText('txn', d.txn);
}

/**
 * The audit log: append-only through this API (there is no update or delete). Appends are
 * group-committed; each batch is one transaction that locks the one-row head (so batches from
 * every node take turns and the chain cannot fork), spends the budgets of its entries in order,
 * links the records after the head, inserts them and moves the head.
 */
export function postgresAudit(db: Db, hasher: Hasher, schedule: (fn: () => void) => void) {

  const writeBatch = async (entries: readonly DecisionCommit[]): Promise<DecisionCommitResult[]> => {
    try {
      return await db.tx(async (c) => {
        const headRow = (await c.query<Row>({ name: 'mandate_audit_head', text: 'SELECT seq, hash FROM audit_head FOR UPDATE' })).rows[0];
        if (headRow === undefined) throw new Error('the audit head row is missing');
        let head = { seq: num(headRow, 'seq'), hash: str(headRow, 'hash') };

        const claims = entries.flatMap((e) => (e.budget ? [e.budget] : []));
        const spent = await spendBudgets(c, claims);
        let next = 0;

        const all: AuditRecord[] = [];
        const results = entries.map((e): DecisionCommitResult => {
          let drafts = e.drafts;
          let budget: BudgetSpend | undefined;
          if (e.budget) {
            budget = spent[next++] as BudgetSpend;
            if (!budget.ok) drafts = e.budget.exhausted(budget.exhausted === 'tool' ? 'tool' : 'calls');
          }
          const records = linkRecords(head, drafts, hasher);
          const last = records.at(-1);
          if (last) head = { seq: last.seq, hash: last.hash };
          all.push(...records);
          return budget ? { records, budget } : { records };
        });
        if (all.length > 0) await c.query({ name: 'mandate_audit_insert', text: INSERT_AND_MOVE_HEAD, values: insertValues(all) });
        return results;
      });
    } catch (error) {
      throw new MandateError('AUDIT_UNAVAILABLE', `audit records were not committed: ${describeError(error)}`);
    }
  };

  const front = auditFront(writeBatch, schedule, checkTexts);

  const audit = {
    append: front.append,
    commitDecision: front.commitDecision,

    async head() {
      const r = await db.row('SELECT * FROM audit_log ORDER BY seq DESC LIMIT 1');
      return r === undefined ? undefined : toAuditRecord(r);
    },

    async readRange(fromSeq, limit) {
      return (await db.rows('SELECT * FROM audit_log WHERE seq >= $1 ORDER BY seq LIMIT $2', [fromSeq, checkLimit(limit)])).map(toAuditRecord);
    },

    async readStored(fromSeq, limit) {
      return (await db.arrays(`SELECT ${STORED_AUDIT_COLUMNS} FROM audit_log WHERE seq >= $1 ORDER BY seq LIMIT $2`, [fromSeq, checkLimit(limit)])).map(storedAuditRecord);
    },

    async readByTask(taskId, limit) {
      // by task only: call ids are chosen by agents and may equal another task's id
      return (await db.rows('SELECT * FROM audit_log WHERE task_id = $1 ORDER BY seq LIMIT $2', [taskId, checkLimit(limit)])).map(toAuditRecord);
    },
  } satisfies AuditAppender & AuditReader & DecisionCommitter;

  return {
    audit,
    /** refuses new appends and waits until every accepted one has committed or failed */
    drain: front.drain,
  };
}
