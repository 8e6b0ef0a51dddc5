import type { ControlStore } from '@mandate/core';
import { json, toJson, type Db } from './db.ts';

export function postgresControls(db: Db) {
  return {
    async getControl(key) {
      const r = await db.row('SELECT value FROM controls WHERE key = $1', [key]);
      return r === undefined ? undefined : json(r, 'value');
    },

    async setControl(key, value, at) {
      // the switch and its entry in the change feed commit together: every node hears of a stop
      if (value === undefined) {
        await db.run("WITH d AS (DELETE FROM controls WHERE key = $1 RETURNING key) SELECT record_changes('control', ARRAY(SELECT key FROM d))", [key]);
      } else {
        await db.run(
          `WITH w AS (
             INSERT INTO controls (key, value, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at RETURNING key)
           SELECT record_changes('control', ARRAY(SELECT key FROM w))`,
          [key, toJson(value), at],
        );
      }
    },
  } satisfies ControlStore;
}
