/**
 * Several nodes share per-agent behaviour counts and chain marks through one table: each node
 * reads every other node's live rows (never its own), the latest write per node and agent wins,
 * expired rows are not read and are pruned, and a malformed row is skipped.
 */
import { describe, expect, it } from 'vitest';
import { mergeShared, type SharedScope } from '@mandate/core';
import { T0 } from '../../store-testkit/src/index.ts';
import { storeHarness } from './support.ts';

const { twoNodes } = storeHarness();

const scope = (agentId: string, calls: number, over: Partial<SharedScope> = {}): SharedScope => ({
  agentId,
  buckets: [[T0, calls, 1]],
  marks: [{ rule: 'secret-then-external', step: 0, until: T0 + 3_600_000, calls: ['call_1'] }],
  expiresAt: T0 + 60_000,
  ...over,
});

describe('postgres store: behaviour shared between nodes', () => {
  it("reads every other node's live rows, never its own, the latest per node and agent", async () => {
    const [a, b] = await twoNodes();
    await a.behaviourShare.publish('node-a', [scope('agent-1', 3), scope('agent-2', 1)]);
    await a.behaviourShare.publish('node-a', [scope('agent-1', 7)]);
    await b.behaviourShare.publish('node-b', [scope('agent-1', 5, { marks: [] })]);
    expect(await a.behaviourShare.read('node-a', T0, 100)).toEqual([scope('agent-1', 5, { marks: [] })]);
    const seenByB = await b.behaviourShare.read('node-b', T0, 100);
    expect(seenByB.sort((x, y) => x.agentId.localeCompare(y.agentId))).toEqual([scope('agent-1', 7), scope('agent-2', 1)]);
    // what a third node makes of both
    const merged = mergeShared([...seenByB, ...(await a.behaviourShare.read('node-a', T0, 100))], 1000);
    expect(merged.get('agent-1')?.buckets).toEqual([[T0, 12, 2]]);
    expect(merged.get('agent-1')?.marks.get('secret-then-external\u00000')).toEqual({ until: T0 + 3_600_000, calls: ['call_1'] });
  });

  it('does not read expired rows, prunes them, and skips a row it cannot parse', async () => {
    const [a, b] = await twoNodes();
    await a.behaviourShare.publish('node-a', [scope('agent-1', 3, { expiresAt: T0 + 10 }), scope('agent-2', 4)]);
    expect((await b.behaviourShare.read('node-b', T0 + 10, 100)).map((s) => s.agentId)).toEqual(['agent-2']);
    expect(await b.behaviourShare.prune(T0 + 10)).toBe(1);
    await a.unsafePool().query("UPDATE behaviour_share SET payload = '{not json' WHERE agent_id = 'agent-2'");
    expect(await b.behaviourShare.read('node-b', T0, 100)).toEqual([]);
  });
});
