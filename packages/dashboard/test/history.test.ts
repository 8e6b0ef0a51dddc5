/** Decisions read from the audit log at sign-in, and their merge with the live stream (pure; the browser test covers the rest). */
import { describe, expect, it } from 'vitest';
import { decisionsFromAudit, mergeDecisions, type AuditRecord, type Decision } from '../src/api.ts';

let seq = 0;
const rec = (kind: string, callId: string | null, ts: string, data: Record<string, unknown>, taskId: string | null = 'task_1'): AuditRecord => ({
  seq: ++seq,
  ts,
  kind,
  call_id: callId,
  task_id: taskId,
  agent_id: 'spiffe://dev.mandate.local/agents/a',
  data,
  hash: `h${seq}`,
});

describe('decisions from the audit log', () => {
  it('turns decision records into rows, newest first, skipping other kinds', () => {
    const rows = decisionsFromAudit([
      rec('task.started', null, '2026-12-06T04:00:00.000Z', {}),
      rec('decision', 'c1', '2026-12-06T04:00:01.000Z', { tool: 'helpdesk.search_tickets', effect: 'allow', reasons: [], policy_ids: ['org.call.within-task-environment'] }),
      rec('decision', 'c2', '2026-12-06T04:00:02.000Z', { tool: 'fs.read_file', effect: 'deny', reasons: ['ARG_CONSTRAINT_FAILED'], policy_ids: [] }),
    ]);
    expect(rows.map((r) => [r.call_id, r.effect, r.reasons])).toEqual([
      ['c2', 'deny', ['ARG_CONSTRAINT_FAILED']],
      ['c1', 'allow', []],
    ]);
    expect(rows[1]).toMatchObject({ tool: 'helpdesk.search_tickets', policy_ids: ['org.call.within-task-environment'], task_id: 'task_1' });
    expect(rows[1]?.latency_ms).toBeUndefined();
  });

  it('shows the final effect when containment made the call stricter than the policy', () => {
    const rows = decisionsFromAudit([
      rec('decision', 'c1', '2026-12-06T04:00:01.000Z', { tool: 'helpdesk.draft_reply', effect: 'allow', reasons: [], policy_ids: [] }),
      rec('action', 'c1', '2026-12-06T04:00:01.000Z', { final: 'blocked', effect: 'deny', policy_effect: 'allow', reasons: ['CONTAINMENT_NARROWED'] }),
    ]);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ effect: 'deny', reasons: ['CONTAINMENT_NARROWED'] });
  });

  it('matches a call to its action within its own task only (call ids are unique per task)', () => {
    const rows = decisionsFromAudit([
      rec('decision', 'c1', '2026-12-06T04:00:01.000Z', { tool: 't', effect: 'allow', reasons: [], policy_ids: [] }, 'task_1'),
      rec('action', 'c1', '2026-12-06T04:00:02.000Z', { effect: 'deny', reasons: ['CONTAINMENT_NARROWED'] }, 'task_2'),
    ]);
    expect(rows[0]?.effect).toBe('allow');
  });
});

describe('merging history with the live stream', () => {
  const d = (callId: string, ts: string, taskId = 'task_1'): Decision => ({ ts, call_id: callId, task_id: taskId, agent_id: null, tool: 't', effect: 'allow', reasons: [], policy_ids: [] });

  it('lists a call the stream already brought once, newest first, within the bound', () => {
    const live = [d('c3', '2026-12-06T04:00:03.000Z'), d('c2', '2026-12-06T04:00:02.000Z')];
    const history = [d('c2', '2026-12-06T04:00:02.000Z'), d('c1', '2026-12-06T04:00:01.000Z'), d('c2', '2026-12-06T04:00:00.500Z', 'task_2')];
    expect(mergeDecisions(live, history, 10).map((x) => `${x.task_id}/${x.call_id}`)).toEqual(['task_1/c3', 'task_1/c2', 'task_1/c1', 'task_2/c2']);
    expect(mergeDecisions(live, history, 2)).toHaveLength(2);
  });
});
