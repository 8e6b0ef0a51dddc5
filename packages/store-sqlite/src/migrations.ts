/**
 * Numbered schema steps. A step is never edited once released: a change is a new step. All
 * pending steps run in one transaction at open, so a crash mid-upgrade leaves the old schema.
 */
import { num, type Sql } from './sql.ts';
import { refuseUnknownVersions, type Migration } from '@mandate/store-sql';

export type { Migration } from '@mandate/store-sql';

// STRICT tables make SQLite refuse a value of the wrong type instead of storing it silently.
// Timestamps are INTEGER milliseconds since the epoch; JSON columns hold canonical JSON text.
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    sql: `
      CREATE TABLE agents (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        type TEXT NOT NULL,
        status TEXT NOT NULL,
        ceiling TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      ) STRICT;

      CREATE TABLE tasks (
        id TEXT PRIMARY KEY,
        agent_id TEXT NOT NULL REFERENCES agents (id),
        mandate TEXT NOT NULL,
        mandate_hash TEXT NOT NULL,
        state TEXT NOT NULL,
        txn TEXT NOT NULL,
        parent_id TEXT REFERENCES tasks (id),
        depth INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        max_expires_at INTEGER NOT NULL,
        ended_at INTEGER,
        end_reason TEXT
      ) STRICT;
      CREATE INDEX tasks_by_created ON tasks (created_at, id);
      CREATE INDEX tasks_by_agent ON tasks (agent_id, created_at, id);
      CREATE INDEX tasks_by_state ON tasks (state, created_at, id);
      CREATE INDEX tasks_by_parent ON tasks (parent_id);

      CREATE TABLE revoked_tokens (
        jti TEXT PRIMARY KEY,
        task_id TEXT NOT NULL,
        expires_at INTEGER NOT NULL,
        reason TEXT NOT NULL,
        revoked_at INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX revoked_tokens_by_expiry ON revoked_tokens (expires_at);
      CREATE INDEX revoked_tokens_by_task ON revoked_tokens (task_id);

      CREATE TABLE budget_calls (
        task_id TEXT PRIMARY KEY,
        calls INTEGER NOT NULL
      ) STRICT;
      CREATE TABLE budget_tool_calls (
        task_id TEXT NOT NULL,
        tool TEXT NOT NULL,
        calls INTEGER NOT NULL,
        PRIMARY KEY (task_id, tool)
      ) STRICT, WITHOUT ROWID;

      CREATE TABLE audit_log (
        seq INTEGER PRIMARY KEY,
        ts INTEGER NOT NULL,
        kind TEXT NOT NULL,
        call_id TEXT,
        task_id TEXT,
        agent_id TEXT,
        txn TEXT,
        data TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
      ) STRICT;
      CREATE INDEX audit_log_by_task ON audit_log (task_id, seq);
      CREATE INDEX audit_log_by_call ON audit_log (call_id, seq);

      -- no uniqueness on seq: re-signing the same head (say, with a new key) is legitimate
      CREATE TABLE checkpoints (
        id INTEGER PRIMARY KEY,
        seq INTEGER NOT NULL,
        head_hash TEXT NOT NULL,
        ts INTEGER NOT NULL,
        kid TEXT NOT NULL,
        signature TEXT NOT NULL
      ) STRICT;
      CREATE INDEX checkpoints_by_seq ON checkpoints (seq, id);

      CREATE TABLE signing_keys (
        kid TEXT PRIMARY KEY,
        purpose TEXT NOT NULL,
        alg TEXT NOT NULL,
        public_jwk TEXT NOT NULL,
        private_jwk TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        retired_at INTEGER
      ) STRICT;
      CREATE INDEX signing_keys_by_purpose ON signing_keys (purpose, created_at, kid);

      CREATE TABLE operator_keys (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        role TEXT NOT NULL,
        secret_hash TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL,
        revoked_at INTEGER
      ) STRICT;
    `,
  },
  {
    version: 2,
    name: 'approvals and controls',
    sql: `
      CREATE TABLE approvals (
        id TEXT PRIMARY KEY,
        task_id TEXT NOT NULL REFERENCES tasks (id),
        agent_id TEXT NOT NULL,
        tool TEXT NOT NULL,
        args_hash TEXT NOT NULL,
        resource TEXT,
        call_id TEXT NOT NULL,
        state TEXT NOT NULL,
        policy_ids TEXT NOT NULL,
        args TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        decided_at INTEGER,
        decided_by TEXT,
        reason TEXT,
        used_at INTEGER,
        used_call_id TEXT
      ) STRICT;
      CREATE INDEX approvals_by_binding ON approvals (task_id, tool, args_hash, created_at);
      CREATE INDEX approvals_by_state ON approvals (state, created_at, id);

      CREATE TABLE controls (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated_at INTEGER NOT NULL
      ) STRICT;
    `,
  },
  {
    version: 3,
    name: 'behaviour: alerts and containment',
    sql: `
      CREATE TABLE alerts (
        id TEXT PRIMARY KEY,
        ts INTEGER NOT NULL,
        task_id TEXT NOT NULL,
        agent_id TEXT NOT NULL,
        call_id TEXT NOT NULL,
        tool TEXT NOT NULL,
        severity TEXT NOT NULL,
        severity_rank INTEGER NOT NULL,
        detectors TEXT NOT NULL,
        signals TEXT NOT NULL,
        actions TEXT NOT NULL,
        policy_effect TEXT NOT NULL,
        final_effect TEXT NOT NULL,
        state TEXT NOT NULL,
        acked_by TEXT,
        acked_at INTEGER,
        ack_note TEXT
      ) STRICT;
      CREATE INDEX alerts_by_ts ON alerts (ts, id);
      CREATE INDEX alerts_by_task ON alerts (task_id, ts, id);
      CREATE INDEX alerts_by_state ON alerts (state, ts, id);

      -- restrictions only accumulate: a task's containment is the union of its rows
      CREATE TABLE containment (
        task_id TEXT NOT NULL,
        action TEXT NOT NULL,
        tool TEXT NOT NULL,
        agent_id TEXT NOT NULL,
        detector TEXT NOT NULL,
        call_id TEXT NOT NULL,
        reason TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (task_id, action, tool)
      ) STRICT, WITHOUT ROWID;
    `,
  },
  {
    version: 4,
    name: 'task supervision and key binding',
    sql: `
      CREATE TABLE task_supervision (
        task_id TEXT PRIMARY KEY REFERENCES tasks (id),
        jkt TEXT,
        supervised_at INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX task_supervision_by_time ON task_supervision (supervised_at, task_id);
    `,
  },
  {
    version: 5,
    name: 'durable alert delivery: alerts in store order, a cursor and a lease per webhook',
    sql: `
      ALTER TABLE alerts ADD COLUMN seq INTEGER;
      UPDATE alerts SET seq = rowid;
      CREATE UNIQUE INDEX alerts_by_seq ON alerts (seq);

      -- one row per webhook: the last alert delivered or dropped, counters, who delivers now
      CREATE TABLE alert_sinks (
        sink TEXT PRIMARY KEY,
        cursor INTEGER NOT NULL,
        delivered INTEGER NOT NULL DEFAULT 0,
        dropped INTEGER NOT NULL DEFAULT 0,
        owner TEXT,
        lease_until INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        updated_at INTEGER NOT NULL
      ) STRICT;
    `,
  },
  {
    version: 6,
    name: 'kill hooks: an outbox of kills in store order (their cursors and leases are in alert_sinks)',
    sql: `
      CREATE TABLE kill_events (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        ts INTEGER NOT NULL,
        kind TEXT NOT NULL,
        data TEXT NOT NULL
      ) STRICT;
    `,
  },
  {
    version: 7,
    name: 'provenance labels of values written to shared resources, by entry',
    sql: `
      CREATE TABLE label_entries (
        entry TEXT PRIMARY KEY,
        store TEXT NOT NULL,
        labels INTEGER NOT NULL,
        saturated INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX label_entries_by_store ON label_entries (store, entry);
      CREATE INDEX label_entries_by_expiry ON label_entries (expires_at);
      CREATE INDEX label_entries_by_update ON label_entries (updated_at, entry);
      CREATE TABLE value_labels (
        entry TEXT NOT NULL REFERENCES label_entries (entry) ON DELETE CASCADE,
        value_key TEXT NOT NULL,
        level TEXT NOT NULL,
        tasks TEXT NOT NULL,
        PRIMARY KEY (entry, value_key)
      ) STRICT, WITHOUT ROWID;
    `,
  },
];

/**
 * Brings the schema up to date and returns the versions applied now (empty when it already
 * was). Refuses a database whose schema is newer than this build knows: running old code on
 * it could misread or corrupt records.
 */
export function migrate(sql: Sql, migrations: readonly Migration[] = MIGRATIONS, now: () => number = Date.now): number[] {
  return sql.tx(() => {
    sql.db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version INTEGER PRIMARY KEY,
      name TEXT NOT NULL,
      applied_at INTEGER NOT NULL
    ) STRICT`);
    const applied = new Set(sql.all('SELECT version FROM schema_migrations').map((r) => num(r, 'version')));
    refuseUnknownVersions(applied, migrations, 'the database');
    const done: number[] = [];
    for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
      if (applied.has(m.version)) continue;
      sql.db.exec(m.sql);
      sql.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)', m.version, m.name, now());
      done.push(m.version);
    }
    return done;
  });
}
