import { exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from 'jose';
import type { JsonObject } from '../json.ts';
import type { SigningKey } from '../model.ts';
import type { Clock, IdGenerator, KeyStore } from '../ports.ts';
import { MandateError } from '../errors.ts';

interface Loaded {
  readonly meta: SigningKey;
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
}

/**
 * The Ed25519 signing keys of one purpose (task tokens, audit checkpoints). Generated and stored
 * on first start; rotation makes a new key active and keeps retired ones published (JWKS) for
 * `retainRetiredMs`, long enough for every token they signed to expire.
 */
export class KeyRing {
  private loaded: Loaded[] = [];

  private readonly store: KeyStore;
  private readonly purpose: SigningKey['purpose'];
  private readonly clock: Clock;
  private readonly ids: IdGenerator;
  private readonly retainRetiredMs: number;

  private constructor(store: KeyStore, purpose: SigningKey['purpose'], clock: Clock, ids: IdGenerator, retainRetiredMs: number) {
    this.store = store;
    this.purpose = purpose;
    this.clock = clock;
    this.ids = ids;
    this.retainRetiredMs = retainRetiredMs;
  }

  static async open(store: KeyStore, purpose: SigningKey['purpose'], clock: Clock, ids: IdGenerator, retainRetiredMs: number): Promise<KeyRing> {
    const ring = new KeyRing(store, purpose, clock, ids, retainRetiredMs);
    await ring.reload();
    if (!ring.loaded.some((k) => k.meta.status === 'active')) await ring.rotate();
    return ring;
  }

  /** re-reads the keys from the store (another node may have rotated) */
  async reload(): Promise<void> {
    const metas = await this.store.listKeys(this.purpose);
    const now = this.clock.now();
    const keep = metas.filter((k) => k.status === 'active' || (k.retiredAt !== undefined && now - k.retiredAt < this.retainRetiredMs));
    this.loaded = await Promise.all(
      keep.map(async (meta) => ({
        meta,
        privateKey: (await importJWK(meta.privateJwk as JWK, meta.alg)) as CryptoKey,
        publicKey: (await importJWK(meta.publicJwk as JWK, meta.alg)) as CryptoKey,
      })),
    );
  }

  /** generates a new active key and retires the previous active one */
  async rotate(): Promise<SigningKey> {
    const { publicKey, privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    const kid = this.ids.next('k');
    const now = this.clock.now();
    const pub = { ...(await exportJWK(publicKey)), kid, alg: 'EdDSA', use: 'sig' } as JsonObject;
    const priv = { ...(await exportJWK(privateKey)), kid, alg: 'EdDSA' } as JsonObject;
    const meta: SigningKey = { kid, purpose: this.purpose, alg: 'EdDSA', publicJwk: pub, privateJwk: priv, status: 'active', createdAt: now, retiredAt: undefined };
    const previous = this.loaded.filter((k) => k.meta.status === 'active');
    await this.store.addKey(meta);
    for (const p of previous) await this.store.retireKey(p.meta.kid, now);
    await this.reload();
    return meta;
  }

  active(): { kid: string; privateKey: CryptoKey; privateJwk: JsonObject } {
    // newest active key wins if a concurrent rotation left two
    const act = this.loaded.filter((k) => k.meta.status === 'active').sort((a, b) => b.meta.createdAt - a.meta.createdAt)[0];
    if (!act) throw new MandateError('INTERNAL_ERROR', `no active ${this.purpose} key`);
    return { kid: act.meta.kid, privateKey: act.privateKey, privateJwk: act.meta.privateJwk };
  }

  verificationKey(kid: string): CryptoKey | undefined {
    return this.loaded.find((k) => k.meta.kid === kid)?.publicKey;
  }

  /** public keys by kid, for verifiers */
  publicKeys(): Map<string, JsonObject> {
    return new Map(this.loaded.map((k) => [k.meta.kid, k.meta.publicJwk]));
  }

  jwks(): { keys: JsonObject[] } {
    return { keys: this.loaded.map((k) => k.meta.publicJwk) };
  }
}
