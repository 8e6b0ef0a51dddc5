import type { RevocationStore } from '@mandate/core';
import type { Sql } from './sql.ts';

/**
 * A revoked token is dead anyway once it expires, so its row may go after that; the grace
 * period keeps it while clocks of other nodes may still disagree about "expired".
 */
export const PRUNE_GRACE_MS = 24 * 60 * 60 * 1000;

export function sqliteRevocations(sql: Sql) {
  return {
    async revokeToken(jti, taskId, expiresAt, reason, at) {
      sql.tx(() => {
        // revoking twice keeps the first reason, the earlier time and the later of the two expiries
        sql.run(
          `INSERT INTO revoked_tokens (jti, task_id, expires_at, reason, revoked_at) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (jti) DO UPDATE SET expires_at = MAX(expires_at, excluded.expires_at), revoked_at = MIN(revoked_at, excluded.revoked_at)`,
          jti, taskId, expiresAt, reason, at,
        );
        sql.run('DELETE FROM revoked_tokens WHERE expires_at < ? AND jti <> ?', at - PRUNE_GRACE_MS, jti);
      });
    },

    async useOnce(key, taskId, expiresAt, reason, at) {
      // one connection, one statement: the insert is the check (a row there means used)
      return sql.tx(() => {
        sql.run('DELETE FROM revoked_tokens WHERE expires_at < ? AND jti <> ?', at - PRUNE_GRACE_MS, key);
        return sql.run('INSERT INTO revoked_tokens (jti, task_id, expires_at, reason, revoked_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (jti) DO NOTHING', key, taskId, expiresAt, reason, at) === 1;
      });
    },

    async isTokenRevoked(jti, now) {
      if (now === undefined) return sql.get('SELECT 1 AS revoked FROM revoked_tokens WHERE jti = ?', jti) !== undefined;
      return sql.get('SELECT 1 AS revoked FROM revoked_tokens WHERE jti = ? AND revoked_at <= ?', jti, now) !== undefined;
    },
  } satisfies RevocationStore;
}
