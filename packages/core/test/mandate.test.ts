import { describe, expect, it } from 'vitest';
import { ceilingViolations, checkCall, mandateHash, parseCeiling, parseMandate, unknownTool } from '../src/index.ts';
import { hasher } from './helpers.ts';

const base = {
  purpose: 'Triage support tickets',
  environment: 'prod',
  ttl: '15m',
  tools: [{ name: 'helpdesk.search' }, { name: 'helpdesk.draft_reply', args: { ticket_id: { regex: '^T-[0-9]+$' } } }, { name: 'fs.read_file', args: { path: { prefix: '/srv/kb/' } } }],
  data_classes: ['internal'],
  budgets: { calls: 3, per_tool: { 'helpdesk.draft_reply': 1 } },
};
const now = Date.parse('2026-11-23T10:00:00Z');
const usage = { calls: 0, toolCalls: 0 };

describe('parseMandate', () => {
  it('normalises durations to milliseconds', () => {
    expect(parseMandate(base).ttl).toBe(15 * 60_000);
  });
  it('rejects unknown keys, naming them', () => {
    expect(() => parseMandate({ ...base, admin: true })).toThrow(/admin/);
  });
  it('rejects an invalid regex at declaration, not at call time', () => {
    expect(() => parseMandate({ ...base, tools: [{ name: 'x', args: { a: { regex: '(' } } }] })).toThrowError(expect.objectContaining({ code: 'MANDATE_INVALID' }));
  });
  it('rejects a constraint that names two kinds at once', () => {
    expect(() => parseMandate({ ...base, tools: [{ name: 'x', args: { a: { equals: 1, regex: 'x' } } }] })).toThrow();
  });
  it('hashes the same mandate to the same value whatever the key order', () => {
    const a = parseMandate(base);
    const b = parseMandate(Object.fromEntries(Object.entries(base).reverse()));
    expect(mandateHash(a, hasher)).toBe(mandateHash(b, hasher));
    expect(mandateHash(a, hasher)).toMatch(/^sha256:[0-9a-f]{64}$/);
  });
});

describe('checkCall', () => {
  const m = parseMandate(base);
  const facts = (tool: string, args: Record<string, string>, u = usage) => ({ tool, resource: undefined, args, now, toolInfo: unknownTool(tool), usage: u });

  it('allows a granted tool with valid arguments', () => {
    expect(checkCall(m, facts('helpdesk.draft_reply', { ticket_id: 'T-1042' })).ok).toBe(true);
  });
  it('denies a tool outside the mandate', () => {
    expect(checkCall(m, facts('shell.exec', {})).reasons).toEqual(['TOOL_NOT_IN_MANDATE']);
  });
  it('denies an injected argument with ARG_CONSTRAINT_FAILED and says which', () => {
    const v = checkCall(m, facts('helpdesk.draft_reply', { ticket_id: '1042 OR 1=1' }));
    expect(v.reasons).toEqual(['ARG_CONSTRAINT_FAILED']);
    expect(v.details.join()).toMatch(/ticket_id/);
  });
  it('denies a path outside the prefix', () => {
    expect(checkCall(m, facts('fs.read_file', { path: '/etc/shadow' })).reasons).toEqual(['ARG_CONSTRAINT_FAILED']);
  });
  it('denies once the total or per-tool budget is used up', () => {
    expect(checkCall(m, facts('helpdesk.search', {}, { calls: 3, toolCalls: 0 })).reasons).toEqual(['BUDGET_EXHAUSTED']);
    expect(checkCall(m, facts('helpdesk.draft_reply', { ticket_id: 'T-1' }, { calls: 1, toolCalls: 1 })).reasons).toEqual(['TOOL_BUDGET_EXHAUSTED']);
  });
  it('denies a tool that touches an undeclared data class', () => {
    const v = checkCall(m, { ...facts('helpdesk.search', {}), toolInfo: { ...unknownTool('helpdesk.search'), dataClasses: ['customer-pii'] } });
    expect(v.reasons).toEqual(['DATA_CLASS_NOT_DECLARED']);
  });
  it('denies outside the time window (UTC hours that wrap midnight)', () => {
    const night = parseMandate({ ...base, time_window: { hours: { start: '22:00', end: '06:00' } } });
    expect(checkCall(night, facts('helpdesk.search', {})).reasons).toEqual(['OUTSIDE_TIME_WINDOW']);
    expect(checkCall(night, { ...facts('helpdesk.search', {}), now: Date.parse('2026-11-23T23:30:00Z') }).ok).toBe(true);
  });
  it('denies a resource the mandate does not list', () => {
    const r = parseMandate({ ...base, resources: ['ticket:*'] });
    expect(checkCall(r, { ...facts('helpdesk.search', {}), resource: 'ticket:T-1' }).ok).toBe(true);
    expect(checkCall(r, { ...facts('helpdesk.search', {}), resource: 'invoice:9' }).reasons).toEqual(['RESOURCE_NOT_IN_MANDATE']);
  });
  it('finds the approval rule that applies to a call', () => {
    const a = parseMandate({ ...base, approvals: [{ tool: 'helpdesk.*', when: { 'args.visibility': { one_of: ['public'] } } }] });
    expect(checkCall(a, facts('helpdesk.search', { visibility: 'public' })).approval?.tool).toBe('helpdesk.*');
    expect(checkCall(a, facts('helpdesk.search', { visibility: 'internal' })).approval).toBeUndefined();
  });
});

describe('ceilingViolations', () => {
  const m = parseMandate(base);
  it('accepts a mandate inside the ceiling', () => {
    expect(ceilingViolations(m, parseCeiling({ tools: ['helpdesk.*', 'fs.read_file'], data_classes: ['internal', 'pii'], environments: ['prod'], max_ttl: '1h', max_calls: 10 }))).toEqual([]);
  });
  it('refuses every axis where the mandate asks for more', () => {
    const v = ceilingViolations(m, parseCeiling({ tools: ['helpdesk.search'], data_classes: [], environments: ['staging'], max_ttl: '5m', max_calls: 2 }));
    expect(v.length).toBe(6);
  });
  it('does not accept a wider glob under a narrower ceiling', () => {
    const wide = parseMandate({ ...base, tools: [{ name: 'helpdesk.*' }] });
    expect(ceilingViolations(wide, parseCeiling({ tools: ['helpdesk.search', 'helpdesk.get'] }))).toHaveLength(1);
  });
});
