/**
 * One table from jose's errors to Mandate's stable codes. jose's `code` strings are matched rather
 * than classes so that a second copy of jose in node_modules cannot slip past `instanceof`.
 */
import type { JWTVerifyGetKey } from 'jose';
import { describeError, MandateError } from '../errors.ts';
import type { ReasonCode } from '../reasons.ts';

/** Wraps any failure of a key resolver, so a lookup failure is never read as a bad signature. */
export class KeyResolutionError extends Error {
  readonly failure: unknown;
  constructor(failure: unknown) {
    super('key resolution failed');
    this.name = 'KeyResolutionError';
    this.failure = failure;
  }
}

export function guardKeyResolver(keys: JWTVerifyGetKey): JWTVerifyGetKey {
  return async (header, token) => {
    try {
      return await keys(header, token);
    } catch (failure) {
      throw new KeyResolutionError(failure);
    }
  };
}

function joseCode(error: unknown): string | undefined {
  if (!(error instanceof Error)) return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && code.startsWith('ERR_') ? code : undefined;
}

function claimOf(error: unknown): { claim: unknown; reason: unknown } {
  const e = error as { claim?: unknown; reason?: unknown };
  return { claim: e.claim, reason: e.reason };
}

function claimFailure(error: unknown): [ReasonCode, string] {
  const { claim, reason } = claimOf(error);
  switch (claim) {
    case 'aud':
      return ['TOKEN_AUDIENCE_MISMATCH', 'audience does not name this verifier'];
    case 'iss':
      return ['TOKEN_ISSUER_MISMATCH', 'issuer does not match'];
    case 'nbf':
    case 'iat':
      return reason === 'check_failed'
        ? ['TOKEN_NOT_YET_VALID', `"${claim}" is in the future`]
        : ['TOKEN_CLAIMS_INVALID', `"${claim}" must be a number`];
    default:
      return ['TOKEN_CLAIMS_INVALID', reason === 'missing' ? `missing required "${String(claim)}" claim` : `invalid "${String(claim)}" claim`];
  }
}

/**
 * Maps what `jwtVerify` threw to a MandateError. `where` names the keys consulted (trust domain
 * or issuer) for messages. Unknown failures still deny: they map to TOKEN_SIGNATURE_INVALID.
 */
export function mapVerifyError(error: unknown, where: string): MandateError {
  if (error instanceof MandateError) return error;
  if (error instanceof KeyResolutionError) {
    const code = joseCode(error.failure);
    if (code === 'ERR_JWKS_NO_MATCHING_KEY') return new MandateError('TOKEN_KEY_UNKNOWN', `no key of ${where} matches the token's kid and alg`);
    if (code === 'ERR_JWKS_MULTIPLE_MATCHING_KEYS') return new MandateError('TOKEN_KEY_UNKNOWN', `several keys of ${where} match the token's kid; refusing to guess`);
    return new MandateError('TOKEN_KEY_UNKNOWN', `keys of ${where} are unavailable`, { cause: describeError(error.failure) });
  }
  const code = joseCode(error);
  switch (code) {
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return new MandateError('TOKEN_SIGNATURE_INVALID', `signature does not verify with the keys of ${where}`);
    case 'ERR_JWT_EXPIRED':
      return new MandateError('TOKEN_EXPIRED', 'token has expired');
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED': {
      const [reason, message] = claimFailure(error);
      return new MandateError(reason, message);
    }
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return new MandateError('TOKEN_ALG_NOT_ALLOWED', 'algorithm not allowed');
    case 'ERR_JOSE_NOT_SUPPORTED':
      return new MandateError('TOKEN_MALFORMED', `malformed token: unsupported feature: ${(error as Error).message}`);
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
      return new MandateError('TOKEN_MALFORMED', `malformed token: ${(error as Error).message}`);
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
    case 'ERR_JWKS_INVALID':
    case 'ERR_JWKS_TIMEOUT':
    case 'ERR_JWK_INVALID':
      return new MandateError('TOKEN_KEY_UNKNOWN', `no usable key of ${where}`);
    default:
      // e.g. a key of the wrong type or an RSA modulus under 2048 bits (jose throws TypeError)
      return new MandateError('TOKEN_SIGNATURE_INVALID', `token does not verify with the keys of ${where}`, { cause: describeError(error) });
  }
}
