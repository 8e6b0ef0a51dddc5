import type { Checkpoint, CheckpointStore } from '@mandate/core';
import type { Sql } from './sql.ts';
import { toCheckpoint } from '@mandate/store-sql';

export const INSERT_CHECKPOINT = 'INSERT INTO checkpoints (seq, head_hash, ts, kid, signature) VALUES (?, ?, ?, ?, ?)';

/** a checkpoint as `INSERT_CHECKPOINT`'s parameters */
export type CheckpointRow = readonly [seq: number, headHash: string, ts: number, kid: string, signature: string];

export function checkpointRow(cp: Checkpoint): CheckpointRow {
  return [cp.seq, cp.headHash, cp.ts, cp.kid, cp.signature];
}

/**
 * `writeRow`: where a checkpoint is written when not on this connection (the commit thread, so
 * the event loop does not wait for the write lock its batches hold, nor for the sync).
 */
export function sqliteCheckpoints(sql: Sql, writeRow?: (row: CheckpointRow) => Promise<void>) {
  return {
    async addCheckpoint(cp) {
      const row = checkpointRow(cp);
      if (writeRow) await writeRow(row);
      else sql.run(INSERT_CHECKPOINT, ...row);
    },

    async listCheckpoints() {
      return sql.all('SELECT * FROM checkpoints ORDER BY seq, id').map(toCheckpoint);
    },
  } satisfies CheckpointStore;
}
