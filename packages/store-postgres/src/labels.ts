import { labelStoreFull, planLabelWrite, storedLevel, storedTasks, type LabelStore, type ValueLabel } from '@mandate/core';
import { checkLimit, num, type Db } from './db.ts';

/** expired entries deleted along with each write (the rest by pruneLabels) */
const PRUNE_PER_WRITE = 16;

const PRUNE = 'DELETE FROM label_entries WHERE entry IN (SELECT entry FROM label_entries WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2)';

export function postgresLabels(db: Db) {
  return {
    async putLabels(entry, store, labels, at, limits) {
      await db.tx(async (c) => {
        // writers of one entry take turns (its row may not exist yet), on every node
        await c.query("SELECT pg_advisory_xact_lock(hashtext('mandate.labels'), hashtext($1))", [entry]);
        await c.query(PRUNE, [at.now, PRUNE_PER_WRITE]);
        let row = (await c.query<{ labels: number; saturated: boolean }>('SELECT labels, saturated FROM label_entries WHERE entry = $1', [entry])).rows[0];
        if (row === undefined) {
          // a new entry past the bound: expired entries go; if none has expired the write is
          // refused (forgetting a live entry would let its values read back trusted)
          const count = async () => Number((await c.query<{ n: string }>('SELECT count(*) AS n FROM label_entries')).rows[0]?.n ?? 0);
          const n = await count();
          if (n >= limits.maxEntries && ((await c.query(PRUNE, [at.now, n])).rowCount === 0 || (await count()) >= limits.maxEntries)) throw labelStoreFull(limits.maxEntries);
          await c.query('INSERT INTO label_entries (entry, store, labels, saturated, updated_at, expires_at) VALUES ($1, $2, 0, false, $3, $4)', [entry, store, at.now, at.expiresAt]);
          row = { labels: 0, saturated: false };
        }
        const held = new Map<string, ValueLabel>();
        const keys = labels.map((l) => l.key);
        for (const r of (await c.query<{ value_key: string; level: string; tasks: string }>('SELECT value_key, level, tasks FROM value_labels WHERE entry = $1 AND value_key = ANY($2::text[])', [entry, keys])).rows) {
          held.set(r.value_key, { key: r.value_key, level: storedLevel(r.level), tasks: storedTasks(r.tasks) });
        }
        const plan = planLabelWrite(held, Number(row.labels), row.saturated, labels, limits);
        if (plan.upserts.length > 0) {
          await c.query(
            `INSERT INTO value_labels (entry, value_key, level, tasks)
             SELECT $1, k, l, t FROM unnest($2::text[], $3::text[], $4::text[]) AS u (k, l, t)
             ON CONFLICT (entry, value_key) DO UPDATE SET level = excluded.level, tasks = excluded.tasks`,
            [entry, plan.upserts.map((u) => u.key), plan.upserts.map((u) => u.level), plan.upserts.map((u) => JSON.stringify(u.tasks))],
          );
        }
        await c.query('UPDATE label_entries SET labels = $2, saturated = $3, updated_at = $4, expires_at = greatest(expires_at, $5) WHERE entry = $1', [entry, plan.count, plan.saturated, at.now, at.expiresAt]);
      });
    },

    async readLabels(q, now, limit) {
      const max = checkLimit(limit);
      const where = q.store !== undefined ? 'e.store = $1' : 'e.entry = ANY($1::text[])';
      const key = q.store !== undefined ? q.store : [...q.entries];
      const sat = await db.row(`SELECT count(*)::integer AS n FROM label_entries e WHERE ${where} AND e.expires_at > $2 AND e.saturated`, [key, now]);
      const rows = await db.rows(
        `SELECT v.value_key, v.level, v.tasks FROM value_labels v JOIN label_entries e ON e.entry = v.entry
         WHERE ${where} AND e.expires_at > $2 ORDER BY v.entry, v.value_key LIMIT $3`,
        [key, now, max + 1],
      );
      return {
        labels: rows.slice(0, max).map((r) => ({ key: String(r['value_key']), level: storedLevel(String(r['level'])), tasks: storedTasks(String(r['tasks'])) })),
        saturated: rows.length > max || (sat !== undefined && num(sat, 'n') > 0),
      };
    },

    async pruneLabels(now, limit) {
      return db.run(PRUNE, [now, checkLimit(limit)]);
    },
  } satisfies LabelStore;
}
