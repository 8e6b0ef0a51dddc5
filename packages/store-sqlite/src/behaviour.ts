import type { AlertStore, ContainmentLifts, ContainmentStore } from '@mandate/core';
import type { SQLInputValue } from 'node:sqlite';
import { ALERT_COLUMNS, alertColumns, SEVERITY_RANK, toAlert, toRestriction } from '@mandate/store-sql';
import { checkLimit, mapConstraint, nullable, type Sql } from './sql.ts';

export function sqliteAlerts(sql: Sql) {
  const get = (id: string) => {
    const r = sql.get('SELECT * FROM alerts WHERE id = ?', id);
    return r === undefined ? undefined : toAlert(r);
  };
  return {
    async createAlert(a) {
      try {
        sql.run(`INSERT INTO alerts (${ALERT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, ...(alertColumns(a) as SQLInputValue[]));
      } catch (error) {
        mapConstraint(error, `alert ${a.id}`);
      }
    },

    async getAlert(id) {
      return get(id);
    },

    async listAlerts({ limit, after, state, taskId, agentId, minSeverity }) {
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
      if (agentId !== undefined) {
        where.push('agent_id = ?');
        params.push(agentId);
      }
      if (minSeverity !== undefined) {
        where.push('severity_rank >= ?');
        params.push(SEVERITY_RANK[minSeverity]);
      }
      if (after !== undefined) {
        where.push('(ts, id) > (SELECT ts, id FROM alerts WHERE id = ?)');
        params.push(after);
      }
      const clause = where.length === 0 ? '' : `WHERE ${where.join(' AND ')}`;
      return sql.all(`SELECT * FROM alerts ${clause} ORDER BY ts, id LIMIT ?`, ...params, checkLimit(limit)).map(toAlert);
    },

    async ackAlert(id, by, at, note) {
      return sql.tx(() => {
        const n = sql.run("UPDATE alerts SET state = 'acknowledged', acked_by = ?, acked_at = ?, ack_note = ? WHERE id = ? AND state = 'open'", by, at, nullable(note), id);
        return { changed: n === 1, alert: get(id) };
      });
    },
  } satisfies AlertStore;
}

export function sqliteContainment(sql: Sql) {
  return {
    async addRestrictions(rows) {
      if (rows.length === 0) return;
      sql.tx(() => {
        for (const r of rows) {
          sql.run(
            `INSERT INTO containment (task_id, action, tool, agent_id, detector, call_id, reason, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (task_id, action, tool) DO NOTHING`,
            r.taskId, r.action, r.tool, r.agentId, r.detector, r.callId, r.reason, r.createdAt,
          );
        }
      });
    },

    async listRestrictions(taskId) {
      return sql.all('SELECT * FROM containment WHERE task_id = ? ORDER BY created_at, action, tool', taskId).map(toRestriction);
    },

    async liftRestrictions(taskId, rows) {
      if (rows.length === 0) return [];
      return sql.tx(() => {
        const lifted = [];
        for (const r of rows) {
          const row = sql.get('DELETE FROM containment WHERE task_id = ? AND action = ? AND tool = ? AND created_at = ? RETURNING *', taskId, r.action, r.tool, r.createdAt);
          if (row !== undefined) lifted.push(toRestriction(row));
        }
        return lifted;
      });
    },
  } satisfies ContainmentStore & ContainmentLifts;
}
