/**
 * A thin layer over a `pg` Pool: typed column readers, transactions on one pooled connection,
 * and the mapping of PostgreSQL constraint errors to MandateError codes.
 */
import { DatabaseError, types as pgTypes, type Pool, type PoolClient, type CustomTypesConfig } from 'pg';
import { MandateError, canonicalJson, type JsonObject } from '@mandate/core';

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

export function toJson(v: unknown): string {
  return canonicalJson(v);
}

/** list limits must be explicit and sane: a negative LIMIT is an error in PostgreSQL, say so first */
export function checkLimit(limit: number): number {
  if (!Number.isSafeInteger(limit) || limit < 0) throw new TypeError(`limit must be a non-negative integer, got ${String(limit)}`);
  return limit;
}

function column(row: Row, name: string): unknown {
  if (!(name in row)) throw new Error(`column ${name} missing from row`);
  return row[name];
}

export function str(row: Row, name: string): string {
  const v = column(row, name);
  if (typeof v !== 'string') throw new Error(`column ${name} is not text`);
  return v;
}

export function num(row: Row, name: string): number {
  const v = column(row, name);
  if (typeof v !== 'number') throw new Error(`column ${name} is not a number`);
  return v;
}

export function bool(row: Row, name: string): boolean {
  const v = column(row, name);
  if (typeof v !== 'boolean') throw new Error(`column ${name} is not a boolean`);
  return v;
}

export function optStr(row: Row, name: string): string | undefined {
  return column(row, name) === null ? undefined : str(row, name);
}

export function optNum(row: Row, name: string): number | undefined {
  return column(row, name) === null ? undefined : num(row, name);
}

export function json(row: Row, name: string): JsonObject {
  const v: unknown = JSON.parse(str(row, name));
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`column ${name} is not a JSON object`);
  return v as JsonObject;
}
