import type { AlertSinkStore, AlertStore, ContainmentLifts, ContainmentStore } from '@mandate/core';
import type { SQLInputValue } from 'node:sqlite';
import { ALERT_COLUMNS, alertColumns, SEVERITY_RANK, toAlert, toAlertSink, toRestriction } from '@mandate/store-sql';
import { checkLimit, mapConstraint, nullable, type Sql } from './sql.ts';

export function sqliteAlerts(sql: Sql) {
  const get = (id: string) => {
    const r = sql.get('SELECT * FROM alerts WHERE id = ?', id);
    return r === undefined ? undefined : toAlert(r);
  };
  return {
    async createAlert(a) {
      try {
        // its place in the store's order: one writer, so the next number is the commit order
        sql.run(
          `INSERT INTO alerts (${ALERT_COLUMNS}, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM alerts))`,
          ...(alertColumns(a) as SQLInputValue[]),
        );
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

export function sqliteAlertSinks(sql: Sql) {
  const sinkState = (sink: string) => {
    const r = sql.get('SELECT * FROM alert_sinks WHERE sink = ?', sink);
    return r === undefined ? undefined : toAlertSink(r);
  };
  return {
    async alertHead() {
      return Number(sql.get('SELECT COALESCE(MAX(seq), 0) AS head FROM alerts')?.['head'] ?? 0);
    },

    async alertsAfter(after, limit) {
      return sql.all('SELECT * FROM alerts WHERE seq > ? ORDER BY seq LIMIT ?', after, checkLimit(limit)).map((r) => ({ seq: Number(r['seq']), alert: toAlert(r) }));
    },

    async openSink(sink, now) {
      sql.run('INSERT INTO alert_sinks (sink, cursor, updated_at) VALUES (?, (SELECT COALESCE(MAX(seq), 0) FROM alerts), ?) ON CONFLICT (sink) DO NOTHING', sink, now);
      const state = sinkState(sink);
      if (state === undefined) throw new Error(`alert sink ${sink} could not be opened`);
      return state;
    },

    async claimSink(sink, owner, now, until) {
      const r = sql.get(
        'UPDATE alert_sinks SET owner = ?, lease_until = ?, updated_at = ? WHERE sink = ? AND (owner IS NULL OR owner = ? OR lease_until <= ?) RETURNING *',
        owner, until, now, sink, owner, now,
      );
      return r === undefined ? undefined : toAlertSink(r);
    },

    async advanceSink(sink, owner, to, counts, lastError, now) {
      const n = sql.run(
        'UPDATE alert_sinks SET cursor = MAX(cursor, ?), delivered = delivered + ?, dropped = dropped + ?, last_error = ?, updated_at = ? WHERE sink = ? AND owner = ?',
        to, counts.delivered, counts.dropped, nullable(lastError), now, sink, owner,
      );
      return n === 1;
    },

    async releaseSink(sink, owner) {
      sql.run('UPDATE alert_sinks SET owner = NULL, lease_until = 0 WHERE sink = ? AND owner = ?', sink, owner);
    },

    async listSinks() {
      return sql.all('SELECT * FROM alert_sinks ORDER BY sink').map(toAlertSink);
    },
  } satisfies AlertSinkStore;
}
