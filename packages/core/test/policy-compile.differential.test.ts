/**
 * The compiled policy evaluator against cedar-wasm, its oracle (issue 10): random policy sets
 * over Mandate's schema (kept only where strict validation passes, as at load), random entities
 * and contexts; every request must get exactly the same PolicyResult — decision, reason,
 * determining policies and errors with their messages — from the compiled path and from
 * cedar-wasm.
 *
 * Size: at least MANDATE_DIFF_RUNS requests (default 100,000, the corpus: ~2 min on 2 cores).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PolicySet, validatePolicies, splitPolicies, type CedarRequest, type PolicyResult } from '../src/index.ts';
import { compilePolicy, RequestShapes, valueEq, EntityRef } from '../src/policy/compile.ts';
import { hasher } from './helpers.ts';

const TOTAL = Number(process.env['MANDATE_DIFF_RUNS'] ?? 100_000);
const PER_SET = 200;

// ------------------------------------------------------------------------------------------------
// policy text

const q = (s: string) => JSON.stringify(s).replace(/\\u([0-9a-fA-F]{4})/g, (_, h: string) => `\\u{${h}}`);

const STRINGS = ['', 'a', 'prod', 'dev', 'low', 'high', 'read', 'kb.search', 'mail.send', 't1', 'x*y', 'a*', '*', '\\', '"', 'é', '😀', 'Ω≈ç', 'ab\ncd', 'owner-1', 'support'];
const LONGS = [0, 1, -1, 2, 7, 24, 60, 100, 1000, 3037000499, 3037000500, 4294967296, 2147483647, 1_700_000_000, 9007199254740991, -9007199254740991, 4611686018427387904, 9223372036854775807];
const TAG_KEYS = ['k', 'a', 'mode', 'ticket_id', '😀', 'x y'];

const str = fc.constantFrom(...STRINGS);
const longLit = fc.oneof(fc.constantFrom(...LONGS), fc.integer({ min: -50, max: 50 }));

const likePattern = fc
  .array(fc.oneof(fc.constant('*'), fc.constant('\\*'), fc.constantFrom('a', 'b', '.', 'é', '😀', 'kb', 'mail', '-', '\\\\', '\\"', 'o')), { maxLength: 5 })
  .map((parts) => `"${parts.join('')}"`);

type Ty = 'Bool' | 'Long' | 'String' | 'SetString';

const STR_ATTRS = ['context.call_id', 'context.target', 'context.environment', 'context.task.id', 'context.task.purpose', 'context.task.environment', 'resource.name', 'resource.category', 'resource.risk', 'resource.output_trust', 'principal.owner', 'principal.agent_type', 'principal.trust_domain'];
const LONG_ATTRS = ['context.time.epoch', 'context.time.hour', 'context.time.minute', 'context.time.weekday', 'context.task.depth', 'context.task.calls', 'context.task.tool_calls'];
const SET_ATTRS = ['context.task.data_classes', 'context.delegation_chain', 'context.provenance.untrusted_args', 'context.provenance.trusted_args', 'context.provenance.purpose_args', 'context.provenance.untrusted_text_args', 'context.provenance.purpose_source_args', 'context.provenance.purpose_source_text_args', 'context.provenance.unknown_args', 'context.provenance.labelled_args', 'context.provenance.foreign_tasks', 'context.task.purpose_words', 'resource.data_classes', 'resource.sink_args', 'resource.content_args'];
const ENTITIES = ['Mandate::Agent::"a1"', 'Mandate::Agent::"a2"', 'Mandate::Tool::"t1"', 'Mandate::Tool::"nobody"', 'Mandate::Agent::"o\'ne"'];

function gen(ty: Ty, depth: number): fc.Arbitrary<string> {
  const d = depth - 1;
  const leaf = leafOf(ty);
  if (depth <= 0) return leaf;
  const sub = (t: Ty) => fc.constant(null).chain(() => gen(t, d));
  switch (ty) {
    case 'Bool':
      return fc.oneof(
        { weight: 3, arbitrary: leaf },
        fc.tuple(sub('Long'), fc.constantFrom('<', '<=', '>', '>=', '==', '!='), sub('Long')).map(([a, o, b]) => `(${a} ${o} ${b})`),
        fc.tuple(sub('String'), fc.constantFrom('==', '!='), sub('String')).map(([a, o, b]) => `(${a} ${o} ${b})`),
        fc.tuple(sub('SetString'), sub('SetString')).map(([a, b]) => `(${a} == ${b})`),
        fc.tuple(sub('Bool'), fc.constantFrom('&&', '||'), sub('Bool')).map(([a, o, b]) => `(${a} ${o} ${b})`),
        sub('Bool').map((a) => `!${a}`),
        fc.tuple(sub('Bool'), sub('Bool'), sub('Bool')).map(([c, a, b]) => `(if ${c} then ${a} else ${b})`),
        fc.tuple(sub('String'), likePattern).map(([a, p]) => `(${a} like ${p})`),
        fc.tuple(sub('SetString'), sub('String')).map(([s, a]) => `${s}.contains(${a})`),
        fc.tuple(sub('SetString'), fc.constantFrom('containsAll', 'containsAny'), sub('SetString')).map(([a, o, b]) => `${a}.${o}(${b})`),
        sub('SetString').map((s) => `${s}.isEmpty()`),
        fc.tuple(sub('Long'), sub('Long')).map(([a, b]) => `({a: ${a}, "b c": ${b}} == {"b c": ${b}, a: ${a}})`),
        fc.tuple(sub('Long'), sub('String')).map(([a, b]) => `({z: ${a}, y: ${b}}.z == ${a})`),
        fc.tuple(fc.constantFrom(...TAG_KEYS), sub('String')).map(([k, s]) => `(resource.hasTag(${q(k)}) && resource.getTag(${q(k)}) == ${s})`),
        fc.tuple(fc.constantFrom(...TAG_KEYS), likePattern).map(([k, p]) => `(if resource.hasTag(${q(k)}) then resource.getTag(${q(k)}) like ${p} else false)`),
      );
    case 'Long':
      return fc.oneof(
        { weight: 3, arbitrary: leaf },
        fc.tuple(sub('Long'), fc.constantFrom('+', '-', '*'), sub('Long')).map(([a, o, b]) => `(${a} ${o} ${b})`),
        sub('Long').map((a) => `(-${a})`),
        fc.tuple(sub('Bool'), sub('Long'), sub('Long')).map(([c, a, b]) => `(if ${c} then ${a} else ${b})`),
      );
    case 'String':
      return fc.oneof(
        { weight: 3, arbitrary: leaf },
        fc.tuple(sub('Bool'), sub('String'), sub('String')).map(([c, a, b]) => `(if ${c} then ${a} else ${b})`),
      );
    case 'SetString':
      return fc.oneof(
        { weight: 3, arbitrary: leaf },
        fc.tuple(sub('String'), sub('String')).map(([a, b]) => `[${a}, ${b}]`),
        fc.tuple(sub('Bool'), sub('SetString'), sub('SetString')).map(([c, a, b]) => `(if ${c} then ${a} else ${b})`),
      );
  }
}

function leafOf(ty: Ty): fc.Arbitrary<string> {
  switch (ty) {
    case 'Bool':
      return fc.oneof(
        fc.constantFrom('true', 'false', 'context.has_target', 'context has time', 'context.task has purpose', 'resource has name', 'principal has owner'),
        fc.constantFrom('principal is Mandate::Agent', 'resource is Mandate::Tool', 'resource is Mandate::Tool in Mandate::Tool::"t1"', 'resource in Mandate::Tool::"t1"', 'principal in [Mandate::Agent::"a1", Mandate::Agent::"a2"]'),
        fc.constantFrom('action == Mandate::Action::"call_tool"', 'action in [Mandate::Action::"call_tool", Mandate::Action::"start_task"]', 'principal == Mandate::Agent::"a1"', 'resource == Mandate::Tool::"t2"'),
        fc.constantFrom(...ENTITIES).map((e) => `(${e} has owner || ${e} has name)`),
        fc.constantFrom(...ENTITIES.filter((e) => e.includes('Tool'))).map((e) => `${e}.hasTag("k")`),
        fc.constantFrom(...TAG_KEYS).map((k) => `resource.hasTag(${q(k)})`),
      );
    case 'Long':
      return fc.oneof(longLit.map(String), fc.constantFrom(...LONG_ATTRS));
    case 'String':
      return fc.oneof(str.map(q), fc.constantFrom(...STR_ATTRS), fc.constantFrom('Mandate::Agent::"a1".owner', 'Mandate::Agent::"a2".owner', 'Mandate::Tool::"t1".risk', 'Mandate::Agent::"o\'ne".owner'));
    case 'SetString':
      return fc.oneof(fc.constantFrom(...SET_ATTRS), fc.array(str.map(q), { minLength: 1, maxLength: 3 }).map((xs) => `[${xs.join(', ')}]`));
  }
}

const scopeP = fc.constantFrom('principal', 'principal == Mandate::Agent::"a1"', 'principal is Mandate::Agent', 'principal in Mandate::Agent::"a2"', 'principal is Mandate::Agent in Mandate::Agent::"a1"');
const scopeA = fc.constantFrom('action', 'action == Mandate::Action::"call_tool"', 'action in [Mandate::Action::"call_tool", Mandate::Action::"start_task"]', 'action == Mandate::Action::"start_task"');
const scopeR = fc.constantFrom('resource', 'resource == Mandate::Tool::"t1"', 'resource is Mandate::Tool', 'resource in Mandate::Tool::"t2"');
const clause = fc.tuple(fc.constantFrom('when', 'unless'), fc.integer({ min: 0, max: 4 }).chain((d) => gen('Bool', d))).map(([k, b]) => `${k} { ${b} }`);
const policy = fc
  .tuple(fc.constantFrom('permit', 'permit', 'forbid'), fc.boolean(), scopeP, scopeA, scopeR, fc.array(clause, { maxLength: 3 }))
  .map(([effect, stepUp, p, a, r, cs]) => ({ effect, stepUp: stepUp && effect === 'forbid', head: `${effect} (${p}, ${a}, ${r})`, cs }));

// ------------------------------------------------------------------------------------------------
// requests

const longVal = fc.oneof(fc.integer({ min: -5, max: 100 }), fc.constantFrom(0, 1_700_000_000, 9007199254740991, -9007199254740991, 3037000499, 4294967296));
const strVal = fc.oneof(fc.constantFrom(...STRINGS), fc.string({ unit: 'grapheme', maxLength: 6 }));
const setVal = fc.array(strVal, { maxLength: 3 });
const agentEnt = (id: string) =>
  fc.record({ owner: strVal, agent_type: strVal, trust_domain: strVal }).map((attrs) => ({ uid: { type: 'Mandate::Agent', id }, attrs, parents: [] as { type: string; id: string }[] }));
const toolEnt = (id: string) =>
  fc
    .tuple(fc.record({ name: fc.oneof(fc.constant(id), strVal), category: strVal, risk: strVal, data_classes: setVal, output_trust: strVal, sink_args: setVal, content_args: setVal }), fc.dictionary(fc.constantFrom(...TAG_KEYS), strVal, { maxKeys: 4 }))
    .map(([attrs, tags]) => ({ uid: { type: 'Mandate::Tool', id }, attrs, parents: [] as { type: string; id: string }[], tags }));

const request: fc.Arbitrary<CedarRequest> = fc
  .record({
    pid: fc.constantFrom('a1', 'a2', 'a3'),
    rid: fc.constantFrom('t1', 't2', 'kb.search'),
    withPrincipal: fc.nat(9),
    withResource: fc.nat(9),
    extra: fc.boolean(),
    odd: fc.nat(99),
    ctx: fc.record({
      call_id: strVal,
      target: strVal,
      has_target: fc.boolean(),
      environment: strVal,
      time: fc.record({ epoch: longVal, hour: longVal, minute: longVal, weekday: longVal }),
      task: fc.record({ id: strVal, purpose: strVal, purpose_words: setVal, environment: strVal, data_classes: setVal, depth: longVal, calls: longVal, tool_calls: longVal }),
      delegation_chain: setVal,
      provenance: fc.record({ untrusted_args: setVal, trusted_args: setVal, purpose_args: setVal, untrusted_text_args: setVal, purpose_source_args: setVal, purpose_source_text_args: setVal, unknown_args: setVal, labelled_args: setVal, foreign_tasks: setVal }),
    }),
  })
  .chain((r) =>
    fc.tuple(fc.constant(r), agentEnt(r.pid), toolEnt(r.rid), agentEnt('a1'), toolEnt('t1')).map(([r, a, t, a1, t1]) => {
      const entities: CedarRequest['entities'] = [];
      if (r.withPrincipal > 0) entities.push(a);
      if (r.withResource > 0) entities.push(t);
      if (r.extra && r.pid !== 'a1') entities.push(a1);
      if (r.extra && r.rid !== 't1') entities.push(t1);
      const context: Record<string, unknown> = r.ctx;
      // a few requests outside the schema: cedar-wasm must answer them (the compiled path hands over)
      if (r.odd === 0) context['extra'] = 1;
      if (r.odd === 1) (context['time'] as Record<string, unknown>)['hour'] = 1.5;
      if (r.odd === 2) entities.push(a);
      return { principal: { type: 'Mandate::Agent', id: r.pid }, resource: { type: 'Mandate::Tool', id: r.rid }, context, entities } as CedarRequest;
    }),
  );

// ------------------------------------------------------------------------------------------------

interface Generated {
  readonly texts: string[];
  readonly requests: CedarRequest[];
}

const generated: fc.Arbitrary<Generated> = fc
  .tuple(fc.array(policy, { minLength: 1, maxLength: 6 }), fc.array(request, { minLength: PER_SET, maxLength: PER_SET }))
  .map(([ps, requests]) => ({
    texts: ps.map((p, i) => `@id("p${i}")${p.stepUp ? ' @step_up("")' : ''} ${p.head} ${p.cs.join(' ')};`),
    requests,
  }));

/** Strict validation, as at load: drops the policies that do not validate. */
function validOnly(texts: readonly string[]): string[] {
  const { policies, problems } = splitPolicies(texts.map((text, i) => ({ source: `g${i}.cedar`, text })));
  if (problems.length > 0) return [];
  const bad = new Set(validatePolicies(policies).map((p) => p.policyId));
  return policies.filter((p) => !bad.has(p.id)).map((p) => p.text);
}

describe('the compiled policy evaluator', () => {
  it(`agrees exactly with cedar-wasm on at least ${TOTAL.toLocaleString('en-US')} random requests`, { timeout: 1_800_000 }, async () => {
    const stats = { requests: 0, compiledAnswers: 0, sets: 0, policies: 0, notCompiled: 0, errors: 0, allows: 0, forbids: 0, stepUps: 0 };
    // some generated sets have no policy that validates: generate enough to reach TOTAL requests
    const runs = Math.ceil((TOTAL * 1.1) / PER_SET);
    await fc.assert(
      fc.asyncProperty(generated, async ({ texts, requests }) => {
        // let the test runner's own messages through between sets
        await new Promise((r) => setImmediate(r));
        const valid = validOnly(texts);
        if (valid.length === 0) return;
        const sources = [{ source: 'gen.cedar', text: valid.join('\n') }];
        const compiled = PolicySet.load(sources, {}, hasher, { engine: 'compiled' });
        const cedar = PolicySet.load(sources, {}, hasher, { engine: 'cedar' });
        try {
          stats.sets += 1;
          stats.policies += valid.length;
          stats.notCompiled += compiled.engineInfo.notCompiled.length;
          for (const req of requests) {
            const before = compiled.compiledFallbacks;
            const a: PolicyResult = compiled.evaluateCall(req);
            const b: PolicyResult = cedar.evaluateCall(req);
            expect(a).toEqual(b);
            // every tenth request also against every policy, without narrowing
            if (stats.requests % 10 === 0) expect(compiled.evaluateCallUnnarrowed(req)).toEqual(cedar.evaluateCallUnnarrowed(req));
            stats.requests += 1;
            if (compiled.compiledFallbacks === before && compiled.engineInfo.notCompiled.length === 0) stats.compiledAnswers += 1;
            if (a.reason === 'POLICY_EVALUATION_ERROR') stats.errors += 1;
            if (a.decision === 'allow') stats.allows += 1;
            if (a.reason === 'POLICY_FORBID') stats.forbids += 1;
            if (a.decision === 'step_up') stats.stepUps += 1;
          }
        } finally {
          compiled.dispose();
          cedar.dispose();
        }
      }),
      { numRuns: runs, seed: Number(process.env['MANDATE_DIFF_SEED'] ?? 20_260_110) },
    );
    console.log(`differential: ${JSON.stringify(stats)}`);
    // the corpus must exercise the compiled path and every kind of answer, or it proves little
    expect(stats.requests).toBeGreaterThanOrEqual(TOTAL);
    expect(stats.compiledAnswers).toBeGreaterThan(stats.requests * 0.5);
    for (const k of ['errors', 'allows', 'forbids', 'stepUps'] as const) expect(stats[k]).toBeGreaterThan(0);
  });
});

describe('compiled evaluation details', () => {
  const shapesFor = () => {
    const json = { Mandate: { entityTypes: { Agent: { shape: { type: 'Record', attributes: {} } } }, actions: { act: { appliesTo: { principalTypes: ['Agent'], resourceTypes: ['Agent'] } } } } };
    return new RequestShapes(json);
  };

  it('treats sets as sets and numbers by value, across the number/bigint split', () => {
    expect(valueEq(['a', 'b', 'a'], ['b', 'a'])).toBe(true);
    expect(valueEq([1, 2], [2, 3])).toBe(false);
    expect(valueEq(2n ** 60n, 2n ** 60n)).toBe(true);
    expect(valueEq(new EntityRef('A', 'x'), new EntityRef('A', 'x'))).toBe(true);
    expect(valueEq(new EntityRef('A', 'x'), new EntityRef('B', 'x'))).toBe(false);
    expect(valueEq('1', 1)).toBe(false);
  });

  it('refuses to compile what it cannot evaluate exactly (extension functions, inexact literals)', () => {
    const json = (text: string) => {
      const { policies, problems } = splitPolicies([{ source: 'x', text }]);
      expect(problems).toEqual([]);
      return (policies[0] as { json: Parameters<typeof compilePolicy>[0] }).json;
    };
    expect(() => compilePolicy(json('permit (principal, action, resource) when { ip("1.2.3.4").isIpv4() };'))).toThrow(/operator/);
    expect(() => compilePolicy(json('permit (principal, action, resource) when { 9223372036854775807 > 0 };'))).toThrow(/not exact/);
    expect(() => compilePolicy(json('permit (principal, action, resource) when { 9007199254740991 > 0 };'))).not.toThrow();
  });

  it('hands requests outside the checked shapes to cedar-wasm', () => {
    const shapes = shapesFor();
    const action = { type: 'Mandate::Action', id: 'act' };
    const ok = { principal: { type: 'Mandate::Agent', id: 'a' }, resource: { type: 'Mandate::Agent', id: 'a' }, context: {}, entities: [] };
    expect(shapes.env(action, ok)).toBeDefined();
    expect(shapes.env(action, { ...ok, context: { x: 1 } })).toBeUndefined();
    expect(shapes.env(action, { ...ok, principal: { type: 'Mandate::Agent', id: '\ud800' } })).toBeUndefined();
    const e = { uid: { type: 'Mandate::Agent', id: 'a' }, attrs: {}, parents: [] };
    expect(shapes.env(action, { ...ok, entities: [e] })).toBeDefined();
    expect(shapes.env(action, { ...ok, entities: [e, e] })).toBeUndefined();
    expect(shapes.env({ type: 'Mandate::Action', id: 'other' }, ok)).toBeUndefined();
  });
});
