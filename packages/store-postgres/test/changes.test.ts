import { describe, expect, it } from 'vitest';
import { seedTask, T0 } from '../../store-testkit/src/index.ts';
import { admin, approval, eventually, freshSchema, recorder, storeHarness } from './support.ts';

const { open, twoNodes, gate: openGate } = storeHarness();

describe('postgres store: change feed', () => {
  it("delivers a change made on one node to the other node's subscriber", async () => {
    const [a, b] = await twoNodes();
    await seedTask(a, 'task-1');
    const { seen, onChange } = recorder();
    const sub = await b.subscribe(onChange);
    expect(sub.connected).toBe(true);
    const started = Date.now();
    await a.tasks.transitionTask('task-1', ['active'], 'killed', T0 + 1, 'operator kill');
    await eventually('node B hears of the kill', () => seen.length === 1);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(seen[0]).toMatchObject({ kind: 'task', key: 'task-1' });
    expect(sub.lastSeq).toBe(seen[0]?.seq);
  });

  it('feeds every change other nodes must learn about, in commit order, and nothing else', async () => {
    const [a, b] = await twoNodes();
    await seedTask(a, 'task-1');
    await a.approvals.createApproval(approval('ap-1', { state: 'pending', decidedAt: undefined, decidedBy: undefined }));
    await a.approvals.createApproval(approval('ap-2', { state: 'pending', decidedAt: undefined, decidedBy: undefined, createdAt: T0 + 1 }));
    const { seen, onChange } = recorder();
    await b.subscribe(onChange);

    const agentId = 'spiffe://acme.test/agents/triage';
    await a.agents.updateAgent(agentId, { status: 'disabled' }, T0 + 1);
    await a.tasks.extendTask('task-1', T0 + 20 * 60_000);
    await a.tasks.extendTask('task-1', T0 + 20 * 60_000); // no change: not fed
    await a.tasks.transitionTask('task-1', ['suspended'], 'active', T0 + 2, 'lost CAS'); // not fed
    await a.tasks.transitionTask('task-1', ['active'], 'suspended', T0 + 2, 'signal');
    await a.revocations.revokeToken('jti-1', 'task-1', T0 + 60_000, 'task suspended', T0 + 2);
    await a.controls.setControl('emergency_stop', { reason: 'drill' }, T0 + 3);
    await a.controls.setControl('emergency_stop', undefined, T0 + 4);
    await a.controls.setControl('never_set', undefined, T0 + 4); // nothing removed: not fed
    await a.approvals.transitionApproval('ap-1', ['pending'], 'approved', { at: T0 + 5, by: 'op' });
    await a.approvals.transitionApproval('ap-1', ['pending'], 'denied', { at: T0 + 5, by: 'op' }); // lost CAS: not fed
    await a.approvals.cancelForTasks(['task-1'], T0 + 6, 'task suspended');
    await a.killOutbox.appendKillEvent({ id: 'kill-1', ts: T0 + 7, kind: 'task', data: { target: { task: 'task-1' } } });

    const expected = [
      ['agent', agentId],
      ['task', 'task-1'],
      ['task', 'task-1'],
      ['revocation', 'jti-1'],
      ['control', 'emergency_stop'],
      ['control', 'emergency_stop'],
      ['approval', 'ap-1'],
      ['approval', 'ap-1'],
      ['approval', 'ap-2'],
      ['kill', 'kill-1'],
    ];
    await eventually('node B hears of every change', () => seen.length >= expected.length);
    expect(seen.map((c) => [c.kind, c.key])).toEqual(expected);
    const seqs = seen.map((c) => c.seq);
    expect([...seqs].sort((x, y) => x - y)).toEqual(seqs);
    expect(await a.changesSince(0, 100)).toEqual(seen);
    expect(await a.changesSince(seqs[5] ?? 0, 2)).toEqual(seen.slice(6, 8));
  });

  it('catches up on a change made while its listener was cut off, once it reconnects', async () => {
    const schema = freshSchema();
    const a = await open(schema);
    const gate = await openGate();
    const b = await open(schema, { url: gate.url });
    const { seen, onChange } = recorder();
    const errors: unknown[] = [];
    const sub = await b.subscribe(onChange, { onError: (e) => errors.push(e) });

    // B's backends are terminated from another connection, and B cannot reconnect meanwhile
    gate.close();
    const ports = gate.upstreamPorts();
    expect(ports.length).toBeGreaterThan(0);
    await admin((c) => c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE client_port = ANY($1::int[])', [ports]));
    await eventually('the listener notices', () => !sub.connected);

    await a.revocations.revokeToken('jti-missed', 'task-1', T0 + 60_000, 'task killed', T0);
    await new Promise((r) => setTimeout(r, 300));
    expect(seen).toEqual([]); // the NOTIFY went to no one

    gate.open();
    await eventually('node B catches up', () => seen.length === 1, 10_000);
    expect(seen[0]).toMatchObject({ kind: 'revocation', key: 'jti-missed' });
    await eventually('the listener is back', () => sub.connected);
    expect(errors.length).toBeGreaterThan(0);

    // and it listens again: the next change arrives by notification
    await a.controls.setControl('emergency_stop', { reason: 'after' }, T0 + 1);
    await eventually('node B hears of the next change', () => seen.length === 2);
    expect(seen[1]).toMatchObject({ kind: 'control', key: 'emergency_stop' });
    expect(sub.lastSeq).toBe(seen[1]?.seq);
  });

  it('replays the feed from a given seq, and from the head by default', async () => {
    const [a, b] = await twoNodes();
    await a.revocations.revokeToken('jti-1', 't', T0 + 1, 'r', T0);
    await a.revocations.revokeToken('jti-2', 't', T0 + 1, 'r', T0);
    const replay = recorder();
    const fresh = recorder();
    await b.subscribe(replay.onChange, { fromSeq: 0 });
    const sub = await b.subscribe(fresh.onChange);
    expect(replay.seen.map((c) => c.key)).toEqual(['jti-1', 'jti-2']);
    expect(sub.lastSeq).toBe(replay.seen[1]?.seq);
    await a.revocations.revokeToken('jti-3', 't', T0 + 1, 'r', T0);
    await eventually('both hear the new change', () => replay.seen.length === 3 && fresh.seen.length === 1);
    expect(fresh.seen[0]?.key).toBe('jti-3');
  });

  it("does not hear another schema's changes", async () => {
    const [a, b] = await twoNodes();
    const other = await open(freshSchema());
    const { seen, onChange } = recorder();
    await b.subscribe(onChange);
    await other.revocations.revokeToken('jti-elsewhere', 't', T0 + 1, 'r', T0);
    await a.revocations.revokeToken('jti-here', 't', T0 + 1, 'r', T0);
    await eventually('B hears its own schema', () => seen.length === 1);
    await new Promise((r) => setTimeout(r, 100));
    expect(seen.map((c) => c.key)).toEqual(['jti-here']);
  });

  it('subscribes at open with onChange, hears its own node too, and stops at close', async () => {
    const schema = freshSchema();
    const { seen, onChange } = recorder();
    const a = await open(schema, { onChange });
    expect(a.feed?.connected).toBe(true);
    await a.controls.setControl('emergency_stop', { reason: 'drill' }, T0);
    await eventually('the feed delivers', () => seen.length === 1);
    await a.close();
    expect(a.feed?.connected).toBe(false);
    await expect(a.subscribe(() => undefined)).rejects.toMatchObject({ code: 'NOT_READY' });
  });

  it('prunes old feed entries, and tells a listener that missed them', async () => {
    const [a, b] = await twoNodes();
    await a.revocations.revokeToken('jti-1', 't', T0 + 1, 'r', T0);
    await a.revocations.revokeToken('jti-2', 't', T0 + 1, 'r', T0);
    const [first, second] = await a.changesSince(0, 10);
    expect(await a.pruneChanges(60_000)).toBe(0);
    await new Promise((r) => setTimeout(r, 20));
    expect(await a.pruneChanges(0)).toBe(2);
    expect(await a.changesSince(0, 10)).toEqual([]);

    const gaps: unknown[] = [];
    const late = recorder();
    const sub = await b.subscribe(late.onChange, { fromSeq: first?.seq, onGap: (g) => gaps.push(g) });
    expect(gaps).toEqual([{ afterSeq: first?.seq, prunedUpto: second?.seq }]);
    expect(sub.lastSeq).toBe(second?.seq);
    const current = await b.subscribe(() => undefined, { onGap: (g) => gaps.push(g) });
    expect(current.lastSeq).toBe(second?.seq);
    expect(gaps).toHaveLength(1);

    await a.revocations.revokeToken('jti-3', 't', T0 + 1, 'r', T0);
    await eventually('the feed carries on after the prune', () => late.seen.length === 1);
    expect(late.seen[0]?.seq).toBeGreaterThan(second?.seq ?? 0);
  });
});
