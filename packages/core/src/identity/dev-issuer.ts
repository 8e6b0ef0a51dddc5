/**
 * A development JWT-SVID issuer for demos and tests: one ES256 key, a SPIFFE bundle holding its
 * public half, and `mint` for short-lived JWT-SVIDs. Production workloads get their SVIDs from
 * SPIRE or another SPIFFE implementation, never from this.
 */
import { calculateJwkThumbprint, createLocalJWKSet, exportJWK, generateKeyPair, importJWK, SignJWT } from 'jose';
import type { JSONWebKeySet, JWK } from 'jose';
import { MandateError } from '../errors.ts';
import type { Clock, IdGenerator } from '../ports.ts';
import { isValidTrustDomain, parseWorkloadSpiffeId } from '../spiffe.ts';
import { jwtSvidKeySet } from './key-set.ts';
import type { TrustBundle } from './workload.ts';

const ALG = 'ES256';

export interface MintOptions {
  readonly audience: string | readonly string[];
  readonly ttlMs: number;
}

type PrivateKey = Parameters<SignJWT['sign']>[0];

function publicPart(jwk: JWK): JWK {
  const { kty, crv, x, y } = jwk;
  if (kty !== 'EC' || crv !== 'P-256' || typeof x !== 'string' || typeof y !== 'string') {
    throw new TypeError('dev issuer key must be an EC P-256 JWK');
  }
  return { kty, crv, x, y };
}

export class DevIssuer {
  readonly trustDomain: string;
  readonly kid: string;
  readonly #privateKey: PrivateKey;
  readonly #privateJwk: JWK;
  readonly #publicJwk: JWK;
  readonly #clock: Clock;
  readonly #ids: IdGenerator | undefined;

  private constructor(trustDomain: string, kid: string, privateKey: PrivateKey, privateJwk: JWK, clock: Clock, ids: IdGenerator | undefined) {
    this.trustDomain = trustDomain;
    this.kid = kid;
    this.#privateKey = privateKey;
    this.#privateJwk = privateJwk;
    this.#publicJwk = { ...publicPart(privateJwk), kid, alg: ALG, use: 'jwt-svid' };
    this.#clock = clock;
    this.#ids = ids;
  }

  /**
   * A fresh key pair; the kid is the key's RFC 7638 thumbprint, so it is random and stable across
   * reloads. With `ids`, every token gets a `jti`, so two minted in the same second for the same
   * workload are two tokens (each usable once for a delegation), not one token twice.
   */
  static async create(trustDomain: string, clock: Clock, ids?: IdGenerator): Promise<DevIssuer> {
    if (!isValidTrustDomain(trustDomain)) throw new TypeError(`invalid trust domain "${trustDomain}"`);
    const { privateKey } = await generateKeyPair(ALG, { extractable: true });
    const privateJwk = await exportJWK(privateKey);
    const kid = await calculateJwkThumbprint(publicPart(privateJwk));
    return new DevIssuer(trustDomain, kid, privateKey, privateJwk, clock, ids);
  }

  /** Restores an issuer from a persisted private JWK (see `privateJwk()`). */
  static async fromJwk(trustDomain: string, privateJwk: JWK, kid: string, clock: Clock, ids?: IdGenerator): Promise<DevIssuer> {
    if (!isValidTrustDomain(trustDomain)) throw new TypeError(`invalid trust domain "${trustDomain}"`);
    if (typeof kid !== 'string' || kid.length === 0) throw new TypeError('kid must be a non-empty string');
    if (typeof privateJwk.d !== 'string') throw new TypeError('dev issuer key must be a private JWK (with "d")');
    const clean: JWK = { ...publicPart(privateJwk), d: privateJwk.d };
    const privateKey = await importJWK(clean, ALG, { extractable: true });
    return new DevIssuer(trustDomain, kid, privateKey, clean, clock, ids);
  }

  /** The private JWK, for persisting the key. Treat it as a secret. */
  privateJwk(): JWK {
    return { ...this.#privateJwk };
  }

  /** The SPIFFE bundle form: the public key with `use: "jwt-svid"`. */
  publicJwks(): JSONWebKeySet {
    return { keys: [{ ...this.#publicJwk }] };
  }

  /** A trust bundle that verifies this issuer's tokens. */
  bundle(): TrustBundle {
    const keys = createLocalJWKSet(jwtSvidKeySet(this.publicJwks(), `dev issuer for ${this.trustDomain}`));
    return { trustDomain: this.trustDomain, keys };
  }

  /** A JWT-SVID for `spiffeId`, which must be a workload of this issuer's trust domain. */
  async mint(spiffeId: string, opts: MintOptions): Promise<string> {
    const id = parseWorkloadSpiffeId(spiffeId);
    if (id.trustDomain !== this.trustDomain) {
      throw new MandateError('TRUST_DOMAIN_UNKNOWN', `dev issuer for ${this.trustDomain} cannot mint for trust domain ${id.trustDomain}`);
    }
    if (!Number.isSafeInteger(opts.ttlMs) || opts.ttlMs <= 0) throw new TypeError('ttlMs must be a positive integer');
    const audience = typeof opts.audience === 'string' ? opts.audience : [...opts.audience];
    if (audience.length === 0 || (Array.isArray(audience) && audience.some((a) => typeof a !== 'string' || a.length === 0))) {
      throw new TypeError('audience must be a non-empty string or list of non-empty strings');
    }
    const now = this.#clock.now();
    return new SignJWT(this.#ids ? { jti: this.#ids.next('svid') } : {})
      .setProtectedHeader({ alg: ALG, kid: this.kid, typ: 'JWT' })
      .setSubject(id.id)
      .setAudience(audience)
      .setIssuedAt(Math.floor(now / 1000))
      .setExpirationTime(Math.floor((now + opts.ttlMs) / 1000))
      .sign(this.#privateKey);
  }
}
