import type { KillOutbox } from '@mandate/core';
import { toAlertSink, toJson, toKillEvent } from '@mandate/store-sql';
import { checkLimit, mapConstraint, type Db } from './db.ts';

/** The kill hooks' outbox; its sinks live in alert_sinks beside the alert webhooks'. */
export function postgresKillOutbox(db: Db) {
  return {
    async appendKillEvent(e) {
      try {
        // numbers are taken under a lock held to the commit, so a later number never commits
        // before an earlier one (a hook's cursor never skips a kill)
        return await db.tx(async (c) => {
          await c.query("SELECT pg_advisory_xact_lock(hashtext('mandate.kill_events'), hashtext(current_schema()))");
          const r = await c.query('INSERT INTO kill_events (seq, id, ts, kind, data) VALUES ((SELECT COALESCE(MAX(seq), 0) + 1 FROM kill_events), $1, $2, $3, $4) RETURNING seq', [e.id, e.ts, e.kind, toJson(e.data)]);
          // the change feed tells every node at commit: the one delivering each hook sends it at once
          await c.query("SELECT record_changes('kill', ARRAY[$1::text])", [e.id]);
          return Number(r.rows[0]?.['seq']);
        });
      } catch (error) {
        return mapConstraint(error, `kill event ${e.id}`);
      }
    },

    async killEventHead() {
      return Number((await db.row('SELECT COALESCE(MAX(seq), 0) AS head FROM kill_events'))?.['head'] ?? 0);
    },

    async killEventsAfter(after, limit) {
      return (await db.rows('SELECT * FROM kill_events WHERE seq > $1 ORDER BY seq LIMIT $2', [after, checkLimit(limit)])).map((r) => ({ seq: Number(r['seq']), event: toKillEvent(r) }));
    },

    async openKillSink(sink, now) {
      await db.run('INSERT INTO alert_sinks (sink, cursor, updated_at) VALUES ($1, (SELECT COALESCE(MAX(seq), 0) FROM kill_events), $2) ON CONFLICT (sink) DO NOTHING', [sink, now]);
      const r = await db.row('SELECT * FROM alert_sinks WHERE sink = $1', [sink]);
      if (r === undefined) throw new Error(`kill hook sink ${sink} could not be opened`);
      return toAlertSink(r);
    },
  } satisfies KillOutbox;
}
