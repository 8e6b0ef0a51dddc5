import type { RevocationStore } from '@mandate/core';
import type { Db } from './db.ts';

/**
 * A revoked token is dead anyway once it expires, so its row may go after that; the grace
 * period keeps it while clocks of other nodes may still disagree about "expired".
 */
export const PRUNE_GRACE_MS = 24 * 60 * 60 * 1000;

export function postgresRevocations(db: Db) {
  return {
    async revokeToken(jti, taskId, expiresAt, reason, at) {
      // Revoking twice keeps the first reason, the earlier time and the later of the two expiries. The
      // prune skips rows another transaction holds, so it never waits (nor deadlocks), and the
      // feed entry is taken after the upsert's row lock (it reads ins first).
      await db.run(
        `WITH pruned AS (
           DELETE FROM revoked_tokens WHERE jti IN (
             SELECT jti FROM revoked_tokens WHERE expires_at < $6 AND jti <> $1 FOR UPDATE SKIP LOCKED)),
         ins AS (
           INSERT INTO revoked_tokens AS r (jti, task_id, expires_at, reason, revoked_at) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (jti) DO UPDATE SET expires_at = greatest(r.expires_at, excluded.expires_at), revoked_at = least(r.revoked_at, excluded.revoked_at) RETURNING jti)
         SELECT record_changes('revocation', ARRAY(SELECT jti FROM ins))`,
        [jti, taskId, expiresAt, reason, at, at - PRUNE_GRACE_MS],
      );
    },

    async useOnce(key, taskId, expiresAt, reason, at) {
      // the primary key decides: of concurrent inserts (any node) one inserts, the others see the
      // conflict and insert nothing. No change-feed entry: no node caches a used key as unused.
      const r = await db.row(
        `INSERT INTO revoked_tokens (jti, task_id, expires_at, reason, revoked_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (jti) DO NOTHING RETURNING jti`,
        [key, taskId, expiresAt, reason, at],
      );
      return r !== undefined;
    },

    async isTokenRevoked(jti, now) {
      if (now === undefined) return (await db.row('SELECT 1 AS revoked FROM revoked_tokens WHERE jti = $1', [jti])) !== undefined;
      return (await db.row('SELECT 1 AS revoked FROM revoked_tokens WHERE jti = $1 AND revoked_at <= $2', [jti, now])) !== undefined;
    },
  } satisfies RevocationStore;
}
