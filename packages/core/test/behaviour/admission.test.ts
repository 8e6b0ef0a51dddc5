/**
 * Admission accounting in the monitor itself: a call counts for rate, retry and chains in the
 * step that judges it, before any commit or settle, in its task and in its agent (all its tasks
 * and delegates); chain steps leave marks that padding cannot erase; memory stays bounded.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BehaviourMonitor, behaviourCoreConfigSchema, NO_PROVENANCE, type AssessInput, type Assessment, type BehaviourCoreConfigInput, type Effect, type Restriction, type Task, type ToolInfo } from '../../src/index.ts';
import { RingMap, TimeWindow } from '../../src/behaviour/scope.ts';
import { CATALOG, T0 } from './trace.ts';

const AGENT = 'spiffe://acme.test/agents/a';

function task(id: string, agentId = AGENT): Task {
  return {
    id,
    agentId,
    mandate: { purpose: 'Triage tickets and send the summaries by mail.', environment: 'prod', tools: [{ name: '*' }], data_classes: [], budgets: { calls: 100_000 } },
    mandateHash: 'h',
    state: 'active',
    txn: 'txn',
    parentId: undefined,
    depth: 0,
    createdAt: T0,
    expiresAt: T0 + 86_400_000,
    maxExpiresAt: T0 + 86_400_000,
    endedAt: undefined,
    endReason: undefined,
  };
}

function toolInfo(name: string): ToolInfo {
  const c = CATALOG[name] ?? { category: 'unknown', risk: 'unknown', dataClasses: [] };
  return { name, category: c.category, risk: c.risk, dataClasses: c.dataClasses, outputTrust: 'trusted' };
}

function monitor(cfg: BehaviourCoreConfigInput, added: Restriction[] = []): BehaviourMonitor {
  let n = 0;
  return new BehaviourMonitor({
    clock: { now: () => T0 },
    ids: { next: (p) => `${p}_${++n}` },
    config: behaviourCoreConfigSchema.parse(cfg),
    store: { addRestrictions: async (r) => void added.push(...r), listRestrictions: async () => [] },
  });
}

let callN = 0;
function input(t: Task, tool: string, now: number, policy: Effect = 'allow', lineage?: string[]): AssessInput {
  callN += 1;
  return {
    task: t,
    agentType: 'support',
    tool: toolInfo(tool),
    resource: 'ticket:T-1',
    args: { q: String(callN) },
    provenance: NO_PROVENANCE,
    callId: `c${callN}`,
    argsHash: `h${callN}`,
    now,
    policy: { effect: policy, reasons: policy === 'deny' ? ['POLICY_FORBID'] : [] },
    ...(lineage !== undefined ? { lineage } : {}),
  };
}

const summary = (a: Assessment) => `${a.final.effect} ${a.signals.map((s) => `${s.detector}:${s.severity}`).sort().join(',')} ${a.actions.map((x) => x.action).join(',')}`;

describe('a call counts when it is admitted', () => {
  const RULE = { detectors: { rate: { max_per_window: 5 } }, containment: { rules: [{ detector: 'rate' as const, severity: 'high' as const, action: 'suspend' as const }] } };

  it('gives calls judged before any of them settled the outcome of the same calls judged and settled one by one', async () => {
    const one = monitor(RULE);
    const t1 = task('t1');
    await one.load(t1);
    const seq: string[] = [];
    for (let i = 0; i < 20; i++) {
      const a = one.assess(input(t1, 'kb.search', T0));
      one.settle(a, a.final.effect);
      seq.push(summary(a));
    }
    const all = monitor(RULE);
    const t2 = task('t2');
    await all.load(t2);
    const pending = Array.from({ length: 20 }, () => all.assess(input(t2, 'kb.search', T0)));
    expect(pending.map(summary)).toEqual(seq);
    expect(pending.filter((a) => a.final.effect === 'allow')).toHaveLength(10);
    expect(pending[10]?.final.reasons).toEqual(['CONTAINMENT_SUSPENDED']);
  });

  it("applies a kill to the agent's other tasks from the call that decided it, before that call settles", async () => {
    const m = monitor({ detectors: { retry: { max_denied: 3 } }, containment: { rules: [{ detector: 'retry', severity: 'high', action: 'kill' }] } });
    const probing = task('t1');
    const other = task('t2');
    const denied: Assessment[] = [];
    for (let i = 0; i < 6; i++) denied.push(m.assess(input(probing, 'shell.exec', T0, 'deny')));
    expect(denied[5]?.actions.map((x) => x.action)).toEqual(['kill']);
    const next = m.assess(input(other, 'kb.search', T0));
    expect(next.final).toMatchObject({ effect: 'deny', reasons: ['CONTAINMENT_KILLED'] });
  });

  it('counts calls denied by containment as denied for retry, as a suspended task refuses them one by one', () => {
    const m = monitor({ detectors: { rate: { max_per_window: 2 }, retry: { max_denied: 3 } }, containment: { rules: [{ detector: 'rate', severity: 'medium', action: 'suspend' }] } });
    const t = task('t1');
    const got = Array.from({ length: 6 }, () => m.assess(input(t, 'kb.search', T0)));
    // the third call suspends; it and the next two are three denials: a retry loop
    expect(got.map((a) => a.final.effect)).toEqual(['allow', 'allow', 'deny', 'deny', 'deny', 'deny']);
    expect(got[4]?.signals.map((s) => s.detector).sort()).toEqual(['rate', 'retry']);
  });
});

describe('the agent is one actor across its tasks and delegates', () => {
  it('raises the rate signal for calls spread over five tasks, none of which is busy on its own', () => {
    const m = monitor({});
    const tasks = Array.from({ length: 5 }, (_, i) => task(`t${i}`));
    const signals = [];
    for (let i = 0; i < 95; i++) signals.push(...m.assess(input(tasks[i % 5] as Task, 'kb.search', T0 + i * 50)).signals);
    const rate = signals.filter((s) => s.detector === 'rate');
    expect(rate.length).toBeGreaterThan(0);
    expect(rate[0]?.evidence).toMatchObject({ kind: 'ceiling', scope: 'agent', agent_id: AGENT, calls_in_window: 61, max_per_window: 60 });
    // the agent scope switched off: no task is over the ceiling
    const taskOnly = monitor({ detectors: { rate: { scope: { agent: false } } } });
    for (let i = 0; i < 95; i++) expect(taskOnly.assess(input(tasks[i % 5] as Task, 'kb.search', T0 + i * 50)).signals.filter((s) => s.detector === 'rate')).toEqual([]);
  });

  it("counts a delegated task's calls for the agent that delegated it", () => {
    const m = monitor({ detectors: { rate: { max_per_window: 60, agent_max_per_window: 10 } } });
    const own = task('parent');
    const child = { ...task('child', 'spiffe://acme.test/agents/sub'), parentId: 'parent', depth: 1 };
    for (let i = 0; i < 6; i++) expect(m.assess(input(own, 'kb.search', T0)).signals).toEqual([]);
    const out = Array.from({ length: 5 }, () => m.assess(input(child, 'kb.search', T0, 'allow', [AGENT])));
    expect(out[4]?.signals).toEqual([expect.objectContaining({ detector: 'rate', evidence: expect.objectContaining({ scope: 'agent', agent_id: AGENT, calls_in_window: 11 }) })]);
  });

  it('chains a secret read in one task to a send from another task of the same agent', () => {
    const m = monitor({});
    const read = m.assess(input(task('a'), 'vault.read_secret', T0));
    const send = m.assess(input(task('b'), 'http.post', T0 + 60_000));
    expect(send.signals.filter((s) => s.detector === 'chains')).toEqual([
      expect.objectContaining({ evidence: expect.objectContaining({ rule: 'sensitive-read-then-external-send', calls: [read.input.callId, send.input.callId], scope: 'agent' }) }),
    ]);
  });
});

describe('chains are state, not a window', () => {
  // tools that match no step of the default rule
  const UNRELATED = ['kb.search', 'helpdesk.search_tickets', 'helpdesk.draft_reply', 'helpdesk.delete_ticket', 'shell.exec'];
  const HOLD = 3_600_000;
  const padding = fc.array(
    fc.record({ tool: fc.constantFrom(...UNRELATED), policy: fc.constantFrom<Effect>('allow', 'deny', 'approval_required'), task: fc.integer({ min: 0, max: 2 }), gap: fc.integer({ min: 0, max: 120_000 }) }),
    { maxLength: 400 },
  );

  it('never loses the chain signal to calls inserted between its steps, within hold_ms', () => {
    fc.assert(
      fc.property(padding, fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 2 }), (pad, readTask, sendTask) => {
        const m = monitor({ detectors: { rate: { enabled: false }, retry: { enabled: false } } });
        const tasks = [task('a'), task('b'), task('c')];
        let now = T0;
        const read = m.assess(input(tasks[readTask] as Task, 'vault.read_secret', now));
        for (const p of pad) {
          now = Math.min(now + p.gap, T0 + HOLD - 1);
          m.assess(input(tasks[p.task] as Task, p.tool, now, p.policy));
        }
        const send = m.assess(input(tasks[sendTask] as Task, 'http.post', now));
        const chain = send.signals.find((s) => s.detector === 'chains' && s.evidence['rule'] === 'sensitive-read-then-external-send');
        expect(chain?.evidence['calls']).toEqual([read.input.callId, send.input.callId]);
      }),
      { numRuns: 300 },
    );
  });

  it('lets the mark lapse after hold_ms, and never marks a read the policy denied', () => {
    const m = monitor({});
    const t = task('a');
    m.assess(input(t, 'vault.read_secret', T0));
    expect(m.assess(input(t, 'http.post', T0 + 3_600_000)).signals.filter((s) => s.detector === 'chains')).toEqual([]);
    m.assess(input(t, 'vault.read_secret', T0 + 4_000_000, 'deny'));
    expect(m.assess(input(t, 'http.post', T0 + 4_000_001)).signals.filter((s) => s.detector === 'chains')).toEqual([]);
  });
});

describe('bounded memory', () => {
  it('holds at most `capacity` keys in a ring map, keeps a key touched within the last capacity/2 touches, and a busy key cannot flush the others', () => {
    const evicted: string[] = [];
    const m = new RingMap<number>(100, (k) => evicted.push(k));
    for (let i = 0; i < 10_000; i++) {
      m.set(`k${i}`, i);
      expect(m.size).toBeLessThanOrEqual(100);
    }
    expect(m.peek('k9999')).toBe(9999);
    expect(m.peek('k9950')).toBe(9950);
    expect(evicted.length).toBe(10_000 - m.size);
    // one key touched a million times, 40 others touched once each in between: all 41 stay
    const busy = new RingMap<number>(100);
    busy.set('hot', 0);
    for (let i = 0; i < 40; i++) busy.set(`cold${i}`, i);
    for (let i = 0; i < 1_000_000; i++) busy.get('hot');
    for (let i = 0; i < 40; i++) expect(busy.peek(`cold${i}`)).toBe(i);
  });

  it('keeps at most twice the rate ceiling and one admission times per scope, however many calls come', () => {
    const w = new TimeWindow(121);
    for (let i = 0; i < 100_000; i++) w.push(T0);
    expect(w.countSince(T0, 10_000)).toBe(121);
    expect(w.countSince(T0 + 10_000, 10_000)).toBe(0);
  });

  it('remembers at most max_tasks tasks and max_agents agents', () => {
    const m = monitor({ history: { max_tasks: 50, max_agents: 20 } });
    for (let i = 0; i < 500; i++) m.assess(input(task(`t${i}`, `spiffe://acme.test/agents/a${i}`), 'kb.search', T0));
    expect(m.history.taskCount).toBeLessThanOrEqual(50);
    expect(m.history.agentCount).toBeLessThanOrEqual(20);
  });
});

describe('several nodes', () => {
  const share = { bucketMs: 1000 };
  const node = (): BehaviourMonitor => {
    let n = 0;
    return new BehaviourMonitor({ clock: { now: () => T0 }, ids: { next: (p) => `${p}_${++n}` }, config: behaviourCoreConfigSchema.parse({ detectors: { rate: { max_per_window: 10 } } }), store: { addRestrictions: async () => undefined, listRestrictions: async () => [] }, share });
  };

  it("adds the calls, denials and chain marks other nodes shared to the agent's scope, and only to it", () => {
    const [a, b] = [node(), node()];
    for (const m of [a, b]) m.shareIn(m.shareOut(T0)); // sharing on, nothing to share yet
    const read = a.assess(input(task('t1'), 'vault.read_secret', T0));
    for (let i = 0; i < 8; i++) a.assess(input(task('t1'), 'kb.search', T0 + i));
    const rows = a.shareOut(T0 + 10);
    expect(rows).toEqual([expect.objectContaining({ agentId: AGENT, buckets: [[T0, 9, 0]], marks: [expect.objectContaining({ rule: 'sensitive-read-then-external-send', step: 0, calls: [read.input.callId] })] })]);
    expect(a.shareOut(T0 + 10)).toEqual([]); // nothing changed since
    b.shareIn(rows);
    // on node b: 9 calls of the agent elsewhere, so its second call here is the 11th in the window
    expect(b.assess(input(task('t2'), 'kb.search', T0 + 20)).signals.filter((s) => s.detector === 'rate')).toEqual([]);
    const over = b.assess(input(task('t2'), 'kb.search', T0 + 21)).signals.find((s) => s.detector === 'rate');
    expect(over?.evidence).toMatchObject({ scope: 'agent', calls_in_window: 11 });
    const send = b.assess(input(task('t2'), 'http.post', T0 + 22));
    expect(send.signals.find((s) => s.detector === 'chains')?.evidence).toMatchObject({ calls: [read.input.callId, send.input.callId], scope: 'agent' });
    // another agent is untouched by what a shared
    expect(b.assess(input(task('t3', 'spiffe://acme.test/agents/other'), 'http.post', T0 + 23)).signals.filter((s) => s.detector === 'chains' || s.detector === 'rate')).toEqual([]);
  });
});
