/**
 * A database that goes away under a node: a terminated backend, a cut connection, a server that
 * refuses connections. The node's process must live through each (pg-pool removes its own 'error'
 * listener from a connection it hands out, so an 'error' on a checked-out connection that nobody
 * listens to ends the process), answer STORE_UNAVAILABLE / AUDIT_UNAVAILABLE meanwhile, never
 * reuse a broken connection, and work again by itself afterwards. Only this file's own
 * connections are terminated, found by pid, never anyone else's on the shared server.
 */
import { describe, expect, it } from 'vitest';
import { DatabaseError } from 'pg';
import { MandateError, verifyAuditLog } from '@mandate/core';
import { draft, T0, testHasher } from '../../store-testkit/src/index.ts';
import { unavailableCause, type AvailabilityEvent } from '../src/availability.ts';
import { Db } from '../src/db.ts';
import { admin, eventually, freshSchema, storeHarness } from './support.ts';

const { open, gate: openGate } = storeHarness();

const TERMINATED = /PostgreSQL is unavailable \((57P01: terminating connection due to administrator command|Connection terminated unexpectedly)\)/;

/** what a promise settles to (its error, or 'done'), with a handler attached at once */
function settled(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => 'done',
    (e: unknown) => e,
  );
}

/** terminates one backend from a connection of its own */
async function terminate(pid: number): Promise<void> {
  await admin(async (c) => {
    const r = await c.query<{ ok: boolean }>('SELECT pg_terminate_backend($1) AS ok', [pid]);
    expect(r.rows[0]?.ok).toBe(true);
  });
}

describe('postgres store: the database goes away under a transaction', () => {
  it('lives through the backend of a checked-out transaction being terminated between statements, and destroys that connection', async () => {
    const s = await open(freshSchema(), { poolSize: 1 });
    const db = new Db(s.unsafePool());
    let pid = 0;
    const result = db.tx(async (c) => {
      pid = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid ?? 0;
      // idle in the transaction, no statement running: the loss arrives as an 'error' event only
      await terminate(pid);
      await new Promise((r) => setTimeout(r, 200));
      return (await c.query('SELECT 1 AS one')).rows;
    });
    await expect(result).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    await expect(result).rejects.toThrow(TERMINATED);
    // the one pooled connection was dropped, not handed out again: the next one is a new backend
    const next = await db.tx(async (c) => (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid);
    expect(next).toBeDefined();
    expect(next).not.toBe(pid);
  });

  it('lives through the backend of a group commit being terminated while it waits on the chain head, and commits again after', async () => {
    const events: AvailabilityEvent[] = [];
    const s = await open(freshSchema(), { onAvailability: (e) => events.push(e) });
    await s.audit.append([draft(1)]);
    await admin(async (holder) => {
      await holder.query('BEGIN');
      await holder.query(`SELECT * FROM "${s.schema}".audit_head FOR UPDATE`);
      const holderPid = (await holder.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid;
      const append = settled(s.audit.append([draft(2)]));
      // the store's transaction, and only it, waits on this connection's lock
      let waiting: number | undefined;
      await eventually('the commit waits on the chain head', async () => {
        const r = await holder.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE $1::int = ANY(pg_blocking_pids(pid))', [holderPid]);
        waiting = r.rows[0]?.pid;
        return waiting !== undefined;
      });
      await terminate(waiting as number);
      const error = await append;
      expect(error).toMatchObject({ code: 'AUDIT_UNAVAILABLE' });
      expect((error as Error).message).toMatch(TERMINATED);
      await holder.query('ROLLBACK');
    });
    // the connection's end arrives after the statement's error: give it time to reach (no) listener
    await new Promise((r) => setTimeout(r, 200));
    const [rec] = await s.audit.append([draft(3)]);
    expect(rec?.seq).toBe(2);
    expect(await verifyAuditLog(s.audit, [], new Map(), testHasher)).toMatchObject({ ok: true, records: 2 });
    expect(events.map((e) => e.kind)).toEqual(['unavailable', 'recovered']);
  });

  it('lives through a connection cut by the network mid-transaction, and recovers when it heals', async () => {
    const gate = await openGate();
    const s = await open(freshSchema(), { url: gate.url });
    await s.audit.append([draft(1)]);
    await admin(async (holder) => {
      await holder.query('BEGIN');
      await holder.query(`SELECT * FROM "${s.schema}".audit_head FOR UPDATE`);
      const holderPid = (await holder.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid;
      const append = settled(s.audit.append([draft(2)]));
      await eventually('the commit waits on the chain head', async () => {
        const r = await holder.query('SELECT pid FROM pg_stat_activity WHERE $1::int = ANY(pg_blocking_pids(pid))', [holderPid]);
        return r.rows.length > 0;
      });
      gate.close({ cut: true });
      expect(await append).toMatchObject({ code: 'AUDIT_UNAVAILABLE' });
      await holder.query('ROLLBACK');
    });
    await new Promise((r) => setTimeout(r, 200));
    await expect(s.tasks.getTask('task-1')).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    gate.open();
    await eventually('the store answers again', () => s.ping(), 10_000);
    const [rec] = await s.audit.append([draft(3)]);
    expect(rec?.seq).toBe(2);
  });

  it('answers STORE_UNAVAILABLE, not a driver error, while no connection can be made, without naming the server, and reports the outage once', async () => {
    const gate = await openGate();
    const events: AvailabilityEvent[] = [];
    const s = await open(freshSchema(), { url: gate.url, onAvailability: (e) => events.push(e) });
    gate.close({ cut: true });
    const port = new URL(gate.url).port;
    for (const read of [() => s.tasks.getTask('task-1'), () => s.agents.getAgent('a'), () => s.controls.getControl('k'), () => s.budgets.consume('task-1', 'kb.search', {})]) {
      const error = await settled(read());
      expect(error).toBeInstanceOf(MandateError);
      expect(error).toMatchObject({ code: 'STORE_UNAVAILABLE' });
      expect((error as Error).message).not.toContain(port);
    }
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ kind: 'unavailable' });
    gate.open();
    await eventually('the store answers again', () => s.ping(), 10_000);
    expect(await s.tasks.getTask('task-1')).toBeUndefined();
    expect(events.map((e) => e.kind)).toEqual(['unavailable', 'recovered']);
  });

  it('lives through every idle pooled connection and the change feed being terminated at once', async () => {
    const gate = await openGate();
    const s = await open(freshSchema(), { url: gate.url });
    const lost: unknown[] = [];
    const back: { downMs: number }[] = [];
    const sub = await s.subscribe(() => undefined, { onLost: (e) => lost.push(e), onReconnect: (o) => back.push(o) });
    // fill the pool with idle connections
    await Promise.all(Array.from({ length: 4 }, () => s.audit.readRange(1, 1)));
    await admin((c) => c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE client_port = ANY($1::int[])', [gate.upstreamPorts()]));
    await eventually('the feed notices', () => lost.length === 1);
    await eventually('the feed is back', () => sub.connected && back.length === 1, 10_000);
    await expect(s.audit.append([draft(1)])).resolves.toHaveLength(1);
  });
});

describe('postgres store: what counts as the database being unavailable', () => {
  const dbError = (code: string, message: string) => Object.assign(new DatabaseError(message, 0, 'error'), { code });

  it('names an outage by its SQLSTATE or socket code, and leaves every other error alone', () => {
    expect(unavailableCause(dbError('57P01', 'terminating connection due to administrator command'))).toBe('57P01: terminating connection due to administrator command');
    expect(unavailableCause(dbError('57P03', 'the database system is starting up'))).toBe('57P03: the database system is starting up');
    expect(unavailableCause(dbError('08006', 'connection failure'))).toBe('08006: connection failure');
    expect(unavailableCause(dbError('53300', 'sorry, too many clients already'))).toBe('53300: sorry, too many clients already');
    expect(unavailableCause(Object.assign(new Error('connect ECONNREFUSED 10.1.2.3:5432'), { code: 'ECONNREFUSED' }))).toBe('ECONNREFUSED');
    expect(unavailableCause(new Error('Connection terminated unexpectedly'))).toBe('Connection terminated unexpectedly');
    expect(unavailableCause(dbError('23505', 'duplicate key value violates unique constraint'))).toBeUndefined();
    expect(unavailableCause(dbError('42601', 'syntax error'))).toBeUndefined();
    expect(unavailableCause(new TypeError('bad value'))).toBeUndefined();
    expect(unavailableCause(new MandateError('CONFLICT', 'x'))).toBeUndefined();
    expect(unavailableCause('text')).toBeUndefined();
  });

  it('keeps a constraint error a conflict, not an outage', async () => {
    const s = await open(freshSchema());
    await s.revocations.revokeToken('jti-1', 'task-1', T0 + 1, 'r', T0);
    const agent = { id: 'spiffe://acme.test/agents/a', owner: 'o', type: 't', status: 'active' as const, ceiling: {}, createdAt: T0, updatedAt: T0 };
    await s.agents.createAgent(agent);
    await expect(s.agents.createAgent(agent)).rejects.toMatchObject({ code: 'CONFLICT' });
  });
});
