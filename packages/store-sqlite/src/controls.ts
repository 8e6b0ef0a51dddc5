import type { ControlStore } from '@mandate/core';
import { json, toJson, type Sql } from './sql.ts';

export function sqliteControls(sql: Sql) {
  return {
    async getControl(key) {
      const r = sql.get('SELECT value FROM controls WHERE key = ?', key);
      return r === undefined ? undefined : json(r, 'value');
    },

    async setControl(key, value, at) {
      if (value === undefined) sql.run('DELETE FROM controls WHERE key = ?', key);
      else sql.run('INSERT INTO controls (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at', key, toJson(value), at);
    },
  } satisfies ControlStore;
}
