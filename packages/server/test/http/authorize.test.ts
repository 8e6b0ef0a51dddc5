import { canonicalJson } from '@mandate/core';
import { sha256Hasher } from '@mandate/server';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { allAuditRecords, errorOf, mandate, startHarness, WIDE_CEILING, type DecisionBody, type Harness } from '../support.ts';

let h: Harness;
let agent: string;
let token: string;
let taskId: string;
let policyVersion: string;

beforeAll(async () => {
  h = await startHarness();
  agent = await h.registerAgent('authorize', { ...WIDE_CEILING, tools: [...WIDE_CEILING.tools, 'vault.login'] });
  const t = await h.startTask(
    agent,
    mandate({
      tools: [
        { name: 'helpdesk.search_tickets' },
        { name: 'fs.read_file', args: { path: { prefix: '/srv/kb/' } } },
        { name: 'mail.send', args: { to: { domains: ['acme.example'] } } },
        { name: 'vault.login' },
      ],
    }),
  );
  token = t.token;
  taskId = t.id;
  policyVersion = (await h.op('GET', '/v1/policies')).json<{ version: string }>().version;
});

afterAll(async () => {
  await h.close();
});

const search = { tool: 'helpdesk.search_tickets', args: { query: 'refund' } };

describe('POST /v1/authorize', () => {
  it('accepts the task token in the Authorization header', async () => {
    const res = await h.authorize(token, search);
    expect(res.statusCode).toBe(200);
    expect(res.json<DecisionBody>()).toMatchObject({ effect: 'allow', final: 'allowed', reasons: [], task_id: taskId, agent_id: agent });
  });

  it('accepts the task token in the body', async () => {
    const res = await h.inject({ method: 'POST', url: '/v1/authorize', payload: { ...search, task_token: token } });
    expect(res.statusCode).toBe(200);
    expect(res.json<DecisionBody>()).toMatchObject({ effect: 'allow', task_id: taskId });
  });

  it('answers 401 TOKEN_MISSING when there is no task token at all', async () => {
    const res = await h.inject({ method: 'POST', url: '/v1/authorize', payload: search });
    expect(res.statusCode).toBe(401);
    expect(errorOf(res).code).toBe('TOKEN_MISSING');
  });

  it('answers an allow with exactly the documented decision shape', async () => {
    const res = await h.authorize(token, search);
    const d = res.json<DecisionBody>();
    expect(Object.keys(d).sort()).toEqual(['agent_id', 'approval_id', 'audit_seq', 'call_id', 'details', 'effect', 'final', 'policy_ids', 'policy_version', 'reasons', 'task_id']);
    expect(d).toEqual({
      call_id: expect.stringMatching(/^call_/) as unknown,
      effect: 'allow',
      final: 'allowed',
      reasons: [],
      policy_ids: ['org.call.within-task-environment'],
      policy_version: policyVersion,
      task_id: taskId,
      agent_id: agent,
      details: [],
      audit_seq: expect.any(Number) as unknown,
      approval_id: null,
    });
    expect(policyVersion).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('answers a deny as HTTP 200 with effect deny, its reasons and the deciding policy ids', async () => {
    const res = await h.authorize(token, { tool: 'shell.exec', args: { cmd: 'id' } });
    expect(res.statusCode).toBe(200);
    const d = res.json<DecisionBody>();
    expect(Object.keys(d).sort()).toEqual(['agent_id', 'approval_id', 'audit_seq', 'call_id', 'details', 'effect', 'final', 'policy_ids', 'policy_version', 'reasons', 'task_id']);
    expect(d).toMatchObject({ effect: 'deny', final: 'blocked', reasons: ['TOOL_NOT_IN_MANDATE'], policy_ids: ['mandate.tools'], task_id: taskId, agent_id: agent, policy_version: policyVersion });
    expect(d.details.length).toBeGreaterThan(0);
    expect(d.audit_seq).toEqual(expect.any(Number));
  });

  it('answers an argument-constraint deny and an approval hold', async () => {
    const traversal = (await h.authorize(token, { tool: 'fs.read_file', args: { path: '/srv/kb/../../etc/shadow' } })).json<DecisionBody>();
    expect(traversal).toMatchObject({ effect: 'deny', reasons: ['ARG_CONSTRAINT_FAILED'] });
    const held = (await h.authorize(token, { tool: 'mail.send', args: { to: 'c@acme.example', body: 'hi' } })).json<DecisionBody>();
    expect(held).toMatchObject({ effect: 'approval_required', final: 'held', reasons: ['APPROVAL_REQUIRED'], policy_ids: ['org.call.external-send-needs-approval'] });
  });

  it('answers a garbage token with a 200 deny that is attributed to nobody and not chained', async () => {
    const head = (await h.runtime.store.audit.head())?.seq;
    const res = await h.authorize('not.a.jwt', search);
    expect(res.statusCode).toBe(200);
    const d = res.json<DecisionBody>();
    expect(d).toMatchObject({ effect: 'deny', final: 'blocked', reasons: ['TOKEN_MALFORMED'], task_id: null, agent_id: null, audit_seq: null });
    expect((await h.runtime.store.audit.head())?.seq).toBe(head);
  });

  it('denies a token whose signature was tampered with', async () => {
    const [hd, payload, sig] = token.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
    const forged = `${hd}.${Buffer.from(JSON.stringify({ ...claims, task_id: 'task_other' })).toString('base64url')}.${sig}`;
    const d = (await h.authorize(forged, search)).json<DecisionBody>();
    expect(d.effect).toBe('deny');
    expect(d.reasons).toEqual(['TOKEN_SIGNATURE_INVALID']);
  });

  it('echoes a caller-supplied call_id and links the decision and action records by it', async () => {
    const callId = 'call-echo-1';
    const d = (await h.authorize(token, { ...search, call_id: callId })).json<DecisionBody>();
    expect(d.call_id).toBe(callId);
    const records = (await allAuditRecords(h)).filter((r) => r.call_id === callId);
    expect(records.map((r) => r.kind)).toEqual(['decision', 'action']);
    const [decision, action] = records as [(typeof records)[number], (typeof records)[number]];
    expect(decision.seq).toBe(d.audit_seq);
    expect(action.seq).toBe(decision.seq + 1);
    expect(action.prev_hash).toBe(decision.hash);
    for (const r of records) expect(r).toMatchObject({ task_id: taskId, agent_id: agent, txn: expect.stringMatching(/^txn_/) as unknown });
    expect(decision.data).toMatchObject({ tool: search.tool, effect: 'allow', reasons: [], policy_ids: ['org.call.within-task-environment'], policy_version: policyVersion });
    expect(action.data).toEqual({ final: 'allowed', effect: 'allow' });
  });

  it('links the records of a denied call by its call_id too', async () => {
    const callId = 'call-echo-deny';
    const d = (await h.authorize(token, { tool: 'shell.exec', args: {}, call_id: callId })).json<DecisionBody>();
    expect(d).toMatchObject({ call_id: callId, effect: 'deny' });
    const records = (await allAuditRecords(h)).filter((r) => r.call_id === callId);
    expect(records.map((r) => [r.kind, r.data['effect']])).toEqual([
      ['decision', 'deny'],
      ['action', 'deny'],
    ]);
    expect(records[1]?.data['final']).toBe('blocked');
  });

  it('replaces an invalid call_id and denies the call as malformed', async () => {
    const d = (await h.authorize(token, { ...search, call_id: 'has spaces; DROP TABLE' })).json<DecisionBody>();
    expect(d.effect).toBe('deny');
    expect(d.reasons).toEqual(['MALFORMED_REQUEST']);
    expect(d.call_id).toMatch(/^call_/);
  });

  it('records args_hash and redacted args, and a secret value appears nowhere', async () => {
    const secret = 'hunter2-S3cr3t-value';
    const apiKey = 'sk-live-0123456789';
    const args = { username: 'svc-bot', password: secret, nested: { api_key: apiKey, note: 'visible' } };
    const res = await h.authorize(token, { tool: 'vault.login', args, call_id: 'call-secret' });
    expect(res.body).not.toContain(secret);
    expect(res.body).not.toContain(apiKey);

    const auditRes = await h.op('GET', '/v1/audit?limit=10000');
    expect(auditRes.body).not.toContain(secret);
    expect(auditRes.body).not.toContain(apiKey);
    const taskAudit = await h.op('GET', `/v1/tasks/${taskId}/audit`);
    expect(taskAudit.body).not.toContain(secret);

    const decision = (await allAuditRecords(h)).find((r) => r.call_id === 'call-secret' && r.kind === 'decision');
    expect(decision?.data['args']).toEqual({ username: 'svc-bot', password: '[REDACTED]', nested: { api_key: '[REDACTED]', note: 'visible' } });
    expect(decision?.data['args_hash']).toBe('sha256:' + sha256Hasher.sha256Hex(canonicalJson(args)));
  });

  it('keeps secrets out of a denied call’s records as well', async () => {
    const secret = 'tok-DENIED-secret-42';
    const res = await h.authorize(token, { tool: 'shell.exec', args: { session_token: secret }, call_id: 'call-secret-deny' });
    expect(res.json<DecisionBody>().effect).toBe('deny');
    expect(res.body).not.toContain(secret);
    expect((await h.op('GET', '/v1/audit?limit=10000')).body).not.toContain(secret);
  });

  it('counts the budget atomically: 30 concurrent calls on a budget of 10 give exactly 10 allows', async () => {
    const t = await h.startTask(await h.registerAgent('budget'), mandate({ budgets: { calls: 10 } }));
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => h.authorize(t.token, { ...search, call_id: `budget-${i}` })));
    const decisions = results.map((r) => r.json<DecisionBody>());
    expect(results.every((r) => r.statusCode === 200)).toBe(true);
    expect(decisions.filter((d) => d.effect === 'allow')).toHaveLength(10);
    const denied = decisions.filter((d) => d.effect !== 'allow');
    expect(denied).toHaveLength(20);
    for (const d of denied) expect(d.reasons).toEqual(['BUDGET_EXHAUSTED']);
    expect((await h.runtime.store.budgets.usage(t.id, search.tool)).calls).toBe(10);
    const again = (await h.authorize(t.token, search)).json<DecisionBody>();
    expect(again.effect).toBe('deny');

    const records = (await allAuditRecords(h)).filter((r) => r.task_id === t.id && r.kind === 'decision');
    expect(records).toHaveLength(31);
    expect(records.filter((r) => r.data['effect'] === 'allow')).toHaveLength(10);
    expect((await h.verifyAudit()).ok).toBe(true);
  });
});

describe('health endpoints', () => {
  it('answers /healthz with 200 and no credentials', async () => {
    const res = await h.inject({ method: 'GET', url: '/healthz' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok' });
  });

  it('answers /readyz with 200 when the store answers', async () => {
    const res = await h.inject({ method: 'GET', url: '/readyz' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ready', checks: { store: 'ok', commit: 'ok', audit: 'ok', change_feed: 'ok', policies: policyVersion } });
  });

  it('answers /readyz with 503 when the store does not answer', async () => {
    const spy = vi.spyOn(h.runtime.store, 'ping').mockRejectedValue(new Error('database is locked'));
    try {
      const res = await h.inject({ method: 'GET', url: '/readyz' });
      expect(res.statusCode).toBe(503);
      expect(res.json()).toMatchObject({ status: 'not_ready', checks: { store: 'unavailable' } });
      expect(res.body).not.toContain('locked');
    } finally {
      spy.mockRestore();
    }
    expect((await h.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
  });
});
