import type { AlertSinkStore, AlertStore, BehaviourShareStore, ContainmentLifts, ContainmentStore, SharedMark, SharedScope } from '@mandate/core';
import { ALERT_COLUMNS, alertColumns, SEVERITY_RANK, toAlert, toAlertSink, toRestriction } from '@mandate/store-sql';
import { checkLimit, mapConstraint, nullable, num, str, type Db } from './db.ts';

export function postgresAlerts(db: Db) {
  const get = async (id: string) => {
    const r = await db.row('SELECT * FROM alerts WHERE id = $1', [id]);
    return r === undefined ? undefined : toAlert(r);
  };
  return {
    async createAlert(a) {
      const cols = alertColumns(a);
      try {
        // its place in the store's order: numbers are taken under a lock held to the commit, so
        // a later number never commits before an earlier one (a cursor never skips an alert)
        await db.tx(async (c) => {
          await c.query("SELECT pg_advisory_xact_lock(hashtext('mandate.alerts'), hashtext(current_schema()))");
          await c.query(`INSERT INTO alerts (${ALERT_COLUMNS}, seq) VALUES (${cols.map((_, i) => `$${i + 1}`).join(', ')}, (SELECT COALESCE(MAX(seq), 0) + 1 FROM alerts))`, cols);
        });
      } catch (error) {
        mapConstraint(error, `alert ${a.id}`);
      }
    },

    getAlert: get,

    async listAlerts({ limit, after, state, taskId, agentId, minSeverity }) {
      const where: string[] = [];
      const params: unknown[] = [];
      const param = (v: unknown): string => {
        params.push(v);
        return `$${params.length}`;
      };
      if (state !== undefined) where.push(`state = ${param(state)}`);
      if (taskId !== undefined) where.push(`task_id = ${param(taskId)}`);
      if (agentId !== undefined) where.push(`agent_id = ${param(agentId)}`);
      if (minSeverity !== undefined) where.push(`severity_rank >= ${param(SEVERITY_RANK[minSeverity])}`);
      if (after !== undefined) where.push(`(ts, id) > (SELECT ts, id FROM alerts WHERE id = ${param(after)})`);
      const clause = where.length === 0 ? '' : `WHERE ${where.join(' AND ')}`;
      return (await db.rows(`SELECT * FROM alerts ${clause} ORDER BY ts, id LIMIT ${param(checkLimit(limit))}`, params)).map(toAlert);
    },

    async ackAlert(id, by, at, note) {
      const r = await db.row("UPDATE alerts SET state = 'acknowledged', acked_by = $2, acked_at = $3, ack_note = $4 WHERE id = $1 AND state = 'open' RETURNING *", [id, by, at, nullable(note)]);
      return r === undefined ? { changed: false, alert: await get(id) } : { changed: true, alert: toAlert(r) };
    },
  } satisfies AlertStore;
}

export function postgresContainment(db: Db) {
  return {
    async addRestrictions(rows) {
      if (rows.length === 0) return;
      // the rows and their feed entry commit together: every node drops its cached containment
      await db.tx(async (c) => {
        for (const r of rows) {
          await c.query(
            `INSERT INTO containment (task_id, action, tool, agent_id, detector, call_id, reason, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (task_id, action, tool) DO NOTHING`,
            [r.taskId, r.action, r.tool, r.agentId, r.detector, r.callId, r.reason, r.createdAt],
          );
        }
        await c.query("SELECT record_changes('containment', $1::text[])", [[...new Set(rows.map((r) => r.taskId))]]);
      });
    },

    async listRestrictions(taskId) {
      return (await db.rows('SELECT * FROM containment WHERE task_id = $1 ORDER BY created_at, action, tool', [taskId])).map(toRestriction);
    },

    async liftRestrictions(taskId, rows) {
      if (rows.length === 0) return [];
      // the removal and its feed entry commit together: every node drops its cached containment
      return db.tx(async (c) => {
        const lifted = [];
        for (const r of rows) {
          const res = await c.query('DELETE FROM containment WHERE task_id = $1 AND action = $2 AND tool = $3 AND created_at = $4 RETURNING *', [taskId, r.action, r.tool, r.createdAt]);
          for (const row of res.rows) lifted.push(toRestriction(row));
        }
        await c.query("SELECT record_changes('containment', $1::text[])", [[taskId]]);
        return lifted;
      });
    },
  } satisfies ContainmentStore & ContainmentLifts;
}

export function postgresAlertSinks(db: Db) {
  const sinkState = async (sink: string) => {
    const r = await db.row('SELECT * FROM alert_sinks WHERE sink = $1', [sink]);
    return r === undefined ? undefined : toAlertSink(r);
  };
  return {
    async alertHead() {
      return Number((await db.row('SELECT COALESCE(MAX(seq), 0) AS head FROM alerts'))?.['head'] ?? 0);
    },

    async alertsAfter(after, limit) {
      return (await db.rows('SELECT * FROM alerts WHERE seq > $1 ORDER BY seq LIMIT $2', [after, checkLimit(limit)])).map((r) => ({ seq: Number(r['seq']), alert: toAlert(r) }));
    },

    async openSink(sink, now) {
      await db.run('INSERT INTO alert_sinks (sink, cursor, updated_at) VALUES ($1, (SELECT COALESCE(MAX(seq), 0) FROM alerts), $2) ON CONFLICT (sink) DO NOTHING', [sink, now]);
      const state = await sinkState(sink);
      if (state === undefined) throw new Error(`alert sink ${sink} could not be opened`);
      return state;
    },

    async claimSink(sink, owner, now, until) {
      const r = await db.row(
        'UPDATE alert_sinks SET owner = $2, lease_until = $3, updated_at = $4 WHERE sink = $1 AND (owner IS NULL OR owner = $2 OR lease_until <= $4) RETURNING *',
        [sink, owner, until, now],
      );
      return r === undefined ? undefined : toAlertSink(r);
    },

    async advanceSink(sink, owner, to, counts, lastError, now) {
      const r = await db.row(
        'UPDATE alert_sinks SET cursor = GREATEST(cursor, $3), delivered = delivered + $4, dropped = dropped + $5, last_error = $6, updated_at = $7 WHERE sink = $1 AND owner = $2 RETURNING sink',
        [sink, owner, to, counts.delivered, counts.dropped, nullable(lastError), now],
      );
      return r !== undefined;
    },

    async releaseSink(sink, owner) {
      await db.run('UPDATE alert_sinks SET owner = NULL, lease_until = 0 WHERE sink = $1 AND owner = $2', [sink, owner]);
    },

    async listSinks() {
      return (await db.rows('SELECT * FROM alert_sinks ORDER BY sink')).map(toAlertSink);
    },
  } satisfies AlertSinkStore;
}

/** the shared scopes as a payload column: what mergeShared reads, nothing else */
function toPayload(s: SharedScope): string {
  return JSON.stringify({ b: s.buckets, m: s.marks.map((m) => [m.rule, m.step, m.until, m.calls]) });
}

const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** a row another node wrote; a malformed one is skipped (it can only make the counts smaller, and is logged by the caller as fewer rows) */
function fromPayload(agentId: string, payload: string, expiresAt: number): SharedScope | undefined {
  let v: unknown;
  try {
    v = JSON.parse(payload);
  } catch {
    return undefined;
  }
  if (v === null || typeof v !== 'object') return undefined;
  const { b, m } = v as { b?: unknown; m?: unknown };
  if (!Array.isArray(b) || !Array.isArray(m)) return undefined;
  const buckets: [number, number, number][] = [];
  for (const x of b as unknown[]) if (Array.isArray(x) && x.length === 3 && x.every(isNum)) buckets.push([x[0], x[1], x[2]] as [number, number, number]);
  const marks: SharedMark[] = [];
  for (const x of m as unknown[]) {
    if (!Array.isArray(x) || x.length !== 4) continue;
    const [rule, step, until, calls] = x as unknown[];
    if (typeof rule !== 'string' || !isNum(step) || !isNum(until) || !Array.isArray(calls) || !calls.every((c) => typeof c === 'string')) continue;
    marks.push({ rule, step, until, calls: calls as string[] });
  }
  return { agentId, buckets, marks, expiresAt };
}

/** Several nodes: each node's per-agent counts and chain marks (core behaviour/share.ts). */
export function postgresBehaviourShare(db: Db) {
  return {
    async publish(node, scopes) {
      if (scopes.length === 0) return;
      // one row per agent: the latest of the batch
      const latest = new Map<string, SharedScope>();
      for (const s of scopes) latest.set(s.agentId, s);
      const rows = [...latest.values()];
      await db.run(
        `INSERT INTO behaviour_share (node, agent_id, payload, expires_at)
         SELECT $1, t.a, t.p, t.e FROM unnest($2::text[], $3::text[], $4::bigint[]) AS t(a, p, e)
         ON CONFLICT (node, agent_id) DO UPDATE SET payload = excluded.payload, expires_at = excluded.expires_at`,
        [node, rows.map((r) => r.agentId), rows.map(toPayload), rows.map((r) => Math.ceil(r.expiresAt))],
      );
    },

    async read(node, now, limit) {
      const rows = await db.rows('SELECT agent_id, payload, expires_at FROM behaviour_share WHERE node <> $1 AND expires_at > $2 LIMIT $3', [node, Math.floor(now), checkLimit(limit)]);
      const out: SharedScope[] = [];
      for (const r of rows) {
        const s = fromPayload(str(r, 'agent_id'), str(r, 'payload'), num(r, 'expires_at'));
        if (s !== undefined) out.push(s);
      }
      return out;
    },

    async prune(now) {
      return db.run('DELETE FROM behaviour_share WHERE expires_at <= $1', [Math.floor(now)]);
    },
  } satisfies BehaviourShareStore;
}
