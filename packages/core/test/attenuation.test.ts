import { describe, expect, it } from 'vitest';
import { parseMandate, type MandateInput } from '../src/index.ts';
import { attenuationViolations, constraintImplicationGap, globsOverlap } from '../src/mandate/attenuation.ts';

const parentInput = {
  purpose: 'Triage support tickets',
  environment: 'prod',
  ttl: '1h',
  time_window: { not_before: '2026-11-23T00:00:00Z', not_after: '2026-11-28T00:00:00Z', hours: { start: '07:00', end: '19:00' }, weekdays: ['mon', 'tue', 'wed', 'thu', 'fri'] },
  tools: [
    { name: 'helpdesk.search' },
    { name: 'helpdesk.draft_reply', args: { ticket_id: { regex: 'T-[0-9]+' } } },
    { name: 'fs.read_file', args: { path: { prefix: '/srv/kb/' } } },
    { name: 'mail.send', args: { to: { domains: ['acme.com', '*.acme.io'] } } },
    { name: 'pay.refund', args: { amount: { range: { min: 0, max: 200 } }, currency: { one_of: ['EUR', 'USD'] } } },
  ],
  resources: ['ticket:*'],
  data_classes: ['internal', 'customer-pii'],
  budgets: { calls: 100, per_tool: { 'helpdesk.draft_reply': 20, 'pay.*': 5 } },
  delegation: { allowed: true, max_depth: 2, max_children: 3 },
  approvals: [{ tool: 'pay.*' }, { tool: 'mail.send', when: { 'args.to': { domains: ['*.acme.io'] } } }],
} satisfies MandateInput;

/** A child that is the parent minus what a sub-agent cannot have: the starting point. */
const childInput = {
  ...parentInput,
  purpose: 'Look up one ticket',
  delegation: { allowed: false },
  budgets: { calls: 10, per_tool: { 'helpdesk.draft_reply': 2, 'pay.*': 1 } },
} satisfies MandateInput;

const parent = parseMandate(parentInput);
const violations = (child: Partial<MandateInput>, parentOver: Partial<MandateInput> = {}, opts: { parentRemainingCalls: number | undefined } = { parentRemainingCalls: 60 }): string[] =>
  attenuationViolations(parseMandate({ ...childInput, ...child }), parseMandate({ ...parentInput, ...parentOver }), opts);
const noRemaining = { parentRemainingCalls: undefined };
const tools = (...extra: MandateInput['tools']): MandateInput['tools'] => extra;

describe('attenuationViolations: the starting point', () => {
  it('accepts the parent minus delegation with a smaller budget', () => {
    expect(violations({})).toEqual([]);
  });
  it('accepts a much narrower child', () => {
    expect(violations({ tools: tools({ name: 'helpdesk.search' }), resources: ['ticket:T-1'], data_classes: [], approvals: parentInput.approvals })).toEqual([]);
  });
  it('is not affected by ttl or purpose (the caller caps the expiry)', () => {
    expect(violations({ ttl: '8h', purpose: 'something else' })).toEqual([]);
  });
});

describe('tools and argument constraints', () => {
  it('refuses a tool the parent does not grant', () => {
    expect(violations({ tools: tools({ name: 'shell.exec' }) })).toEqual(['tool "shell.exec" is not granted by the parent']);
  });
  it('refuses a wider glob (helpdesk.* under helpdesk.search)', () => {
    expect(violations({ tools: tools({ name: 'helpdesk.*' }) })).toEqual(['tool "helpdesk.*" is not granted by the parent']);
  });
  it('accepts a concrete tool under a parent glob', () => {
    expect(violations({ tools: tools({ name: 'helpdesk.search' }) }, { tools: tools({ name: 'helpdesk.*' }) })).toEqual([]);
  });
  it('refuses a child grant that drops an argument constraint', () => {
    const v = violations({ tools: tools({ name: 'fs.read_file' }) });
    expect(v).toHaveLength(1);
    expect(v[0]).toMatch(/fs\.read_file.*argument "path" is constrained by the parent but not by the child/);
  });
  it('accepts a child that constrains more arguments than the parent', () => {
    expect(violations({ tools: tools({ name: 'helpdesk.search', args: { query: { regex: '[a-z]+' } } }) })).toEqual([]);
  });
  it('accepts a child grant covered by any one of several parent grants', () => {
    const p = { tools: tools({ name: 'kb.*', args: { page: { equals: 'faq' } } }, { name: 'kb.search' }) };
    expect(violations({ tools: tools({ name: 'kb.search', args: { q: { regex: '.*' } } }) }, p)).toEqual([]);
  });
  it('refuses a child grant only a union of parent grants would cover (conservative)', () => {
    const p = { tools: tools({ name: 'x', args: { a: { equals: 1 } } }, { name: 'x', args: { a: { equals: 2 } } }) };
    expect(violations({ tools: tools({ name: 'x', args: { a: { one_of: [1] } } }) }, p)).toEqual([]);
    expect(violations({ tools: tools({ name: 'x', args: { a: { one_of: [1, 2] } } }) }, p)).toHaveLength(1);
  });
});

describe('constraint implication', () => {
  const gap = constraintImplicationGap;
  it('identical constraints imply each other, including a regex', () => {
    expect(gap({ regex: 'T-[0-9]+' }, { regex: 'T-[0-9]+' })).toBeUndefined();
  });
  it('a child regex different from the parent\'s is refused, even if narrower', () => {
    expect(gap({ regex: 'T-1[0-9]+' }, { regex: 'T-[0-9]+' })).toBeDefined();
    expect(violations({ tools: tools({ name: 'helpdesk.draft_reply', args: { ticket_id: { regex: 'T-1[0-9]*' } } }) })).toHaveLength(1);
  });
  it('equals and one_of are implied when the parent accepts every value', () => {
    expect(gap({ equals: 'T-1042' }, { regex: 'T-[0-9]+' })).toBeUndefined();
    expect(gap({ one_of: ['T-1', 'T-2'] }, { regex: 'T-[0-9]+' })).toBeUndefined();
    expect(gap({ one_of: ['T-1', '1 OR 1=1'] }, { regex: 'T-[0-9]+' })).toMatch(/1 OR 1=1/);
    expect(gap({ equals: 5 }, { range: { min: 0, max: 10 } })).toBeUndefined();
    expect(gap({ equals: '5' }, { range: { min: 0, max: 10 } })).toBeDefined();
    expect(gap({ one_of: ['EUR'] }, { one_of: ['EUR', 'USD'] })).toBeUndefined();
    expect(gap({ one_of: ['EUR', 'GBP'] }, { one_of: ['EUR', 'USD'] })).toBeDefined();
    expect(gap({ equals: '/srv/kb/a.md' }, { prefix: '/srv/kb' })).toBeUndefined();
    expect(gap({ equals: '/srv/kb/../etc/passwd' }, { prefix: '/srv/kb' })).toBeDefined();
  });
  it('a range must sit inside the parent\'s bounds, declaring each bound the parent has', () => {
    const p = { range: { min: 0, max: 200 } };
    expect(gap({ range: { min: 10, max: 50 } }, p)).toBeUndefined();
    expect(gap({ range: { min: 0, max: 200 } }, p)).toBeUndefined();
    expect(gap({ range: { min: 0, max: 201 } }, p)).toMatch(/maximum/);
    expect(gap({ range: { max: 50 } }, p)).toMatch(/minimum/);
    expect(gap({ range: { min: 5 } }, { range: { min: 0 } })).toBeUndefined();
    expect(gap({ range: { min: 5, max: 6 } }, { equals: 5 })).toBeDefined();
  });
  it('a path prefix must normalise to the parent\'s prefix or below it', () => {
    const p = { prefix: '/srv/kb/' };
    expect(gap({ prefix: '/srv/kb' }, p)).toBeUndefined();
    expect(gap({ prefix: '/srv/kb/docs' }, p)).toBeUndefined();
    expect(gap({ prefix: '/srv//kb/./docs/' }, p)).toBeUndefined();
    expect(gap({ prefix: '/srv/kb/../' }, p)).toMatch(/not under/);
    expect(gap({ prefix: '/srv/kb/docs/../../x' }, p)).toMatch(/not under/);
    expect(gap({ prefix: '/srv/kb-private' }, p)).toMatch(/not under/);
    expect(gap({ prefix: '/srv' }, p)).toMatch(/not under/);
    expect(gap({ prefix: '/..' }, p)).toMatch(/not a plain absolute path/);
    expect(gap({ prefix: '/etc' }, { prefix: '/' })).toBeUndefined();
    expect(violations({ tools: tools({ name: 'fs.read_file', args: { path: { prefix: '/srv/kb/../' } } }) })).toHaveLength(1);
  });
  it('a plain prefix must extend the parent\'s; path and plain prefixes never mix', () => {
    expect(gap({ prefix: 'T-10' }, { prefix: 'T-' })).toBeUndefined();
    expect(gap({ prefix: 'T' }, { prefix: 'T-' })).toBeDefined();
    expect(gap({ prefix: '/srv/kb' }, { prefix: 'srv' })).toMatch(/cannot be compared/);
    expect(gap({ prefix: 'srv/kb' }, { prefix: '/srv' })).toMatch(/cannot be compared/);
  });
  it('every child domain must be covered by a parent entry', () => {
    expect(gap({ domains: ['acme.com'] }, { domains: ['acme.com', '*.acme.io'] })).toBeUndefined();
    expect(gap({ domains: ['ACME.COM.'] }, { domains: ['acme.com'] })).toBeUndefined();
    expect(gap({ domains: ['api.acme.io', '*.eu.acme.io'] }, { domains: ['*.acme.io'] })).toBeUndefined();
    expect(gap({ domains: ['*.acme.io'] }, { domains: ['*.ACME.io.'] })).toBeUndefined();
    expect(gap({ domains: ['evil.com'] }, { domains: ['*.com'] })).toBeUndefined();
    expect(gap({ domains: ['evil.com'] }, { domains: ['acme.com'] })).toMatch(/evil\.com/);
    expect(gap({ domains: ['*.acme.com'] }, { domains: ['acme.com'] })).toMatch(/\*\.acme\.com/);
    expect(gap({ domains: ['acme.io'] }, { domains: ['*.acme.io'] })).toBeDefined();
    expect(gap({ domains: ['*.xacme.io'] }, { domains: ['*.acme.io'] })).toBeDefined();
    expect(gap({ domains: ['*.io'] }, { domains: ['*.acme.io'] })).toBeDefined();
  });
  it('constraints of different kinds do not imply each other', () => {
    expect(gap({ regex: 'a' }, { equals: 'a' })).toBeDefined();
    expect(gap({ domains: ['acme.com'] }, { regex: '.*' })).toBeDefined();
    expect(gap({ prefix: '/srv' }, { regex: '.*' })).toBeDefined();
  });
});

describe('environment, data classes and resources', () => {
  it('refuses another environment', () => {
    expect(violations({ environment: 'staging' })).toEqual(['environment "staging" differs from the parent\'s "prod"']);
  });
  it('refuses a data class the parent did not declare', () => {
    expect(violations({ data_classes: ['internal', 'finance'] })).toEqual(['data class "finance" is not declared by the parent']);
  });
  it('resources must be listed and covered when the parent lists them', () => {
    expect(violations({ resources: ['ticket:T-*', 'ticket:T-1'] })).toEqual([]);
    expect(violations({ resources: ['*'] })).toEqual(['resource "*" is not covered by the parent\'s resources']);
    expect(violations({ resources: ['invoice:1'] })).toHaveLength(1);
    const { resources: _drop, ...withoutResources } = childInput;
    expect(attenuationViolations(parseMandate(withoutResources), parent, { parentRemainingCalls: 60 })).toEqual(['resources must be declared: the parent lists them']);
  });
  it('any resources when the parent lists none', () => {
    expect(violations({ resources: ['*'] }, { resources: undefined })).toEqual([]);
    expect(violations({ resources: undefined }, { resources: undefined })).toEqual([]);
  });
});

describe('time window', () => {
  const tw = parentInput.time_window;
  it('accepts a window inside the parent\'s', () => {
    expect(violations({ time_window: { not_before: '2026-11-24T00:00:00Z', not_after: '2026-11-25T00:00:00+01:00', hours: { start: '09:00', end: '17:00' }, weekdays: ['tue'] } })).toEqual([]);
  });
  it('refuses a window that starts earlier, ends later, or omits a bound', () => {
    expect(violations({ time_window: { ...tw, not_before: '2026-11-22T23:59:59Z' } })).toHaveLength(1);
    expect(violations({ time_window: { ...tw, not_before: '2026-11-23T01:00:00+02:00' } })).toHaveLength(1); // 23:00Z the day before
    expect(violations({ time_window: { ...tw, not_after: '2026-11-28T00:00:01Z' } })).toHaveLength(1);
    const { not_after: _drop, ...open } = tw;
    expect(violations({ time_window: open })).toEqual(['time_window.not_after must be declared and no later than the parent\'s 2026-11-28T00:00:00Z']);
    const { time_window: _tw, ...none } = childInput;
    expect(attenuationViolations(parseMandate(none), parent, { parentRemainingCalls: 60 })).toHaveLength(4);
  });
  it('refuses weekdays the parent does not allow', () => {
    expect(violations({ time_window: { ...tw, weekdays: ['fri', 'sat'] } })).toEqual(['time_window.weekdays sat are outside the parent\'s']);
  });
  it('compares daily hours, including windows that wrap past midnight', () => {
    const night = { ...parentInput, time_window: { hours: { start: '22:00', end: '06:00' } } };
    const child = (start: string, end: string): Partial<MandateInput> => ({ time_window: { hours: { start, end } } });
    expect(violations(child('23:00', '02:00'), night)).toEqual([]);
    expect(violations(child('00:00', '06:00'), night)).toEqual([]);
    expect(violations(child('22:00', '06:00'), night)).toEqual([]);
    expect(violations(child('21:59', '06:00'), night)).toHaveLength(1);
    expect(violations(child('23:00', '07:00'), night)).toHaveLength(1);
    expect(violations(child('02:00', '23:00'), night)).toHaveLength(1);
    expect(violations(child('07:00', '07:00'), night)).toEqual([]); // an empty daily window
    expect(violations(child('09:00', '08:00'), { ...parentInput, time_window: { hours: { start: '08:00', end: '09:00' } } })).toHaveLength(1);
    const hours = (start: string, end: string): Partial<MandateInput> => ({ time_window: { ...tw, hours: { start, end } } });
    expect(violations(hours('08:00', '19:00'))).toEqual([]);
    expect(violations(hours('18:00', '08:00'))).toEqual(['time_window.hours 18:00-08:00 are not within the parent\'s 07:00-19:00']);
  });
});

describe('budgets', () => {
  it('the total must be declared and at most what the parent has left', () => {
    expect(violations({ budgets: { calls: 60, per_tool: childInput.budgets.per_tool } })).toEqual([]);
    expect(violations({ budgets: { calls: 61, per_tool: childInput.budgets.per_tool } })).toEqual(['call budget must be declared and at most the parent\'s remaining 60']);
    expect(violations({ budgets: { per_tool: childInput.budgets.per_tool } })).toHaveLength(1);
  });
  it('never more than the parent\'s declared total, whatever the caller says is left', () => {
    expect(violations({ budgets: { calls: 101, per_tool: childInput.budgets.per_tool } }, {}, noRemaining)).toHaveLength(1);
    expect(violations({ budgets: { calls: 100, per_tool: childInput.budgets.per_tool } }, {}, noRemaining)).toEqual([]);
  });
  it('no total needed when the parent has none', () => {
    const p = { budgets: { per_tool: parentInput.budgets.per_tool } };
    expect(violations({ budgets: { per_tool: childInput.budgets.per_tool } }, p, noRemaining)).toEqual([]);
  });
  it('every parent per-tool limit is kept under the same key, no higher', () => {
    expect(violations({ budgets: { calls: 10, per_tool: { 'helpdesk.draft_reply': 2 } } })).toEqual(['per-tool budget "pay.*" must be declared and at most the parent\'s 5']);
    expect(violations({ budgets: { calls: 10, per_tool: { 'helpdesk.draft_reply': 2, 'pay.*': 6 } } })).toEqual(['per-tool budget "pay.*" of 6 exceeds the parent\'s 5']);
    // conservative: a narrower key that limits the same tools more is still refused
    expect(violations({ budgets: { calls: 10, per_tool: { 'helpdesk.draft_reply': 2, 'pay.refund': 1 } } })).toHaveLength(1);
  });
  it('an extra child key may not raise the limit of a tool the parent limits', () => {
    const per = (extra: Record<string, number>, first = false) => ({ budgets: { calls: 10, per_tool: first ? { ...extra, 'helpdesk.draft_reply': 2, 'pay.*': 1 } : { 'helpdesk.draft_reply': 2, 'pay.*': 1, ...extra } } });
    expect(violations(per({ 'pay.refund': 9 }))).toEqual(['per-tool budget "pay.refund" of 9 exceeds the parent\'s 5 for "pay.*"']); // exact key wins in the child
    expect(violations(per({ '*': 9 }, true))).toEqual(['per-tool budget "*" of 9 exceeds the parent\'s 5 for "pay.*"']); // would win over "pay.*"
    expect(violations(per({ '*': 1 }, true))).toEqual([]);
    expect(violations(per({ 'pay.refund': 1, 'helpdesk.search': 50 }))).toEqual([]);
  });
  it('the parent\'s keys keep their order (which glob applies first)', () => {
    const p = { budgets: { calls: 100, per_tool: { 'pay.refund': 5, 'pay.*': 1 } } };
    // conservative: here the exact key would win either way, but any reordering is refused
    expect(violations({ budgets: { calls: 10, per_tool: { 'pay.*': 1, 'pay.refund': 5 } } }, p)).toEqual(['per-tool budget keys must keep the parent\'s order']);
    expect(violations({ budgets: { calls: 10, per_tool: { 'pay.refund': 5, 'pay.*': 1 } } }, p)).toEqual([]);
    const g = { budgets: { calls: 100, per_tool: { 'pay.*': 1, '*.refund': 5 } } };
    expect(violations({ budgets: { calls: 10, per_tool: { '*.refund': 5, 'pay.*': 1 } } }, g)).toEqual(['per-tool budget keys must keep the parent\'s order']);
  });
  it('globsOverlap is exact', () => {
    expect(globsOverlap('pay.*', '*.refund')).toBe(true);
    expect(globsOverlap('pay.*', 'mail.*')).toBe(false);
    expect(globsOverlap('a*b', 'a*c')).toBe(false);
    expect(globsOverlap('*a*', '*b*')).toBe(true);
    expect(globsOverlap('ab', 'a*')).toBe(true);
    expect(globsOverlap('', '*')).toBe(true);
    expect(globsOverlap('x', '')).toBe(false);
  });
});

describe('delegation', () => {
  it('refuses when the parent may not delegate', () => {
    expect(violations({}, { delegation: { allowed: false } })).toEqual(['the parent may not delegate']);
    expect(violations({}, { delegation: undefined })).toEqual(['the parent may not delegate']);
    expect(violations({}, { delegation: { allowed: true, max_depth: 0 } })).toEqual(['the parent may not delegate (max_depth 0)']);
  });
  it('a child that delegates in turn must have a smaller depth', () => {
    expect(violations({ delegation: { allowed: true, max_depth: 1, max_children: 2 } })).toEqual([]);
    expect(violations({ delegation: { allowed: true, max_depth: 2, max_children: 2 } })).toEqual(['delegation depth 2 must be below the parent\'s 2']);
    expect(violations({ delegation: { allowed: true, max_children: 2 } }, { delegation: { allowed: true } })).toEqual(['delegation depth 1 must be below the parent\'s 1']);
  });
  it('and no more children than the parent allows', () => {
    expect(violations({ delegation: { allowed: true, max_depth: 1, max_children: 4 } })).toHaveLength(1);
    expect(violations({ delegation: { allowed: true, max_depth: 1 } })).toHaveLength(1);
    expect(violations({ delegation: { allowed: true, max_depth: 1 } }, { delegation: { allowed: true, max_depth: 3 } })).toEqual([]);
  });
});

describe('approvals', () => {
  it('a child may add approval rules', () => {
    expect(violations({ approvals: [...parentInput.approvals, { tool: 'helpdesk.*' }] })).toEqual([]);
  });
  it('a child may not drop or loosen one', () => {
    expect(violations({ approvals: [{ tool: 'pay.*' }] })).toEqual(['approval rule for "mail.send" from the parent must be kept']);
    expect(violations({ approvals: [{ tool: 'pay.*' }, { tool: 'mail.send', when: { 'args.to': { domains: ['x.acme.io'] } } }] })).toHaveLength(1);
    expect(violations({ approvals: undefined })).toHaveLength(2);
  });
});

describe('several problems at once', () => {
  it('lists one line per violation', () => {
    const v = violations({ environment: 'dev', data_classes: ['secret'], tools: tools({ name: '*' }), approvals: [] });
    expect(v).toEqual([
      'environment "dev" differs from the parent\'s "prod"',
      'tool "*" is not granted by the parent',
      'data class "secret" is not declared by the parent',
      'approval rule for "pay.*" from the parent must be kept',
      'approval rule for "mail.send" from the parent must be kept',
    ]);
  });
});
