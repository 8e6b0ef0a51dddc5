/**
 * Full pipeline benchmark (issue 10): `decide()` with every detector on and the audit durably
 * committed, against raw cedar-wasm on the same request and policy set, for about 50 and 500
 * policies and 100 and 10,000 entities (the deployment's tool catalogue).
 *
 *   node bench/pipeline.ts [--quick] [--json-only] [--out DIR]
 *
 * Per configuration:
 * - raw, all entities: `statefulIsAuthorized` on the preparsed set with the deployment's entities
 *   (the agent, the tool and every other catalogue tool): what a PDP handed its whole entity
 *   store pays;
 * - raw, the call's entities: the same with only the two entities the pipeline passes;
 * - pipeline: `DecisionEngine.decide()` from createRuntime() (durability full, behaviour on),
 *   128 calls in flight, with the process CPU time per decision (every thread), and one call at
 *   a time for its latency.
 * The floor is measured in the same run; the ratios are the result.
 */
import { loadavg } from 'node:os';
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { CEDAR_SCHEMA, type CedarRequest, type Decision } from '@mandate/core';
import { sameCedarRequest } from './decision.ts';
import { createDecisionFixture, type DecisionFixture } from './lib/decision-fixture.ts';
import { type BenchResult, type Figure, emitResult, figure, newResult, parseBenchArgs, startInfo } from './lib/report.ts';
import { settle, timeConcurrent, timeSequential, timeSync, type LoopOptions } from './lib/stats.ts';

const ACTION = { type: 'Mandate::Action', id: 'call_tool' };
const CONCURRENCY = 128;
const TARGET_PER_CORE = 20_000;

interface Plan {
  readonly rawAll: LoopOptions;
  readonly rawMin: LoopOptions;
  readonly c1: LoopOptions;
  readonly high: LoopOptions;
}

const FULL: Plan = {
  rawAll: { warmup: 3, iterations: 200, maxMs: 3000, minIterations: 5 },
  rawMin: { warmup: 500, iterations: 5000, maxMs: 3000 },
  c1: { warmup: 500, iterations: 5000, maxMs: 4000 },
  high: { warmup: 10_000, iterations: 60_000, maxMs: 6000 },
};

const QUICK: Plan = {
  rawAll: { warmup: 1, iterations: 10, maxMs: 300, minIterations: 2 },
  rawMin: { warmup: 50, iterations: 500, maxMs: 300, minIterations: 50 },
  c1: { warmup: 50, iterations: 500, maxMs: 400, minIterations: 50 },
  high: { warmup: 256, iterations: 4000, maxMs: 800, minIterations: 256 },
};

const CONFIGS: readonly { readonly policies: number; readonly entities: number }[] = [
  { policies: 50, entities: 100 },
  { policies: 50, entities: 10_000 },
  { policies: 500, entities: 100 },
  { policies: 500, entities: 10_000 },
];

function expectAllowed(d: Decision): void {
  if (d.effect !== 'allow' || d.auditSeq === undefined) throw new Error(`pipeline: expected an audited allow, got ${d.effect} (${d.reasons.join(', ')})`);
}

/** The pipeline's request with the deployment's other catalogue tools added as entities. */
function withCatalogue(req: CedarRequest, total: number): CedarRequest {
  const entities = [...req.entities];
  for (let i = 0; entities.length < total; i++) {
    entities.push({ uid: { type: 'Mandate::Tool', id: `misc${i}.op` }, attrs: { name: `misc${i}.op`, category: 'read', risk: 'low', data_classes: ['internal'], output_trust: 'trusted', sink_args: [], content_args: [] }, parents: [], tags: {} });
  }
  return { ...req, entities };
}

function rawCall(fx: DecisionFixture, setId: string, req: CedarRequest): () => void {
  const call: cedar.StatefulAuthorizationCall = {
    principal: req.principal,
    action: ACTION,
    resource: req.resource,
    context: req.context,
    entities: req.entities,
    preparsedPolicySetId: setId,
    preparsedSchemaName: 'bench-pipeline:schema',
    validateRequest: true,
  };
  return () => {
    const a = cedar.statefulIsAuthorized(call);
    if (a.type !== 'success' || a.response.decision !== 'allow') throw new Error(`raw Cedar did not allow (${fx.policyCount} policies)`);
  };
}

export async function runPipelineBenchmark(argv: readonly string[]): Promise<BenchResult> {
  const args = parseBenchArgs(argv);
  const plan = args.quick ? QUICK : FULL;
  const say = (m: string) => (args.jsonOnly ? process.stderr.write(m + '\n') : process.stdout.write(m + '\n'));
  const start = startInfo();
  const sch = cedar.preparseSchema('bench-pipeline:schema', CEDAR_SCHEMA);
  if (sch.type !== 'success') throw new Error('preparseSchema failed');

  const figures: Record<string, Figure> = {};
  const derived: Record<string, number> = {};
  const counts: Record<string, number> = {};
  let worstPerCore = Number.POSITIVE_INFINITY;
  for (const c of CONFIGS) {
    const key = `p${c.policies}_e${c.entities}`;
    // the catalogue holds the deployment's entities: its tools, and the one agent
    const fx = await createDecisionFixture({
      durability: 'full',
      scale: { policies: c.policies, tools: c.entities - 1 },
      config: { behaviour: { enabled: true, detectors: { rate: { max_per_window: 1_000_000 } } } },
    });
    try {
      const rt = fx.runtime;
      counts[key] = fx.policyCount;
      const setId = `bench-pipeline:${key}`;
      const pre = cedar.preparsePolicySet(setId, { staticPolicies: Object.fromEntries(rt.policies.current.policies.map((p) => [p.id, p.text])) });
      if (pre.type !== 'success') throw new Error('preparsePolicySet failed');
      const req = await sameCedarRequest(fx);
      const rawMin = rawCall(fx, setId, req);
      const rawAll = rawCall(fx, setId, withCatalogue(req, c.entities));
      rawMin();
      rawAll();
      expectAllowed(await rt.engine.decide(fx.call));
      say(`pipeline benchmark: ${fx.policyCount} policies, ${c.entities.toLocaleString('en-US')} entities (${args.quick ? 'quick' : 'full'} run)`);

      await settle();
      const all = timeSync(rawAll, plan.rawAll);
      await settle();
      const min = timeSync(rawMin, plan.rawMin);
      await settle();
      const one = await timeSequential(async () => expectAllowed(await rt.engine.decide(fx.call)), plan.c1);
      await settle();
      const before = process.cpuUsage();
      const high = await timeConcurrent(async () => expectAllowed(await rt.engine.decide(fx.call)), CONCURRENCY, plan.high);
      const used = process.cpuUsage(before);
      const cpuUs = (used.user + used.system) / (high.samples.length + plan.high.warmup);

      const fAll = figure(`raw cedar, ${c.entities} entities`, all.samples, { concurrency: 1, elapsedMs: all.elapsedMs, opsBasis: 'inverse-mean' });
      const fMin = figure('raw cedar, the call\u2019s 2 entities', min.samples, { concurrency: 1, elapsedMs: min.elapsedMs, opsBasis: 'inverse-mean' });
      const fOne = figure('decide() + detectors + audit', one.samples, { concurrency: 1, elapsedMs: one.elapsedMs, opsBasis: 'wall' });
      const fHigh = figure('decide() + detectors + audit', high.samples, { concurrency: CONCURRENCY, elapsedMs: high.elapsedMs, opsBasis: 'wall' });
      figures[`${key}_raw_all`] = { ...fAll, label: `${fx.policyCount} pol, ${c.entities} ent: ${fAll.label}` };
      figures[`${key}_raw_min`] = { ...fMin, label: `${fx.policyCount} pol, ${c.entities} ent: ${fMin.label}` };
      figures[`${key}_pipeline_c1`] = { ...fOne, label: `${fx.policyCount} pol, ${c.entities} ent: ${fOne.label}` };
      figures[`${key}_pipeline_c${CONCURRENCY}`] = { ...fHigh, label: `${fx.policyCount} pol, ${c.entities} ent: ${fHigh.label}` };
      const perCore = 1e6 / cpuUs;
      worstPerCore = Math.min(worstPerCore, perCore);
      derived[`${key}: CPU us per decision (c${CONCURRENCY})`] = cpuUs;
      derived[`${key}: pipeline decisions per core-second`] = perCore;
      derived[`${key}: per core / raw (all entities) per core`] = perCore / fAll.opsPerSec;
      derived[`${key}: per core / raw (call's entities) per core`] = perCore / fMin.opsPerSec;
      derived[`${key}: pipeline p99 c1 (ms)`] = fOne.p99;
    } finally {
      await fx.close();
    }
  }

  const result: BenchResult = {
    ...newResult(
      {
        name: 'pipeline',
        title: 'Full pipeline (token, context, policy, detectors, audit) vs raw Cedar, 50/500 policies x 100/10,000 entities',
        mode: args.quick ? 'quick' : 'full',
        params: { configs: CONFIGS, policies_written: counts, concurrency: CONCURRENCY, durability: 'full', behaviour: 'on (rate ceiling lifted)', cedar: cedar.getCedarVersion(), plan, loadavg_end: loadavg().map((l) => Math.round(l * 100) / 100) },
      },
      start,
    ),
    figures,
    derived,
    target: {
      description: `the slowest configuration's pipeline >= ${TARGET_PER_CORE.toLocaleString('en-US')} decisions per core-second (1e6 / process CPU us per decision at c${CONCURRENCY}, detectors and durable audit on)`,
      metric: 'decisions per core-second (slowest configuration)',
      required: TARGET_PER_CORE,
      actual: worstPerCore,
      met: worstPerCore >= TARGET_PER_CORE,
    },
    notes: [
      'entities = the deployment: its registered agent and its tool catalogue (tools.yaml), which the pipeline looks up; it passes Cedar only the call\u2019s agent and tool',
      'raw, all entities = statefulIsAuthorized handed every entity of the deployment, as a PDP without narrowing would be; raw, the call\u2019s entities = the same call with the two entities the pipeline passes',
      'pipeline = decide() from createRuntime() with behaviour.enabled (every detector), durability full (WAL fdatasync per group commit, off the event loop), the compiled policies with the 1 % cedar-wasm cross-check (capped at 20/s)',
      'per core = 1e6 / (process CPU time, user + system, every thread, over the c128 run / decisions)',
    ],
  };
  return emitResult(result, args, say);
}

if (import.meta.main) {
  await runPipelineBenchmark(process.argv.slice(2));
}
