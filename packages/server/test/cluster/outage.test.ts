/**
 * Three `mandate serve` nodes deciding calls at once while their PostgreSQL stops (pg_ctl stop
 * -m fast), crashes (-m immediate) and is SIGKILLed, each time started again. A node must stay up
 * through all of it (a pooled connection's unheard 'error' used to end every node), deny with
 * STORE_UNAVAILABLE / AUDIT_UNAVAILABLE and report not ready while the database is away, answer
 * its operator routes with 503, come back by itself, and never have told a client "allow" for a
 * call whose audit records are not in the database afterwards (audit before act).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAuditLog, type AuditRecord } from '@mandate/core';
import { openPostgresStore } from '@mandate/store-postgres';
import { sha256Hasher } from '../../src/index.ts';
import { ADMIN, TD, http, startAgentTask, startCluster, type Cluster, type ClusterNode } from './harness.ts';

interface Answer {
  readonly node: string;
  readonly callId: string;
  readonly at: number;
  readonly status: number | undefined;
  readonly effect: string | undefined;
  readonly reasons: readonly string[];
  /** the request itself failed: the node was not there to answer */
  readonly transport: string | undefined;
}

const WORKERS_PER_NODE = 4;
const UNAVAILABLE = new Set(['STORE_UNAVAILABLE', 'AUDIT_UNAVAILABLE']);
const SEARCH = { tool: 'helpdesk.search_tickets', args: { query: 'refund' } };
const MANDATE = { purpose: 'outage test', environment: 'prod', ttl: '30m', tools: [{ name: 'helpdesk.search_tickets' }], data_classes: ['internal'] };

describe('nodes over a PostgreSQL that stops, crashes and is killed', () => {
  let cluster: Cluster;

  beforeAll(async () => {
    // info: the outage and recovery lines are part of what is checked
    cluster = await startCluster(3, 'info');
    // a slow disk: every audit commit takes 20 ms more, so each node nearly always has a
    // transaction in flight when the database goes (what a loaded production node has)
    const store = await openPostgresStore({ url: cluster.pg.url, hasher: sha256Hasher, schema: 'mandate' });
    try {
      await store.unsafePool().query(`CREATE FUNCTION slow_disk() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.02); RETURN NULL; END $$;
        CREATE TRIGGER slow_disk AFTER INSERT ON audit_log FOR EACH STATEMENT EXECUTE FUNCTION slow_disk()`);
    } finally {
      await store.close();
    }
  }, 120_000);

  afterAll(async () => cluster.close(), 60_000);

  it('stay up, deny while it is away, come back by themselves and lose no acknowledged allow', async () => {
    const nodes = cluster.nodes;
    const answers: Answer[] = [];
    const tokens = await Promise.all(nodes.map(async (n, i) => (await startAgentTask(n, `spiffe://${TD}/agents/outage-${i}`, MANDATE)).token));
    const svid = (await http(nodes[0]!.url, 'POST', '/v1/dev/workload-tokens', ADMIN, { spiffe_id: `spiffe://${TD}/agents/outage-0` })).json['token'] as string;

    // the load: every worker sends one call after another, each with its own call id
    let running = true;
    const worker = async (node: ClusterNode, w: number): Promise<void> => {
      for (let n = 0; running; n++) {
        const callId = `${node.name}-${w}-${n}`;
        try {
          const r = await http(node.url, 'POST', '/v1/authorize', tokens[w % tokens.length], { ...SEARCH, call_id: callId });
          answers.push({ node: node.name, callId, at: Date.now(), status: r.status, effect: r.json['effect'] as string, reasons: (r.json['reasons'] as string[] | undefined) ?? [], transport: undefined });
        } catch (e) {
          answers.push({ node: node.name, callId, at: Date.now(), status: undefined, effect: undefined, reasons: [], transport: (e as Error).message });
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    };
    const load = nodes.flatMap((n) => Array.from({ length: WORKERS_PER_NODE }, (_, w) => worker(n, w)));
    const since = (t: number, ok: (a: Answer) => boolean) => (node: ClusterNode) => answers.some((a) => a.node === node.name && a.at >= t && ok(a));
    const allowed = (a: Answer) => a.effect === 'allow';
    const unavailable = (a: Answer) => a.effect === 'deny' && a.reasons.some((r) => UNAVAILABLE.has(r));
    const recoveries: Record<string, number> = {};
    /** polls `check`; fails at once, with its last words, if a node's process has ended */
    const waitFor = async (what: string, check: () => boolean | Promise<boolean>, ms: number): Promise<void> => {
      const end = Date.now() + ms;
      for (;;) {
        for (const n of nodes) {
          if (n.proc.exitCode !== null || n.proc.signalCode !== null) {
            throw new Error(`node ${n.name} ended (exit ${String(n.proc.exitCode)}, signal ${String(n.proc.signalCode)}) while waiting until ${what}:\n${n.log().split('\n').filter((l) => !l.includes('request completed')).slice(-15).join('\n')}`);
          }
        }
        if (await check()) return;
        if (Date.now() > end) throw new Error(`not true within ${ms} ms: ${what}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    const status = async (n: ClusterNode, path: string) => (await http(n.url, 'GET', path).catch(() => ({ status: 0 }))).status;

    try {
      for (const mode of ['fast', 'immediate', 'kill'] as const) {
        // decisions are flowing on every node: the database goes away under commits in flight
        const before = Date.now();
        const flowing = (n: ClusterNode) => answers.filter((a) => a.node === n.name && a.at >= before && allowed(a)).length >= 20;
        for (const n of nodes) await waitFor(`${n.name} allows calls before ${mode}`, () => flowing(n), 60_000);

        const down = Date.now();
        if (mode === 'kill') await cluster.pg.kill();
        else cluster.pg.stop(mode);
        try {
          for (const n of nodes) {
            await waitFor(`${n.name} denies with the store unavailable (${mode})`, () => since(down, unavailable)(n), 30_000);
            await waitFor(`${n.name} reports not ready (${mode})`, async () => (await status(n, '/readyz')) === 503, 30_000);
            expect((await http(n.url, 'GET', '/healthz')).status).toBe(200);
            // an operator route that needs the store answers 503 with a stable code, not a 500
            const list = await http(n.url, 'GET', '/v1/agents', ADMIN);
            expect(list.status).toBe(503);
            expect(UNAVAILABLE.has((list.json['error'] as { code: string }).code)).toBe(true);
            const start = await http(n.url, 'POST', '/v1/tasks', svid, { mandate: MANDATE });
            expect(start.status).toBe(503);
            expect(UNAVAILABLE.has((start.json['error'] as { code: string }).code)).toBe(true);
          }
          // away long enough for reconnects to fail and back off
          await new Promise((r) => setTimeout(r, Math.max(0, down + 2_000 - Date.now())));
        } finally {
          cluster.pg.start();
        }
        const up = Date.now();
        for (const n of nodes) {
          await waitFor(`${n.name} is ready again (${mode})`, async () => (await status(n, '/readyz')) === 200, 60_000);
          await waitFor(`${n.name} allows again (${mode})`, () => since(up, allowed)(n), 60_000);
        }
        recoveries[mode] = Date.now() - up;
      }
    } finally {
      running = false;
      await Promise.all(load);
    }
    console.info(`outage test: ${answers.length} calls, ${answers.filter(allowed).length} allowed; every node allowing again after ${JSON.stringify(recoveries)} ms`);

    // every node is still the process it was
    for (const n of nodes) expect({ node: n.name, exit: n.proc.exitCode, signal: n.proc.signalCode }).toEqual({ node: n.name, exit: null, signal: null });
    // every call got an answer: allow, or a deny that says the store is away
    expect(answers.filter((a) => a.transport !== undefined)).toEqual([]);
    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    expect(answers.filter((a) => !allowed(a) && !(a.effect === 'deny' && a.reasons.length > 0 && a.reasons.every((r) => UNAVAILABLE.has(r))))).toEqual([]);
    for (const n of nodes) {
      const log = n.log();
      expect(log).toMatch(/PostgreSQL is unavailable|change feed lost its connection/);
      expect(log).toMatch(/PostgreSQL answers again|change feed listening again/);
      // a driver error carries its client (connection settings and all): never logged whole
      expect(log).not.toMatch(/connectionParameters|"client":\{/);
      // the process-level safety net never had to catch anything: the listeners did
      expect(log).not.toMatch(/reached no listener|uncaught exception/);
    }

    // audit before act: each allow a client saw has its decision and its action in the database
    const store = await openPostgresStore({ url: cluster.pg.url, hasher: sha256Hasher, schema: 'mandate' });
    try {
      const byCall = new Map<string, AuditRecord[]>();
      for (let from = 1; ; ) {
        const page = await store.audit.readRange(from, 1000);
        if (page.length === 0) break;
        for (const r of page) if (r.callId !== undefined) byCall.set(r.callId, [...(byCall.get(r.callId) ?? []), r]);
        from = (page.at(-1)?.seq ?? from) + 1;
      }
      const missing = answers.filter(allowed).filter((a) => {
        const records = byCall.get(a.callId) ?? [];
        const decision = records.find((r) => r.kind === 'decision');
        const action = records.find((r) => r.kind === 'action');
        return (decision?.data as { effect?: string } | undefined)?.effect !== 'allow' || (action?.data as { final?: string } | undefined)?.final !== 'allowed';
      });
      expect(missing).toEqual([]);
      expect(await verifyAuditLog(store.audit, [], new Map(), sha256Hasher)).toMatchObject({ ok: true });
    } finally {
      await store.close();
    }
  }, 300_000);
});
