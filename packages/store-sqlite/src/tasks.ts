import { TERMINAL_TASK_STATES, type Task, type TaskReader, type TaskWriter } from '@mandate/core';
import type { SQLInputValue } from 'node:sqlite';
import { checkLimit, mapConstraint, nullable, toJson, type Sql } from './sql.ts';
import { toTask } from '@mandate/store-sql';

export function sqliteTasks(sql: Sql) {
  const get = (id: string): Task | undefined => {
    const r = sql.get('SELECT * FROM tasks WHERE id = ?', id);
    return r === undefined ? undefined : toTask(r);
  };

  return {
    async getTask(id) {
      return get(id);
    },

    async listTasks({ limit, agentId, state, after }) {
      const where: string[] = [];
      const params: SQLInputValue[] = [];
      if (agentId !== undefined) {
        where.push('agent_id = ?');
        params.push(agentId);
      }
      if (state !== undefined) {
        where.push('state = ?');
        params.push(state);
      }
      if (after !== undefined) {
        // keyset paging on (created_at, id); an unknown cursor yields no rows rather than page one
        where.push('(created_at, id) > (SELECT created_at, id FROM tasks WHERE id = ?)');
        params.push(after);
      }
      const clause = where.length === 0 ? '' : `WHERE ${where.join(' AND ')}`;
      return sql.all(`SELECT * FROM tasks ${clause} ORDER BY created_at, id LIMIT ?`, ...params, checkLimit(limit)).map(toTask);
    },

    async listChildren(parentId) {
      return sql.all('SELECT * FROM tasks WHERE parent_id = ? ORDER BY created_at, id', parentId).map(toTask);
    },

    async createTask(t) {
      try {
        sql.run(
          `INSERT INTO tasks (id, agent_id, mandate, mandate_hash, state, txn, parent_id, depth, created_at,
             expires_at, max_expires_at, ended_at, end_reason)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          t.id, t.agentId, toJson(t.mandate), t.mandateHash, t.state, t.txn, nullable(t.parentId), t.depth, t.createdAt,
          t.expiresAt, t.maxExpiresAt, nullable(t.endedAt), nullable(t.endReason),
        );
      } catch (error) {
        mapConstraint(error, `task ${t.id}`);
      }
    },

    async transitionTask(id, from, to, at, reason) {
      if (from.length === 0) return { changed: false, task: get(id) };
      // The state check and the write are one statement, so two racing callers cannot both win.
      const inList = from.map(() => '?').join(', ');
      const changes = TERMINAL_TASK_STATES.has(to)
        ? sql.run(`UPDATE tasks SET state = ?, ended_at = ?, end_reason = ? WHERE id = ? AND state IN (${inList})`, to, at, reason, id, ...from)
        : sql.run(`UPDATE tasks SET state = ? WHERE id = ? AND state IN (${inList})`, to, id, ...from);
      return { changed: changes > 0, task: get(id) };
    },

    async extendTask(id, expiresAt) {
      // forward only, capped at the hard end of life, and only while the task is active
      sql.run(
        `UPDATE tasks SET expires_at = MIN(MAX(expires_at, ?), max_expires_at) WHERE id = ? AND state = 'active'`,
        expiresAt, id,
      );
      return get(id);
    },
  } satisfies TaskReader & TaskWriter;
}
