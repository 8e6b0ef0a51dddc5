import type { CheckpointStore } from '@mandate/core';
import { type Db } from './db.ts';
import { toCheckpoint } from '@mandate/store-sql';

export function postgresCheckpoints(db: Db) {
  return {
    async addCheckpoint(cp) {
      await db.run('INSERT INTO checkpoints (seq, head_hash, ts, kid, signature) VALUES ($1, $2, $3, $4, $5)', [cp.seq, cp.headHash, cp.ts, cp.kid, cp.signature]);
    },

    async listCheckpoints() {
      return (await db.rows('SELECT * FROM checkpoints ORDER BY seq, id')).map(toCheckpoint);
    },
  } satisfies CheckpointStore;
}
