/**
 * Issue 13 in the SDK: `dpopKey` binds the agent's tasks to its key (RFC 9449 DPoP) against a
 * real Mandate server that requires it (`tokens.require_pop_environments`): the task start
 * sends a proof, every request with the task token sends a fresh one (WebCrypto only), a nonce
 * challenge is answered once, and the same token without the key is denied.
 */
import { calculateJwkThumbprint, decodeJwt, decodeProtectedHeader, EmbeddedJWK, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDpopProof, dpopThumbprint, MandateApiError, MandateClient, MandateDeniedError, type DpopKeyPair, type MandateClientOptions } from '../src/index.ts';
import { startExampleServer, SUPPORT_MANDATE, type ExampleServer } from '../../../examples/support/mandate-server.ts';

async function ed25519(): Promise<DpopKeyPair> {
  return (await crypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify'])) as unknown as DpopKeyPair;
}
async function p256(): Promise<DpopKeyPair> {
  return (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify'])) as unknown as DpopKeyPair;
}

/** fetch that records each request's path, status and DPoP header */
function recordingFetch(log: { path: string; method: string; status: number; dpop: string | null }[]): typeof fetch {
  return async (input, init) => {
    const res = await fetch(input, init);
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    log.push({ path: new URL(url).pathname.replace(/task_[A-Za-z0-9_-]+/, ':id'), method: init?.method ?? 'GET', status: res.status, dpop: new Headers(init?.headers).get('dpop') });
    return res;
  };
}

describe('proofs made with WebCrypto', () => {
  it('are dpop+jwt JWS that verify with the embedded key, with the RFC 7638 thumbprint jose computes', async () => {
    for (const key of [await ed25519(), await p256()]) {
      const proof = await createDpopProof(key, { method: 'post', url: 'https://mandate.test/v1/authorize?x=1#f', accessToken: 'tok' });
      const header = decodeProtectedHeader(proof);
      expect(header.typ).toBe('dpop+jwt');
      const { payload } = await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: ['EdDSA', 'ES256'] });
      expect(payload).toMatchObject({ htm: 'POST', htu: 'https://mandate.test/v1/authorize' });
      // ath = base64url(SHA-256("tok"))
      expect(payload['ath']).toBe('GnZ0607njffhrEOak8P6jjyUV4TU3sn9jjARc4svHWI');
      expect(await dpopThumbprint(key)).toBe(await calculateJwkThumbprint(header.jwk!, 'sha256'));
      expect(Object.keys(header.jwk!).sort()).toEqual(header.alg === 'EdDSA' ? ['crv', 'kty', 'x'] : ['crv', 'kty', 'x', 'y']);
    }
  });

  it('refuses a key that cannot sign proofs (RSA), without sending anything', async () => {
    const rsa = (await crypto.subtle.generateKey({ name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }, false, ['sign', 'verify'])) as unknown as DpopKeyPair;
    await expect(createDpopProof(rsa, { method: 'POST', url: 'https://x.test/', accessToken: 't' })).rejects.toThrow(/Ed25519 or ECDSA P-256/);
    let sent = 0;
    const c = new MandateClient({ url: 'http://127.0.0.1:1', workloadToken: 'w', dpopKey: rsa, retry: { retries: 0 }, fetch: async () => {
      sent += 1;
      return new Response('{}');
    } });
    await expect(c.startTask({ mandate: SUPPORT_MANDATE })).rejects.toMatchObject({ code: 'DPOP_KEY_INVALID' });
    expect(sent).toBe(0);
  });
});

describe('SDK with a key-bound task (server requires proof of possession in prod)', () => {
  let server: ExampleServer;
  beforeAll(async () => {
    server = await startExampleServer({ 'tokens.require_pop_environments': ['prod'] });
  });
  afterAll(async () => server?.close());

  const client = (extra: Partial<MandateClientOptions> = {}) => new MandateClient({ url: server.url, workloadToken: () => server.workloadToken(), autoRenew: false, ...extra });

  it('starts a bound task, and guarded calls, outcomes, renewal and completion all carry fresh proofs', async () => {
    for (const key of [await ed25519(), await p256()]) {
      const log: Parameters<typeof recordingFetch>[0] = [];
      const task = await client({ dpopKey: key, fetch: recordingFetch(log) }).startTask({ mandate: SUPPORT_MANDATE });
      expect(decodeJwt(task.token)['cnf']).toEqual({ jkt: await dpopThumbprint(key) });
      const out = await task.guard('helpdesk.search_tickets', (a: { query: string }) => `found ${a.query}`)({ query: 'refund' });
      expect(out).toBe('found refund');
      const first = task.token;
      await task.renew();
      expect(task.token).not.toBe(first);
      expect(decodeJwt(task.token)['cnf']).toEqual({ jkt: await dpopThumbprint(key) });
      expect(await task.guard('helpdesk.search_tickets', (_a: { query: string }) => 'after renewal')({ query: 'x' })).toBe('after renewal');
      await task.complete();

      const paths = log.map((l) => l.path);
      for (const p of ['/v1/tasks', '/v1/authorize', '/v1/outcomes', '/v1/tasks/:id/renew', '/v1/tasks/:id/complete']) expect(paths).toContain(p);
      expect(log.every((l) => l.dpop !== null)).toBe(true);
      expect(new Set(log.map((l) => l.dpop)).size).toBe(log.length);
      expect(log.every((l) => l.status < 300)).toBe(true);
    }
  });

  it('cannot start a task without the key (DPOP_PROOF_MISSING)', async () => {
    await expect(client().startTask({ mandate: SUPPORT_MANDATE })).rejects.toSatisfy((e: unknown) => e instanceof MandateApiError && e.serverCode === 'DPOP_PROOF_MISSING');
  });

  it('the same token in a client without the key is denied (DPOP_PROOF_MISSING); with another key too (DPOP_KEY_MISMATCH)', async () => {
    const key = await ed25519();
    const owner = await client({ dpopKey: key }).startTask({ mandate: SUPPORT_MANDATE });
    const stolen = { taskId: owner.id, token: owner.token, tokenExpiresAt: owner.tokenExpiresAt };
    let ran = 0;
    const tool = (a: { query: string }) => {
      ran += 1;
      return a.query;
    };

    const thief = client().resumeTask(stolen);
    expect(await thief.authorize({ tool: 'helpdesk.search_tickets', args: { query: 'x' } })).toMatchObject({ effect: 'deny', reasons: ['DPOP_PROOF_MISSING'] });
    await expect(thief.guard('helpdesk.search_tickets', tool)({ query: 'x' })).rejects.toBeInstanceOf(MandateDeniedError);

    const other = client({ dpopKey: await p256() }).resumeTask(stolen);
    expect(await other.authorize({ tool: 'helpdesk.search_tickets', args: { query: 'x' } })).toMatchObject({ effect: 'deny', reasons: ['DPOP_KEY_MISMATCH'] });
    await expect(other.renew()).rejects.toSatisfy((e: unknown) => e instanceof MandateApiError && e.serverCode.startsWith('DPOP_'));
    expect(ran).toBe(0);

    // the owner, with the key, still works
    expect(await owner.guard('helpdesk.search_tickets', tool)({ query: 'mine' })).toBe('mine');
    expect(ran).toBe(1);
    await owner.complete();
  });
});

describe('SDK binding a task by choice (the server does not require it)', () => {
  let server: ExampleServer;
  beforeAll(async () => {
    server = await startExampleServer();
  });
  afterAll(async () => server?.close());

  it('a client with dpopKey gets a bound task; delegation is signed; without the key the parent token cannot delegate', async () => {
    const key = await p256();
    const log: Parameters<typeof recordingFetch>[0] = [];
    const m = { ...SUPPORT_MANDATE, delegation: { allowed: true, max_depth: 1, max_children: 2 } };
    const parent = await new MandateClient({ url: server.url, workloadToken: () => server.workloadToken(), autoRenew: false, dpopKey: key, fetch: recordingFetch(log) }).startTask({ mandate: m });
    expect(decodeJwt(parent.token)['cnf']).toEqual({ jkt: await dpopThumbprint(key) });
    const childMandate = { ...SUPPORT_MANDATE, tools: [{ name: 'helpdesk.search_tickets' }], budgets: { calls: 5 } };

    const thief = new MandateClient({ url: server.url, autoRenew: false }).resumeTask({ taskId: parent.id, token: parent.token, tokenExpiresAt: parent.tokenExpiresAt });
    const a1 = await server.registerAgent('pop-child-stolen');
    await expect(thief.delegate({ workloadToken: () => server.workloadToken(a1), mandate: childMandate })).rejects.toSatisfy((e: unknown) => e instanceof MandateApiError && e.serverCode === 'DPOP_PROOF_MISSING');

    const a2 = await server.registerAgent('pop-child');
    const child = await parent.delegate({ workloadToken: () => server.workloadToken(a2), mandate: childMandate });
    expect(child.token).toBeTypeOf('string');
    expect(log.find((l) => l.path === '/v1/tasks/:id/delegate')).toMatchObject({ status: 201 });
    expect(log.find((l) => l.path === '/v1/tasks/:id/delegate')?.dpop).toBeTypeOf('string');
    await parent.complete();
  });
});

describe('SDK with server nonces (tokens.dpop.nonce)', () => {
  let server: ExampleServer;
  beforeAll(async () => {
    server = await startExampleServer({ 'tokens.require_pop_environments': ['prod'], 'tokens.dpop.nonce': true });
  });
  afterAll(async () => server?.close());

  it('answers the DPoP-Nonce challenge once and then carries the nonce', async () => {
    const log: Parameters<typeof recordingFetch>[0] = [];
    const key = await ed25519();
    const c = new MandateClient({ url: server.url, workloadToken: () => server.workloadToken(), autoRenew: false, dpopKey: key, fetch: recordingFetch(log) });
    const task = await c.startTask({ mandate: SUPPORT_MANDATE });
    expect(await task.guard('helpdesk.search_tickets', (_a: { query: string }) => 'ok')({ query: 'x' })).toBe('ok');
    await task.complete();
    // only the very first request met the challenge
    expect(log[0]).toMatchObject({ path: '/v1/tasks', status: 401 });
    expect(log[1]).toMatchObject({ path: '/v1/tasks', status: 201 });
    expect(log.slice(1).every((l) => l.status < 300)).toBe(true);
    for (const l of log.slice(1)) expect(decodeJwt(l.dpop!)['nonce']).toBeTypeOf('string');
  });
});
