import type { SupervisionStore } from '@mandate/core';
import { checkLimit, num, optStr, type Db } from './db.ts';

/** the `action` record of an allowed call, byte for byte as the audit front writes it (canonical JSON) */
export const ALLOWED_ACTION = '{"effect":"allow","final":"allowed"}';

export function postgresSupervision(db: Db) {
  return {
    async initSupervision(taskId, jkt, at) {
      await db.run('INSERT INTO task_supervision (task_id, jkt, supervised_at) VALUES ($1, $2, $3) ON CONFLICT (task_id) DO NOTHING', [taskId, jkt ?? null, at]);
    },

    async getSupervision(taskId) {
      const r = await db.row('SELECT task_id, jkt, supervised_at FROM task_supervision WHERE task_id = $1', [taskId]);
      return r === undefined ? undefined : { taskId, jkt: optStr(r, 'jkt'), supervisedAt: num(r, 'supervised_at') };
    },

    async recordSupervision(taskId, at) {
      const r = await db.row('UPDATE task_supervision SET supervised_at = greatest(supervised_at, $2) WHERE task_id = $1 RETURNING task_id', [taskId, at]);
      return r !== undefined;
    },

    async listUnsupervised(before, limit) {
      const rows = await db.rows(
        `SELECT s.task_id FROM task_supervision s JOIN tasks t ON t.id = s.task_id
         WHERE t.state = 'active' AND s.supervised_at < $1 ORDER BY s.supervised_at, s.task_id LIMIT $2`,
        [before, checkLimit(limit)],
      );
      return rows.map((r) => String(r['task_id']));
    },

    async taskProgress(taskId) {
      const r = await db.row(
        `SELECT count(*)::integer AS n,
           (SELECT call_id FROM audit_log WHERE task_id = $1 AND kind = 'action' AND data = $2 ORDER BY seq DESC LIMIT 1) AS last
         FROM audit_log WHERE task_id = $1 AND kind = 'action' AND data = $2`,
        [taskId, ALLOWED_ACTION],
      );
      return { allowedCalls: r === undefined ? 0 : num(r, 'n'), lastCallId: r === undefined ? null : (optStr(r, 'last') ?? null) };
    },
  } satisfies SupervisionStore;
}
