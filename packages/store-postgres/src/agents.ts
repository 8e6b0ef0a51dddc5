import { MandateError, type AgentReader, type AgentWriter } from '@mandate/core';
import { checkLimit, mapConstraint, nullable, toJson, type Db } from './db.ts';
import { toAgent } from '@mandate/store-sql';

export function postgresAgents(db: Db) {
  return {
    async getAgent(id) {
      const r = await db.row('SELECT * FROM agents WHERE id = $1', [id]);
      return r === undefined ? undefined : toAgent(r);
    },

    async listAgents({ limit, after }) {
      const rows = after === undefined
        ? await db.rows('SELECT * FROM agents ORDER BY id LIMIT $1', [checkLimit(limit)])
        : await db.rows('SELECT * FROM agents WHERE id > $1 ORDER BY id LIMIT $2', [after, checkLimit(limit)]);
      return rows.map(toAgent);
    },

    async createAgent(a) {
      try {
        await db.run(
          'INSERT INTO agents (id, owner, type, status, ceiling, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)',
          [a.id, a.owner, a.type, a.status, toJson(a.ceiling), a.createdAt, a.updatedAt],
        );
      } catch (error) {
        mapConstraint(error, `agent ${a.id}`);
      }
    },

    async updateAgent(id, patch, at) {
      // one statement: the update and its entry in the change feed commit together
      const r = await db.row(
        `WITH a AS (
           UPDATE agents SET owner = coalesce($2, owner), type = coalesce($3, type), status = coalesce($4, status),
             ceiling = coalesce($5, ceiling), updated_at = $6
           WHERE id = $1 RETURNING *)
         SELECT a.*, record_changes('agent', ARRAY[a.id]) AS changes FROM a`,
        [id, nullable(patch.owner), nullable(patch.type), nullable(patch.status), patch.ceiling === undefined ? null : toJson(patch.ceiling), at],
      );
      if (r === undefined) throw new MandateError('NOT_FOUND', `agent ${id} does not exist`);
      return toAgent(r);
    },
  } satisfies AgentReader & AgentWriter;
}
