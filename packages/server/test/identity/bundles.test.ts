import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import type { JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OidcIssuer, TrustBundle } from '../../../core/src/identity/workload.ts';
import { WorkloadVerifier } from '../../../core/src/identity/workload.ts';
import { loadOidcIssuer, loadTrustBundle, MAX_KEY_SET_BYTES } from '../../src/identity/bundles.ts';

const NOW_MS = Date.UTC(2026, 10, 1);
const NOW = NOW_MS / 1000;
const AGENT = 'spiffe://prod.example/agents/helpdesk';

interface Key {
  readonly kid: string;
  readonly privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
  readonly jwk: JWK;
}

async function makeKey(kid: string): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid } };
}

function mint(key: Key, claims: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT({ sub: AGENT, aud: 'mandate', iat: NOW, exp: NOW + 300, ...claims })
    .setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'JWT' })
    .sign(key.privateKey);
}

function verifier(bundles: TrustBundle[], oidcIssuers: OidcIssuer[] = []): WorkloadVerifier {
  return new WorkloadVerifier({ audience: 'mandate', maxLifetimeMs: 3_600_000, clockSkewMs: 30_000, bundles, oidcIssuers, clock: { now: () => NOW_MS } });
}

let dir: string;
let key: Key;
let other: Key;

async function file(name: string, content: unknown): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mandate-bundles-'));
  [key, other] = await Promise.all([makeKey('k1'), makeKey('k2')]);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('loadTrustBundle from a JWKS file', () => {
  it('verifies tokens signed by a key of the file', async () => {
    const bundle = await loadTrustBundle({ trust_domain: 'prod.example', jwks_file: await file('jwks.json', { keys: [key.jwk] }) });
    expect(bundle.trustDomain).toBe('prod.example');
    await expect(verifier([bundle]).verify(await mint(key))).resolves.toMatchObject({ agentId: AGENT });
    await expect(verifier([bundle]).verify(await mint(other))).rejects.toMatchObject({ code: 'TOKEN_KEY_UNKNOWN' });
  });

  it('resolves a relative path against baseDir', async () => {
    await file('relative.json', { keys: [key.jwk] });
    const bundle = await loadTrustBundle({ trust_domain: 'prod.example', jwks_file: 'relative.json' }, { baseDir: dir });
    await expect(verifier([bundle]).verify(await mint(key))).resolves.toBeDefined();
  });

  it('ignores unusable keys when a usable one remains', async () => {
    const { kid: _kid, ...noKid } = other.jwk;
    const keys = [noKid, { ...other.jwk, kid: 'enc', use: 'enc' }, { ...other.jwk, kid: 'hs', alg: 'HS256' }, key.jwk];
    const bundle = await loadTrustBundle({ trust_domain: 'prod.example', jwks_file: await file('mixed.json', { keys }) });
    await expect(verifier([bundle]).verify(await mint(key))).resolves.toBeDefined();
  });

  it.each<[string, unknown, RegExp]>([
    ['not JSON', '{ "keys": [', /not valid JSON/],
    ['not a key set', { kty: 'EC' }, /not a JSON Web Key Set/],
    ['a key set with no usable key', { keys: [{ kty: 'EC', crv: 'P-256', x: 'AA', y: 'AA' }] }, /no usable verification key/],
    ['an empty key set', { keys: [] }, /no usable verification key/],
    ['a symmetric key', { keys: [{ kty: 'oct', k: 'c2VjcmV0', kid: 's' }] }, /symmetric key material/],
    ['a key with the same kid twice', { keys: [{ ...{ kty: 'EC', crv: 'P-256', x: 'AA', y: 'AA' }, kid: 'a' }, { kty: 'EC', crv: 'P-256', x: 'AA', y: 'AA', kid: 'a' }] }, /appears more than once/],
    ['a corrupt EC key', { keys: [{ kty: 'EC', crv: 'P-256', x: 'AAAA', y: 'AAAA', kid: 'bad' }] }, /cannot be imported/],
  ])('rejects a file that is %s, naming the file', async (_name, content, message) => {
    const path = await file(`bad-${Math.random().toString(36).slice(2)}.json`, content);
    const error = await loadTrustBundle({ trust_domain: 'prod.example', jwks_file: path }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'CONFIG_INVALID' });
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).toContain(path);
  });

  it('rejects a file with a member named twice in one object, naming the member', async () => {
    // two "x": JSON.parse keeps the second, other JWK readers the first; two "keys" likewise
    const jwkText = JSON.stringify(key.jwk).replace('"x":', `"x":${JSON.stringify(other.jwk.x)},"x":`);
    for (const [name, text, member] of [
      ['twice-x.json', `{"keys":[${jwkText}]}`, 'x'],
      ['twice-keys.json', `{"keys":[${JSON.stringify(other.jwk)}],"keys":[${JSON.stringify(key.jwk)}]}`, 'keys'],
    ] as const) {
      const path = await file(name, text);
      const error = await loadTrustBundle({ trust_domain: 'prod.example', jwks_file: path }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'CONFIG_INVALID' });
      expect((error as Error).message).toContain(`"${member}" twice`);
    }
    // the same member name in two different keys is what a key set is
    const two = await loadTrustBundle({ trust_domain: 'prod.example', jwks_file: await file('two-keys.json', { keys: [key.jwk, other.jwk] }) });
    await expect(verifier([two]).verify(await mint(other))).resolves.toBeDefined();
  });

  it('rejects a file containing a private key', async () => {
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    const path = await file('private.json', { keys: [{ ...(await exportJWK(privateKey)), kid: 'p' }] });
    await expect(loadTrustBundle({ trust_domain: 'prod.example', jwks_file: path })).rejects.toThrow(/private or symmetric key material/);
  });

  it('rejects an RSA key shorter than 2048 bits', async () => {
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const path = await file('rsa1024.json', { keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'weak' }] });
    await expect(loadTrustBundle({ trust_domain: 'prod.example', jwks_file: path })).rejects.toThrow(/shorter than 2048 bits/);
  });

  it('rejects a missing file, naming it', async () => {
    const path = join(dir, 'missing.json');
    await expect(loadTrustBundle({ trust_domain: 'prod.example', jwks_file: path })).rejects.toThrow(path);
  });

  it('rejects a file larger than the limit before reading it', async () => {
    const path = await file('huge.json', `{"keys":[],"pad":"${'x'.repeat(MAX_KEY_SET_BYTES)}"}`);
    await expect(loadTrustBundle({ trust_domain: 'prod.example', jwks_file: path })).rejects.toThrow(/limit/);
  });

  it('rejects an entry with no source, two sources or a bad trust domain', async () => {
    await expect(loadTrustBundle({ trust_domain: 'prod.example' })).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    await expect(loadTrustBundle({ trust_domain: 'prod.example', jwks_file: 'a', jwks_url: 'https://x.example/jwks' })).rejects.toThrow(/exactly one/);
    await expect(loadTrustBundle({ trust_domain: 'Prod.Example', jwks_file: 'a' })).rejects.toThrow(/not a valid trust domain/);
    await expect(loadTrustBundle({ trust_domain: 'prod.example', jwks_file: 'a', refresh_interval_ms: 1000 })).rejects.toThrow(/jwks_url only/);
  });
});

describe('loadTrustBundle from a SPIFFE bundle file', () => {
  it('uses only the keys marked jwt-svid and ignores the x509-svid roots', async () => {
    const path = await file('bundle.spiffe', {
      spiffe_sequence: 3,
      keys: [
        { ...other.jwk, use: 'x509-svid', x5c: ['MIIB'] },
        { ...key.jwk, use: 'jwt-svid' },
      ],
    });
    const bundle = await loadTrustBundle({ trust_domain: 'prod.example', spiffe_bundle_file: path });
    await expect(verifier([bundle]).verify(await mint(key))).resolves.toMatchObject({ agentId: AGENT });
    await expect(verifier([bundle]).verify(await mint(other))).rejects.toMatchObject({ code: 'TOKEN_KEY_UNKNOWN' });
  });

  it('ignores keys without a use, since a SPIFFE bundle marks every key', async () => {
    const path = await file('unmarked.spiffe', { keys: [key.jwk, { ...other.jwk, use: 'jwt-svid' }] });
    const bundle = await loadTrustBundle({ trust_domain: 'prod.example', spiffe_bundle_file: path });
    await expect(verifier([bundle]).verify(await mint(key))).rejects.toMatchObject({ code: 'TOKEN_KEY_UNKNOWN' });
    await expect(verifier([bundle]).verify(await mint(other))).resolves.toBeDefined();
  });

  it('rejects a bundle without JWT-SVID keys, naming the file', async () => {
    const path = await file('x509-only.spiffe', { keys: [{ ...key.jwk, use: 'x509-svid' }] });
    await expect(loadTrustBundle({ trust_domain: 'prod.example', spiffe_bundle_file: path })).rejects.toThrow(
      new RegExp(`x509-only\\.spiffe.*no usable JWT-SVID key`),
    );
  });
});

describe('loadTrustBundle from a JWKS URL', () => {
  let server: Server;
  let base: string;
  let served: JWK[] = [];
  let requests = 0;
  let body: string | undefined;

  beforeAll(async () => {
    server = createServer((req, res) => {
      requests += 1;
      if (req.url !== '/jwks') {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(body ?? JSON.stringify({ keys: served }));
    });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((done) => server.close(() => done()));
  });

  it('fetches the key set once, caches it, and refetches for a new kid after the cooldown', async () => {
    served = [key.jwk];
    body = undefined;
    requests = 0;
    const bundle = await loadTrustBundle({ trust_domain: 'prod.example', jwks_url: `${base}/jwks`, refresh_interval_ms: 1000 });
    const v = verifier([bundle]);
    await expect(v.verify(await mint(key))).resolves.toMatchObject({ agentId: AGENT });
    await expect(v.verify(await mint(key))).resolves.toBeDefined();
    expect(requests).toBe(1);

    served = [key.jwk, other.jwk];
    await new Promise((done) => setTimeout(done, 1100));
    await expect(v.verify(await mint(other))).resolves.toBeDefined();
    expect(requests).toBe(2);
  });

  it('refuses tokens when the key server does not answer (fail closed)', async () => {
    const bundle = await loadTrustBundle({ trust_domain: 'prod.example', jwks_url: `${base}/missing` });
    await expect(verifier([bundle]).verify(await mint(key))).rejects.toMatchObject({ code: 'TOKEN_KEY_UNKNOWN' });
    const closed = createServer();
    await new Promise<void>((done) => closed.listen(0, '127.0.0.1', done));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((done) => closed.close(() => done()));
    const unreachable = await loadTrustBundle({ trust_domain: 'prod.example', jwks_url: `http://127.0.0.1:${port}/jwks` });
    await expect(verifier([unreachable]).verify(await mint(key))).rejects.toMatchObject({ code: 'TOKEN_KEY_UNKNOWN' });
  });

  it('refuses an oversized key set response', async () => {
    body = JSON.stringify({ keys: [key.jwk], pad: 'x'.repeat(MAX_KEY_SET_BYTES) });
    try {
      const bundle = await loadTrustBundle({ trust_domain: 'prod.example', jwks_url: `${base}/jwks` });
      const error = await verifier([bundle]).verify(await mint(key)).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'TOKEN_KEY_UNKNOWN', details: { cause: expect.stringMatching(/limit|exceeds/) } });
    } finally {
      body = undefined;
    }
  });

  it('refuses tokens when the key set response names a member twice (fail closed)', async () => {
    body = `{"keys":[${JSON.stringify(other.jwk)}],"keys":[${JSON.stringify(key.jwk)}]}`;
    try {
      const bundle = await loadTrustBundle({ trust_domain: 'prod.example', jwks_url: `${base}/jwks` });
      const error = await verifier([bundle]).verify(await mint(key)).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'TOKEN_KEY_UNKNOWN', details: { cause: expect.stringMatching(/"keys" twice/) } });
    } finally {
      body = undefined;
    }
  });

  it.each([
    ['plain http to another host', 'http://keys.example/jwks', /must use https/],
    ['credentials in the URL', 'https://user:pw@keys.example/jwks', /credentials/],
    ['a fragment', 'https://keys.example/jwks#x', /fragment/],
    ['not a URL', 'keys.example/jwks', /not a URL/],
  ])('rejects a URL with %s', async (_name, url, message) => {
    await expect(loadTrustBundle({ trust_domain: 'prod.example', jwks_url: url })).rejects.toThrow(message);
  });

  it('rejects a refresh interval under one second', async () => {
    await expect(loadTrustBundle({ trust_domain: 'prod.example', jwks_url: `${base}/jwks`, refresh_interval_ms: 10 })).rejects.toThrow(/refresh_interval_ms/);
  });

  it('loads an OIDC issuer whose keys are at a URL', async () => {
    served = [key.jwk];
    const issuer = await loadOidcIssuer({ issuer: 'https://ci.example', audience: 'mandate-ci', trust_domain: 'ci.example', jwks_url: `${base}/jwks` });
    const token = await mint(key, { iss: 'https://ci.example', aud: 'mandate-ci', sub: 'repo/build' });
    await expect(verifier([], [issuer]).verify(token)).resolves.toMatchObject({ agentId: 'spiffe://ci.example/repo/build', kind: 'oidc' });
  });
});

describe('loadOidcIssuer', () => {
  it('loads an issuer from a JWKS file with a custom subject claim', async () => {
    const issuer = await loadOidcIssuer({
      issuer: 'https://ci.example',
      audience: 'mandate-ci',
      trust_domain: 'ci.example',
      jwks_file: await file('oidc.json', { keys: [key.jwk] }),
      subject_claim: 'workload',
    });
    expect(issuer).toMatchObject({ issuer: 'https://ci.example', audience: 'mandate-ci', trustDomain: 'ci.example', subjectClaim: 'workload' });
    const token = await mint(key, { iss: 'https://ci.example', aud: 'mandate-ci', sub: 'ignored:here', workload: 'jobs/nightly' });
    await expect(verifier([], [issuer]).verify(token)).resolves.toMatchObject({ agentId: 'spiffe://ci.example/jobs/nightly' });
  });

  it('rejects an entry without keys, with two key sources, or with a blank audience', async () => {
    const base = { issuer: 'https://ci.example', audience: 'mandate-ci', trust_domain: 'ci.example' };
    await expect(loadOidcIssuer(base)).rejects.toThrow(/exactly one of jwks_url, jwks_file/);
    await expect(loadOidcIssuer({ ...base, jwks_url: 'https://ci.example/jwks', jwks_file: 'x.json' })).rejects.toThrow(/exactly one/);
    await expect(loadOidcIssuer({ ...base, audience: ' ', jwks_file: 'x.json' })).rejects.toThrow(/audience/);
  });
});
