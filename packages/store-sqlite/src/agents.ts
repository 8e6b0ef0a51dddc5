import { MandateError, type Agent, type AgentReader, type AgentWriter } from '@mandate/core';
import { checkLimit, mapConstraint, toJson, type Sql } from './sql.ts';
import { toAgent } from '@mandate/store-sql';

export function sqliteAgents(sql: Sql) {
  const get = (id: string): Agent | undefined => {
    const r = sql.get('SELECT * FROM agents WHERE id = ?', id);
    return r === undefined ? undefined : toAgent(r);
  };

  return {
    async getAgent(id) {
      return get(id);
    },

    async listAgents({ limit, after }) {
      const rows = after === undefined
        ? sql.all('SELECT * FROM agents ORDER BY id LIMIT ?', checkLimit(limit))
        : sql.all('SELECT * FROM agents WHERE id > ? ORDER BY id LIMIT ?', after, checkLimit(limit));
      return rows.map(toAgent);
    },

    async createAgent(a) {
      try {
        sql.run(
          'INSERT INTO agents (id, owner, type, status, ceiling, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
          a.id, a.owner, a.type, a.status, toJson(a.ceiling), a.createdAt, a.updatedAt,
        );
      } catch (error) {
        mapConstraint(error, `agent ${a.id}`);
      }
    },

    async updateAgent(id, patch, at) {
      return sql.tx(() => {
        const current = get(id);
        if (current === undefined) throw new MandateError('NOT_FOUND', `agent ${id} does not exist`);
        const next: Agent = {
          ...current,
          status: patch.status ?? current.status,
          owner: patch.owner ?? current.owner,
          type: patch.type ?? current.type,
          ceiling: patch.ceiling ?? current.ceiling,
          updatedAt: at,
        };
        sql.run(
          'UPDATE agents SET owner = ?, type = ?, status = ?, ceiling = ?, updated_at = ? WHERE id = ?',
          next.owner, next.type, next.status, toJson(next.ceiling), next.updatedAt, id,
        );
        return next;
      });
    },
  } satisfies AgentReader & AgentWriter;
}
