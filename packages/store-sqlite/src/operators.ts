import type { OperatorKeyStore } from '@mandate/core';
import { mapConstraint, nullable, type Sql } from './sql.ts';
import { toOperatorKey } from '@mandate/store-sql';

export function sqliteOperators(sql: Sql) {
  return {
    async createOperatorKey(k) {
      try {
        sql.run(
          'INSERT INTO operator_keys (id, name, role, secret_hash, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?)',
          k.id, k.name, k.role, k.secretHash, k.createdAt, nullable(k.revokedAt),
        );
      } catch (error) {
        mapConstraint(error, `operator key ${k.id} (or its secret)`);
      }
    },

    async findOperatorKeyByHash(secretHash) {
      // a revoked key must never authenticate, so the filter lives here and not in callers
      const r = sql.get('SELECT * FROM operator_keys WHERE secret_hash = ? AND revoked_at IS NULL', secretHash);
      return r === undefined ? undefined : toOperatorKey(r);
    },

    async listOperatorKeys() {
      return sql.all('SELECT * FROM operator_keys ORDER BY created_at, id').map(toOperatorKey);
    },

    async revokeOperatorKey(id, at) {
      return sql.run('UPDATE operator_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL', at, id) > 0;
    },
  } satisfies OperatorKeyStore;
}
