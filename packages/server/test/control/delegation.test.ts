/**
 * Delegation only narrows (invariant 6; THREATS ASI03, ASI07, ASI08): a sub-agent gets a subset
 * of its parent's mandate, every hop is re-checked at use time, and a parent's end is its
 * subtree's end.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decodeJwt, errorOf, mandate, startHarness, type Harness, type StartedTask } from '../support.ts';

const SEARCH = { tool: 'helpdesk.search_tickets', args: { query: 'refund' } };
const parentMandate = (delegation: object = { allowed: true, max_depth: 2, max_children: 2 }, calls = 20) => mandate({ delegation, budgets: { calls } });
const childMandate = (over: object = {}) => mandate({ tools: [{ name: 'helpdesk.search_tickets' }], budgets: { calls: 5 }, ...over });

describe('delegation', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness();
  });
  afterEach(async () => h.close());

  const delegate = async (parent: StartedTask, childAgent: string, m: object = childMandate()) => {
    const svid = await h.workloadToken(childAgent);
    return h.inject({ method: 'POST', url: `/v1/tasks/${parent.id}/delegate`, headers: { authorization: `Bearer ${parent.token}` }, payload: { workload_token: svid, mandate: m } });
  };
  const asTask = (res: Awaited<ReturnType<typeof delegate>>): StartedTask => {
    expect(res.statusCode).toBe(201);
    const body = res.json<StartedTask['body']>();
    return { id: body.task.id, token: body.token, body };
  };
  const call = async (token: string, body: object = SEARCH) => (await h.authorize(token, body as Record<string, unknown>)).json<{ effect: string; reasons: string[] }>();

  it('gives a sub-agent a narrower task whose token carries the chain as act claims', async () => {
    const [root, sub, subsub] = [await h.registerAgent('root'), await h.registerAgent('sub'), await h.registerAgent('subsub')];
    const parent = await h.startTask(root, parentMandate());
    const child = asTask(await delegate(parent, sub, childMandate({ delegation: { allowed: true, max_depth: 1, max_children: 2 } })));
    expect(decodeJwt(child.token).payload['act']).toEqual({ sub: root });
    expect(child.body.task).toMatchObject({ agent_id: sub });
    expect(Date.parse(child.body.task.expires_at)).toBeLessThanOrEqual(Date.parse(parent.body.task.expires_at));
    expect((await call(child.token)).effect).toBe('allow');
    // a tool the child's mandate does not hold, although the parent's does
    expect(await call(child.token, { tool: 'fs.read_file', args: { path: '/srv/kb/a' } })).toMatchObject({ effect: 'deny', reasons: ['TOOL_NOT_IN_MANDATE'] });

    const grandchild = asTask(await delegate(child, subsub, childMandate({ budgets: { calls: 2 } })));
    expect(decodeJwt(grandchild.token).payload['act']).toEqual({ sub, act: { sub: root } });
    expect((await call(grandchild.token)).effect).toBe('allow');
  });

  it('refuses a sub-agent asking beyond its parent', async () => {
    const [root, sub] = [await h.registerAgent('root'), await h.registerAgent('sub')];
    const parent = await h.startTask(root, parentMandate());
    for (const wider of [
      childMandate({ tools: [{ name: 'mail.send' }] }),
      childMandate({ tools: [{ name: 'fs.read_file' }] }), // the parent constrains the path
      childMandate({ data_classes: ['internal', 'customer-pii'] }),
      childMandate({ budgets: { calls: 50 } }),
    ]) {
      const res = await delegate(parent, sub, wider);
      expect(res.statusCode, JSON.stringify(wider)).toBe(403);
      expect(errorOf(res).code).toBe('MANDATE_EXCEEDS_PARENT');
    }
  });

  it('refuses delegation when the parent mandate does not allow it', async () => {
    const [root, sub] = [await h.registerAgent('root'), await h.registerAgent('sub')];
    const parent = await h.startTask(root, mandate());
    expect(errorOf(await delegate(parent, sub)).code).toBe('DELEGATION_NOT_ALLOWED');
  });

  it('refuses the child beyond the fan-out bound', async () => {
    const [root, sub] = [await h.registerAgent('root'), await h.registerAgent('sub')];
    const parent = await h.startTask(root, parentMandate({ allowed: true, max_children: 2 }));
    asTask(await delegate(parent, sub, childMandate({ budgets: { calls: 1 } })));
    asTask(await delegate(parent, sub, childMandate({ budgets: { calls: 1 } })));
    expect(errorOf(await delegate(parent, sub, childMandate({ budgets: { calls: 1 } }))).code).toBe('DELEGATION_LIMIT_REACHED');
  });

  it('refuses a depth beyond what the parent allows', async () => {
    const [root, sub, subsub] = [await h.registerAgent('root'), await h.registerAgent('sub'), await h.registerAgent('subsub')];
    const parent = await h.startTask(root, parentMandate({ allowed: true, max_depth: 1 }));
    // the child may not delegate further: it asked for delegation the parent's depth cannot give
    expect(errorOf(await delegate(parent, sub, childMandate({ delegation: { allowed: true, max_depth: 1, max_children: 2 } }))).code).toBe('MANDATE_EXCEEDS_PARENT');
    const child = asTask(await delegate(parent, sub));
    expect(errorOf(await delegate(child, subsub)).code).toBe('DELEGATION_NOT_ALLOWED');
  });

  it('refuses a replayed delegation', async () => {
    const [root, sub] = [await h.registerAgent('root'), await h.registerAgent('sub')];
    const parent = await h.startTask(root, parentMandate());
    const svid = await h.workloadToken(sub);
    const send = () => h.inject({ method: 'POST', url: `/v1/tasks/${parent.id}/delegate`, headers: { authorization: `Bearer ${parent.token}` }, payload: { workload_token: svid, mandate: childMandate({ budgets: { calls: 1 } }) } });
    expect((await send()).statusCode).toBe(201);
    expect(errorOf(await send()).code).toBe('TOKEN_REVOKED');
  });

  it("carves the child's budget out of the parent's remaining budget", async () => {
    const [root, sub] = [await h.registerAgent('root'), await h.registerAgent('sub')];
    const parent = await h.startTask(root, parentMandate({ allowed: true, max_children: 5 }, 10));
    for (let i = 0; i < 2; i++) expect((await call(parent.token)).effect).toBe('allow');
    asTask(await delegate(parent, sub, childMandate({ budgets: { calls: 6 } })));
    // 2 used + 6 carved = 8 of 10: a second child of 6 no longer fits, and the parent has 2 calls left
    expect(errorOf(await delegate(parent, sub, childMandate({ budgets: { calls: 6 } }))).code).toBe('MANDATE_EXCEEDS_PARENT');
    expect((await call(parent.token)).effect).toBe('allow');
    expect((await call(parent.token)).effect).toBe('allow');
    expect(await call(parent.token)).toMatchObject({ effect: 'deny', reasons: ['BUDGET_EXHAUSTED'] });
  });

  it('kills a three-level delegation tree from its root', async () => {
    const [root, sub, subsub] = [await h.registerAgent('root'), await h.registerAgent('sub'), await h.registerAgent('subsub')];
    const parent = await h.startTask(root, parentMandate());
    const child = asTask(await delegate(parent, sub, childMandate({ delegation: { allowed: true, max_depth: 1, max_children: 2 } })));
    const grandchild = asTask(await delegate(child, subsub, childMandate({ budgets: { calls: 2 } })));
    const report = (await h.op('POST', '/v1/kill', { task: parent.id, reason: 'runaway tree' })).json<{ killed_tasks: string[] }>();
    expect(report.killed_tasks).toEqual([parent.id, child.id, grandchild.id]);
    for (const t of [parent, child, grandchild]) expect(await call(t.token)).toMatchObject({ effect: 'deny', reasons: ['TASK_KILLED'] });
  });

  it('ends the subtree when the parent completes', async () => {
    const [root, sub] = [await h.registerAgent('root'), await h.registerAgent('sub')];
    const parent = await h.startTask(root, parentMandate());
    const child = asTask(await delegate(parent, sub));
    await h.inject({ method: 'POST', url: `/v1/tasks/${parent.id}/complete`, headers: { authorization: `Bearer ${parent.token}` }, payload: {} });
    expect(await call(child.token)).toMatchObject({ effect: 'deny', reasons: ['TASK_REVOKED'] });
  });

  it('re-checks every hop at use time, even if a parent ended without its cascade', async () => {
    const [root, sub] = [await h.registerAgent('root'), await h.registerAgent('sub')];
    const parent = await h.startTask(root, parentMandate());
    const child = asTask(await delegate(parent, sub));
    // end the parent behind the service's back: only the use-time check stands between
    await h.runtime.taskState.transitionTask(parent.id, ['active'], 'revoked', h.clock.now(), 'test');
    expect(await call(child.token)).toMatchObject({ effect: 'deny', reasons: ['DELEGATION_CHAIN_BROKEN'] });
  });

  it("denies a child's call once an ancestor agent is disabled", async () => {
    const [root, sub] = [await h.registerAgent('root'), await h.registerAgent('sub')];
    const parent = await h.startTask(root, parentMandate());
    const child = asTask(await delegate(parent, sub));
    await h.runtime.agents.updateAgent(root, { status: 'disabled' }, h.clock.now()); // no cascade: the check alone
    expect(await call(child.token)).toMatchObject({ effect: 'deny', reasons: ['DELEGATION_CHAIN_BROKEN'] });
  });
});
