/**
 * A node that cannot confirm its cached state is current (its change feed is down) denies
 * every call and reports not ready, until it can again.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DecisionEngine } from '@mandate/core';
import { buildHttpApp, type MandateRuntime } from '../../src/index.ts';
import { mandate, startHarness, type Harness } from '../support.ts';

describe('freshness of cached state', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness();
  });
  afterEach(async () => h.close());

  it('denies with STORE_UNAVAILABLE while the feed is down and allows again once it is back', async () => {
    const rt = h.runtime;
    let fresh = true;
    const engine = new DecisionEngine({
      clock: rt.clock,
      ids: rt.ids,
      hasher: rt.hasher,
      tokens: rt.tokens,
      agents: rt.agents,
      tasks: rt.taskState,
      revocations: rt.store.revocations,
      budgets: rt.store.budgets,
      audit: rt.audit,
      policies: () => rt.policies.current,
      environment: rt.config.environment,
      freshness: { fresh: () => fresh },
      limits: { args: { maxDepth: 8, maxEntries: 256, maxStringLength: 65_536, maxNodes: 4096 } },
    });
    const t = await h.startTask(await h.registerAgent('fresh'), mandate());
    const call = () => engine.decide({ taskToken: t.token, tool: 'helpdesk.search_tickets', args: {} });
    expect((await call()).effect).toBe('allow');
    fresh = false;
    expect(await call()).toMatchObject({ effect: 'deny', reasons: ['STORE_UNAVAILABLE'] });
    fresh = true;
    expect((await call()).effect).toBe('allow');
  });

  it('reports not ready while the feed is down', async () => {
    let fresh = false;
    const rt: MandateRuntime = { ...h.runtime, fresh: () => fresh };
    const app = buildHttpApp(rt);
    expect((await app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(503);
    fresh = true;
    expect((await app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
    await app.close();
  });
});
