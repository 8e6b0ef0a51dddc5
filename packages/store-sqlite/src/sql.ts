/**
 * A thin layer over `DatabaseSync`: cached prepared statements, IMMEDIATE transactions, typed
 * column readers and the mapping of SQLite constraint errors to MandateError codes.
 */
import type { DatabaseSync, SQLInputValue, SQLOutputValue, StatementSync } from 'node:sqlite';
import { MandateError } from '@mandate/core';

export type Row = Record<string, SQLOutputValue>;

// Extended result codes (https://sqlite.org/rescode.html) that mean "this already exists" or
// "this refers to something that does not"; everything else is passed through unchanged.
const SQLITE_CONSTRAINT_PRIMARYKEY = 1555;
const SQLITE_CONSTRAINT_UNIQUE = 2067;
const SQLITE_CONSTRAINT_FOREIGNKEY = 787;

export class Sql {
  readonly db: DatabaseSync;
  private readonly statements = new Map<string, StatementSync>();

  constructor(db: DatabaseSync) {
    this.db = db;
  }

  /** prepared once per SQL text: the hot paths (audit, budgets) then skip parsing */
  private stmt(sql: string): StatementSync {
    let s = this.statements.get(sql);
    if (s === undefined) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }

  run(sql: string, ...params: SQLInputValue[]): number {
    return Number(this.stmt(sql).run(...params).changes);
  }

  get(sql: string, ...params: SQLInputValue[]): Row | undefined {
    return this.stmt(sql).get(...params);
  }

  all(sql: string, ...params: SQLInputValue[]): Row[] {
    return this.stmt(sql).all(...params);
  }

  /**
   * Runs `fn` in a BEGIN IMMEDIATE transaction: the write lock is taken up front, so a
   * read-check-write (budgets, audit head) cannot interleave with another connection's.
   */
  tx<T>(fn: () => T): T {
    this.db.exec('BEGIN IMMEDIATE');
    try {
      const out = fn();
      this.db.exec('COMMIT');
      return out;
    } catch (error) {
      if (this.db.isOpen && this.db.isTransaction) {
        try {
          this.db.exec('ROLLBACK');
        } catch {
          // the original error is the one worth reporting
        }
      }
      throw error;
    }
  }

  close(): void {
    this.statements.clear();
    if (this.db.isOpen) this.db.close();
  }
}

function sqliteErrcode(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { errcode?: unknown }).errcode;
  return typeof code === 'number' ? code : undefined;
}

/** turns "already exists" / "refers to nothing" into CONFLICT / NOT_FOUND; rethrows the rest */
export function mapConstraint(error: unknown, what: string): never {
  const code = sqliteErrcode(error);
  if (code === SQLITE_CONSTRAINT_PRIMARYKEY || code === SQLITE_CONSTRAINT_UNIQUE) {
    throw new MandateError('CONFLICT', `${what} already exists`);
  }
  if (code === SQLITE_CONSTRAINT_FOREIGNKEY) {
    throw new MandateError('NOT_FOUND', `${what} refers to a record that does not exist`);
  }
  throw error;
}

/** undefined ↔ NULL: node:sqlite refuses to bind undefined */
export function nullable(v: string | number | undefined): string | number | null {
  return v === undefined ? null : v;
}

// column readers and JSON columns: shared by the SQL adapters
export { checkLimit, json, num, optNum, optStr, str, toJson } from '@mandate/store-sql';
