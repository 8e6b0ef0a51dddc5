/**
 * A containment lifted on one node is lifted on every node: restrictions live in the store, and
 * each node's cached containment is dropped through the change feed. Two runtimes in this
 * process over a throw-away PostgreSQL.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildHttpApp, createRuntime, parseConfig, type MandateRuntime } from '../../src/index.ts';
import { CEILING, policyDir, triageMandate } from '../behaviour/fixture.ts';
import { until } from './harness.ts';
import { startThrowawayPostgres, type ThrowawayPostgres } from './throwaway-pg.ts';

const TD = 'lift.test';
const POST = { tool: 'http.post', args: { url: 'https://oncall.acme.example/hook' }, resource: 'ticket:T-1' };

interface Node {
  rt: MandateRuntime;
  app: FastifyInstance;
}

describe('lifting a containment across nodes', () => {
  let pg: ThrowawayPostgres;
  let dir: string;
  let a: Node;
  let b: Node;
  let admin: string;

  beforeAll(async () => {
    pg = await startThrowawayPostgres();
    dir = mkdtempSync(join(tmpdir(), 'mandate-lift-cluster-'));
    // the nodes share one key encryption key, as a real cluster must (keys.kek_file)
    writeFileSync(join(dir, 'kek.key'), randomBytes(32).toString('base64') + '\n', { mode: 0o600 });
    const policies = policyDir();
    const node = async (name: string): Promise<Node> => {
      const config = parseConfig({
        environment: 'prod',
        data_dir: join(dir, name),
        store: pg.url,
        postgres: { schema: 'mandate', max_staleness: '5s' },
        policies: { dir: policies },
        identity: { dev_issuer: { enabled: true, trust_domain: TD } },
        audit: { key_file: join(dir, 'audit-keys.json') },
        keys: { kek_file: join(dir, 'kek.key') },
        log: { level: 'silent' },
        behaviour: { enabled: true, containment: { rules: [{ detector: 'drift', severity: 'high', action: 'step_up' }] } },
      });
      const rt = await createRuntime(config, { writeAdminKeyFile: false });
      return { rt, app: buildHttpApp(rt, { logger: false }) };
    };
    a = await node('a');
    b = await node('b');
    admin = a.rt.bootstrapAdminKey as string;
  }, 90_000);

  afterAll(async () => {
    for (const n of [a, b]) {
      await n?.app.close();
      await n?.rt.close();
    }
    pg?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  const inject = async (n: Node, method: 'GET' | 'POST', url: string, bearer: string, payload?: object) => {
    const res = await n.app.inject({ method, url, headers: { authorization: `Bearer ${bearer}` }, ...(payload ? { payload } : {}) });
    return { status: res.statusCode, json: res.json<Record<string, unknown>>() };
  };
  const decide = async (n: Node, token: string, body: object) => (await inject(n, 'POST', '/v1/authorize', token, body)).json as { effect: string; reasons: string[] };

  it('a step-up put on a task by node A holds on node B, and a lift made on node B frees both', async () => {
    const agent = `spiffe://${TD}/agents/triage`;
    expect((await inject(a, 'POST', '/v1/agents', admin, { id: agent, owner: 'team', type: 'support', ceiling: CEILING })).status).toBe(201);
    const svid = await (a.rt.devIssuer as NonNullable<MandateRuntime['devIssuer']>).mint(agent, { audience: 'mandate', ttlMs: 60_000 });
    const base = triageMandate();
    const mandate = triageMandate({ purpose: 'Triage new support tickets and post a summary of each to the on-call webhook.', tools: [...(base['tools'] as object[]), { name: 'helpdesk.delete_ticket' }] });
    const started = await inject(a, 'POST', '/v1/tasks', svid, { mandate });
    expect(started.status).toBe(201);
    const token = started.json['token'] as string;
    const taskId = (started.json['task'] as { id: string }).id;

    // B has seen the task unrestricted (and cached that), then A puts it under step-up
    expect((await decide(b, token, POST)).effect).toBe('allow');
    await decide(a, token, { tool: 'helpdesk.delete_ticket', args: { id: 'T-1' }, resource: 'ticket:T-1' });
    await until(() => decide(b, token, POST), (d) => d.effect === 'approval_required', 10_000);
    expect((await decide(a, token, POST)).effect).toBe('approval_required');

    const lifted = await inject(b, 'POST', `/v1/tasks/${taskId}/containment/lift`, admin, { reason: 'false positive, checked with the team' });
    expect(lifted.status).toBe(200);
    expect(lifted.json['lifted']).toEqual([expect.objectContaining({ action: 'step_up' })]);
    expect((await decide(b, token, POST)).effect).toBe('allow');
    // node A cached the step-up in memory; the change feed drops it
    expect((await until(() => decide(a, token, POST), (d) => d.effect === 'allow', 10_000)).reasons).toEqual([]);
    const view = await inject(a, 'GET', `/v1/tasks/${taskId}`, admin);
    expect(view.json['containment']).toMatchObject({ step_up: false, restrictions: [] });
  });
});
