/**
 * The store for several Mandate nodes: one PostgreSQL schema shared by stateless processes. Every
 * capability is a small object checked against its port; this file only connects, migrates and
 * wires them, and offers the change feed other nodes learn from.
 */
import { randomBytes } from 'node:crypto';
import { Pool, type ClientConfig } from 'pg';
import { MandateError, type BehaviourShareStore, type Hasher, type Store } from '@mandate/core';
import { Availability, type AvailabilityEvent } from './availability.ts';
import { postgresAgents } from './agents.ts';
import { postgresApprovals } from './approvals.ts';
import { postgresAlerts, postgresAlertSinks, postgresBehaviourShare, postgresContainment } from './behaviour.ts';
import { postgresKillOutbox } from './kill-outbox.ts';
import { postgresAudit } from './audit.ts';
import { postgresBudgets } from './budgets.ts';
import { ChangeListener, changesChannel, changesSince, type StoreChange, type SubscribeOptions, type Subscription } from './changes.ts';
import { postgresCheckpoints } from './checkpoints.ts';
import { postgresControls } from './controls.ts';
import { Db, num, TYPES } from './db.ts';
import { postgresKeys } from './keys.ts';
import { migrate } from './migrations.ts';
import { postgresOperators } from './operators.ts';
import { postgresRevocations } from './revocations.ts';
import { postgresTasks } from './tasks.ts';
import { postgresSupervision } from './supervision.ts';
import { postgresLabels } from './labels.ts';

export { MIGRATIONS, type Migration } from './migrations.ts';
export { unavailableCause, type AvailabilityEvent } from './availability.ts';
export { CHANGE_KINDS, type StoreChange, type StoreChangeKind, type SubscribeOptions, type Subscription } from './changes.ts';

export interface PostgresStoreOptions {
  /** a libpq-style URL: postgres://user:password@host:port/database */
  readonly url: string;
  readonly hasher: Hasher;
  /** the PostgreSQL schema holding Mandate's tables, created when missing; default 'mandate' */
  readonly schema?: string | undefined;
  /** connections in the pool (the change feed uses one more of its own); default 10 */
  readonly poolSize?: number | undefined;
  /** every statement is cancelled after this long, so a stuck database fails closed; default 5000 ms */
  readonly statementTimeoutMs?: number | undefined;
  /** how long to wait for a new connection; default 5000 ms */
  readonly connectTimeoutMs?: number | undefined;
  /** runs a group commit after the current turn; default setImmediate */
  readonly schedule?: ((fn: () => void) => void) | undefined;
  /**
   * Receives every change in the feed, made by this node or any other (a shorthand for calling
   * `subscribe` at open; the subscription ends with the store).
   */
  readonly onChange?: ((c: StoreChange) => void) | undefined;
  /**
   * Told when statements start failing because the database is unavailable (once per outage, with
   * the cause) and when one succeeds again: for the node's log. Such failures are thrown as
   * STORE_UNAVAILABLE (AUDIT_UNAVAILABLE from the audit log).
   */
  readonly onAvailability?: ((e: AvailabilityEvent) => void) | undefined;
}

export interface PostgresStore extends Store {
  readonly schema: string;
  /** several nodes: per-agent behaviour counts and chain marks each node shares with the others */
  readonly behaviourShare: BehaviourShareStore;
  /** the subscription made for `onChange`, if one was given */
  readonly feed: Subscription | undefined;
  /**
   * Listens for changes on a dedicated connection. Resolves once listening and caught up; from
   * then on every change committed is delivered once, in commit order, and a change committed
   * while the connection was down is delivered after it reconnects (with backoff).
   */
  subscribe(onChange: (c: StoreChange) => void, opts?: SubscribeOptions): Promise<Subscription>;
  /** changes after `seq`, oldest first, at most `limit` (for catch-up without a listener) */
  changesSince(seq: number, limit: number): Promise<StoreChange[]>;
  /**
   * Deletes feed entries older than `olderThanMs` (by the database's clock); returns how many. A
   * listener that reconnects after missing pruned entries is told so (`onGap`). Call it now and
   * then (say, keep a day): the feed is otherwise never trimmed.
   */
  pruneChanges(olderThanMs: number): Promise<number>;
  /**
   * TEST ONLY: the raw pool, for tests that tamper with the log or break connections on purpose.
   * Production code must go through the capability objects.
   */
  unsafePool(): Pool;
}

// A schema name goes into the notification channel (at most 63 bytes) and the search_path.
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,46}$/;
const PING_TIMEOUT_MS = 2_000;
/** random bytes in the write probe's row (as hex text: a few pages) */
const WRITE_PROBE_BYTES = 4096;

function positiveInt(name: string, v: number | undefined, fallback: number, min: number): number {
  if (v === undefined) return fallback;
  if (!Number.isSafeInteger(v) || v < min) throw new TypeError(`${name} must be an integer of at least ${min}, got ${String(v)}`);
  return v;
}

function connectionConfig(opts: PostgresStoreOptions, schema: string): ClientConfig {
  const statementTimeout = positiveInt('statementTimeoutMs', opts.statementTimeoutMs, 5_000, 0);
  return {
    connectionString: opts.url,
    // set at connection start: every connection of the pool and the feed sees only this schema
    options: `-c search_path=${schema}`,
    statement_timeout: statementTimeout,
    // a node that stalls inside a transaction must not hold the audit head for long
    ...(statementTimeout > 0 ? { idle_in_transaction_session_timeout: statementTimeout } : {}),
    connectionTimeoutMillis: positiveInt('connectTimeoutMs', opts.connectTimeoutMs, 5_000, 0),
    application_name: 'mandate',
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    types: TYPES,
  };
}

/**
 * The client-side backstop: the server cancels a statement at statement_timeout, but over a dead
 * network nothing answers, so the client gives up a little later and drops the connection.
 */
function withQueryTimeout(config: ClientConfig): ClientConfig {
  const server = typeof config.statement_timeout === 'number' ? config.statement_timeout : 0;
  return { ...config, query_timeout: (server > 0 ? server : 30_000) + 2_000 };
}

function withTimeout<T>(p: Promise<T>, ms: number, fallback: T): Promise<T> {
  return new Promise<T>((resolve) => {
    const t = setTimeout(() => resolve(fallback), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      () => {
        clearTimeout(t);
        resolve(fallback);
      },
    );
  });
}

export async function openPostgresStore(opts: PostgresStoreOptions): Promise<PostgresStore> {
  const schema = opts.schema ?? 'mandate';
  if (!SCHEMA_NAME.test(schema) || schema.startsWith('pg_')) {
    throw new TypeError(`schema must be a lowercase identifier of at most 47 characters (a-z, 0-9, _), not starting with pg_; got ${JSON.stringify(schema)}`);
  }
  const config = withQueryTimeout(connectionConfig(opts, schema));
  const pool = new Pool({ ...config, max: positiveInt('poolSize', opts.poolSize, 10, 1) });
  const availability = new Availability(opts.onAvailability);
  // an idle pooled connection that breaks (the database restarted, a backend was terminated) is
  // dropped by the pool, which emits 'error': without a listener that would end the process
  pool.on('error', (error) => {
    availability.failed(error);
  });
  const db = new Db(pool, availability);
  try {
    await migrate(config, schema);
  } catch (error) {
    await pool.end().catch(() => undefined);
    if (error instanceof MandateError) throw error;
    throw new MandateError('NOT_READY', `PostgreSQL store (schema ${schema}) could not be opened: ${error instanceof Error ? error.message : String(error)}`);
  }

  const schedule = opts.schedule ?? ((fn: () => void) => void setImmediate(fn));
  const { audit, drain } = postgresAudit(db, opts.hasher, schedule);
  const subscriptions = new Set<Subscription>();
  let closing: Promise<void> | undefined;

  const subscribe = async (onChange: (c: StoreChange) => void, subOpts: SubscribeOptions = {}): Promise<Subscription> => {
    if (closing !== undefined) throw new MandateError('NOT_READY', 'the store is closed');
    const listener = new ChangeListener(config, changesChannel(schema), onChange, subOpts);
    await listener.start();
    const sub: Subscription = {
      get lastSeq() {
        return listener.lastSeq;
      },
      get connected() {
        return listener.connected;
      },
      close: async () => {
        subscriptions.delete(sub);
        await listener.close();
      },
    };
    subscriptions.add(sub);
    return sub;
  };

  let feed: Subscription | undefined;
  if (opts.onChange !== undefined) {
    try {
      feed = await subscribe(opts.onChange);
    } catch (error) {
      await pool.end().catch(() => undefined);
      throw new MandateError('NOT_READY', `PostgreSQL change feed (schema ${schema}) could not listen: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  return {
    schema,
    feed,
    agents: postgresAgents(db),
    tasks: postgresTasks(db),
    revocations: postgresRevocations(db),
    supervision: postgresSupervision(db),
    approvals: postgresApprovals(db),
    controls: postgresControls(db),
    budgets: postgresBudgets(db),
    audit,
    checkpoints: postgresCheckpoints(db),
    keys: postgresKeys(db),
    operators: postgresOperators(db),
    alerts: postgresAlerts(db),
    alertSinks: postgresAlertSinks(db),
    killOutbox: postgresKillOutbox(db),
    containment: postgresContainment(db),
    labels: postgresLabels(db),
    behaviourShare: postgresBehaviourShare(db),

    subscribe,

    changesSince(seq, limit) {
      return changesSince(db, seq, limit);
    },

    async pruneChanges(olderThanMs) {
      const r = await db.row(
        `WITH d AS (DELETE FROM changes WHERE at < clock_timestamp() - $1::bigint * interval '1 millisecond' RETURNING seq)
         UPDATE changes_pruned SET upto = greatest(upto, coalesce((SELECT max(seq) FROM d), 0)) RETURNING (SELECT count(*) FROM d) AS n`,
        [positiveInt('olderThanMs', olderThanMs, 0, 0)],
      );
      return r === undefined ? 0 : num(r, 'n');
    },

    async ping() {
      if (closing !== undefined) return false;
      return withTimeout(
        db.row('SELECT 1 AS one').then((r) => r !== undefined),
        PING_TIMEOUT_MS,
        false,
      );
    },

    async probeWrite() {
      if (closing !== undefined) throw new MandateError('STORE_UNAVAILABLE', 'the store is closed');
      // a row written and removed in one committed transaction (its WAL written and flushed);
      // other transactions never see it. A random key: nodes probe at the same time
      const key = `mandate.write_probe.${randomBytes(8).toString('hex')}`;
      const probe = db.tx(async (c) => {
        await c.query('INSERT INTO controls (key, value, updated_at) VALUES ($1, $2, 0)', [key, JSON.stringify(randomBytes(WRITE_PROBE_BYTES).toString('hex'))]);
        await c.query('DELETE FROM controls WHERE key = $1', [key]);
      });
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new MandateError('STORE_UNAVAILABLE', `PostgreSQL did not commit a write within ${PING_TIMEOUT_MS} ms`)), PING_TIMEOUT_MS);
      });
      try {
        await Promise.race([probe, late]);
      } catch (error) {
        probe.catch(() => undefined);
        throw error instanceof MandateError ? error : new MandateError('STORE_UNAVAILABLE', `PostgreSQL cannot commit: ${error instanceof Error ? error.message : String(error)}`);
      } finally {
        clearTimeout(timer);
      }
    },

    close() {
      // idempotent; appends already accepted commit first, so closing never drops a record
      closing ??= (async () => {
        await drain();
        await Promise.allSettled([...subscriptions].map((s) => s.close()));
        await pool.end();
      })();
      return closing;
    },

    unsafePool() {
      return pool;
    },
  } satisfies PostgresStore;
}
