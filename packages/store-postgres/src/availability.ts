/**
 * Telling "the database is not there" apart from "the database said no", and noticing when an
 * outage starts and ends. A statement that fails because the server is down, restarting, out of
 * connections or cut off is STORE_UNAVAILABLE (an HTTP 503, a deny in a decision); a constraint or
 * syntax error stays what it is.
 */
import { DatabaseError } from 'pg';
import { MandateError } from '@mandate/core';

// SQLSTATE classes and codes of a server that is going away, not answering, or out of resources
// (https://www.postgresql.org/docs/current/errcodes-appendix.html)
const UNAVAILABLE_CLASSES = new Set([
  '08', // connection exception
  '53', // insufficient resources: disk full, out of memory, too many connections
  '58', // system error: I/O error
]);
const UNAVAILABLE_CODES = new Set([
  '57P01', // admin_shutdown: pg_ctl stop, pg_terminate_backend
  '57P02', // crash_shutdown: another backend crashed, every connection is reset
  '57P03', // cannot_connect_now: the server is starting up or shutting down
  '57P05', // idle_session_timeout
  '57014', // query_canceled: statement_timeout, a stuck database fails closed
  '25P03', // idle_in_transaction_session_timeout
]);

// what a socket error says (Node's errno codes), without the address that follows in its message
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'EHOSTDOWN', 'ENETUNREACH', 'ENETDOWN', 'ENOTFOUND', 'EAI_AGAIN']);

// The driver's own connection failures are plain Errors without a code; these are its words
// (pg 8 lib/client.js, pg-pool 3). The store tests produce each of the common ones for real, so
// a driver that rewords them fails a test rather than turns an outage into a 500.
const DRIVER_MESSAGES = [
  'Connection terminated',
  'Client has encountered a connection error and is not queryable',
  'Client was closed and is not queryable',
  'Query read timeout',
  'timeout exceeded when trying to connect',
  'Cannot use a pool after calling end on the pool',
];

/**
 * A short description of why the database is unavailable, or undefined when `error` is not an
 * availability failure. It never includes the server's address (a 503 may reach anyone).
 */
export function unavailableCause(error: unknown): string | undefined {
  if (error instanceof MandateError) return error.code === 'STORE_UNAVAILABLE' ? error.message : undefined;
  if (error instanceof DatabaseError) {
    const code = error.code ?? '';
    return UNAVAILABLE_CODES.has(code) || UNAVAILABLE_CLASSES.has(code.slice(0, 2)) ? `${code}: ${error.message}` : undefined;
  }
  if (!(error instanceof Error)) return undefined;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && SOCKET_CODES.has(code)) return code;
  if (DRIVER_MESSAGES.some((m) => error.message.startsWith(m))) return error.message;
  return undefined;
}

/** STORE_UNAVAILABLE for an availability failure, anything else unchanged */
export function asUnavailable(error: unknown): unknown {
  if (error instanceof MandateError) return error;
  const cause = unavailableCause(error);
  return cause === undefined ? error : new MandateError('STORE_UNAVAILABLE', `PostgreSQL is unavailable (${cause})`);
}

/** What the store says about its database, for the node's log. */
export type AvailabilityEvent =
  | { readonly kind: 'unavailable'; readonly cause: string; readonly error: unknown }
  | { readonly kind: 'recovered'; readonly downMs: number; readonly failures: number };

/**
 * Follows outcomes of statements: the first availability failure after a success starts an
 * outage, the first success after it ends it. One event each, however many statements fail.
 */
export class Availability {
  private down: { since: number; failures: number } | undefined;
  private readonly notify: (e: AvailabilityEvent) => void;
  private readonly now: () => number;

  constructor(notify: (e: AvailabilityEvent) => void = () => undefined, now: () => number = Date.now) {
    this.notify = notify;
    this.now = now;
  }

  get available(): boolean {
    return this.down === undefined;
  }

  succeeded(): void {
    const down = this.down;
    if (down === undefined) return;
    this.down = undefined;
    this.emit({ kind: 'recovered', downMs: this.now() - down.since, failures: down.failures });
  }

  /** records `error` when it is an availability failure; returns it as the store should throw it */
  failed(error: unknown): unknown {
    const cause = unavailableCause(error);
    if (cause === undefined) return error;
    if (this.down === undefined) {
      this.down = { since: this.now(), failures: 1 };
      this.emit({ kind: 'unavailable', cause, error });
    } else {
      this.down.failures++;
    }
    return asUnavailable(error);
  }

  private emit(e: AvailabilityEvent): void {
    try {
      this.notify(e);
    } catch {
      // a failing log must not change what the store answers
    }
  }
}
