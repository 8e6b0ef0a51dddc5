import { describe, expect, it } from 'vitest';
import { BehaviourHistory, chainsConfigSchema, detectChains, detectDrift, detectNovelty, detectRate, detectRetry, detectVolume, isSensitive, restrict, runDetectors } from '../../src/index.ts';
import { call, config, input, profile, T0, TRIAGE } from './trace.ts';

const cfg = config().detectors;
const S = 1000;

describe('mandate drift', () => {
  it('flags a triage task that starts exporting and deleting, and stays quiet while it reads', () => {
    const reads = [call('helpdesk.search_tickets', T0), call('helpdesk.get_ticket', T0 + S), call('helpdesk.get_ticket', T0 + 2 * S)];
    for (let i = 1; i <= reads.length; i++) expect(detectDrift(input(TRIAGE, reads.slice(0, i)), cfg.drift)).toEqual([]);

    const exporting = detectDrift(input(TRIAGE, [...reads, call('helpdesk.export_tickets', T0 + 3 * S)]), cfg.drift);
    expect(exporting).toEqual([
      expect.objectContaining({ detector: 'drift', severity: 'high', evidence: expect.objectContaining({ class: 'export', verb: 'export', purpose_read_only: true, first_of_its_kind: true }) }),
    ]);
    expect(exporting[0]?.confidence).toBeGreaterThanOrEqual(0.75);

    const deleting = detectDrift(input(TRIAGE, [...reads, call('helpdesk.delete_ticket', T0 + 3 * S)]), cfg.drift);
    expect(deleting.map((s) => s.evidence['class']).sort()).toEqual(['delete', 'write']);
  });

  it('accepts what the purpose names: a task declared to draft replies may write drafts', () => {
    const purpose = 'Triage new tickets and draft replies for the on-call team.';
    expect(detectDrift(input(purpose, [call('helpdesk.draft_reply', T0)]), cfg.drift)).toEqual([]);
    expect(detectDrift(input(TRIAGE, [call('helpdesk.draft_reply', T0)]), cfg.drift)).toEqual([expect.objectContaining({ severity: 'medium', evidence: expect.objectContaining({ class: 'write' }) })]);
  });

  it('classifies by the tool catalogue too: an external sink drifts from a purpose that never sends', () => {
    const s = detectDrift(input(TRIAGE, [call('http.post', T0)]), cfg.drift);
    expect(s).toEqual([expect.objectContaining({ severity: 'high', evidence: expect.objectContaining({ class: 'export', category: 'external_sink', verb: 'post' }) })]);
  });
});

describe('risky chains', () => {
  it('flags a read of a secret followed by an HTTP post within the window, naming both calls', () => {
    const read = call('vault.read_secret', T0);
    const post = call('http.post', T0 + 2 * S);
    const signals = detectChains(input(TRIAGE, [read, call('kb.search', T0 + S), post]), cfg.chains);
    expect(signals).toEqual([{ detector: 'chains', severity: 'high', confidence: 0.9, evidence: { rule: 'sensitive-read-then-external-send', calls: [read.callId, post.callId], tool: 'http.post', scope: 'task' } }]);
  });

  it('keeps the mark of a secret read however many harmless calls come between (padding does not hide a chain)', () => {
    const read = call('vault.read_secret', T0);
    const padded = [read, ...Array.from({ length: 200 }, (_, i) => call('kb.search', T0 + (i + 1) * S)), call('http.post', T0 + 300 * S)];
    expect(detectChains(input(TRIAGE, padded), cfg.chains)).toEqual([expect.objectContaining({ evidence: expect.objectContaining({ rule: 'sensitive-read-then-external-send', calls: [read.callId, padded.at(-1)?.callId] }) })]);
  });

  it('chains across the tasks of one agent: a secret read in one task, a post from another', () => {
    const read = call('vault.read_secret', T0);
    const post = call('http.post', T0 + 5 * S);
    expect(detectChains(input(TRIAGE, [post]), cfg.chains)).toEqual([]);
    expect(detectChains(input(TRIAGE, [post], {}, cfg.chains, [read]), cfg.chains)).toEqual([
      expect.objectContaining({ evidence: expect.objectContaining({ calls: [read.callId, post.callId], scope: 'agent', agent_id: 'spiffe://acme.test/agents/triage' }) }),
    ]);
    // the agent scope is the operator's to switch off
    const taskOnly = { ...cfg.chains, scope: { task: true, agent: false } };
    expect(detectChains(input(TRIAGE, [post], {}, taskOnly, [read]), taskOnly)).toEqual([]);
  });

  it('does not chain a secret read whose mark has lapsed (hold_ms), or one the policy denied', () => {
    const far = [call('vault.read_secret', T0), call('http.post', T0 + 3_600_000)];
    expect(detectChains(input(TRIAGE, far), cfg.chains)).toEqual([]);
    expect(detectChains(input(TRIAGE, [far[0]!, call('http.post', T0 + 3_600_000 - 1)]), cfg.chains)).toHaveLength(1);
    const denied = [call('vault.read_secret', T0, { policyEffect: 'deny' }), call('http.post', T0 + S)];
    expect(detectChains(input(TRIAGE, denied), cfg.chains)).toEqual([]);
    // the order matters: a post then a secret read is not the chain
    expect(detectChains(input(TRIAGE, [call('http.post', T0), call('vault.read_secret', T0 + S)]), cfg.chains)).toEqual([]);
  });

  it('flags a recipient that came only from untrusted tool output (data flow through provenance)', () => {
    const signals = detectChains(input(TRIAGE, [call('kb.search', T0), call('mail.send', T0 + S, { untrustedArgs: ['to'] })]), cfg.chains);
    expect(signals).toEqual([expect.objectContaining({ evidence: expect.objectContaining({ rule: 'untrusted-recipient', untrusted_args: ['to'] }) })]);
    expect(detectChains(input(TRIAGE, [call('mail.send', T0, { untrustedArgs: ['body'] })]), cfg.chains)).toEqual([]);
  });

  it('runs rules written in the config format: tools by glob, three steps in order', () => {
    // `within` is still accepted (older configurations) and no longer limits anything
    const custom = chainsConfigSchema.parse({ rules: [{ id: 'search-get-export', steps: [{ tool: ['helpdesk.search_*'] }, { tool: ['helpdesk.get_*'] }, { tool: ['*.export_*'] }], within: 4, severity: 'medium', confidence: 0.6 }] });
    const trace = [call('helpdesk.search_tickets', T0), call('helpdesk.get_ticket', T0 + S), call('helpdesk.export_tickets', T0 + 2 * S)];
    expect(detectChains(input(TRIAGE, trace, {}, custom), custom).map((s) => s.evidence['rule'])).toEqual(['search-get-export']);
    expect(detectChains(input(TRIAGE, [trace[1]!, trace[0]!, trace[2]!], {}, custom), custom)).toEqual([]);
  });
});

describe('rate and burst', () => {
  it('flags a burst against the absolute ceiling', () => {
    const burst = Array.from({ length: 70 }, (_, i) => call('kb.search', T0 + i * 100));
    expect(detectRate(input(TRIAGE, burst), cfg.rate)).toEqual([expect.objectContaining({ detector: 'rate', evidence: expect.objectContaining({ kind: 'ceiling', calls_in_window: 70 }) })]);
  });

  it("flags a burst against the task's own rhythm, and not the rhythm itself", () => {
    // one call every 30 s for 10 minutes…
    const steady = Array.from({ length: 20 }, (_, i) => call('kb.search', T0 + i * 30 * S));
    expect(detectRate(input(TRIAGE, steady), cfg.rate)).toEqual([]);
    // …then 12 calls in 3 seconds
    const end = T0 + 20 * 30 * S;
    const burst = [...steady, ...Array.from({ length: 12 }, (_, i) => call('kb.search', end + i * 250))];
    expect(detectRate(input(TRIAGE, burst), cfg.rate)).toEqual([expect.objectContaining({ severity: 'medium', evidence: expect.objectContaining({ kind: 'task_rhythm', calls_in_window: 12 }) })]);
  });

  it("flags a window much busier than the agent type's typical busiest one", () => {
    const h = new BehaviourHistory();
    for (let i = 0; i < 5; i++) h.baseline('support').learnPeak(3);
    const calls = Array.from({ length: 10 }, (_, i) => call('kb.search', T0 + i * 500));
    expect(detectRate(input(TRIAGE, calls, { baseline: h.baseline('support') }), cfg.rate)).toEqual([expect.objectContaining({ evidence: expect.objectContaining({ kind: 'agent_type_baseline', typical_peak: 3 }) })]);
    expect(detectRate(input(TRIAGE, calls), cfg.rate)).toEqual([]);
  });
});

describe('novelty', () => {
  it('flags a tool never seen for the agent type, once the baseline has seen enough', () => {
    const h = new BehaviourHistory();
    const b = h.baseline('support');
    const learn = (n: number) => {
      for (let i = 0; i < n; i++) b.learn(call(i % 2 === 0 ? 'helpdesk.search_tickets' : 'helpdesk.get_ticket', T0, { argShape: 'x(query:string)' }));
    };
    learn(10);
    const novel = call('shell.exec', T0 + S);
    // a young baseline says nothing
    expect(detectNovelty(input(TRIAGE, [novel], { baseline: b }), cfg.novelty)).toEqual([]);
    learn(60);
    expect(detectNovelty(input(TRIAGE, [novel], { baseline: b }), cfg.novelty)).toEqual([expect.objectContaining({ detector: 'novelty', severity: 'medium', evidence: expect.objectContaining({ kind: 'tool', tool: 'shell.exec', observations: 70 }) })]);
    // known tool, known shape, known resource kind: nothing
    expect(detectNovelty(input(TRIAGE, [call('helpdesk.get_ticket', T0, { argShape: 'x(query:string)' })], { baseline: b }), cfg.novelty)).toEqual([]);
    // known tool, new argument shape and resource kind
    const odd = call('helpdesk.get_ticket', T0, { argShape: 'helpdesk.get_ticket(query:string,webhook:string)', resourceKind: 'customer' });
    expect(detectNovelty(input(TRIAGE, [odd], { baseline: b }), cfg.novelty).map((s) => s.evidence['kind'])).toEqual(['resource', 'arg_shape']);
  });
});

describe('volume', () => {
  it("flags records touched past the mandate's declared scale, and past the budget-derived one", () => {
    const c = [call('helpdesk.export_tickets', T0)];
    const within = detectVolume(input(TRIAGE, c, { volume: { records: 900, bytes: 10_000, results: 3 }, task: { ...input(TRIAGE, c).task, declaredScale: { records: 1000 } } }), cfg.volume);
    expect(within).toEqual([]);
    const over = detectVolume(input(TRIAGE, c, { volume: { records: 5000, bytes: 10_000, results: 4 }, task: { ...input(TRIAGE, c).task, declaredScale: { records: 1000 } } }), cfg.volume);
    expect(over).toEqual([expect.objectContaining({ severity: 'high', evidence: expect.objectContaining({ basis: 'mandate scale', max_records: 1000, ratio: 5 }) })]);
    // no scale declared: 200 budgeted calls × 100 records
    const derived = detectVolume(input(TRIAGE, c, { volume: { records: 25_000, bytes: 0, results: 9 } }), cfg.volume);
    expect(derived).toEqual([expect.objectContaining({ severity: 'medium', evidence: expect.objectContaining({ basis: 'call budget', max_records: 20_000 }) })]);
  });
});

describe('retry loops', () => {
  it('flags repeated denied calls (probing), and not a single refusal', () => {
    const one = [call('shell.exec', T0, { policyEffect: 'deny' })];
    expect(detectRetry(input(TRIAGE, one), cfg.retry)).toEqual([]);
    const probing = ['shell.exec', 'http.post', 'mail.send', 'vault.read_secret', 'shell.exec'].map((t, i) => call(t, T0 + i * S, { policyEffect: 'deny', argsHash: `h${i}` }));
    expect(detectRetry(input(TRIAGE, probing), cfg.retry)).toEqual([expect.objectContaining({ detector: 'retry', evidence: expect.objectContaining({ denied_in_window: 5 }) })]);
    const same = [1, 2, 3].map((i) => call('shell.exec', T0 + i * S, { policyEffect: 'deny', argsHash: 'same' }));
    expect(detectRetry(input(TRIAGE, same), cfg.retry)).toEqual([expect.objectContaining({ evidence: expect.objectContaining({ same_call: 3 }) })]);
    // an allowed call is never a retry loop, and old denials fall out of the window
    expect(detectRetry(input(TRIAGE, [...probing.slice(0, 4), call('kb.search', T0 + 5 * S)]), cfg.retry)).toEqual([]);
    expect(detectRetry(input(TRIAGE, [...probing.slice(0, 4), call('shell.exec', T0 + 120 * S, { policyEffect: 'deny' })]), cfg.retry)).toEqual([]);
  });
});

describe('all detectors', () => {
  it('are each switched off by their own config', () => {
    const off = config().detectors;
    const none = { ...off, drift: { ...off.drift, enabled: false }, chains: { ...off.chains, enabled: false }, rate: { ...off.rate, enabled: false }, novelty: { ...off.novelty, enabled: false }, volume: { ...off.volume, enabled: false }, retry: { ...off.retry, enabled: false } };
    const trace = [call('vault.read_secret', T0), call('http.post', T0 + S, { policyEffect: 'deny' })];
    expect(runDetectors(input(TRIAGE, trace), off).length).toBeGreaterThan(0);
    expect(runDetectors(input(TRIAGE, trace), none)).toEqual([]);
  });
});

describe('a tool the catalogue does not classify', () => {
  it('drifts high unless the mandate names it exactly (a glob is not a name), and is novel before any baseline', () => {
    const wire = call('billing.wire_funds', T0);
    expect(wire.category).toBe('unknown');
    const named = input(TRIAGE, [wire], { task: { ...profile(TRIAGE), declaredTools: new Set(['billing.wire_funds']) } });
    const globbed = input(TRIAGE, [wire], { task: { ...profile(TRIAGE), declaredTools: new Set() } });
    expect(detectDrift(named, cfg.drift)).toEqual([]);
    expect(detectDrift(globbed, cfg.drift)).toEqual([expect.objectContaining({ severity: 'high', evidence: expect.objectContaining({ class: 'uncatalogued' }) })]);
    expect(detectNovelty(named, cfg.novelty)).toEqual([expect.objectContaining({ detector: 'novelty', evidence: expect.objectContaining({ kind: 'uncatalogued_tool', observations: 0 }) })]);
  });

  it('is sensitive for step-up and removed by any narrowing, whatever the containment config says', () => {
    expect(isSensitive({ categories: [], risks: [] }, 'unknown', 'unknown')).toBe(true);
    expect(isSensitive({ categories: [], risks: [] }, 'read', 'unknown')).toBe(true);
    expect(isSensitive({ categories: [], risks: [] }, 'read', 'low')).toBe(false);
    const allow = { effect: 'allow' as const, reasons: [] };
    const narrowed = { stepUp: false, narrowed: ['http.*'], suspended: false, killed: false };
    expect(restrict(allow, { state: narrowed, tool: 'billing.wire_funds', sensitive: true, unknown: true })).toMatchObject({ effect: 'deny', restrictedBy: 'narrow' });
    expect(restrict(allow, { state: narrowed, tool: 'kb.search', sensitive: false, unknown: false }).effect).toBe('allow');
  });
});
