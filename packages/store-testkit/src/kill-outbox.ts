import type { KillEvent } from '@mandate/core';
import { describe, expect, it } from 'vitest';
import { T0, type GetStore } from './fixtures.ts';

export function killEvent(id: string, over: Partial<KillEvent> = {}): KillEvent {
  return { id, ts: T0, kind: 'agent', data: { target: { agent: 'agent-1' }, reason: 'test', killed_tasks: ['t-1', 't-2'] }, ...over };
}

/** The kill hooks' outbox: kills in store order, each hook's sink opened at the head. */
export function killOutboxSuite(store: GetStore): void {
  describe('kill outbox', () => {
    it('numbers kill events in the order they were stored and reads them back whole after a place', async () => {
      const s = store();
      expect(await s.killOutbox.killEventHead()).toBe(0);
      expect(await s.killOutbox.appendKillEvent(killEvent('k2', { ts: T0 + 2 }))).toBe(1);
      expect(await s.killOutbox.appendKillEvent(killEvent('k1', { ts: T0 + 1, kind: 'task', data: { target: { task: 't-9' } } }))).toBe(2);
      expect(await s.killOutbox.appendKillEvent(killEvent('k3', { kind: 'emergency_stop' }))).toBe(3);
      expect(await s.killOutbox.killEventHead()).toBe(3);
      const all = await s.killOutbox.killEventsAfter(0, 10);
      expect(all.map((e) => [e.seq, e.event.id, e.event.kind])).toEqual([[1, 'k2', 'agent'], [2, 'k1', 'task'], [3, 'k3', 'emergency_stop']]);
      expect(all[0]?.event).toEqual(killEvent('k2', { ts: T0 + 2 }));
      expect((await s.killOutbox.killEventsAfter(1, 1)).map((e) => e.event.id)).toEqual(['k1']);
      expect(await s.killOutbox.killEventsAfter(3, 10)).toEqual([]);
      // a refused duplicate takes no place
      await expect(s.killOutbox.appendKillEvent(killEvent('k1'))).rejects.toMatchObject({ code: 'CONFLICT' });
      expect(await s.killOutbox.appendKillEvent(killEvent('k4'))).toBe(4);
    });

    it('gives each of many kills stored at once its own place, with no gap', async () => {
      const s = store();
      const seqs = await Promise.all(Array.from({ length: 20 }, (_, i) => s.killOutbox.appendKillEvent(killEvent(`c${i}`))));
      expect([...seqs].sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    });

    it('opens a kill hook sink once, at the outbox head then, and leases and advances it like an alert sink', async () => {
      const s = store();
      await s.killOutbox.appendKillEvent(killEvent('old'));
      expect(await s.killOutbox.openKillSink('kill-hook:a', T0)).toEqual({ sink: 'kill-hook:a', cursor: 1, delivered: 0, dropped: 0, owner: undefined, leaseUntil: 0, lastError: undefined, updatedAt: T0 });
      await s.killOutbox.appendKillEvent(killEvent('new'));
      // a restart keeps the cursor; a new hook starts at the head
      expect((await s.killOutbox.openKillSink('kill-hook:a', T0 + 5)).cursor).toBe(1);
      expect((await s.killOutbox.openKillSink('kill-hook:b', T0 + 5)).cursor).toBe(2);
      // the alerts' head does not move a kill hook's cursor, nor the other way round
      expect((await s.alertSinks.openSink('alerts', T0)).cursor).toBe(0);
      expect(await s.alertSinks.claimSink('kill-hook:a', 'node-a', T0, T0 + 100)).toMatchObject({ owner: 'node-a', cursor: 1 });
      expect(await s.alertSinks.advanceSink('kill-hook:a', 'node-a', 2, { delivered: 1, dropped: 0 }, undefined, T0 + 1)).toBe(true);
      expect((await s.killOutbox.openKillSink('kill-hook:a', T0 + 6)).cursor).toBe(2);
    });
  });
}
