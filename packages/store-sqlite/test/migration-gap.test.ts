import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import { MIGRATIONS, migrate, type Migration } from '../src/migrations.ts';
import { Sql } from '../src/sql.ts';

describe('schema versions with a gap', () => {
  it('applies version 4 without a version 3, and a version 3 that arrives later, in order', () => {
    expect(MIGRATIONS.map((m) => m.version)).toContain(4);
    const sql = new Sql(new DatabaseSync(':memory:'));
    const without3 = MIGRATIONS.filter((m) => m.version !== 3);
    expect(migrate(sql, without3, () => 1)).toEqual(without3.map((m) => m.version));
    const v3: Migration = { version: 3, name: 'a change merged later', sql: 'CREATE TABLE later_change (id TEXT PRIMARY KEY) STRICT;' };
    expect(migrate(sql, [...without3, v3], () => 2)).toEqual([3]);
    expect(migrate(sql, [...without3, v3], () => 3)).toEqual([]);
    // a database that has the later step refuses a build that does not know it
    expect(() => migrate(sql, without3, () => 4)).toThrow(/schema version\(s\) 3/);
    sql.close();
  });
});
