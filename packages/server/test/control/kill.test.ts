/**
 * The kill switch (issue 5, THREATS ASI10): deterministic, immediate, durable, and never
 * undone by a release.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createRuntime, parseConfig } from '../../src/index.ts';
import { EXAMPLE_POLICIES, TRUST_DOMAIN, errorOf, mandate, startHarness, type Harness } from '../support.ts';

interface Decision {
  effect: string;
  reasons: string[];
  approval_id: string | null;
}
interface Report {
  killed_tasks: string[];
  disabled_agent: string | null;
  emergency_stop: boolean;
  audit_seq: number;
}

const SEARCH = { tool: 'helpdesk.search_tickets', args: { query: 'refund' } };

describe('the kill switch', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness();
  });
  afterEach(async () => h.close());

  const call = async (token: string, body: object = SEARCH) => (await h.authorize(token, body as Record<string, unknown>)).json<Decision>();
  const kill = async (body: object) => {
    const res = await h.op('POST', '/v1/kill', { reason: 'incident 42', ...body });
    expect(res.statusCode).toBe(200);
    return res.json<Report>();
  };

  it('denies the next call of an agent killed in the middle of a sequence of calls', async () => {
    const agent = await h.registerAgent('rogue');
    const t = await h.startTask(agent);
    for (let i = 0; i < 3; i++) expect((await call(t.token)).effect).toBe('allow');
    const report = await kill({ agent });
    expect(report).toMatchObject({ disabled_agent: agent, killed_tasks: [t.id], emergency_stop: false });
    const next = await call(t.token);
    expect(next.effect).toBe('deny');
    expect(next.reasons).toEqual(['AGENT_DISABLED']);
    // a new task cannot be started either
    const svid = await h.workloadToken(agent);
    const start = await h.inject({ method: 'POST', url: '/v1/tasks', headers: { authorization: `Bearer ${svid}` }, payload: { mandate: mandate() } });
    expect(errorOf(start).code).toBe('AGENT_DISABLED');
  });

  it('kills every task of the agent and leaves other agents alone', async () => {
    const rogue = await h.registerAgent('rogue');
    const other = await h.registerAgent('fine');
    const [a, b] = [await h.startTask(rogue), await h.startTask(rogue)];
    const c = await h.startTask(other);
    const report = await kill({ agent: rogue });
    expect([...report.killed_tasks].sort()).toEqual([a.id, b.id].sort());
    expect((await call(c.token)).effect).toBe('allow');
    for (const t of [a, b]) expect((await h.op('GET', `/v1/tasks/${t.id}`)).json<{ state: string }>().state).toBe('killed');
  });

  it('kills one task alone', async () => {
    const agent = await h.registerAgent('worker');
    const [a, b] = [await h.startTask(agent), await h.startTask(agent)];
    expect((await kill({ task: a.id })).killed_tasks).toEqual([a.id]);
    expect(await call(a.token)).toMatchObject({ effect: 'deny', reasons: ['TASK_KILLED'] });
    expect((await call(b.token)).effect).toBe('allow');
  });

  it('cancels an approval that is pending when the agent is killed', async () => {
    const agent = await h.registerAgent('mailer');
    const approver = (await h.op('POST', '/v1/operators/keys', { name: 'alice', role: 'approver' })).json<{ key: string }>().key;
    const t = await h.startTask(agent, mandate({ tools: [{ name: 'mail.send', args: { to: { domains: ['acme.example'] } } }] }));
    const held = await call(t.token, { tool: 'mail.send', args: { to: 'x@acme.example' } });
    expect(held.effect).toBe('approval_required');
    await kill({ agent });
    expect((await h.op('GET', `/v1/approvals/${held.approval_id}`)).json<{ state: string }>().state).toBe('cancelled');
    expect((await h.op('POST', `/v1/approvals/${held.approval_id}/approve`, { reason: 'late' }, approver)).statusCode).toBe(409);
    expect((await call(t.token, { tool: 'mail.send', args: { to: 'x@acme.example' } })).effect).toBe('deny');
  });

  it('never revives old tokens when the agent is released', async () => {
    const agent = await h.registerAgent('rogue');
    const t = await h.startTask(agent);
    await kill({ agent });
    const released = await h.op('POST', '/v1/unkill', { agent, reason: 'cleared' });
    expect(released.statusCode).toBe(200);
    expect(await call(t.token)).toMatchObject({ effect: 'deny', reasons: ['TASK_KILLED'] });
    // the released identity can start a fresh task
    const fresh = await h.startTask(agent);
    expect((await call(fresh.token)).effect).toBe('allow');
    const kinds = (await h.op('GET', '/v1/audit?limit=1000')).json<{ records: { kind: string }[] }>().records.map((r) => r.kind);
    expect(kinds).toContain('kill');
    expect(kinds).toContain('unkill');
  });

  it('stops every call and every new task in an emergency stop, and a release revives nothing', async () => {
    const a1 = await h.registerAgent('a');
    const a2 = await h.registerAgent('b');
    const [t1, t2] = [await h.startTask(a1), await h.startTask(a2)];
    const report = await kill({ all: true });
    expect(report.emergency_stop).toBe(true);
    expect([...report.killed_tasks].sort()).toEqual([t1.id, t2.id].sort());
    expect(await call(t1.token)).toMatchObject({ effect: 'deny', reasons: ['EMERGENCY_STOP'] });
    const svid = await h.workloadToken(a1);
    const start = await h.inject({ method: 'POST', url: '/v1/tasks', headers: { authorization: `Bearer ${svid}` }, payload: { mandate: mandate() } });
    expect(errorOf(start).code).toBe('EMERGENCY_STOP');
    expect((await h.op('GET', '/v1/kill')).json<{ emergency_stop: boolean }>().emergency_stop).toBe(true);

    expect((await h.op('POST', '/v1/unkill', { all: true, reason: 'all clear' })).statusCode).toBe(200);
    expect(await call(t1.token)).toMatchObject({ effect: 'deny', reasons: ['TASK_KILLED'] });
    expect((await call((await h.startTask(a2)).token)).effect).toBe('allow');
  });

  it('needs an admin: approvers, viewers and agents cannot kill or release', async () => {
    const agent = await h.registerAgent('x');
    const t = await h.startTask(agent);
    const approver = (await h.op('POST', '/v1/operators/keys', { name: 'alice', role: 'approver' })).json<{ key: string }>().key;
    for (const key of [approver, t.token]) {
      expect((await h.op('POST', '/v1/kill', { all: true, reason: 'x' }, key)).statusCode).toBe(403);
      expect((await h.op('POST', '/v1/unkill', { all: true, reason: 'x' }, key)).statusCode).toBe(403);
    }
    expect((await call(t.token)).effect).toBe('allow');
  });

  it('rejects a malformed kill request and changes nothing', async () => {
    const agent = await h.registerAgent('x');
    const t = await h.startTask(agent);
    for (const body of [{}, { all: false, reason: 'x' }, { agent, task: t.id, reason: 'x' }, { all: true }, { all: true, reason: 'x', extra: 1 }]) {
      const res = await h.op('POST', '/v1/kill', body);
      expect(res.statusCode).toBe(400);
    }
    expect((await call(t.token)).effect).toBe('allow');
  });
});

describe('the emergency stop across a restart', () => {
  it('is still in force when the server starts again', async () => {
    const h = await startHarness();
    const agent = await h.registerAgent('a');
    await h.startTask(agent);
    await h.op('POST', '/v1/kill', { all: true, reason: 'incident' });
    const dir = h.dir;
    await h.runtime.close();
    const rt = await createRuntime(
      parseConfig({ environment: 'prod', data_dir: dir, policies: { dir: EXAMPLE_POLICIES }, identity: { dev_issuer: { enabled: true, trust_domain: TRUST_DOMAIN } } }),
      { writeAdminKeyFile: false },
    );
    try {
      expect(rt.kill.stopped()).toBe(true);
    } finally {
      await rt.close();
      await h.close();
    }
  });
});
