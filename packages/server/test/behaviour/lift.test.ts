/**
 * Lifting a task's containment (POST /v1/tasks/{id}/containment/lift): admin only, a reason
 * required, audited before it takes effect; it lifts step-up, narrow and a containment
 * suspension, and never a kill, a policy deny or a budget.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { allAuditRecords, errorOf, type Harness } from '../support.ts';
import { behaviourHarness, call, CEILING, eventually, triageMandate } from './fixture.ts';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

/** a purpose that declares posting: http.post is on-purpose; a delete is not (drift, high) */
const POSTING = 'Triage new support tickets and post a summary of each to the on-call webhook.';
const POST = { url: 'https://oncall.acme.example/hook' };

async function postingTask(harness: Harness, over: Record<string, unknown> = {}) {
  const agent = await harness.registerAgent('triage', CEILING);
  const base = triageMandate();
  return harness.startTask(agent, triageMandate({ purpose: POSTING, tools: [...(base['tools'] as object[]), { name: 'helpdesk.delete_ticket' }], ...over }));
}

const lift = (harness: Harness, taskId: string, body: unknown, key?: string) => harness.op('POST', `/v1/tasks/${taskId}/containment/lift`, body, key);

interface LiftBody {
  task: { id: string; state: string };
  lifted: { action: string; tool: string | null; detector: string; call_id: string }[];
  resumed: boolean;
  kept: { action: string }[];
  audit_seq: number | null;
  containment: { step_up: boolean; narrowed_tools: string[]; suspended: boolean; killed: boolean; restrictions: unknown[] };
}

describe('lifting a containment', () => {
  it('lifts a step-up: the held call passes afterwards, and the lift is in the audit chain naming operator, task, what and why', async () => {
    h = await behaviourHarness({ containment: { rules: [{ detector: 'drift', severity: 'high', action: 'step_up' }] } });
    const t = await postingTask(h);
    expect((await call(h, t.token, 'http.post', POST)).effect).toBe('allow');
    const del = await call(h, t.token, 'helpdesk.delete_ticket', { id: 'T-1' });
    expect(del.containment).toContain('step_up');
    expect(await call(h, t.token, 'http.post', POST)).toMatchObject({ effect: 'approval_required', reasons: ['CONTAINMENT_STEP_UP'] });

    const res = await lift(h, t.id, { reason: '  the delete was a test ticket, approved by the on-call lead  ' });
    expect(res.statusCode).toBe(200);
    const body = res.json<LiftBody>();
    expect(body).toMatchObject({ task: { id: t.id, state: 'active' }, resumed: false, kept: [], containment: { step_up: false, narrowed_tools: [], suspended: false, killed: false, restrictions: [] } });
    expect(body.lifted).toEqual([expect.objectContaining({ action: 'step_up', tool: null, detector: 'drift', call_id: del.call_id })]);
    expect(body.audit_seq).toEqual(expect.any(Number));

    expect(await call(h, t.token, 'http.post', POST)).toMatchObject({ effect: 'allow', reasons: [] });
    const viewed = (await h.op('GET', `/v1/tasks/${t.id}`)).json<{ containment: LiftBody['containment'] }>().containment;
    expect(viewed.step_up).toBe(false);

    const records = await allAuditRecords(h);
    const record = records.find((r) => r.kind === 'containment.lifted');
    const admin = (await h.op('GET', '/v1/operators/keys')).json<{ keys: { id: string; name: string }[] }>().keys.find((k) => k.name === 'bootstrap-admin');
    expect(record).toMatchObject({ seq: body.audit_seq, task_id: t.id, data: { by: admin?.id, reason: 'the delete was a test ticket, approved by the on-call lead', resumes_task: false } });
    expect(record?.data['lifted']).toEqual([expect.objectContaining({ action: 'step_up', detector: 'drift', call_id: del.call_id })]);
    expect((await h.verifyAudit()).ok).toBe(true);
    // a later signal restricts the task again: a lift is not an exemption
    expect((await call(h, t.token, 'helpdesk.delete_ticket', { id: 'T-2' })).containment).toContain('step_up');
    expect((await call(h, t.token, 'http.post', POST)).effect).toBe('approval_required');
  });

  it('lifts a narrowing: the removed tool is usable again', async () => {
    h = await behaviourHarness({ containment: { rules: [{ detector: 'drift', severity: 'high', action: 'narrow', tools: ['http.*'] }] } });
    const t = await postingTask(h);
    await call(h, t.token, 'helpdesk.delete_ticket', { id: 'T-1' });
    expect((await call(h, t.token, 'http.post', POST)).reasons).toEqual(['CONTAINMENT_NARROWED']);
    const res = await lift(h, t.id, { reason: 'false positive' });
    expect(res.json<LiftBody>().lifted.map((r) => [r.action, r.tool])).toEqual([['narrow', 'http.*']]);
    expect((await call(h, t.token, 'http.post', POST)).effect).toBe('allow');
  });

  it('resumes a task that containment suspended, and audits the resumption', async () => {
    h = await behaviourHarness({ containment: { rules: [{ detector: 'drift', severity: 'high', action: 'suspend' }] } });
    const t = await postingTask(h);
    await call(h, t.token, 'helpdesk.delete_ticket', { id: 'T-1' });
    // the suspension is whole once its record is written, after the task's state: a lift before that
    // cannot tell containment's suspension from an operator's, and leaves the task suspended
    await eventually('the task is suspended, and its suspension audited', async () => (await h?.runtime.taskState.getTask(t.id))?.state === 'suspended' && (await allAuditRecords(h as Harness)).some((r) => r.kind === 'task.suspended' && r.task_id === t.id));
    expect((await call(h, t.token, 'kb.search')).reasons).toContain('TASK_SUSPENDED');
    const res = await lift(h, t.id, { reason: 'reviewed: a planned cleanup' });
    expect(res.statusCode).toBe(200);
    expect(res.json<LiftBody>()).toMatchObject({ resumed: true, task: { state: 'active' }, lifted: [expect.objectContaining({ action: 'suspend' })] });
    expect((await call(h, t.token, 'kb.search')).effect).toBe('allow');
    const kinds = (await allAuditRecords(h)).filter((r) => r.task_id === t.id).map((r) => r.kind);
    expect(kinds.slice(kinds.indexOf('containment.lifted'))).toEqual(['containment.lifted', 'task.resumed', 'decision', 'action']);
  });

  it('does not resume a task suspended by something else than containment', async () => {
    h = await behaviourHarness({ containment: { rules: [{ detector: 'drift', severity: 'high', action: 'step_up' }] } });
    const t = await postingTask(h);
    await call(h, t.token, 'helpdesk.delete_ticket', { id: 'T-1' });
    await h.runtime.tasks.suspend(t.id, 'supervisor lost sight of the task', { kind: 'operator', operatorId: 'op_someone' });
    const res = await lift(h, t.id, { reason: 'the step-up was a false positive' });
    expect(res.json<LiftBody>()).toMatchObject({ resumed: false, task: { state: 'suspended' }, lifted: [expect.objectContaining({ action: 'step_up' })] });
    expect((await call(h, t.token, 'kb.search')).reasons).toContain('TASK_SUSPENDED');
  });

  it('never lifts a kill: a killed task is refused, and a kill restriction on a live task stays', async () => {
    h = await behaviourHarness({ containment: { rules: [{ detector: 'drift', severity: 'high', action: 'kill' }] } });
    const t = await postingTask(h);
    await call(h, t.token, 'helpdesk.delete_ticket', { id: 'T-1' });
    await eventually('the task is killed', async () => (await h?.runtime.taskState.getTask(t.id))?.state === 'killed');
    const refused = await lift(h, t.id, { reason: 'please' });
    expect(refused.statusCode).toBe(409);
    expect(errorOf(refused).code).toBe('CONFLICT');
    expect((await call(h, t.token, 'kb.search')).effect).toBe('deny');

    // a live task with a stored kill beside a step-up (say the kill switch was still on its way)
    const agent = await h.registerAgent('other', CEILING);
    const live = await h.startTask(agent, triageMandate());
    const row = { taskId: live.id, agentId: agent, tool: '', detector: 'retry', callId: 'c-x', reason: 'retry high', createdAt: h.clock.now() };
    await h.runtime.store.containment.addRestrictions([{ ...row, action: 'step_up' }, { ...row, action: 'kill' }]);
    h.runtime.behaviour?.invalidate(live.id);
    const res = await lift(h, live.id, { reason: 'false positive' });
    expect(res.json<LiftBody>()).toMatchObject({ lifted: [expect.objectContaining({ action: 'step_up' })], kept: [expect.objectContaining({ action: 'kill' })], containment: { killed: true, step_up: false } });
    expect(await call(h, live.token, 'kb.search')).toMatchObject({ effect: 'deny', reasons: ['CONTAINMENT_KILLED'] });
  });

  it('never lifts a policy deny or a budget', async () => {
    h = await behaviourHarness({ containment: { rules: [{ detector: 'drift', severity: 'high', action: 'step_up' }] } });
    const t = await postingTask(h, { budgets: { calls: 2 } });
    await call(h, t.token, 'helpdesk.delete_ticket', { id: 'T-1' });
    expect((await lift(h, t.id, { reason: 'false positive' })).statusCode).toBe(200);
    // nothing behavioural left: a second lift has nothing to do
    expect(errorOf(await lift(h, t.id, { reason: 'again' })).code).toBe('CONFLICT');
    expect(await call(h, t.token, 'shell.exec', { cmd: 'ls' })).toMatchObject({ effect: 'deny', reasons: ['POLICY_FORBID'] });
    expect((await call(h, t.token, 'kb.search')).effect).toBe('allow');
    expect((await call(h, t.token, 'kb.search')).effect).toBe('allow');
    expect(await call(h, t.token, 'kb.search')).toMatchObject({ effect: 'deny', reasons: ['BUDGET_EXHAUSTED'] });
  });

  it('is for admins only, requires a bounded printable reason, and names an unknown task', async () => {
    h = await behaviourHarness({ containment: { rules: [{ detector: 'drift', severity: 'high', action: 'step_up' }] } });
    const t = await postingTask(h);
    await call(h, t.token, 'helpdesk.delete_ticket', { id: 'T-1' });
    const approver = (await h.op('POST', '/v1/operators/keys', { name: 'ann', role: 'approver' })).json<{ key: string }>().key;
    const viewer = (await h.op('POST', '/v1/operators/keys', { name: 'vic', role: 'viewer' })).json<{ key: string }>().key;
    expect((await lift(h, t.id, { reason: 'mine' }, approver)).statusCode).toBe(403);
    expect((await lift(h, t.id, { reason: 'mine' }, viewer)).statusCode).toBe(403);
    expect((await lift(h, t.id, { reason: 'mine' }, t.token)).statusCode).toBe(403);
    expect((await h.inject({ method: 'POST', url: `/v1/tasks/${t.id}/containment/lift`, payload: { reason: 'mine' } })).statusCode).toBe(401);
    for (const body of [{}, { reason: '' }, { reason: '   ' }, { reason: 'ok' }, { reason: 'x'.repeat(501) }, { reason: 'line one\nline two' }, { reason: 'bell\u0007' }, { reason: 42 }, { reason: 'fine', extra: true }]) {
      const res = await lift(h, t.id, body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      expect(errorOf(res).code).toBe('MALFORMED_REQUEST');
    }
    expect(errorOf(await lift(h, 'task_nope', { reason: 'false positive' })).code).toBe('NOT_FOUND');
    // none of the refused requests lifted anything or wrote a record
    expect((await allAuditRecords(h)).some((r) => r.kind === 'containment.lifted')).toBe(false);
    expect((await call(h, t.token, 'http.post', POST)).effect).toBe('approval_required');
    expect((await lift(h, t.id, { reason: 'x'.repeat(500) })).statusCode).toBe(200);
  });
});
