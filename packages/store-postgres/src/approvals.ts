import type { Approval, ApprovalStore } from '@mandate/core';
import { checkLimit, mapConstraint, nullable, num, toJson, type Db, type Row } from './db.ts';
import { withChange } from './tasks.ts';
import { toApproval } from '@mandate/store-sql';

const byCreation = (a: Approval, b: Approval): number => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

export function postgresApprovals(db: Db) {
  const get = async (id: string): Promise<Approval | undefined> => {
    const r = await db.row('SELECT * FROM approvals WHERE id = $1', [id]);
    return r === undefined ? undefined : toApproval(r);
  };

  /** a multi-row state change and its feed entries, in one transaction (the feed entry last) */
  const changeMany = async (update: string, values: unknown[]): Promise<Approval[]> =>
    db.tx(async (c) => {
      const rows = (await c.query<Row>(`${update} RETURNING *`, values)).rows.map(toApproval).sort(byCreation);
      await c.query("SELECT record_changes('approval', $1::text[])", [rows.map((a) => a.id)]);
      return rows;
    });

  return {
    async createApproval(a) {
      try {
        await db.run(
          `INSERT INTO approvals (id, task_id, agent_id, tool, args_hash, resource, call_id, state, policy_ids, args,
             created_at, expires_at, decided_at, decided_by, reason, used_at, used_call_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
          [
            a.id, a.taskId, a.agentId, a.tool, a.argsHash, nullable(a.resource), a.callId, a.state, JSON.stringify(a.policyIds), toJson(a.args),
            a.createdAt, a.expiresAt, nullable(a.decidedAt), nullable(a.decidedBy), nullable(a.reason), nullable(a.usedAt), nullable(a.usedCallId),
          ],
        );
      } catch (error) {
        mapConstraint(error, `approval ${a.id}`);
      }
    },

    getApproval: get,

    async findApproval(taskId, tool, argsHash, now) {
      const r = await db.row(
        'SELECT * FROM approvals WHERE task_id = $1 AND tool = $2 AND args_hash = $3 AND expires_at > $4 ORDER BY created_at DESC, id DESC LIMIT 1',
        [taskId, tool, argsHash, now],
      );
      return r === undefined ? undefined : toApproval(r);
    },

    async listApprovals({ limit, state, taskId, after }) {
      const where: string[] = [];
      const params: unknown[] = [];
      const param = (v: unknown): string => {
        params.push(v);
        return `$${params.length}`;
      };
      if (state !== undefined) where.push(`state = ${param(state)}`);
      if (taskId !== undefined) where.push(`task_id = ${param(taskId)}`);
      if (after !== undefined) where.push(`(created_at, id) > (SELECT created_at, id FROM approvals WHERE id = ${param(after)})`);
      const clause = where.length === 0 ? '' : `WHERE ${where.join(' AND ')}`;
      return (await db.rows(`SELECT * FROM approvals ${clause} ORDER BY created_at, id LIMIT ${param(checkLimit(limit))}`, params)).map(toApproval);
    },

    async countPending(taskId, now) {
      const r = await db.row("SELECT count(*) AS n FROM approvals WHERE task_id = $1 AND state = 'pending' AND expires_at > $2", [taskId, now]);
      return r === undefined ? 0 : num(r, 'n');
    },

    async transitionApproval(id, from, to, patch) {
      if (from.length === 0) return { changed: false, approval: await get(id) };
      // the state check and the write are one statement: a single-use approval is used once
      const set = ['state = $2', 'reason = coalesce($3, reason)'];
      const values: unknown[] = [id, to, nullable(patch.reason), from];
      if (to === 'approved' || to === 'denied') {
        values.push(patch.at, nullable(patch.by));
        set.push(`decided_at = $${values.length - 1}`, `decided_by = $${values.length}`);
      }
      if (to === 'used') {
        values.push(patch.at, nullable(patch.callId));
        set.push(`used_at = $${values.length - 1}`, `used_call_id = $${values.length}`);
      }
      const r = await db.row(withChange('approval', `UPDATE approvals SET ${set.join(', ')} WHERE id = $1 AND state = ANY($4::text[])`), values);
      return r === undefined ? { changed: false, approval: await get(id) } : { changed: true, approval: toApproval(r) };
    },

    async cancelForTasks(taskIds, at, reason) {
      if (taskIds.length === 0) return [];
      return changeMany(
        `UPDATE approvals SET state = 'cancelled', reason = $2, decided_at = coalesce(decided_at, $3)
         WHERE task_id = ANY($1::text[]) AND state IN ('pending', 'approved')`,
        [taskIds, reason, at],
      );
    },

    async expireApprovals(now) {
      return changeMany("UPDATE approvals SET state = 'expired' WHERE state IN ('pending', 'approved') AND expires_at <= $1", [now]);
    },
  } satisfies ApprovalStore;
}
