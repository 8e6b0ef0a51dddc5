import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeJwt, errorOf, mandate, MINUTE, startHarness, TRUST_DOMAIN, type DecisionBody, type Harness, type StartedTask } from '../support.ts';

let h: Harness;

beforeAll(async () => {
  h = await startHarness({
    config: { tokens: { ttl: '5m', default_task_ttl: '15m', max_task_ttl: '20m', max_task_lifetime: '40m' } },
  });
});

afterAll(async () => {
  await h.close();
});

const search = { tool: 'helpdesk.search_tickets', args: { query: 'refund' } };

async function jwks(): Promise<JSONWebKeySet> {
  const res = await h.inject({ method: 'GET', url: '/.well-known/jwks.json' });
  expect(res.statusCode).toBe(200);
  return res.json<JSONWebKeySet>();
}

async function startRaw(token: string | undefined, payload: unknown) {
  return h.inject({ method: 'POST', url: '/v1/tasks', headers: token === undefined ? {} : { authorization: `Bearer ${token}` }, payload: payload as Record<string, unknown> });
}

async function renew(taskId: string, token: string | undefined) {
  return h.inject({ method: 'POST', url: `/v1/tasks/${taskId}/renew`, headers: token === undefined ? {} : { authorization: `Bearer ${token}` }, payload: {} });
}

async function complete(taskId: string, token: string) {
  return h.inject({ method: 'POST', url: `/v1/tasks/${taskId}/complete`, headers: { authorization: `Bearer ${token}` }, payload: {} });
}

async function decision(token: string, body: Record<string, unknown> = search): Promise<DecisionBody> {
  const res = await h.authorize(token, body);
  expect(res.statusCode).toBe(200);
  return res.json<DecisionBody>();
}

async function tasksOf(agentId: string): Promise<{ id: string }[]> {
  const res = await h.op('GET', `/v1/tasks?agent_id=${encodeURIComponent(agentId)}`);
  expect(res.statusCode).toBe(200);
  return res.json<{ tasks: { id: string }[] }>().tasks;
}

async function auditKinds(taskId: string): Promise<{ kind: string; task_id: string | null; agent_id: string | null; txn: string | null; data: Record<string, unknown> }[]> {
  const res = await h.op('GET', `/v1/tasks/${taskId}/audit`);
  expect(res.statusCode).toBe(200);
  return res.json<{ records: { kind: string; task_id: string | null; agent_id: string | null; txn: string | null; data: Record<string, unknown> }[] }>().records;
}

describe('starting a task', () => {
  it('answers 201 with an EdDSA task token whose kid is in the JWKS and whose claims bind agent, task and mandate', async () => {
    const agent = await h.registerAgent('start-ok');
    const started = await h.startTask(agent);
    const { task, token, token_expires_at } = started.body;
    const now = h.clock.now();

    expect(task).toMatchObject({ agent_id: agent, state: 'active', parent_id: null, depth: 0 });
    expect(task.mandate_hash).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(Date.parse(task.expires_at)).toBe(now + 15 * MINUTE);
    expect(Date.parse(task.max_expires_at)).toBe(now + 40 * MINUTE);

    const { header, payload } = decodeJwt(token);
    expect(header).toMatchObject({ alg: 'EdDSA', typ: 'mandate-task+jwt' });
    const keys = await jwks();
    expect(keys.keys.map((k) => k.kid)).toContain(header['kid']);

    // the signature really verifies against the published keys
    const verified = await jwtVerify(token, createLocalJWKSet(keys), { issuer: 'mandate', audience: 'mandate', typ: 'mandate-task+jwt', currentDate: new Date(now) });
    expect(verified.payload).toEqual(payload);
    expect(payload).toMatchObject({ iss: 'mandate', sub: agent, aud: 'mandate', task_id: task.id, mandate_hash: task.mandate_hash, txn: task.txn });
    expect(payload['jti']).toEqual(expect.any(String));
    expect(payload['iat']).toBe(now / 1000);
    const exp = payload['exp'] as number;
    expect(exp * 1000).toBeGreaterThan(now);
    expect(exp * 1000).toBeLessThanOrEqual(now + 5 * MINUTE);
    expect(exp * 1000).toBeLessThanOrEqual(Date.parse(task.expires_at));
    expect(Date.parse(token_expires_at)).toBe(exp * 1000);
  });

  it('answers 401 TOKEN_MISSING without a workload token', async () => {
    const res = await startRaw(undefined, { mandate: mandate() });
    expect(res.statusCode).toBe(401);
    expect(errorOf(res).code).toBe('TOKEN_MISSING');
  });

  it('refuses a task token in place of a workload token', async () => {
    const agent = await h.registerAgent('start-with-task-token');
    const first = await h.startTask(agent);
    const res = await startRaw(first.token, { mandate: mandate() });
    expect(res.statusCode).toBe(401);
    expect(errorOf(res).code).toBe('TOKEN_MALFORMED');
    expect(await tasksOf(agent)).toHaveLength(1);
  });

  it('refuses an operator key in place of a workload token', async () => {
    const res = await startRaw(h.admin, { mandate: mandate() });
    expect(res.statusCode).toBe(401);
    expect(errorOf(res).code).toBe('TOKEN_MALFORMED');
  });

  it('refuses a workload token minted for another audience', async () => {
    const agent = await h.registerAgent('start-wrong-aud');
    const issuer = h.runtime.devIssuer;
    if (!issuer) throw new Error('dev issuer off');
    const svid = await issuer.mint(agent, { audience: 'someone-else', ttlMs: 5 * MINUTE });
    const res = await startRaw(svid, { mandate: mandate() });
    expect(res.statusCode).toBe(401);
    expect(errorOf(res).code).toBe('TOKEN_AUDIENCE_MISMATCH');
  });

  it('refuses a mandate with an unknown field with 400 MANDATE_INVALID', async () => {
    const agent = await h.registerAgent('start-unknown-field');
    const svid = await h.workloadToken(agent);
    const res = await startRaw(svid, { mandate: mandate({ sudo: true }) });
    expect(res.statusCode).toBe(400);
    const e = errorOf(res);
    expect(e.code).toBe('MANDATE_INVALID');
    expect(e.message).toContain('sudo');
    expect(await tasksOf(agent)).toHaveLength(0);
  });

  it('refuses a missing mandate, and unknown fields beside it', async () => {
    const agent = await h.registerAgent('start-missing');
    const svid = await h.workloadToken(agent);
    const missing = await startRaw(svid, {});
    expect(missing.statusCode).toBe(400);
    expect(errorOf(missing).code).toBe('MALFORMED_REQUEST');
    const beside = await startRaw(svid, { mandate: mandate(), grant_all: true });
    expect(beside.statusCode).toBe(400);
    expect(errorOf(beside).code).toBe('MALFORMED_REQUEST');
  });

  it('refuses a ttl beyond the deployment maximum with 400 MANDATE_INVALID', async () => {
    const agent = await h.registerAgent('start-long-ttl');
    const res = await startRaw(await h.workloadToken(agent), { mandate: mandate({ ttl: '30m' }) });
    expect(res.statusCode).toBe(400);
    expect(errorOf(res).code).toBe('MANDATE_INVALID');
  });

  it('refuses a mandate for another environment with 403 ENVIRONMENT_MISMATCH', async () => {
    const agent = await h.registerAgent('start-staging');
    const res = await startRaw(await h.workloadToken(agent), { mandate: mandate({ environment: 'staging' }) });
    expect(res.statusCode).toBe(403);
    expect(errorOf(res).code).toBe('ENVIRONMENT_MISMATCH');
  });

  it('refuses a mandate beyond the agent ceiling with 403 MANDATE_EXCEEDS_CEILING naming each excess', async () => {
    const agent = await h.registerAgent('start-ceiling', { tools: ['helpdesk.*'], data_classes: ['internal'], max_calls: 10 });
    const res = await startRaw(await h.workloadToken(agent), {
      mandate: mandate({ tools: [{ name: 'helpdesk.search_tickets' }, { name: 'shell.exec' }], data_classes: ['internal', 'customer-pii'], budgets: { calls: 10 } }),
    });
    expect(res.statusCode).toBe(403);
    const e = errorOf(res);
    expect(e.code).toBe('MANDATE_EXCEEDS_CEILING');
    const violations = (e.details as { violations: string[] }).violations;
    expect(violations.some((v) => v.includes('shell.exec'))).toBe(true);
    expect(violations.some((v) => v.includes('customer-pii'))).toBe(true);
    expect(await tasksOf(agent)).toHaveLength(0);
  });

  it('refuses an unregistered agent with 403 AGENT_UNKNOWN', async () => {
    const res = await startRaw(await h.workloadToken(`spiffe://${TRUST_DOMAIN}/agents/never-registered`), { mandate: mandate() });
    expect(res.statusCode).toBe(403);
    expect(errorOf(res).code).toBe('AGENT_UNKNOWN');
  });

  it('refuses a task an organisation policy forbids with 403 POLICY_FORBID', async () => {
    const id = `spiffe://${TRUST_DOMAIN}/agents/start-policy-bot`;
    const reg = await h.op('POST', '/v1/agents', { id, owner: 'team', type: 'bot' });
    expect(reg.statusCode).toBe(201);
    const res = await startRaw(await h.workloadToken(id), { mandate: mandate({ data_classes: ['internal', 'customer-pii'] }) });
    expect(res.statusCode).toBe(403);
    const e = errorOf(res);
    expect(e.code).toBe('POLICY_FORBID');
    expect((e.details as { policy_ids: string[] }).policy_ids).toEqual(['org.start.pii-only-for-support']);
  });

  it('records every refused start of a known agent in the audit log', async () => {
    const agent = await h.registerAgent('start-denied-audit');
    const res = await startRaw(await h.workloadToken(agent), { mandate: mandate({ environment: 'staging' }) });
    expect(res.statusCode).toBe(403);
    const all = await h.op('GET', '/v1/audit?limit=10000');
    const denied = all.json<{ records: { kind: string; agent_id: string | null; data: { code?: string } }[] }>().records.filter((r) => r.kind === 'task.start_denied' && r.agent_id === agent);
    expect(denied).toHaveLength(1);
    expect(denied[0]?.data.code).toBe('ENVIRONMENT_MISMATCH');
  });
});

describe('renewing a task token', () => {
  it('returns a new token and revokes the old one', async () => {
    const agent = await h.registerAgent('renew-ok');
    const t = await h.startTask(agent);
    expect((await decision(t.token)).effect).toBe('allow');
    const cached = h.runtime.tokens.cached;
    const res = await renew(t.id, t.token);
    expect(res.statusCode).toBe(200);
    // the old token's verified copy is forgotten: the cache does not hold both
    expect(h.runtime.tokens.cached).toBe(cached - 1);
    const next = res.json<StartedTask['body']>();
    expect(next.token).not.toBe(t.token);
    expect(next.task.id).toBe(t.id);
    const oldClaims = decodeJwt(t.token).payload;
    const newClaims = decodeJwt(next.token).payload;
    expect(newClaims['jti']).not.toBe(oldClaims['jti']);
    expect(newClaims).toMatchObject({ task_id: t.id, sub: agent, mandate_hash: oldClaims['mandate_hash'], txn: oldClaims['txn'] });

    const old = await decision(t.token);
    expect(old.effect).toBe('deny');
    expect(old.reasons).toEqual(['TOKEN_REVOKED']);
    const again = await renew(t.id, t.token);
    expect(again.statusCode).toBe(401);
    expect(errorOf(again).code).toBe('TOKEN_REVOKED');
    const completeOld = await complete(t.id, t.token);
    expect(completeOld.statusCode).toBe(401);
    expect(errorOf(completeOld).code).toBe('TOKEN_REVOKED');

    expect((await decision(next.token)).effect).toBe('allow');
  });

  it('moves the task expiry forward by the mandate ttl', async () => {
    const agent = await h.registerAgent('renew-extends');
    const t = await h.startTask(agent, mandate({ ttl: '10m' }));
    h.clock.advance(4 * MINUTE);
    const res = await renew(t.id, t.token);
    expect(res.statusCode).toBe(200);
    const next = res.json<StartedTask['body']>();
    expect(Date.parse(next.task.expires_at)).toBe(h.clock.now() + 10 * MINUTE);
    expect(next.task.max_expires_at).toBe(t.body.task.max_expires_at);
  });

  it('answers 401 TOKEN_MISSING without a token and 403 TOKEN_TASK_MISMATCH for another task', async () => {
    const agent = await h.registerAgent('renew-mismatch');
    const a = await h.startTask(agent);
    const b = await h.startTask(agent);
    const none = await renew(a.id, undefined);
    expect(none.statusCode).toBe(401);
    expect(errorOf(none).code).toBe('TOKEN_MISSING');
    const cross = await renew(a.id, b.token);
    expect(cross.statusCode).toBe(403);
    expect(errorOf(cross).code).toBe('TOKEN_TASK_MISMATCH');
    // the refused renewal revoked nothing
    expect((await decision(b.token)).effect).toBe('allow');
  });

  it('never extends a task past its hard maximum lifetime, however often it is renewed', async () => {
    const agent = await h.registerAgent('renew-max');
    const t = await h.startTask(agent, mandate({ ttl: '10m' }));
    const maxExpires = Date.parse(t.body.task.max_expires_at);
    expect(maxExpires).toBe(h.clock.now() + 40 * MINUTE);
    let token = t.token;
    let renewals = 0;
    let refusal: { status: number; code: string } | undefined;
    for (let i = 0; i < 30 && refusal === undefined; i++) {
      h.clock.advance(4 * MINUTE);
      const res = await renew(t.id, token);
      if (res.statusCode !== 200) {
        refusal = { status: res.statusCode, code: errorOf(res).code };
        break;
      }
      renewals += 1;
      const body = res.json<StartedTask['body']>();
      expect(Date.parse(body.task.expires_at)).toBeLessThanOrEqual(maxExpires);
      expect(Date.parse(body.token_expires_at)).toBeLessThanOrEqual(maxExpires);
      expect(h.clock.now()).toBeLessThan(maxExpires);
      token = body.token;
    }
    expect(renewals).toBeGreaterThan(5);
    expect(refusal).toBeDefined();
    expect(['TASK_MAX_LIFETIME_REACHED', 'TASK_EXPIRED', 'TOKEN_EXPIRED']).toContain(refusal?.code);
    expect(h.clock.now()).toBeGreaterThanOrEqual(maxExpires);
    const d = await decision(token);
    expect(d.effect).toBe('deny');
  });
});

describe('ending a task', () => {
  it('lets the agent complete its own task with its task token', async () => {
    const agent = await h.registerAgent('complete-own');
    const t = await h.startTask(agent);
    const res = await complete(t.id, t.token);
    expect(res.statusCode).toBe(200);
    const body = res.json<{ id: string; state: string; ended_at: string | null; end_reason: string | null }>();
    expect(body).toMatchObject({ id: t.id, state: 'completed', end_reason: 'completed' });
    expect(Date.parse(body.ended_at ?? '')).toBe(h.clock.now());
  });

  it('denies the token after completion with TASK_COMPLETED and refuses to renew it', async () => {
    const agent = await h.registerAgent('complete-then-call');
    const t = await h.startTask(agent);
    expect((await complete(t.id, t.token)).statusCode).toBe(200);
    const d = await decision(t.token);
    expect(d).toMatchObject({ effect: 'deny', final: 'blocked', reasons: ['TASK_COMPLETED'], task_id: t.id });
    const r = await renew(t.id, t.token);
    expect(r.statusCode).toBe(409);
    expect(errorOf(r).code).toBe('TASK_COMPLETED');
  });

  it('refuses to complete a task with the token of another task (403 TOKEN_TASK_MISMATCH)', async () => {
    const agent = await h.registerAgent('complete-cross');
    const a = await h.startTask(agent);
    const b = await h.startTask(agent);
    const res = await complete(a.id, b.token);
    expect(res.statusCode).toBe(403);
    expect(errorOf(res).code).toBe('TOKEN_TASK_MISMATCH');
    expect((await h.op('GET', `/v1/tasks/${a.id}`)).json<{ state: string }>().state).toBe('active');
  });

  it('refuses to complete another agent’s task even by naming it', async () => {
    const a = await h.startTask(await h.registerAgent('complete-agent-a'));
    const b = await h.startTask(await h.registerAgent('complete-agent-b'));
    const res = await complete(a.id, b.token);
    expect(res.statusCode).toBe(403);
    expect((await h.op('GET', `/v1/tasks/${a.id}`)).json<{ state: string }>().state).toBe('active');
  });

  it('answers 409 CONFLICT to a second completion', async () => {
    const agent = await h.registerAgent('complete-twice');
    const t = await h.startTask(agent);
    expect((await complete(t.id, t.token)).statusCode).toBe(200);
    const again = await complete(t.id, t.token);
    expect(again.statusCode).toBe(409);
    expect(errorOf(again).code).toBe('CONFLICT');
    const byAdmin = await h.op('POST', `/v1/tasks/${t.id}/complete`, {});
    expect(byAdmin.statusCode).toBe(409);
  });

  it('lets an admin revoke a task, after which its token is denied TASK_REVOKED', async () => {
    const agent = await h.registerAgent('revoke');
    const t = await h.startTask(agent);
    const res = await h.op('POST', `/v1/tasks/${t.id}/revoke`, { reason: 'suspicious behaviour' });
    expect(res.statusCode).toBe(200);
    expect(res.json<{ state: string; end_reason: string }>()).toMatchObject({ state: 'revoked', end_reason: 'suspicious behaviour' });
    const d = await decision(t.token);
    expect(d.effect).toBe('deny');
    expect(d.reasons).toEqual(['TASK_REVOKED']);
    const r = await renew(t.id, t.token);
    expect(r.statusCode).toBe(409);
    expect(errorOf(r).code).toBe('TASK_REVOKED');
    const twice = await h.op('POST', `/v1/tasks/${t.id}/revoke`, {});
    expect(twice.statusCode).toBe(409);
    expect(errorOf(twice).code).toBe('CONFLICT');
    const missing = await h.op('POST', '/v1/tasks/task_missing/revoke', {});
    expect(missing.statusCode).toBe(404);
  });

  it('denies a token for task A used with the task_id of task B (TOKEN_TASK_MISMATCH)', async () => {
    const agent = await h.registerAgent('cross-task');
    const a = await h.startTask(agent);
    const b = await h.startTask(agent);
    const d = await decision(a.token, { ...search, task_id: b.id });
    expect(d.effect).toBe('deny');
    expect(d.reasons).toEqual(['TOKEN_TASK_MISMATCH']);
    expect((await decision(a.token, { ...search, task_id: a.id })).effect).toBe('allow');
  });

  it('denies every call once the task ttl has passed', async () => {
    const agent = await h.registerAgent('expire');
    const t = await h.startTask(agent, mandate({ ttl: '2m' }));
    expect((await decision(t.token)).effect).toBe('allow');
    h.clock.advance(2 * MINUTE);
    const d = await decision(t.token);
    expect(d.effect).toBe('deny');
    expect(d.final).toBe('blocked');
    // The token's exp is capped at the task's expiry, so the token lapses first: the reason is
    // TOKEN_EXPIRED (TASK_EXPIRED is only reachable when a token outlives its task).
    expect(d.reasons).toEqual(['TOKEN_EXPIRED']);
    const r = await renew(t.id, t.token);
    expect(r.statusCode).toBe(401);
    expect(errorOf(r).code).toBe('TOKEN_EXPIRED');
    h.clock.advance(10 * MINUTE);
    expect((await decision(t.token)).effect).toBe('deny');
  });
});

describe('task-token key rotation', () => {
  it('keeps tokens signed by the retired key valid and signs new tokens with the new key', async () => {
    const agent = await h.registerAgent('rotate');
    const before = await h.startTask(agent);
    const oldKid = decodeJwt(before.token).header['kid'];

    const res = await h.op('POST', '/v1/keys/rotate', { purpose: 'task-token' });
    expect(res.statusCode).toBe(200);
    const { kid: newKid } = res.json<{ purpose: string; kid: string }>();
    expect(newKid).not.toBe(oldKid);

    const keys = await jwks();
    const kids = keys.keys.map((k) => k.kid);
    expect(kids).toContain(oldKid);
    expect(kids).toContain(newKid);
    for (const k of keys.keys) expect(k).not.toHaveProperty('d');

    expect((await decision(before.token)).effect).toBe('allow');
    const after = await h.startTask(agent);
    expect(decodeJwt(after.token).header['kid']).toBe(newKid);
    expect((await decision(after.token)).effect).toBe('allow');
    const set = createLocalJWKSet(keys);
    for (const token of [before.token, after.token]) {
      await expect(jwtVerify(token, set, { currentDate: new Date(h.clock.now()) })).resolves.toBeDefined();
    }

    const audit = await h.op('GET', '/v1/audit?limit=10000');
    const rotated = audit.json<{ records: { kind: string; data: { kid?: string } }[] }>().records.filter((r) => r.kind === 'key.rotated');
    expect(rotated.map((r) => r.data.kid)).toContain(newKid);
  });

  it('rotates the audit checkpoint key and the chain still verifies with both checkpoints', async () => {
    await h.runtime.audit.checkpointNow();
    const res = await h.op('POST', '/v1/keys/rotate', { purpose: 'audit-checkpoint' });
    expect(res.statusCode).toBe(200);
    const { kid } = res.json<{ kid: string }>();
    const agent = await h.registerAgent('rotate-audit');
    await h.startTask(agent);
    await h.runtime.audit.checkpointNow();
    const cps = (await h.op('GET', '/v1/audit/checkpoints')).json<{ checkpoints: { kid: string }[] }>().checkpoints;
    expect(new Set(cps.map((c) => c.kid)).size).toBeGreaterThanOrEqual(2);
    expect(cps.at(-1)?.kid).toBe(kid);
    const auditJwks = (await h.inject({ method: 'GET', url: '/v1/audit/jwks' })).json<JSONWebKeySet>();
    for (const c of cps) expect(auditJwks.keys.map((k) => k.kid)).toContain(c.kid);
    const v = await h.verifyAudit();
    expect(v.ok).toBe(true);
    expect(v.checkpoints_verified).toBe(cps.length);
  });

  it('refuses an unknown rotation purpose', async () => {
    const res = await h.op('POST', '/v1/keys/rotate', { purpose: 'dev-issuer' });
    expect(res.statusCode).toBe(400);
    expect(errorOf(res).code).toBe('MALFORMED_REQUEST');
  });
});

describe('the audit trail of a task', () => {
  it('records every lifecycle step, linked by task id and txn', async () => {
    const agent = await h.registerAgent('audit-trail');
    const t = await h.startTask(agent);
    expect((await decision(t.token, { ...search, call_id: 'trail-1' })).effect).toBe('allow');
    expect((await decision(t.token, { tool: 'shell.exec', args: {}, call_id: 'trail-2' })).effect).toBe('deny');
    const r = await renew(t.id, t.token);
    expect(r.statusCode).toBe(200);
    const token2 = r.json<{ token: string }>().token;
    expect((await complete(t.id, token2)).statusCode).toBe(200);

    const records = await auditKinds(t.id);
    expect(records.map((x) => x.kind)).toEqual(['task.started', 'decision', 'action', 'decision', 'action', 'task.renewed', 'task.completed']);
    for (const rec of records) {
      expect(rec.task_id).toBe(t.id);
      expect(rec.agent_id).toBe(agent);
      expect(rec.txn).toBe(t.body.task.txn);
    }
    expect(records[0]?.data).toMatchObject({ mandate_hash: t.body.task.mandate_hash, purpose: mandate()['purpose'] });
    expect(records[5]?.data).toMatchObject({ previous_jti: decodeJwt(t.token).payload['jti'], jti: decodeJwt(token2).payload['jti'] });
    expect(records[6]?.data).toMatchObject({ by: { agent } });
    expect((await h.verifyAudit()).ok).toBe(true);
  });

  it('records an operator revocation with the operator who did it', async () => {
    const agent = await h.registerAgent('audit-revoke');
    const t = await h.startTask(agent);
    expect((await h.op('POST', `/v1/tasks/${t.id}/revoke`, {})).statusCode).toBe(200);
    const records = await auditKinds(t.id);
    expect(records.map((x) => x.kind)).toEqual(['task.started', 'task.revoked']);
    expect(records[1]?.data).toMatchObject({ reason: 'revoked by an operator', by: { operator: expect.stringMatching(/^op_/) as unknown } });
  });
});
