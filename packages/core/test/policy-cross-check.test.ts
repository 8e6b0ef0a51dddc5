import { describe, expect, it } from 'vitest';
import { CrossChecker, PolicySet, type CedarRequest, type CrossCheckDivergence as Divergence } from '../src/index.ts';
import { hasher } from './helpers.ts';

const POLICIES = `
@id("p.read") permit (principal, action == Mandate::Action::"call_tool", resource) when { resource.category == "read" };
@id("f.big") forbid (principal, action == Mandate::Action::"call_tool", resource) when { context.time.epoch * 10000000000 > 0 };
@id("s.mail") @step_up("") forbid (principal, action == Mandate::Action::"call_tool", resource) when { resource.name like "mail.*" };
@id("p.mail") permit (principal, action == Mandate::Action::"call_tool", resource) when { resource.name like "mail.*" };
`;

function request(tool: string, category: string, epoch: number): CedarRequest {
  return {
    principal: { type: 'Mandate::Agent', id: 'spiffe://t/a' },
    resource: { type: 'Mandate::Tool', id: tool },
    context: {
      call_id: 'c',
      target: '',
      has_target: false,
      environment: 'prod',
      time: { epoch, hour: 1, minute: 2, weekday: 3 },
      task: { id: 't', purpose: 'p', purpose_words: ['p'], environment: 'prod', data_classes: [], depth: 0, calls: 0, tool_calls: 0 },
      delegation_chain: [],
      provenance: { untrusted_args: [], trusted_args: [], purpose_args: [], untrusted_text_args: [], purpose_source_args: [], purpose_source_text_args: [], unknown_args: [], labelled_args: [], foreign_tasks: [] },
    },
    entities: [
      { uid: { type: 'Mandate::Agent', id: 'spiffe://t/a' }, attrs: { owner: 'o', agent_type: 't', trust_domain: 't' }, parents: [] },
      { uid: { type: 'Mandate::Tool', id: tool }, attrs: { name: tool, category, risk: 'low', data_classes: [], output_trust: 'trusted', sink_args: [], content_args: [] }, parents: [], tags: {} },
    ],
  };
}

function manualChecker(fraction: number, onDivergence?: (d: Divergence) => void) {
  const later: (() => void)[] = [];
  const checker = new CrossChecker({ fraction, random: () => 0.5, defer: (run) => later.push(run), onDivergence, maxQueue: 3 });
  const drain = () => {
    while (later.length > 0) (later.shift() as () => void)();
  };
  return { checker, drain, later };
}

describe('the compiled engine in PolicySet', () => {
  it('compiles every policy and answers allow, forbid, step-up and errors like cedar-wasm', () => {
    const compiled = PolicySet.load([{ source: 'x.cedar', text: POLICIES }], {}, hasher);
    const cedar = PolicySet.load([{ source: 'x.cedar', text: POLICIES }], {}, hasher, { engine: 'cedar' });
    expect(compiled.engineInfo).toEqual({ engine: 'compiled', compiled: 4, total: 4, notCompiled: [] });
    expect(cedar.engineInfo.engine).toBe('cedar');
    const cases = [request('kb.search', 'read', 0), request('kb.write', 'write', 0), request('mail.send', 'write', 0), request('kb.search', 'read', 1_700_000_000)];
    const answers = cases.map((r) => compiled.evaluateCall(r));
    expect(answers.map((a) => a.decision)).toEqual(['allow', 'deny', 'step_up', 'deny']);
    expect(answers[3]).toEqual({
      decision: 'deny',
      reason: 'POLICY_EVALUATION_ERROR',
      policyIds: ['f.big'],
      errors: [{ policyId: 'f.big', message: 'integer overflow while attempting to multiply the values `1700000000` and `10000000000`' }],
    });
    expect(answers).toEqual(cases.map((r) => cedar.evaluateCall(r)));
    expect(compiled.compiledFallbacks).toBe(0);
  });

  it('leaves a set with a policy it cannot compile to cedar-wasm, with the same answers', () => {
    const text = POLICIES + '@id("p.ip") permit (principal, action == Mandate::Action::"call_tool", resource) when { ip("10.0.0.1").isLoopback() };';
    const set = PolicySet.load([{ source: 'x.cedar', text }], {}, hasher);
    expect(set.engineInfo.notCompiled).toEqual([{ id: 'p.ip', reason: 'operator isLoopback' }]);
    expect(set.evaluateCall(request('kb.search', 'read', 0))).toMatchObject({ decision: 'allow', policyIds: ['p.read'] });
  });

  it('hands a request outside the schema to cedar-wasm, which refuses it', () => {
    const set = PolicySet.load([{ source: 'x.cedar', text: POLICIES }], {}, hasher);
    const bad = request('kb.search', 'read', 0);
    (bad.context as Record<string, unknown>)['extra'] = 1;
    const answer = set.evaluateCall(bad);
    expect(answer).toMatchObject({ decision: 'deny', reason: 'POLICY_EVALUATION_ERROR' });
    expect(set.compiledFallbacks).toBe(1);
  });

  it('re-checks the sampled decisions with cedar-wasm later, off the decision path', () => {
    const { checker, drain, later } = manualChecker(1);
    const set = PolicySet.load([{ source: 'x.cedar', text: POLICIES }], {}, hasher, { crossCheck: checker });
    set.evaluateCall(request('kb.search', 'read', 0));
    set.evaluateCall(request('mail.send', 'write', 0));
    expect(checker.stats()).toMatchObject({ checked: 0, pending: 2 });
    expect(later).toHaveLength(1);
    drain();
    expect(checker.stats()).toEqual({ fraction: 1, rateLimited: 0, checked: 2, divergences: 0, dropped: 0, pending: 0 });
    // bounded: beyond the queue's size samples are dropped and counted
    for (let i = 0; i < 5; i++) set.evaluateCall(request('kb.search', 'read', 0));
    expect(checker.stats()).toMatchObject({ pending: 3, dropped: 2 });
    drain();
    expect(checker.stats()).toMatchObject({ checked: 5, divergences: 0, pending: 0 });
  });

  it('samples nothing at fraction 0 and everything at 1', () => {
    expect(manualChecker(0).checker.sample()).toBe(false);
    expect(manualChecker(1).checker.sample()).toBe(true);
    const half = new CrossChecker({ fraction: 0.25, random: () => 0.3, defer: () => undefined });
    expect(half.sample()).toBe(false);
    expect(() => new CrossChecker({ fraction: 2, random: () => 0, defer: () => undefined })).toThrow(RangeError);
  });
});

describe('CrossChecker', () => {
  it('counts and reports a divergence between the compiled answer and the oracle', () => {
    const seen: Divergence[] = [];
    const { checker, drain } = manualChecker(1, (d) => seen.push(d));
    const allow = { decision: 'allow', reason: 'PERMITTED', policyIds: ['p'], errors: [] };
    const describe = () => ({ policyVersion: 'v', action: 'call_tool', principal: 'A::a', resource: 'T::t' });
    checker.offer({ compiled: allow, oracle: () => allow, describe });
    checker.offer({ compiled: allow, oracle: () => ({ ...allow, policyIds: ['q'] }), describe });
    checker.offer({
      compiled: allow,
      oracle: () => {
        throw new Error('wasm trapped');
      },
      describe,
    });
    drain();
    expect(checker.stats()).toMatchObject({ checked: 3, divergences: 2 });
    expect(seen.map((d) => d.cedar.reason)).toEqual(['PERMITTED', 'POLICY_EVALUATION_ERROR']);
    expect(seen[0]).toMatchObject({ policyVersion: 'v', compiled: allow });
  });

  it('keeps to its ceiling per second, refilling with time, and counts what it skipped', () => {
    let now = 0;
    const c = new CrossChecker({ fraction: 1, random: () => 0, defer: () => undefined, maxPerSecond: 5, now: () => now });
    const burst = Array.from({ length: 20 }, () => c.sample());
    expect(burst.filter(Boolean)).toHaveLength(5);
    now += 400; // 2 checks' worth
    expect(Array.from({ length: 10 }, () => c.sample()).filter(Boolean)).toHaveLength(2);
    now += 60_000; // a quiet minute refills one second's worth, no more
    expect(Array.from({ length: 10 }, () => c.sample()).filter(Boolean)).toHaveLength(5);
    expect(c.stats()).toMatchObject({ rateLimited: 15 + 8 + 5 });
    // the fraction still decides first: an unsampled decision costs no token
    const none = new CrossChecker({ fraction: 0.1, random: () => 0.5, defer: () => undefined, maxPerSecond: 1, now: () => now });
    expect(none.sample()).toBe(false);
    expect(none.stats().rateLimited).toBe(0);
    expect(() => new CrossChecker({ fraction: 1, random: () => 0, defer: () => undefined, maxPerSecond: 0, now: () => 0 })).toThrow(RangeError);
    expect(() => new CrossChecker({ fraction: 1, random: () => 0, defer: () => undefined, maxPerSecond: 3 })).toThrow(RangeError);
  });
});
