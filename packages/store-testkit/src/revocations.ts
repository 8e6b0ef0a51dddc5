import { describe, expect, it } from 'vitest';
import { MINUTE, T0, type GetStore } from './fixtures.ts';

const DAY = 24 * 60 * MINUTE;

export function revocationSuite(store: GetStore): void {
  describe('revocations', () => {
    it('reports a token never revoked as not revoked', async () => {
      expect(await store().revocations.isTokenRevoked('jti-unknown')).toBe(false);
    });

    it('reports a revoked token as revoked, and only that token', async () => {
      await store().revocations.revokeToken('jti-1', 'task-1', T0 + 15 * MINUTE, 'task completed', T0);
      expect(await store().revocations.isTokenRevoked('jti-1')).toBe(true);
      expect(await store().revocations.isTokenRevoked('jti-2')).toBe(false);
    });

    it('keeps a token revoked when it is revoked again, even with an earlier expiry', async () => {
      await store().revocations.revokeToken('jti-1', 'task-1', T0 + 15 * MINUTE, 'task completed', T0);
      await store().revocations.revokeToken('jti-1', 'task-1', T0 + 5 * MINUTE, 'task killed', T0 + 1);
      expect(await store().revocations.isTokenRevoked('jti-1')).toBe(true);
    });

    it('keeps an unexpired revocation while many other tokens are revoked later', async () => {
      await store().revocations.revokeToken('jti-long', 'task-1', T0 + 30 * DAY, 'operator kill', T0);
      for (let i = 0; i < 20; i++) {
        await store().revocations.revokeToken(`jti-${i}`, `task-${i}`, T0 + i * DAY + MINUTE, 'task completed', T0 + i * DAY);
      }
      expect(await store().revocations.isTokenRevoked('jti-long')).toBe(true);
      expect(await store().revocations.isTokenRevoked('jti-19')).toBe(true);
    });

    it('uses a key once: the first useOnce records it, every later one is refused', async () => {
      expect(await store().revocations.useOnce('wl:1', 'task-1', T0 + 10 * MINUTE, 'used for a delegation', T0)).toBe(true);
      expect(await store().revocations.isTokenRevoked('wl:1')).toBe(true);
      expect(await store().revocations.useOnce('wl:1', 'task-2', T0 + 20 * MINUTE, 'used for a delegation', T0 + 1)).toBe(false);
      expect(await store().revocations.useOnce('wl:2', 'task-2', T0 + 10 * MINUTE, 'used for a delegation', T0 + 1)).toBe(true);
    });

    it('counts a key revoked through revokeToken as used', async () => {
      await store().revocations.revokeToken('wl:1', 'task-1', T0 + 10 * MINUTE, 'operator', T0);
      expect(await store().revocations.useOnce('wl:1', 'task-2', T0 + 10 * MINUTE, 'used for a delegation', T0 + 1)).toBe(false);
    });

    it('lets exactly one of many concurrent uses of one key through', async () => {
      for (let round = 0; round < 5; round++) {
        const results = await Promise.all(
          Array.from({ length: 16 }, (_, i) => store().revocations.useOnce(`wl:race-${round}`, `task-${i}`, T0 + 10 * MINUTE, 'used for a delegation', T0 + i)),
        );
        expect(results.filter((r) => r)).toHaveLength(1);
      }
    });

    it('keeps a used key used while other keys are used and pruned later', async () => {
      await store().revocations.useOnce('wl:long', 'task-1', T0 + 30 * DAY, 'used for a delegation', T0);
      for (let i = 0; i < 5; i++) await store().revocations.useOnce(`wl:${i}`, `task-${i}`, T0 + i * DAY + MINUTE, 'used for a delegation', T0 + i * 3 * DAY);
      expect(await store().revocations.useOnce('wl:long', 'task-2', T0 + 30 * DAY, 'used for a delegation', T0 + 20 * DAY)).toBe(false);
    });

    it('records concurrent revocations of the same token without error', async () => {
      await Promise.all(
        Array.from({ length: 10 }, (_, i) => store().revocations.revokeToken('jti-1', 'task-1', T0 + MINUTE, `reason ${i}`, T0 + i)),
      );
      expect(await store().revocations.isTokenRevoked('jti-1')).toBe(true);
    });
  });
}
