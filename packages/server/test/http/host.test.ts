/**
 * The Host header never names the server outside development: AuthZEN metadata publishes only a
 * configured URL, and DPoP proofs are checked only against `server.public_url`. Without one, proofs
 * are refused with a reason that says why, the metadata is not published, a configuration that
 * requires proofs does not load, and the server says so when it starts. In development (the dev
 * issuer on) the Host stands in, and the metadata built from it is not cacheable.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createProof, jwkThumbprint, type ProofKey } from '@mandate/core';
import { buildHttpApp, parseConfig } from '@mandate/server';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeJwt, errorOf, mandate, startHarness, TRUST_DOMAIN, type DecisionBody, type Harness } from '../support.ts';

const FORGED = 'evil.example';
const PUBLIC = 'https://mandate.test';
let seq = 0;

/** A trust bundle file and a signer of JWT-SVIDs for it: workload tokens without the dev issuer. */
interface Workloads {
  readonly file: string;
  mint(h: Harness, spiffeId: string): Promise<string>;
}

let dir: string;
let workloads: Workloads;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mandate-host-'));
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const file = join(dir, 'bundle.json');
  await writeFile(file, JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'w1', alg: 'ES256', use: 'sig' }] }));
  workloads = {
    file,
    mint: (h, sub) => {
      const now = Math.floor(h.clock.now() / 1000);
      return new SignJWT({ sub, aud: 'mandate', iat: now, exp: now + 300 }).setProtectedHeader({ alg: 'ES256', kid: 'w1', typ: 'JWT' }).sign(privateKey as CryptoKey);
    },
  };
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

/** a harness outside development: no dev issuer, workload tokens from a trust bundle file */
function production(server: Record<string, unknown> = {}): Promise<Harness> {
  return startHarness({ config: { identity: { trust_bundles: [{ trust_domain: TRUST_DOMAIN, jwks_file: workloads.file }] }, server } });
}

async function newKey(): Promise<ProofKey & { jkt: string }> {
  const { privateKey, publicKey } = await generateKeyPair('EdDSA');
  const publicJwk = await exportJWK(publicKey);
  return { privateKey, publicJwk, alg: 'EdDSA', jkt: await jwkThumbprint(publicJwk) };
}

function proof(h: Harness, key: ProofKey, htu: string, token: string): Promise<string> {
  return createProof({ key, method: 'POST', htu, accessToken: token, now: h.clock.now(), jti: `host-${++seq}`, hasher: h.runtime.hasher });
}

async function startTask(h: Harness, svid: string, headers: Record<string, string> = {}) {
  return h.inject({ method: 'POST', url: '/v1/tasks', headers: { authorization: `Bearer ${svid}`, ...headers }, payload: { mandate: mandate() } });
}

describe('outside development, without server.public_url', () => {
  let h: Harness;
  let agent: string;
  beforeAll(async () => {
    h = await production();
    agent = await h.registerAgent('host-plain');
  });
  afterAll(async () => h.close());

  it('does not publish AuthZEN metadata, and never a forged Host', async () => {
    const res = await h.inject({ method: 'GET', url: '/.well-known/authzen-configuration', headers: { host: FORGED } });
    expect(res.statusCode).toBe(404);
    expect(errorOf(res).code).toBe('NOT_FOUND');
    expect(errorOf(res).message).toMatch(/authzen\.pdp_url or server\.public_url/);
    expect(res.body).not.toContain(FORGED);
  });

  it('refuses a DPoP proof, even one made for the Host it came with, and says why', async () => {
    const svid = await workloads.mint(h, agent);
    const key = await newKey();
    const res = await startTask(h, svid, { host: FORGED, dpop: await proof(h, key, `http://${FORGED}/v1/tasks`, svid) });
    expect(res.statusCode).toBe(401);
    expect(errorOf(res).code).toBe('DPOP_PROOF_INVALID');
    expect(errorOf(res).message).toMatch(/server\.public_url is not set/);
    // without a proof the task starts, unbound
    const plain = await startTask(h, svid);
    expect(plain.statusCode, plain.body).toBe(201);
    const token = plain.json<{ token: string }>().token;
    expect(decodeJwt(token).payload['cnf']).toBeUndefined();
    // a proof on a call is refused the same way: a deny that names it
    const call = await h.inject({ method: 'POST', url: '/v1/authorize', headers: { host: FORGED, authorization: `Bearer ${token}`, dpop: await proof(h, key, `http://${FORGED}/v1/authorize`, token) }, payload: { tool: 'helpdesk.search_tickets', args: {} } });
    expect(call.json<DecisionBody>()).toMatchObject({ effect: 'deny', reasons: ['DPOP_PROOF_INVALID'] });
  });

  it('says so when it starts', async () => {
    const lines: string[] = [];
    const app = buildHttpApp(h.runtime, { logger: { level: 'info', stream: { write: (l: string) => void lines.push(l) } } });
    await app.close();
    const warning = lines.map((l) => JSON.parse(l) as { level: number; msg: string }).find((l) => l.msg.includes('server.public_url is not set'));
    expect(warning?.level).toBe(40);
    expect(warning?.msg).toMatch(/DPoP proofs are refused.*AuthZEN metadata is not published/);
  });

  it('does not load a configuration that requires proofs in its environment', () => {
    const base = { environment: 'prod', tokens: { require_pop_environments: ['prod'] } };
    expect(() => parseConfig(base)).toThrow(/server\.public_url: is required when tokens\.require_pop_environments includes this deployment's environment \(prod\)/);
    expect(parseConfig({ ...base, server: { public_url: PUBLIC } }).server.public_url).toBe(PUBLIC);
    expect(parseConfig({ ...base, identity: { dev_issuer: { enabled: true } } }).tokens.require_pop_environments).toEqual(['prod']);
    expect(parseConfig({ environment: 'staging', tokens: { require_pop_environments: ['prod'] } }).environment).toBe('staging');
  });
});

describe('outside development, with server.public_url', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await production({ public_url: PUBLIC });
  });
  afterAll(async () => h.close());

  it('publishes the public URL in cacheable metadata, whatever the Host', async () => {
    const res = await h.inject({ method: 'GET', url: '/.well-known/authzen-configuration', headers: { host: FORGED } });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ policy_decision_point: PUBLIC, access_evaluation_endpoint: `${PUBLIC}/access/v1/evaluation`, access_evaluations_endpoint: `${PUBLIC}/access/v1/evaluations` });
    expect(res.headers['cache-control']).toBe('public, max-age=300');
  });

  it('accepts only proofs made for the public URL, never for a forged Host', async () => {
    const agent = await h.registerAgent('host-public');
    const key = await newKey();
    const svid = await workloads.mint(h, agent);
    const forged = await startTask(h, svid, { host: FORGED, dpop: await proof(h, key, `http://${FORGED}/v1/tasks`, svid) });
    expect(forged.statusCode).toBe(401);
    expect(errorOf(forged).code).toBe('DPOP_WRONG_TARGET');
    const good = await startTask(h, svid, { host: FORGED, dpop: await proof(h, key, `${PUBLIC}/v1/tasks`, svid) });
    expect(good.statusCode, good.body).toBe(201);
    expect(decodeJwt(good.json<{ token: string }>().token).payload['cnf']).toEqual({ jkt: key.jkt });
  });
});

describe('in development (the dev issuer on), without server.public_url', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => h.close());

  it('builds the metadata from the request, and forbids caching it', async () => {
    const res = await h.inject({ method: 'GET', url: '/.well-known/authzen-configuration', headers: { host: 'localhost:8787' } });
    expect(res.statusCode).toBe(200);
    expect(res.json<Record<string, string>>()['policy_decision_point']).toBe('http://localhost:8787');
    expect(res.headers['cache-control']).toBe('no-store');
  });

  it('checks proofs against the request\'s own URL', async () => {
    const agent = await h.registerAgent('host-dev');
    const key = await newKey();
    const svid = await h.workloadToken(agent);
    const res = await startTask(h, svid, { host: 'localhost:8787', dpop: await proof(h, key, 'http://localhost:8787/v1/tasks', svid) });
    expect(res.statusCode, res.body).toBe(201);
  });
});
