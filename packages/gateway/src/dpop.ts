/**
 * Proof of possession at the MCP gateway (RFC 9449). Every HTTP request to /mcp that carries a
 * key-bound task token (`cnf.jkt`) must carry a fresh `DPoP` proof for that request (its method,
 * the public URL of /mcp, the token's hash). The server's route verifies the proof; the gateway
 * refuses a request without a valid one (401, `WWW-Authenticate: DPoP`, the DPOP_* reason) and
 * hands the verified proof to every decision the request leads to.
 *
 * The client side lives here too: `dpopFetch` signs each request of an MCP client (the stdio
 * relay uses it with the key in MANDATE_DPOP_KEY_FILE) and answers a nonce challenge once.
 */
import { createHash, randomUUID, webcrypto } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createProof, MandateError, type DpopAlgorithm, type Hasher, type ProofKey, type ProofResult } from '@mandate/core';

/** Where the verified proof of one HTTP request travels to the session's handlers (`AuthInfo.extra`). */
export const PROOF_EXTRA = 'mandate/dpop';

/** What the session's handlers get for one request: the token it came with and its verified proof. */
export interface RequestAuth {
  readonly token: string;
  readonly proof: ProofResult | undefined;
}

/** The `WWW-Authenticate` challenge for a refused proof (RFC 9449 §7.1, §8). */
export function dpopChallenge(reason: string): string {
  return reason === 'DPOP_NONCE_REQUIRED' ? 'DPoP error="use_dpop_nonce", error_description="use the nonce in the DPoP-Nonce header", algs="EdDSA ES256"' : 'DPoP error="invalid_dpop_proof", algs="EdDSA ES256"';
}

const sha256Hasher: Hasher = { sha256Hex: (s) => createHash('sha256').update(s, 'utf8').digest('hex') };

/**
 * Reads a private JWK (Ed25519 `OKP` or P-256 `EC`) for proofs. The file holds the private key:
 * keep it readable by the agent's user alone. Throws CONFIG_INVALID with the reason.
 */
export async function loadDpopKey(file: string): Promise<ProofKey> {
  let jwk: Record<string, unknown>;
  try {
    const text = readFileSync(file, 'utf8');
    if (text.length > 16 * 1024) throw new Error('larger than 16 KiB');
    jwk = JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw new MandateError('CONFIG_INVALID', `cannot read the DPoP key file ${file}: ${(e as Error).message}`);
  }
  return importDpopKey(jwk);
}

/** A private JWK as a signing key for proofs. */
export async function importDpopKey(jwk: Record<string, unknown>): Promise<ProofKey> {
  if (typeof jwk !== 'object' || jwk === null || typeof jwk['d'] !== 'string') throw new MandateError('CONFIG_INVALID', 'the DPoP key must be a private JWK (with "d")');
  let alg: DpopAlgorithm;
  let params: webcrypto.AlgorithmIdentifier | webcrypto.EcKeyImportParams;
  if (jwk['kty'] === 'OKP' && jwk['crv'] === 'Ed25519') {
    alg = 'EdDSA';
    params = { name: 'Ed25519' };
  } else if (jwk['kty'] === 'EC' && jwk['crv'] === 'P-256') {
    alg = 'ES256';
    params = { name: 'ECDSA', namedCurve: 'P-256' };
  } else {
    throw new MandateError('CONFIG_INVALID', 'the DPoP key must be an Ed25519 (OKP) or P-256 (EC) JWK');
  }
  let privateKey: webcrypto.CryptoKey;
  try {
    privateKey = await webcrypto.subtle.importKey('jwk', jwk as webcrypto.JsonWebKey, params, false, ['sign']);
  } catch (e) {
    throw new MandateError('CONFIG_INVALID', `the DPoP key cannot be imported: ${(e as Error).message}`);
  }
  const { kty, crv, x, y } = jwk as { kty: string; crv: string; x: string; y?: string };
  return { privateKey: privateKey as ProofKey['privateKey'], alg, publicJwk: { kty, crv, x, ...(y !== undefined ? { y } : {}) } };
}

export interface DpopFetchOptions {
  readonly key: ProofKey;
  /** the token each request carries (the proof's `ath` is its hash) */
  readonly token: () => string;
  /** the URL the server knows /mcp by (its `server.public_url` + /mcp); default: the request URL */
  readonly htu?: string | undefined;
  readonly fetch?: typeof fetch | undefined;
  readonly now?: (() => number) | undefined;
}

/**
 * A `fetch` for an MCP client transport that presents the task token and a fresh proof on every
 * request, remembers the server's `DPoP-Nonce`, and repeats a request refused with
 * `use_dpop_nonce` once with the new nonce.
 */
export function dpopFetch(o: DpopFetchOptions): typeof fetch {
  const f = o.fetch ?? fetch;
  const now = o.now ?? Date.now;
  let nonce: string | undefined;
  const attempt = async (input: string | URL | Request, init: RequestInit | undefined): Promise<Response> => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const method = (init?.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase();
    const token = o.token();
    const headers = new Headers(init?.headers);
    headers.set('authorization', `Bearer ${token}`);
    headers.set('dpop', await createProof({ key: o.key, method, htu: o.htu ?? url, accessToken: token, now: now(), jti: randomUUID(), nonce, hasher: sha256Hasher }));
    const res = await f(input, { ...init, headers });
    const given = res.headers.get('dpop-nonce');
    if (given !== null && given !== '') nonce = given;
    return res;
  };
  return (async (input: string | URL | Request, init?: RequestInit) => {
    const res = await attempt(input, init);
    if (res.status === 401 && /error="use_dpop_nonce"/.test(res.headers.get('www-authenticate') ?? '')) {
      await res.body?.cancel().catch(() => undefined);
      return attempt(input, init);
    }
    return res;
  }) as typeof fetch;
}
