import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checkCall,
  evaluateConstraint,
  globMatch,
  normalisePath,
  parseMandate,
  unknownTool,
  type JsonObject,
  type JsonPrimitive,
  type Mandate,
} from '../src/index.ts';
import type { CallFacts } from '../src/mandate/check.ts';
import { withinTimeWindow } from '../src/mandate/check.ts';
import type { Constraint, TimeWindow } from '../src/mandate/schema.ts';
import { attenuationViolations } from '../src/mandate/attenuation.ts';

// "A random child mandate is accepted only if it is a subset of its parent; no accepted child
// can make a call its parent could not." Parents are random; children are derived from them by
// narrowing (mostly accepted), by one widening (always refused), by random replacements
// ("mutate": the checker decides), by a mix, or drawn at random; calls are drawn from values
// built out of both mandates (so constraints are hit at their edges), path tricks and domains,
// at times inside the child's window. Then one property per axis (constraints, time windows,
// per-tool budgets) with everything else equal, which meets each rule's edge cases far more often.
// Each rule of attenuation.ts, broken on purpose, makes at least one of these fail.

const SEED = Number(process.env['ATTENUATION_SEED'] ?? 20261123);
// ATTENUATION_SEED / ATTENUATION_SCALE (a run-count multiplier) explore further; CI uses the defaults
const SCALE = Number(process.env['ATTENUATION_SCALE'] ?? 1);
const RUNS = 1000 * SCALE;
const CALLS_PER_CHILD = 40;

// ---------------------------------------------------------------------------------- vocabulary

const GRANT_NAMES = ['kb.search', 'kb.read', 'mail.send', 'fs.read', 'kb.*', 'mail.*', 'fs.*', '*', '*.read'];
const CONCRETE_TOOLS = ['kb.search', 'kb.read', 'mail.send', 'fs.read', 'shell.exec', 'kb.', 'kb.zz', 'x.read'];
const ARGS = ['a', 'b', 'path'];
const VALUES: JsonPrimitive[] = [
  'T-1', 'T-1042', 'T-1 OR 1=1', 'ab', 'abc', 'a', '',
  '/srv/kb/a', '/srv/kb/../../etc/passwd', '/srv/kb-private/x', '/srv//kb/./docs/x', '/etc/shadow', '/srv', '/srv/kb', 'srv/kb/a', '/srv/kb/docs/../x', '/srv/kb/docs/a',
  'https://acme.com/x', 'bob@acme.com', 'mail.acme.com', 'x.mail.acme.com', 'evil.com', 'https://acme.com@evil.com/', 'ACME.COM.', 'acme.io', 'https://a.b.acme.com', 'https://evil.com/?acme.com',
  -10, -5, 0, 3, 5, 5.5, 10, 50, 100, 101, true, false, null,
];
const REGEXES = ['T-[0-9]+', '[a-z]+', '.*', '/srv/kb/.*', 'T-1[0-9]*'];
const PREFIXES = ['/srv', '/srv/kb', '/srv/kb/', '/srv/kb/../', '/srv/kb/./docs', '/srv//kb/docs', '/', '/etc', '/srv/kb-private', 'T-', 'T-1', 'ab', '/..'];
const DOMAINS = ['acme.com', '*.acme.com', '*.com', 'evil.com', 'ACME.COM.', 'mail.acme.com', '*.mail.acme.com', 'acme.io'];
const BOUNDS = [undefined, -5, 0, 5, 10, 100];
const RESOURCES = ['ticket:*', 'ticket:T-1', 'invoice:*', '*', 'ticket:T-*'];
const CALL_RESOURCES = [undefined, 'ticket:T-1', 'ticket:T-2', 'invoice:9', 'ticket:*', 'other'];
const DATA_CLASSES = ['internal', 'pii', 'finance'];
const INSTANTS = ['2026-11-22T00:00:00Z', '2026-11-23T00:00:00Z', '2026-11-24T02:00:00+02:00', '2026-11-25T12:00:00Z', '2026-11-27T00:00:00Z', '2026-11-29T00:00:00Z'];
const HOURS = ['00:00', '06:00', '07:00', '09:00', '12:00', '17:00', '19:00', '22:00', '23:59'];
const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
const BUDGET_KEYS = ['kb.search', 'kb.*', '*', 'mail.send', 'mail.*', '*.read'];
const APPROVALS = [{ tool: 'mail.*' }, { tool: 'kb.search', when: { 'args.a': { equals: 'T-1' } } }, { tool: '*' }, { tool: 'fs.read', when: { 'args.path': { prefix: '/etc' } } }];
const START = Date.parse('2026-11-22T00:00:00Z');
const SPAN_MINUTES = 8 * 24 * 60;

// ---------------------------------------------------------------------------------- parents

type Raw = Record<string, unknown>;

const constraintArb: fc.Arbitrary<Constraint> = fc.oneof(
  fc.constantFrom(...VALUES).map((v) => ({ equals: v })),
  fc.uniqueArray(fc.constantFrom(...VALUES), { minLength: 1, maxLength: 4 }).map((v) => ({ one_of: v })),
  fc.constantFrom(...REGEXES).map((r) => ({ regex: r })),
  fc.tuple(fc.constantFrom(...BOUNDS), fc.constantFrom(...BOUNDS)).map(([min, max]) => ({ range: { ...(min === undefined ? {} : { min }), ...(max === undefined ? {} : { max }) } })),
  fc.constantFrom(...PREFIXES).map((p) => ({ prefix: p })),
  fc.uniqueArray(fc.constantFrom(...DOMAINS), { minLength: 1, maxLength: 3 }).map((d) => ({ domains: d })),
);

// mostly constrained grants: an unconstrained wide grant would make every narrower one moot
const argsArb = fc.oneof({ weight: 4, arbitrary: fc.dictionary(fc.constantFrom(...ARGS), constraintArb, { minKeys: 1, maxKeys: 2 }) }, { weight: 1, arbitrary: fc.constant({}) });
const grantArb = fc.record({ name: fc.constantFrom(...GRANT_NAMES), args: argsArb }, { requiredKeys: ['name'] });

const timeWindowArb: fc.Arbitrary<Raw> = fc
  .record(
    {
      bounds: fc.uniqueArray(fc.integer({ min: 0, max: INSTANTS.length - 1 }), { minLength: 2, maxLength: 2 }).map((xs) => [...xs].sort((x, y) => x - y)),
      useBefore: fc.boolean(),
      useAfter: fc.boolean(),
      hours: fc.option(fc.tuple(fc.constantFrom(...HOURS), fc.constantFrom(...HOURS))),
      weekdays: fc.option(fc.uniqueArray(fc.constantFrom(...WEEKDAYS), { minLength: 1, maxLength: 7 })),
    },
  )
  .map(({ bounds, useBefore, useAfter, hours, weekdays }) => ({
    ...(useBefore ? { not_before: INSTANTS[bounds[0] as number] } : {}),
    ...(useAfter ? { not_after: INSTANTS[bounds[1] as number] } : {}),
    ...(hours ? { hours: { start: hours[0], end: hours[1] } } : {}),
    ...(weekdays ? { weekdays } : {}),
  }));

const perToolArb = fc.uniqueArray(fc.tuple(fc.constantFrom(...BUDGET_KEYS), fc.integer({ min: 0, max: 10 })), { selector: ([k]) => k, maxLength: 3 }).map((e) => Object.fromEntries(e));

const mandateArb: fc.Arbitrary<Raw> = fc
  .record(
    {
      environment: fc.constantFrom('prod', 'prod', 'prod', 'staging'),
      tools: fc.array(grantArb, { minLength: 1, maxLength: 3 }),
      resources: fc.option(fc.uniqueArray(fc.constantFrom(...RESOURCES), { maxLength: 2 })),
      data_classes: fc.uniqueArray(fc.constantFrom(...DATA_CLASSES), { maxLength: 3 }),
      time_window: fc.option(timeWindowArb),
      calls: fc.option(fc.oneof({ weight: 1, arbitrary: fc.integer({ min: 0, max: 2 }) }, { weight: 4, arbitrary: fc.integer({ min: 3, max: 12 }) })),
      per_tool: fc.option(perToolArb),
      delegation: fc.oneof(
        { weight: 8, arbitrary: fc.record({ allowed: fc.constant(true), max_depth: fc.integer({ min: 1, max: 3 }), max_children: fc.option(fc.integer({ min: 0, max: 4 }), { nil: undefined }) }, { requiredKeys: ['allowed'] }) },
        { weight: 1, arbitrary: fc.constantFrom({ allowed: false }, { allowed: true, max_depth: 0 }) },
      ),
      approvals: fc.option(fc.subarray(APPROVALS)),
    },
    { requiredKeys: ['environment', 'tools', 'data_classes'] },
  )
  .map((r) => {
    const budgets = { ...(r.calls != null ? { calls: r.calls } : {}), ...(r.per_tool != null ? { per_tool: r.per_tool } : {}) };
    const m: Raw = { purpose: 'p', environment: r.environment, tools: r.tools, data_classes: r.data_classes };
    if (r.resources != null) m['resources'] = r.resources;
    if (r.time_window != null) m['time_window'] = r.time_window;
    if (r.calls != null || r.per_tool != null) m['budgets'] = budgets;
    if (r.delegation !== undefined) m['delegation'] = JSON.parse(JSON.stringify(r.delegation)) as unknown;
    if (r.approvals != null) m['approvals'] = r.approvals;
    return m;
  });

function tryParse(raw: unknown): Mandate | undefined {
  try {
    return parseMandate(raw);
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------- values

/** Values at and around the edges of a constraint. */
function edgeValues(c: Constraint): JsonPrimitive[] {
  if ('equals' in c) return [c.equals];
  if ('one_of' in c) return c.one_of;
  if ('regex' in c) return VALUES.filter((v) => evaluateConstraint(c, v).ok).concat(['T-19', 'T-', 'x']);
  if ('range' in c) {
    const out: number[] = [0];
    for (const b of [c.range.min, c.range.max]) if (b !== undefined) out.push(b, b - 1, b + 1, b + 0.5);
    return out;
  }
  if ('prefix' in c) {
    const p = c.prefix;
    const n = normalisePath(p) ?? p;
    return [p, p + 'x', p + '/x', p + '/../x', p + '/../../etc/x', n + '/a', n + 'a', n + '/docs/a', p.replace(/\/+$/, '') + '-private/x'];
  }
  return c.domains.flatMap((d) => {
    const base = d.replace(/^\*\./, '');
    return [base, 'a.' + base, 'x.y.' + base, `https://${base}/`, `bob@a.${base}`, `https://a.${base}@evil.com/`, base + '.evil.com'];
  });
}

function concreteTools(pattern: string): string[] {
  return [pattern.replaceAll('*', ''), pattern.replaceAll('*', 'zz'), pattern.replaceAll('*', 'kb.x')];
}

// ---------------------------------------------------------------------------------- calls

interface CallSpec {
  readonly grant: number;
  readonly toolPick: number;
  readonly argPicks: readonly (readonly [number, number])[];
  readonly resource: number;
  readonly dataClasses: readonly string[];
  readonly now: number;
  readonly calls: number;
  readonly toolCalls: number;
}

const boundaryTimes = INSTANTS.flatMap((i) => [Date.parse(i) - 1, Date.parse(i), Date.parse(i) + 60_000]);
const callArb: fc.Arbitrary<CallSpec> = fc.record({
  grant: fc.nat(),
  toolPick: fc.nat(),
  argPicks: fc.array(fc.tuple(fc.nat(9), fc.nat()), { minLength: ARGS.length, maxLength: ARGS.length }),
  resource: fc.nat(),
  dataClasses: fc.oneof({ weight: 3, arbitrary: fc.constant([]) }, { weight: 1, arbitrary: fc.subarray(DATA_CLASSES) }),
  now: fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 0, max: SPAN_MINUTES }).map((m) => START + m * 60_000) }, { weight: 1, arbitrary: fc.constantFrom(...boundaryTimes) }),
  calls: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 12 })),
  toolCalls: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 12 })),
});

function pick<T>(xs: readonly T[], i: number): T {
  return xs[i % xs.length] as T;
}

/** A time near `from` inside the child's window, when one is found quickly (so calls get past it). */
function nowInside(child: Mandate, from: number, step: number): number {
  for (let k = 0; k < 64; k += 1) {
    const t = START + ((from - START + k * (37 + (step % 11)) * 60_000) % (SPAN_MINUTES * 60_000));
    if (withinTimeWindow(child.time_window, t)) return t;
  }
  return from;
}

/** Resolves a call spec against both mandates: tools and values come mostly from the child. */
function facts(spec: CallSpec, child: Mandate, parent: Mandate): CallFacts {
  const grant = pick(child.tools, spec.grant);
  const toolPool = [...concreteTools(grant.name), ...CONCRETE_TOOLS, ...parent.tools.flatMap((g) => concreteTools(g.name))];
  const tool = spec.toolPick % 4 === 0 ? pick(toolPool, spec.toolPick >> 2) : pick(concreteTools(grant.name), spec.toolPick >> 2);
  const generalPool = [...VALUES, ...[child, parent].flatMap((m) => m.tools.flatMap((g) => Object.values(g.args ?? {}).flatMap(edgeValues)))];
  const args: JsonObject = {};
  ARGS.forEach((name, i) => {
    const [mode, n] = spec.argPicks[i] as readonly [number, number];
    const own = grant.args?.[name];
    if (mode === 0) return; // absent
    if (own !== undefined && mode <= 6) args[name] = pick(edgeValues(own), n);
    else args[name] = pick(generalPool, n);
  });
  const resourcePool = [...CALL_RESOURCES, ...(child.resources ?? []).flatMap(concreteTools)];
  return {
    tool,
    resource: spec.resource % 2 === 0 ? undefined : pick(resourcePool, spec.resource >> 1),
    args,
    now: spec.toolPick % 5 === 0 ? spec.now : nowInside(child, spec.now, spec.toolPick),
    toolInfo: { ...unknownTool(tool), dataClasses: spec.dataClasses },
    usage: { calls: spec.calls, toolCalls: spec.toolCalls },
  };
}

// ---------------------------------------------------------------------------------- children

const clone = (m: Mandate): Mandate => structuredClone(m);

/** The parent itself, as a child it may hand out: no delegation of its own. */
function selfChild(p: Mandate): Mandate {
  const c = clone(p);
  delete c.delegation;
  return c;
}

function narrowConstraint(c: Constraint, n: number): Constraint {
  const accepted = VALUES.filter((v) => evaluateConstraint(c, v).ok);
  if (n % 3 === 0 && accepted.length > 0) return { one_of: [pick(accepted, n), pick(accepted, n >> 2)].filter((v, i, a) => a.indexOf(v) === i) };
  if ('one_of' in c && c.one_of.length > 1) return { one_of: c.one_of.slice(1) };
  if ('range' in c) return { range: { min: (c.range.min ?? -5) + (n % 3), max: (c.range.max ?? 100) - (n % 4) } };
  if ('prefix' in c) return { prefix: c.prefix.startsWith('/') ? c.prefix.replace(/\/*$/, '/docs') : c.prefix + 'x' };
  if ('domains' in c) {
    const d = c.domains.map((e) => (n % 2 === 0 && e.startsWith('*.') ? 'sub.' + e.slice(2) : e));
    return { domains: d.length > 1 ? d.slice(n % d.length, (n % d.length) + 1) : d };
  }
  return c;
}

/** Applies one narrowing step to `c` (which starts as a copy of `p`). */
function narrow(c: Mandate, p: Mandate, op: number, n: number): void {
  const g = pick(c.tools, n);
  switch (op % 11) {
    case 0:
      if (c.tools.length > 1) c.tools.splice(n % c.tools.length, 1);
      break;
    case 1: {
      const names = CONCRETE_TOOLS.filter((t) => globMatch(g.name, t));
      if (names.length > 0) g.name = pick(names, n >> 1);
      break;
    }
    case 2: {
      const name = pick(ARGS, n >> 1);
      g.args ??= {};
      if (g.args[name] === undefined) g.args[name] = pick<Constraint>([{ equals: 'T-1' }, { regex: '.*' }, { range: { min: 0 } }, { prefix: '/srv/kb' }, { domains: ['acme.com'] }], n >> 3);
      break;
    }
    case 3: {
      const entries = Object.entries(g.args ?? {});
      if (entries.length > 0) {
        const [name, con] = pick(entries, n >> 1);
        (g.args as Record<string, Constraint>)[name] = narrowConstraint(con, n >> 2);
      }
      break;
    }
    case 4:
      if (c.data_classes.length > 0) c.data_classes.splice(n % c.data_classes.length, 1);
      break;
    case 5:
      if (c.resources === undefined) c.resources = [pick(RESOURCES, n)];
      else if (c.resources.length > 0) c.resources[n % c.resources.length] = (c.resources[n % c.resources.length] as string).replaceAll('*', n % 2 ? 'T-1' : '');
      break;
    case 6: {
      const tw: TimeWindow = { ...(c.time_window ?? {}) };
      const later = INSTANTS.filter((i) => tw.not_before === undefined || Date.parse(i) >= Date.parse(tw.not_before));
      const earlier = INSTANTS.filter((i) => tw.not_after === undefined || Date.parse(i) <= Date.parse(tw.not_after));
      if (n % 4 === 0 && later.length > 0) tw.not_before = pick(later, n >> 2);
      if (n % 4 === 1 && earlier.length > 0) tw.not_after = pick(earlier, n >> 2);
      if (n % 4 === 2) tw.weekdays = tw.weekdays && tw.weekdays.length > 1 ? tw.weekdays.slice(1) : (tw.weekdays ?? [pick(WEEKDAYS, n >> 2)]);
      if (n % 4 === 3) {
        // keep the new hours only if the real time check says they lie within the old ones
        const hours = { start: pick(HOURS, n >> 2), end: pick(HOURS, n >> 5) };
        const day = Date.parse('2026-11-23T00:00:00Z');
        let within = true;
        for (let m = 0; m < 1440 && within; m += 1) if (withinTimeWindow({ hours }, day + m * 60_000) && !withinTimeWindow(tw.hours ? { hours: tw.hours } : undefined, day + m * 60_000)) within = false;
        if (within) tw.hours = hours;
      }
      if (tw.not_before && tw.not_after && Date.parse(tw.not_before) >= Date.parse(tw.not_after)) return;
      c.time_window = tw;
      break;
    }
    case 7: {
      const b = { ...(c.budgets ?? {}) };
      b.calls = Math.min(b.calls ?? 12, n % 13);
      if (b.per_tool && Object.keys(b.per_tool).length > 0 && n % 2 === 0) {
        const k = pick(Object.keys(b.per_tool), n >> 1);
        b.per_tool = { ...b.per_tool, [k]: Math.max(0, (b.per_tool[k] as number) - 1) };
      } else if (n % 2 === 1) {
        // an extra key, at the front or at the back, no higher than anything it could shadow
        const key = pick(BUDGET_KEYS, n >> 1);
        const cap = Math.min(0 + (n % 3), ...Object.values(b.per_tool ?? {}));
        const rest = b.per_tool ?? {};
        if (!Object.hasOwn(rest, key)) b.per_tool = n % 4 === 1 ? { [key]: cap, ...rest } : { ...rest, [key]: cap };
      }
      c.budgets = b;
      break;
    }
    case 8:
      c.approvals = [...(c.approvals ?? []), pick(APPROVALS, n)];
      break;
    case 9: {
      const pd = p.delegation;
      if (pd?.allowed && (pd.max_depth ?? 1) > 1) c.delegation = { allowed: true, max_depth: (pd.max_depth ?? 1) - 1, ...(pd.max_children === undefined ? {} : { max_children: pd.max_children }) };
      else c.delegation = { allowed: false };
      break;
    }
    default: {
      // a second, narrower copy of a grant
      const copy = structuredClone(g);
      copy.args = { b: { equals: 'ab' }, ...(copy.args ?? {}) };
      c.tools.push(copy);
    }
  }
}

/**
 * Applies one widening step the checker must refuse: returns false when it does not apply to
 * this parent. `c` starts as `selfChild(p)`, which the checker accepts.
 */
function widen(c: Mandate, p: Mandate, op: number, n: number): boolean {
  const single = p.tools.length === 1 ? (c.tools[0] as Mandate['tools'][number]) : undefined;
  const singleArgs = Object.entries(single?.args ?? {});
  switch (op % 15) {
    case 0:
      c.environment = c.environment === 'prod' ? 'staging' : 'prod';
      return true;
    case 1:
      c.data_classes.push('secret');
      return true;
    case 2:
      if (p.budgets?.calls === undefined) return false;
      c.budgets = { ...c.budgets, calls: p.budgets.calls + 1 + (n % 3) };
      return true;
    case 3: {
      const keys = Object.keys(p.budgets?.per_tool ?? {});
      if (keys.length === 0) return false;
      const per = { ...(c.budgets?.per_tool ?? {}) };
      if (n % 2 === 0) delete per[pick(keys, n >> 1)];
      else per[pick(keys, n >> 1)] = (per[pick(keys, n >> 1)] as number) + 1;
      c.budgets = { ...c.budgets, per_tool: per };
      return true;
    }
    case 4:
      if (!p.approvals || p.approvals.length === 0) return false;
      c.approvals = p.approvals.filter((_, i) => i !== n % (p.approvals?.length ?? 1));
      return true;
    case 5:
      if (p.resources === undefined) return false;
      if (n % 2 === 0 || p.resources.some((r) => globMatch(r, 'secret:*'))) delete c.resources;
      else c.resources = [...(c.resources ?? []), 'secret:*'];
      return true;
    case 6:
      if (p.tools.some((g) => globMatch(g.name, 'shell.exec'))) return false;
      c.tools.push({ name: 'shell.exec' });
      return true;
    case 7:
      if (p.tools.some((g) => g.name === '*')) return false;
      (c.tools[n % c.tools.length] as Mandate['tools'][number]).name = '*';
      return true;
    case 8:
      if (!single || singleArgs.length === 0) return false;
      delete (single.args as Record<string, Constraint>)[(singleArgs[n % singleArgs.length] as [string, Constraint])[0]];
      return true;
    case 9: {
      // loosen one constraint of the only grant
      if (!single || singleArgs.length === 0) return false;
      const [name, con] = singleArgs[n % singleArgs.length] as [string, Constraint];
      let wider: Constraint | undefined;
      if ('range' in con && con.range.min !== undefined) wider = { range: { ...con.range, min: con.range.min - 1 } };
      else if ('range' in con && con.range.max !== undefined) wider = { range: { ...con.range, max: con.range.max + 1 } };
      else if ('prefix' in con && con.prefix.startsWith('/') && normalisePath(con.prefix) !== '/' && normalisePath(con.prefix) !== undefined) wider = { prefix: con.prefix.replace(/\/*$/, '/..') };
      else if ('prefix' in con && !con.prefix.startsWith('/') && con.prefix.length > 1) wider = { prefix: con.prefix.slice(0, -1) };
      else if ('domains' in con) wider = { domains: [...con.domains, 'evil.org'] };
      else if ('equals' in con) wider = { one_of: [con.equals, 'zzz-unlisted'] };
      else if ('one_of' in con) wider = { one_of: [...con.one_of, 'zzz-unlisted'] };
      else if ('regex' in con) wider = { regex: `(?:${con.regex})|zzz` };
      if (wider === undefined) return false;
      (single.args as Record<string, Constraint>)[name] = wider;
      return true;
    }
    case 10: {
      const tw = p.time_window;
      if (!tw || (tw.not_after === undefined && tw.hours === undefined && tw.weekdays === undefined && tw.not_before === undefined)) return false;
      const ctw = { ...(c.time_window as TimeWindow) };
      if (tw.not_after !== undefined) delete ctw.not_after;
      else if (tw.not_before !== undefined) delete ctw.not_before;
      else if (tw.hours !== undefined) delete ctw.hours;
      else delete ctw.weekdays;
      c.time_window = ctw;
      return true;
    }
    case 11: {
      const pd = p.delegation;
      if (!pd?.allowed) return false;
      c.delegation = { allowed: true, max_depth: pd.max_depth ?? 1 };
      return true;
    }
    case 12: {
      const tw = p.time_window;
      if (tw?.not_before === undefined) return false;
      c.time_window = { ...(c.time_window as TimeWindow), not_before: new Date(Date.parse(tw.not_before) - 1000).toISOString() };
      return true;
    }
    case 13:
      if (p.budgets?.calls === undefined) return false;
      delete c.budgets?.calls;
      return true;
    default:
      c.tools.push({ name: pick(CONCRETE_TOOLS, n) + '.extra' });
      return !p.tools.some((g) => globMatch(g.name, pick(CONCRETE_TOOLS, n) + '.extra'));
  }
}

const KIND_VOCAB: Record<string, Constraint[]> = {
  equals: VALUES.map((v) => ({ equals: v })),
  one_of: VALUES.flatMap((v, i) => [{ one_of: [v] }, { one_of: [v, pick(VALUES, i * 7 + 3)] }]),
  regex: REGEXES.map((r) => ({ regex: r })),
  prefix: [...PREFIXES, '/srv/kb/docs', '/srv/kbx', '/srv/kb/docs/../../etc', '/srv/./kb', 'T-10', 'a'].map((p) => ({ prefix: p })),
  domains: [...DOMAINS.map((d) => [d]), ['*.acme.com', 'evil.com'], ['x.mail.acme.com'], ['*.x.acme.com'], ['acme.com.evil.com'], ['MAIL.ACME.COM']].map((d) => ({ domains: d })),
  range: [...BOUNDS, 1, 99, 101, -6].flatMap((b): Constraint[] => (b === undefined ? [{ range: {} }, { range: { max: 7 } }] : [{ range: { min: b } }, { range: { max: b } }, { range: { min: b, max: b + 5 } }, { range: { min: b - 5, max: b } }])),
};
const ALL_CONSTRAINTS = Object.values(KIND_VOCAB).flat();
function sameKind(c: Constraint): Constraint[] {
  return KIND_VOCAB[Object.keys(c)[0] as string] ?? ALL_CONSTRAINTS;
}

/**
 * Replaces one thing of `c` with something random, wider or narrower: the checker decides, and
 * the calls check the decision.
 */
function mutate(c: Mandate, op: number, n: number, random: Mandate | undefined): void {
  const g = pick(c.tools, n);
  const k = op % 11;
  switch (k < 3 ? 0 : k - 2) {
    case 0: {
      // three times as likely as the others: replace (or add) one argument constraint
      const constrained = c.tools.filter((t) => Object.keys(t.args ?? {}).length > 0);
      const g = constrained.length > 0 && n % 4 !== 0 ? pick(constrained, n >> 7) : pick(c.tools, n);
      const entries = Object.keys(g.args ?? {});
      const name = entries.length > 0 && n % 3 !== 0 ? pick(entries, n >> 2) : pick(ARGS, n >> 2);
      const current = g.args?.[name];
      // mostly a constraint of the same kind (so the kind's own implication rule is exercised)
      g.args = { ...(g.args ?? {}), [name]: pick(current !== undefined && n % 5 !== 0 ? sameKind(current) : ALL_CONSTRAINTS, n >> 4) };
      break;
    }
    case 1:
      g.name = pick(GRANT_NAMES, n >> 1);
      break;
    case 2: {
      const entries = Object.keys(g.args ?? {});
      if (entries.length > 0) delete (g.args as Record<string, Constraint>)[pick(entries, n >> 1)];
      break;
    }
    case 3: {
      const tw: TimeWindow = { ...(c.time_window ?? {}) };
      if (n % 4 === 0) tw.hours = { start: pick(HOURS, n >> 2), end: pick(HOURS, n >> 6) };
      if (n % 4 === 1) tw.weekdays = [pick(WEEKDAYS, n >> 2), pick(WEEKDAYS, n >> 5)].filter((d, i, a) => a.indexOf(d) === i);
      if (n % 4 === 2) tw.not_before = pick(INSTANTS, n >> 2);
      if (n % 4 === 3) tw.not_after = pick(INSTANTS, n >> 2);
      c.time_window = tw;
      break;
    }
    case 4: {
      // per-tool budgets: reorder, add a key, change a limit
      const entries = Object.entries(c.budgets?.per_tool ?? {});
      if (n % 3 === 0) entries.reverse();
      else if (n % 3 === 1) entries.splice(n % (entries.length + 1), 0, [pick(BUDGET_KEYS, n >> 2), (n >> 5) % 11]);
      else if (entries.length > 0) (entries[n % entries.length] as [string, number])[1] = (n >> 3) % 11;
      c.budgets = { ...c.budgets, per_tool: Object.fromEntries(entries) };
      break;
    }
    case 5:
      if (n % 3 === 0) delete c.resources;
      else c.resources = [pick(RESOURCES, n >> 2)];
      break;
    case 6:
      if (random) c.tools.push(...random.tools);
      break;
    default:
      if (random) c.approvals = random.approvals ?? [];
  }
}

const childPlanArb = fc.record({
  kind: fc.constantFrom('narrow', 'narrow', 'narrow', 'widen', 'mixed', 'mutate', 'mutate', 'mutate', 'random', 'random-tools'),
  ops: fc.array(fc.tuple(fc.nat(), fc.nat()), { minLength: 1, maxLength: 4 }),
  random: mandateArb,
  remainingCut: fc.nat(3),
});

describe('attenuation: delegation only narrows', () => {
  it('no accepted child can make a call its parent could not (and none skips a parent approval)', () => {
    const stats = { runs: 0, accepted: 0, narrow: 0, narrowAccepted: 0, widen: 0, mixedAccepted: 0, randomAccepted: 0, randomToolsAccepted: 0, mutateAccepted: 0, calls: 0, childAllowed: 0 };
    fc.assert(
      fc.property(mandateArb, childPlanArb, fc.array(callArb, { minLength: CALLS_PER_CHILD, maxLength: CALLS_PER_CHILD }), (rawParent, plan, calls) => {
        const parent = tryParse(rawParent);
        if (!parent) return;
        stats.runs += 1;
        const total = parent.budgets?.calls;
        const opts = { parentRemainingCalls: total === undefined ? undefined : Math.max(0, total - plan.remainingCut) };
        const canDelegate = parent.delegation?.allowed === true && (parent.delegation.max_depth ?? 1) >= 1;

        // The parent, minus delegation, is always a child it may hand out (when it may delegate).
        const self = selfChild(parent);
        expect(attenuationViolations(self, parent, { parentRemainingCalls: total })).toEqual(canDelegate ? [] : ['the parent may not delegate' + (parent.delegation?.allowed ? ' (max_depth 0)' : '')]);

        let child: Mandate | undefined;
        if (plan.kind === 'random') child = tryParse({ ...plan.random, environment: parent.environment });
        else if (plan.kind === 'random-tools') child = tryParse(JSON.parse(JSON.stringify({ ...self, tools: plan.random['tools'] })));
        else {
          const c = selfChild(parent);
          let widened = false;
          for (const [op, n] of plan.ops) {
            if (plan.kind === 'narrow' || (plan.kind === 'mixed' && n % 2 === 0)) narrow(c, parent, op, n);
            else if (plan.kind === 'mutate') {
              mutate(c, op, n, tryParse(plan.random));
              if (n % 2 === 0) break; // often a single change, so the child has a chance to pass
            } else widened = widen(c, parent, op, n) || widened;
            if (plan.kind === 'widen') break; // exactly one widening
          }
          // what a caller does: carve the child's total out of what the parent has left
          const left = opts.parentRemainingCalls;
          if (plan.kind !== 'widen' && left !== undefined) c.budgets = { ...c.budgets, calls: Math.min(c.budgets?.calls ?? left, left) };
          child = tryParse(JSON.parse(JSON.stringify(c)));
          if (child && plan.kind === 'widen' && widened) {
            stats.widen += 1;
            expect(attenuationViolations(child, parent, { parentRemainingCalls: total }), 'a widening child must be refused').not.toEqual([]);
          }
        }
        if (!child) return;
        if (plan.kind === 'narrow') stats.narrow += 1;

        const v = attenuationViolations(child, parent, opts);
        if (v.length > 0) return;
        stats.accepted += 1;
        if (plan.kind === 'narrow') stats.narrowAccepted += 1;
        if (plan.kind === 'mixed') stats.mixedAccepted += 1;
        if (plan.kind === 'random') stats.randomAccepted += 1;
        if (plan.kind === 'random-tools') stats.randomToolsAccepted += 1;
        if (plan.kind === 'mutate') stats.mutateAccepted += 1;

        for (const spec of calls) {
          const f = facts(spec, child, parent);
          const cv = checkCall(child, f);
          stats.calls += 1;
          if (!cv.ok) continue;
          stats.childAllowed += 1;
          const pv = checkCall(parent, f);
          expect(pv.ok, `child allows ${JSON.stringify({ tool: f.tool, args: f.args, resource: f.resource, now: new Date(f.now).toISOString(), usage: f.usage, dc: f.toolInfo.dataClasses })} but the parent refuses: ${pv.details.join('; ')}\nparent: ${JSON.stringify(parent)}\nchild: ${JSON.stringify(child)}`).toBe(true);
          if (pv.approval !== undefined) expect(cv.approval, 'the parent would ask for an approval; the child must too').toBeDefined();
        }
      }),
      { seed: SEED, numRuns: RUNS },
    );
    // Not vacuous: many children are accepted (most narrowed ones), and they do allow calls.
    expect(stats.accepted).toBeGreaterThan(0.2 * stats.runs);
    expect(stats.narrowAccepted).toBeGreaterThan(0.5 * stats.narrow);
    expect(stats.widen).toBeGreaterThan(0.05 * stats.runs);
    expect(stats.childAllowed).toBeGreaterThan(0.05 * stats.calls);
    if (process.env['ATTENUATION_STATS']) console.log(stats);
  });
});

// Focused properties: one axis at a time, with everything else equal, so each implication rule
// meets many more of its own edge cases than in the whole-mandate property above.

const pBase = { purpose: 'p', environment: 'prod', delegation: { allowed: true } };
const cBase = { purpose: 'p', environment: 'prod' };
const noBudget = { parentRemainingCalls: undefined };
const callOf = (tool: string, args: JsonObject, now = START, toolCalls = 0): CallFacts => ({ tool, resource: undefined, args, now, toolInfo: unknownTool(tool), usage: { calls: 0, toolCalls } });

describe('attenuation, axis by axis', () => {
  it('argument constraints: an accepted child constraint accepts no value the parent refuses', () => {
    let accepted = 0;
    fc.assert(
      fc.property(constraintArb, fc.nat(), fc.nat(), (pc, how, n) => {
        const cc = how % 3 === 0 ? narrowConstraint(pc, n) : how % 3 === 1 ? pick(sameKind(pc), n) : pick(ALL_CONSTRAINTS, n);
        const parent = tryParse({ ...pBase, tools: [{ name: '*', args: { a: pc } }] });
        const child = tryParse({ ...cBase, tools: [{ name: '*', args: { a: cc, b: { equals: 1 } } }] });
        if (!parent || !child || attenuationViolations(child, parent, noBudget).length > 0) return;
        accepted += 1;
        for (const v of [...VALUES, ...edgeValues(pc), ...edgeValues(cc)]) {
          const f = callOf('t', { a: v, b: 1 });
          if (checkCall(child, f).ok) expect(checkCall(parent, f).ok, `${JSON.stringify(cc)} accepts ${JSON.stringify(v)}; ${JSON.stringify(pc)} does not`).toBe(true);
        }
      }),
      { seed: SEED, numRuns: 3000 * SCALE },
    );
    if (process.env['ATTENUATION_STATS']) console.log('accepted', accepted);
    expect(accepted).toBeGreaterThan(600);
  });

  it('time windows: an accepted child window is inside the parent\'s at every instant tried', () => {
    let accepted = 0;
    const child = fc.oneof(timeWindowArb, fc.tuple(timeWindowArb, timeWindowArb).map(([a, b]) => ({ ...a, ...b })));
    fc.assert(
      fc.property(timeWindowArb, child, fc.array(fc.integer({ min: 0, max: SPAN_MINUTES }), { minLength: 30, maxLength: 30 }), (ptw, ctw, minutes) => {
        const parent = tryParse({ ...pBase, tools: [{ name: '*' }], time_window: ptw });
        const c = tryParse({ ...cBase, tools: [{ name: '*' }], time_window: { ...ptw, ...ctw } });
        if (!parent || !c || attenuationViolations(c, parent, noBudget).length > 0) return;
        accepted += 1;
        for (const t of [...minutes.map((m) => START + m * 60_000), ...boundaryTimes]) {
          if (withinTimeWindow(c.time_window, t)) expect(withinTimeWindow(parent.time_window, t), new Date(t).toISOString()).toBe(true);
        }
      }),
      { seed: SEED, numRuns: 2000 * SCALE },
    );
    if (process.env['ATTENUATION_STATS']) console.log('accepted', accepted);
    expect(accepted).toBeGreaterThan(150);
  });

  it('per-tool budgets: an accepted child never allows more calls to a tool than the parent', () => {
    const keys = [...BUDGET_KEYS, 'kb.read', '*.search', 'k*', '*s*'];
    const tools = ['kb.search', 'kb.read', 'mail.send', 'x.read', 'other', 'kb.', 'k*', 'ks'];
    const per = fc.uniqueArray(fc.tuple(fc.constantFrom(...keys), fc.integer({ min: 0, max: 6 })), { selector: ([k]) => k, maxLength: 4 });
    let accepted = 0;
    fc.assert(
      fc.property(per, fc.array(fc.tuple(fc.nat(3), fc.nat(), fc.integer({ min: 0, max: 6 })), { maxLength: 3 }), (pEntries, edits) => {
        // the child: the parent's entries, then reordered / extended / re-limited / dropped
        const cEntries = pEntries.map(([k, l]) => [k, l] as [string, number]);
        for (const [what, i, l] of edits) {
          if (what === 0) cEntries.reverse();
          else if (what === 1 && !cEntries.some(([k]) => k === pick(keys, i))) cEntries.splice(i % (cEntries.length + 1), 0, [pick(keys, i), l]);
          else if (what === 2 && cEntries.length > 0) (cEntries[i % cEntries.length] as [string, number])[1] = l;
          else if (cEntries.length > 0) cEntries.splice(i % cEntries.length, 1);
        }
        const parent = parseMandate({ ...pBase, tools: [{ name: '*' }], budgets: { per_tool: Object.fromEntries(pEntries) } });
        const child = parseMandate({ ...cBase, tools: [{ name: '*' }], budgets: { per_tool: Object.fromEntries(cEntries) } });
        if (attenuationViolations(child, parent, noBudget).length > 0) return;
        accepted += 1;
        for (const t of tools) {
          for (let used = 0; used <= 6; used += 1) {
            if (checkCall(child, callOf(t, {}, START, used)).ok) expect(checkCall(parent, callOf(t, {}, START, used)).ok, `${t} after ${used} calls`).toBe(true);
          }
        }
      }),
      { seed: SEED, numRuns: 2000 * SCALE },
    );
    if (process.env['ATTENUATION_STATS']) console.log('accepted', accepted);
    expect(accepted).toBeGreaterThan(400);
  });
});
