/**
 * Verifies workload tokens: JWT-SVIDs (subject = SPIFFE ID, keys = that trust domain's bundle)
 * and OIDC JWTs (keys = the issuer's JWKS, SPIFFE ID derived from a subject claim).
 * Threat model row NHI4: allowed algorithms only, `kid` required, audience, `exp` required,
 * bounded lifetime, SPIFFE ID syntax. Every failure is a MandateError with a stable code.
 */
import { jwtVerify } from 'jose';
import type { JWTPayload, JWTVerifyGetKey } from 'jose';
import { MandateError } from '../errors.ts';
import type { Clock } from '../ports.ts';
import { isValidTrustDomain, parseWorkloadSpiffeId } from '../spiffe.ts';
import { decodeUnverified, preview } from './compact-jws.ts';
import { guardKeyResolver, mapVerifyError } from './jose-errors.ts';

/** Asymmetric algorithms only: `none` and HMAC (a public key used as a shared secret) never pass. */
export const WORKLOAD_TOKEN_ALGORITHMS = [
  'RS256', 'RS384', 'RS512',
  'ES256', 'ES384', 'ES512',
  'PS256', 'PS384', 'PS512',
  'EdDSA',
] as const;
const ALLOWED_ALGORITHMS: ReadonlySet<string> = new Set(WORKLOAD_TOKEN_ALGORITHMS);
const ALLOWED_TYP: ReadonlySet<string> = new Set(['JWT', 'JOSE']);
const MAX_KID_LENGTH = 256;
/** OIDC subjects become SPIFFE ID paths: path characters and "/" only. */
const OIDC_SUBJECT = /^[A-Za-z0-9._\-/]+$/;

/** The JWT-SVID signing keys of one trust domain. */
export interface TrustBundle {
  readonly trustDomain: string;
  readonly keys: JWTVerifyGetKey;
}

/** An OIDC issuer whose tokens identify workloads of `trustDomain`. */
export interface OidcIssuer {
  readonly issuer: string;
  /** the audience this issuer's tokens must carry for Mandate */
  readonly audience: string;
  readonly trustDomain: string;
  readonly keys: JWTVerifyGetKey;
  /** claim holding the workload path; default "sub" */
  readonly subjectClaim?: string | undefined;
}

export interface WorkloadVerifierOptions {
  /** this Mandate's audience; JWT-SVIDs must name it in `aud` */
  readonly audience: string;
  readonly maxLifetimeMs: number;
  readonly clockSkewMs: number;
  readonly bundles: readonly TrustBundle[];
  readonly oidcIssuers: readonly OidcIssuer[];
  readonly clock: Clock;
}

export interface WorkloadIdentity {
  /** SPIFFE ID */
  readonly agentId: string;
  readonly trustDomain: string;
  readonly kind: 'jwt-svid' | 'oidc';
  /** the OIDC issuer; absent for JWT-SVIDs */
  readonly issuer?: string;
  /** ms since the epoch */
  readonly expiresAt: number;
  readonly claims: JWTPayload;
}

/** Where an (unverified) token is routed: which keys, which audience, which issuer. */
interface Route {
  readonly kind: 'jwt-svid' | 'oidc';
  readonly trustDomain: string;
  readonly keys: JWTVerifyGetKey;
  readonly audience: string;
  readonly oidc: OidcIssuer | undefined;
  /** names the keys in messages */
  readonly where: string;
}

function requireText(value: unknown, name: string): void {
  if (typeof value !== 'string' || value.length === 0) throw new TypeError(`${name} must be a non-empty string`);
}

function requireTrustDomain(value: unknown, name: string): void {
  if (typeof value !== 'string' || !isValidTrustDomain(value)) throw new TypeError(`${name} must be a valid trust domain, got ${preview(value)}`);
}

function requireKeys(value: unknown, name: string): void {
  if (typeof value !== 'function') throw new TypeError(`${name} must be a jose key resolver function`);
}

function checkHeader(header: Readonly<Record<string, unknown>>): void {
  const { alg, kid, typ, crit } = header;
  if (typeof alg !== 'string' || !ALLOWED_ALGORITHMS.has(alg)) {
    throw new MandateError('TOKEN_ALG_NOT_ALLOWED', `alg ${preview(alg)} is not allowed (allowed: ${WORKLOAD_TOKEN_ALGORITHMS.join(', ')})`);
  }
  if (typeof kid !== 'string' || kid.length === 0) throw new MandateError('TOKEN_KID_MISSING', 'token header has no "kid"');
  if (kid.length > MAX_KID_LENGTH) throw new MandateError('TOKEN_MALFORMED', `malformed token: kid longer than ${MAX_KID_LENGTH} characters`);
  if (typ !== undefined && (typeof typ !== 'string' || !ALLOWED_TYP.has(typ))) {
    throw new MandateError('TOKEN_MALFORMED', `malformed token: typ ${preview(typ)} is not JWT or JOSE`);
  }
  // no JWS extension is understood here, so none may be critical (this also rules out b64=false)
  if (crit !== undefined) throw new MandateError('TOKEN_MALFORMED', 'malformed token: critical header extensions are not supported');
}

/** Maps an OIDC subject to `spiffe://<trustDomain>/<subject>`, refusing anything path-unsafe. */
export function oidcSubjectToSpiffeId(subject: unknown, trustDomain: string, claim: string): string {
  if (typeof subject !== 'string' || subject.length === 0) {
    throw new MandateError('TOKEN_CLAIMS_INVALID', `subject claim "${claim}" must be a non-empty string`);
  }
  if (!OIDC_SUBJECT.test(subject)) {
    throw new MandateError('SPIFFE_ID_INVALID', `invalid SPIFFE ID: subject claim "${claim}" may only contain A-Z, a-z, 0-9, ".", "-", "_", "/"`);
  }
  if (subject.split('/').some((s) => s === '' || s === '.' || s === '..')) {
    throw new MandateError('SPIFFE_ID_INVALID', `invalid SPIFFE ID: subject claim "${claim}" has an empty, "." or ".." segment`);
  }
  return parseWorkloadSpiffeId(`spiffe://${trustDomain}/${subject}`).id;
}

export class WorkloadVerifier {
  readonly #audience: string;
  readonly #maxLifetimeMs: number;
  readonly #clockSkewMs: number;
  readonly #clock: Clock;
  readonly #bundles: ReadonlyMap<string, TrustBundle>;
  readonly #issuers: ReadonlyMap<string, OidcIssuer>;

  constructor(opts: WorkloadVerifierOptions) {
    requireText(opts.audience, 'audience');
    if (!Number.isSafeInteger(opts.maxLifetimeMs) || opts.maxLifetimeMs <= 0) throw new TypeError('maxLifetimeMs must be a positive integer');
    if (!Number.isSafeInteger(opts.clockSkewMs) || opts.clockSkewMs < 0) throw new TypeError('clockSkewMs must be a non-negative integer');
    if (typeof opts.clock?.now !== 'function') throw new TypeError('clock must have now()');
    const bundles = new Map<string, TrustBundle>();
    for (const b of opts.bundles) {
      requireTrustDomain(b.trustDomain, 'bundle trustDomain');
      requireKeys(b.keys, `bundle keys of ${b.trustDomain}`);
      if (bundles.has(b.trustDomain)) throw new TypeError(`two bundles for trust domain ${b.trustDomain}`);
      bundles.set(b.trustDomain, b);
    }
    const issuers = new Map<string, OidcIssuer>();
    for (const i of opts.oidcIssuers) {
      requireText(i.issuer, 'OIDC issuer');
      requireText(i.audience, `audience of OIDC issuer ${i.issuer}`);
      requireTrustDomain(i.trustDomain, `trustDomain of OIDC issuer ${i.issuer}`);
      requireKeys(i.keys, `keys of OIDC issuer ${i.issuer}`);
      if (i.subjectClaim !== undefined) requireText(i.subjectClaim, `subjectClaim of OIDC issuer ${i.issuer}`);
      if (issuers.has(i.issuer)) throw new TypeError(`OIDC issuer ${i.issuer} configured twice`);
      issuers.set(i.issuer, i);
    }
    this.#audience = opts.audience;
    this.#maxLifetimeMs = opts.maxLifetimeMs;
    this.#clockSkewMs = opts.clockSkewMs;
    this.#clock = opts.clock;
    this.#bundles = bundles;
    this.#issuers = issuers;
  }

  /** Resolves with the verified identity or rejects with a MandateError; never returns a partial result. */
  async verify(token: string): Promise<WorkloadIdentity> {
    const now = this.#clock.now();
    const { header, payload, signature } = decodeUnverified(token);
    checkHeader(header);
    if (signature.length === 0) throw new MandateError('TOKEN_MALFORMED', 'malformed token: empty signature');
    const route = this.#route(payload);

    let claims: JWTPayload;
    try {
      const verified = await jwtVerify(token, guardKeyResolver(route.keys), {
        algorithms: [...WORKLOAD_TOKEN_ALGORITHMS],
        audience: route.audience,
        ...(route.oidc ? { issuer: route.oidc.issuer } : {}),
        requiredClaims: ['exp'],
        currentDate: new Date(now),
        clockTolerance: this.#clockSkewMs / 1000,
      });
      claims = verified.payload;
    } catch (error) {
      throw mapVerifyError(error, route.where);
    }

    const expiresAt = this.#checkTimes(claims, now);
    const agentId = route.oidc
      ? oidcSubjectToSpiffeId(claims[route.oidc.subjectClaim ?? 'sub'], route.trustDomain, route.oidc.subjectClaim ?? 'sub')
      : parseWorkloadSpiffeId(String(claims.sub)).id;
    const identity: WorkloadIdentity = { agentId, trustDomain: route.trustDomain, kind: route.kind, expiresAt, claims };
    return route.oidc ? { ...identity, issuer: route.oidc.issuer } : identity;
  }

  /** Chooses the only keys that may verify this token, from its unverified `iss` and `sub`. */
  #route(payload: Readonly<Record<string, unknown>>): Route {
    const oidc = typeof payload.iss === 'string' ? this.#issuers.get(payload.iss) : undefined;
    if (oidc) {
      return { kind: 'oidc', trustDomain: oidc.trustDomain, keys: oidc.keys, audience: oidc.audience, oidc, where: `OIDC issuer ${oidc.issuer}` };
    }
    if (typeof payload.iss === 'string' && !(typeof payload.sub === 'string' && payload.sub.startsWith('spiffe://'))) {
      // neither a configured OIDC issuer nor a JWT-SVID: say which, rather than "bad SPIFFE ID"
      throw new MandateError('TOKEN_ISSUER_MISMATCH', `issuer ${preview(payload.iss)} is not a configured OIDC issuer`);
    }
    if (typeof payload.sub !== 'string') throw new MandateError('TOKEN_CLAIMS_INVALID', 'JWT-SVID has no "sub" claim');
    const { trustDomain } = parseWorkloadSpiffeId(payload.sub);
    const bundle = this.#bundles.get(trustDomain);
    if (!bundle) throw new MandateError('TRUST_DOMAIN_UNKNOWN', `no trust bundle for trust domain ${trustDomain}`, { trustDomain });
    return { kind: 'jwt-svid', trustDomain, keys: bundle.keys, audience: this.#audience, oidc: undefined, where: `trust domain ${trustDomain}` };
  }

  /** jose has checked exp/nbf; this adds a future iat and the lifetime bound. Returns exp in ms. */
  #checkTimes(claims: JWTPayload, now: number): number {
    const { exp, iat } = claims;
    if (typeof exp !== 'number' || !Number.isFinite(exp)) throw new MandateError('TOKEN_CLAIMS_INVALID', '"exp" must be a number');
    const expMs = exp * 1000;
    if (iat !== undefined) {
      if (typeof iat !== 'number' || !Number.isFinite(iat)) throw new MandateError('TOKEN_CLAIMS_INVALID', '"iat" must be a number');
      if (iat * 1000 > now + this.#clockSkewMs) throw new MandateError('TOKEN_NOT_YET_VALID', '"iat" is in the future');
      if (expMs - iat * 1000 > this.#maxLifetimeMs) {
        throw new MandateError('TOKEN_LIFETIME_TOO_LONG', `token lifetime (exp - iat) exceeds ${this.#maxLifetimeMs} ms`, { limitMs: this.#maxLifetimeMs });
      }
    }
    // the skew allowance covers an issuer whose clock runs ahead of ours
    if (expMs - now > this.#maxLifetimeMs + this.#clockSkewMs) {
      throw new MandateError('TOKEN_LIFETIME_TOO_LONG', `token expires more than ${this.#maxLifetimeMs} ms from now`, { limitMs: this.#maxLifetimeMs });
    }
    return expMs;
  }
}
