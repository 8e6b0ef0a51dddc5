/** The alerts view's merge of listed alerts with live stream events (pure; the browser test covers the rest). */
import { describe, expect, it } from 'vitest';
import { isAlert, mergeAlerts, type Alert } from '../src/api.ts';

const alert = (id: string, ts: string, over: Partial<Alert> = {}): Alert => ({
  id,
  ts,
  task_id: 'task_1',
  agent_id: 'spiffe://dev.mandate.local/agents/a',
  call_id: `call_${id}`,
  tool: 'helpdesk.draft_reply',
  severity: 'medium',
  detectors: ['drift'],
  signals: [{ detector: 'drift', severity: 'medium', confidence: 0.9, evidence: { class: 'write' } }],
  actions: ['narrow'],
  policy_effect: 'allow',
  final_effect: 'deny',
  state: 'open',
  acked_by: null,
  acked_at: null,
  ack_note: null,
  ...over,
});
const ev = (a: Alert, event = 'alert') => ({ ...a, event }) as unknown as Record<string, unknown>;

describe('mergeAlerts', () => {
  it('adds streamed alerts the list does not have yet, newest first', () => {
    const listed = [alert('a1', '2026-01-01T00:00:01.000Z')];
    const merged = mergeAlerts(listed, [ev(alert('a2', '2026-01-01T00:00:02.000Z'))]);
    expect(merged.map((a) => a.id)).toEqual(['a2', 'a1']);
  });

  it('applies an acknowledgement event, and a stale open event never reopens an acknowledged alert', () => {
    const open = alert('a1', '2026-01-01T00:00:01.000Z');
    const acked = alert('a1', '2026-01-01T00:00:01.000Z', { state: 'acknowledged', acked_by: 'op_1', acked_at: '2026-01-01T00:01:00.000Z', ack_note: 'seen' });
    // events arrive newest first in the shell's list
    expect(mergeAlerts([open], [ev(acked, 'alert.acknowledged'), ev(open)])[0]).toMatchObject({ state: 'acknowledged', ack_note: 'seen' });
    expect(mergeAlerts([acked], [ev(open)])[0]?.state).toBe('acknowledged');
  });

  it('ignores stream frames that do not have an alert’s shape', () => {
    const junk = [{ id: 'x' }, { id: 'y', ts: 't', state: 'closed', signals: [], actions: [] }, { id: 'z', ts: 't', state: 'open', signals: 'no', actions: [] }];
    expect(junk.some(isAlert)).toBe(false);
    expect(mergeAlerts([], junk)).toEqual([]);
  });
});
