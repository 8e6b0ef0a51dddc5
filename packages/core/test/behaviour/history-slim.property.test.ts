/**
 * A scope remembers its calls compactly (scope.ts CallRing: times, tool numbers, denied flags and
 * 64-bit argument keys). As a property: over random call sequences (rings that wrap, more tools
 * than a ring holds, denied calls, repeated and differing argument hashes, a clock that steps
 * back), every detector says exactly what it says when the scope keeps the calls themselves, as
 * an array of objects (the reference below).
 */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { behaviourCoreConfigSchema, BehaviourHistory, type CallEvent, type DetectorInput, type Effect, type ScopeView } from '../../src/index.ts';
import { markChains, stepHits } from '../../src/behaviour/chains.ts';
import { runDetectors } from '../../src/behaviour/detect.ts';
import { Scope } from '../../src/behaviour/scope.ts';
import { call, profile, T0, TRIAGE } from './trace.ts';

/** the calls kept as objects, oldest first: what a scope held before CallRing */
class ReferenceScope implements ScopeView {
  readonly kept: CallEvent[] = [];
  /** counts, chain marks and shared state, which CallRing does not change */
  readonly inner: Scope;
  private readonly cap: number;

  constructor(kind: 'task' | 'agent', cap: number) {
    this.inner = new Scope(kind, kind, cap, 1_000);
    this.cap = cap;
  }

  get kind() {
    return this.inner.kind;
  }

  get id() {
    return this.inner.id;
  }

  get size() {
    return this.kept.length;
  }

  tsAt(i: number) {
    return (this.kept[i] as CallEvent).ts;
  }

  deniedAt(i: number) {
    return (this.kept[i] as CallEvent).denied;
  }

  toolAt(i: number) {
    return (this.kept[i] as CallEvent).tool;
  }

  sameCallAt(i: number, tool: string, argsHash: string) {
    const e = this.kept[i] as CallEvent;
    return e.tool === tool && e.argsHash === argsHash;
  }

  calls(now: number, windowMs: number) {
    return this.inner.calls(now, windowMs);
  }

  remoteDenied(now: number, windowMs: number) {
    return this.inner.remoteDenied(now, windowMs);
  }

  mark(ruleId: string, step: number, now: number) {
    return this.inner.mark(ruleId, step, now);
  }

  admit(e: CallEvent) {
    this.kept.push(e);
    if (this.kept.length > this.cap) this.kept.shift();
    this.inner.admit(e);
  }
}

const sha = (s: string) => 'sha256:' + createHash('sha256').update(s).digest('hex');
/** hashes as the engine writes them, and other strings (hashed to 64 bits by the ring) */
const HASHES = [sha('a'), sha('b'), sha('c'), 'x', '', 'sha256:not-hex', 'sha256:0123'];
const TOOLS = ['helpdesk.search_tickets', 'helpdesk.delete_ticket', 'http.post', 'vault.read_secret', 'shell.exec', 'mail.send', ...Array.from({ length: 14 }, (_, i) => `custom.tool_${i}`)];

const step = fc.record({
  dt: fc.integer({ min: -2_000, max: 6_000 }),
  tool: fc.nat({ max: TOOLS.length - 1 }),
  hash: fc.nat({ max: HASHES.length - 1 }),
  effect: fc.constantFrom<Effect>('allow', 'allow', 'deny', 'approval_required'),
  deniedAfter: fc.boolean(),
});

const cfg = behaviourCoreConfigSchema.parse({
  detectors: {
    retry: { window_ms: 20_000, max_denied: 3, max_same: 2 },
    rate: { window_ms: 5_000, max_per_window: 6, min_history: 3, task_factor: 1.5, min_calls: 2 },
  },
}).detectors;

describe('the slim call history', () => {
  it('gives every detector the same answers as a history of call objects', () => {
    fc.assert(
      fc.property(fc.integer({ min: 8, max: 20 }), fc.integer({ min: 8, max: 40 }), fc.array(step, { minLength: 1, maxLength: 120 }), (taskCap, agentCap, steps) => {
        const slim = [new Scope('task', 'task', taskCap, 1_000), new Scope('agent', 'agent', agentCap, 1_000)];
        const ref = [new ReferenceScope('task', taskCap), new ReferenceScope('agent', agentCap)];
        const baseline = new BehaviourHistory().baseline('support');
        const task = profile(TRIAGE);
        let now = T0;
        for (const s of steps) {
          now += s.dt;
          const e = call(TOOLS[s.tool] as string, now, { policyEffect: s.effect, argsHash: HASHES[s.hash] as string });
          const hits = stepHits(cfg.chains.rules, e);
          const base = { now, task, call: e, baseline, volume: { records: 0, bytes: 0, results: 0 } };
          const slimTask = slim[0] as Scope;
          const got = runDetectors({ ...base, history: slimTask.items(), scopes: slim } satisfies DetectorInput, cfg, hits);
          const want = runDetectors({ ...base, history: (ref[0] as ReferenceScope).kept, scopes: ref } satisfies DetectorInput, cfg, hits);
          expect(got).toEqual(want);
          const admitted = s.deniedAfter && !e.denied ? { ...e, denied: true } : e;
          for (const sc of slim) {
            sc.admit(admitted);
            markChains(sc, cfg.chains.rules, admitted, hits, now);
          }
          for (const sc of ref) {
            sc.admit(admitted);
            markChains(sc.inner, cfg.chains.rules, admitted, hits, now);
          }
          // what is kept, read back
          for (let k = 0; k < 2; k++) {
            const a = slim[k] as Scope;
            const b = ref[k] as ReferenceScope;
            expect(a.size).toBe(b.size);
            for (let i = 0; i < a.size; i++) expect([a.tsAt(i), a.toolAt(i), a.deniedAt(i)]).toEqual([b.tsAt(i), b.toolAt(i), b.deniedAt(i)]);
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});
