import { afterEach, describe, expect, it } from 'vitest';
import { deferPastCommit } from '../../src/compose.ts';
import { EXAMPLE_POLICIES, mandate, startHarness, WIDE_CEILING, type DecisionBody, type Harness } from '../support.ts';

interface PoliciesView {
  engine: { engine: string; compiled: number; total: number; notCompiled: unknown[]; fallbacks: number };
  cross_check: { fraction: number; checked: number; divergences: number; dropped: number; pending: number } | null;
}

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function decideSome(harness: Harness, n: number): Promise<void> {
  const agent = await harness.registerAgent('engine', WIDE_CEILING);
  const t = await harness.startTask(agent, mandate({ tools: [{ name: 'helpdesk.search_tickets' }] }));
  for (let i = 0; i < n; i++) {
    const res = await harness.authorize(t.token, { tool: 'helpdesk.search_tickets', args: { query: `q${i}` } });
    expect(res.json<DecisionBody>().effect).toBe('allow');
  }
}

describe('policies.engine and the live cross-check', () => {
  it('compiles the example policies and cross-checks every sampled decision against cedar-wasm without divergence', async () => {
    h = await startHarness({ config: { policies: { dir: EXAMPLE_POLICIES, cross_check_fraction: 1 } } });
    await decideSome(h, 5);
    await new Promise((r) => setImmediate(r));
    const view = (await h.op('GET', '/v1/policies')).json<PoliciesView>();
    expect(view.engine.engine).toBe('compiled');
    expect(view.engine.compiled).toBe(view.engine.total);
    expect(view.engine.fallbacks).toBe(0);
    expect(view.cross_check?.checked).toBeGreaterThanOrEqual(5);
    expect(view.cross_check?.divergences).toBe(0);
  });

  it('answers with cedar-wasm alone when configured so', async () => {
    h = await startHarness({ config: { policies: { dir: EXAMPLE_POLICIES, engine: 'cedar' } } });
    await decideSome(h, 2);
    const view = (await h.op('GET', '/v1/policies')).json<PoliciesView>();
    expect(view.engine.engine).toBe('cedar');
    expect(view.cross_check).toBeNull();
  });
});

describe('the cross-check is scheduled off the sampled call\'s path', () => {
  it('runs a sampled check after the commit that the same turn queued next (setImmediate), not before it', async () => {
    const order: string[] = [];
    // as in decide(): the policy step samples the call, then its audit commit is scheduled
    deferPastCommit(() => order.push('cross-check'));
    setImmediate(() => order.push('audit commit handed to the store'));
    await new Promise((r) => setTimeout(r, 20));
    expect(order).toEqual(['audit commit handed to the store', 'cross-check']);
  });
});
