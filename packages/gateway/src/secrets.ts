/**
 * Upstream credentials, brokered and never exposed: stored encrypted (AES-256-GCM, the secret's
 * name as associated data so a ciphertext cannot be moved to another name) under `secret.<name>`
 * in the store's controls, decrypted only into one session's upstream connection, and scrubbed
 * from anything that upstream sends back.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { MandateError, type ControlStore, type JsonObject, type JsonValue } from '@mandate/core';
import { SECRET_NAME } from './config.ts';

const PREFIX = 'secret.';
const INDEX = 'secret-index';
/** a stored value is at most this long (an API key, a bearer token, a small JSON credential) */
export const MAX_SECRET_BYTES = 16 * 1024;
/** shorter values could not be told apart from ordinary text when scrubbing responses */
export const MIN_SECRET_CHARS = 8;

/** Reads the 32-byte key: base64 or hex text, from MANDATE_SECRETS_KEY or the configured file. */
export function loadSecretsKey(file: string | undefined, env: Record<string, string | undefined>): Buffer | undefined {
  let text = env['MANDATE_SECRETS_KEY'];
  if ((text === undefined || text === '') && file !== undefined) {
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new MandateError('CONFIG_INVALID', `cannot read the secrets key file ${file}: ${(e as Error).message}`);
    }
  }
  if (text === undefined || text === '') return undefined;
  return parseKey(text.trim());
}

export function parseKey(text: string): Buffer {
  const key = /^[0-9a-fA-F]{64}$/.test(text) ? Buffer.from(text, 'hex') : Buffer.from(text, 'base64');
  if (key.length !== 32) throw new MandateError('CONFIG_INVALID', 'the secrets key must be 32 bytes (64 hex digits or base64)');
  return key;
}

export function checkSecretName(name: string): void {
  if (!SECRET_NAME.test(name)) throw new MandateError('INVALID_ARGUMENT', `secret name must match ${SECRET_NAME.source}`);
}

export interface SecretInfo {
  readonly name: string;
  readonly updatedAt: number;
}

export class SecretVault {
  private readonly controls: ControlStore;
  private readonly key: Buffer | undefined;

  constructor(controls: ControlStore, key: Buffer | undefined) {
    this.controls = controls;
    this.key = key;
  }

  get configured(): boolean {
    return this.key !== undefined;
  }

  private requireKey(): Buffer {
    if (!this.key) throw new MandateError('NOT_READY', 'no secrets key is configured (mcp.secrets_key_file or MANDATE_SECRETS_KEY)', { missing: 'secrets_key' });
    return this.key;
  }

  async set(name: string, value: string, at: number): Promise<void> {
    checkSecretName(name);
    if (typeof value !== 'string' || value.length < MIN_SECRET_CHARS || Buffer.byteLength(value) > MAX_SECRET_BYTES) {
      throw new MandateError('INVALID_ARGUMENT', `a secret value is a string of ${MIN_SECRET_CHARS} characters to ${MAX_SECRET_BYTES} bytes`);
    }
    const key = this.requireKey();
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(Buffer.from(PREFIX + name));
    const ct = Buffer.concat([cipher.update(value, 'utf8'), cipher.final()]);
    const stored: JsonObject = { v: 1, alg: 'A256GCM', iv: iv.toString('base64'), tag: cipher.getAuthTag().toString('base64'), ct: ct.toString('base64'), updated_at: at };
    await this.controls.setControl(PREFIX + name, stored, at);
    const index = await this.names();
    if (!index.some((s) => s.name === name)) index.push({ name, updatedAt: at });
    await this.controls.setControl(INDEX, { names: index.map((s) => s.name) }, at);
  }

  async delete(name: string, at: number): Promise<boolean> {
    checkSecretName(name);
    const had = (await this.controls.getControl(PREFIX + name)) !== undefined;
    await this.controls.setControl(PREFIX + name, undefined, at);
    const index = (await this.names()).filter((s) => s.name !== name);
    await this.controls.setControl(INDEX, { names: index.map((s) => s.name) }, at);
    return had;
  }

  /** Names and times only; a value never leaves except into an upstream. */
  async names(): Promise<SecretInfo[]> {
    const idx = await this.controls.getControl(INDEX);
    const names = Array.isArray(idx?.['names']) ? (idx['names'] as JsonValue[]).filter((n): n is string => typeof n === 'string') : [];
    const out: SecretInfo[] = [];
    for (const name of names) {
      const rec = await this.controls.getControl(PREFIX + name);
      if (rec) out.push({ name, updatedAt: typeof rec['updated_at'] === 'number' ? rec['updated_at'] : 0 });
    }
    return out;
  }

  /** Decrypts one secret; throws NOT_FOUND, or NOT_READY without a key, or INTERNAL on a bad ciphertext. */
  async reveal(name: string): Promise<string> {
    checkSecretName(name);
    const key = this.requireKey();
    const rec = await this.controls.getControl(PREFIX + name);
    if (!rec) throw new MandateError('NOT_FOUND', `secret ${name} is not set`);
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(String(rec['iv']), 'base64'));
      decipher.setAAD(Buffer.from(PREFIX + name));
      decipher.setAuthTag(Buffer.from(String(rec['tag']), 'base64'));
      return Buffer.concat([decipher.update(Buffer.from(String(rec['ct']), 'base64')), decipher.final()]).toString('utf8');
    } catch {
      // never echo the ciphertext or the key's problem in detail
      throw new MandateError('INTERNAL_ERROR', `secret ${name} cannot be decrypted with the configured key`);
    }
  }

  /** Resolves `secret:<name>` references in a map of values (env or headers); plain values pass. */
  async resolve(values: Readonly<Record<string, string>>): Promise<{ values: Record<string, string>; secrets: string[] }> {
    const out: Record<string, string> = {};
    const secrets: string[] = [];
    for (const [k, v] of Object.entries(values)) {
      if (v.startsWith('secret:')) {
        const plain = await this.reveal(v.slice('secret:'.length));
        out[k] = plain;
        secrets.push(plain);
      } else {
        out[k] = v;
      }
    }
    return { values: out, secrets };
  }
}

/**
 * Replaces every occurrence of a leased secret in a value an upstream sent back (also in its
 * JSON-escaped form, as a tool that prints its environment would show it).
 */
export class SecretScrubber {
  private readonly needles: string[];

  constructor(secrets: readonly string[]) {
    const set = new Set<string>();
    for (const s of secrets) {
      if (s.length < MIN_SECRET_CHARS) continue;
      set.add(s);
      const escaped = JSON.stringify(s).slice(1, -1);
      if (escaped !== s) set.add(escaped);
    }
    this.needles = [...set].sort((a, b) => b.length - a.length);
  }

  get active(): boolean {
    return this.needles.length > 0;
  }

  /** True when `text` holds any leased secret. */
  contains(text: string): boolean {
    return this.needles.some((n) => text.includes(n));
  }

  scrubText(text: string): string {
    let out = text;
    for (const n of this.needles) if (out.includes(n)) out = out.split(n).join('[secret withheld by mandate]');
    return out;
  }

  /**
   * `value` with every string (and key) scrubbed: a copy where a secret was found, and the
   * value itself (no copy) where none was, so a clean result costs one scan and no allocation.
   */
  scrub<T>(value: T): T {
    if (!this.active) return value;
    return this.walk(value) as T;
  }

  private walk(v: unknown): unknown {
    if (typeof v === 'string') return this.scrubText(v);
    if (Array.isArray(v)) {
      let out: unknown[] | undefined;
      for (let i = 0; i < v.length; i++) {
        const x: unknown = v[i];
        const y = this.walk(x);
        if (y !== x && out === undefined) out = v.slice(0, i);
        out?.push(y);
      }
      return out ?? v;
    }
    if (v !== null && typeof v === 'object') {
      const obj = v as Record<string, unknown>;
      const keys = Object.keys(obj);
      let out: Record<string, unknown> | undefined;
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i] as string;
        const x = obj[k];
        const k2 = this.scrubText(k);
        const x2 = this.walk(x);
        if (out === undefined && (k2 !== k || x2 !== x)) {
          out = {};
          for (let j = 0; j < i; j++) out[keys[j] as string] = obj[keys[j] as string];
        }
        if (out !== undefined) out[k2] = x2;
      }
      return out ?? v;
    }
    return v;
  }
}
