import type { Checkpoint, CheckpointStore } from '@mandate/core';
import { num, str, type Sql } from './sql.ts';

export function sqliteCheckpoints(sql: Sql) {
  return {
    async addCheckpoint(cp) {
      sql.run(
        'INSERT INTO checkpoints (seq, head_hash, ts, kid, signature) VALUES (?, ?, ?, ?, ?)',
        cp.seq, cp.headHash, cp.ts, cp.kid, cp.signature,
      );
    },

    async listCheckpoints() {
      return sql.all('SELECT * FROM checkpoints ORDER BY seq, id').map(
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
