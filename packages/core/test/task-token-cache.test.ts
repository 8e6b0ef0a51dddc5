/**
 * The verified-token cache forgets expired tokens as new ones come: a renewed task's old token is
 * never looked up again, and it used to stay until the cache was full (tens of MB on a server
 * over many live tasks).
 */
import { describe, expect, it } from 'vitest';
import { KeyRing, TaskTokens, type KeyStore } from '@mandate/core';

type Stored = Awaited<ReturnType<KeyStore['listKeys']>>[number];

function memoryKeys(): KeyStore {
  const keys: Stored[] = [];
  return {
    listKeys: async (purpose) => keys.filter((k) => k.purpose === purpose),
    addKey: async (k) => void keys.push(k),
    retireKey: async () => undefined,
  };
}

describe('the verified task token cache', () => {
  it('forgets expired tokens when a new one is verified, and keeps live ones', async () => {
    let now = Date.UTC(2026, 11, 6, 12);
    const clock = { now: () => now };
    let n = 0;
    const ids = { next: (prefix: string) => `${prefix}_${(n++).toString().padStart(8, '0')}` };
    const ring = await KeyRing.open(memoryKeys(), 'task-token', clock, ids, 3_600_000);
    const tokens = new TaskTokens(ring, { issuer: 'mandate', audience: 'mandate', clock, ids: ids });
    const mint = (task: string, ttlMs: number) => tokens.mint({ agentId: 'spiffe://t/a', taskId: task, mandateHash: 'sha256:' + '0'.repeat(64), txn: `txn-${task}`, expiresAt: now + ttlMs });
    const first = await Promise.all(['t1', 't2', 't3'].map((t) => mint(t, 60_000)));
    for (const f of first) await tokens.verify(f.token);
    expect(tokens.remembered).toBe(3);
    now += 30_000;
    const live = await mint('t4', 300_000);
    await tokens.verify(live.token);
    expect(tokens.remembered).toBe(4);
    // the first three expired: the next token verified takes their place
    now += 31_000;
    const next = await mint('t5', 300_000);
    await tokens.verify(next.token);
    expect(tokens.remembered).toBe(2);
    await expect(tokens.verify(live.token)).resolves.toMatchObject({ task_id: 't4' });
    await expect(tokens.verify(first[0]!.token)).rejects.toMatchObject({ code: 'TOKEN_EXPIRED' });
  });
});
