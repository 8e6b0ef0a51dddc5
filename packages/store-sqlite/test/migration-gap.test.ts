import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import { MIGRATIONS, migrate, type Migration } from '../src/migrations.ts';
import { Sql } from '../src/sql.ts';

describe('schema versions with a gap', () => {
  it('applies version 4 without a version 3, and a version 3 that arrives later, in order', () => {
    expect(MIGRATIONS.map((m) => m.version)).toContain(4);
    const sql = new Sql(new DatabaseSync(':memory:'));
    // (later versions build on version 3's tables: the gap is tried on the first four)
    const without3 = MIGRATIONS.filter((m) => m.version !== 3 && m.version <= 4);
    expect(migrate(sql, without3, () => 1)).toEqual(without3.map((m) => m.version));
    const v3: Migration = { version: 3, name: 'a change merged later', sql: 'CREATE TABLE later_change (id TEXT PRIMARY KEY) STRICT;' };
    expect(migrate(sql, [...without3, v3], () => 2)).toEqual([3]);
    expect(migrate(sql, [...without3, v3], () => 3)).toEqual([]);
    // a database that has the later step refuses a build that does not know it
    expect(() => migrate(sql, without3, () => 4)).toThrow(/schema version\(s\) 3/);
    sql.close();
  });
});

describe('version 5: alerts in store order', () => {
  it('numbers the alerts a version 4 database already holds in the order they were stored', async () => {
    const db = new DatabaseSync(':memory:');
    const sql = new Sql(db);
    migrate(sql, MIGRATIONS.filter((m) => m.version <= 4), () => 1);
    const insert = db.prepare(
      `INSERT INTO alerts (id, ts, task_id, agent_id, call_id, tool, severity, severity_rank, detectors, signals, actions, policy_effect, final_effect, state)
       VALUES (?, ?, 't', 'a', 'c', 'x', 'low', 0, '[]', '[]', '[]', 'allow', 'allow', 'open')`,
    );
    insert.run('later-ts', 20);
    insert.run('earlier-ts', 10);
    expect(migrate(sql, MIGRATIONS.filter((m) => m.version <= 5), () => 2)).toEqual([5]);
    const { sqliteAlertSinks } = await import('../src/behaviour.ts');
    const sinks = sqliteAlertSinks(sql);
    expect((await sinks.alertsAfter(0, 10)).map((e) => [e.seq, e.alert.id])).toEqual([[1, 'later-ts'], [2, 'earlier-ts']]);
    expect(await sinks.alertHead()).toBe(2);
    sql.close();
  });
});
