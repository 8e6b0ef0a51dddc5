/**
 * Issue 13: sender-constrained task tokens (RFC 9449 DPoP) through the real HTTP edge.
 * A stolen token is useless without the key; every proof is bound to one request.
 */
import { createProof, jwkThumbprint, type ProofKey } from '@mandate/core';
import { exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeJwt, errorOf, mandate, startHarness, WIDE_CEILING, type DecisionBody, type Harness, type StartedTask } from '../support.ts';

const PUBLIC = 'https://mandate.test';
let h: Harness;
let seq = 0;

beforeAll(async () => {
  h = await startHarness({ config: { server: { public_url: PUBLIC } } });
});

afterAll(async () => {
  await h.close();
});

async function newKey(alg: 'EdDSA' | 'ES256' = 'EdDSA'): Promise<ProofKey & { jkt: string }> {
  const { privateKey, publicKey } = await generateKeyPair(alg);
  const publicJwk = await exportJWK(publicKey);
  return { privateKey, publicJwk, alg, jkt: await jwkThumbprint(publicJwk) };
}

function proof(key: ProofKey, path: string, token: string, over: { method?: string; now?: number; htu?: string } = {}): Promise<string> {
  return createProof({ key, method: over.method ?? 'POST', htu: over.htu ?? PUBLIC + path, accessToken: token, now: over.now ?? h.clock.now(), jti: `p-${++seq}`, hasher: h.runtime.hasher });
}

async function startBound(agent: string, key: ProofKey, m = mandate()): Promise<StartedTask> {
  const svid = await h.workloadToken(agent);
  const res = await h.inject({ method: 'POST', url: '/v1/tasks', headers: { authorization: `Bearer ${svid}`, dpop: await proof(key, '/v1/tasks', svid) }, payload: { mandate: m } });
  expect(res.statusCode, res.body).toBe(201);
  const body = res.json<StartedTask['body']>();
  return { id: body.task.id, token: body.token, body };
}

async function call(token: string, dpop: string | undefined): Promise<DecisionBody> {
  const res = await h.inject({
    method: 'POST',
    url: '/v1/authorize',
    headers: { authorization: `Bearer ${token}`, ...(dpop !== undefined ? { dpop } : {}) },
    payload: { tool: 'helpdesk.search_tickets', args: { query: 'refund' } },
  });
  expect(res.statusCode).toBe(200);
  return res.json<DecisionBody>();
}

describe('key-bound task tokens (DPoP)', () => {
  it('binds the task token to the key whose proof came with the workload token (cnf.jkt), and allows calls with fresh proofs', async () => {
    const agent = await h.registerAgent('pop-bind');
    const key = await newKey();
    const t = await startBound(agent, key);
    expect(decodeJwt(t.token).payload['cnf']).toEqual({ jkt: key.jkt });
    expect((await call(t.token, await proof(key, '/v1/authorize', t.token))).effect).toBe('allow');
    expect((await call(t.token, await proof(key, '/v1/authorize', t.token))).effect).toBe('allow');
  });

  it('denies a stolen token used with a proof from another key (DPOP_KEY_MISMATCH), and audits the deny', async () => {
    const agent = await h.registerAgent('pop-stolen');
    const key = await newKey();
    const thief = await newKey('ES256');
    const t = await startBound(agent, key);
    const d = await call(t.token, await proof(thief, '/v1/authorize', t.token));
    expect(d).toMatchObject({ effect: 'deny', reasons: ['DPOP_KEY_MISMATCH'] });
    expect(d.audit_seq).not.toBeNull();
  });

  it('denies the bound token without a proof (DPOP_PROOF_MISSING)', async () => {
    const agent = await h.registerAgent('pop-missing');
    const t = await startBound(agent, await newKey());
    expect(await call(t.token, undefined)).toMatchObject({ effect: 'deny', reasons: ['DPOP_PROOF_MISSING'] });
  });

  it('denies a replayed proof (DPOP_PROOF_REPLAYED)', async () => {
    const agent = await h.registerAgent('pop-replay');
    const key = await newKey();
    const t = await startBound(agent, key);
    const p = await proof(key, '/v1/authorize', t.token);
    expect((await call(t.token, p)).effect).toBe('allow');
    expect(await call(t.token, p)).toMatchObject({ effect: 'deny', reasons: ['DPOP_PROOF_REPLAYED'] });
  });

  it('denies a proof made for another target: path, host or method (DPOP_WRONG_TARGET)', async () => {
    const agent = await h.registerAgent('pop-target');
    const key = await newKey();
    const t = await startBound(agent, key);
    expect(await call(t.token, await proof(key, `/v1/tasks/${t.id}/renew`, t.token))).toMatchObject({ effect: 'deny', reasons: ['DPOP_WRONG_TARGET'] });
    expect(await call(t.token, await proof(key, '/v1/authorize', t.token, { htu: 'https://other.example/v1/authorize' }))).toMatchObject({ effect: 'deny', reasons: ['DPOP_WRONG_TARGET'] });
    expect(await call(t.token, await proof(key, '/v1/authorize', t.token, { method: 'GET' }))).toMatchObject({ effect: 'deny', reasons: ['DPOP_WRONG_TARGET'] });
  });

  it('denies a stale proof (DPOP_PROOF_STALE)', async () => {
    const agent = await h.registerAgent('pop-stale');
    const key = await newKey();
    const t = await startBound(agent, key);
    expect(await call(t.token, await proof(key, '/v1/authorize', t.token, { now: h.clock.now() - 5 * 60_000 }))).toMatchObject({ effect: 'deny', reasons: ['DPOP_PROOF_STALE'] });
  });

  it('denies a proof made for another token (its ath) with DPOP_PROOF_INVALID', async () => {
    const agent = await h.registerAgent('pop-ath');
    const key = await newKey();
    const a = await startBound(agent, key);
    const b = await startBound(agent, key);
    expect(await call(a.token, await proof(key, '/v1/authorize', b.token))).toMatchObject({ effect: 'deny', reasons: ['DPOP_PROOF_INVALID'] });
  });

  it('renews a bound token only with a proof, and keeps the binding', async () => {
    const agent = await h.registerAgent('pop-renew');
    const key = await newKey();
    const t = await startBound(agent, key);
    const path = `/v1/tasks/${t.id}/renew`;
    const bare = await h.inject({ method: 'POST', url: path, headers: { authorization: `Bearer ${t.token}` }, payload: {} });
    expect(bare.statusCode).toBe(401);
    expect(errorOf(bare).code).toBe('DPOP_PROOF_MISSING');
    expect(bare.headers['www-authenticate']).toContain('invalid_dpop_proof');
    const thief = await newKey();
    const stolen = await h.inject({ method: 'POST', url: path, headers: { authorization: `Bearer ${t.token}`, dpop: await proof(thief, path, t.token) }, payload: {} });
    expect(errorOf(stolen).code).toBe('DPOP_KEY_MISMATCH');
    const ok = await h.inject({ method: 'POST', url: path, headers: { authorization: `Bearer ${t.token}`, dpop: await proof(key, path, t.token) }, payload: {} });
    expect(ok.statusCode, ok.body).toBe(200);
    const next = ok.json<StartedTask['body']>().token;
    expect(decodeJwt(next).payload['cnf']).toEqual({ jkt: key.jkt });
    expect((await call(next, await proof(key, '/v1/authorize', next))).effect).toBe('allow');
  });

  it('completes a bound task only with a proof', async () => {
    const agent = await h.registerAgent('pop-complete');
    const key = await newKey();
    const t = await startBound(agent, key);
    const path = `/v1/tasks/${t.id}/complete`;
    const bare = await h.inject({ method: 'POST', url: path, headers: { authorization: `Bearer ${t.token}` }, payload: {} });
    expect(errorOf(bare).code).toBe('DPOP_PROOF_MISSING');
    const ok = await h.inject({ method: 'POST', url: path, headers: { authorization: `Bearer ${t.token}`, dpop: await proof(key, path, t.token) }, payload: {} });
    expect(ok.statusCode, ok.body).toBe(200);
  });

  it('refuses a task start without a key for an agent whose ceiling requires one', async () => {
    const agent = await h.registerAgent('pop-required', { ...WIDE_CEILING, require_pop: true });
    const svid = await h.workloadToken(agent);
    const res = await h.inject({ method: 'POST', url: '/v1/tasks', headers: { authorization: `Bearer ${svid}` }, payload: { mandate: mandate() } });
    expect(res.statusCode).toBe(401);
    expect(errorOf(res).code).toBe('DPOP_PROOF_MISSING');
    // a proof over another workload token does not bind this one
    const other = await h.workloadToken(agent);
    const key = await newKey();
    const wrong = await h.inject({ method: 'POST', url: '/v1/tasks', headers: { authorization: `Bearer ${svid}`, dpop: await proof(key, '/v1/tasks', other) }, payload: { mandate: mandate() } });
    expect(errorOf(wrong).code).toBe('DPOP_PROOF_INVALID');
    expect((await startBound(agent, key)).id).toMatch(/^task/);
  });

  it('leaves unbound tokens working as before, but denies one that comes with a failed proof', async () => {
    const agent = await h.registerAgent('pop-unbound');
    const t = await h.startTask(agent);
    expect((await call(t.token, undefined)).effect).toBe('allow');
    expect(await call(t.token, 'garbage')).toMatchObject({ effect: 'deny', reasons: ['DPOP_PROOF_INVALID'] });
  });

  it('verifies a proof the AuthZEN PEP forwards for an agent subject', async () => {
    const agent = await h.registerAgent('pop-authzen');
    const key = await newKey();
    const t = await startBound(agent, key);
    const htu = 'https://gateway.example/tools/search';
    const evaluate = async (dpop: unknown) => {
      const res = await h.op('POST', '/access/v1/evaluation', {
        subject: { type: 'agent', id: agent, properties: { task_token: t.token, ...(dpop !== undefined ? { dpop } : {}) } },
        action: { name: 'helpdesk.search_tickets' },
        resource: { type: 'tool', id: 'helpdesk' },
        context: { args: { query: 'refund' } },
      });
      expect(res.statusCode, res.body).toBe(200);
      return res.json<{ decision: boolean; context?: { reasons?: string[] } }>();
    };
    expect((await evaluate(undefined)).context?.reasons).toEqual(['DPOP_PROOF_MISSING']);
    const p = await proof(key, '', t.token, { htu });
    expect((await evaluate({ proof: p, htm: 'POST', htu })).decision).toBe(true);
    expect((await evaluate({ proof: p, htm: 'POST', htu })).context?.reasons).toEqual(['DPOP_PROOF_REPLAYED']);
  });
});

describe('requiring keys per environment', () => {
  it('refuses every task start without a proof where the environment requires proof of possession', async () => {
    const strict = await startHarness({ config: { server: { public_url: PUBLIC }, tokens: { require_pop_environments: ['prod'] } } });
    try {
      const agent = await strict.registerAgent('pop-env');
      const svid = await strict.workloadToken(agent);
      const res = await strict.inject({ method: 'POST', url: '/v1/tasks', headers: { authorization: `Bearer ${svid}` }, payload: { mandate: mandate() } });
      expect(errorOf(res).code).toBe('DPOP_PROOF_MISSING');
    } finally {
      await strict.close();
    }
  });

  it('asks for a server nonce when nonces are on (DPoP-Nonce header, use_dpop_nonce)', async () => {
    const n = await startHarness({ config: { server: { public_url: PUBLIC }, tokens: { dpop: { nonce: true } } } });
    try {
      const agent = await n.registerAgent('pop-nonce');
      const key = await newKey();
      const svid = await n.workloadToken(agent);
      const mk = (nonce?: string) => createProof({ key, method: 'POST', htu: PUBLIC + '/v1/tasks', accessToken: svid, now: n.clock.now(), jti: `n-${++seq}`, hasher: n.runtime.hasher, nonce });
      const first = await n.inject({ method: 'POST', url: '/v1/tasks', headers: { authorization: `Bearer ${svid}`, dpop: await mk() }, payload: { mandate: mandate() } });
      expect(first.statusCode).toBe(401);
      expect(errorOf(first).code).toBe('DPOP_NONCE_REQUIRED');
      expect(first.headers['www-authenticate']).toContain('use_dpop_nonce');
      const nonce = first.headers['dpop-nonce'];
      expect(typeof nonce).toBe('string');
      const again = await n.inject({ method: 'POST', url: '/v1/tasks', headers: { authorization: `Bearer ${svid}`, dpop: await mk(nonce as string) }, payload: { mandate: mandate() } });
      expect(again.statusCode, again.body).toBe(201);
    } finally {
      await n.close();
    }
  });
});
