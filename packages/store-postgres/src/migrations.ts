/**
 * Numbered schema steps. A step is never edited once released: a change is a new step. All
 * pending steps run in one transaction at open, under an advisory lock, so several nodes starting
 * at once apply each step exactly once and a crash mid-upgrade leaves the old schema.
 */
import { Client, escapeIdentifier, type ClientConfig } from 'pg';
import { GENESIS_HASH } from '@mandate/core';
import { refuseUnknownVersions, type Migration } from '@mandate/store-sql';

export type { Migration } from '@mandate/store-sql';

// Timestamps are BIGINT milliseconds since the epoch; JSON columns hold canonical JSON text (the
// exact bytes that were hashed, for the audit log). Ids are COLLATE "C": byte order, as SQLite
// sorts, so paging cursors mean the same on both stores.
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    sql: `
      CREATE TABLE agents (
        id text COLLATE "C" PRIMARY KEY,
        owner text NOT NULL,
        type text NOT NULL,
        status text NOT NULL,
        ceiling text NOT NULL,
        created_at bigint NOT NULL,
        updated_at bigint NOT NULL
      );

      CREATE TABLE tasks (
        id text COLLATE "C" PRIMARY KEY,
        agent_id text COLLATE "C" NOT NULL REFERENCES agents (id),
        mandate text NOT NULL,
        mandate_hash text NOT NULL,
        state text NOT NULL,
        txn text NOT NULL,
        parent_id text COLLATE "C" REFERENCES tasks (id),
        depth integer NOT NULL,
        created_at bigint NOT NULL,
        expires_at bigint NOT NULL,
        max_expires_at bigint NOT NULL,
        ended_at bigint,
        end_reason text
      );
      CREATE INDEX tasks_by_created ON tasks (created_at, id);
      CREATE INDEX tasks_by_agent ON tasks (agent_id, created_at, id);
      CREATE INDEX tasks_by_state ON tasks (state, created_at, id);
      CREATE INDEX tasks_by_parent ON tasks (parent_id);

      CREATE TABLE revoked_tokens (
        jti text PRIMARY KEY,
        task_id text NOT NULL,
        expires_at bigint NOT NULL,
        reason text NOT NULL,
        revoked_at bigint NOT NULL
      );
      CREATE INDEX revoked_tokens_by_expiry ON revoked_tokens (expires_at);
      CREATE INDEX revoked_tokens_by_task ON revoked_tokens (task_id);

      CREATE TABLE budget_calls (
        task_id text PRIMARY KEY,
        calls bigint NOT NULL
      );
      CREATE TABLE budget_tool_calls (
        task_id text NOT NULL,
        tool text NOT NULL,
        calls bigint NOT NULL,
        PRIMARY KEY (task_id, tool)
      );

      CREATE TABLE audit_log (
        seq bigint PRIMARY KEY,
        ts bigint NOT NULL,
        kind text NOT NULL,
        call_id text,
        task_id text,
        agent_id text,
        txn text,
        data text NOT NULL,
        prev_hash text NOT NULL,
        hash text NOT NULL
      );
      CREATE INDEX audit_log_by_task ON audit_log (task_id, seq);
      CREATE INDEX audit_log_by_call ON audit_log (call_id, seq);

      -- One row: the chain's head. Every append locks it (SELECT ... FOR UPDATE), so appends
      -- from every node take turns and the chain cannot fork.
      CREATE TABLE audit_head (
        id boolean PRIMARY KEY DEFAULT true CHECK (id),
        seq bigint NOT NULL,
        hash text NOT NULL
      );
      INSERT INTO audit_head (id, seq, hash) VALUES (true, 0, '${GENESIS_HASH}');

      -- no uniqueness on seq: re-signing the same head (say, with a new key) is legitimate
      CREATE TABLE checkpoints (
        id bigserial PRIMARY KEY,
        seq bigint NOT NULL,
        head_hash text NOT NULL,
        ts bigint NOT NULL,
        kid text NOT NULL,
        signature text NOT NULL
      );
      CREATE INDEX checkpoints_by_seq ON checkpoints (seq, id);

      CREATE TABLE signing_keys (
        kid text COLLATE "C" PRIMARY KEY,
        purpose text NOT NULL,
        alg text NOT NULL,
        public_jwk text NOT NULL,
        private_jwk text NOT NULL,
        status text NOT NULL,
        created_at bigint NOT NULL,
        retired_at bigint
      );
      CREATE INDEX signing_keys_by_purpose ON signing_keys (purpose, created_at, kid);

      CREATE TABLE operator_keys (
        id text COLLATE "C" PRIMARY KEY,
        name text NOT NULL,
        role text NOT NULL,
        secret_hash text NOT NULL UNIQUE,
        created_at bigint NOT NULL,
        revoked_at bigint
      );

      CREATE TABLE approvals (
        id text COLLATE "C" PRIMARY KEY,
        task_id text COLLATE "C" NOT NULL REFERENCES tasks (id),
        agent_id text NOT NULL,
        tool text NOT NULL,
        args_hash text NOT NULL,
        resource text,
        call_id text NOT NULL,
        state text NOT NULL,
        policy_ids text NOT NULL,
        args text NOT NULL,
        created_at bigint NOT NULL,
        expires_at bigint NOT NULL,
        decided_at bigint,
        decided_by text,
        reason text,
        used_at bigint,
        used_call_id text
      );
      CREATE INDEX approvals_by_binding ON approvals (task_id, tool, args_hash, created_at);
      CREATE INDEX approvals_by_state ON approvals (state, created_at, id);

      CREATE TABLE controls (
        key text PRIMARY KEY,
        value text NOT NULL,
        updated_at bigint NOT NULL
      );

      -- What other nodes must learn about, in commit order (see record_changes).
      -- at: the clock when the entry was made (not the transaction's start), for pruning by age.
      CREATE TABLE changes (
        seq bigserial PRIMARY KEY,
        kind text NOT NULL,
        key text NOT NULL,
        at timestamptz NOT NULL DEFAULT clock_timestamp()
      );
      CREATE INDEX changes_by_at ON changes (at);
      -- the highest seq ever pruned: a listener that last saw less than this has missed changes
      CREATE TABLE changes_pruned (
        id boolean PRIMARY KEY DEFAULT true CHECK (id),
        upto bigint NOT NULL
      );
      INSERT INTO changes_pruned (id, upto) VALUES (true, 0);

      -- Appends changes and notifies listeners, as the last step of the transaction that made
      -- them. Writers take turns on the table (EXCLUSIVE still lets readers read), so seq order
      -- is commit order: a reader that has seen seq N has seen, or will never see, every seq
      -- below N, and "seq > last seen" after a reconnect misses nothing. Holding the lock only
      -- at the end of a transaction, and never waiting on anything after it, rules out deadlocks.
      CREATE FUNCTION record_changes(p_kind text, p_keys text[]) RETURNS integer
      LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
      DECLARE
        r record;
        payload text;
        n integer := 0;
      BEGIN
        IF coalesce(array_length(p_keys, 1), 0) = 0 THEN
          RETURN 0;
        END IF;
        LOCK TABLE changes IN EXCLUSIVE MODE;
        FOR r IN
          INSERT INTO changes (kind, key)
          SELECT p_kind, u.k FROM unnest(p_keys) WITH ORDINALITY AS u (k, i) ORDER BY u.i
          RETURNING changes.seq, changes.kind, changes.key
        LOOP
          payload := json_build_object('seq', r.seq, 'kind', r.kind, 'key', r.key)::text;
          -- a NOTIFY payload must stay under 8000 bytes: without the key, listeners read the row
          IF octet_length(payload) > 7500 THEN
            payload := json_build_object('seq', r.seq)::text;
          END IF;
          PERFORM pg_notify('mandate_changes:' || current_schema(), payload);
          n := n + 1;
        END LOOP;
        RETURN n;
      END
      $fn$;

      -- Checks and counts one call per element, in order, each under row locks on the task's
      -- total (always first) and the tool's counter: exact under any number of connections.
      CREATE FUNCTION spend_budgets(p_tasks text[], p_tools text[], p_calls numeric[], p_tool_calls numeric[])
      RETURNS TABLE (r_ok boolean, r_calls bigint, r_tool_calls bigint, r_exhausted text)
      LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
      DECLARE
        used bigint;
        tool_used bigint;
      BEGIN
        FOR i IN 1 .. coalesce(array_length(p_tasks, 1), 0) LOOP
          -- the tool's row is created only while holding the total's lock: a transaction that
          -- waits for the total never holds a half-inserted tool row another one needs
          INSERT INTO budget_calls AS b (task_id, calls) VALUES (p_tasks[i], 0) ON CONFLICT (task_id) DO NOTHING;
          SELECT b.calls INTO used FROM budget_calls b WHERE b.task_id = p_tasks[i] FOR UPDATE;
          INSERT INTO budget_tool_calls AS b (task_id, tool, calls) VALUES (p_tasks[i], p_tools[i], 0) ON CONFLICT (task_id, tool) DO NOTHING;
          SELECT b.calls INTO tool_used FROM budget_tool_calls b WHERE b.task_id = p_tasks[i] AND b.tool = p_tools[i] FOR UPDATE;
          IF p_calls[i] IS NOT NULL AND used >= p_calls[i] THEN
            r_ok := false; r_calls := used; r_tool_calls := tool_used; r_exhausted := 'calls';
          ELSIF p_tool_calls[i] IS NOT NULL AND tool_used >= p_tool_calls[i] THEN
            r_ok := false; r_calls := used; r_tool_calls := tool_used; r_exhausted := 'tool';
          ELSE
            UPDATE budget_calls b SET calls = b.calls + 1 WHERE b.task_id = p_tasks[i];
            UPDATE budget_tool_calls b SET calls = b.calls + 1 WHERE b.task_id = p_tasks[i] AND b.tool = p_tools[i];
            r_ok := true; r_calls := used + 1; r_tool_calls := tool_used + 1; r_exhausted := NULL;
          END IF;
          RETURN NEXT;
        END LOOP;
      END
      $fn$;
    `,
  },
  // version 2 (approvals, controls) is part of version 1 here: the PostgreSQL store started later
  {
    version: 3,
    name: 'behaviour: alerts and containment',
    sql: `
      CREATE TABLE alerts (
        id text COLLATE "C" PRIMARY KEY,
        ts bigint NOT NULL,
        task_id text COLLATE "C" NOT NULL,
        agent_id text COLLATE "C" NOT NULL,
        call_id text NOT NULL,
        tool text NOT NULL,
        severity text NOT NULL,
        severity_rank integer NOT NULL,
        detectors text NOT NULL,
        signals text NOT NULL,
        actions text NOT NULL,
        policy_effect text NOT NULL,
        final_effect text NOT NULL,
        state text NOT NULL,
        acked_by text,
        acked_at bigint,
        ack_note text
      );
      CREATE INDEX alerts_by_ts ON alerts (ts, id);
      CREATE INDEX alerts_by_task ON alerts (task_id, ts, id);
      CREATE INDEX alerts_by_state ON alerts (state, ts, id);

      -- restrictions only accumulate: a task's containment is the union of its rows
      CREATE TABLE containment (
        task_id text COLLATE "C" NOT NULL,
        action text COLLATE "C" NOT NULL,
        tool text COLLATE "C" NOT NULL,
        agent_id text NOT NULL,
        detector text NOT NULL,
        call_id text NOT NULL,
        reason text NOT NULL,
        created_at bigint NOT NULL,
        PRIMARY KEY (task_id, action, tool)
      );
    `,
  },
  {
    version: 4,
    name: 'task supervision and key binding',
    sql: `
      CREATE TABLE task_supervision (
        task_id text PRIMARY KEY REFERENCES tasks (id),
        jkt text,
        supervised_at bigint NOT NULL
      );
      CREATE INDEX task_supervision_by_time ON task_supervision (supervised_at, task_id);
    `,
  },
  {
    version: 5,
    name: 'behaviour: per-agent counts and chain marks shared between nodes',
    sql: `
      -- each node's latest view of one agent: calls per time bucket and live chain marks (JSON)
      CREATE TABLE behaviour_share (
        node text COLLATE "C" NOT NULL,
        agent_id text COLLATE "C" NOT NULL,
        payload text NOT NULL,
        expires_at bigint NOT NULL,
        PRIMARY KEY (node, agent_id)
      );
      CREATE INDEX behaviour_share_by_expiry ON behaviour_share (expires_at);
    `,
  },
  {
    version: 6,
    name: 'durable alert delivery: alerts in store order, a cursor and a lease per webhook',
    sql: `
      ALTER TABLE alerts ADD COLUMN seq bigint;
      UPDATE alerts SET seq = o.n FROM (SELECT id, row_number() OVER (ORDER BY ts, id) AS n FROM alerts) o WHERE alerts.id = o.id;
      CREATE UNIQUE INDEX alerts_by_seq ON alerts (seq);

      -- one row per webhook: the last alert delivered or dropped, counters, who delivers now
      CREATE TABLE alert_sinks (
        sink text COLLATE "C" PRIMARY KEY,
        cursor bigint NOT NULL,
        delivered bigint NOT NULL DEFAULT 0,
        dropped bigint NOT NULL DEFAULT 0,
        owner text,
        lease_until bigint NOT NULL DEFAULT 0,
        last_error text,
        updated_at bigint NOT NULL
      );
    `,
  },
  {
    version: 7,
    name: 'kill hooks: an outbox of kills in store order (their cursors and leases are in alert_sinks)',
    sql: `
      CREATE TABLE kill_events (
        seq bigint PRIMARY KEY,
        id text COLLATE "C" NOT NULL UNIQUE,
        ts bigint NOT NULL,
        kind text NOT NULL,
        data text NOT NULL
      );
    `,
  },
  {
    version: 8,
    name: 'provenance labels of values written to shared resources, by entry',
    sql: `
      CREATE TABLE label_entries (
        entry text COLLATE "C" PRIMARY KEY,
        store text COLLATE "C" NOT NULL,
        labels integer NOT NULL,
        saturated boolean NOT NULL,
        updated_at bigint NOT NULL,
        expires_at bigint NOT NULL
      );
      CREATE INDEX label_entries_by_store ON label_entries (store, entry);
      CREATE INDEX label_entries_by_expiry ON label_entries (expires_at);
      CREATE INDEX label_entries_by_update ON label_entries (updated_at, entry);
      CREATE TABLE value_labels (
        entry text COLLATE "C" NOT NULL REFERENCES label_entries (entry) ON DELETE CASCADE,
        value_key text COLLATE "C" NOT NULL,
        level text NOT NULL,
        tasks text NOT NULL,
        PRIMARY KEY (entry, value_key)
      );
    `,
  },
];

/** long enough for a real upgrade; a node waiting on another node's migration waits this long */
const MIGRATION_TIMEOUT_MS = 60_000;

/**
 * Brings the schema up to date and returns the versions applied now (empty when it already
 * was). Refuses a schema newer than this build knows: running old code on it could misread or
 * corrupt records.
 */
export async function migrate(config: ClientConfig, schema: string, migrations: readonly Migration[] = MIGRATIONS, now: () => number = Date.now): Promise<number[]> {
  // a connection of its own, without the pool's client-side query timeout: waiting for another
  // node's migration, or running a long step, is bounded by MIGRATION_TIMEOUT_MS instead
  const c = new Client({ ...config, query_timeout: undefined });
  c.on('error', () => undefined); // surfaces as the failing query's error
  await c.connect();
  try {
    await c.query('BEGIN');
    await c.query(`SET LOCAL statement_timeout = ${MIGRATION_TIMEOUT_MS}`);
    // one migrator per schema at a time, across every node; released at COMMIT or ROLLBACK
    await c.query("SELECT pg_advisory_xact_lock(hashtext('mandate.migrate'), hashtext($1))", [schema]);
    const exists = await c.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
    if (exists.rowCount === 0) await c.query(`CREATE SCHEMA ${escapeIdentifier(schema)}`);
    await c.query(`SET LOCAL search_path TO ${escapeIdentifier(schema)}`);
    await c.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY,
      name text NOT NULL,
      applied_at bigint NOT NULL
    )`);
    const applied = new Set((await c.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version));
    refuseUnknownVersions(applied, migrations, `the database schema ${schema}`);
    const done: number[] = [];
    for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
      if (applied.has(m.version)) continue;
      await c.query(m.sql);
      await c.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [m.version, m.name, now()]);
      done.push(m.version);
    }
    await c.query('COMMIT');
    return done;
  } catch (error) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    await c.end().catch(() => undefined);
  }
}
