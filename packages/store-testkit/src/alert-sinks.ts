import { describe, expect, it } from 'vitest';
import { alert } from './behaviour.ts';
import { T0, type GetStore } from './fixtures.ts';

/** Durable alert delivery: alerts in store order, a cursor and a lease per webhook. */
export function alertSinkSuite(store: GetStore): void {
  describe('alert sinks', () => {
    it('numbers alerts in the order they were stored, whatever their timestamps, and reads them after a place', async () => {
      const s = store();
      expect(await s.alertSinks.alertHead()).toBe(0);
      // stored out of time order: the store's order is what delivery follows
      await s.alerts.createAlert(alert('a3', { ts: T0 + 3 }));
      await s.alerts.createAlert(alert('a1', { ts: T0 + 1 }));
      await s.alerts.createAlert(alert('a2', { ts: T0 + 2 }));
      expect(await s.alertSinks.alertHead()).toBe(3);
      const all = await s.alertSinks.alertsAfter(0, 10);
      expect(all.map((e) => [e.seq, e.alert.id])).toEqual([[1, 'a3'], [2, 'a1'], [3, 'a2']]);
      expect(all[1]?.alert).toEqual(alert('a1', { ts: T0 + 1 }));
      expect((await s.alertSinks.alertsAfter(1, 1)).map((e) => e.alert.id)).toEqual(['a1']);
      expect(await s.alertSinks.alertsAfter(3, 10)).toEqual([]);
      // a refused duplicate takes no place
      await expect(s.alerts.createAlert(alert('a1'))).rejects.toMatchObject({ code: 'CONFLICT' });
      await s.alerts.createAlert(alert('a4'));
      expect((await s.alertSinks.alertsAfter(3, 10)).map((e) => e.seq)).toEqual([4]);
      // an acknowledgement keeps the alert's place and is what a later read sees
      await s.alerts.ackAlert('a3', 'op-1', T0 + 9, 'seen');
      expect((await s.alertSinks.alertsAfter(0, 1))[0]).toMatchObject({ seq: 1, alert: { id: 'a3', state: 'acknowledged' } });
    });

    it('opens a sink once, at the head then, so a new webhook is not sent the past', async () => {
      const s = store();
      await s.alerts.createAlert(alert('old'));
      const opened = await s.alertSinks.openSink('hook-a', T0);
      expect(opened).toEqual({ sink: 'hook-a', cursor: 1, delivered: 0, dropped: 0, owner: undefined, leaseUntil: 0, lastError: undefined, updatedAt: T0 });
      await s.alerts.createAlert(alert('new'));
      // opening again (a restart, another node) keeps the cursor where it was
      expect((await s.alertSinks.openSink('hook-a', T0 + 5)).cursor).toBe(1);
      expect((await s.alertSinks.openSink('hook-b', T0 + 5)).cursor).toBe(2);
      expect((await s.alertSinks.listSinks()).map((x) => x.sink)).toEqual(['hook-a', 'hook-b']);
    });

    it('leases a sink to one owner at a time; the lease renews, expires, and can be given up', async () => {
      const s = store();
      await s.alertSinks.openSink('hook', T0);
      expect(await s.alertSinks.claimSink('hook', 'node-a', T0, T0 + 100)).toMatchObject({ owner: 'node-a', leaseUntil: T0 + 100 });
      expect(await s.alertSinks.claimSink('hook', 'node-b', T0 + 50, T0 + 150)).toBeUndefined();
      expect(await s.alertSinks.claimSink('hook', 'node-a', T0 + 50, T0 + 150)).toMatchObject({ owner: 'node-a', leaseUntil: T0 + 150 });
      // expired: another owner takes it
      expect(await s.alertSinks.claimSink('hook', 'node-b', T0 + 150, T0 + 250)).toMatchObject({ owner: 'node-b' });
      await s.alertSinks.releaseSink('hook', 'node-a'); // not the owner: nothing changes
      expect(await s.alertSinks.claimSink('hook', 'node-a', T0 + 160, T0 + 260)).toBeUndefined();
      await s.alertSinks.releaseSink('hook', 'node-b');
      expect(await s.alertSinks.claimSink('hook', 'node-a', T0 + 160, T0 + 260)).toMatchObject({ owner: 'node-a' });
      expect(await s.alertSinks.claimSink('no-such-sink', 'node-a', T0, T0 + 1)).toBeUndefined();
      // of two owners racing for a free sink, exactly one wins
      await s.alertSinks.openSink('race', T0);
      const won = await Promise.all([s.alertSinks.claimSink('race', 'x', T0, T0 + 100), s.alertSinks.claimSink('race', 'y', T0, T0 + 100)]);
      expect(won.filter((w) => w !== undefined)).toHaveLength(1);
    });

    it('moves the cursor only forward and only for the lease owner, adding the counts and keeping the last error', async () => {
      const s = store();
      await s.alertSinks.openSink('hook', T0);
      await s.alertSinks.claimSink('hook', 'node-a', T0, T0 + 100);
      expect(await s.alertSinks.advanceSink('hook', 'node-a', 5, { delivered: 4, dropped: 1 }, undefined, T0 + 1)).toBe(true);
      expect(await s.alertSinks.advanceSink('hook', 'node-a', 3, { delivered: 0, dropped: 0 }, 'connection refused', T0 + 2)).toBe(true);
      expect(await s.alertSinks.advanceSink('hook', 'node-b', 9, { delivered: 1, dropped: 0 }, undefined, T0 + 3)).toBe(false);
      expect((await s.alertSinks.listSinks())[0]).toEqual({ sink: 'hook', cursor: 5, delivered: 4, dropped: 1, owner: 'node-a', leaseUntil: T0 + 100, lastError: 'connection refused', updatedAt: T0 + 2 });
      expect(await s.alertSinks.advanceSink('hook', 'node-a', 6, { delivered: 1, dropped: 0 }, undefined, T0 + 4)).toBe(true);
      expect((await s.alertSinks.listSinks())[0]).toMatchObject({ cursor: 6, delivered: 5, lastError: undefined });
    });
  });
}
