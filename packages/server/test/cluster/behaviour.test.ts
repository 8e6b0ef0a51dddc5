/**
 * Behaviour over three `mandate serve` nodes and one throw-away PostgreSQL: an agent whose calls
 * are spread round-robin over the nodes (and over tasks) is judged on all of them, once the nodes
 * have exchanged their counts (behaviour.share; the bound is in docs/behaviour.md). Each node
 * reports its exchanges on /readyz, so the test waits on them rather than on the clock.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TD, http, startAgentTask, startCluster, until, type Cluster, type ClusterNode } from './harness.ts';

interface Decided {
  effect: string;
  call_id: string;
  signals?: { detector: string; severity: string; evidence: Record<string, unknown> }[];
}

const MAX = 12;

describe('behaviour across three nodes over one PostgreSQL', () => {
  let cluster: Cluster;

  beforeAll(async () => {
    cluster = await startCluster(3, 'warn', {
      behaviour: {
        enabled: true,
        // a window far longer than the test, so only the exchange decides what a node counts
        detectors: { rate: { window_ms: 3_600_000, max_per_window: MAX }, retry: { enabled: false } },
        share: { interval_ms: 200, max_lag_ms: 20_000 },
      },
    });
  }, 180_000);

  afterAll(async () => cluster.close(), 60_000);

  const nodes = () => cluster.nodes as readonly ClusterNode[];
  const node = (i: number) => nodes()[i % 3] as ClusterNode;
  const authorize = async (n: ClusterNode, token: string, call: object) => (await http(n.url, 'POST', '/v1/authorize', token, call)).json as unknown as Decided;
  const rounds = async (n: ClusterNode) => ((await http(n.url, 'GET', '/readyz')).json['checks'] as { behaviour_share: { rounds: number } }).behaviour_share.rounds;
  /** every node has published what it admitted so far, and then every node has read it */
  const exchanged = async () => {
    for (let phase = 0; phase < 2; phase++) {
      const seen = await Promise.all(nodes().map(rounds));
      await Promise.all(nodes().map((n, i) => until(() => rounds(n), (r) => r >= (seen[i] as number) + 2, 30_000)));
    }
  };
  const mandate = { purpose: 'answer support tickets', environment: 'prod', ttl: '30m', tools: [{ name: 'helpdesk.search_tickets' }, { name: 'helpdesk.get_ticket' }, { name: 'mail.send' }], data_classes: ['internal', 'customer-pii'] };

  it('reports its exchanges with the other nodes on /readyz', async () => {
    for (const n of nodes()) {
      const r = await http(n.url, 'GET', '/readyz');
      expect(r.status).toBe(200);
      expect(r.json['checks']).toMatchObject({ behaviour_share: { status: 'ok', rounds: expect.any(Number) as number } });
    }
  });

  it('counts an agent’s calls on every node: 12 calls round-robin over three nodes and three tasks, then the 13th raises the rate ceiling at the agent scope', { timeout: 120_000 }, async () => {
    const agent = `spiffe://${TD}/agents/spread`;
    const tasks = [];
    for (let i = 0; i < 3; i++) tasks.push(await startAgentTask(node(i), agent, mandate));
    for (let i = 0; i < MAX; i++) {
      const d = await authorize(node(i), (tasks[i % 3] as { token: string }).token, { tool: 'helpdesk.search_tickets', args: { query: `q${i}` } });
      expect(d.effect).toBe('allow');
      // never more than the true count: no node sees a ceiling that was not crossed
      expect(d.signals?.filter((s) => s.detector === 'rate')).toEqual([]);
    }
    // each node admitted 4 of the 12; after the exchange each counts all 12
    await exchanged();
    for (let i = 0; i < 3; i++) {
      const d = await authorize(node(i), (tasks[0] as { token: string }).token, { tool: 'helpdesk.search_tickets', args: { query: `over ${i}` } });
      const rate = d.signals?.find((s) => s.detector === 'rate');
      // node i has admitted its own extra calls (i + 1 of them) before this one exchanged
      expect(rate?.evidence).toMatchObject({ kind: 'ceiling', scope: 'agent', agent_id: agent, max_per_window: MAX });
      expect(rate?.evidence['calls_in_window']).toBeGreaterThanOrEqual(MAX + 1);
      expect(rate?.evidence['calls_in_window']).toBeLessThanOrEqual(MAX + 1 + i);
    }
  });

  it('chains across nodes and tasks: customer data read on one node, a mail sent from another task on another node', { timeout: 120_000 }, async () => {
    const agent = `spiffe://${TD}/agents/chainer`;
    const a = await startAgentTask(node(1), agent, mandate);
    const b = await startAgentTask(node(2), agent, mandate);
    const read = await authorize(node(1), a.token, { tool: 'helpdesk.get_ticket', args: { id: 'T-1' } });
    expect(read.effect).toBe('allow');
    await exchanged();
    const send = await authorize(node(2), b.token, { tool: 'mail.send', args: { to: 'someone@example.com' } });
    expect(send.signals?.find((s) => s.detector === 'chains')?.evidence).toMatchObject({ rule: 'sensitive-read-then-external-send', calls: [read.call_id, send.call_id], scope: 'agent', agent_id: agent });
  });
});
