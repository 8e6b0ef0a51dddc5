import type { CheckpointStore } from '@mandate/core';
import type { Sql } from './sql.ts';
import { toCheckpoint } from '@mandate/store-sql';

export function sqliteCheckpoints(sql: Sql) {
  return {
    async addCheckpoint(cp) {
      sql.run(
        'INSERT INTO checkpoints (seq, head_hash, ts, kid, signature) VALUES (?, ?, ?, ?, ?)',
        cp.seq, cp.headHash, cp.ts, cp.kid, cp.signature,
      );
    },

    async listCheckpoints() {
      return sql.all('SELECT * FROM checkpoints ORDER BY seq, id').map(toCheckpoint);
    },
  } satisfies CheckpointStore;
}
