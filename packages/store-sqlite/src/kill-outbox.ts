import type { KillOutbox } from '@mandate/core';
import { toAlertSink, toJson, toKillEvent } from '@mandate/store-sql';
import { checkLimit, mapConstraint, type Sql } from './sql.ts';

/** The kill hooks' outbox; its sinks live in alert_sinks beside the alert webhooks'. */
export function sqliteKillOutbox(sql: Sql) {
  return {
    async appendKillEvent(e) {
      try {
        // one writer: the next number is the commit order
        const r = sql.get('INSERT INTO kill_events (seq, id, ts, kind, data) VALUES ((SELECT COALESCE(MAX(seq), 0) + 1 FROM kill_events), ?, ?, ?, ?) RETURNING seq', e.id, e.ts, e.kind, toJson(e.data));
        return Number(r?.['seq']);
      } catch (error) {
        return mapConstraint(error, `kill event ${e.id}`);
      }
    },

    async killEventHead() {
      return Number(sql.get('SELECT COALESCE(MAX(seq), 0) AS head FROM kill_events')?.['head'] ?? 0);
    },

    async killEventsAfter(after, limit) {
      return sql.all('SELECT * FROM kill_events WHERE seq > ? ORDER BY seq LIMIT ?', after, checkLimit(limit)).map((r) => ({ seq: Number(r['seq']), event: toKillEvent(r) }));
    },

    async openKillSink(sink, now) {
      sql.run('INSERT INTO alert_sinks (sink, cursor, updated_at) VALUES (?, (SELECT COALESCE(MAX(seq), 0) FROM kill_events), ?) ON CONFLICT (sink) DO NOTHING', sink, now);
      const r = sql.get('SELECT * FROM alert_sinks WHERE sink = ?', sink);
      if (r === undefined) throw new Error(`kill hook sink ${sink} could not be opened`);
      return toAlertSink(r);
    },
  } satisfies KillOutbox;
}
