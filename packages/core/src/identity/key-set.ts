/**
 * Turning key sets (plain JWKS documents and SPIFFE bundles) into the verification keys that
 * jose can select from. Pure: callers read the documents; this only checks and filters them.
 */
import { base64url, importJWK } from 'jose';
import type { JSONWebKeySet, JWK } from 'jose';
import { describeError, MandateError } from '../errors.ts';
import { WORKLOAD_TOKEN_ALGORITHMS } from './workload.ts';

/** Key types that can verify the allowed JWS algorithms (RS/PS, ES, EdDSA). */
const VERIFYING_KEY_TYPES: ReadonlySet<string> = new Set(['RSA', 'EC', 'OKP']);
/** JWK members that only a private or symmetric key carries. */
const SECRET_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;
export const MAX_KEYS_PER_SET = 100;
const ALLOWED_ALGORITHMS: ReadonlySet<string> = new Set(WORKLOAD_TOKEN_ALGORITHMS);
const MIN_RSA_MODULUS_BYTES = 256;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function invalid(source: string, why: string): MandateError {
  return new MandateError('CONFIG_INVALID', `${source}: ${why}`, { source });
}

function keysOf(document: unknown, source: string): unknown[] {
  if (!isObject(document) || !Array.isArray(document.keys)) {
    throw invalid(source, 'not a JSON Web Key Set (expected an object with a "keys" array)');
  }
  if (document.keys.length > MAX_KEYS_PER_SET) {
    throw invalid(source, `has ${document.keys.length} keys, limit ${MAX_KEYS_PER_SET}`);
  }
  return document.keys;
}

/**
 * A key can verify a workload token when it is a public RSA/EC/OKP key with a `kid` (tokens must
 * name their key) and does not forbid verification through `key_ops`.
 */
function isVerificationKey(key: Record<string, unknown>): boolean {
  if (typeof key.kty !== 'string' || !VERIFYING_KEY_TYPES.has(key.kty)) return false;
  if (typeof key.kid !== 'string' || key.kid.length === 0) return false;
  if (key.key_ops !== undefined && !(Array.isArray(key.key_ops) && key.key_ops.includes('verify'))) return false;
  if (key.alg !== undefined && !(typeof key.alg === 'string' && ALLOWED_ALGORITHMS.has(key.alg))) return false;
  return true;
}

/** Private or symmetric key material in a trust bundle is a misconfiguration, never silently used. */
function rejectSecrets(key: Record<string, unknown>, index: number, source: string): void {
  for (const member of SECRET_MEMBERS) {
    if (member in key) throw invalid(source, `key #${index} contains private or symmetric key material ("${member}")`);
  }
}

function filterKeys(keys: unknown[], source: string, wanted: (key: Record<string, unknown>) => boolean): JWK[] {
  const out: JWK[] = [];
  const kids = new Set<string>();
  keys.forEach((key, index) => {
    if (!isObject(key)) throw invalid(source, `key #${index} is not an object`);
    rejectSecrets(key, index, source);
    if (!wanted(key) || !isVerificationKey(key)) return;
    const kid = key.kid as string;
    // jose refuses to choose between two keys with one kid; refuse the set up front instead
    if (kids.has(kid)) throw invalid(source, `kid "${kid}" appears more than once`);
    kids.add(kid);
    out.push({ ...key } as JWK);
  });
  return out;
}

/**
 * The usable verification keys of a plain JWKS document: public signature keys (`use` absent or
 * "sig") with a `kid`. Throws CONFIG_INVALID naming `source` when none is usable.
 */
export function verificationKeySet(document: unknown, source: string): JSONWebKeySet {
  const keys = filterKeys(keysOf(document, source), source, (k) => k.use === undefined || k.use === 'sig');
  if (keys.length === 0) throw invalid(source, 'has no usable verification key (public RSA/EC/OKP signature key with a "kid")');
  return { keys };
}

/**
 * The JWT-SVID keys of a SPIFFE bundle: only keys with `use: "jwt-svid"` (X.509-SVID roots are
 * ignored). jose only selects keys whose `use` is absent or "sig", so the returned keys carry
 * `use: "sig"`. Throws CONFIG_INVALID naming `source` when the bundle has no usable JWT-SVID key.
 */
export function jwtSvidKeySet(bundle: unknown, source: string): JSONWebKeySet {
  const keys = filterKeys(keysOf(bundle, source), source, (k) => k.use === 'jwt-svid').map((k) => ({ ...k, use: 'sig' }));
  if (keys.length === 0) throw invalid(source, 'has no usable JWT-SVID key (use "jwt-svid", public, with a "kid")');
  return { keys };
}

function defaultAlgorithm(key: JWK): string | undefined {
  if (key.alg !== undefined) return key.alg;
  if (key.kty === 'RSA') return 'RS256';
  if (key.kty === 'OKP') return key.crv === 'Ed25519' ? 'EdDSA' : undefined;
  if (key.kty === 'EC') return ({ 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512' } as Record<string, string>)[key.crv ?? ''];
  return undefined;
}

/**
 * Imports every key once so that a corrupt key, an unsupported curve or an RSA key under
 * 2048 bits fails when the set is loaded, with the source named, not at the first token.
 */
export async function assertKeysImportable(set: JSONWebKeySet, source: string): Promise<void> {
  for (const key of set.keys) {
    const alg = defaultAlgorithm(key);
    if (alg === undefined) throw invalid(source, `key "${key.kid}" has an unsupported type or curve`);
    if (key.kty === 'RSA') {
      let bytes = 0;
      try {
        bytes = typeof key.n === 'string' ? base64url.decode(key.n).length : 0;
      } catch {
        bytes = 0;
      }
      if (bytes < MIN_RSA_MODULUS_BYTES) throw invalid(source, `RSA key "${key.kid}" is shorter than 2048 bits`);
    }
    try {
      await importJWK(key, alg);
    } catch (error) {
      throw invalid(source, `key "${key.kid}" cannot be imported: ${describeError(error)}`);
    }
  }
}
