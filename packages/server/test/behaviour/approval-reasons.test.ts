/**
 * An approval answers the reasons it was asked for, not the call as such: an approval given for a
 * containment step-up does not satisfy a policy @step_up added later for the same call, nor the
 * other way round; a call that needs both is asked once, naming both.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Harness } from '../support.ts';
import { behaviourHarness, call, CEILING, triageMandate } from './fixture.ts';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const STEP_UP_POST = `
@id("org.post.step-up")
@step_up
forbid (principal, action == Mandate::Action::"call_tool", resource) when { resource.name == "http.post" };
`;
const POST = { url: 'https://partner.example/hook' };

/** drift (high) puts the task under step-up containment: an export does it */
const CONTAINED = { containment: { rules: [{ detector: 'drift', severity: 'high', action: 'step_up' }] } };

async function addStepUpPolicy(harness: Harness): Promise<void> {
  writeFileSync(join(harness.runtime.config.policies.dir as string, 'step-up.cedar'), STEP_UP_POST);
  harness.runtime.policies.reload();
}

async function approve(harness: Harness, id: string): Promise<void> {
  const res = await harness.op('POST', `/v1/approvals/${id}/approve`, { reason: 'checked' });
  expect(res.statusCode).toBe(200);
}

async function approvalOf(harness: Harness, id: string) {
  return (await harness.op('GET', `/v1/approvals/${id}`)).json<{ id: string; state: string; policy_ids: string[] }>();
}

describe('an approval answers the reason it was asked for', () => {
  it('an approval given for a containment step-up does not satisfy a policy @step_up added later for the same call', async () => {
    h = await behaviourHarness(CONTAINED);
    const agent = await h.registerAgent('triage', CEILING);
    const t = await h.startTask(agent, triageMandate());
    expect((await call(h, t.token, 'helpdesk.export_tickets', { query: 'all' })).containment).toContain('step_up');
    const held = await call(h, t.token, 'http.post', POST);
    expect(held).toMatchObject({ effect: 'approval_required', reasons: ['CONTAINMENT_STEP_UP'] });
    const first = held.approval_id as string;
    expect((await approvalOf(h, first)).policy_ids).toEqual(['behaviour.containment']);
    await approve(h, first);

    // the organisation adds a @step_up for this tool before the agent retries
    await addStepUpPolicy(h);
    const retried = await call(h, t.token, 'http.post', POST);
    expect(retried).toMatchObject({ effect: 'approval_required', reasons: ['APPROVAL_REQUIRED'] });
    expect(retried.approval_id).not.toBe(first);
    // the new request names both reasons; the one it supersedes is cancelled, never spent
    expect((await approvalOf(h, retried.approval_id as string)).policy_ids.sort()).toEqual(['behaviour.containment', 'org.post.step-up']);
    expect((await approvalOf(h, first)).state).toBe('cancelled');

    await approve(h, retried.approval_id as string);
    const allowed = await call(h, t.token, 'http.post', POST);
    expect(allowed).toMatchObject({ effect: 'allow', approval_id: retried.approval_id });
    // single use: the next identical call asks again
    expect((await call(h, t.token, 'http.post', POST)).effect).toBe('approval_required');
    expect((await h.verifyAudit()).ok).toBe(true);
  });

  it('an approval given for a policy @step_up does not satisfy a containment step-up that began before it was used', async () => {
    h = await behaviourHarness(CONTAINED);
    await addStepUpPolicy(h);
    const agent = await h.registerAgent('triage', CEILING);
    const t = await h.startTask(agent, triageMandate());
    const held = await call(h, t.token, 'http.post', POST);
    expect(held).toMatchObject({ effect: 'approval_required', reasons: ['APPROVAL_REQUIRED'] });
    const first = held.approval_id as string;
    expect((await approvalOf(h, first)).policy_ids).toEqual(['org.post.step-up']);
    await approve(h, first);

    // the task drifts and is put under step-up before the agent retries
    expect((await call(h, t.token, 'helpdesk.export_tickets', { query: 'all' })).containment).toContain('step_up');
    const retried = await call(h, t.token, 'http.post', POST);
    expect(retried.effect).toBe('approval_required');
    expect(retried.approval_id).not.toBe(first);
    expect((await approvalOf(h, retried.approval_id as string)).policy_ids.sort()).toEqual(['behaviour.containment', 'org.post.step-up']);
    expect((await approvalOf(h, first)).state).toBe('cancelled');
    await approve(h, retried.approval_id as string);
    expect(await call(h, t.token, 'http.post', POST)).toMatchObject({ effect: 'allow', approval_id: retried.approval_id });
  });

  it('asks once, naming both reasons, when the policy and the containment both want a step-up from the start', async () => {
    h = await behaviourHarness(CONTAINED);
    await addStepUpPolicy(h);
    const agent = await h.registerAgent('triage', CEILING);
    const t = await h.startTask(agent, triageMandate());
    expect((await call(h, t.token, 'helpdesk.export_tickets', { query: 'all' })).containment).toContain('step_up');
    const held = await call(h, t.token, 'http.post', POST);
    expect((await approvalOf(h, held.approval_id as string)).policy_ids.sort()).toEqual(['behaviour.containment', 'org.post.step-up']);
    await approve(h, held.approval_id as string);
    expect(await call(h, t.token, 'http.post', POST)).toMatchObject({ effect: 'allow', approval_id: held.approval_id });
  });
});
