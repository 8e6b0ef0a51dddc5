import { decodeProtectedHeader } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { MandateError } from '../../src/errors.ts';
import { DevIssuer } from '../../src/identity/dev-issuer.ts';
import { AUDIENCE, MAX_LIFETIME_MS, NOW, clock, verifierWith } from './helpers.ts';

const AGENT = 'spiffe://dev.local/agents/demo';
let issuer: DevIssuer;

beforeAll(async () => {
  issuer = await DevIssuer.create('dev.local', clock);
});

describe('DevIssuer', () => {
  it('mints JWT-SVIDs that verify through WorkloadVerifier with its bundle', async () => {
    const token = await issuer.mint(AGENT, { audience: AUDIENCE, ttlMs: 300_000 });
    const identity = await verifierWith([issuer.bundle()]).verify(token);
    expect(identity).toMatchObject({ agentId: AGENT, trustDomain: 'dev.local', kind: 'jwt-svid', expiresAt: (NOW + 300) * 1000 });
    expect(identity.claims).toMatchObject({ sub: AGENT, aud: AUDIENCE, iat: NOW, exp: NOW + 300 });
  });

  it('signs with ES256, names its kid and sets typ JWT', async () => {
    const header = decodeProtectedHeader(await issuer.mint(AGENT, { audience: [AUDIENCE], ttlMs: 60_000 }));
    expect(header).toEqual({ alg: 'ES256', kid: issuer.kid, typ: 'JWT' });
  });

  it('publishes only the public key, marked for JWT-SVIDs', () => {
    const { keys } = issuer.publicJwks();
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatchObject({ kty: 'EC', crv: 'P-256', kid: issuer.kid, alg: 'ES256', use: 'jwt-svid' });
    expect(keys[0]).not.toHaveProperty('d');
  });

  it('restores from a persisted private JWK and keeps verifying with the same bundle', async () => {
    const restored = await DevIssuer.fromJwk('dev.local', issuer.privateJwk(), issuer.kid, clock);
    const token = await restored.mint(AGENT, { audience: AUDIENCE, ttlMs: 60_000 });
    await expect(verifierWith([issuer.bundle()]).verify(token)).resolves.toMatchObject({ agentId: AGENT });
    expect(restored.publicJwks()).toEqual(issuer.publicJwks());
  });

  it("does not verify another dev issuer's tokens of the same trust domain", async () => {
    const stranger = await DevIssuer.create('dev.local', clock);
    const token = await stranger.mint(AGENT, { audience: AUDIENCE, ttlMs: 60_000 });
    const error = await verifierWith([issuer.bundle()]).verify(token).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MandateError);
    expect((error as MandateError).code).toBe('TOKEN_KEY_UNKNOWN');
  });

  it('produces tokens the verifier refuses when their lifetime is too long', async () => {
    const token = await issuer.mint(AGENT, { audience: AUDIENCE, ttlMs: MAX_LIFETIME_MS * 2 });
    await expect(verifierWith([issuer.bundle()]).verify(token)).rejects.toMatchObject({ code: 'TOKEN_LIFETIME_TOO_LONG' });
  });

  it('refuses to mint for another trust domain or an invalid SPIFFE ID', async () => {
    await expect(issuer.mint('spiffe://prod.example/x', { audience: AUDIENCE, ttlMs: 60_000 })).rejects.toMatchObject({ code: 'TRUST_DOMAIN_UNKNOWN' });
    await expect(issuer.mint('spiffe://dev.local', { audience: AUDIENCE, ttlMs: 60_000 })).rejects.toMatchObject({ code: 'SPIFFE_ID_INVALID' });
  });

  it('refuses misuse with TypeError', async () => {
    await expect(issuer.mint(AGENT, { audience: AUDIENCE, ttlMs: 0 })).rejects.toThrow(TypeError);
    await expect(issuer.mint(AGENT, { audience: [], ttlMs: 1000 })).rejects.toThrow(TypeError);
    await expect(DevIssuer.create('Not A Domain', clock)).rejects.toThrow(TypeError);
    const { d: _d, ...publicOnly } = issuer.privateJwk();
    await expect(DevIssuer.fromJwk('dev.local', publicOnly, 'k', clock)).rejects.toThrow(TypeError);
  });
});
