import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PolicySet, callRequest, parseMandate, unknownTool, type Agent, type JsonObject, type Task } from '../src/index.ts';
import { likeMatcher } from '../src/policy/applicability.ts';
import { hasher } from './helpers.ts';

// Policies of every shape the narrowing reads, and shapes it must leave alone.
const POLICIES = `
@id("p.kb") permit (principal, action == Mandate::Action::"call_tool", resource) when { resource.name like "kb.*" };
@id("p.kb-and") permit (principal, action == Mandate::Action::"call_tool", resource) when { resource.name like "kb.*" && resource.hasTag("page") && resource.getTag("page") == "faq" };
@id("p.exact") permit (principal, action == Mandate::Action::"call_tool", resource == Mandate::Tool::"mail.send");
@id("p.eq") permit (principal, action == Mandate::Action::"call_tool", resource) when { "pay.refund" == resource.name };
@id("p.mid") permit (principal, action == Mandate::Action::"call_tool", resource) when { resource.name like "*.read*" };
@id("p.or") permit (principal, action == Mandate::Action::"call_tool", resource) when { resource.name like "x.*" || resource.category == "read" };
@id("p.not-first") permit (principal, action == Mandate::Action::"call_tool", resource) when { resource.risk == "low" && resource.name like "db.*" };
@id("f.err-guarded") forbid (principal, action == Mandate::Action::"call_tool", resource) when { resource.name like "pay.*" && context.time.epoch * 10000000000 > 0 };
@id("f.err-unguarded") forbid (principal, action == Mandate::Action::"call_tool", resource) when { resource.hasTag("boom") && context.time.epoch * 10000000000 > 0 };
@id("f.unless") forbid (principal, action == Mandate::Action::"call_tool", resource) when { resource.name like "fs.*" } unless { resource.hasTag("path") };
@id("s.mail") @step_up("") forbid (principal, action == Mandate::Action::"call_tool", resource) when { resource.name like "mail.*" };
@id("p.start") permit (principal, action == Mandate::Action::"start_task", resource);
@id("p.any-action") permit (principal, action, resource) when { principal.owner == "root" };
@id("p.in") permit (principal, action in [Mandate::Action::"call_tool"], resource) when { resource.name like "net.*" && resource.hasTag("url") && resource.getTag("url") like "https://*" };
`;

const agent = (owner: string): Agent => ({ id: 'spiffe://t/a', owner, type: 't', status: 'active', ceiling: {}, createdAt: 0, updatedAt: 0 });
const task: Task = {
  id: 't',
  agentId: 'spiffe://t/a',
  mandate: parseMandate({ purpose: 'p', environment: 'prod', tools: [{ name: '*' }] }),
  mandateHash: 'h',
  state: 'active',
  txn: 'x',
  parentId: undefined,
  depth: 0,
  createdAt: 0,
  expiresAt: 1,
  maxExpiresAt: 1,
  endedAt: undefined,
  endReason: undefined,
};

describe('evaluating only the policies that can apply', () => {
  const set = PolicySet.load([{ source: 'p.cedar', text: POLICIES }], { tools: [{ name: 'kb.*', category: 'read', risk: 'low' }, { name: 'db.*', risk: 'low' }] }, hasher);

  it('gives exactly the answer of the whole policy set, for any tool and arguments', () => {
    const tools = fc.constantFrom('kb.search', 'kb', 'kb.', 'mail.send', 'mail.bulk', 'pay.refund', 'pay.transfer', 'fs.read', 'fs.write', 'db.query', 'net.get', 'x.y', 'a.read.b', 'readme', 'kb*', 'other');
    const args = fc.record({ page: fc.constantFrom('faq', 'x'), path: fc.constant('/a'), boom: fc.constant('1'), url: fc.constantFrom('https://a', 'http://a') }, { requiredKeys: [] });
    fc.assert(
      fc.property(tools, args, fc.constantFrom('root', 'team'), (tool, a, owner) => {
        const req = callRequest({
          agent: agent(owner),
          task,
          tool: set.catalog.lookup(tool),
          args: a as JsonObject,
          target: undefined,
          callId: 'c',
          environment: 'prod',
          now: Date.parse('2026-11-23T10:00:00Z'),
          usage: { calls: 0, toolCalls: 0 },
          delegationChain: [],
          provenance: { untrusted: [], trusted: [], purpose: [] },
        });
        expect(set.evaluateCall(req)).toEqual(set.evaluateCallUnnarrowed(req));
      }),
      { numRuns: 400 },
    );
  });

  it('still reports an erroring policy that applies', () => {
    const req = callRequest({ agent: agent('team'), task, tool: unknownTool('pay.refund'), args: {}, target: undefined, callId: 'c', environment: 'prod', now: Date.parse('2026-11-23T10:00:00Z'), usage: { calls: 0, toolCalls: 0 }, delegationChain: [], provenance: { untrusted: [], trusted: [], purpose: [] } });
    expect(set.evaluateCall(req)).toMatchObject({ decision: 'deny', reason: 'POLICY_EVALUATION_ERROR', policyIds: ['f.err-guarded'] });
  });

  it('denies everything once disposed', () => {
    const s = PolicySet.load([{ source: 'p.cedar', text: POLICIES }], {}, hasher);
    s.dispose();
    const req = callRequest({ agent: agent('root'), task, tool: unknownTool('kb.search'), args: {}, target: undefined, callId: 'c', environment: 'prod', now: 0, usage: { calls: 0, toolCalls: 0 }, delegationChain: [], provenance: { untrusted: [], trusted: [], purpose: [] } });
    expect(s.evaluateCall(req).decision).toBe('deny');
  });
});

describe('likeMatcher', () => {
  const cedarLike = (pattern: string): unknown[] => [...pattern].map((c) => (c === '*' ? 'Wildcard' : { Literal: c }));
  const regexOf = (pattern: string) => new RegExp('^' + pattern.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[\\s\\S]*') + '$');
  it('agrees with a regular-expression reading of the pattern', () => {
    const alpha = fc.constantFrom('a', 'b', '.', '*');
    fc.assert(
      fc.property(fc.array(alpha, { maxLength: 7 }), fc.array(fc.constantFrom('a', 'b', '.'), { maxLength: 8 }), (p, v) => {
        const pattern = p.join('');
        const value = v.join('');
        expect((likeMatcher(cedarLike(pattern)) as (s: string) => boolean)(value)).toBe(regexOf(pattern).test(value));
      }),
      { numRuns: 1000 },
    );
  });
});
