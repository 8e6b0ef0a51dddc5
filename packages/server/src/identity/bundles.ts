/**
 * Loads the keys that verify workload tokens: trust bundles (a JWKS file, a SPIFFE bundle file or
 * a JWKS URL) and OIDC issuers. The config schema lives with the server config; this takes its
 * parsed entries and turns them into jose key resolvers for the core's WorkloadVerifier.
 */
import { readFile, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { createLocalJWKSet, createRemoteJWKSet, customFetch } from 'jose';
import type { FetchImplementation, JSONWebKeySet, JWTVerifyGetKey } from 'jose';
import { assertKeysImportable, describeError, findDuplicateKey, isValidTrustDomain, jwtSvidKeySet, MandateError, verificationKeySet } from '@mandate/core';
import type { OidcIssuer, TrustBundle } from '@mandate/core';

/** Exactly one of `jwks_file`, `spiffe_bundle_file`, `jwks_url`. */
export interface TrustBundleEntry {
  readonly trust_domain: string;
  readonly jwks_file?: string | undefined;
  readonly spiffe_bundle_file?: string | undefined;
  readonly jwks_url?: string | undefined;
  /** how long fetched keys are trusted before they are fetched again; jwks_url only */
  readonly refresh_interval_ms?: number | undefined;
}

/** Exactly one of `jwks_url`, `jwks_file`. */
export interface OidcIssuerEntry {
  readonly issuer: string;
  readonly audience: string;
  readonly trust_domain: string;
  readonly jwks_url?: string | undefined;
  readonly jwks_file?: string | undefined;
  readonly refresh_interval_ms?: number | undefined;
  readonly subject_claim?: string | undefined;
}

export interface KeyLoadOptions {
  /** relative file paths are resolved against this (e.g. the config file's folder); default: cwd */
  readonly baseDir?: string | undefined;
  /** HTTP timeout for a JWKS fetch; default 5 s */
  readonly fetchTimeoutMs?: number | undefined;
}

/** A key set file or response larger than this is refused. */
export const MAX_KEY_SET_BYTES = 1024 * 1024;
export const DEFAULT_REFRESH_INTERVAL_MS = 5 * 60_000;
/** a kid unknown to the cached set triggers a refetch at most this often */
const MAX_COOLDOWN_MS = 30_000;
const MIN_REFRESH_INTERVAL_MS = 1_000;
const DEFAULT_FETCH_TIMEOUT_MS = 5_000;
const LOOPBACK_HOSTS: ReadonlySet<string> = new Set(['localhost', '127.0.0.1', '[::1]']);

function configError(message: string, details: Record<string, unknown> = {}): MandateError {
  return new MandateError('CONFIG_INVALID', message, details);
}

function requireText(value: unknown, what: string): string {
  if (typeof value !== 'string' || value.trim().length === 0) throw configError(`${what} must be a non-empty string`);
  return value;
}

function requireTrustDomain(value: unknown, what: string): string {
  if (typeof value !== 'string' || !isValidTrustDomain(value)) {
    throw configError(`${what}: "${String(value)}" is not a valid trust domain (lowercase a-z, 0-9, ".", "-", "_")`);
  }
  return value;
}

function exactlyOne<K extends string>(entry: Partial<Record<K, unknown>>, keys: readonly K[], what: string): K {
  const present = keys.filter((k) => entry[k] !== undefined);
  if (present.length !== 1) throw configError(`${what} needs exactly one of ${keys.join(', ')} (got ${present.length === 0 ? 'none' : present.join(', ')})`);
  return present[0] as K;
}

async function readJsonFile(path: string, what: string): Promise<unknown> {
  const source = `${what} "${path}"`;
  let text: string;
  try {
    const info = await stat(path);
    if (!info.isFile()) throw configError(`${source} is not a file`, { path });
    if (info.size > MAX_KEY_SET_BYTES) throw configError(`${source} is ${info.size} bytes, limit ${MAX_KEY_SET_BYTES}`, { path });
    text = await readFile(path, 'utf8');
  } catch (error) {
    if (error instanceof MandateError) throw error;
    throw configError(`${source} cannot be read: ${describeError(error)}`, { path });
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text) as unknown;
  } catch (error) {
    throw configError(`${source} is not valid JSON: ${describeError(error)}`, { path });
  }
  // a key with two "x" (or a set with two "keys") reads differently in different libraries
  const duplicate = findDuplicateKey(text);
  if (duplicate !== undefined) throw configError(`${source} has the member ${JSON.stringify(duplicate.slice(0, 64))} twice in one object`, { path });
  return doc;
}

async function localKeys(set: JSONWebKeySet, source: string): Promise<JWTVerifyGetKey> {
  await assertKeysImportable(set, source);
  return createLocalJWKSet(set);
}

async function keysFromJwksFile(file: string, what: string, opts: KeyLoadOptions): Promise<JWTVerifyGetKey> {
  const path = resolve(opts.baseDir ?? '.', file);
  const source = `${what} "${path}"`;
  return localKeys(verificationKeySet(await readJsonFile(path, what), source), source);
}

/** Only https, except plain http to this machine (tests, a local SPIRE agent). No credentials in the URL. */
function parseJwksUrl(value: string, what: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw configError(`${what}: "${value}" is not a URL`);
  }
  if (url.username !== '' || url.password !== '') throw configError(`${what}: the URL must not carry credentials`);
  if (url.hash !== '') throw configError(`${what}: the URL must not have a fragment`);
  if (url.protocol === 'https:') return url;
  if (url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname)) return url;
  throw configError(`${what}: "${url.origin}" must use https (plain http only to localhost)`);
}

/** fetch with a bound on the response size, so a hostile key server cannot exhaust memory. */
const boundedFetch: FetchImplementation = async (url, options) => {
  const response = await fetch(url, options);
  const declared = Number(response.headers.get('content-length') ?? '0');
  if (declared > MAX_KEY_SET_BYTES) {
    await response.body?.cancel();
    throw new Error(`JWKS response from ${url} is ${declared} bytes, limit ${MAX_KEY_SET_BYTES}`);
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (response.body) {
    for await (const chunk of response.body) {
      size += chunk.byteLength;
      if (size > MAX_KEY_SET_BYTES) {
        await response.body.cancel().catch(() => undefined);
        throw new Error(`JWKS response from ${url} exceeds ${MAX_KEY_SET_BYTES} bytes`);
      }
      chunks.push(chunk);
    }
  }
  const body = Buffer.concat(chunks);
  // as for key files: a member named twice is refused (the fetch fails, so tokens needing it are refused)
  const text = body.toString('utf8');
  let valid = true;
  try {
    JSON.parse(text);
  } catch {
    valid = false; // jose reports a body that is not JSON
  }
  const duplicate = valid ? findDuplicateKey(text) : undefined;
  if (duplicate !== undefined) throw new Error(`JWKS response from ${url} has the member ${JSON.stringify(duplicate.slice(0, 64))} twice in one object`);
  return new Response(body, { status: response.status, headers: response.headers });
};

function keysFromUrl(value: string, refreshMs: number | undefined, what: string, opts: KeyLoadOptions): JWTVerifyGetKey {
  const url = parseJwksUrl(value, what);
  const refresh = refreshMs ?? DEFAULT_REFRESH_INTERVAL_MS;
  if (!Number.isSafeInteger(refresh) || refresh < MIN_REFRESH_INTERVAL_MS) {
    throw configError(`${what}: refresh_interval_ms must be an integer of at least ${MIN_REFRESH_INTERVAL_MS}`);
  }
  const timeout = opts.fetchTimeoutMs ?? DEFAULT_FETCH_TIMEOUT_MS;
  if (!Number.isSafeInteger(timeout) || timeout <= 0) throw new TypeError('fetchTimeoutMs must be a positive integer');
  // jose caches the set for cacheMaxAge, refetches on an unknown kid after the cooldown, and
  // fails closed (the token is refused) when a needed fetch fails
  return createRemoteJWKSet(url, {
    cacheMaxAge: refresh,
    cooldownDuration: Math.min(MAX_COOLDOWN_MS, refresh),
    timeoutDuration: timeout,
    [customFetch]: boundedFetch,
  });
}

/** Builds the trust bundle of one trust domain from its config entry. Throws CONFIG_INVALID naming the file or URL. */
export async function loadTrustBundle(entry: TrustBundleEntry, opts: KeyLoadOptions = {}): Promise<TrustBundle> {
  const trustDomain = requireTrustDomain(entry.trust_domain, 'trust bundle');
  const what = `trust bundle for ${trustDomain}`;
  const source = exactlyOne(entry, ['jwks_file', 'spiffe_bundle_file', 'jwks_url'], what);
  if (source !== 'jwks_url' && entry.refresh_interval_ms !== undefined) throw configError(`${what}: refresh_interval_ms applies to jwks_url only`);
  switch (source) {
    case 'jwks_file':
      return { trustDomain, keys: await keysFromJwksFile(requireText(entry.jwks_file, `${what}: jwks_file`), `${what}: JWKS file`, opts) };
    case 'spiffe_bundle_file': {
      const path = resolve(opts.baseDir ?? '.', requireText(entry.spiffe_bundle_file, `${what}: spiffe_bundle_file`));
      const label = `${what}: SPIFFE bundle file "${path}"`;
      const set = jwtSvidKeySet(await readJsonFile(path, `${what}: SPIFFE bundle file`), label);
      return { trustDomain, keys: await localKeys(set, label) };
    }
    case 'jwks_url':
      return { trustDomain, keys: keysFromUrl(requireText(entry.jwks_url, `${what}: jwks_url`), entry.refresh_interval_ms, `${what}: jwks_url`, opts) };
  }
}

/** Builds one OIDC issuer from its config entry. Throws CONFIG_INVALID naming the issuer and file or URL. */
export async function loadOidcIssuer(entry: OidcIssuerEntry, opts: KeyLoadOptions = {}): Promise<OidcIssuer> {
  const issuer = requireText(entry.issuer, 'OIDC issuer');
  const what = `OIDC issuer ${issuer}`;
  const audience = requireText(entry.audience, `${what}: audience`);
  const trustDomain = requireTrustDomain(entry.trust_domain, what);
  const subjectClaim = entry.subject_claim === undefined ? undefined : requireText(entry.subject_claim, `${what}: subject_claim`);
  const source = exactlyOne(entry, ['jwks_url', 'jwks_file'], what);
  if (source !== 'jwks_url' && entry.refresh_interval_ms !== undefined) throw configError(`${what}: refresh_interval_ms applies to jwks_url only`);
  const keys =
    source === 'jwks_url'
      ? keysFromUrl(requireText(entry.jwks_url, `${what}: jwks_url`), entry.refresh_interval_ms, `${what}: jwks_url`, opts)
      : await keysFromJwksFile(requireText(entry.jwks_file, `${what}: jwks_file`), `${what}: JWKS file`, opts);
  return subjectClaim === undefined ? { issuer, audience, trustDomain, keys } : { issuer, audience, trustDomain, keys, subjectClaim };
}
