/**
 * Invariant 2, fail closed: for random calls and random injected failures (store read and write
 * errors, audit commit failures, Cedar evaluation errors, a throwing policy holder, a failing
 * key store behind token verification, a clock jump past the task's expiry, malformed input),
 * decide() never answers allow unless the policy permits the call, and never throws.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DecisionEngine,
  PolicySet,
  callRequest,
  checkCall,
  parseCeiling,
  toolBudget,
  type JsonObject,
  type JsonValue,
  type Task,
} from '@mandate/core';
import { createRuntime, parseConfig, type MandateRuntime } from '../src/index.ts';

const ORG = `
@id("start") permit (principal, action == Mandate::Action::"start_task", resource);
@id("reads") permit (principal, action == Mandate::Action::"call_tool", resource) when { resource.category == "read" || resource.category == "write" };
@id("no-purge") forbid (principal, action == Mandate::Action::"call_tool", resource) when { resource.hasTag("mode") && resource.getTag("mode") == "purge" };
`;
const BROKEN = `${ORG}
@id("broken") forbid (principal, action == Mandate::Action::"call_tool", resource) when { context.time.epoch * 10000000000 > 0 };
`;
const TOOLS = { tools: [{ name: 'kb.search', category: 'read' }, { name: 'kb.write', category: 'write' }, { name: 'net.post', category: 'external_sink' }] };
const MANDATE = {
  purpose: 'property test',
  environment: 'prod',
  ttl: '1h',
  tools: [{ name: 'kb.search' }, { name: 'kb.write', args: { page: { regex: '[a-z]{1,8}' } } }, { name: 'net.post' }],
  budgets: { calls: 40, per_tool: { 'kb.write': 15 } },
};

type Fault = 'none' | 'store-read' | 'budget-read' | 'audit' | 'cedar-error' | 'policies-throw' | 'key-store' | 'clock-jump';

/** Wraps an object so that, while `armed`, its methods throw. Records whether one did. */
class Faults {
  armed: Fault = 'none';
  fired = false;
  wrap<T extends object>(target: T, kind: Fault): T {
    return new Proxy(target, {
      get: (obj, prop, receiver) => {
        const v = Reflect.get(obj, prop, receiver) as unknown;
        if (typeof v !== 'function') return v;
        return (...args: unknown[]) => {
          if (this.armed === kind) {
            this.fired = true;
            return Promise.reject(new Error(`injected ${kind} fault`));
          }
          return (v as (...a: unknown[]) => unknown).apply(obj, args);
        };
      },
    });
  }
}

const toolArb = fc.constantFrom('kb.search', 'kb.search', 'kb.search', 'kb.write', 'kb.write', 'net.post', 'shell.exec', 'bad tool!', '');
const pageArgs: fc.Arbitrary<JsonValue> = fc.record({ page: fc.constantFrom('faq', 'kb', 'x1', 'ABC', 'a'.repeat(9)) });
const argsArb: fc.Arbitrary<JsonValue> = fc.oneof(
  { arbitrary: pageArgs, weight: 4 },
  { arbitrary: fc.record({ mode: fc.constantFrom('purge', 'read') }) as fc.Arbitrary<JsonValue>, weight: 1 },
  { arbitrary: fc.constant({}) as fc.Arbitrary<JsonValue>, weight: 1 },
  { arbitrary: fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<JsonValue>, weight: 1 },
  { arbitrary: fc.constant(JSON.parse('{"__proto__": {"x": 1}}') as JsonValue), weight: 1 },
);
const faultArb = fc.constantFrom<Fault>('none', 'none', 'none', 'store-read', 'budget-read', 'audit', 'cedar-error', 'policies-throw', 'key-store', 'clock-jump');
const tokenArb = fc.constantFrom('good', 'good', 'good', 'garbage', 'empty');

describe('never allow on error (property)', () => {
  let rt: MandateRuntime;
  let root: string;
  let token: string;
  let task: Task;
  const faults = new Faults();
  let engine: DecisionEngine;
  let broken: PolicySet;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'mandate-prop-'));
    const dir = join(root, 'policies');
    mkdirSync(dir);
    writeFileSync(join(dir, 'org.cedar'), ORG);
    writeFileSync(join(dir, 'tools.json'), JSON.stringify(TOOLS));
    rt = await createRuntime(
      parseConfig({ environment: 'prod', data_dir: join(root, 'data'), policies: { dir }, identity: { dev_issuer: { enabled: true, trust_domain: 'test.local' } } }),
      { writeAdminKeyFile: false },
    );
    const agentId = 'spiffe://test.local/agents/prop';
    await rt.agents.createAgent({ id: agentId, owner: 'o', type: 't', status: 'active', ceiling: parseCeiling({}), createdAt: 0, updatedAt: 0 });
    const issued = await rt.tasks.start(await (rt.devIssuer as NonNullable<MandateRuntime['devIssuer']>).mint(agentId, { audience: 'mandate', ttlMs: 60_000 }), MANDATE);
    token = issued.token;
    task = issued.task;
    broken = PolicySet.load([{ source: 'org.cedar', text: BROKEN }], TOOLS, rt.hasher);
    const reads = <T extends object>(x: T): T => faults.wrap(x, 'store-read');
    engine = new DecisionEngine({
      // a clock that jumps two hours ahead while armed: past the task's expiry (and its token's)
      clock: {
        now: () => {
          if (faults.armed !== 'clock-jump') return rt.clock.now();
          faults.fired = true;
          return rt.clock.now() + 2 * 3_600_000;
        },
      },
      ids: rt.ids,
      hasher: rt.hasher,
      // the key store behind token verification fails (a key ring that cannot be read)
      tokens: faults.wrap(rt.tokens, 'key-store'),
      agents: reads(rt.store.agents),
      tasks: reads(rt.store.tasks),
      revocations: reads(rt.store.revocations),
      budgets: faults.wrap(rt.store.budgets, 'budget-read'),
      audit: faults.wrap(rt.store.audit, 'audit'),
      policies: () => {
        if (faults.armed === 'policies-throw') {
          faults.fired = true;
          throw new Error('injected policy holder fault');
        }
        if (faults.armed === 'cedar-error') {
          faults.fired = true;
          return broken;
        }
        return rt.policies.current;
      },
      environment: 'prod',
      limits: { args: { maxDepth: 4, maxEntries: 50, maxStringLength: 1000, maxNodes: 200 } },
    });
  });

  afterAll(async () => {
    await rt.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('answers allow only when the mandate and the policy permit and nothing failed', async () => {
    let allows = 0;
    let faultedCalls = 0;
    await fc.assert(
      fc.asyncProperty(toolArb, argsArb, faultArb, tokenArb, async (tool, args, fault, tokenKind) => {
        const taskToken = tokenKind === 'good' ? token : tokenKind === 'garbage' ? 'x.y.z' : '';
        // the oracle: the mandate and the policy in force, evaluated on their own, before the call
        const usage = await rt.store.budgets.usage(task.id, tool);
        const wellFormed = typeof args === 'object' && args !== null && !Array.isArray(args) && !Object.hasOwn(args, '__proto__') && /^[A-Za-z0-9._:/@-]{1,200}$/.test(tool);
        let permitted = false;
        if (wellFormed && tokenKind === 'good') {
          const info = rt.policies.current.catalog.lookup(tool);
          const m = checkCall(task.mandate, { tool, resource: undefined, args: args as JsonObject, now: rt.clock.now(), toolInfo: info, usage });
          const agent = await rt.store.agents.getAgent(task.agentId);
          const p = rt.policies.current.evaluateCall(
            callRequest({ agent: agent!, task, tool: info, args: args as JsonObject, target: undefined, callId: 'oracle', environment: 'prod', now: rt.clock.now(), usage, delegationChain: [], provenance: { untrusted: [], trusted: [], purpose: [] } }),
          );
          const budgetLeft = usage.calls < (task.mandate.budgets?.calls ?? Infinity) && usage.toolCalls < (toolBudget(task.mandate, tool) ?? Infinity);
          permitted = m.ok && !m.approval && p.decision === 'allow' && budgetLeft;
        }
        faults.armed = fault;
        faults.fired = false;
        let decision;
        try {
          decision = await engine.decide({ taskToken, tool, args: args as JsonObject });
        } finally {
          faults.armed = 'none';
        }
        if (faults.fired) faultedCalls += 1;
        if (decision.effect === 'allow') {
          allows += 1;
          expect(faults.fired).toBe(false);
          expect(permitted).toBe(true);
          expect(decision.auditSeq).toBeGreaterThan(0);
        } else if (faults.fired) {
          expect(decision.reasons.length).toBeGreaterThan(0);
        }
        // completeness: with nothing broken, a permitted call is allowed (the test is not vacuous)
        if (permitted && !faults.fired) expect(decision.effect).toBe('allow');
      }),
      { numRuns: 300, seed: 20261123 },
    );
    expect(allows).toBeGreaterThan(5);
    expect(faultedCalls).toBeGreaterThan(20);
  });
});
