import { describe, expect, it } from 'vitest';
import type { Checkpoint } from '@mandate/core';
import { T0, type GetStore } from './fixtures.ts';

function checkpoint(seq: number): Checkpoint {
  return { seq, headHash: String(seq % 10).repeat(64), ts: T0 + seq, kid: 'audit-key-1', signature: `eyJhbGciOiJFZERTQSJ9.payload-${seq}.sig` };
}

export function checkpointSuite(store: GetStore): void {
  describe('checkpoints', () => {
    it('lists no checkpoints at first', async () => {
      expect(await store().checkpoints.listCheckpoints()).toEqual([]);
    });

    it('returns checkpoints exactly as added, ascending by seq whatever the order they came in', async () => {
      for (const seq of [20, 10, 30]) await store().checkpoints.addCheckpoint(checkpoint(seq));
      expect(await store().checkpoints.listCheckpoints()).toEqual([checkpoint(10), checkpoint(20), checkpoint(30)]);
    });
  });
}
