/**
 * POST /v1/mandates/suggest: suggestions learnt from the server's own audit log are accepted by
 * the same server (the ceiling registers an agent, the template starts a task that makes the
 * same calls), windows split the log, and bad input gets stable error codes.
 */
import { parse } from 'yaml';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TEMPLATE_PURPOSE, type AgentSuggestion, type DenialReport } from '@mandate/core';
import { observeAudit } from '../../src/suggest.ts';
import { MINUTE, errorOf, mandate, startHarness, type Harness } from '../support.ts';

interface SuggestBody {
  agents: AgentSuggestion[];
  training: DenialReport;
  evaluation?: DenialReport;
  yaml: string;
}

describe('POST /v1/mandates/suggest', () => {
  let h: Harness;
  let agent: string;
  let t0: number;

  beforeEach(async () => {
    h = await startHarness();
    agent = await h.registerAgent('suggest');
    t0 = h.clock.now();
    for (let i = 0; i < 4; i++) {
      const t = await h.startTask(agent, mandate({ tools: [{ name: 'helpdesk.search_tickets' }, { name: 'fs.read_file', args: { path: { prefix: '/srv/kb/' } } }] }));
      await h.authorize(t.token, { tool: 'helpdesk.search_tickets', args: { query: `refund ${i}`, status: 'open' } });
      await h.authorize(t.token, { tool: 'fs.read_file', args: { path: `/srv/kb/billing/${i}.md` } });
      // denied by the mandate: never learnt from
      await h.authorize(t.token, { tool: 'fs.read_file', args: { path: '/etc/passwd' } });
      h.clock.advance(MINUTE);
    }
  });
  afterEach(async () => h.close());

  it('suggests from the audit log what the same server then accepts, and denies nothing of the window', async () => {
    const res = await h.op('POST', '/v1/mandates/suggest', { source: 'audit' });
    expect(res.statusCode).toBe(200);
    const body = res.json<SuggestBody>();
    expect(body.agents.map((a) => a.agent)).toEqual([agent]);
    const s = body.agents[0] as AgentSuggestion;
    expect(s.ceiling).toMatchObject({ tools: ['fs.read_file', 'helpdesk.search_tickets'], data_classes: ['internal'], environments: ['prod'], max_ttl: '15m' });
    expect(s.mandate.tools).toEqual([
      { name: 'fs.read_file', args: { path: { prefix: '/srv/kb/billing' } } },
      // four queries of no shape: exactly those four (the `exact` rule)
      { name: 'helpdesk.search_tickets', args: { query: { one_of: ['refund 0', 'refund 1', 'refund 2', 'refund 3'] }, status: { one_of: ['open'] } } },
    ]);
    expect(body.training).toMatchObject({ tasks: 4, calls: 8, template: { denied: 0 }, ceiling: { denied: 0 } });
    expect((parse(body.yaml) as { agents: unknown[] }).agents).toHaveLength(1);

    // the suggestion, used: a new agent under the suggested ceiling, a task under the template
    const narrow = await h.registerAgent('narrow', s.ceiling as Record<string, unknown>);
    const t = await h.startTask(narrow, { ...s.mandate, purpose: 'Look up refund tickets and the billing notes.' } as Record<string, unknown>);
    expect((await h.authorize(t.token, { tool: 'fs.read_file', args: { path: '/srv/kb/billing/9.md' } })).json<{ effect: string }>().effect).toBe('allow');
    expect((await h.authorize(t.token, { tool: 'fs.read_file', args: { path: '/srv/kb/hr/salaries.md' } })).json<{ effect: string }>().effect).toBe('deny');
    expect(s.mandate.purpose).toBe(TEMPLATE_PURPOSE);
  });

  it('learns from one window and reports what it denies of the next', async () => {
    const t = await h.startTask(agent, mandate({ tools: [{ name: 'helpdesk.search_tickets' }, { name: 'fs.read_file' }] }));
    await h.authorize(t.token, { tool: 'fs.read_file', args: { path: '/srv/other/x.md' } });
    const until = new Date(t0 + 4 * MINUTE).toISOString();
    const res = await h.op('POST', '/v1/mandates/suggest', { source: 'audit', since: new Date(t0).toISOString(), until, evaluate_until: new Date(t0 + 60 * MINUTE).toISOString(), agent });
    expect(res.statusCode).toBe(200);
    const body = res.json<SuggestBody>();
    expect(body.training.calls).toBe(8);
    expect(body.evaluation).toMatchObject({ tasks: 1, calls: 1, template: { denied: 1, byReason: { ARG_CONSTRAINT_FAILED: 1 } }, ceiling: { denied: 0 } });
  });

  it('reads both windows in one pass over the store, and refuses a log longer than its bound rather than cut it', async () => {
    const [first, second] = await observeAudit(h.runtime.store.audit, [{ until: t0 + 2 * MINUTE }, { since: t0 + 2 * MINUTE }], 10_000);
    expect([first?.length, second?.length]).toEqual([2, 2]);
    await expect(observeAudit(h.runtime.store.audit, [{}], 5)).rejects.toMatchObject({ code: 'LIMIT_EXCEEDED' });
  });

  it('suggests from traces in the body', async () => {
    const traces = [0, 1, 2].map((i) => ({ id: `t${i}`, suite: 'ops', purpose: 'read the runbook', steps: [{ tool: 'fs.read_file', args: { path: `/srv/runbooks/${i}.md` } }] }));
    const res = await h.op('POST', '/v1/mandates/suggest', { source: 'traces', traces, later_traces: [{ id: 'x', suite: 'ops', purpose: 'read', steps: [{ tool: 'mail.send', args: {} }] }] });
    expect(res.statusCode).toBe(200);
    const body = res.json<SuggestBody>();
    expect(body.agents[0]?.mandate.tools).toEqual([{ name: 'fs.read_file', args: { path: { prefix: '/srv/runbooks' } } }]);
    expect(body.evaluation).toMatchObject({ calls: 1, template: { denied: 1 }, ceiling: { denied: 1, byReason: { TOOL_NOT_IN_CEILING: 1 } } });
  });

  it('refuses bad input with stable codes and answers no one without an operator key', async () => {
    const cases: [unknown, number, string][] = [
      [{ source: 'files' }, 400, 'MALFORMED_REQUEST'],
      [{ source: 'audit', since: 'yesterday' }, 400, 'MALFORMED_REQUEST'],
      [{ source: 'audit', extra: 1 }, 400, 'MALFORMED_REQUEST'],
      [{ source: 'audit', since: '2026-11-02T11:00:00Z', until: '2026-11-02T10:00:00Z' }, 400, 'INVALID_ARGUMENT'],
      [{ source: 'audit', until: '2026-11-02T11:00:00Z', evaluate_until: '2026-11-02T10:00:00Z' }, 400, 'INVALID_ARGUMENT'],
      [{ source: 'traces' }, 400, 'INVALID_ARGUMENT'],
      [{ source: 'traces', traces: [{ id: 'a', suite: 'bad suite!', purpose: '', steps: [] }] }, 400, 'MALFORMED_REQUEST'],
      [{ source: 'traces', traces: Array.from({ length: 1001 }, () => ({})) }, 400, 'MALFORMED_REQUEST'],
    ];
    for (const [payload, status, code] of cases) {
      const res = await h.op('POST', '/v1/mandates/suggest', payload);
      expect([res.statusCode, errorOf(res).code], JSON.stringify(payload).slice(0, 100)).toEqual([status, code]);
    }
    const anon = await h.inject({ method: 'POST', url: '/v1/mandates/suggest', payload: { source: 'audit' } });
    expect(anon.statusCode).toBe(401);
  });
});
