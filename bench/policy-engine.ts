/**
 * Policy engine benchmark (issue 10): the compiled evaluator (compile.ts) against cedar-wasm on
 * the same request and policy set, for 50 and 500 policies and 100 and 10,000 entities.
 *
 *   node bench/policy-engine.ts [--quick] [--json-only] [--out DIR]
 *
 * Per configuration, three figures, one core, synchronous calls:
 * - compiled: PolicySet (engine 'compiled').evaluateCall — request shape check + compiled policies;
 * - cedar:    PolicySet (engine 'cedar').evaluateCall — what Mandate did before, narrowing included;
 * - raw:      cedar-wasm statefulIsAuthorized on the whole preparsed set (no narrowing).
 * The policy set is realistic in shape: many tool-scoped permits, argument guards and call
 * ceilings (the decision benchmark's families, repeated over more tool families), and a few
 * organisation-wide forbids. Every path must give the same answer before anything is timed.
 */
import { createHash } from 'node:crypto';
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { CEDAR_SCHEMA, PolicySet, type CedarRequest, type PolicyResult } from '@mandate/core';
import { type BenchResult, type Figure, emitResult, figure, newResult, parseBenchArgs, startInfo, printer } from './lib/report.ts';
import { timeSync, type LoopOptions } from './lib/stats.ts';
import { heapInUse, shippedHeap } from './lib/shipped-heap.ts';

const hasher = { sha256Hex: (s: string) => createHash('sha256').update(s).digest('hex') };
const CALL = 'action == Mandate::Action::"call_tool"';

/** `count` policies: 4 org-wide forbids, then per tool family a permit, a guard and a ceiling. */
export function policyText(count: number): string {
  const out = [
    `@id("org.env") forbid (principal, ${CALL}, resource) when { context.environment != context.task.environment };`,
    `@id("org.depth") forbid (principal, ${CALL}, resource) when { context.task.depth > 3 || context.delegation_chain.contains("spiffe://untrusted.example/a") };`,
    `@id("org.pii") forbid (principal, ${CALL}, resource) when { resource.data_classes.contains("customer-pii") && !context.task.data_classes.contains("customer-pii") };`,
    `@id("org.night") forbid (principal, ${CALL}, resource) when { resource.risk == "critical" && (context.time.hour < 6 || context.time.hour >= 22) };`,
  ];
  for (let f = 0; out.length < count; f++) {
    const scope = `resource.name like "fam${f}.*"`;
    out.push(`@id("fam${f}.permit") permit (principal, ${CALL}, resource) when { ${scope} && context.task.environment == context.environment && (resource.category == "read" || context.task.data_classes.containsAll(resource.data_classes)) };`);
    if (out.length < count) out.push(`@id("fam${f}.guard") forbid (principal, ${CALL}, resource) when { ${scope} && resource.hasTag("visibility") && resource.getTag("visibility") like "public*" };`);
    if (out.length < count) out.push(`@id("fam${f}.ceiling") forbid (principal, ${CALL}, resource) when { ${scope} && context.task.tool_calls >= ${100 + f} };`);
  }
  return out.join('\n');
}

/** A call to fam1.draft_reply with `entities` entities: the agent, the tool, and other agents and tools. */
export function requestWith(entities: number): CedarRequest {
  const list: CedarRequest['entities'] = [
    { uid: { type: 'Mandate::Agent', id: 'spiffe://bench/agent' }, attrs: { owner: 'team', agent_type: 'support', trust_domain: 'bench' }, parents: [] },
    {
      uid: { type: 'Mandate::Tool', id: 'fam1.draft_reply' },
      attrs: { name: 'fam1.draft_reply', category: 'write', risk: 'medium', data_classes: ['internal'], output_trust: 'trusted', sink_args: [], content_args: [] },
      parents: [],
      tags: { ticket_id: 'T-1042', visibility: 'internal', body: 'Hello Ada, thanks for the report.' },
    },
  ];
  for (let i = 0; list.length < entities; i++) {
    list.push(
      i % 2 === 0
        ? { uid: { type: 'Mandate::Agent', id: `spiffe://bench/other-${i}` }, attrs: { owner: 'o', agent_type: 'support', trust_domain: 'bench' }, parents: [] }
        : { uid: { type: 'Mandate::Tool', id: `other.tool-${i}` }, attrs: { name: `other.tool-${i}`, category: 'read', risk: 'low', data_classes: [], output_trust: 'trusted', sink_args: [], content_args: [] }, parents: [], tags: {} },
    );
  }
  return {
    principal: { type: 'Mandate::Agent', id: 'spiffe://bench/agent' },
    resource: { type: 'Mandate::Tool', id: 'fam1.draft_reply' },
    context: {
      call_id: 'call_1',
      target: 'ticket:T-1042',
      has_target: true,
      environment: 'prod',
      time: { epoch: 1_767_000_000, hour: 10, minute: 30, weekday: 3 },
      task: { id: 'task_1', purpose: 'triage', purpose_words: ['triage'], environment: 'prod', data_classes: ['internal'], depth: 0, calls: 3, tool_calls: 1 },
      delegation_chain: [],
      provenance: { untrusted_args: [], trusted_args: ['ticket_id'], purpose_args: [], untrusted_text_args: [], purpose_source_args: [], purpose_source_text_args: [], unknown_args: [], labelled_args: [], foreign_tasks: [] },
    },
    entities: list,
  };
}

function same(a: PolicyResult, b: PolicyResult): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export async function runPolicyEngineBenchmark(argv: readonly string[]): Promise<BenchResult> {
  const args = parseBenchArgs(argv);
  const start = startInfo();
  const say = printer(args);
  const loop = (entities: number, fast: boolean): LoopOptions => {
    const budget = args.quick ? 300 : 2500;
    if (entities > 1000 && !fast) return { warmup: 3, iterations: 200, maxMs: budget, minIterations: 10 };
    return { warmup: args.quick ? 200 : 2000, iterations: args.quick ? 5000 : 100_000, maxMs: budget, minIterations: 50 };
  };
  const figures: Record<string, Figure> = {};
  const derived: Record<string, number> = {};
  for (const policies of [50, 500]) {
    const text = policyText(policies);
    const sources = [{ source: 'bench.cedar', text }];
    const compiled = PolicySet.load(sources, {}, hasher, { engine: 'compiled' });
    const viaCedar = PolicySet.load(sources, {}, hasher, { engine: 'cedar' });
    if (compiled.engineInfo.compiled !== policies) throw new Error(`expected ${policies} compiled policies, got ${compiled.engineInfo.compiled}`);
    const setId = `bench-engine-${policies}`;
    const pre = cedar.preparsePolicySet(setId, { staticPolicies: Object.fromEntries(compiled.policies.map((p) => [p.id, p.text])) });
    if (pre.type !== 'success') throw new Error('preparse failed');
    const sch = cedar.preparseSchema('bench-engine-schema', CEDAR_SCHEMA);
    if (sch.type !== 'success') throw new Error('schema preparse failed');
    for (const entities of [100, 10_000]) {
      const req = requestWith(entities);
      const rawCall: cedar.StatefulAuthorizationCall = {
        principal: req.principal,
        action: { type: 'Mandate::Action', id: 'call_tool' },
        resource: req.resource,
        context: req.context,
        entities: req.entities,
        preparsedPolicySetId: setId,
        preparsedSchemaName: 'bench-engine-schema',
        validateRequest: true,
      };
      const a = compiled.evaluateCall(req);
      const b = viaCedar.evaluateCall(req);
      const raw = cedar.statefulIsAuthorized(rawCall);
      if (!same(a, b) || a.decision !== 'allow' || raw.type !== 'success' || raw.response.decision !== 'allow') {
        throw new Error(`paths disagree: compiled ${JSON.stringify(a)}, cedar ${JSON.stringify(b)}`);
      }
      const key = `${policies}p_${entities}e`;
      say(`  ${policies} policies, ${entities} entities`);
      const c = timeSync(() => compiled.evaluateCall(req), loop(entities, true));
      const w = timeSync(() => viaCedar.evaluateCall(req), loop(entities, false));
      const r = timeSync(() => cedar.statefulIsAuthorized(rawCall), loop(entities, false));
      if (compiled.compiledFallbacks !== 0) throw new Error('the compiled path fell back to cedar-wasm');
      figures[`compiled_${key}`] = figure(`compiled, ${policies} policies, ${entities} entities`, c.samples, { concurrency: 1, elapsedMs: c.elapsedMs, opsBasis: 'inverse-mean' });
      figures[`cedar_${key}`] = figure(`cedar-wasm (narrowed), ${policies} p, ${entities} e`, w.samples, { concurrency: 1, elapsedMs: w.elapsedMs, opsBasis: 'inverse-mean' });
      figures[`raw_${key}`] = figure(`raw statefulIsAuthorized, ${policies} p, ${entities} e`, r.samples, { concurrency: 1, elapsedMs: r.elapsedMs, opsBasis: 'inverse-mean' });
      derived[`compiled / cedar-wasm (narrowed), ${key}`] = (figures[`compiled_${key}`] as Figure).opsPerSec / (figures[`cedar_${key}`] as Figure).opsPerSec;
      derived[`compiled / raw cedar, ${key}`] = (figures[`compiled_${key}`] as Figure).opsPerSec / (figures[`raw_${key}`] as Figure).opsPerSec;
    }
    compiled.dispose();
    viaCedar.dispose();
  }
  const result: BenchResult = {
    ...newResult({ name: 'policy-engine', title: 'Policy evaluation: compiled JS vs cedar-wasm, same request and policy set', mode: args.quick ? 'quick' : 'full', params: { policies: [50, 500], entities: [100, 10_000], cedar: cedar.getCedarVersion(), v8_heap: heapInUse() } }, start),
    figures,
    derived,
    notes: [
      'compiled = PolicySet.evaluateCall with engine compiled: schema shape check of the request (every entity) + the applicable compiled policies',
      'cedar-wasm (narrowed) = PolicySet.evaluateCall with engine cedar (applicable policies only, preparsed); raw = statefulIsAuthorized on the whole preparsed set',
      'Mandate itself sends 2 entities per call; 10,000 entities show the per-entity cost of each path',
    ],
  };
  return emitResult(result, args, say);
}

if (import.meta.main) {
  shippedHeap();
  await runPolicyEngineBenchmark(process.argv.slice(2));
}
