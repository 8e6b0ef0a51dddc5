/**
 * Private signing keys at rest (task tokens, the dev issuer, audit checkpoints) are encrypted
 * with a key encryption key (KEK) kept outside the store, so a copy of the database (or of the
 * audit key file) cannot mint task tokens or sign checkpoints.
 *
 * The envelope that takes the private JWK's place: AES-256-GCM, a fresh 96-bit IV per write,
 * the KEK's id (to name the KEK a row needs) and the format version in the clear, and as
 * associated data the version, purpose, kid, algorithm and public key of the row: a ciphertext
 * moved to another row, or a row whose public key was swapped, does not decrypt.
 *
 * The KEK: MANDATE_KEK (base64 of 32 bytes), else `keys.kek_file`, else `<data_dir>/kek.key`,
 * generated on first start (mode 0600) with a warning: next to the database it protects a copy of
 * the database alone, not of the whole folder. Previous KEKs (`keys.previous_kek_files`,
 * MANDATE_KEK_PREVIOUS) are accepted for reading; at start every key under one of them, and every
 * plaintext key left by an older version, is re-encrypted under the current KEK. A key under a
 * KEK that is not configured stops the start with KEK_MISMATCH: never a silent fallback.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, linkSync, openSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { canonicalJson, isJsonObject, MandateError, type JsonObject, type KeyStore, type PrivateKeyRewriter, type SigningKey } from '@mandate/core';

/** the generated KEK's file name in the data folder */
export const KEK_FILE = 'kek.key';
/** the envelope's format version (in the clear and in the associated data) */
const VERSION = 1;
const ALG = 'A256GCM';
const PURPOSES: readonly SigningKey['purpose'][] = ['task-token', 'dev-issuer', 'audit-checkpoint'];

export interface Kek {
  /** `kek_` + 16 hex digits of a SHA-256 of the key: names it without revealing it */
  readonly id: string;
  readonly key: Buffer;
  /** where it came from, for messages (an env name or a path; never the value) */
  readonly source: string;
}

export interface KekSet {
  /** encrypts every write */
  readonly current: Kek;
  /** accepted for reading only; their keys are re-encrypted under `current` at start */
  readonly previous: readonly Kek[];
  /** whether this start generated `current` (no KEK was configured: it sits in the data folder) */
  readonly generated: boolean;
}

export interface KeysConfig {
  readonly kek_file?: string | undefined;
  readonly previous_kek_files: readonly string[];
}

interface Log {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

export function kekId(key: Buffer): string {
  return 'kek_' + createHash('sha256').update('mandate-kek-id\n').update(key).digest('hex').slice(0, 16);
}

/** A KEK from its text: base64 (or base64url) of exactly 32 bytes. Throws CONFIG_INVALID naming `source`. */
export function parseKek(text: string, source: string): Kek {
  const t = text.trim();
  const key = /^[A-Za-z0-9+/_-]{43}=?$/.test(t) ? Buffer.from(t.replace(/-/g, '+').replace(/_/g, '/'), 'base64') : Buffer.alloc(0);
  if (key.length !== 32) throw new MandateError('CONFIG_INVALID', `the key encryption key from ${source} must be base64 of 32 bytes (e.g. \`openssl rand -base64 32\`)`);
  return { id: kekId(key), key, source };
}

function readKekFile(path: string): Kek {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new MandateError('CONFIG_INVALID', `cannot read the key encryption key file ${path}: ${(e as Error).message}`);
  }
  return parseKek(text, path);
}

/**
 * Writes a fresh KEK to `path` (mode 0600; never over an existing file) and returns it. Whole or
 * not at all, and on the disk before any key is encrypted with it: a KEK lost to a crash or a
 * power cut would leave the keys it encrypted unreadable.
 */
export function generateKekFile(path: string): Kek {
  const key = randomBytes(32);
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeFileSync(fd, key.toString('base64') + '\n');
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(tmp, path); // fails when `path` exists: never replaces a KEK
  } finally {
    unlinkSync(tmp);
  }
  const dir = openSync(dirname(path), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
  return { id: kekId(key), key, source: path };
}

function isEnvelope(jwk: JsonObject): boolean {
  return jwk['mandate_enc'] !== undefined;
}

function aad(k: Pick<SigningKey, 'purpose' | 'kid' | 'alg' | 'publicJwk'>): Buffer {
  return Buffer.from(`mandate-signing-key\n${VERSION}\n${k.purpose}\n${k.kid}\n${k.alg}\n${canonicalJson(k.publicJwk)}`);
}

function b64(buf: Buffer): string {
  return buf.toString('base64url');
}

/** The envelope that replaces a key's private JWK in the store. */
export function encryptPrivateJwk(k: SigningKey, kek: Kek): JsonObject {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', kek.key, iv);
  cipher.setAAD(aad(k));
  const ct = Buffer.concat([cipher.update(JSON.stringify(k.privateJwk), 'utf8'), cipher.final()]);
  return { mandate_enc: VERSION, alg: ALG, kek: kek.id, kid: k.kid, iv: b64(iv), ct: b64(ct), tag: b64(cipher.getAuthTag()) };
}

function mismatch(k: SigningKey, why: string): MandateError {
  return new MandateError('KEK_MISMATCH', `signing key ${k.kid} (${k.purpose}) cannot be decrypted: ${why}`, { kid: k.kid, purpose: k.purpose });
}

/** Decrypts a stored key's envelope with the KEK it names. Throws KEK_MISMATCH, never returns a guess. */
export function decryptPrivateJwk(k: SigningKey, keks: KekSet): { jwk: JsonObject; kek: Kek } {
  const env = k.privateJwk;
  if (!isEnvelope(env)) throw mismatch(k, 'it is stored in plain text (start Mandate with a key encryption key to encrypt it)');
  if (env['mandate_enc'] !== VERSION || env['alg'] !== ALG) throw mismatch(k, `unknown envelope version ${JSON.stringify(env['mandate_enc'])}`);
  if (env['kid'] !== k.kid) throw mismatch(k, 'the envelope belongs to another key');
  const kek = [keks.current, ...keks.previous].find((x) => x.id === env['kek']);
  if (!kek) {
    throw mismatch(k, `it is encrypted under ${String(env['kek'])}, which is not configured (current ${keks.current.id} from ${keks.current.source}; set keys.kek_file or MANDATE_KEK to it, or list it in keys.previous_kek_files)`);
  }
  let text: string;
  try {
    const decipher = createDecipheriv('aes-256-gcm', kek.key, Buffer.from(String(env['iv']), 'base64url'));
    decipher.setAAD(aad(k));
    decipher.setAuthTag(Buffer.from(String(env['tag']), 'base64url'));
    text = Buffer.concat([decipher.update(Buffer.from(String(env['ct']), 'base64url')), decipher.final()]).toString('utf8');
  } catch {
    // a wrong key with a colliding id, or a row changed since it was written (kid, public key…)
    throw mismatch(k, `it does not authenticate under ${kek.id} (the row was altered, or the KEK is wrong)`);
  }
  const jwk: unknown = JSON.parse(text);
  if (!isJsonObject(jwk)) throw mismatch(k, 'the decrypted key is not a JWK');
  return { jwk, kek };
}

/** The KeyStore the runtime uses: private keys encrypted on the way in, decrypted on the way out. */
export class EncryptedKeyStore implements KeyStore {
  private readonly inner: KeyStore;
  private readonly keks: KekSet;

  constructor(inner: KeyStore, keks: KekSet) {
    this.inner = inner;
    this.keks = keks;
  }

  async listKeys(purpose: SigningKey['purpose']): Promise<SigningKey[]> {
    return (await this.inner.listKeys(purpose)).map((k) => ({ ...k, privateJwk: decryptPrivateJwk(k, this.keks).jwk }));
  }

  async addKey(key: SigningKey): Promise<void> {
    await this.inner.addKey({ ...key, privateJwk: encryptPrivateJwk(key, this.keks.current) });
  }

  async retireKey(kid: string, at: number): Promise<void> {
    await this.inner.retireKey(kid, at);
  }
}

/**
 * Brings every private key of `store` under `keks.current`: plaintext keys (an older version, or
 * a store from before encryption) are encrypted, keys under a previous KEK re-encrypted, and each
 * key under the current KEK checked to decrypt. Throws KEK_MISMATCH on the first key it cannot
 * read; changes nothing it cannot read. Returns how many keys it rewrote.
 *
 * Several nodes doing this at once write equivalent envelopes (same plaintext, a KEK every node
 * of the rollout accepts); the last write wins and every write is readable.
 */
export async function protectSigningKeys(store: KeyStore & PrivateKeyRewriter, keks: KekSet): Promise<{ encrypted: number; reEncrypted: number }> {
  let encrypted = 0;
  let reEncrypted = 0;
  const all = (await Promise.all(PURPOSES.map((p) => store.listKeys(p)))).flat();
  // read everything first: a mismatch stops the start before any row changed
  const plan = all.map((k) => (isEnvelope(k.privateJwk) ? { k, ...decryptPrivateJwk(k, keks) } : { k, jwk: k.privateJwk, kek: undefined }));
  for (const { k, jwk, kek } of plan) {
    if (kek?.id === keks.current.id) continue;
    await store.replacePrivateKey(k.kid, encryptPrivateJwk({ ...k, privateJwk: jwk }, keks.current));
    if (kek === undefined) encrypted += 1;
    else reEncrypted += 1;
  }
  return { encrypted, reEncrypted };
}

/** Throws KEK_MISMATCH unless every encrypted key of `store` decrypts with `keks`; reads only. */
export async function assertReadable(store: KeyStore, keks: KekSet): Promise<void> {
  for (const p of PURPOSES) for (const k of await store.listKeys(p)) if (isEnvelope(k.privateJwk)) decryptPrivateJwk(k, keks);
}

/** Whether any key of `store` is encrypted (with whatever KEK). */
async function holdsEnvelopes(store: KeyStore): Promise<boolean> {
  for (const p of PURPOSES) if ((await store.listKeys(p)).some((k) => isEnvelope(k.privateJwk))) return true;
  return false;
}

/**
 * The KEKs this node runs with. Without one configured, `<data_dir>/kek.key` is read, or created
 * when none of `stores` holds an encrypted key yet (a store whose keys are encrypted under a KEK
 * that is not here must not be given a new one: KEK_MISMATCH instead).
 */
export async function loadKeks(config: KeysConfig, env: Readonly<Record<string, string | undefined>>, dataDir: string, stores: readonly KeyStore[], log: Log): Promise<KekSet> {
  const previous: Kek[] = config.previous_kek_files.map((f) => readKekFile(resolve(f)));
  const prevEnv = env['MANDATE_KEK_PREVIOUS'];
  if (prevEnv !== undefined && prevEnv.trim() !== '') prevEnv.split(',').forEach((t, i) => previous.push(parseKek(t, `MANDATE_KEK_PREVIOUS[${i}]`)));
  const fromEnv = env['MANDATE_KEK'];
  let current: Kek;
  let generated = false;
  if (fromEnv !== undefined && fromEnv.trim() !== '') {
    current = parseKek(fromEnv, 'MANDATE_KEK');
  } else if (config.kek_file !== undefined) {
    current = readKekFile(resolve(config.kek_file));
  } else {
    const path = join(dataDir, KEK_FILE);
    if (existsSync(path)) {
      current = readKekFile(path);
    } else {
      for (const s of stores) {
        if (await holdsEnvelopes(s)) {
          throw new MandateError('KEK_MISMATCH', `the stored signing keys are encrypted, but no key encryption key is configured (keys.kek_file or MANDATE_KEK) and ${path} does not exist`);
        }
      }
      current = generateKekFile(path);
      generated = true;
      log.warn({ path }, 'generated a key encryption key next to the store: a copy of the whole data folder can still mint tokens; in production keep it elsewhere (keys.kek_file or MANDATE_KEK)');
    }
  }
  return { current, previous: previous.filter((p) => p.id !== current.id), generated };
}
