import { createHash, randomFillSync } from 'node:crypto';
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

/** `<prefix>_<128 random bits, base64url>`: unguessable, URL-safe. */
export const randomIds: IdGenerator = { next: (prefix) => `${prefix}_${randomBase64url(16)}` };

export const sha256Hasher: Hasher = { sha256Hex: (s) => createHash('sha256').update(s, 'utf8').digest('hex') };
