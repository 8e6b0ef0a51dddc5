/**
 * A kill made on one node halts a call in flight through another node's gateway: three
 * `mandate serve` nodes on one throw-away PostgreSQL, a long-running upstream call (the slow
 * fixture waits until cancelled) open through node B's /mcp, and a kill of its agent, its task or
 * its parent task sent to node A. Node B hears the task end through the store's change feed, the
 * upstream hears `notifications/cancelled` (its stderr line in node B's log), and the client is
 * answered with -32003 and TASK_KILLED. Nothing polls: the task-check backstop is an hour.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, TD, http, startCluster, until, type Cluster, type ClusterNode } from './harness.ts';

const SLOW = new URL('../../../gateway/test/fixtures/slow-server.ts', import.meta.url).pathname;
const HALTED = -32003;
const CEILING = { tools: ['slow__*'], data_classes: ['internal'], environments: ['prod'], max_ttl: '1h', max_calls: 1000 };
const MANDATE = { purpose: 'Wait for the slow job.', environment: 'prod', ttl: '15m', tools: [{ name: 'slow__wait' }], data_classes: ['internal'], budgets: { calls: 20 } };

describe('a kill on one node halts calls in flight on another', () => {
  let cluster: Cluster;
  const clients: Client[] = [];

  beforeAll(async () => {
    // debug: the upstream's stderr lines (`waiting 600`, `cancelled 600`) are in each node's log
    cluster = await startCluster(3, 'debug', {
      mcp: {
        upstreams: [{ name: 'slow', transport: 'stdio', command: process.execPath, args: [SLOW], sharing: 'per_session', warm: 1 }],
        limits: { task_check_interval: '1h', halt_grace: '100ms', connect_timeout: '60s' },
      },
    });
  }, 300_000);

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await cluster.close();
  }, 60_000);

  const [a, b] = [() => cluster.nodes[0] as ClusterNode, () => cluster.nodes[1] as ClusterNode];
  let n = 0;

  async function agent(): Promise<{ id: string; svid: string }> {
    const id = `spiffe://${TD}/agents/inflight-${++n}`;
    const reg = await http(a().url, 'POST', '/v1/agents', ADMIN, { id, owner: 'team', type: 'support', ceiling: CEILING });
    expect(reg.status, JSON.stringify(reg.json)).toBe(201);
    const svid = (await http(a().url, 'POST', '/v1/dev/workload-tokens', ADMIN, { spiffe_id: id })).json['token'] as string;
    return { id, svid };
  }

  async function task(node: ClusterNode, svid: string, extra: object = {}): Promise<{ id: string; token: string }> {
    const r = await http(node.url, 'POST', '/v1/tasks', svid, { mandate: { ...MANDATE, ...extra } });
    expect(r.status, JSON.stringify(r.json)).toBe(201);
    return { id: (r.json['task'] as { id: string }).id, token: r.json['token'] as string };
  }

  const count = (node: ClusterNode, line: string) => node.log().split(line).length - 1;

  /** opens a 10-minute call through node B, waits until the upstream has it, kills, returns the client's error */
  async function killDuring(token: string, kill: () => Promise<void>): Promise<McpError> {
    const client = new Client({ name: 'mandate-cluster-test', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${b().url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
    clients.push(client);
    const started = count(b(), 'waiting 600');
    const cancelled = count(b(), 'cancelled 600');
    const call = client.callTool({ name: 'slow__wait', arguments: { seconds: 600 } }, undefined, { timeout: 180_000 }).then(
      () => new Error('the call was answered, not halted'),
      (e: unknown) => e,
    );
    await until(async () => count(b(), 'waiting 600'), (v) => v > started, 60_000);
    await kill();
    const err = await call;
    // the upstream heard the cancellation: its stderr line, in node B's log
    await until(async () => count(b(), 'cancelled 600'), (v) => v > cancelled, 60_000);
    expect(err).toBeInstanceOf(McpError);
    expect((err as McpError).code).toBe(HALTED);
    return err as McpError;
  }

  const kill = async (target: object) => {
    const r = await http(a().url, 'POST', '/v1/kill', ADMIN, { ...target, reason: 'cluster kill' });
    expect(r.status, JSON.stringify(r.json)).toBe(200);
  };

  it('halts the call when its task is killed on another node', async () => {
    const ag = await agent();
    const t = await task(a(), ag.svid);
    const err = await killDuring(t.token, () => kill({ task: t.id }));
    expect(err.data).toMatchObject({ reason: 'TASK_KILLED', halted: true });
    expect(err.message).toContain('cluster kill');
  }, 240_000);

  it('halts the call when its agent is killed on another node', async () => {
    const ag = await agent();
    const t = await task(cluster.nodes[2] as ClusterNode, ag.svid);
    const err = await killDuring(t.token, () => kill({ agent: ag.id }));
    expect(err.data).toMatchObject({ reason: 'TASK_KILLED', halted: true });
  }, 240_000);

  it("halts a sub-agent's call when its parent task is killed on another node", async () => {
    const parentAgent = await agent();
    const parent = await task(a(), parentAgent.svid, { delegation: { allowed: true, max_depth: 2, max_children: 5 } });
    const childAgent = await agent();
    const r = await http(a().url, 'POST', `/v1/tasks/${parent.id}/delegate`, parent.token, { workload_token: childAgent.svid, mandate: { ...MANDATE, budgets: { calls: 10 } } });
    expect(r.status, JSON.stringify(r.json)).toBe(201);
    const child = r.json['token'] as string;
    const err = await killDuring(child, () => kill({ task: parent.id }));
    expect(err.data).toMatchObject({ reason: 'TASK_KILLED', halted: true });
  }, 240_000);

  it('audits the halted calls as halted on the node that halted them', async () => {
    const ag = await agent();
    const t = await task(a(), ag.svid);
    await killDuring(t.token, () => kill({ task: t.id }));
    const records = await until(
      async () => ((await http(a().url, 'GET', `/v1/audit?task_id=${encodeURIComponent(t.id)}&limit=100`, ADMIN)).json['records'] as { kind: string; data: Record<string, unknown> }[]),
      (rs) => Array.isArray(rs) && rs.some((x) => x.kind === 'action' && x.data['final'] === 'halted'),
      30_000,
    );
    expect(records.filter((x) => x.kind === 'action' && x.data['final'] === 'halted')).toHaveLength(1);
  }, 240_000);

  // last: the emergency stop refuses every new task until it is lifted
  it('halts the call when an emergency stop is set on another node, with TASK_KILLED', async () => {
    const ag = await agent();
    const t = await task(cluster.nodes[2] as ClusterNode, ag.svid);
    const err = await killDuring(t.token, () => kill({ all: true }));
    expect(err.data).toMatchObject({ reason: 'TASK_KILLED', halted: true });
  }, 240_000);
});
