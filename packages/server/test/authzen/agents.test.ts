/**
 * Agent subjects over AuthZEN: a subject of type `agent` carries its task token in
 * `properties.task_token` and is decided by the same DecisionEngine.decide() as /v1/authorize,
 * so every invariant of a tool call holds: task state, the mandate, budgets, audit.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allAuditRecords, mandate, MINUTE, type DecisionBody } from '../support.ts';
import { ALICE, startAuthzen, type AuthzenHarness } from './fixture.ts';

type Decision = { decision: boolean; context?: Record<string, unknown> };

let h: AuthzenHarness;

beforeAll(async () => {
  h = await startAuthzen();
});

afterAll(async () => {
  await h.close();
});

const agentSubject = (id: string, token: string) => ({ type: 'agent', id, properties: { task_token: token } });
const tool = (name: string) => ({ type: 'tool', id: name });

describe('agent subjects', () => {
  it('allows a call the mandate and the policies allow, with the call id, task and audit sequence in the context', async () => {
    const agent = await h.registerAgent('az-allow');
    const task = await h.startTask(agent);
    const res = await h.evaluation({ subject: agentSubject(agent, task.token), action: { name: 'helpdesk.search_tickets' }, resource: tool('helpdesk.search_tickets'), context: { args: { query: 'refund' } } });
    expect(res.statusCode).toBe(200);
    const d = res.json<Decision>();
    expect(d).toEqual({
      decision: true,
      context: {
        id: expect.stringMatching(/^call_/) as unknown,
        effect: 'allow',
        reasons: [],
        policy_ids: ['org.call.within-task-environment'],
        policy_version: expect.stringMatching(/^sha256:/) as unknown,
        task_id: task.id,
        audit_seq: expect.any(Number) as unknown,
      },
    });
    const records = await allAuditRecords(h);
    expect(records.find((r) => r.seq === d.context?.['audit_seq'])).toMatchObject({ kind: 'decision', task_id: task.id, agent_id: agent, data: { tool: 'helpdesk.search_tickets', effect: 'allow' } });
  });

  it('denies with the same reasons as /v1/authorize for the same call', async () => {
    const agent = await h.registerAgent('az-same');
    const task = await h.startTask(agent);
    for (const call of [
      { tool: 'shell.exec', args: { cmd: 'id' } },
      { tool: 'fs.read_file', args: { path: '/srv/kb/../../etc/passwd' } },
      { tool: 'helpdesk.draft_reply', args: { ticket_id: '1042 OR 1=1' } },
    ]) {
      const direct = (await h.authorize(task.token, call)).json<DecisionBody>();
      const az = (await h.evaluation({ subject: agentSubject(agent, task.token), action: { name: call.tool }, resource: tool(call.tool), context: { args: call.args } })).json<Decision>();
      expect(direct.effect).toBe('deny');
      expect(az.decision).toBe(false);
      expect(az.context).toMatchObject({ effect: 'deny', reasons: direct.reasons, policy_ids: direct.policy_ids, task_id: task.id });
    }
  });

  it("maps the resource type and id onto the call's target, checked against the mandate's resources", async () => {
    const agent = await h.registerAgent('az-resource');
    const task = await h.startTask(agent, mandate({ resources: ['ticket:*'] }));
    const ask = (resource: { type: string; id: string }) =>
      h.evaluation({ subject: agentSubject(agent, task.token), action: { name: 'helpdesk.search_tickets' }, resource, context: { args: { query: 'x' } } }).then((r) => r.json<Decision>());
    expect((await ask({ type: 'ticket', id: 'T-1042' })).decision).toBe(true);
    const other = await ask({ type: 'invoice', id: 'I-7' });
    expect(other).toMatchObject({ decision: false, context: { reasons: ['RESOURCE_NOT_IN_MANDATE'] } });
  });

  it('denies an agent subject without a task token (TOKEN_MISSING), and records it', async () => {
    const agent = await h.registerAgent('az-notoken');
    const before = (await allAuditRecords(h)).length;
    const d = (await h.evaluation({ subject: { type: 'agent', id: agent }, action: { name: 'helpdesk.search_tickets' }, resource: tool('helpdesk.search_tickets') })).json<Decision>();
    expect(d).toMatchObject({ decision: false, context: { reasons: ['TOKEN_MISSING'] } });
    const records = (await allAuditRecords(h)).slice(before);
    expect(records.map((r) => r.data['reasons'])).toEqual([['TOKEN_MISSING']]);
  });

  it("denies when subject.id is not the token's agent (AGENT_MISMATCH), before anything is spent", async () => {
    const agent = await h.registerAgent('az-owner');
    const other = await h.registerAgent('az-other');
    const task = await h.startTask(agent, mandate({ budgets: { calls: 1 } }));
    const d = (await h.evaluation({ subject: agentSubject(other, task.token), action: { name: 'helpdesk.search_tickets' }, resource: tool('helpdesk.search_tickets'), context: { args: {} } })).json<Decision>();
    expect(d).toMatchObject({ decision: false, context: { reasons: ['AGENT_MISMATCH'] } });
    // the single call of the budget is still there
    const ok = (await h.evaluation({ subject: agentSubject(agent, task.token), action: { name: 'helpdesk.search_tickets' }, resource: tool('helpdesk.search_tickets'), context: { args: {} } })).json<Decision>();
    expect(ok.decision).toBe(true);
  });

  it('denies a token whose task is completed, with its reason', async () => {
    const agent = await h.registerAgent('az-done');
    const task = await h.startTask(agent);
    expect((await h.inject({ method: 'POST', url: `/v1/tasks/${task.id}/complete`, headers: { authorization: `Bearer ${task.token}` } })).statusCode).toBe(200);
    const d = (await h.evaluation({ subject: agentSubject(agent, task.token), action: { name: 'helpdesk.search_tickets' }, resource: tool('helpdesk.search_tickets'), context: { args: {} } })).json<Decision>();
    expect(d.decision).toBe(false);
    expect(d.context?.['reasons']).toEqual(expect.arrayContaining([expect.stringMatching(/^(TASK_COMPLETED|TOKEN_REVOKED)$/)]));
  });

  it('denies an expired task token, and records the deny the engine could not attribute', async () => {
    const agent = await h.registerAgent('az-expired');
    const task = await h.startTask(agent);
    h.clock.advance(60 * MINUTE);
    const before = (await allAuditRecords(h)).length;
    const d = (await h.evaluation({ subject: agentSubject(agent, task.token), action: { name: 'helpdesk.search_tickets' }, resource: tool('helpdesk.search_tickets'), context: { args: {} } })).json<Decision>();
    expect(d).toMatchObject({ decision: false, context: { reasons: ['TOKEN_EXPIRED'] } });
    const records = (await allAuditRecords(h)).slice(before).filter((r) => r.data['api'] === 'authzen');
    expect(records).toHaveLength(1);
    expect(records[0]?.data).toMatchObject({ subject: { type: 'agent', id: agent }, reasons: ['TOKEN_EXPIRED'] });
    expect(JSON.stringify(records)).not.toContain(task.token);
  });

  it('stops under deny_on_first_deny before a later item can spend the budget', async () => {
    const agent = await h.registerAgent('az-budget');
    const task = await h.startTask(agent, mandate({ budgets: { calls: 2 } }));
    const subject = agentSubject(agent, task.token);
    const call = (name: string, args: Record<string, unknown> = {}) => ({ action: { name }, resource: tool(name), context: { args } });
    const res = await h.evaluations({
      subject,
      options: { evaluations_semantic: 'deny_on_first_deny' },
      evaluations: [call('helpdesk.search_tickets'), call('shell.exec', { cmd: 'id' }), call('helpdesk.search_tickets')],
    });
    expect(res.json<{ evaluations: Decision[] }>().evaluations.map((e) => e.decision)).toEqual([true, false]);
    // one call of two spent: one more is allowed, the next is not
    const again = await h.evaluations({ subject, evaluations: [call('helpdesk.search_tickets'), call('helpdesk.search_tickets')] });
    const [first, second] = again.json<{ evaluations: Decision[] }>().evaluations;
    expect(first?.decision).toBe(true);
    expect(second).toMatchObject({ decision: false, context: { reasons: ['BUDGET_EXHAUSTED'] } });
  });

  it('answers agents and users in one evaluations request, in order', async () => {
    const agent = await h.registerAgent('az-mixed');
    const task = await h.startTask(agent);
    const res = await h.evaluations({
      evaluations: [
        { subject: { type: 'user', id: ALICE }, action: { name: 'read' }, resource: { type: 'document', id: '1' } },
        { subject: agentSubject(agent, task.token), action: { name: 'helpdesk.search_tickets' }, resource: tool('helpdesk.search_tickets'), context: { args: { query: 'q' } } },
        { subject: { type: 'user', id: ALICE }, action: { name: 'read' }, resource: { type: 'document', id: '2' } },
        { subject: agentSubject(agent, task.token), action: { name: 'shell.exec' }, resource: tool('shell.exec') },
      ],
    });
    expect(res.json<{ evaluations: Decision[] }>().evaluations.map((e) => e.decision)).toEqual([true, true, false, false]);
  });
});
