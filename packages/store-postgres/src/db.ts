/**
 * A thin layer over a `pg` Pool: typed column readers, transactions on one pooled connection,
 * and the mapping of PostgreSQL constraint errors to MandateError codes.
 */
import { DatabaseError, types as pgTypes, type Pool, type PoolClient, type CustomTypesConfig } from 'pg';
import { MandateError } from '@mandate/core';

export type Row = Record<string, unknown>;

/** What a capability needs to run a statement: the pool, or a connection inside a transaction. */
export interface Queryable {
  query(config: { name?: string; text: string; values?: unknown[] }): Promise<{ rows: Row[]; rowCount: number | null }>;
}

// SQLSTATE codes (https://www.postgresql.org/docs/current/errcodes-appendix.html)
const UNIQUE_VIOLATION = '23505';
const FOREIGN_KEY_VIOLATION = '23503';
const INT8_OID = 20;

/**
 * Timestamps and counters are BIGINT (milliseconds, counts), which `pg` returns as strings by
 * default. Every value Mandate stores is a safe integer, so read them as numbers, and refuse a
 * value that is not rather than round it.
 */
function parseInt8(text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new RangeError(`bigint ${text} is outside the safe integer range`);
  return n;
}

/** per-pool type parsers: the global `pg.types` is left alone (no module-level state) */
export const TYPES: CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary' ? parseInt8 : pgTypes.getTypeParser(oid, format)) as CustomTypesConfig['getTypeParser'],
};

export class Db {
  readonly pool: Pool;

  constructor(pool: Pool) {
    this.pool = pool;
  }

  async rows(text: string, values: unknown[] = []): Promise<Row[]> {
    return (await this.pool.query<Row>(text, values)).rows;
  }

  async row(text: string, values: unknown[] = []): Promise<Row | undefined> {
    return (await this.rows(text, values))[0];
  }

  /** runs a statement and returns how many rows it changed */
  async run(text: string, values: unknown[] = []): Promise<number> {
    return (await this.pool.query(text, values)).rowCount ?? 0;
  }

  /**
   * Runs `fn` in a transaction on one connection. On any failure it rolls back; a connection
   * whose rollback fails (it broke mid-transaction) is destroyed rather than returned to the pool.
   */
  async tx<T>(fn: (c: PoolClient) => Promise<T>): Promise<T> {
    const c = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await c.query('BEGIN');
      const out = await fn(c);
      await c.query('COMMIT');
      return out;
    } catch (error) {
      try {
        await c.query('ROLLBACK');
      } catch (rollbackError) {
        broken = rollbackError instanceof Error ? rollbackError : new Error('rollback failed');
      }
      throw error;
    } finally {
      c.release(broken);
    }
  }
}

/** turns "already exists" / "refers to nothing" into CONFLICT / NOT_FOUND; rethrows the rest */
export function mapConstraint(error: unknown, what: string): never {
  if (error instanceof DatabaseError) {
    if (error.code === UNIQUE_VIOLATION) throw new MandateError('CONFLICT', `${what} already exists`);
    if (error.code === FOREIGN_KEY_VIOLATION) throw new MandateError('NOT_FOUND', `${what} refers to a record that does not exist`);
  }
  throw error;
}

/** undefined ↔ NULL */
export function nullable<T>(v: T | undefined): T | null {
  return v === undefined ? null : v;
}

// column readers and JSON columns: shared by the SQL adapters
export { bool, checkLimit, json, num, optNum, optStr, str, toJson } from '@mandate/store-sql';
