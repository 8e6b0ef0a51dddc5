import { afterEach, describe, expect, it } from 'vitest';
import { MINUTE, mandate, startHarness, type Harness } from './support.ts';

describe('task expiry', () => {
  let h: Harness;
  afterEach(async () => h.close());

  it('marks tasks past their time as expired, once, with an audit record', async () => {
    h = await startHarness();
    const agent = await h.registerAgent('expiring');
    const short = await h.startTask(agent, mandate({ ttl: '2m' }));
    const long = await h.startTask(agent, mandate({ ttl: '30m' }));
    h.clock.advance(3 * MINUTE);

    expect(await h.runtime.tasks.expireDue()).toBe(1);
    expect(await h.runtime.tasks.expireDue()).toBe(0);

    const listed = (await h.op('GET', '/v1/tasks?state=expired')).json<{ tasks: { id: string }[] }>();
    expect(listed.tasks.map((t) => t.id)).toEqual([short.id]);
    expect((await h.op('GET', `/v1/tasks/${long.id}`)).json<{ state: string }>().state).toBe('active');
    const trail = (await h.op('GET', `/v1/tasks/${short.id}/audit`)).json<{ records: { kind: string }[] }>();
    expect(trail.records.map((r) => r.kind)).toEqual(['task.started', 'task.expired']);
    expect((await h.verifyAudit()).ok).toBe(true);
  });

  it('denies a call on a task past its time even before the sweep ran', async () => {
    h = await startHarness({ config: { tokens: { ttl: '10m' } } });
    const agent = await h.registerAgent('expiring-call');
    const t = await h.startTask(agent, mandate({ ttl: '2m' }));
    h.clock.advance(2 * MINUTE + 1);
    const d = (await h.authorize(t.token, { tool: 'helpdesk.search_tickets', args: {} })).json<{ effect: string; reasons: string[] }>();
    expect(d.effect).toBe('deny');
    // the token was minted to die with the task, so its own expiry answers first
    expect(d.reasons).toEqual(['TOKEN_EXPIRED']);
  });
});
