import { createHash, randomBytes } from 'node:crypto';
import type { Clock, Hasher, IdGenerator } from '@mandate/core';

export const systemClock: Clock = { now: () => Date.now() };

/** `<prefix>_<128 random bits, base64url>`: unguessable, URL-safe. */
export const randomIds: IdGenerator = { next: (prefix) => `${prefix}_${randomBytes(16).toString('base64url')}` };

export const sha256Hasher: Hasher = { sha256Hex: (s) => createHash('sha256').update(s, 'utf8').digest('hex') };
