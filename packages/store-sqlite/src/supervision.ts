import type { SupervisionStore } from '@mandate/core';
import { checkLimit, num, optStr, type Sql } from './sql.ts';

/** the `action` record of an allowed call, byte for byte as the audit front writes it (canonical JSON) */
export const ALLOWED_ACTION = '{"effect":"allow","final":"allowed"}';

export function sqliteSupervision(sql: Sql) {
  return {
    async initSupervision(taskId, jkt, at) {
      sql.run('INSERT INTO task_supervision (task_id, jkt, supervised_at) VALUES (?, ?, ?) ON CONFLICT (task_id) DO NOTHING', taskId, jkt ?? null, at);
    },

    async getSupervision(taskId) {
      const r = sql.get('SELECT task_id, jkt, supervised_at FROM task_supervision WHERE task_id = ?', taskId);
      return r === undefined ? undefined : { taskId, jkt: optStr(r, 'jkt'), supervisedAt: num(r, 'supervised_at') };
    },

    async recordSupervision(taskId, at) {
      sql.run('UPDATE task_supervision SET supervised_at = MAX(supervised_at, ?) WHERE task_id = ?', at, taskId);
      return sql.get('SELECT 1 AS one FROM task_supervision WHERE task_id = ?', taskId) !== undefined;
    },

    async listUnsupervised(before, limit) {
      return sql
        .all(
          `SELECT s.task_id FROM task_supervision s JOIN tasks t ON t.id = s.task_id
           WHERE t.state = 'active' AND s.supervised_at < ? ORDER BY s.supervised_at, s.task_id LIMIT ?`,
          before, checkLimit(limit),
        )
        .map((r) => String(r['task_id']));
    },

    async taskProgress(taskId) {
      const r = sql.get(
        `SELECT count(*) AS n,
           (SELECT call_id FROM audit_log WHERE task_id = ?1 AND kind = 'action' AND data = ?2 ORDER BY seq DESC LIMIT 1) AS last
         FROM audit_log WHERE task_id = ?1 AND kind = 'action' AND data = ?2`,
        taskId, ALLOWED_ACTION,
      );
      return { allowedCalls: r === undefined ? 0 : num(r, 'n'), lastCallId: r === undefined ? null : (optStr(r, 'last') ?? null) };
    },
  } satisfies SupervisionStore;
}
