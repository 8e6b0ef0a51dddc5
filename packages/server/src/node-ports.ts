import { hash, randomFillSync } from 'node:crypto';
import type { Clock, Hasher, IdGenerator } from '@mandate/core';

export const systemClock: Clock = { now: () => Date.now() };

const ID_BYTES = 16;
/** random bytes fetched 256 ids at a time: one call into the CSPRNG instead of one per id */
const pool = Buffer.alloc(ID_BYTES * 256);
let poolAt = pool.length;

/** Crockford base32: ASCII-ordered, so fixed-width numbers in it sort as text */
const SORTABLE = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** milliseconds since the epoch as 10 sortable characters (50 bits: until the year 37,648) */
function timePrefix(ms: number): string {
  let out = '';
  let n = Math.max(0, Math.floor(ms));
  for (let i = 0; i < 10; i++) {
    out = SORTABLE.charAt(n % 32) + out;
    n = Math.floor(n / 32);
  }
  return out;
}

/**
 * `<prefix>_<creation time, 10 chars><128 random bits, base64url>`: unguessable and URL-safe, and
 * in creation order when sorted, so the indexes keyed by ids (audit records by call id, revoked
 * token ids) grow at their end instead of touching a random page on every insert. Each id's random
 * bytes are used once.
 */
export const randomIds: IdGenerator = {
  next: (prefix) => {
    if (poolAt === pool.length) {
      randomFillSync(pool);
      poolAt = 0;
    }
    const id = pool.toString('base64url', poolAt, poolAt + ID_BYTES);
    poolAt += ID_BYTES;
    return `${prefix}_${timePrefix(Date.now())}${id}`;
  },
};

/** one-shot SHA-256 (crypto.hash: no Hash object per call) */
export const sha256Hasher: Hasher = { sha256Hex: (s) => hash('sha256', s, 'hex') };
