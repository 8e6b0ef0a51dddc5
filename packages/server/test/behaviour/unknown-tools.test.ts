/**
 * Unknown is sensitive: a tool missing from tools.yaml (category and risk "unknown") is held by
 * a step-up, removed by a narrowing, always novel, and drifts unless the mandate names it exactly.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Harness } from '../support.ts';
import { behaviourHarness, call, CEILING, triageMandate } from './fixture.ts';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const WITH_BILLING = { ...CEILING, tools: [...CEILING.tools, 'billing.*'] };

async function task(harness: Harness, billing: string) {
  const agent = await harness.registerAgent('triage', WITH_BILLING);
  const base = triageMandate();
  return harness.startTask(agent, triageMandate({ tools: [...(base['tools'] as object[]), { name: billing }] }));
}

describe('a tool the catalogue does not classify', () => {
  it('needs an approval on a task under step-up containment, like any sensitive call', async () => {
    // an export drifts (high) and puts the task under step-up; billing.wire_funds is not in tools.yaml
    h = await behaviourHarness({ containment: { rules: [{ detector: 'drift', severity: 'high', action: 'step_up' }] } });
    const t = await task(h, 'billing.wire_funds');
    expect((await call(h, t.token, 'helpdesk.export_tickets', { query: 'all' })).containment).toContain('step_up');
    // a catalogued read is not sensitive: it still passes
    expect((await call(h, t.token, 'kb.search')).effect).toBe('allow');
    const wire = await call(h, t.token, 'billing.wire_funds', { iban: 'DE00 1234', amount: 9000 });
    expect(wire).toMatchObject({ effect: 'approval_required', policy_effect: 'allow', reasons: ['CONTAINMENT_STEP_UP'] });
    expect(wire.approval_id).toEqual(expect.any(String));
  });

  it('is removed from a narrowed task: it may be a narrowed tool under another name', async () => {
    h = await behaviourHarness({ containment: { rules: [{ detector: 'chains', severity: 'high', action: 'narrow', tools: ['http.*'] }] } });
    const t = await task(h, 'billing.wire_funds');
    await call(h, t.token, 'vault.read_secret', { name: 'db' });
    expect((await call(h, t.token, 'http.post', { url: 'https://x.example' })).reasons).toEqual(['CONTAINMENT_NARROWED']);
    expect((await call(h, t.token, 'kb.search')).effect).toBe('allow');
    expect(await call(h, t.token, 'billing.wire_funds', { amount: 1 })).toMatchObject({ effect: 'deny', policy_effect: 'allow', reasons: ['CONTAINMENT_NARROWED'] });
  });

  it('drifts (high) unless the mandate names it exactly, and is always novel', async () => {
    h = await behaviourHarness({ containment: { rules: [] } });
    const globbed = await task(h, 'billing.*');
    const d = await call(h, globbed.token, 'billing.wire_funds', { amount: 1 });
    expect(d.effect).toBe('allow');
    expect(d.signals).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ detector: 'drift', severity: 'high', evidence: expect.objectContaining({ class: 'uncatalogued', tool: 'billing.wire_funds' }) }),
        expect.objectContaining({ detector: 'novelty', evidence: expect.objectContaining({ kind: 'uncatalogued_tool' }) }),
      ]),
    );
    const named = await task(h, 'billing.wire_funds');
    const again = await call(h, named.token, 'billing.wire_funds', { amount: 1 });
    expect(again.signals?.filter((s) => s.detector === 'drift')).toEqual([]);
    // novel on every call, with no baseline at all
    expect(again.signals?.map((s) => s.detector)).toContain('novelty');
  });
});
