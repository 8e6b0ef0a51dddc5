import type { OperatorKeyStore } from '@mandate/core';
import { mapConstraint, nullable, type Db } from './db.ts';
import { toOperatorKey } from '@mandate/store-sql';

export function postgresOperators(db: Db) {
  return {
    async createOperatorKey(k) {
      try {
        await db.run(
          'INSERT INTO operator_keys (id, name, role, secret_hash, created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6)',
          [k.id, k.name, k.role, k.secretHash, k.createdAt, nullable(k.revokedAt)],
        );
      } catch (error) {
        mapConstraint(error, `operator key ${k.id} (or its secret)`);
      }
    },

    async findOperatorKeyByHash(secretHash) {
      // a revoked key must never authenticate, so the filter lives here and not in callers
      const r = await db.row('SELECT * FROM operator_keys WHERE secret_hash = $1 AND revoked_at IS NULL', [secretHash]);
      return r === undefined ? undefined : toOperatorKey(r);
    },

    async listOperatorKeys() {
      return (await db.rows('SELECT * FROM operator_keys ORDER BY created_at, id')).map(toOperatorKey);
    },

    async revokeOperatorKey(id, at) {
      return (await db.run('UPDATE operator_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL', [id, at])) > 0;
    },
  } satisfies OperatorKeyStore;
}
