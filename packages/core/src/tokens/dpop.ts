/**
 * Proof of possession for task tokens, after RFC 9449 (DPoP). A task token bound to a key
 * (`cnf.jkt`, the RFC 7638 thumbprint of the agent's public key) is useless without a fresh proof
 * made with that key: a JWT of type `dpop+jwt`, signed over the HTTP method, the target URL, the
 * time, a unique id, the hash of the token it accompanies and, when the server asks, its nonce.
 *
 * Pure: the clock is passed in, the replay cache is a port (several nodes can share one later).
 */
import { base64url, calculateJwkThumbprint, EmbeddedJWK, errors as joseErrors, jwtVerify, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import { decodeUnverified } from '../identity/compact-jws.ts';
import type { Hasher } from '../ports.ts';
import type { ReasonCode } from '../reasons.ts';

export const DPOP_JWT_TYPE = 'dpop+jwt';
export const TASK_STATE_JWT_TYPE = 'mandate-task-state+jwt';
/** asymmetric only: a proof made with a shared secret proves nothing about one holder */
export const DPOP_ALGORITHMS = ['EdDSA', 'ES256'] as const;
export type DpopAlgorithm = (typeof DPOP_ALGORITHMS)[number];
/** longer than any honest proof (an ES256 proof with its key is ~600 characters) */
export const MAX_PROOF_LENGTH = 4096;
const MAX_JTI_LENGTH = 256;
/** JWK members that only a private (or symmetric) key has */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];
const JKT = /^[A-Za-z0-9_-]{43}$/;

/** The result of checking one proof; the decision pipeline receives it with the call. */
export type ProofResult =
  | { readonly ok: true; readonly jkt: string; readonly jti: string; readonly iat: number }
  | { readonly ok: false; readonly reason: ReasonCode; readonly detail: string };

/** Remembers proof ids until they could no longer pass the time check. */
export interface ReplayCache {
  /**
   * Records `key` until `expiresAt`. `fresh` when it was not seen before, `replayed` when it was,
   * `full` when it cannot be recorded (the caller must then refuse: fail closed).
   */
  remember(key: string, expiresAt: number, now: number): Promise<'fresh' | 'replayed' | 'full'>;
}

/** One node's replay cache: bounded; when full of live entries it refuses rather than forgets. */
export class MemoryReplayCache implements ReplayCache {
  private readonly seen = new Map<string, number>();
  private readonly maxEntries: number;

  constructor(maxEntries = 100_000) {
    this.maxEntries = maxEntries;
  }

  get size(): number {
    return this.seen.size;
  }

  async remember(key: string, expiresAt: number, now: number): Promise<'fresh' | 'replayed' | 'full'> {
    const until = this.seen.get(key);
    if (until !== undefined) {
      if (until > now) return 'replayed';
      this.seen.delete(key);
    }
    if (this.seen.size >= this.maxEntries) {
      for (const [k, t] of this.seen) if (t <= now) this.seen.delete(k);
      if (this.seen.size >= this.maxEntries) return 'full';
    }
    this.seen.set(key, expiresAt);
    return 'fresh';
  }
}

/**
 * Server-issued nonces (RFC 9449 §8): a value derived from a secret and the current period, so
 * every node that shares the secret issues and accepts the same nonces without talking. The
 * current and the previous period's nonce are accepted, so a rotation never fails a client
 * that has just been given one.
 */
export class DpopNonces {
  private readonly secret: string;
  private readonly periodMs: number;
  private readonly hasher: Hasher;
  private lastPeriod = Number.NEGATIVE_INFINITY;
  private lastNonce = '';
  private priorPeriod = Number.NEGATIVE_INFINITY;
  private priorNonce = '';

  constructor(secret: string, periodMs: number, hasher: Hasher) {
    if (secret.length < 16) throw new TypeError('the nonce secret must be at least 16 characters');
    if (!(periodMs >= 1000)) throw new TypeError('the nonce period must be at least one second');
    this.secret = secret;
    this.periodMs = periodMs;
    this.hasher = hasher;
  }

  current(now: number): string {
    return this.forPeriod(Math.floor(now / this.periodMs));
  }

  accepts(nonce: string, now: number): boolean {
    const p = Math.floor(now / this.periodMs);
    return nonce === this.forPeriod(p) || nonce === this.forPeriod(p - 1);
  }

  /**
   * A period's nonce. Every request names the current one (the `DPoP-Nonce` header) and a proof
   * is checked against the current and the previous: the last two are kept instead of hashing
   * the secret again up to three times per request.
   */
  private forPeriod(p: number): string {
    if (p === this.lastPeriod) return this.lastNonce;
    if (p === this.priorPeriod) return this.priorNonce;
    const nonce = hexToBase64url(this.hasher.sha256Hex(`dpop-nonce\n${this.secret}\n${p}`)).slice(0, 32);
    // the newer period stays in `last`: an older one asked for (the previous period's check) goes to `prior`
    if (p > this.lastPeriod) {
      this.priorPeriod = this.lastPeriod;
      this.priorNonce = this.lastNonce;
      this.lastPeriod = p;
      this.lastNonce = nonce;
    } else {
      this.priorPeriod = p;
      this.priorNonce = nonce;
    }
    return nonce;
  }
}

export interface DpopVerifierOptions {
  readonly hasher: Hasher;
  readonly replay: ReplayCache;
  /** how far a proof's `iat` may lie from now, either way */
  readonly iatWindowMs: number;
  /** when set, every proof must carry one of its current nonces */
  readonly nonces?: DpopNonces | undefined;
}

export interface ProofInput {
  /** the `DPoP` header's value; undefined when the request carried none */
  readonly proof: string | undefined;
  readonly method: string;
  /** the URL the request was sent to, as the server's public address names it */
  readonly htu: string;
  /** the token the proof accompanies (its hash must be the proof's `ath`); at task start, the workload token */
  readonly accessToken: string;
  /** the thumbprint the token is bound to; when absent the proof's own key is reported */
  readonly expectedJkt?: string | undefined;
  readonly now: number;
}

/** RFC 9449 §4.3 checks, in order; a deny names the first that failed. */
export class DpopVerifier {
  private readonly o: DpopVerifierOptions;

  constructor(opts: DpopVerifierOptions) {
    this.o = opts;
  }

  get nonces(): DpopNonces | undefined {
    return this.o.nonces;
  }

  async verifyProof(input: ProofInput): Promise<ProofResult> {
    const fail = (reason: ReasonCode, detail: string): ProofResult => ({ ok: false, reason, detail });
    const { proof } = input;
    if (proof === undefined || proof === '') return fail('DPOP_PROOF_MISSING', 'this token is bound to a key: a DPoP proof is required');
    if (typeof proof !== 'string' || proof.length > MAX_PROOF_LENGTH) return fail('DPOP_PROOF_INVALID', `a DPoP proof is a JWT of at most ${MAX_PROOF_LENGTH} characters`);
    let header;
    try {
      // canonical base64url and no member named twice (two `htu`s or `jwk`s mean two proofs)
      ({ header } = decodeUnverified(proof));
    } catch (e) {
      return fail('DPOP_PROOF_INVALID', `the DPoP proof is not a well-formed JWS (${e instanceof Error ? e.message : 'unreadable'})`);
    }
    if (header.typ !== DPOP_JWT_TYPE) return fail('DPOP_PROOF_INVALID', `the DPoP proof's typ must be ${DPOP_JWT_TYPE}`);
    if (!(DPOP_ALGORITHMS as readonly unknown[]).includes(header.alg)) return fail('DPOP_PROOF_INVALID', `the DPoP proof's alg must be one of ${DPOP_ALGORITHMS.join(', ')}`);
    const jwk = header.jwk;
    if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) return fail('DPOP_PROOF_INVALID', 'the DPoP proof carries no public key (jwk)');
    if (PRIVATE_MEMBERS.some((m) => Object.hasOwn(jwk, m))) return fail('DPOP_PROOF_INVALID', 'the DPoP proof carries a private or symmetric key');
    if (!keyFitsAlg(jwk as Record<string, unknown>, header.alg as DpopAlgorithm)) return fail('DPOP_PROOF_INVALID', `the DPoP key does not fit ${String(header.alg)}`);

    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(proof, EmbeddedJWK, {
        algorithms: [...DPOP_ALGORITHMS],
        typ: DPOP_JWT_TYPE,
        currentDate: new Date(input.now),
        requiredClaims: ['jti', 'htm', 'htu', 'iat'],
        clockTolerance: 0,
      }));
    } catch (e) {
      if (e instanceof joseErrors.JWTExpired) return fail('DPOP_PROOF_STALE', 'the DPoP proof has expired');
      return fail('DPOP_PROOF_INVALID', e instanceof joseErrors.JWSSignatureVerificationFailed ? 'the DPoP proof signature is invalid' : 'the DPoP proof could not be verified');
    }
    const { jti, htm, htu, iat, ath, nonce } = payload as JWTPayload & { htm?: unknown; htu?: unknown; ath?: unknown; nonce?: unknown };
    if (typeof jti !== 'string' || jti.length === 0 || jti.length > MAX_JTI_LENGTH) return fail('DPOP_PROOF_INVALID', `the DPoP proof's jti must be 1 to ${MAX_JTI_LENGTH} characters`);
    if (typeof htm !== 'string' || typeof htu !== 'string' || typeof iat !== 'number') return fail('DPOP_PROOF_INVALID', 'the DPoP proof lacks htm, htu or iat');
    if (htm !== input.method) return fail('DPOP_WRONG_TARGET', `the DPoP proof was made for ${htm.slice(0, 16)}, not ${input.method}`);
    const target = normaliseHtu(htu);
    if (target === undefined || target !== normaliseHtu(input.htu)) return fail('DPOP_WRONG_TARGET', 'the DPoP proof was made for another URL');
    if (Math.abs(input.now - iat * 1000) > this.o.iatWindowMs) return fail('DPOP_PROOF_STALE', `the DPoP proof's iat is more than ${this.o.iatWindowMs / 1000}s from now`);
    if (typeof ath !== 'string' || ath !== accessTokenHash(input.accessToken, this.o.hasher)) {
      return fail('DPOP_PROOF_INVALID', "the DPoP proof's ath is not the hash of the token it accompanies");
    }
    const jkt = await calculateJwkThumbprint(jwk as JWK, 'sha256');
    if (input.expectedJkt !== undefined && jkt !== input.expectedJkt) return fail('DPOP_KEY_MISMATCH', 'the DPoP proof was made with another key than the token is bound to');
    if (this.o.nonces && (typeof nonce !== 'string' || !this.o.nonces.accepts(nonce, input.now))) {
      return fail('DPOP_NONCE_REQUIRED', 'use the nonce in the DPoP-Nonce response header');
    }
    // last: only a proof that passed every other check takes a place in the cache
    const seen = await this.o.replay.remember(`${jkt}:${jti}`, iat * 1000 + this.o.iatWindowMs, input.now);
    if (seen === 'replayed') return fail('DPOP_PROOF_REPLAYED', 'this DPoP proof was already used');
    if (seen === 'full') return fail('LIMIT_EXCEEDED', 'the DPoP replay cache is full: freshness cannot be proven now');
    return { ok: true, jkt, jti, iat };
  }
}

/**
 * The binding check shared by every enforcement point: a token with `cnf.jkt` needs a valid
 * proof made with that key; a presented proof that failed denies even an unbound token.
 * Returns undefined when the call may go on, else the failed result.
 */
export function checkBinding(cnfJkt: string | undefined, proof: ProofResult | undefined): Extract<ProofResult, { ok: false }> | undefined {
  if (proof !== undefined && !proof.ok) return proof;
  if (cnfJkt === undefined) return undefined;
  if (proof === undefined) return { ok: false, reason: 'DPOP_PROOF_MISSING', detail: 'this token is bound to a key: a DPoP proof is required' };
  if (proof.jkt !== cnfJkt) return { ok: false, reason: 'DPOP_KEY_MISMATCH', detail: 'the DPoP proof was made with another key than the token is bound to' };
  return undefined;
}

/** RFC 9449 §4.2: htu without query and fragment; scheme and host compared case-insensitively (URL does). */
export function normaliseHtu(htu: string): string | undefined {
  if (htu.length > 2048) return undefined;
  let u: URL;
  try {
    u = new URL(htu);
  } catch {
    return undefined;
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return undefined;
  return `${u.protocol}//${u.host}${u.pathname}`;
}

/** `ath`: base64url(SHA-256(token)) */
export function accessTokenHash(token: string, hasher: Hasher): string {
  return hexToBase64url(hasher.sha256Hex(token));
}

export function isJkt(value: unknown): value is string {
  return typeof value === 'string' && JKT.test(value);
}

/** The RFC 7638 SHA-256 thumbprint of a public key: what `cnf.jkt` holds. */
export async function jwkThumbprint(jwk: JWK): Promise<string> {
  return calculateJwkThumbprint(jwk, 'sha256');
}

function keyFitsAlg(jwk: Record<string, unknown>, alg: DpopAlgorithm): boolean {
  if (alg === 'EdDSA') return jwk['kty'] === 'OKP' && jwk['crv'] === 'Ed25519';
  return jwk['kty'] === 'EC' && jwk['crv'] === 'P-256';
}

function hexToBase64url(hex: string): string {
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return base64url.encode(bytes);
}

// --- the client side: what an agent (or the SDK) runs -------------------------------------

export interface ProofKey {
  readonly privateKey: CryptoKey;
  /** the public half, as a JWK (only public members are sent) */
  readonly publicJwk: JWK;
  readonly alg: DpopAlgorithm;
}

/** Makes one DPoP proof for one request. `jti` must be unique (the caller's random id). */
export async function createProof(input: {
  key: ProofKey;
  method: string;
  htu: string;
  accessToken: string;
  now: number;
  jti: string;
  nonce?: string | undefined;
  hasher: Hasher;
}): Promise<string> {
  const { kty, crv, x, y } = input.key.publicJwk;
  const jwk: JWK = { kty, crv, x, ...(y !== undefined ? { y } : {}) } as JWK;
  return new SignJWT({
    jti: input.jti,
    htm: input.method,
    htu: input.htu,
    iat: Math.floor(input.now / 1000),
    ath: accessTokenHash(input.accessToken, input.hasher),
    ...(input.nonce !== undefined ? { nonce: input.nonce } : {}),
  })
    .setProtectedHeader({ typ: DPOP_JWT_TYPE, alg: input.key.alg, jwk })
    .sign(input.key.privateKey);
}

// --- signed task state: the agent's own account of its progress, signed with its DPoP key ----

export interface TaskState {
  readonly taskId: string;
  /** allowed calls so far */
  readonly progress: number;
  /** the id of the last allowed call, or null before the first */
  readonly lastCallId: string | null;
}

export async function signTaskState(input: { key: ProofKey; state: TaskState; now: number }): Promise<string> {
  const { kty, crv, x, y } = input.key.publicJwk;
  const jwk: JWK = { kty, crv, x, ...(y !== undefined ? { y } : {}) } as JWK;
  return new SignJWT({ task_id: input.state.taskId, progress: input.state.progress, last_call_id: input.state.lastCallId, iat: Math.floor(input.now / 1000) })
    .setProtectedHeader({ typ: TASK_STATE_JWT_TYPE, alg: input.key.alg, jwk })
    .sign(input.key.privateKey);
}

/** Verifies a signed task state: the task's own key, fresh, well formed. Returns the state or a reason. */
export async function verifyTaskState(jws: string, expectedJkt: string, now: number, windowMs: number): Promise<{ ok: true; state: TaskState } | { ok: false; detail: string }> {
  if (typeof jws !== 'string' || jws.length > MAX_PROOF_LENGTH) return { ok: false, detail: 'a signed task state is a JWT of bounded size' };
  let payload: JWTPayload;
  try {
    const { header } = decodeUnverified(jws);
    const jwk = header.jwk;
    if (typeof jwk !== 'object' || jwk === null || PRIVATE_MEMBERS.some((m) => Object.hasOwn(jwk, m))) return { ok: false, detail: 'the task state carries no public key' };
    if (!(DPOP_ALGORITHMS as readonly unknown[]).includes(header.alg) || !keyFitsAlg(jwk as Record<string, unknown>, header.alg as DpopAlgorithm)) return { ok: false, detail: 'the task state algorithm is not allowed' };
    if ((await calculateJwkThumbprint(jwk as JWK, 'sha256')) !== expectedJkt) return { ok: false, detail: "the task state is not signed with the task's key" };
    ({ payload } = await jwtVerify(jws, EmbeddedJWK, { algorithms: [...DPOP_ALGORITHMS], typ: TASK_STATE_JWT_TYPE, currentDate: new Date(now), requiredClaims: ['iat'] }));
  } catch {
    return { ok: false, detail: 'the task state could not be verified' };
  }
  const { task_id, progress, last_call_id, iat } = payload as Record<string, unknown>;
  if (typeof iat !== 'number' || Math.abs(now - iat * 1000) > windowMs) return { ok: false, detail: 'the task state is stale' };
  if (typeof task_id !== 'string' || typeof progress !== 'number' || !Number.isSafeInteger(progress) || progress < 0) return { ok: false, detail: 'the task state is malformed' };
  if (last_call_id !== null && typeof last_call_id !== 'string') return { ok: false, detail: 'the task state is malformed' };
  return { ok: true, state: { taskId: task_id, progress, lastCallId: last_call_id } };
}
