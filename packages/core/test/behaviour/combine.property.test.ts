/**
 * The seed rule, as a property: whatever the policy said, whatever the task's history and
 * whatever signals and containment there are, the final answer is never more permissive than
 * the policy's decision (allow > approval_required > deny).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BehaviourMonitor,
  CONTAINMENT_ACTIONS,
  DETECTORS,
  SEVERITIES,
  applyActions,
  behaviourCoreConfigSchema,
  permissiveness,
  planActions,
  restrict,
  type ContainmentState,
  type Effect,
  type ReasonCode,
  type Restriction,
  type Signal,
  type Task,
} from '../../src/index.ts';
import { CATALOG, T0 } from './trace.ts';

const effect = fc.constantFrom<Effect>('allow', 'approval_required', 'deny');
const reasons = fc.array(fc.constantFrom<ReasonCode>('POLICY_FORBID', 'APPROVAL_REQUIRED', 'NO_PERMITTING_POLICY'), { maxLength: 2 });
const tools = Object.keys(CATALOG);
const tool = fc.constantFrom(...tools, 'other.tool');
const state: fc.Arbitrary<ContainmentState> = fc.record({
  stepUp: fc.boolean(),
  narrowed: fc.array(fc.constantFrom(...tools, '*', 'http.*', 'helpdesk.*'), { maxLength: 3 }),
  suspended: fc.boolean(),
  killed: fc.boolean(),
});
const signal: fc.Arbitrary<Signal> = fc.record({
  detector: fc.constantFrom(...DETECTORS),
  severity: fc.constantFrom(...SEVERITIES),
  confidence: fc.double({ min: 0, max: 1, noNaN: true }),
  evidence: fc.constant({}),
});
const rule = fc.record({
  detector: fc.constantFrom<(typeof DETECTORS)[number] | '*'>('*', ...DETECTORS),
  severity: fc.constantFrom(...SEVERITIES),
  min_confidence: fc.double({ min: 0, max: 1, noNaN: true }),
  action: fc.constantFrom(...CONTAINMENT_ACTIONS),
});

describe('restrict: final = policy restricted by containment', () => {
  it('is never more permissive than the policy, for any policy, containment and call', () => {
    fc.assert(
      fc.property(effect, reasons, state, tool, fc.boolean(), (e, r, s, t, sensitive) => {
        const final = restrict({ effect: e, reasons: r }, { state: s, tool: t, sensitive });
        expect(permissiveness(final.effect)).toBeLessThanOrEqual(permissiveness(e));
        if (final.restrictedBy === undefined) expect(final).toEqual({ effect: e, reasons: r, restrictedBy: undefined });
      }),
      { numRuns: 2000 },
    );
  });

  it('keeps a deny a deny whatever the containment says', () => {
    fc.assert(
      fc.property(state, tool, fc.boolean(), (s, t, sensitive) => {
        expect(restrict({ effect: 'deny', reasons: ['POLICY_FORBID'] }, { state: s, tool: t, sensitive }).effect).toBe('deny');
      }),
    );
  });

  it('only ever adds restrictions when signals are applied to a state', () => {
    fc.assert(
      fc.property(state, fc.array(signal, { maxLength: 6 }), fc.array(rule, { maxLength: 6 }), tool, (s, sigs, rules, t) => {
        const next = applyActions(s, planActions(sigs, rules.map((x) => ({ ...x, rule: undefined, tools: undefined })), t));
        expect(next.stepUp || !s.stepUp).toBe(true);
        expect(next.suspended || !s.suspended).toBe(true);
        expect(next.killed || !s.killed).toBe(true);
        for (const g of s.narrowed) expect(next.narrowed).toContain(g);
      }),
    );
  });
});

describe('the behaviour monitor', () => {
  const task = (id: string): Task => ({
    id,
    agentId: 'spiffe://acme.test/agents/a',
    mandate: { purpose: 'Triage tickets.', environment: 'prod', tools: [{ name: '*' }], data_classes: [], budgets: { calls: 100 } },
    mandateHash: 'h',
    state: 'active',
    txn: 'txn',
    parentId: undefined,
    depth: 0,
    createdAt: T0,
    expiresAt: T0 + 3_600_000,
    maxExpiresAt: T0 + 3_600_000,
    endedAt: undefined,
    endReason: undefined,
  });
  const step = fc.record({ tool, policy: effect, untrusted: fc.boolean(), gap: fc.integer({ min: 0, max: 20_000 }) });

  it('never answers more permissively than the policy, over random histories, containment rules and stored restrictions', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(step, { minLength: 1, maxLength: 40 }),
        fc.array(rule, { maxLength: 5 }),
        fc.array(fc.constantFrom<Restriction['action']>('step_up', 'narrow', 'suspend', 'kill'), { maxLength: 2 }),
        async (steps, rules, stored) => {
          const rows: Restriction[] = stored.map((action) => ({ taskId: 't1', agentId: 'a', action, tool: action === 'narrow' ? 'http.*' : '', detector: 'x', callId: 'c', reason: 'r', createdAt: T0 }));
          const added: Restriction[] = [];
          let n = 0;
          const monitor = new BehaviourMonitor({
            clock: { now: () => T0 },
            ids: { next: (p) => `${p}_${++n}` },
            config: behaviourCoreConfigSchema.parse({ containment: { rules }, detectors: { novelty: { min_observations: 3 }, rate: { max_per_window: 5, min_calls: 2 } } }),
            store: { addRestrictions: async (r) => void added.push(...r), listRestrictions: async () => rows },
          });
          const t = task('t1');
          await monitor.load(t);
          let now = T0;
          for (const [i, s] of steps.entries()) {
            now += s.gap;
            const c = CATALOG[s.tool] ?? { category: 'unknown', risk: 'unknown', dataClasses: [] };
            const a = monitor.assess({
              task: t,
              agentType: 'support',
              tool: { name: s.tool, category: c.category, risk: c.risk, dataClasses: c.dataClasses, outputTrust: 'trusted' },
              resource: 'ticket:T-1',
              args: { to: 'x@example.com' },
              provenance: { untrusted: s.untrusted ? ['to'] : [], trusted: [], purpose: [] },
              callId: `c${i}`,
              argsHash: `h${i}`,
              now,
              policy: { effect: s.policy, reasons: [] },
            });
            expect(permissiveness(a.final.effect)).toBeLessThanOrEqual(permissiveness(s.policy));
            // a stored restriction that applies to this call always restricts an allow
            if (s.policy === 'allow' && (stored.includes('suspend') || stored.includes('kill'))) expect(a.final.effect).toBe('deny');
            monitor.settle(a, a.final.effect);
          }
          // whatever was added is a restriction, never a release
          for (const r of added) expect(['step_up', 'narrow', 'suspend', 'kill']).toContain(r.action);
        },
      ),
      { numRuns: 300 },
    );
  });
});
