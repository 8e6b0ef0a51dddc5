import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { errorOf, mandate, startHarness, TRUST_DOMAIN, WIDE_CEILING, type DecisionBody, type Harness, type Method } from '../support.ts';

let h: Harness;

beforeAll(async () => {
  h = await startHarness();
});

afterAll(async () => {
  await h.close();
});

async function newViewerKey(role: 'viewer' | 'approver' | 'admin' = 'viewer'): Promise<{ id: string; key: string }> {
  const res = await h.op('POST', '/v1/operators/keys', { name: `${role}-key`, role });
  expect(res.statusCode).toBe(201);
  const body = res.json<{ id: string; name: string; role: string; key: string }>();
  expect(body.role).toBe(role);
  expect(body.key).toMatch(/^mk_[A-Za-z0-9_-]{43}$/);
  return { id: body.id, key: body.key };
}

describe('agents CRUD', () => {
  it('reads and updates an agent whose SPIFFE ID is long (path ids are bounded by the ID rules, not by the router)', async () => {
    // a valid SPIFFE ID may be 2048 bytes; percent-encoded in a path it is up to three times longer
    const id = `spiffe://${TRUST_DOMAIN}/agents/${'team-with-a-long-name/'.repeat(40)}worker`;
    expect(id.length).toBeLessThanOrEqual(2048);
    expect((await h.op('POST', '/v1/agents', { id, owner: 'team-a', type: 'support' })).statusCode).toBe(201);
    const path = `/v1/agents/${encodeURIComponent(id)}`;
    const got = await h.op('GET', path);
    expect(got.statusCode).toBe(200);
    expect(got.json<{ id: string }>().id).toBe(id);
    const patched = await h.op('PATCH', path, { status: 'disabled' });
    expect(patched.statusCode).toBe(200);
    expect(patched.json<{ status: string }>().status).toBe('disabled');
  });

  it('answers a path id beyond any valid length, or a malformed path, with the error envelope', async () => {
    for (const url of [`/v1/agents/${'x'.repeat(7000)}`, '/v1/agents/%E0%A4%A']) {
      const res = await h.op('GET', url);
      expect(res.statusCode).toBe(400);
      expect(errorOf(res).code).toBe('MALFORMED_REQUEST');
      expect(res.headers['x-request-id']).toMatch(/^req_/);
      expect(res.headers['cache-control']).toBe('no-store');
    }
  });

  it('registers an agent and answers 201 with its view', async () => {
    const id = `spiffe://${TRUST_DOMAIN}/agents/crud-create`;
    const res = await h.op('POST', '/v1/agents', { id, owner: 'team-a', type: 'support', ceiling: { tools: ['helpdesk.*'] } });
    expect(res.statusCode).toBe(201);
    const body = res.json<Record<string, unknown>>();
    expect(body).toEqual({
      id,
      owner: 'team-a',
      type: 'support',
      status: 'active',
      ceiling: { tools: ['helpdesk.*'] },
      created_at: expect.any(String) as unknown,
      updated_at: expect.any(String) as unknown,
    });
  });

  it.each([
    ['a non-spiffe scheme', 'https://test.local/agents/x'],
    ['an upper-case trust domain', 'spiffe://Test.Local/agents/x'],
    ['a trust domain without a workload path', 'spiffe://test.local'],
    ['a relative path segment', 'spiffe://test.local/agents/../admin'],
    ['a trailing slash', 'spiffe://test.local/agents/'],
    ['a query string', 'spiffe://test.local/agents/x?y=1'],
  ])('refuses %s as an invalid argument naming SPIFFE_ID_INVALID', async (_what, id) => {
    const res = await h.op('POST', '/v1/agents', { id, owner: 'team-a', type: 'support' });
    // an authenticated operator's bad input is a 400, not a failed authentication
    expect(res.statusCode).toBe(400);
    expect(errorOf(res).code).toBe('INVALID_ARGUMENT');
    expect((res.json() as { error: { details: { reason: string } } }).error.details.reason).toBe('SPIFFE_ID_INVALID');
    const get = await h.op('GET', `/v1/agents/${encodeURIComponent(id)}`);
    expect(get.statusCode).toBe(404);
  });

  it('refuses a second agent with the same SPIFFE ID with 409 CONFLICT', async () => {
    const id = `spiffe://${TRUST_DOMAIN}/agents/crud-dup`;
    expect((await h.op('POST', '/v1/agents', { id, owner: 'team-a', type: 'support' })).statusCode).toBe(201);
    const again = await h.op('POST', '/v1/agents', { id, owner: 'team-b', type: 'other' });
    expect(again.statusCode).toBe(409);
    expect(errorOf(again).code).toBe('CONFLICT');
    const get = await h.op('GET', `/v1/agents/${encodeURIComponent(id)}`);
    expect(get.json<{ owner: string }>().owner).toBe('team-a');
  });

  it('refuses an invalid ceiling and unknown body fields', async () => {
    const id = `spiffe://${TRUST_DOMAIN}/agents/crud-bad-ceiling`;
    const badCeiling = await h.op('POST', '/v1/agents', { id, owner: 'o', type: 't', ceiling: { tools: ['x'], admin: true } });
    expect(badCeiling.statusCode).toBe(400);
    expect(errorOf(badCeiling).code).toBe('INVALID_ARGUMENT');
    const unknownField = await h.op('POST', '/v1/agents', { id, owner: 'o', type: 't', role: 'admin' });
    expect(unknownField.statusCode).toBe(400);
    expect(errorOf(unknownField).code).toBe('MALFORMED_REQUEST');
  });

  it('reads an agent by its URL-encoded SPIFFE ID and lists it', async () => {
    const id = await h.registerAgent('crud-read');
    const res = await h.op('GET', `/v1/agents/${encodeURIComponent(id)}`);
    expect(res.statusCode).toBe(200);
    expect(res.json<{ id: string; status: string }>()).toMatchObject({ id, status: 'active' });

    const list = await h.op('GET', '/v1/agents?limit=1000');
    expect(list.statusCode).toBe(200);
    expect(list.json<{ agents: { id: string }[] }>().agents.map((a) => a.id)).toContain(id);
  });

  it('answers 404 NOT_FOUND for an agent that does not exist', async () => {
    const res = await h.op('GET', `/v1/agents/${encodeURIComponent(`spiffe://${TRUST_DOMAIN}/agents/nobody`)}`);
    expect(res.statusCode).toBe(404);
    expect(errorOf(res).code).toBe('NOT_FOUND');
    const patch = await h.op('PATCH', `/v1/agents/${encodeURIComponent(`spiffe://${TRUST_DOMAIN}/agents/nobody`)}`, { status: 'disabled' });
    expect(patch.statusCode).toBe(404);
    expect(errorOf(patch).code).toBe('NOT_FOUND');
  });

  it('refuses a PATCH that changes nothing', async () => {
    const id = await h.registerAgent('crud-empty-patch');
    const res = await h.op('PATCH', `/v1/agents/${encodeURIComponent(id)}`, {});
    expect(res.statusCode).toBe(400);
    expect(errorOf(res).code).toBe('MALFORMED_REQUEST');
  });

  it('disabling an agent denies its next call with AGENT_DISABLED and refuses a new task', async () => {
    const id = await h.registerAgent('crud-disable');
    const task = await h.startTask(id);
    const before = await h.authorize(task.token, { tool: 'helpdesk.search_tickets', args: { query: 'a' } });
    expect(before.json<DecisionBody>().effect).toBe('allow');

    const patch = await h.op('PATCH', `/v1/agents/${encodeURIComponent(id)}`, { status: 'disabled' });
    expect(patch.statusCode).toBe(200);
    expect(patch.json<{ status: string }>().status).toBe('disabled');

    const after = await h.authorize(task.token, { tool: 'helpdesk.search_tickets', args: { query: 'a' } });
    expect(after.statusCode).toBe(200);
    const d = after.json<DecisionBody>();
    expect(d.effect).toBe('deny');
    expect(d.reasons).toEqual(['AGENT_DISABLED']);

    const svid = await h.workloadToken(id);
    const start = await h.inject({ method: 'POST', url: '/v1/tasks', headers: { authorization: `Bearer ${svid}` }, payload: { mandate: mandate() } });
    expect(start.statusCode).toBe(403);
    expect(errorOf(start).code).toBe('AGENT_DISABLED');

    const renew = await h.inject({ method: 'POST', url: `/v1/tasks/${task.id}/renew`, headers: { authorization: `Bearer ${task.token}` }, payload: {} });
    // refused either way: AGENT_DISABLED, or TASK_REVOKED once disabling also ends the tasks
    expect([403, 409]).toContain(renew.statusCode);
    expect(['AGENT_DISABLED', 'TASK_REVOKED']).toContain(errorOf(renew).code);
  });

  // THREATS.md NHI1: "agents expire or are disabled; tasks and leases die with them". Today a
  // disable only pauses the agent's tasks: re-enabling it brings the old task tokens back to life.
  it('does not revive the tasks a disabled agent had once it is enabled again', async () => {
    const id = await h.registerAgent('crud-reenable');
    const task = await h.startTask(id);
    expect((await h.op('PATCH', `/v1/agents/${encodeURIComponent(id)}`, { status: 'disabled' })).statusCode).toBe(200);
    expect((await h.op('PATCH', `/v1/agents/${encodeURIComponent(id)}`, { status: 'active' })).statusCode).toBe(200);

    const d = (await h.authorize(task.token, { tool: 'helpdesk.search_tickets', args: { query: 'a' } })).json<DecisionBody>();
    expect(d.effect).toBe('deny');
    const view = await h.op('GET', `/v1/tasks/${task.id}`);
    expect(view.json<{ state: string }>().state).not.toBe('active');
  });
});

describe('operator roles', () => {
  it('lets a viewer read but refuses it writes with 403 FORBIDDEN', async () => {
    const viewer = await newViewerKey('viewer');
    for (const url of ['/v1/agents', '/v1/tasks', '/v1/audit', '/v1/audit/verify', '/v1/audit/checkpoints', '/v1/policies']) {
      const res = await h.op('GET', url, undefined, viewer.key);
      expect(res.statusCode, url).toBe(200);
    }
    const create = await h.op('POST', '/v1/agents', { id: `spiffe://${TRUST_DOMAIN}/agents/by-viewer`, owner: 'o', type: 't' }, viewer.key);
    expect(create.statusCode).toBe(403);
    expect(errorOf(create).code).toBe('FORBIDDEN');
    const get = await h.op('GET', `/v1/agents/${encodeURIComponent(`spiffe://${TRUST_DOMAIN}/agents/by-viewer`)}`);
    expect(get.statusCode).toBe(404);

    for (const [method, url, payload] of [
      ['POST', '/v1/operators/keys', { name: 'escalate', role: 'admin' }],
      ['GET', '/v1/operators/keys', undefined],
      ['POST', '/v1/keys/rotate', { purpose: 'task-token' }],
      ['POST', '/v1/policies/reload', {}],
      ['POST', '/v1/dev/workload-tokens', { spiffe_id: `spiffe://${TRUST_DOMAIN}/agents/x` }],
    ] as const) {
      const res = await h.op(method, url, payload, viewer.key);
      expect(res.statusCode, `${method} ${url}`).toBe(403);
      expect(errorOf(res).code).toBe('FORBIDDEN');
    }
  });

  it('refuses an approver the admin-only agent registration', async () => {
    const approver = await newViewerKey('approver');
    const res = await h.op('POST', '/v1/agents', { id: `spiffe://${TRUST_DOMAIN}/agents/by-approver`, owner: 'o', type: 't' }, approver.key);
    expect(res.statusCode).toBe(403);
    expect(errorOf(res).code).toBe('FORBIDDEN');
  });

  it('answers 401 UNAUTHENTICATED without a key', async () => {
    const res = await h.inject({ method: 'GET', url: '/v1/agents' });
    expect(res.statusCode).toBe(401);
    expect(errorOf(res).code).toBe('UNAUTHENTICATED');
  });

  it.each([
    ['a garbage key', 'Bearer not-a-key'],
    ['a well-shaped but unknown key', `Bearer mk_${'A'.repeat(43)}`],
    ['the wrong scheme', `Basic ${Buffer.from('admin:admin').toString('base64')}`],
    ['an empty bearer', 'Bearer '],
  ])('answers 401 UNAUTHENTICATED for %s', async (_what, authorization) => {
    const res = await h.inject({ method: 'GET', url: '/v1/agents', headers: { authorization } });
    expect(res.statusCode).toBe(401);
    expect(errorOf(res).code).toBe('UNAUTHENTICATED');
  });

  it('stops accepting an operator key once it is revoked', async () => {
    const viewer = await newViewerKey('viewer');
    expect((await h.op('GET', '/v1/agents', undefined, viewer.key)).statusCode).toBe(200);
    const del = await h.op('DELETE', `/v1/operators/keys/${viewer.id}`);
    expect(del.statusCode).toBe(204);
    const after = await h.op('GET', '/v1/agents', undefined, viewer.key);
    expect(after.statusCode).toBe(401);
    expect(errorOf(after).code).toBe('UNAUTHENTICATED');
    const again = await h.op('DELETE', `/v1/operators/keys/${viewer.id}`);
    expect(again.statusCode).toBe(404);
    const list = await h.op('GET', '/v1/operators/keys');
    const entry = list.json<{ keys: { id: string; revoked_at: string | null }[] }>().keys.find((k) => k.id === viewer.id);
    expect(entry?.revoked_at).toEqual(expect.any(String));
  });

  it('refuses to let an admin revoke the key it is using', async () => {
    const admin = await newViewerKey('admin');
    const res = await h.op('DELETE', `/v1/operators/keys/${admin.id}`, undefined, admin.key);
    expect(res.statusCode).toBe(409);
    expect(errorOf(res).code).toBe('CONFLICT');
    expect((await h.op('GET', '/v1/agents', undefined, admin.key)).statusCode).toBe(200);
  });

  it('never shows an operator secret again after creation', async () => {
    const viewer = await newViewerKey('viewer');
    const list = await h.op('GET', '/v1/operators/keys');
    expect(list.body).not.toContain(viewer.key);
    expect(list.body).not.toContain(h.admin);
  });
});

describe('agent credentials on operator endpoints', () => {
  let agentId: string;
  let taskId: string;
  let taskToken: string;
  let workload: string;

  beforeAll(async () => {
    agentId = await h.registerAgent('no-operator');
    const task = await h.startTask(agentId);
    taskId = task.id;
    taskToken = task.token;
    workload = await h.workloadToken(agentId);
  });

  const endpoints = (): [Method, string, unknown][] => [
    ['GET', '/v1/agents', undefined],
    ['POST', '/v1/agents', { id: `spiffe://${TRUST_DOMAIN}/agents/self-made`, owner: 'o', type: 't', ceiling: WIDE_CEILING }],
    ['GET', `/v1/agents/${encodeURIComponent(agentId)}`, undefined],
    ['PATCH', `/v1/agents/${encodeURIComponent(agentId)}`, { ceiling: { tools: ['*'] } }],
    ['GET', '/v1/tasks', undefined],
    ['GET', `/v1/tasks/${taskId}`, undefined],
    ['GET', `/v1/tasks/${taskId}/audit`, undefined],
    ['POST', `/v1/tasks/${taskId}/revoke`, {}],
    ['GET', '/v1/audit', undefined],
    ['GET', '/v1/audit/verify', undefined],
    ['GET', '/v1/audit/checkpoints', undefined],
    ['POST', '/v1/keys/rotate', { purpose: 'task-token' }],
    ['GET', '/v1/operators/keys', undefined],
    ['POST', '/v1/operators/keys', { name: 'mine', role: 'admin' }],
    ['GET', '/v1/policies', undefined],
    ['POST', '/v1/policies/validate', { policies: [] }],
    ['POST', '/v1/policies/reload', {}],
    ['POST', '/v1/dev/workload-tokens', { spiffe_id: `spiffe://${TRUST_DOMAIN}/agents/other` }],
  ];

  it('answers 403 FORBIDDEN to a task token on every operator endpoint', async () => {
    for (const [method, url, payload] of endpoints()) {
      const res = await h.op(method, url, payload, taskToken);
      expect(res.statusCode, `${method} ${url}`).toBe(403);
      expect(errorOf(res).code, `${method} ${url}`).toBe('FORBIDDEN');
    }
  });

  it('answers 403 FORBIDDEN to a workload token on every operator endpoint', async () => {
    for (const [method, url, payload] of endpoints()) {
      const res = await h.op(method, url, payload, workload);
      expect(res.statusCode, `${method} ${url}`).toBe(403);
      expect(errorOf(res).code, `${method} ${url}`).toBe('FORBIDDEN');
    }
  });

  it('changed nothing while refusing the agent', async () => {
    const agent = await h.op('GET', `/v1/agents/${encodeURIComponent(agentId)}`);
    expect(agent.json<{ ceiling: unknown }>().ceiling).toEqual({ ...WIDE_CEILING, max_ttl: 3_600_000 });
    const task = await h.op('GET', `/v1/tasks/${taskId}`);
    expect(task.json<{ state: string }>().state).toBe('active');
    const self = await h.op('GET', `/v1/agents/${encodeURIComponent(`spiffe://${TRUST_DOMAIN}/agents/self-made`)}`);
    expect(self.statusCode).toBe(404);
  });
});

describe('error envelope and request ids', () => {
  const failing: [string, () => Promise<Awaited<ReturnType<Harness['inject']>>>][] = [
    ['no key', () => h.inject({ method: 'GET', url: '/v1/agents' })],
    ['forbidden', () => h.inject({ method: 'GET', url: '/v1/agents', headers: { authorization: 'Bearer a.b.c' } })],
    ['not found', () => h.op('GET', '/v1/tasks/task_nope')],
    ['malformed body', () => h.op('POST', '/v1/agents', { nope: true })],
    ['invalid JSON', () => h.inject({ method: 'POST', url: '/v1/authorize', headers: { 'content-type': 'application/json' }, payload: '{"tool":' })],
    ['unsupported media type', () => h.inject({ method: 'POST', url: '/v1/authorize', headers: { 'content-type': 'text/plain' }, payload: 'hello' })],
    ['unknown route', () => h.inject({ method: 'GET', url: '/v2/nothing' })],
    ['missing task token', () => h.inject({ method: 'POST', url: '/v1/authorize', payload: { tool: 'x' } })],
  ];

  it.each(failing)('answers %s with exactly {error:{code,message,requestId}} and the request id header', async (_what, send) => {
    const res = await send();
    expect(res.statusCode).toBeGreaterThanOrEqual(400);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    const body = res.json<{ error: Record<string, unknown> }>();
    expect(Object.keys(body)).toEqual(['error']);
    expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'requestId']);
    expect(body.error['code']).toMatch(/^[A-Z_]+$/);
    expect(typeof body.error['message']).toBe('string');
    expect(body.error['requestId']).toBe(res.headers['x-request-id']);
    expect(res.body).not.toMatch(/\n\s+at /);
  });

  it('echoes a valid client-supplied x-request-id', async () => {
    const res = await h.inject({ method: 'GET', url: '/v1/agents', headers: { 'x-request-id': 'client-req_42:abc.1' } });
    expect(res.headers['x-request-id']).toBe('client-req_42:abc.1');
    expect(errorOf(res).requestId).toBe('client-req_42:abc.1');
    const ok = await h.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': 'health-1' } });
    expect(ok.headers['x-request-id']).toBe('health-1');
  });

  it.each([
    ['spaces', 'two words'],
    ['markup', '<script>alert(1)</script>'],
    ['a newline-free CRLF attempt', 'a%0d%0aSet-Cookie:x'],
    ['an over-long id', 'r'.repeat(129)],
    ['an empty id', ''],
  ])('replaces an invalid x-request-id (%s) with a generated one', async (_what, given) => {
    const res = await h.inject({ method: 'GET', url: '/v1/agents', headers: { 'x-request-id': given } });
    const id = res.headers['x-request-id'];
    expect(id).not.toBe(given);
    expect(id).toMatch(/^req_[A-Za-z0-9_-]+$/);
    expect(errorOf(res).requestId).toBe(id);
  });

  it('generates a distinct request id for every request without one', async () => {
    const a = await h.inject({ method: 'GET', url: '/healthz' });
    const b = await h.inject({ method: 'GET', url: '/healthz' });
    expect(a.headers['x-request-id']).toMatch(/^req_/);
    expect(a.headers['x-request-id']).not.toBe(b.headers['x-request-id']);
  });

  it('answers an unknown route with a 404 NOT_FOUND envelope', async () => {
    for (const [method, url] of [
      ['GET', '/nope'],
      ['DELETE', '/v1/agents'],
      ['PUT', '/v1/authorize'],
      ['GET', '/v1/authorize'],
    ] as const) {
      const res = await h.inject({ method, url, headers: { authorization: `Bearer ${h.admin}` } });
      expect(res.statusCode, `${method} ${url}`).toBe(404);
      expect(errorOf(res).code).toBe('NOT_FOUND');
    }
  });

  it('answers an unexpected failure with a generic 500 that leaks neither message nor stack', async () => {
    const spy = vi.spyOn(h.runtime.store.audit, 'readRange').mockRejectedValueOnce(new Error('disk I/O error at /var/lib/mandate/secret-path.db'));
    try {
      const res = await h.op('GET', '/v1/audit', undefined);
      expect(res.statusCode).toBe(500);
      expect(res.json()).toEqual({ error: { code: 'INTERNAL_ERROR', message: 'internal error', requestId: res.headers['x-request-id'] } });
      expect(res.body).not.toContain('secret-path');
      expect(res.body).not.toContain('disk I/O');
      expect(res.body).not.toMatch(/\bat\s/);
    } finally {
      spy.mockRestore();
    }
    expect((await h.op('GET', '/v1/audit')).statusCode).toBe(200);
  });

  it('sets no-store and nosniff on every answer', async () => {
    for (const res of [await h.inject({ method: 'GET', url: '/healthz' }), await h.inject({ method: 'GET', url: '/v1/agents' })]) {
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.headers['x-content-type-options']).toBe('nosniff');
    }
  });
});
