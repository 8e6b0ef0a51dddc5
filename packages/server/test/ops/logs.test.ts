import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MandateError } from '@mandate/core';
import { buildHttpApp } from '../../src/http/app.ts';
import { WriteHealth } from '../../src/write-health.ts';
import { mandate, startHarness, type Harness } from '../support.ts';

type Line = Record<string, unknown> & { msg: string; reqId?: string };

describe('operational log lines', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(() => h.close());

  it('the access line of a decision names its effect, task, agent and call, and never the token or the query string', async () => {
    const agent = await h.registerAgent('access-log');
    const task = await h.startTask(agent, mandate());
    const lines: string[] = [];
    const app = buildHttpApp(h.runtime, { logger: { level: 'info', stream: { write: (l) => void lines.push(l) } } });
    try {
      const call = (id: string, tool: string) =>
        app.inject({ method: 'POST', url: '/v1/authorize?debug=secret-query-value', headers: { authorization: `Bearer ${task.token}`, 'x-request-id': id }, payload: { tool, call_id: `${id}-call`, args: {} } });
      expect((await call('access-allow', 'helpdesk.search_tickets')).json<{ effect: string }>().effect).toBe('allow');
      expect((await call('access-deny', 'mail.send')).json<{ effect: string }>().effect).toBe('deny');
      await app.inject({ method: 'GET', url: '/v1/agents', headers: { authorization: `Bearer ${h.admin}`, 'x-request-id': 'access-op' } });
    } finally {
      await app.close();
    }
    const completed = lines.map((l) => JSON.parse(l) as Line).filter((e) => e.msg === 'request completed');
    const allow = completed.find((e) => e.reqId === 'access-allow');
    expect(allow).toMatchObject({ effect: 'allow', taskId: task.id, agentId: agent, callId: 'access-allow-call', req: { url: '/v1/authorize' }, res: { statusCode: 200 } });
    expect(completed.find((e) => e.reqId === 'access-deny')).toMatchObject({ effect: 'deny', taskId: task.id, agentId: agent });
    // an operator request names the key's id, never the key
    const op = completed.find((e) => e.reqId === 'access-op');
    expect(op?.['operator']).toEqual(expect.any(String));
    const text = lines.join('\n');
    expect(text).not.toContain(task.token);
    expect(text).not.toContain(h.admin);
    expect(text).not.toContain('secret-query-value');
  });

  it('a kill is a structured warning naming the target, the operator and the tasks it ended', async () => {
    const agent = await h.registerAgent('kill-log');
    const task = await h.startTask(agent, mandate());
    const lines: string[] = [];
    const app = buildHttpApp(h.runtime, { logger: { level: 'info', stream: { write: (l) => void lines.push(l) } } });
    try {
      const res = await app.inject({ method: 'POST', url: '/v1/kill', headers: { authorization: `Bearer ${h.admin}` }, payload: { agent, reason: 'log test' } });
      expect(res.statusCode, res.body).toBe(200);
    } finally {
      await app.close();
    }
    const kill = lines.map((l) => JSON.parse(l) as Line).find((e) => e['event'] === 'kill');
    expect(kill).toMatchObject({ level: 40, target: { agent }, reason: 'log test', disabledAgent: agent, killed: 1, taskIds: [task.id], by: expect.any(String) });
  });
});

describe('store outage and recovery lines', () => {
  it('are written once when commits start failing and once when they succeed again', async () => {
    const logged: { level: string; obj: Record<string, unknown>; msg: string }[] = [];
    const log = { warn: (obj: object, msg: string) => void logged.push({ level: 'warn', obj: obj as Record<string, unknown>, msg }), info: (obj: object, msg: string) => void logged.push({ level: 'info', obj: obj as Record<string, unknown>, msg }) };
    let now = 0;
    const health = new WriteHealth(async () => undefined, { freshMs: 5_000, minProbeGapMs: 1_000, now: () => now }, log);
    health.committed();
    for (let i = 0; i < 5; i++) health.failed(new MandateError('AUDIT_UNAVAILABLE', 'disk full'));
    now += 2_000;
    expect((await health.check()).ok).toBe(true);
    health.committed();
    expect(logged.map((l) => `${l.level} ${String(l.obj['event'])}`)).toEqual(['warn store.unavailable', 'info store.recovered']);
    expect(logged[0]?.obj['reason']).toContain('disk full');
  });
});
