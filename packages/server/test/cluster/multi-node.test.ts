/**
 * Several nodes over one PostgreSQL (issue 6): three `mandate serve` processes on loopback share
 * a throw-away database. A kill on one node is enforced on the others; budgets and approvals
 * stay exact across nodes; with the database stopped every node denies, and service comes back
 * by itself when it returns.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, TD, http, startAgentTask, startCluster, until, type Cluster, type ClusterNode } from './harness.ts';

describe('three Mandate nodes over one PostgreSQL', () => {
  let cluster: Cluster;

  beforeAll(async () => {
    cluster = await startCluster(3);
  }, 300_000);

  afterAll(async () => cluster.close(), 60_000);

  const [a, b, c] = [() => cluster.nodes[0] as ClusterNode, () => cluster.nodes[1] as ClusterNode, () => cluster.nodes[2] as ClusterNode];
  let agentN = 0;
  const newAgent = () => `spiffe://${TD}/agents/n${++agentN}`;
  const authorize = async (node: ClusterNode, token: string, call: object) => (await http(node.url, 'POST', '/v1/authorize', token, call)).json as { effect: string; reasons: string[]; approval_id: string | null };
  const SEARCH = { tool: 'helpdesk.search_tickets', args: { query: 'refund' } };
  const mandate = (over: object = {}) => ({ purpose: 'cluster test', environment: 'prod', ttl: '30m', tools: [{ name: 'helpdesk.search_tickets' }, { name: 'mail.send' }], data_classes: ['internal'], ...over });

  it('enforces on nodes B and C a kill made on node A', async () => {
    const agent = newAgent();
    const t = await startAgentTask(b(), agent, mandate());
    for (const n of [a(), b(), c()]) expect((await authorize(n, t.token, SEARCH)).effect).toBe('allow');
    const r = await http(a().url, 'POST', '/v1/kill', ADMIN, { agent, reason: 'cluster test' });
    expect(r.status).toBe(200);
    for (const n of [b(), c()]) {
      const d = await until(() => authorize(n, t.token, SEARCH), (x) => x.effect === 'deny', 2000);
      expect(d.reasons.length).toBeGreaterThan(0);
    }
  });

  it('refuses on nodes B and C a token renewed (and so revoked) on node A, after they had accepted it', async () => {
    // one node keeps revocations in memory; several must read them where every node writes them
    const t = await startAgentTask(a(), newAgent(), mandate());
    for (const n of [b(), c()]) expect((await authorize(n, t.token, SEARCH)).effect).toBe('allow');
    const r = await http(a().url, 'POST', `/v1/tasks/${t.id}/renew`, t.token, {});
    expect(r.status).toBe(200);
    const renewed = r.json['token'] as string;
    for (const n of [b(), c()]) {
      expect(await authorize(n, t.token, SEARCH)).toMatchObject({ effect: 'deny', reasons: ['TOKEN_REVOKED'] });
      expect((await authorize(n, renewed, SEARCH)).effect).toBe('allow');
    }
  });

  it('never spends a budget beyond its limit across nodes', async () => {
    const t = await startAgentTask(a(), newAgent(), mandate({ budgets: { calls: 10 } }));
    const all = cluster.nodes;
    const results = await Promise.all(Array.from({ length: 36 }, (_, i) => authorize(all[i % 3] as ClusterNode, t.token, SEARCH)));
    expect(results.filter((d) => d.effect === 'allow').length).toBe(10);
    expect(results.filter((d) => d.effect === 'deny').every((d) => d.reasons[0] === 'BUDGET_EXHAUSTED')).toBe(true);
  });

  it('uses an approval once across nodes', async () => {
    const approver = (await http(a().url, 'POST', '/v1/operators/keys', ADMIN, { name: 'alice', role: 'approver' })).json['key'] as string;
    const t = await startAgentTask(c(), newAgent(), mandate());
    const mail = { tool: 'mail.send', args: { to: 'customer@acme.example' } };
    const held = await authorize(b(), t.token, mail);
    expect(held.effect).toBe('approval_required');
    expect((await http(a().url, 'POST', `/v1/approvals/${held.approval_id}/approve`, approver, { reason: 'ok' })).status).toBe(200);
    const all = cluster.nodes;
    const retries = await Promise.all(Array.from({ length: 12 }, (_, i) => authorize(all[i % 3] as ClusterNode, t.token, mail)));
    expect(retries.filter((d) => d.effect === 'allow').length).toBe(1);
  });

  it('denies on every node while PostgreSQL is down, and recovers by itself', async () => {
    const t = await startAgentTask(a(), newAgent(), mandate());
    expect((await authorize(c(), t.token, SEARCH)).effect).toBe('allow');
    cluster.pg.stop();
    try {
      for (const n of [a(), b(), c()]) {
        const d = await authorize(n, t.token, SEARCH);
        expect(d.effect).toBe('deny');
        expect(['STORE_UNAVAILABLE', 'AUDIT_UNAVAILABLE']).toContain(d.reasons[0]);
        expect((await http(n.url, 'GET', '/readyz')).status).toBe(503);
      }
    } finally {
      cluster.pg.start();
    }
    for (const n of [a(), b(), c()]) {
      await until(() => authorize(n, t.token, SEARCH), (d) => d.effect === 'allow', 20_000);
      expect((await http(n.url, 'GET', '/readyz')).status).toBe(200);
    }
  }, 60_000);
});
