import { describe, expect, it } from 'vitest';
import { operatorKey, T0, withCode, type GetStore } from './fixtures.ts';

export function operatorSuite(store: GetStore): void {
  describe('operator keys', () => {
    it('finds an operator key by the hash of its secret', async () => {
      const k = operatorKey('op-1', { role: 'approver' });
      await store().operators.createOperatorKey(k);
      expect(await store().operators.findOperatorKeyByHash(k.secretHash)).toEqual(k);
    });

    it('finds nothing for an unknown hash', async () => {
      await store().operators.createOperatorKey(operatorKey('op-1'));
      expect(await store().operators.findOperatorKeyByHash('f'.repeat(64))).toBeUndefined();
    });

    it('ignores revoked keys when looking up by hash', async () => {
      const k = operatorKey('op-1');
      await store().operators.createOperatorKey(k);
      expect(await store().operators.revokeOperatorKey('op-1', T0 + 10)).toBe(true);
      expect(await store().operators.findOperatorKeyByHash(k.secretHash)).toBeUndefined();
    });

    it('reports whether a revocation changed anything', async () => {
      await store().operators.createOperatorKey(operatorKey('op-1'));
      expect(await store().operators.revokeOperatorKey('op-1', T0 + 10)).toBe(true);
      expect(await store().operators.revokeOperatorKey('op-1', T0 + 20)).toBe(false);
      expect(await store().operators.revokeOperatorKey('no-such-key', T0 + 20)).toBe(false);
      const [k] = await store().operators.listOperatorKeys();
      expect(k?.revokedAt).toBe(T0 + 10);
    });

    it('lists every key, revoked ones included, oldest first', async () => {
      const a = operatorKey('op-a', { createdAt: T0 + 2 });
      const b = operatorKey('op-b', { createdAt: T0 + 1, role: 'viewer' });
      await store().operators.createOperatorKey(a);
      await store().operators.createOperatorKey(b);
      await store().operators.revokeOperatorKey('op-a', T0 + 5);
      expect(await store().operators.listOperatorKeys()).toEqual([b, { ...a, revokedAt: T0 + 5 }]);
    });

    it('refuses a duplicate id or a duplicate secret with CONFLICT', async () => {
      const k = operatorKey('op-1');
      await store().operators.createOperatorKey(k);
      await expect(store().operators.createOperatorKey(operatorKey('op-1', { secretHash: 'e'.repeat(64) }))).rejects.toMatchObject(
        withCode('CONFLICT'),
      );
      await expect(store().operators.createOperatorKey(operatorKey('op-2', { secretHash: k.secretHash }))).rejects.toMatchObject(
        withCode('CONFLICT'),
      );
      expect(await store().operators.listOperatorKeys()).toEqual([k]);
    });
  });
}
