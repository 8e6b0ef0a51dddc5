import { TERMINAL_TASK_STATES, type Task, type TaskReader, type TaskWriter } from '@mandate/core';
import { checkLimit, mapConstraint, nullable, toJson, type Db } from './db.ts';
import { toTask } from '@mandate/store-sql';

/** wraps a single-row UPDATE … RETURNING * so the changed row is recorded in the change feed */
export function withChange(kind: string, update: string): string {
  return `WITH u AS (${update} RETURNING *) SELECT u.*, record_changes('${kind}', ARRAY[u.id]) AS changes FROM u`;
}

export function postgresTasks(db: Db) {
  const get = async (id: string): Promise<Task | undefined> => {
    const r = await db.row('SELECT * FROM tasks WHERE id = $1', [id]);
    return r === undefined ? undefined : toTask(r);
  };

  return {
    getTask: get,

    async listTasks({ limit, agentId, state, after }) {
      const where: string[] = [];
      const params: unknown[] = [];
      const param = (v: unknown): string => {
        params.push(v);
        return `$${params.length}`;
      };
      if (agentId !== undefined) where.push(`agent_id = ${param(agentId)}`);
      if (state !== undefined) where.push(`state = ${param(state)}`);
      // keyset paging on (created_at, id); an unknown cursor yields no rows rather than page one
      if (after !== undefined) where.push(`(created_at, id) > (SELECT created_at, id FROM tasks WHERE id = ${param(after)})`);
      const clause = where.length === 0 ? '' : `WHERE ${where.join(' AND ')}`;
      const rows = await db.rows(`SELECT * FROM tasks ${clause} ORDER BY created_at, id LIMIT ${param(checkLimit(limit))}`, params);
      return rows.map(toTask);
    },

    async listChildren(parentId) {
      return (await db.rows('SELECT * FROM tasks WHERE parent_id = $1 ORDER BY created_at, id', [parentId])).map(toTask);
    },

    async createTask(t) {
      try {
        await db.run(
          `INSERT INTO tasks (id, agent_id, mandate, mandate_hash, state, txn, parent_id, depth, created_at,
             expires_at, max_expires_at, ended_at, end_reason)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
          [
            t.id, t.agentId, toJson(t.mandate), t.mandateHash, t.state, t.txn, nullable(t.parentId), t.depth, t.createdAt,
            t.expiresAt, t.maxExpiresAt, nullable(t.endedAt), nullable(t.endReason),
          ],
        );
      } catch (error) {
        mapConstraint(error, `task ${t.id}`);
      }
    },

    async transitionTask(id, from, to, at, reason) {
      if (from.length === 0) return { changed: false, task: await get(id) };
      // The state check and the write are one statement, so two racing callers cannot both win.
      const r = TERMINAL_TASK_STATES.has(to)
        ? await db.row(
          withChange('task', 'UPDATE tasks SET state = $2, ended_at = $3, end_reason = $4 WHERE id = $1 AND state = ANY($5::text[])'),
          [id, to, at, reason, from],
        )
        : await db.row(withChange('task', 'UPDATE tasks SET state = $2 WHERE id = $1 AND state = ANY($3::text[])'), [id, to, from]);
      return r === undefined ? { changed: false, task: await get(id) } : { changed: true, task: toTask(r) };
    },

    async extendTask(id, expiresAt) {
      // forward only, capped at the hard end of life, and only while the task is active;
      // the feed hears of it only when the expiry really moved
      const r = await db.row(
        withChange(
          'task',
          `UPDATE tasks SET expires_at = least(greatest(expires_at, $2), max_expires_at)
           WHERE id = $1 AND state = 'active' AND expires_at <> least(greatest(expires_at, $2), max_expires_at)`,
        ),
        [id, expiresAt],
      );
      return r === undefined ? get(id) : toTask(r);
    },
  } satisfies TaskReader & TaskWriter;
}
