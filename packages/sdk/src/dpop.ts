/**
 * Proof of possession (RFC 9449 DPoP) with WebCrypto alone, so it runs wherever `fetch` and
 * `crypto.subtle` do (Node, Deno, Bun, browsers, edge runtimes). A proof is a compact JWS
 * (`typ: dpop+jwt`) over one request: its method, its URL, the time, a unique id, the hash of
 * the token it accompanies (`ath`) and, when the server asks, its nonce.
 */

/** A WebCrypto key as `crypto.subtle` takes it (no DOM lib needed to name it). */
export type WebCryptoKey = Parameters<typeof crypto.subtle.sign>[1];

/**
 * The agent's proof key: a WebCrypto key pair, Ed25519 or ECDSA P-256, e.g.
 * `await crypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify'])`. The
 * private key may (and should) be non-extractable; the public one is always exportable.
 */
export interface DpopKeyPair {
  readonly privateKey: WebCryptoKey;
  readonly publicKey: WebCryptoKey;
}

interface KeyInfo {
  readonly alg: 'EdDSA' | 'ES256';
  readonly sign: Parameters<typeof crypto.subtle.sign>[0];
  /** the public members only, in RFC 7638 order */
  readonly jwk: Readonly<Record<string, string>>;
  readonly jkt: string;
}

const described = new WeakMap<object, Promise<KeyInfo>>();
const encoder = new TextEncoder();

export function base64url(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

async function sha256(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', encoder.encode(text)));
}

function describe(key: DpopKeyPair): Promise<KeyInfo> {
  let p = described.get(key);
  if (p === undefined) {
    p = (async (): Promise<KeyInfo> => {
      if (typeof key !== 'object' || key === null || key.privateKey === undefined || key.publicKey === undefined) throw new TypeError('dpopKey must be a CryptoKeyPair');
      const algo = key.privateKey.algorithm as { name?: string; namedCurve?: string };
      const exported = (await crypto.subtle.exportKey('jwk', key.publicKey)) as Record<string, unknown>;
      const str = (k: string): string => {
        const v = exported[k];
        if (typeof v !== 'string') throw new TypeError(`the DPoP public key has no ${k}`);
        return v;
      };
      let alg: KeyInfo['alg'];
      let sign: KeyInfo['sign'];
      let jwk: Record<string, string>;
      if (algo.name === 'Ed25519') {
        alg = 'EdDSA';
        sign = { name: 'Ed25519' };
        jwk = { crv: 'Ed25519', kty: 'OKP', x: str('x') };
      } else if (algo.name === 'ECDSA' && algo.namedCurve === 'P-256') {
        alg = 'ES256';
        sign = { name: 'ECDSA', hash: 'SHA-256' };
        jwk = { crv: 'P-256', kty: 'EC', x: str('x'), y: str('y') };
      } else {
        throw new TypeError('dpopKey must be an Ed25519 or ECDSA P-256 key pair');
      }
      if (key.privateKey.type !== 'private' || !key.privateKey.usages.includes('sign')) throw new TypeError("dpopKey.privateKey must be a private key with the 'sign' usage");
      // RFC 7638: the required members, lexicographically ordered, no whitespace (jwk is built in that order)
      const jkt = base64url(await sha256(JSON.stringify(jwk)));
      return { alg, sign, jwk, jkt };
    })();
    described.set(key, p);
  }
  return p;
}

/** The RFC 7638 SHA-256 thumbprint of the key: what a task token bound to it carries as `cnf.jkt`. */
export async function dpopThumbprint(key: DpopKeyPair): Promise<string> {
  return (await describe(key)).jkt;
}

/** `ath`: base64url(SHA-256(token)). */
export async function accessTokenHash(token: string): Promise<string> {
  return base64url(await sha256(token));
}

export interface ProofRequest {
  readonly method: string;
  /** the request's URL (query and fragment are left out of `htu`) */
  readonly url: string;
  /** the token sent with the request */
  readonly accessToken: string;
  readonly nonce?: string | undefined;
  /** default Date.now() */
  readonly now?: number | undefined;
  /** default crypto.randomUUID() */
  readonly jti?: string | undefined;
}

/** One DPoP proof (a compact JWS) for one request. */
export async function createDpopProof(key: DpopKeyPair, r: ProofRequest): Promise<string> {
  const info = await describe(key);
  const u = new URL(r.url);
  const header = { typ: 'dpop+jwt', alg: info.alg, jwk: info.jwk };
  const payload = {
    jti: r.jti ?? crypto.randomUUID(),
    htm: r.method.toUpperCase(),
    htu: `${u.protocol}//${u.host}${u.pathname}`,
    iat: Math.floor((r.now ?? Date.now()) / 1000),
    ath: await accessTokenHash(r.accessToken),
    ...(r.nonce !== undefined ? { nonce: r.nonce } : {}),
  };
  const input = `${base64url(encoder.encode(JSON.stringify(header)))}.${base64url(encoder.encode(JSON.stringify(payload)))}`;
  // WebCrypto's ECDSA signature is r‖s (IEEE P1363), which is what JWS ES256 wants
  const sig = new Uint8Array(await crypto.subtle.sign(info.sign, key.privateKey, encoder.encode(input)));
  return `${input}.${base64url(sig)}`;
}
