import { randomBytes } from 'node:crypto';
import { MandateError, type Hasher, type IdGenerator, type OperatorKey, type OperatorKeyStore, type OperatorRole } from '@mandate/core';

const RANK: Record<OperatorRole, number> = { viewer: 1, approver: 2, admin: 3 };
const KEY_PREFIX = 'mk_';
const KEY_SHAPE = /^mk_[A-Za-z0-9_-]{43}$/;

export function roleAtLeast(have: OperatorRole, need: OperatorRole): boolean {
  return RANK[have] >= RANK[need];
}

/**
 * Operator API keys: `mk_` + 256 random bits. Only the SHA-256 is stored; the key is shown
 * once, at creation. A JWT (an agent's credential) is never an operator credential.
 */
export class OperatorAuth {
  private readonly store: OperatorKeyStore;
  private readonly hasher: Hasher;
  private readonly ids: IdGenerator;

  constructor(store: OperatorKeyStore, hasher: Hasher, ids: IdGenerator) {
    this.store = store;
    this.hasher = hasher;
    this.ids = ids;
  }

  async create(name: string, role: OperatorRole, at: number, secret?: string): Promise<{ key: OperatorKey; secret: string }> {
    const s = secret ?? KEY_PREFIX + randomBytes(32).toString('base64url');
    if (!KEY_SHAPE.test(s)) throw new MandateError('INVALID_ARGUMENT', 'operator keys look like mk_ followed by 43 base64url characters');
    const key: OperatorKey = { id: this.ids.next('op'), name, role, secretHash: this.hasher.sha256Hex(s), createdAt: at, revokedAt: undefined };
    await this.store.createOperatorKey(key);
    return { key, secret: s };
  }

  /**
   * The operator behind a bearer credential, or a typed error. `sha256` is the credential's hash
   * when the caller already has it (the AuthZEN PEP check hashes it first to look up clients).
   */
  async authenticate(bearer: string | undefined, sha256?: string): Promise<OperatorKey> {
    if (bearer === undefined || bearer === '') throw new MandateError('UNAUTHENTICATED', 'operator API key required');
    if (bearer.split('.').length === 3) throw new MandateError('FORBIDDEN', 'agent credentials cannot call operator endpoints');
    if (!KEY_SHAPE.test(bearer)) throw new MandateError('UNAUTHENTICATED', 'invalid operator API key');
    const key = await this.store.findOperatorKeyByHash(sha256 ?? this.hasher.sha256Hex(bearer));
    if (!key) throw new MandateError('UNAUTHENTICATED', 'invalid operator API key');
    return key;
  }

  async require(bearer: string | undefined, role: OperatorRole): Promise<OperatorKey> {
    const key = await this.authenticate(bearer);
    if (!roleAtLeast(key.role, role)) throw new MandateError('FORBIDDEN', `this needs the ${role} role`);
    return key;
  }

  isKeyShaped(value: string): boolean {
    return KEY_SHAPE.test(value);
  }
}
