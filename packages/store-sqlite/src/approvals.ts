import type { Approval, ApprovalState, ApprovalStore } from '@mandate/core';
import type { SQLInputValue } from 'node:sqlite';
import { checkLimit, mapConstraint, nullable, num, toJson, type Sql } from './sql.ts';
import { toApproval } from '@mandate/store-sql';

const LIVE: readonly ApprovalState[] = ['pending', 'approved'];

export function sqliteApprovals(sql: Sql) {
  const get = (id: string): Approval | undefined => {
    const r = sql.get('SELECT * FROM approvals WHERE id = ?', id);
    return r === undefined ? undefined : toApproval(r);
  };
  const placeholders = (n: number) => Array.from({ length: n }, () => '?').join(', ');

  return {
    async createApproval(a) {
      try {
        sql.run(
          `INSERT INTO approvals (id, task_id, agent_id, tool, args_hash, resource, call_id, state, policy_ids, args,
             created_at, expires_at, decided_at, decided_by, reason, used_at, used_call_id)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          a.id, a.taskId, a.agentId, a.tool, a.argsHash, nullable(a.resource), a.callId, a.state, JSON.stringify(a.policyIds), toJson(a.args),
          a.createdAt, a.expiresAt, nullable(a.decidedAt), nullable(a.decidedBy), nullable(a.reason), nullable(a.usedAt), nullable(a.usedCallId),
        );
      } catch (error) {
        mapConstraint(error, `approval ${a.id}`);
      }
    },

    async getApproval(id) {
      return get(id);
    },

    async findApproval(taskId, tool, argsHash, now) {
      const r = sql.get(
        'SELECT * FROM approvals WHERE task_id = ? AND tool = ? AND args_hash = ? AND expires_at > ? ORDER BY created_at DESC, id DESC LIMIT 1',
        taskId, tool, argsHash, now,
      );
      return r === undefined ? undefined : toApproval(r);
    },

    async listApprovals({ limit, state, taskId, after }) {
      const where: string[] = [];
      const params: SQLInputValue[] = [];
      if (state !== undefined) {
        where.push('state = ?');
        params.push(state);
      }
      if (taskId !== undefined) {
        where.push('task_id = ?');
        params.push(taskId);
      }
      if (after !== undefined) {
        where.push('(created_at, id) > (SELECT created_at, id FROM approvals WHERE id = ?)');
        params.push(after);
      }
      const clause = where.length === 0 ? '' : `WHERE ${where.join(' AND ')}`;
      return sql.all(`SELECT * FROM approvals ${clause} ORDER BY created_at, id LIMIT ?`, ...params, checkLimit(limit)).map(toApproval);
    },

    async countPending(taskId, now) {
      const r = sql.get("SELECT COUNT(*) AS n FROM approvals WHERE task_id = ? AND state = 'pending' AND expires_at > ?", taskId, now);
      return r === undefined ? 0 : num(r, 'n');
    },

    async transitionApproval(id, from, to, patch) {
      return sql.tx(() => {
        const decided = to === 'approved' || to === 'denied';
        const used = to === 'used';
        const res = sql.run(
          `UPDATE approvals SET state = ?,
             decided_at = CASE WHEN ? THEN ? ELSE decided_at END,
             decided_by = CASE WHEN ? THEN ? ELSE decided_by END,
             reason = COALESCE(?, reason),
             used_at = CASE WHEN ? THEN ? ELSE used_at END,
             used_call_id = CASE WHEN ? THEN ? ELSE used_call_id END
           WHERE id = ? AND state IN (${placeholders(from.length)})`,
          to, decided ? 1 : 0, patch.at, decided ? 1 : 0, nullable(patch.by), nullable(patch.reason), used ? 1 : 0, patch.at, used ? 1 : 0, nullable(patch.callId),
          id, ...from,
        );
        return { changed: res === 1, approval: get(id) };
      });
    },

    async cancelForTasks(taskIds, at, reason) {
      if (taskIds.length === 0) return [];
      return sql.tx(() => {
        const rows = sql
          .all(`SELECT * FROM approvals WHERE task_id IN (${placeholders(taskIds.length)}) AND state IN ('pending', 'approved')`, ...taskIds)
          .map(toApproval);
        for (const a of rows) sql.run("UPDATE approvals SET state = 'cancelled', reason = ?, decided_at = COALESCE(decided_at, ?) WHERE id = ?", reason, at, a.id);
        return rows.map((a) => ({ ...a, state: 'cancelled' as const, reason, decidedAt: a.decidedAt ?? at }));
      });
    },

    async expireApprovals(now) {
      return sql.tx(() => {
        const rows = sql.all(`SELECT * FROM approvals WHERE state IN (${placeholders(LIVE.length)}) AND expires_at <= ?`, ...LIVE, now).map(toApproval);
        for (const a of rows) sql.run("UPDATE approvals SET state = 'expired' WHERE id = ?", a.id);
        return rows.map((a) => ({ ...a, state: 'expired' as const }));
      });
    },
  } satisfies ApprovalStore;
}
