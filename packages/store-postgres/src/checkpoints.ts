import type { Checkpoint, CheckpointStore } from '@mandate/core';
import { num, str, type Db } from './db.ts';

export function postgresCheckpoints(db: Db) {
  return {
    async addCheckpoint(cp) {
      await db.run('INSERT INTO checkpoints (seq, head_hash, ts, kid, signature) VALUES ($1, $2, $3, $4, $5)', [cp.seq, cp.headHash, cp.ts, cp.kid, cp.signature]);
    },

    async listCheckpoints() {
      return (await db.rows('SELECT * FROM checkpoints ORDER BY seq, id')).map(
        (r): Checkpoint => ({
          seq: num(r, 'seq'),
          headHash: str(r, 'head_hash'),
          ts: num(r, 'ts'),
          kid: str(r, 'kid'),
          signature: str(r, 'signature'),
        }),
      );
    },
  } satisfies CheckpointStore;
}
