import { describe, expect, it } from 'vitest';
import { signingKey, T0, withCode, type GetStore } from './fixtures.ts';

export function keySuite(store: GetStore): void {
  describe('signing keys', () => {
    it('lists no keys for a purpose with none', async () => {
      expect(await store().keys.listKeys('task-token')).toEqual([]);
    });

    it('returns keys exactly as added, by purpose, oldest first', async () => {
      const k2 = signingKey('k2', { createdAt: T0 + 2 });
      const k1 = signingKey('k1', { createdAt: T0 + 1 });
      const audit = signingKey('a1', { purpose: 'audit-checkpoint', createdAt: T0 });
      for (const k of [k2, audit, k1]) await store().keys.addKey(k);
      expect(await store().keys.listKeys('task-token')).toEqual([k1, k2]);
      expect(await store().keys.listKeys('audit-checkpoint')).toEqual([audit]);
      expect(await store().keys.listKeys('dev-issuer')).toEqual([]);
    });

    it('refuses to add a key whose kid exists, with CONFLICT', async () => {
      await store().keys.addKey(signingKey('k1'));
      await expect(store().keys.addKey(signingKey('k1', { purpose: 'audit-checkpoint' }))).rejects.toMatchObject(withCode('CONFLICT'));
      expect(await store().keys.listKeys('audit-checkpoint')).toEqual([]);
    });

    it('retires a key, which stays listed so old signatures still verify', async () => {
      const k1 = signingKey('k1');
      await store().keys.addKey(k1);
      await store().keys.retireKey('k1', T0 + 100);
      expect(await store().keys.listKeys('task-token')).toEqual([{ ...k1, status: 'retired', retiredAt: T0 + 100 }]);
    });

    it('keeps the first retirement time when a key is retired twice', async () => {
      await store().keys.addKey(signingKey('k1'));
      await store().keys.retireKey('k1', T0 + 100);
      await store().keys.retireKey('k1', T0 + 200);
      expect((await store().keys.listKeys('task-token'))[0]?.retiredAt).toBe(T0 + 100);
    });

    it("replaces a key's private part (its encryption at rest) and nothing else of it", async () => {
      const k1 = signingKey('k1');
      await store().keys.addKey(k1);
      await store().keys.addKey(signingKey('k2', { createdAt: T0 + 1 }));
      await store().keys.retireKey('k1', T0 + 100);
      const sealed = { mandate_enc: 1, kek: 'kek_0123456789abcdef', kid: 'k1', iv: 'aXY', ct: 'Y3Q', tag: 'dGFn' };
      await store().keys.replacePrivateKey('k1', sealed);
      const [one, two] = await store().keys.listKeys('task-token');
      expect(one).toEqual({ ...k1, privateJwk: sealed, status: 'retired', retiredAt: T0 + 100 });
      expect(two).toEqual(signingKey('k2', { createdAt: T0 + 1 }));
    });

    it('refuses to replace the private part of an unknown key with NOT_FOUND', async () => {
      await expect(store().keys.replacePrivateKey('no-such-kid', { d: 'x' })).rejects.toMatchObject(withCode('NOT_FOUND'));
      expect(await store().keys.listKeys('task-token')).toEqual([]);
    });

    it('refuses to retire an unknown key with NOT_FOUND', async () => {
      await expect(store().keys.retireKey('no-such-kid', T0)).rejects.toMatchObject(withCode('NOT_FOUND'));
    });
  });
}
