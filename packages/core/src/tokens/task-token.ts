import { errors as joseErrors, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import { MandateError } from '../errors.ts';
import type { Clock, Hasher, IdGenerator } from '../ports.ts';
import type { KeyRing } from './keyring.ts';
import { isJkt } from './dpop.ts';
import { decodeUnverified } from '../identity/compact-jws.ts';
import { sharedString } from '../state/shared-values.ts';

export const TASK_TOKEN_TYPE = 'mandate-task+jwt';
const MAX_TOKEN_LENGTH = 8192;
/** how often an unknown kid may trigger a re-read of the signing keys */
const KEY_RELOAD_INTERVAL_MS = 5_000;
/** how often the verified-token cache may be walked for expired tokens, s */
const SWEEP_INTERVAL_S = 60;
/** the claims a verified token keeps as shared strings: the same for every token of an agent, a mandate or this issuer */
const SHARED_CLAIMS = ['iss', 'sub', 'aud', 'mandate_hash'] as const;

export interface TaskTokenClaims {
  readonly iss: string;
  /** the agent's SPIFFE ID */
  readonly sub: string;
  /** Mandate's audience, and (RFC 8707) the one resource the token was requested for, if any */
  readonly aud: string | string[];
  readonly jti: string;
  readonly iat: number;
  readonly exp: number;
  readonly task_id: string;
  readonly mandate_hash: string;
  readonly txn: string;
  /** RFC 8693 actor chain of a delegated task: the delegating agent, nesting its own delegator */
  readonly act?: ActorClaim;
  /** RFC 7800/9449 confirmation: the thumbprint of the key every use must prove possession of */
  readonly cnf?: { readonly jkt: string };
}

export interface ActorClaim {
  readonly sub: string;
  readonly act?: ActorClaim;
}

export interface TaskTokenOptions {
  readonly issuer: string;
  readonly audience: string;
  readonly clock: Clock;
  readonly ids: IdGenerator;
  /** the verified-token cache's key: a token's SHA-256, not its text (~850 characters in the soak) */
  readonly hasher: Hasher;
  /** how many verified tokens to remember (verification is the costly step) */
  readonly cacheSize?: number;
}

/**
 * Mints and verifies task tokens: EdDSA JWTs bound to one agent, one task and one mandate hash.
 * Verified tokens are cached until they expire, so the hot path does one hash and one map lookup
 * instead of a signature check; revocation and task state are checked per call elsewhere, never
 * cached here. The cache is keyed by the SHA-256 of the token's exact text: a hit means the same
 * bytes as a token verified before (a different token with the same key is a SHA-256 collision),
 * and keeps ~80 bytes a token instead of its text (~850 characters in the soak).
 */
export class TaskTokens {
  /** SHA-256 (hex) of a verified token's text → its claims, in the order first verified */
  private readonly cache = new Map<string, TaskTokenClaims>();
  private lastReload = Number.NEGATIVE_INFINITY;
  private lastSweep = Number.NEGATIVE_INFINITY;
  private readonly cacheSize: number;

  private readonly ring: KeyRing;
  private readonly opts: TaskTokenOptions;

  constructor(ring: KeyRing, opts: TaskTokenOptions) {
    this.ring = ring;
    this.opts = opts;
    this.cacheSize = opts.cacheSize ?? 50_000;
  }

  async mint(input: { agentId: string; taskId: string; mandateHash: string; txn: string; expiresAt: number; act?: ActorClaim | undefined; cnfJkt?: string | undefined; resource?: string | undefined }): Promise<{ token: string; claims: TaskTokenClaims }> {
    const key = this.ring.active();
    const now = this.opts.clock.now();
    const claims: TaskTokenClaims = {
      iss: this.opts.issuer,
      sub: input.agentId,
      aud: input.resource !== undefined ? [this.opts.audience, input.resource] : this.opts.audience,
      jti: this.opts.ids.next('jti'),
      iat: Math.floor(now / 1000),
      exp: Math.floor(input.expiresAt / 1000),
      task_id: input.taskId,
      mandate_hash: input.mandateHash,
      txn: input.txn,
      ...(input.act ? { act: input.act } : {}),
      ...(input.cnfJkt !== undefined ? { cnf: { jkt: input.cnfJkt } } : {}),
    };
    const token = await new SignJWT({ ...claims })
      .setProtectedHeader({ alg: 'EdDSA', kid: key.kid, typ: TASK_TOKEN_TYPE })
      .sign(key.privateKey);
    return { token, claims };
  }

  async verify(token: string): Promise<TaskTokenClaims> {
    if (typeof token !== 'string' || token.length === 0) throw new MandateError('TOKEN_MISSING', 'no task token');
    if (token.length > MAX_TOKEN_LENGTH) throw new MandateError('TOKEN_MALFORMED', `task token longer than ${MAX_TOKEN_LENGTH} characters`);
    const nowSec = Math.floor(this.opts.clock.now() / 1000);
    const key = this.opts.hasher.sha256Hex(token);
    const cached = this.cache.get(key);
    if (cached) {
      if (cached.exp <= nowSec) {
        this.cache.delete(key);
        throw new MandateError('TOKEN_EXPIRED', 'task token expired');
      }
      return cached;
    }
    const claims = await this.verifySignature(token);
    this.forgetExpired(nowSec);
    if (this.cache.size >= this.cacheSize) this.evict(nowSec);
    this.cache.set(key, claims);
    return claims;
  }

  /**
   * Forgets a verified token (its task renewed it: the token is revoked). Only the cache's entry
   * goes: a later use verifies the signature again, and revocation is checked per call as ever.
   * Without this a renewed token stayed until it expired (a task renewing every 3 minutes with
   * 5-minute tokens held two).
   */
  forget(token: string): void {
    this.cache.delete(this.opts.hasher.sha256Hex(token));
  }

  /** how many verified tokens are remembered */
  get cached(): number {
    return this.cache.size;
  }

  /**
   * Forgets every expired entry, at most once a minute (on a token's first use). A renewed task's
   * old token is never looked up again: without this it stayed until the cache was full. One walk
   * over the cache rather than a watch on its oldest entries: tokens' lifetimes differ (a task's
   * end can come before `tokens.ttl`), and a Map's first entry after many deletions at its front
   * is found by walking every deleted slot.
   */
  private forgetExpired(nowSec: number): void {
    if (nowSec - this.lastSweep < SWEEP_INTERVAL_S) return;
    this.lastSweep = nowSec;
    for (const [t, c] of this.cache) if (c.exp <= nowSec) this.cache.delete(t);
  }

  private evict(nowSec: number): void {
    for (const [t, c] of this.cache) if (c.exp <= nowSec) this.cache.delete(t);
    // still full: drop the oldest entries (Map keeps insertion order)
    const excess = this.cache.size - Math.floor(this.cacheSize * 0.9);
    if (excess > 0) {
      let n = 0;
      for (const t of this.cache.keys()) {
        if (n++ >= excess) break;
        this.cache.delete(t);
      }
    }
  }

  private async verifySignature(token: string): Promise<TaskTokenClaims> {
    // canonical base64url, JSON objects, no member named twice (TOKEN_MALFORMED), before any key
    const { header } = decodeUnverified(token);
    if (header.alg !== 'EdDSA') throw new MandateError('TOKEN_ALG_NOT_ALLOWED', `task tokens are EdDSA, not ${String(header.alg)}`);
    if (header.typ !== TASK_TOKEN_TYPE) throw new MandateError('TOKEN_MALFORMED', `task token typ must be ${TASK_TOKEN_TYPE}`);
    if (typeof header.kid !== 'string') throw new MandateError('TOKEN_KID_MISSING', 'task token has no kid');
    let key = this.ring.verificationKey(header.kid);
    if (!key && this.opts.clock.now() - this.lastReload >= KEY_RELOAD_INTERVAL_MS) {
      // another node may have rotated: re-read the ring, at most once per interval
      this.lastReload = this.opts.clock.now();
      await this.ring.reload();
      key = this.ring.verificationKey(header.kid);
    }
    if (!key) throw new MandateError('TOKEN_KEY_UNKNOWN', 'task token signed by an unknown key');
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, key, {
        algorithms: ['EdDSA'],
        issuer: this.opts.issuer,
        audience: this.opts.audience,
        typ: TASK_TOKEN_TYPE,
        currentDate: new Date(this.opts.clock.now()),
        requiredClaims: ['exp', 'iat', 'jti', 'sub'],
        clockTolerance: 0,
      }));
    } catch (e) {
      throw mapJoseError(e);
    }
    const c = payload as Partial<TaskTokenClaims>;
    if (typeof c.task_id !== 'string' || typeof c.mandate_hash !== 'string' || typeof c.txn !== 'string' || !(typeof c.aud === 'string' || (Array.isArray(c.aud) && c.aud.length <= 2 && c.aud.every((a) => typeof a === 'string')))) {
      throw new MandateError('TOKEN_CLAIMS_INVALID', 'task token lacks task claims');
    }
    if (c.cnf !== undefined && (typeof c.cnf !== 'object' || c.cnf === null || !isJkt((c.cnf as { jkt?: unknown }).jkt))) {
      throw new MandateError('TOKEN_CLAIMS_INVALID', 'task token cnf must be {"jkt": <RFC 7638 thumbprint>}');
    }
    // the values every token of an agent or of a mandate repeats, as one copy (state/shared-values.ts)
    const shared = payload as Record<string, unknown>;
    for (const k of SHARED_CLAIMS) if (typeof shared[k] === 'string') shared[k] = sharedString(shared[k]);
    return c as TaskTokenClaims;
  }
}

export function mapJoseError(e: unknown): MandateError {
  if (e instanceof MandateError) return e;
  if (e instanceof joseErrors.JWTExpired) return new MandateError('TOKEN_EXPIRED', 'token expired');
  if (e instanceof joseErrors.JWTClaimValidationFailed) {
    if (e.claim === 'aud') return new MandateError('TOKEN_AUDIENCE_MISMATCH', 'token audience mismatch');
    if (e.claim === 'iss') return new MandateError('TOKEN_ISSUER_MISMATCH', 'token issuer mismatch');
    if (e.claim === 'nbf' || e.claim === 'iat') return new MandateError('TOKEN_NOT_YET_VALID', 'token not yet valid');
    return new MandateError('TOKEN_CLAIMS_INVALID', `token claim "${e.claim}" invalid`);
  }
  if (e instanceof joseErrors.JWSSignatureVerificationFailed) return new MandateError('TOKEN_SIGNATURE_INVALID', 'token signature invalid');
  if (e instanceof joseErrors.JOSEAlgNotAllowed) return new MandateError('TOKEN_ALG_NOT_ALLOWED', 'token algorithm not allowed');
  if (e instanceof joseErrors.JWTInvalid || e instanceof joseErrors.JWSInvalid) return new MandateError('TOKEN_MALFORMED', 'token malformed');
  return new MandateError('TOKEN_SIGNATURE_INVALID', 'token could not be verified');
}

/** The resource (RFC 8707) a task token was requested for, if it names one besides Mandate's audience. */
export function tokenResource(claims: Pick<TaskTokenClaims, 'aud'>, audience: string): string | undefined {
  return typeof claims.aud === 'string' ? undefined : claims.aud.find((a) => a !== audience);
}
