import { describe, expect, it } from 'vitest';
import { misfit, parseMandate, PolicySet, type Agent, type Task } from '../src/index.ts';
import { hasher } from './helpers.ts';

const agent: Agent = { id: 'spiffe://acme.test/agents/triage', owner: 'team', type: 'support', status: 'active', ceiling: {}, createdAt: 0, updatedAt: 0 };
const START = 'permit (principal, action == Mandate::Action::"start_task", resource);';
const mandate = parseMandate({ purpose: 'p', environment: 'prod', tools: [{ name: 'kb.search' }, { name: 'fs.*' }] });
const task: Task = {
  id: 't1', agentId: agent.id, mandate, mandateHash: 'h', state: 'active', txn: 'x', parentId: undefined, depth: 0,
  createdAt: 0, expiresAt: 1e13, maxExpiresAt: 1e13, endedAt: undefined, endReason: undefined,
};
const load = (...texts: string[]) => PolicySet.load(texts.map((text, i) => ({ source: `p${i}.cedar`, text })), {}, hasher);
const NOW = Date.UTC(2026, 10, 2, 10);

describe('re-evaluating a live task against changed policies (the approximation)', () => {
  it('keeps a task whose tools a conditioned permit may still allow', () => {
    const set = load(START, 'permit (principal, action == Mandate::Action::"call_tool", resource) when { context.environment == "prod" };');
    expect(misfit(task, agent, set, 'prod', NOW)).toBeUndefined();
  });

  it('keeps a task when permits name its tools by resource.name', () => {
    const set = load(START, 'permit (principal, action == Mandate::Action::"call_tool", resource) when { resource.name like "kb.*" };', 'permit (principal, action == Mandate::Action::"call_tool", resource) when { resource.name == "fs.read_file" };');
    expect(misfit(task, agent, set, 'prod', NOW)).toBeUndefined();
  });

  it('finds a tool no permit can apply to any more', () => {
    const set = load(START, 'permit (principal, action == Mandate::Action::"call_tool", resource) when { resource.name like "fs.*" };');
    expect(misfit(task, agent, set, 'prod', NOW)).toContain('"kb.search"');
  });

  it('finds a tool an unconditional forbid names, but not one a conditioned forbid names', () => {
    const permit = 'permit (principal, action == Mandate::Action::"call_tool", resource);';
    expect(misfit(task, agent, load(START, permit, 'forbid (principal, action == Mandate::Action::"call_tool", resource == Mandate::Tool::"kb.search");'), 'prod', NOW)).toContain('"kb.search"');
    expect(misfit(task, agent, load(START, permit, 'forbid (principal, action == Mandate::Action::"call_tool", resource == Mandate::Tool::"kb.search") when { context.environment == "dev" };'), 'prod', NOW)).toBeUndefined();
    // a step-up is not a forbid: the call can still be approved
    expect(misfit(task, agent, load(START, permit, '@step_up("")\nforbid (principal, action == Mandate::Action::"call_tool", resource == Mandate::Tool::"kb.search");'), 'prod', NOW)).toBeUndefined();
  });

  it('finds a task the start_task policies, the ceiling or the environment no longer admit', () => {
    const permit = 'permit (principal, action == Mandate::Action::"call_tool", resource);';
    expect(misfit(task, agent, load(permit), 'prod', NOW)).toContain('start_task');
    expect(misfit(task, { ...agent, ceiling: { tools: ['kb.*'] } }, load(START, permit), 'prod', NOW)).toContain('MANDATE_EXCEEDS_CEILING');
    expect(misfit(task, agent, load(START, permit), 'staging', NOW)).toContain('ENVIRONMENT_MISMATCH');
  });
});
