import { hash, randomFillSync } from 'node:crypto';
import type { Clock, Hasher, IdGenerator } from '@mandate/core';

export const systemClock: Clock = { now: () => Date.now() };

/**
 * CSPRNG bytes drawn 4 KiB at a time: one `randomFillSync` per ~250 ids instead of one per id (a
 * per-id `randomBytes` call was ~4 % of the CPU of an HTTP decision). Every byte is handed out
 * once; the buffer is the pool's own (not Node's shared Buffer pool).
 */
const POOL = Buffer.allocUnsafeSlow(4096);
let poolAt = POOL.length;

/** `bytes` fresh random bytes (at most 256), base64url. */
export function randomBase64url(bytes: number): string {
  if (!(bytes >= 1 && bytes <= 256)) throw new TypeError('randomBase64url takes 1 to 256 bytes');
  if (poolAt + bytes > POOL.length) {
    randomFillSync(POOL);
    poolAt = 0;
  }
  const s = POOL.toString('base64url', poolAt, poolAt + bytes);
  poolAt += bytes;
  return s;
}

/** Crockford base32: ASCII-ordered, so fixed-width numbers in it sort as text */
const SORTABLE = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** the last prefix written, and its millisecond: ids made in the same millisecond share it */
let lastMs = -1;
let lastPrefix = '';

/** milliseconds since the epoch as 10 sortable characters (50 bits: until the year 37,648) */
export function timePrefix(ms: number): string {
  let n = Math.max(0, Math.floor(ms));
  if (n === lastMs) return lastPrefix;
  lastMs = n;
  let out = '';
  for (let i = 0; i < 10; i++) {
    out = SORTABLE.charAt(n % 32) + out;
    n = Math.floor(n / 32);
  }
  lastPrefix = out;
  return out;
}

/**
 * `<prefix>_<creation time, 10 chars><128 random bits, base64url>`: unguessable and URL-safe, and
 * in creation order when sorted, so the indexes keyed by ids (audit records by call id, revoked
 * token ids) grow at their end instead of touching a random page on every insert.
 */
export const randomIds: IdGenerator = { next: (prefix) => `${prefix}_${timePrefix(Date.now())}${randomBase64url(16)}` };

/** one-shot SHA-256 (crypto.hash: no Hash object per call) */
export const sha256Hasher: Hasher = { sha256Hex: (s) => hash('sha256', s, 'hex') };
