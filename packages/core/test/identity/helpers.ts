import { createHmac, webcrypto } from 'node:crypto';
import { CompactSign, createLocalJWKSet, exportJWK, exportSPKI, generateKeyPair } from 'jose';
import type { JWK } from 'jose';
import type { Clock } from '../../src/ports.ts';
import type { OidcIssuer, TrustBundle, WorkloadVerifierOptions } from '../../src/identity/workload.ts';
import { WorkloadVerifier } from '../../src/identity/workload.ts';

/** 2026-11-01T00:00:00Z, a whole second */
export const NOW_MS = Date.UTC(2026, 10, 1);
export const NOW = NOW_MS / 1000;
export const clock: Clock = { now: () => NOW_MS };
export const AUDIENCE = 'mandate';
export const MAX_LIFETIME_MS = 60 * 60 * 1000;
export const SKEW_MS = 30_000;

type KeyAlg = 'ES256' | 'RS256' | 'PS256' | 'EdDSA';

export interface TestKey {
  readonly alg: KeyAlg;
  readonly kid: string;
  readonly privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
  readonly publicJwk: JWK;
  readonly spkiPem: string;
}

export async function makeKey(alg: KeyAlg, kid: string): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid };
  return { alg, kid, privateKey, publicJwk, spkiPem: await exportSPKI(publicKey) };
}

export function bundleOf(trustDomain: string, ...keys: TestKey[]): TrustBundle {
  return { trustDomain, keys: createLocalJWKSet({ keys: keys.map((k) => k.publicJwk) }) };
}

export function verifierWith(bundles: TrustBundle[], oidcIssuers: OidcIssuer[] = [], over: Partial<WorkloadVerifierOptions> = {}): WorkloadVerifier {
  return new WorkloadVerifier({ audience: AUDIENCE, maxLifetimeMs: MAX_LIFETIME_MS, clockSkewMs: SKEW_MS, bundles, oidcIssuers, clock, ...over });
}

export const b64 = (value: string | Uint8Array): string => Buffer.from(value).toString('base64url');
export const b64json = (value: unknown): string => b64(JSON.stringify(value));

/** Standard valid JWT-SVID claims for `sub`, overridable. */
export function svidClaims(sub: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return { sub, aud: [AUDIENCE], iat: NOW, exp: NOW + 300, ...over };
}

/** Signs any header and claims, so tests can build tokens jose's SignJWT would refuse to make. */
export async function sign(
  key: TestKey,
  claims: Record<string, unknown>,
  header: Record<string, unknown> = {},
  crit?: Record<string, boolean>,
): Promise<string> {
  const merged: Record<string, unknown> = { alg: key.alg, kid: key.kid, typ: 'JWT', ...header };
  for (const [k, v] of Object.entries(merged)) if (v === undefined) delete merged[k];
  return new CompactSign(new TextEncoder().encode(JSON.stringify(claims)))
    .setProtectedHeader(merged as { alg: string })
    .sign(key.privateKey, crit ? { crit } : undefined);
}

export function unsecured(claims: Record<string, unknown>, kid: string): string {
  return `${b64json({ alg: 'none', kid, typ: 'JWT' })}.${b64json(claims)}.`;
}

/** The classic confusion attack: HS256 with the verifier's public key bytes as the HMAC secret. */
export function hmacWithPublicKey(claims: Record<string, unknown>, kid: string, secret: string): string {
  const input = `${b64json({ alg: 'HS256', kid, typ: 'JWT' })}.${b64json(claims)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

/**
 * Signs a header and a payload given as JSON text, byte for byte: for tokens no JSON serializer
 * would write, such as a member named twice. ES256 and EdDSA keys only.
 */
export async function signText(key: TestKey, headerText: string, payloadText: string): Promise<string> {
  const input = `${b64(headerText)}.${b64(payloadText)}`;
  const algorithm = key.alg === 'ES256' ? { name: 'ECDSA', hash: 'SHA-256' } : key.alg === 'EdDSA' ? { name: 'Ed25519' } : undefined;
  if (algorithm === undefined) throw new TypeError(`signText supports ES256 and EdDSA keys, not ${key.alg}`);
  const signature = await webcrypto.subtle.sign(algorithm, key.privateKey as webcrypto.CryptoKey, new TextEncoder().encode(input));
  return `${input}.${b64(new Uint8Array(signature))}`;
}
