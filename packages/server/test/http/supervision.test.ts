/**
 * Issue 13: renewal tied to supervision, the renewal grace window, and re-evaluation of live
 * tasks when the policies or an agent's ceiling change. Real runtime, real SQLite, HTTP in-process.
 */
import { cp, writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createProof, jwkThumbprint, signTaskState, type ProofKey } from '@mandate/core';
import { exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXAMPLE_POLICIES, errorOf, mandate, MINUTE, startHarness, WIDE_CEILING, type DecisionBody, type Harness, type StartedTask } from '../support.ts';

const PUBLIC = 'https://mandate.test';
let h: Harness;
let policyDir: string;
let seq = 0;

beforeAll(async () => {
  policyDir = await mkdtemp(join(tmpdir(), 'mandate-pop-policies-'));
  await cp(EXAMPLE_POLICIES, policyDir, { recursive: true });
  h = await startHarness({
    config: {
      server: { public_url: PUBLIC },
      policies: { dir: policyDir },
      tokens: { ttl: '5m', default_task_ttl: '15m', max_task_ttl: '20m', max_task_lifetime: '40m' },
      tasks: { supervision: { enabled: true, heartbeat_interval: '1m', missed_heartbeats_before_suspend: 3, grace: '10s' } },
    },
  });
});

afterAll(async () => {
  await h.close();
  await rm(policyDir, { recursive: true, force: true });
});

const renew = (t: { id: string }, token: string, extra: { dpop?: string; state?: string } = {}) =>
  h.inject({
    method: 'POST',
    url: `/v1/tasks/${t.id}/renew`,
    headers: { authorization: `Bearer ${token}`, ...(extra.dpop !== undefined ? { dpop: extra.dpop } : {}) },
    payload: extra.state !== undefined ? { state: extra.state } : {},
  });
const heartbeat = (id: string) => h.op('POST', `/v1/tasks/${id}/heartbeat`, {});
const taskState = async (id: string) => (await h.op('GET', `/v1/tasks/${id}`)).json<{ state: string; end_reason?: string | null }>().state;
const decide = async (token: string, extra: Record<string, string> = {}, tool = 'helpdesk.search_tickets'): Promise<DecisionBody> =>
  (await h.inject({ method: 'POST', url: '/v1/authorize', headers: { authorization: `Bearer ${token}`, ...extra }, payload: { tool, args: { query: 'x', path: '/srv/kb/a' } } })).json<DecisionBody>();

async function auditKinds(id: string): Promise<{ kind: string; data: Record<string, unknown> }[]> {
  return (await h.op('GET', `/v1/tasks/${id}/audit`)).json<{ records: { kind: string; data: Record<string, unknown> }[] }>().records;
}

describe('renewal under supervision', () => {
  it('renews while heartbeats arrive', async () => {
    const t = await h.startTask(await h.registerAgent('sup-ok'));
    h.clock.advance(2 * MINUTE);
    expect((await heartbeat(t.id)).statusCode).toBe(200);
    h.clock.advance(2 * MINUTE);
    const r = await renew(t, t.token);
    expect(r.statusCode, r.body).toBe(200);
    expect(await taskState(t.id)).toBe('active');
  });

  it('refuses a renewal without a recent heartbeat (SUPERVISION_LAPSED) and suspends the task', async () => {
    const t = await h.startTask(await h.registerAgent('sup-lapsed'));
    h.clock.advance(3 * MINUTE + 1);
    const r = await renew(t, t.token);
    expect(r.statusCode).toBe(409);
    expect(errorOf(r).code).toBe('SUPERVISION_LAPSED');
    expect(await taskState(t.id)).toBe('suspended');
    expect((await decide(t.token)).reasons).toEqual(['TASK_SUSPENDED']);
    const suspended = (await auditKinds(t.id)).find((r) => r.kind === 'task.suspended');
    expect(suspended?.data['reason']).toBe('SUPERVISION_LAPSED');
    // a late heartbeat revives nothing
    expect(errorOf(await heartbeat(t.id)).code).toBe('TASK_SUSPENDED');
  });

  it('suspends a lapsed task on its late heartbeat, rather than extending it', async () => {
    const t = await h.startTask(await h.registerAgent('sup-late'));
    h.clock.advance(4 * MINUTE);
    const hb = await heartbeat(t.id);
    expect(errorOf(hb).code).toBe('SUPERVISION_LAPSED');
    expect(await taskState(t.id)).toBe('suspended');
  });

  it('the sweeper suspends tasks whose heartbeats lapsed and leaves supervised ones alone', async () => {
    const quiet = await h.startTask(await h.registerAgent('sup-sweep-quiet'));
    const watched = await h.startTask(await h.registerAgent('sup-sweep-watched'));
    for (let i = 0; i < 4; i++) {
      h.clock.advance(MINUTE);
      expect((await heartbeat(watched.id)).statusCode).toBe(200);
    }
    expect(await h.runtime.supervisor.suspendLapsed()).toBeGreaterThanOrEqual(1);
    expect(await taskState(quiet.id)).toBe('suspended');
    expect(await taskState(watched.id)).toBe('active');
  });

  it('only an approver or admin operator may send heartbeats', async () => {
    const t = await h.startTask(await h.registerAgent('sup-auth'));
    const viewer = (await h.op('POST', '/v1/operators/keys', { name: 'v', role: 'viewer' })).json<{ key: string }>().key;
    expect(viewer).toMatch(/^mk_/);
    expect(errorOf(await h.op('POST', `/v1/tasks/${t.id}/heartbeat`, {}, viewer)).code).toBe('FORBIDDEN');
    const agentTry = await h.inject({ method: 'POST', url: `/v1/tasks/${t.id}/heartbeat`, headers: { authorization: `Bearer ${t.token}` }, payload: {} });
    expect(agentTry.statusCode).toBe(403);
  });

  it('never extends a task past its hard maximum lifetime, heartbeats or not', async () => {
    const t = await h.startTask(await h.registerAgent('sup-max'), mandate({ ttl: '10m' }));
    const max = Date.parse(t.body.task.max_expires_at);
    let token = t.token;
    let refusal: string | undefined;
    for (let i = 0; i < 40 && refusal === undefined; i++) {
      h.clock.advance(MINUTE);
      const hb = await heartbeat(t.id);
      if (hb.statusCode !== 200) {
        refusal = errorOf(hb).code;
        break;
      }
      const r = await renew(t, token);
      if (r.statusCode !== 200) {
        refusal = errorOf(r).code;
        break;
      }
      const body = r.json<StartedTask['body']>();
      expect(Date.parse(body.task.expires_at)).toBeLessThanOrEqual(max);
      expect(Date.parse(body.token_expires_at)).toBeLessThanOrEqual(max);
      token = body.token;
    }
    expect(['TASK_MAX_LIFETIME_REACHED', 'TASK_EXPIRED']).toContain(refusal);
    expect(h.clock.now()).toBeGreaterThanOrEqual(max);
  });
});

describe('signed task state', () => {
  async function boundTask(name: string): Promise<{ t: StartedTask; key: ProofKey }> {
    const { privateKey, publicKey } = await generateKeyPair('EdDSA');
    const publicJwk = await exportJWK(publicKey);
    const key: ProofKey = { privateKey, publicJwk, alg: 'EdDSA' };
    const agent = await h.registerAgent(name);
    const svid = await h.workloadToken(agent);
    const dpop = await createProof({ key, method: 'POST', htu: `${PUBLIC}/v1/tasks`, accessToken: svid, now: h.clock.now(), jti: `s-${++seq}`, hasher: h.runtime.hasher });
    const res = await h.inject({ method: 'POST', url: '/v1/tasks', headers: { authorization: `Bearer ${svid}`, dpop }, payload: { mandate: mandate() } });
    expect(res.statusCode, res.body).toBe(201);
    const body = res.json<StartedTask['body']>();
    expect(await jwkThumbprint(publicJwk)).toBeTruthy();
    return { t: { id: body.task.id, token: body.token, body }, key };
  }
  const p = (key: ProofKey, path: string, token: string) => createProof({ key, method: 'POST', htu: PUBLIC + path, accessToken: token, now: h.clock.now(), jti: `s-${++seq}`, hasher: h.runtime.hasher });

  it('renews without a heartbeat when the signed state matches what Mandate recorded', async () => {
    const { t, key } = await boundTask('state-ok');
    const d1 = await decide(t.token, { dpop: await p(key, '/v1/authorize', t.token) });
    const d2 = await decide(t.token, { dpop: await p(key, '/v1/authorize', t.token) });
    expect([d1.effect, d2.effect]).toEqual(['allow', 'allow']);
    await decide(t.token, { dpop: await p(key, '/v1/authorize', t.token) }, 'mail.send'); // a deny: not progress
    h.clock.advance(4 * MINUTE);
    const state = await signTaskState({ key, state: { taskId: t.id, progress: 2, lastCallId: d2.call_id }, now: h.clock.now() });
    const r = await renew(t, t.token, { dpop: await p(key, `/v1/tasks/${t.id}/renew`, t.token), state });
    expect(r.statusCode, r.body).toBe(200);
    expect(await taskState(t.id)).toBe('active');
  });

  it('suspends the task when the signed state does not match (SUPERVISION_STATE_MISMATCH)', async () => {
    const { t, key } = await boundTask('state-bad');
    const d1 = await decide(t.token, { dpop: await p(key, '/v1/authorize', t.token) });
    expect(d1.effect).toBe('allow');
    const state = await signTaskState({ key, state: { taskId: t.id, progress: 0, lastCallId: null }, now: h.clock.now() });
    const r = await renew(t, t.token, { dpop: await p(key, `/v1/tasks/${t.id}/renew`, t.token), state });
    expect(errorOf(r).code).toBe('SUPERVISION_STATE_MISMATCH');
    expect(await taskState(t.id)).toBe('suspended');
  });
});

describe('the renewal grace window', () => {
  it('keeps the old token working for calls during the grace, never for renewal, and never after', async () => {
    const t = await h.startTask(await h.registerAgent('grace'));
    const r = await renew(t, t.token);
    expect(r.statusCode).toBe(200);
    const next = r.json<StartedTask['body']>().token;
    expect((await decide(t.token)).effect).toBe('allow');
    expect(errorOf(await renew(t, t.token)).code).toBe('TOKEN_REVOKED');
    h.clock.advance(10_000);
    expect((await decide(t.token)).reasons).toEqual(['TOKEN_REVOKED']);
    expect((await decide(next)).effect).toBe('allow');
  });

  it('ends the grace at once when the task is revoked', async () => {
    const t = await h.startTask(await h.registerAgent('grace-revoked'));
    expect((await renew(t, t.token)).statusCode).toBe(200);
    expect((await h.op('POST', `/v1/tasks/${t.id}/revoke`, { reason: 'test' })).statusCode).toBe(200);
    expect((await decide(t.token)).reasons).toEqual(['TASK_REVOKED']);
  });
});

describe('re-evaluation of live tasks', () => {
  it('suspends a live task whose tool a reloaded policy forbids, with MANDATE_NO_LONGER_FITS, and leaves the others', async () => {
    const hit = await h.startTask(await h.registerAgent('reeval-hit'));
    const spared = await h.startTask(await h.registerAgent('reeval-spared'), mandate({ tools: [{ name: 'helpdesk.search_tickets' }] }));
    // a narrower forbid on a tool only the first mandate grants
    await writeFile(
      join(policyDir, 'zz-forbid.cedar'),
      '@id("test.no-kb")\nforbid (principal, action == Mandate::Action::"call_tool", resource == Mandate::Tool::"fs.read_file");\n',
    );
    try {
      const res = await h.op('POST', '/v1/policies/reload');
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json<{ suspended_tasks: string[] }>().suspended_tasks).toContain(hit.id);
      expect(await taskState(hit.id)).toBe('suspended');
      expect(await taskState(spared.id)).toBe('active');
      const rec = (await auditKinds(hit.id)).find((r) => r.kind === 'task.suspended');
      expect(rec?.data['reason']).toBe('MANDATE_NO_LONGER_FITS');
      expect(String(rec?.data['detail'])).toContain('fs.read_file');
      expect((await decide(hit.token)).reasons).toEqual(['TASK_SUSPENDED']);
    } finally {
      await rm(join(policyDir, 'zz-forbid.cedar'));
      await h.op('POST', '/v1/policies/reload');
    }
  });

  it('suspends a live task whose agent ceiling was narrowed below its mandate', async () => {
    const agent = await h.registerAgent('reeval-ceiling');
    const t = await h.startTask(agent);
    const res = await h.op('PATCH', `/v1/agents/${encodeURIComponent(agent)}`, { ceiling: { ...WIDE_CEILING, tools: ['helpdesk.*'] } });
    expect(res.statusCode, res.body).toBe(200);
    expect(await taskState(t.id)).toBe('suspended');
  });
});
