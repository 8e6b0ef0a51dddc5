import { createLocalJWKSet } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { MandateError } from '../../src/errors.ts';
import type { ErrorCode } from '../../src/errors.ts';
import type { OidcIssuer, TrustBundle } from '../../src/identity/workload.ts';
import { WorkloadVerifier } from '../../src/identity/workload.ts';
import {
  AUDIENCE, MAX_LIFETIME_MS, NOW, NOW_MS, SKEW_MS, b64, b64json, bundleOf, clock, hmacWithPublicKey, makeKey, sign,
  signText, svidClaims, unsecured, verifierWith,
} from './helpers.ts';
import type { TestKey } from './helpers.ts';

const AGENT = 'spiffe://prod.example/agents/helpdesk';
const ISSUER = 'https://token.actions.example';
const OIDC_AUDIENCE = 'mandate-oidc';

async function rejection(promise: Promise<unknown>): Promise<MandateError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, 'expected the token to be rejected').toBeInstanceOf(MandateError);
  return error as MandateError;
}

async function expectCode(promise: Promise<unknown>, code: ErrorCode): Promise<void> {
  expect((await rejection(promise)).code).toBe(code);
}

let es: TestKey;
let rsa: TestKey;
let rsaImpostor: TestKey;
let ps: TestKey;
let ed: TestKey;
let otherDomainKey: TestKey;
let oidcKey: TestKey;
let prod: TrustBundle;
let other: TrustBundle;
let oidc: OidcIssuer;
let verifier: WorkloadVerifier;

beforeAll(async () => {
  [es, rsa, rsaImpostor, ps, ed, otherDomainKey, oidcKey] = await Promise.all([
    makeKey('ES256', 'es-1'),
    makeKey('RS256', 'rsa-1'),
    makeKey('RS256', 'rsa-1'),
    makeKey('PS256', 'ps-1'),
    makeKey('EdDSA', 'ed-1'),
    makeKey('ES256', 'other-1'),
    makeKey('ES256', 'oidc-1'),
  ]);
  prod = bundleOf('prod.example', es, rsa, ps, ed);
  other = bundleOf('other.example', otherDomainKey);
  oidc = { issuer: ISSUER, audience: OIDC_AUDIENCE, trustDomain: 'ci.example', keys: createLocalJWKSet({ keys: [oidcKey.publicJwk] }) };
  verifier = verifierWith([prod, other], [oidc]);
});

describe('WorkloadVerifier accepts', () => {
  it('accepts a valid ES256 JWT-SVID and names the agent by its SPIFFE ID', async () => {
    const identity = await verifier.verify(await sign(es, svidClaims(AGENT)));
    expect(identity).toMatchObject({ agentId: AGENT, trustDomain: 'prod.example', kind: 'jwt-svid', expiresAt: (NOW + 300) * 1000 });
    expect(identity.issuer).toBeUndefined();
    expect(identity.claims.sub).toBe(AGENT);
  });

  it.each(['rsa', 'ps', 'ed'] as const)('accepts a valid JWT-SVID signed with the %s key', async (name) => {
    const key = { rsa, ps, ed }[name];
    await expect(verifier.verify(await sign(key, svidClaims(AGENT)))).resolves.toMatchObject({ agentId: AGENT });
  });

  it('accepts an EdDSA JWT-SVID', async () => {
    await expect(verifier.verify(await sign(ed, svidClaims(AGENT)))).resolves.toMatchObject({ kind: 'jwt-svid' });
  });

  it('accepts a string audience, typ JOSE and no typ at all', async () => {
    await expect(verifier.verify(await sign(es, svidClaims(AGENT, { aud: AUDIENCE }), { typ: 'JOSE' }))).resolves.toBeDefined();
    await expect(verifier.verify(await sign(es, svidClaims(AGENT), { typ: undefined }))).resolves.toBeDefined();
  });

  it('accepts nbf and iat within the clock skew', async () => {
    const claims = svidClaims(AGENT, { nbf: NOW + SKEW_MS / 1000, iat: NOW + SKEW_MS / 1000 });
    await expect(verifier.verify(await sign(es, claims))).resolves.toBeDefined();
  });

  it('accepts a token whose lifetime is exactly the maximum', async () => {
    const claims = svidClaims(AGENT, { exp: NOW + MAX_LIFETIME_MS / 1000 });
    await expect(verifier.verify(await sign(es, claims))).resolves.toBeDefined();
  });
});

describe('WorkloadVerifier rejects attacks on the header', () => {
  it('rejects alg none', async () => {
    await expectCode(verifier.verify(unsecured(svidClaims(AGENT), 'es-1')), 'TOKEN_ALG_NOT_ALLOWED');
  });

  it('rejects HS256 signed with the public key as the HMAC secret', async () => {
    for (const secret of [rsa.spkiPem, JSON.stringify(rsa.publicJwk)]) {
      await expectCode(verifier.verify(hmacWithPublicKey(svidClaims(AGENT), 'rsa-1', secret)), 'TOKEN_ALG_NOT_ALLOWED');
    }
  });

  it.each(['HS256', 'HS512', 'none', 'NONE', 'RS1', 'ES256K', 'Ed25519', ''])('rejects alg %j before touching any key', async (alg) => {
    const token = `${b64json({ alg, kid: 'es-1' })}.${b64json(svidClaims(AGENT))}.${b64('sig')}`;
    await expectCode(verifier.verify(token), 'TOKEN_ALG_NOT_ALLOWED');
  });

  it('rejects a header without alg', async () => {
    const token = `${b64json({ kid: 'es-1' })}.${b64json(svidClaims(AGENT))}.${b64('sig')}`;
    await expectCode(verifier.verify(token), 'TOKEN_ALG_NOT_ALLOWED');
  });

  it('rejects a token without kid', async () => {
    await expectCode(verifier.verify(await sign(es, svidClaims(AGENT), { kid: undefined })), 'TOKEN_KID_MISSING');
  });

  it('rejects an empty or non-string kid', async () => {
    await expectCode(verifier.verify(await sign(es, svidClaims(AGENT), { kid: '' })), 'TOKEN_KID_MISSING');
    await expectCode(verifier.verify(await sign(es, svidClaims(AGENT), { kid: 7 })), 'TOKEN_KID_MISSING');
  });

  it('rejects a typ other than JWT or JOSE', async () => {
    await expectCode(verifier.verify(await sign(es, svidClaims(AGENT), { typ: 'at+jwt' })), 'TOKEN_MALFORMED');
  });

  it('rejects a token whose kid is unknown in its trust domain', async () => {
    await expectCode(verifier.verify(await sign(es, svidClaims(AGENT), { kid: 'nope' })), 'TOKEN_KEY_UNKNOWN');
  });

  it('rejects an unknown critical header parameter', async () => {
    await expectCode(verifier.verify(await sign(es, svidClaims(AGENT), { crit: ['x-custom'], 'x-custom': 1 }, { 'x-custom': true })), 'TOKEN_MALFORMED');
  });
});

describe('WorkloadVerifier rejects bad signatures and keys', () => {
  it('rejects an RS256 token whose signature is from another key with the same kid', async () => {
    await expectCode(verifier.verify(await sign(rsaImpostor, svidClaims(AGENT))), 'TOKEN_SIGNATURE_INVALID');
  });

  it("rejects a token signed by trust domain B's key that claims an identity in trust domain A", async () => {
    await expectCode(verifier.verify(await sign(otherDomainKey, svidClaims(AGENT))), 'TOKEN_KEY_UNKNOWN');
  });

  it("rejects trust domain B's key even when it reuses a kid of trust domain A", async () => {
    const impostor = await makeKey('ES256', 'es-1');
    const v = verifierWith([prod, bundleOf('other.example', impostor)]);
    await expectCode(v.verify(await sign(impostor, svidClaims(AGENT))), 'TOKEN_SIGNATURE_INVALID');
  });

  it('rejects a token from a trust domain without a bundle', async () => {
    await expectCode(verifier.verify(await sign(es, svidClaims('spiffe://staging.example/agents/helpdesk'))), 'TRUST_DOMAIN_UNKNOWN');
  });

  it('rejects a token whose signature segment is empty', async () => {
    const [h, p] = (await sign(es, svidClaims(AGENT))).split('.');
    await expectCode(verifier.verify(`${h}.${p}.`), 'TOKEN_MALFORMED');
  });

  it('rejects when the key set cannot be read, as an unknown key', async () => {
    const broken: TrustBundle = { trustDomain: 'prod.example', keys: () => Promise.reject(new TypeError('fetch failed')) };
    await expectCode(verifierWith([broken]).verify(await sign(es, svidClaims(AGENT))), 'TOKEN_KEY_UNKNOWN');
  });
});

describe('WorkloadVerifier rejects bad claims', () => {
  it('rejects a wrong audience', async () => {
    await expectCode(verifier.verify(await sign(es, svidClaims(AGENT, { aud: ['someone-else'] }))), 'TOKEN_AUDIENCE_MISMATCH');
  });

  it('rejects a missing audience', async () => {
    await expectCode(verifier.verify(await sign(es, svidClaims(AGENT, { aud: undefined }))), 'TOKEN_AUDIENCE_MISMATCH');
  });

  it('rejects an expired token', async () => {
    await expectCode(verifier.verify(await sign(es, svidClaims(AGENT, { iat: NOW - 600, exp: NOW - 60 }))), 'TOKEN_EXPIRED');
  });

  it('rejects a far-future lifetime (exp = now + 1 year)', async () => {
    await expectCode(verifier.verify(await sign(es, svidClaims(AGENT, { exp: NOW + 365 * 86_400 }))), 'TOKEN_LIFETIME_TOO_LONG');
  });

  it('rejects a far-future lifetime even without iat', async () => {
    await expectCode(verifier.verify(await sign(es, svidClaims(AGENT, { iat: undefined, exp: NOW + 365 * 86_400 }))), 'TOKEN_LIFETIME_TOO_LONG');
  });

  it('rejects a token issued long ago whose exp - iat exceeds the maximum lifetime', async () => {
    const claims = svidClaims(AGENT, { iat: NOW - 86_400, exp: NOW + 60 });
    await expectCode(verifier.verify(await sign(es, claims)), 'TOKEN_LIFETIME_TOO_LONG');
  });

  it('rejects nbf in the future', async () => {
    await expectCode(verifier.verify(await sign(es, svidClaims(AGENT, { nbf: NOW + 120 }))), 'TOKEN_NOT_YET_VALID');
  });

  it('rejects iat in the future', async () => {
    await expectCode(verifier.verify(await sign(es, svidClaims(AGENT, { iat: NOW + 120 }))), 'TOKEN_NOT_YET_VALID');
  });

  it('rejects a token without exp', async () => {
    await expectCode(verifier.verify(await sign(es, svidClaims(AGENT, { exp: undefined }))), 'TOKEN_CLAIMS_INVALID');
  });

  it('rejects a non-numeric exp', async () => {
    await expectCode(verifier.verify(await sign(es, svidClaims(AGENT, { exp: String(NOW + 60) }))), 'TOKEN_CLAIMS_INVALID');
  });

  it('rejects a JWT-SVID without sub', async () => {
    await expectCode(verifier.verify(await sign(es, svidClaims(AGENT, { sub: undefined }))), 'TOKEN_CLAIMS_INVALID');
  });

  it('uses the injected clock, not the wall clock', async () => {
    const token = await sign(es, svidClaims(AGENT));
    const later = verifierWith([prod], [], { clock: { now: () => NOW_MS + 301_000 + SKEW_MS } });
    await expectCode(later.verify(token), 'TOKEN_EXPIRED');
  });
});

describe('WorkloadVerifier checks SPIFFE ID syntax', () => {
  it.each([
    'spiffe://',
    'spiffe://UPPER.case/x',
    'spiffe://prod.example/',
    'spiffe://prod.example/a//b',
    'spiffe://prod.example/../x',
    'spiffe://prod.example/./x',
    'spiffe://prod.example:8080/x',
    'spiffe://user@prod.example/x',
    'http://prod.example/x',
    'SPIFFE://prod.example/x',
    'spiffe://prod.example/x?q=1',
    'spiffe://prod.example/x#f',
    'spiffe://prod.example/x%2Fy',
    'spiffe://prod.example',
    `spiffe://prod.example/${'a'.repeat(3000)}`,
  ])('rejects the SPIFFE ID %s', async (sub) => {
    await expectCode(verifier.verify(await sign(es, svidClaims(sub))), 'SPIFFE_ID_INVALID');
  });

  it('rejects a non-string sub', async () => {
    await expectCode(verifier.verify(await sign(es, svidClaims(AGENT, { sub: ['spiffe://prod.example/x'] }))), 'TOKEN_CLAIMS_INVALID');
  });
});

describe('WorkloadVerifier rejects malformed tokens', () => {
  it.each([
    ['an empty string', ''],
    ['two parts', `${b64json({ alg: 'ES256', kid: 'es-1' })}.${b64json(svidClaims(AGENT))}`],
    ['four parts', `${b64json({ alg: 'ES256', kid: 'es-1' })}.${b64json(svidClaims(AGENT))}.${b64('s')}.${b64('x')}`],
    ['garbage base64', '!!!.@@@.###'],
    ['standard base64 with padding', `${Buffer.from(JSON.stringify({ alg: 'ES256', kid: 'es-1' })).toString('base64')}==.e30.e30`],
    ['a header that is not JSON', `${b64('not json')}.${b64json(svidClaims(AGENT))}.${b64('s')}`],
    ['a header that is a JSON array', `${b64json(['ES256'])}.${b64json(svidClaims(AGENT))}.${b64('s')}`],
    ['a payload that is JSON null', `${b64json({ alg: 'ES256', kid: 'es-1' })}.${b64('null')}.${b64('s')}`],
    ['invalid UTF-8 in the header', `${b64(new Uint8Array([0x7b, 0xff, 0x7d]))}.${b64json(svidClaims(AGENT))}.${b64('s')}`],
  ])('rejects %s', async (_name, token) => {
    await expectCode(verifier.verify(token), 'TOKEN_MALFORMED');
  });

  it('rejects a non-canonical base64url signature (the same bytes spelt differently)', async () => {
    const token = await sign(es, svidClaims(AGENT));
    // an ES256 signature is 64 bytes: the last of its 86 characters carries 2 bits and 4 unused ones
    const last = token.at(-1) as string;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const twin = alphabet[alphabet.indexOf(last) ^ 1] as string;
    await expectCode(verifier.verify(token.slice(0, -1) + twin), 'TOKEN_MALFORMED');
  });

  it('rejects a token over 16 KiB before decoding it', async () => {
    const big = await sign(es, svidClaims(AGENT, { pad: 'x'.repeat(16 * 1024) }));
    const error = await rejection(verifier.verify(big));
    expect(error.code).toBe('TOKEN_MALFORMED');
    expect(error.message).toContain('limit 16384');
    const error2 = await rejection(verifier.verify('.'.repeat(17 * 1024)));
    expect(error2.message).toContain('limit 16384');
  });

  it('rejects a value that is not a string', async () => {
    await expectCode(verifier.verify(42 as unknown as string), 'TOKEN_MALFORMED');
  });
});

describe('WorkloadVerifier rejects a member named twice (RFC 7515 §4)', () => {
  const ADMIN = 'spiffe://prod.example/agents/admin';
  const header = '{"alg":"ES256","kid":"es-1","typ":"JWT"}';
  const claims = (extra: string) => `{"sub":"${AGENT}","aud":["${AUDIENCE}"],"iat":${NOW},"exp":${NOW + 300}${extra}}`;

  it('accepts the same token written without the duplicate (the signer works)', async () => {
    expect((await verifier.verify(await signText(es, header, claims('')))).agentId).toBe(AGENT);
  });

  it('rejects two sub claims, which JSON.parse would read as the second', async () => {
    const error = await rejection(verifier.verify(await signText(es, header, claims(`,"sub":"${ADMIN}"`))));
    expect(error.code).toBe('TOKEN_MALFORMED');
    expect(error.message).toContain('"sub"');
  });

  it('rejects a second sub spelt with an escape ("\\u0073ub" is "sub")', async () => {
    await expectCode(verifier.verify(await signText(es, header, claims(`,"\\u0073ub":"${ADMIN}"`))), 'TOKEN_MALFORMED');
  });

  it('rejects two alg members in the header', async () => {
    await expectCode(verifier.verify(await signText(es, '{"alg":"none","alg":"ES256","kid":"es-1"}', claims(''))), 'TOKEN_MALFORMED');
    await expectCode(verifier.verify(await signText(es, '{"alg":"ES256","kid":"es-1","kid":"rsa-1"}', claims(''))), 'TOKEN_MALFORMED');
  });

  it('rejects two aud or exp claims, and two iss of an OIDC token', async () => {
    await expectCode(verifier.verify(await signText(es, header, claims(`,"aud":"elsewhere"`))), 'TOKEN_MALFORMED');
    await expectCode(verifier.verify(await signText(es, header, claims(`,"exp":${NOW + 30 * 86400}`))), 'TOKEN_MALFORMED');
    const oidcText = `{"iss":"${ISSUER}","sub":"repo/build","aud":"${OIDC_AUDIENCE}","iat":${NOW},"exp":${NOW + 300},"iss":"https://evil.example"}`;
    await expectCode(verifier.verify(await signText(oidcKey, '{"alg":"ES256","kid":"oidc-1"}', oidcText)), 'TOKEN_MALFORMED');
  });

  it('accepts one name in two different objects (nested objects are separate scopes)', async () => {
    const nested = claims(`,"act":{"sub":"${ADMIN}","act":{"sub":"${AGENT}"}},"ctx":{"aud":"x","exp":1}`);
    const identity = await verifier.verify(await signText(es, header, nested));
    expect(identity.agentId).toBe(AGENT);
    expect(identity.claims['act']).toEqual({ sub: ADMIN, act: { sub: AGENT } });
  });

  it('rejects a duplicate inside a nested object', async () => {
    await expectCode(verifier.verify(await signText(es, header, claims(`,"act":{"sub":"${ADMIN}","sub":"${AGENT}"}`))), 'TOKEN_MALFORMED');
  });
});

describe('WorkloadVerifier with OIDC issuers', () => {
  const oidcClaims = (over: Record<string, unknown> = {}) => ({ iss: ISSUER, sub: 'repo/build', aud: OIDC_AUDIENCE, iat: NOW, exp: NOW + 300, ...over });

  it('accepts a token of a configured issuer and maps its subject into the trust domain', async () => {
    const identity = await verifier.verify(await sign(oidcKey, oidcClaims()));
    expect(identity).toMatchObject({ agentId: 'spiffe://ci.example/repo/build', trustDomain: 'ci.example', kind: 'oidc', issuer: ISSUER });
  });

  it('reads the subject from the configured claim', async () => {
    const v = verifierWith([], [{ ...oidc, subjectClaim: 'workload' }]);
    const identity = await v.verify(await sign(oidcKey, oidcClaims({ workload: 'jobs/nightly' })));
    expect(identity.agentId).toBe('spiffe://ci.example/jobs/nightly');
  });

  it('rejects a token of an issuer that is not configured', async () => {
    await expectCode(verifier.verify(await sign(oidcKey, oidcClaims({ iss: 'https://evil.example' }))), 'TOKEN_ISSUER_MISMATCH');
  });

  it('matches the issuer exactly (a trailing slash is another issuer)', async () => {
    await expectCode(verifier.verify(await sign(oidcKey, oidcClaims({ iss: `${ISSUER}/` }))), 'TOKEN_ISSUER_MISMATCH');
  });

  it("rejects a token with the issuer's audience missing, even if it names Mandate", async () => {
    await expectCode(verifier.verify(await sign(oidcKey, oidcClaims({ aud: AUDIENCE }))), 'TOKEN_AUDIENCE_MISMATCH');
  });

  it("rejects a token claiming the issuer but signed by a bundle key", async () => {
    await expectCode(verifier.verify(await sign(es, oidcClaims())), 'TOKEN_KEY_UNKNOWN');
  });

  it('does not let an OIDC key sign a JWT-SVID', async () => {
    await expectCode(verifier.verify(await sign(oidcKey, svidClaims('spiffe://ci.example/repo/build'))), 'TRUST_DOMAIN_UNKNOWN');
  });

  it('still checks expiry and lifetime of OIDC tokens', async () => {
    await expectCode(verifier.verify(await sign(oidcKey, oidcClaims({ exp: NOW - 60 }))), 'TOKEN_EXPIRED');
    await expectCode(verifier.verify(await sign(oidcKey, oidcClaims({ exp: NOW + 365 * 86_400 }))), 'TOKEN_LIFETIME_TOO_LONG');
  });

  it.each(['../etc', 'a/../b', 'a//b', '/a', 'a/', 'repo:org/x', 'a b', 'spiffe://ci.example/x', 'ü', '.', 'a/./b'])(
    'rejects the subject %j',
    async (sub) => {
      await expectCode(verifier.verify(await sign(oidcKey, oidcClaims({ sub }))), 'SPIFFE_ID_INVALID');
    },
  );

  it('rejects a missing subject', async () => {
    await expectCode(verifier.verify(await sign(oidcKey, oidcClaims({ sub: undefined }))), 'TOKEN_CLAIMS_INVALID');
  });
});

describe('WorkloadVerifier configuration', () => {
  it('refuses misuse with TypeError', () => {
    const base = { audience: AUDIENCE, maxLifetimeMs: MAX_LIFETIME_MS, clockSkewMs: SKEW_MS, bundles: [], oidcIssuers: [], clock };
    expect(() => new WorkloadVerifier({ ...base, audience: '' })).toThrow(TypeError);
    expect(() => new WorkloadVerifier({ ...base, maxLifetimeMs: 0 })).toThrow(TypeError);
    expect(() => new WorkloadVerifier({ ...base, clockSkewMs: -1 })).toThrow(TypeError);
    expect(() => new WorkloadVerifier({ ...base, bundles: [prod, prod] })).toThrow(TypeError);
    expect(() => new WorkloadVerifier({ ...base, bundles: [{ ...prod, trustDomain: 'Bad' }] })).toThrow(TypeError);
    expect(() => new WorkloadVerifier({ ...base, oidcIssuers: [oidc, oidc] })).toThrow(TypeError);
  });
});
