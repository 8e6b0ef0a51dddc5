import { describe, expect, it } from 'vitest';
import type { Alert, Restriction, Store } from '@mandate/core';
import { T0, type GetStore } from './fixtures.ts';

export function alert(id: string, over: Partial<Alert> = {}): Alert {
  return {
    id,
    ts: T0,
    taskId: 'task-1',
    agentId: 'spiffe://acme.test/agents/triage',
    callId: `call-${id}`,
    tool: 'http.post',
    severity: 'high',
    detectors: ['chains'],
    signals: [{ detector: 'chains', severity: 'high', confidence: 0.9, evidence: { rule: 'secret-then-external', calls: ['c1', 'c2'] } }],
    actions: ['step_up'],
    policyEffect: 'allow',
    finalEffect: 'approval_required',
    state: 'open',
    ackedBy: undefined,
    ackedAt: undefined,
    ackNote: undefined,
    ...over,
  };
}

export function restriction(over: Partial<Restriction> = {}): Restriction {
  return { taskId: 'task-1', agentId: 'spiffe://acme.test/agents/triage', action: 'step_up', tool: '', detector: 'chains', callId: 'c1', reason: 'chains high (0.90)', createdAt: T0, ...over };
}

export function alertSuite(store: GetStore): void {
  describe('alerts', () => {
    it('returns an alert exactly as it was created, and refuses its id twice with CONFLICT', async () => {
      const s = store();
      const a = alert('al-1', { signals: [{ detector: 'drift', severity: 'medium', confidence: 0.75, evidence: { class: 'export', nested: { n: 1, list: ['x'] } } }], detectors: ['drift'] });
      await s.alerts.createAlert(a);
      expect(await s.alerts.getAlert('al-1')).toEqual(a);
      expect(await s.alerts.getAlert('al-none')).toBeUndefined();
      await expect(s.alerts.createAlert({ ...a, tool: 'other' })).rejects.toMatchObject({ code: 'CONFLICT' });
    });

    it('lists by time, filtered by state, task, agent and minimum severity, paged with the after cursor', async () => {
      const s = store();
      await s.alerts.createAlert(alert('b', { ts: T0, severity: 'low' }));
      await s.alerts.createAlert(alert('a', { ts: T0, severity: 'critical' }));
      await s.alerts.createAlert(alert('c', { ts: T0 + 1, taskId: 'task-2', severity: 'medium' }));
      await s.alerts.createAlert(alert('d', { ts: T0 + 2, agentId: 'spiffe://acme.test/agents/other', state: 'acknowledged', ackedBy: 'op-1', ackedAt: T0 + 3, ackNote: 'seen' }));
      const ids = async (o: Parameters<Store['alerts']['listAlerts']>[0]) => (await s.alerts.listAlerts(o)).map((x) => x.id);
      expect(await ids({ limit: 10 })).toEqual(['a', 'b', 'c', 'd']);
      expect(await ids({ limit: 2, after: 'b' })).toEqual(['c', 'd']);
      expect(await ids({ limit: 10, state: 'open', taskId: 'task-1' })).toEqual(['a', 'b']);
      expect(await ids({ limit: 10, agentId: 'spiffe://acme.test/agents/other' })).toEqual(['d']);
      expect(await ids({ limit: 10, minSeverity: 'medium' })).toEqual(['a', 'c', 'd']);
      expect(await ids({ limit: 10, minSeverity: 'critical' })).toEqual(['a']);
      expect(await ids({ limit: 10, after: 'no-such-id' })).toEqual([]);
    });

    it('acknowledges an open alert once, recording who, when and why', async () => {
      const s = store();
      const a = alert('al-1');
      await s.alerts.createAlert(a);
      const first = await s.alerts.ackAlert('al-1', 'op-1', T0 + 5, 'looked at it');
      expect(first).toEqual({ changed: true, alert: { ...a, state: 'acknowledged', ackedBy: 'op-1', ackedAt: T0 + 5, ackNote: 'looked at it' } });
      expect(await s.alerts.ackAlert('al-1', 'op-2', T0 + 6, undefined)).toEqual({ changed: false, alert: first.alert });
      expect(await s.alerts.ackAlert('al-none', 'op-1', T0, undefined)).toEqual({ changed: false, alert: undefined });
      await s.alerts.createAlert(alert('al-2'));
      expect((await s.alerts.ackAlert('al-2', 'op-1', T0, undefined)).alert).toMatchObject({ state: 'acknowledged', ackNote: undefined });
    });
  });
}

export function containmentSuite(store: GetStore): void {
  describe('containment', () => {
    it('keeps restrictions as a union: the first of each (task, action, tool) stays, others are added', async () => {
      const s = store();
      expect(await s.containment.listRestrictions('task-1')).toEqual([]);
      const stepUp = restriction();
      const narrow = restriction({ action: 'narrow', tool: 'http.*', createdAt: T0 + 1, callId: 'c2' });
      await s.containment.addRestrictions([stepUp, narrow]);
      // the same restriction again (another node, a later call) changes nothing
      await s.containment.addRestrictions([{ ...stepUp, callId: 'c9', createdAt: T0 + 9, reason: 'again' }]);
      await s.containment.addRestrictions([restriction({ action: 'narrow', tool: 'mail.send', createdAt: T0 + 2 }), restriction({ action: 'suspend', createdAt: T0 + 3 })]);
      await s.containment.addRestrictions([restriction({ taskId: 'task-2', action: 'kill' })]);
      await s.containment.addRestrictions([]);
      const rows = await s.containment.listRestrictions('task-1');
      expect(rows).toEqual([stepUp, narrow, restriction({ action: 'narrow', tool: 'mail.send', createdAt: T0 + 2 }), restriction({ action: 'suspend', createdAt: T0 + 3 })]);
      expect((await s.containment.listRestrictions('task-2')).map((r) => r.action)).toEqual(['kill']);
    });

    it('lifts exactly the restrictions named (by action, tool and creation time), returns them, and lets a later one be added again', async () => {
      const s = store();
      const stepUp = restriction();
      const narrow = restriction({ action: 'narrow', tool: 'http.*', createdAt: T0 + 1 });
      const kill = restriction({ action: 'kill', createdAt: T0 + 2 });
      await s.containment.addRestrictions([stepUp, narrow, kill, restriction({ taskId: 'task-2' })]);
      expect(await s.containment.liftRestrictions('task-1', [])).toEqual([]);
      // a stale creation time names another restriction: nothing is lifted
      expect(await s.containment.liftRestrictions('task-1', [{ action: 'step_up', tool: '', createdAt: T0 + 99 }])).toEqual([]);
      const lifted = await s.containment.liftRestrictions('task-1', [stepUp, narrow, { action: 'narrow', tool: 'mail.send', createdAt: T0 }]);
      expect(lifted).toEqual(expect.arrayContaining([stepUp, narrow]));
      expect(lifted).toHaveLength(2);
      expect(await s.containment.listRestrictions('task-1')).toEqual([kill]);
      // another task's restrictions are untouched
      expect(await s.containment.listRestrictions('task-2')).toEqual([restriction({ taskId: 'task-2' })]);
      // a signal after the lift restricts the task again
      const again = restriction({ createdAt: T0 + 10, callId: 'c10' });
      await s.containment.addRestrictions([again]);
      expect(await s.containment.listRestrictions('task-1')).toEqual([kill, again]);
    });
  });
}
