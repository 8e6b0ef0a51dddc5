/**
 * A thin layer over `DatabaseSync`: cached prepared statements, IMMEDIATE transactions, typed
 * column readers and the mapping of SQLite constraint errors to MandateError codes.
 */
import type { DatabaseSync, SQLInputValue, SQLOutputValue, StatementSync } from 'node:sqlite';
import { MandateError, describeError } from '@mandate/core/errors';
import type { WriteTurns } from './write-turns.ts';

export type Row = Record<string, SQLOutputValue>;

// Extended result codes (https://sqlite.org/rescode.html) that mean "this already exists" or
// "this refers to something that does not"; everything else is passed through unchanged.
const SQLITE_CONSTRAINT_PRIMARYKEY = 1555;
const SQLITE_CONSTRAINT_UNIQUE = 2067;
const SQLITE_CONSTRAINT_FOREIGNKEY = 787;
/** the database is locked by another connection (primary code; extended ones share its low byte) */
const SQLITE_BUSY = 5;
/**
 * Primary result codes that mean "the store cannot do this now" rather than "this request is
 * wrong": busy or locked, out of memory, read-only, I/O error, corrupt, full (SQLITE_FULL: the
 * disk, or max_page_count), cannot open, locking protocol, not a database.
 */
const UNAVAILABLE_CODES = new Set([5, 6, 7, 8, 10, 11, 13, 14, 15, 26]);

/** SQL that may write (a common table expression may lead to one): read for its rows all the same */
const WRITE_STATEMENT = /^\s*(?:INSERT|UPDATE|DELETE|REPLACE|WITH)\b/i;

export class Sql {
  readonly db: DatabaseSync;
  /**
   * Told of each commit that may have written (a write outside a transaction that changed rows,
   * a transaction's COMMIT): the WAL's sync counts them (wal-sync.ts, index.ts).
   */
  onCommit: (() => void) | undefined;
  /**
   * With another writing connection in this process (the commit thread): a statement that finds
   * the write lock held is tried again when that connection lets it go, instead of SQLite's busy
   * handler sleeping (write-turns.ts), and this connection says when it lets the lock go.
   * Undefined: SQLite's own busy handler (busy_timeout) waits.
   */
  turns: WriteTurns | undefined;
  private readonly statements = new Map<string, StatementSync>();
  private readonly arrayStatements = new Map<string, StatementSync>();
  /** per SQL text run with `get` or `all`: whether it writes */
  private readonly writing = new Map<string, boolean>();

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
    let changes: number;
    try {
      changes = Number(this.stmt(sql).run(...params).changes);
    } catch (error) {
      changes = this.afterBusy(error, () => Number(this.stmt(sql).run(...params).changes));
    }
    if (this.onCommit === undefined && this.turns === undefined) return changes;
    if (!this.db.isTransaction) {
      if (changes > 0) this.onCommit?.();
      this.turns?.released();
    }
    return changes;
  }

  /** a statement run for its rows (`RETURNING`), which may have written: counted as a commit outside a transaction */
  get(sql: string, ...params: SQLInputValue[]): Row | undefined {
    let row: Row | undefined;
    try {
      row = this.stmt(sql).get(...params);
    } catch (error) {
      row = this.afterBusy(error, () => this.stmt(sql).get(...params));
    }
    this.committedRows(sql);
    return row;
  }

  all(sql: string, ...params: SQLInputValue[]): Row[] {
    let rows: Row[];
    try {
      rows = this.stmt(sql).all(...params);
    } catch (error) {
      rows = this.afterBusy(error, () => this.stmt(sql).all(...params));
    }
    this.committedRows(sql);
    return rows;
  }

  /**
   * After a statement threw: with write turns, a statement outside a transaction that found the
   * lock held is tried again (it did nothing); every other error, and a lock still held at the
   * timeout, is thrown as `unavailable` makes it.
   */
  private afterBusy<T>(error: unknown, attempt: () => T): T {
    if (this.turns === undefined || !this.db.isOpen || this.db.isTransaction) throw unavailable(error);
    try {
      return this.turns.retry(error, attempt);
    } catch (e) {
      throw unavailable(e);
    }
  }

  /**
   * After `get` or `all`: a statement that writes (`INSERT … RETURNING`, `UPDATE … RETURNING`)
   * committed on its own outside a transaction, and `onCommit` is told (node:sqlite does not say
   * how many rows such a statement changed: a write that changed none costs one sync too many).
   */
  private committedRows(sql: string): void {
    if (this.onCommit === undefined && this.turns === undefined) return;
    let writes = this.writing.get(sql);
    if (writes === undefined) {
      writes = WRITE_STATEMENT.test(sql);
      this.writing.set(sql, writes);
    }
    // a read (nearly every call) stops here, without asking the connection about its transaction
    if (writes && !this.db.isTransaction) {
      this.onCommit?.();
      this.turns?.released();
    }
  }

  /** `all` with each row as an array of its columns, in the statement's order: no object per row */
  allArrays(sql: string, ...params: SQLInputValue[]): SQLOutputValue[][] {
    const read = (): SQLOutputValue[][] => {
      let s = this.arrayStatements.get(sql);
      if (s === undefined) {
        s = this.db.prepare(sql);
        s.setReturnArrays(true);
        this.arrayStatements.set(sql, s);
      }
      return s.all(...params) as unknown as SQLOutputValue[][];
    };
    try {
      return read();
    } catch (error) {
      return this.afterBusy(error, read);
    }
  }

  /**
   * Runs `fn` in a BEGIN IMMEDIATE transaction: the write lock is taken up front, so a
   * read-check-write (budgets, audit head) cannot interleave with another connection's.
   */
  tx<T>(fn: () => T): T {
    try {
      this.db.exec('BEGIN IMMEDIATE');
    } catch (error) {
      this.afterBusy(error, () => this.db.exec('BEGIN IMMEDIATE'));
    }
    try {
      const out = fn();
      // a commit fails when the WAL cannot grow (a full disk) or be written
      this.db.exec('COMMIT');
      this.onCommit?.();
      return out;
    } catch (error) {
      if (this.db.isOpen && this.db.isTransaction) {
        try {
          this.db.exec('ROLLBACK');
        } catch {
          // the original error is the one worth reporting
        }
      }
      throw unavailable(error);
    } finally {
      // committed or rolled back: the lock is free again (a COMMIT that failed with the
      // transaction still open was rolled back above)
      this.turns?.released();
    }
  }

  close(): void {
    this.statements.clear();
    this.writing.clear();
    if (this.db.isOpen) this.db.close();
  }
}

function sqliteErrcode(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { errcode?: unknown }).errcode;
  return typeof code === 'number' ? code : undefined;
}

/** SQLITE_BUSY and its extended codes (BUSY_RECOVERY, BUSY_SNAPSHOT, BUSY_TIMEOUT) */
export function isBusy(error: unknown): boolean {
  const code = sqliteErrcode(error);
  return code !== undefined && (code & 0xff) === SQLITE_BUSY;
}

/**
 * A store that cannot work (full, I/O error, locked, closed) becomes STORE_UNAVAILABLE, a stable
 * code (HTTP 503) instead of an internal error; every other error is returned unchanged.
 */
export function unavailable(error: unknown): unknown {
  if (error instanceof MandateError) return error;
  const code = sqliteErrcode(error);
  const closed = typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 'ERR_INVALID_STATE';
  if ((code !== undefined && UNAVAILABLE_CODES.has(code & 0xff)) || closed) {
    return new MandateError('STORE_UNAVAILABLE', `the store cannot complete this: ${describeError(error)}`);
  }
  return error;
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
export { checkLimit, json, num, optNum, optStr, str, toJson } from '@mandate/store-sql/columns';
