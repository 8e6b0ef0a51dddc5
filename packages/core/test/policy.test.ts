import { describe, expect, it } from 'vitest';
import { PolicySet, callRequest, parseMandate, unknownTool, type Agent, type Task } from '../src/index.ts';
import { hasher } from './helpers.ts';

const agent: Agent = { id: 'spiffe://acme.test/agents/triage', owner: 'team-support', type: 'triage', status: 'active', ceiling: {}, createdAt: 0, updatedAt: 0 };
const mandate = parseMandate({ purpose: 'p', environment: 'prod', tools: [{ name: '*' }] });
const task: Task = { id: 't1', agentId: agent.id, mandate, mandateHash: 'h', state: 'active', txn: 'x', parentId: undefined, depth: 0, createdAt: 0, expiresAt: 1e15, maxExpiresAt: 1e15, endedAt: undefined, endReason: undefined };

function request(tool: string, args: Record<string, string | number> = {}) {
  return callRequest({
    agent,
    task,
    tool: { ...unknownTool(tool), category: tool.startsWith('mail') ? 'external_sink' : 'read' },
    args,
    target: undefined,
    callId: 'c1',
    environment: 'prod',
    now: Date.parse('2026-11-23T10:00:00Z'),
    usage: { calls: 0, toolCalls: 0 },
    delegationChain: [],
    provenance: { untrusted: [], trusted: [], purpose: [] },
  });
}

const load = (text: string) => PolicySet.load([{ source: 'test.cedar', text }], {}, hasher);

describe('PolicySet', () => {
  it('leaves every list a request shares (the mandate\'s, the purpose\'s words, the empty ones) as it was, in either engine', () => {
    const text = '@id("r") permit(principal, action == Mandate::Action::"call_tool", resource) when { context.task.purpose_words.containsAny(["p"]) && !context.provenance.unknown_args.contains("x") && !context.task.data_classes.contains("secret") };';
    for (const engine of ['compiled', 'cedar'] as const) {
      const set = engine === 'compiled' ? load(text) : PolicySet.load([{ source: 'test.cedar', text }], {}, hasher, { engine: 'cedar' });
      const r = request('kb.search');
      const before = JSON.stringify(r);
      expect(set.evaluateCall(r).decision).toBe('allow');
      expect(JSON.stringify(r)).toBe(before);
    }
    // a later request's lists, shared with the first's, are still as they were made
    const ctx = request('kb.search').context as { task: { purpose_words: string[] }; provenance: Record<string, string[]> };
    expect(ctx.task.purpose_words).toEqual(['p']);
    for (const list of Object.values(ctx.provenance)) expect(list).toEqual([]);
  });

  it('denies everything when the policy set is empty', () => {
    const r = PolicySet.load([], {}, hasher).evaluateCall(request('kb.search'));
    expect(r).toMatchObject({ decision: 'deny', reason: 'NO_PERMITTING_POLICY' });
  });
  it('permits what a policy permits and names the policy', () => {
    const r = load('@id("allow-read") permit(principal, action == Mandate::Action::"call_tool", resource) when { resource.category == "read" };').evaluateCall(request('kb.search'));
    expect(r).toEqual({ decision: 'allow', reason: 'PERMITTED', policyIds: ['allow-read'], errors: [] });
  });
  it('lets a forbid override a permit', () => {
    const p = load(`
      @id("all") permit(principal, action, resource);
      @id("no-mail") forbid(principal, action, resource == Mandate::Tool::"mail.send");`);
    expect(p.evaluateCall(request('mail.send'))).toMatchObject({ decision: 'deny', reason: 'POLICY_FORBID', policyIds: ['no-mail'] });
  });
  it('denies when a forbid policy errors, although Cedar alone would allow', () => {
    // Validation cannot see integer overflow; at run time Cedar skips the erroring forbid.
    const p = load(`
      @id("all") permit(principal, action, resource);
      @id("overflowing-forbid") forbid(principal, action == Mandate::Action::"call_tool", resource)
        when { context.time.epoch * 10000000000 > 0 };`);
    const r = p.evaluateCall(request('pay'));
    expect(r).toMatchObject({ decision: 'deny', reason: 'POLICY_EVALUATION_ERROR', policyIds: ['overflowing-forbid'] });
    expect(r.errors[0]?.message).toBeTruthy();
  });
  it('reads call arguments as tags of the tool entity', () => {
    const p = load('@id("kb-only") permit(principal, action == Mandate::Action::"call_tool", resource) when { resource.hasTag("path") && resource.getTag("path") like "/srv/kb/*" };');
    expect(p.evaluateCall(request('fs.read', { path: '/srv/kb/a.md' })).decision).toBe('allow');
    expect(p.evaluateCall(request('fs.read', { path: '/etc/passwd' })).decision).toBe('deny');
  });
  it('turns a matching @step_up forbid into a step-up, only when the rest permits', () => {
    const p = load(`
      @id("all") permit(principal, action == Mandate::Action::"call_tool", resource) when { resource.category != "exec" };
      @id("mail-needs-approval") @step_up("") forbid(principal, action == Mandate::Action::"call_tool", resource) when { resource.category == "external_sink" };`);
    expect(p.evaluateCall(request('mail.send'))).toMatchObject({ decision: 'step_up', reason: 'APPROVAL_REQUIRED', policyIds: ['mail-needs-approval'] });
    expect(p.evaluateCall(request('kb.search')).decision).toBe('allow');
  });
  it('a hard forbid wins over a step-up', () => {
    const p = load(`
      @id("all") permit(principal, action, resource);
      @id("su") @step_up("") forbid(principal, action == Mandate::Action::"call_tool", resource) when { resource.category == "external_sink" };
      @id("hard") forbid(principal, action, resource == Mandate::Tool::"mail.send");`);
    expect(p.evaluateCall(request('mail.send'))).toMatchObject({ decision: 'deny', reason: 'POLICY_FORBID' });
  });
  it('refuses to load policies that do not validate against the schema, listing each', () => {
    expect(() => load('permit(principal, action, resource) when { context.nonexistent == 1 };')).toThrowError(expect.objectContaining({ code: 'POLICY_INVALID' }));
    expect(() => load('permit(principal, action, resource) when {')).toThrowError(expect.objectContaining({ code: 'POLICY_INVALID' }));
    expect(() => load('@id("a") permit(principal, action, resource); @id("a") permit(principal, action, resource);')).toThrow(/duplicate/);
    expect(() => load('@step_up("") permit(principal, action, resource);')).toThrow(/step_up/);
  });
  it('changes its version when a policy or the tool catalogue changes', () => {
    const a = load('permit(principal, action, resource);').version;
    const b = load('forbid(principal, action, resource);').version;
    const c = PolicySet.load([{ source: 'test.cedar', text: 'permit(principal, action, resource);' }], { tools: [{ name: 'x' }] }, hasher).version;
    expect(new Set([a, b, c]).size).toBe(3);
  });
});
