/**
 * A thin layer over a `pg` Pool: typed column readers, transactions on one pooled connection,
 * and the mapping of PostgreSQL constraint errors to MandateError codes.
 */
import { DatabaseError, types as pgTypes, type Pool, type PoolClient, type CustomTypesConfig } from 'pg';
import { MandateError } from '@mandate/core';
import { Availability, unavailableCause } from './availability.ts';

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
  /** outages of the database, as statements see them: for the node's log */
  readonly availability: Availability;

  constructor(pool: Pool, availability: Availability = new Availability()) {
    this.pool = pool;
    this.availability = availability;
  }

  async rows(text: string, values: unknown[] = []): Promise<Row[]> {
    return (await this.query(text, values)).rows;
  }

  async row(text: string, values: unknown[] = []): Promise<Row | undefined> {
    return (await this.rows(text, values))[0];
  }

  /** `rows` with each row as an array of its columns, in the statement's order: no object per row */
  async arrays(text: string, values: unknown[] = []): Promise<unknown[][]> {
    let result: { rows: unknown[][] };
    try {
      result = await this.pool.query<unknown[]>({ text, values, rowMode: 'array' });
    } catch (error) {
      throw this.availability.failed(error);
    }
    this.availability.succeeded();
    return result.rows;
  }

  /** runs a statement and returns how many rows it changed */
  async run(text: string, values: unknown[] = []): Promise<number> {
    return (await this.query(text, values)).rowCount ?? 0;
  }

  /**
   * One statement on a pooled connection (pg-pool listens for the connection's errors while it
   * runs and destroys a connection that failed). An availability failure is thrown as
   * STORE_UNAVAILABLE.
   */
  async query(config: string | { name?: string; text: string; values?: unknown[] }, values?: unknown[]): Promise<{ rows: Row[]; rowCount: number | null }> {
    let result: { rows: Row[]; rowCount: number | null };
    try {
      result = typeof config === 'string' ? await this.pool.query<Row>(config, values) : await this.pool.query<Row>(config);
    } catch (error) {
      throw this.availability.failed(error);
    }
    this.availability.succeeded();
    return result;
  }

  /**
   * Runs `fn` in a transaction on one connection. On any failure it rolls back. A checked-out
   * connection has no listener of the pool's (pg-pool removes its idle listener on checkout), so
   * this one listens for the connection's 'error' events for as long as it holds it: without
   * that, a database restart or a terminated backend mid-transaction is an unhandled 'error'
   * event that ends the process. A connection that errored, or whose rollback failed, is
   * destroyed rather than returned to the pool.
   */
  async tx<T>(fn: (c: PoolClient) => Promise<T>): Promise<T> {
    let c: PoolClient;
    try {
      c = await this.pool.connect();
    } catch (error) {
      throw this.availability.failed(error);
    }
    let broken: Error | undefined;
    let lost: Error | undefined;
    const onError = (error: Error) => {
      lost ??= error;
      broken ??= error;
    };
    c.on('error', onError);
    try {
      await c.query('BEGIN');
      const out = await fn(c);
      await c.query('COMMIT');
      this.availability.succeeded();
      return out;
    } catch (error) {
      if (broken === undefined) {
        try {
          await c.query('ROLLBACK');
        } catch (rollbackError) {
          broken = rollbackError instanceof Error ? rollbackError : new Error('rollback failed');
        }
      }
      // the connection's own error says why better than "not queryable" does
      throw this.availability.failed(lost !== undefined && unavailableCause(error) !== undefined ? lost : error);
    } finally {
      // released first: the pool puts its own listener back before this one goes
      c.release(broken);
      c.removeListener('error', onError);
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
