import { labelStoreFull, planLabelWrite, storedLevel, storedTasks, type LabelStore, type ValueLabel } from '@mandate/core';
import { checkLimit, num, type Sql } from './sql.ts';

/** expired entries deleted along with each write (the rest by pruneLabels) */
const PRUNE_PER_WRITE = 16;

export function sqliteLabels(sql: Sql) {
  const prune = (now: number, limit: number): number =>
    sql.run('DELETE FROM label_entries WHERE entry IN (SELECT entry FROM label_entries WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)', now, limit);

  return {
    async putLabels(entry, store, labels, at, limits) {
      sql.tx(() => {
        prune(at.now, PRUNE_PER_WRITE);
        let row = sql.get('SELECT labels, saturated FROM label_entries WHERE entry = ?', entry);
        if (row === undefined) {
          // a new entry past the bound: expired entries go; if none has expired the write is
          // refused (forgetting a live entry would let its values read back trusted)
          const count = () => num(sql.get('SELECT count(*) AS n FROM label_entries') ?? { n: 0 }, 'n');
          const n = count();
          if (n >= limits.maxEntries && (prune(at.now, n) === 0 || count() >= limits.maxEntries)) throw labelStoreFull(limits.maxEntries);
          sql.run('INSERT INTO label_entries (entry, store, labels, saturated, updated_at, expires_at) VALUES (?, ?, 0, 0, ?, ?)', entry, store, at.now, at.expiresAt);
          row = { labels: 0, saturated: 0 };
        }
        const held = new Map<string, ValueLabel>();
        for (const l of labels) {
          const r = sql.get('SELECT level, tasks FROM value_labels WHERE entry = ? AND value_key = ?', entry, l.key);
          if (r !== undefined) held.set(l.key, { key: l.key, level: storedLevel(String(r['level'])), tasks: storedTasks(String(r['tasks'])) });
        }
        const plan = planLabelWrite(held, num(row, 'labels'), num(row, 'saturated') === 1, labels, limits);
        for (const u of plan.upserts) {
          sql.run(
            'INSERT INTO value_labels (entry, value_key, level, tasks) VALUES (?, ?, ?, ?) ON CONFLICT (entry, value_key) DO UPDATE SET level = excluded.level, tasks = excluded.tasks',
            entry, u.key, u.level, JSON.stringify(u.tasks),
          );
        }
        sql.run('UPDATE label_entries SET labels = ?, saturated = ?, updated_at = ?, expires_at = MAX(expires_at, ?) WHERE entry = ?', plan.count, plan.saturated ? 1 : 0, at.now, at.expiresAt, entry);
      });
    },

    async readLabels(q, now, limit) {
      const max = checkLimit(limit);
      const where = q.store !== undefined ? 'e.store = ?' : `e.entry IN (${q.entries.map(() => '?').join(', ') || "''"})`;
      const params = q.store !== undefined ? [q.store] : [...q.entries];
      const sat = sql.get(`SELECT count(*) AS n FROM label_entries e WHERE ${where} AND e.expires_at > ? AND e.saturated = 1`, ...params, now);
      const rows = sql.all(
        `SELECT v.value_key, v.level, v.tasks FROM value_labels v JOIN label_entries e ON e.entry = v.entry
         WHERE ${where} AND e.expires_at > ? ORDER BY v.entry, v.value_key LIMIT ?`,
        ...params, now, max + 1,
      );
      return {
        labels: rows.slice(0, max).map((r) => ({ key: String(r['value_key']), level: storedLevel(String(r['level'])), tasks: storedTasks(String(r['tasks'])) })),
        saturated: rows.length > max || (sat !== undefined && num(sat, 'n') > 0),
      };
    },

    async pruneLabels(now, limit) {
      return sql.tx(() => prune(now, checkLimit(limit)));
    },
  } satisfies LabelStore;
}
