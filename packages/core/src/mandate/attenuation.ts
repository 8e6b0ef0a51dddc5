import { canonicalJson, type JsonPrimitive } from '../json.ts';
import { globCovers } from '../glob.ts';
import { evaluateConstraint, normalisePath } from './constraints.ts';
import { hostAllowed, normaliseDomainEntry } from './hosts.ts';
import { RegexWork } from './regex.ts';
import type { Constraint, Mandate, TimeWindow, ToolGrant } from './schema.ts';

export interface AttenuationOptions {
  /**
   * Calls the parent task still has under its total budget (`budgets.calls` minus what it has
   * used), or undefined when the parent has no total budget.
   */
  readonly parentRemainingCalls: number | undefined;
}

/*
 * Delegation only narrows (DESIGN invariant 6). The guarantee: for every call facts F (tool,
 * arguments, resource, data classes, time, budget usage), if `checkCall(child, F)` allows then
 * `checkCall(parent, F)` allows too, and whenever the parent's approval rules would ask for an
 * approval the child's do as well. Every rule below is sound; where deciding containment exactly
 * would be costly or subtle, the rule is conservative (it may refuse a child that is in fact a
 * subset) and says so with "conservative:".
 */

// ---------------------------------------------------------------------------------- constraints

function isPathPrefix(p: string): boolean {
  return p.startsWith('/');
}

function domainEntryCovered(child: string, parentEntries: readonly string[]): boolean {
  // the same normal form `hostAllowed` compares hosts with; conservative: an entry that has none
  // admits nothing, but is refused (parseMandate refuses such entries anyway)
  const c = normaliseDomainEntry(child);
  if (c === undefined) return false;
  const parents = parentEntries.map(normaliseDomainEntry).filter((p): p is string => p !== undefined);
  if (c.startsWith('*.')) {
    // `*.x` admits hosts ending in `.x`; only a parent wildcard `*.y` with `.x` ending in `.y`
    // covers all of them (an exact entry names one host, never a family).
    const suffix = c.slice(1);
    return parents.some((p) => p.startsWith('*.') && suffix.endsWith(p.slice(1)));
  }
  // An exact entry admits exactly one host: ask the parent's own predicate about it.
  return hostAllowed(c, parents);
}

/**
 * Why `child` does not imply `parent` (every value the child constraint accepts the parent
 * constraint accepts too), or undefined when it does.
 */
export function constraintImplicationGap(child: Constraint, parent: Constraint, work: RegexWork = new RegexWork()): string | undefined {
  if (canonicalJson(child) === canonicalJson(parent)) return undefined;

  // A finite set of values: ask the parent about each one. Exact, since evaluateConstraint
  // compares equals / one_of values with === just as it compares call arguments.
  if ('equals' in child || 'one_of' in child) {
    const values: readonly JsonPrimitive[] = 'equals' in child ? [child.equals] : child.one_of;
    for (const v of values) {
      const r = evaluateConstraint(parent, v, work);
      if (!r.ok) return r.undecided ? `value ${JSON.stringify(v)} could not be checked against the parent's constraint: ${r.why ?? ''}` : `value ${JSON.stringify(v)} is refused by the parent's constraint`;
    }
    return undefined;
  }

  if ('range' in child) {
    if (!('range' in parent)) return 'a range is wider than the parent\'s non-range constraint';
    const c = child.range;
    const p = parent.range;
    if (p.min !== undefined && !(c.min !== undefined && c.min >= p.min)) return `minimum must be at least ${p.min}`;
    if (p.max !== undefined && !(c.max !== undefined && c.max <= p.max)) return `maximum must be at most ${p.max}`;
    return undefined;
  }

  if ('prefix' in child) {
    if (!('prefix' in parent)) return 'a prefix is wider than the parent\'s non-prefix constraint';
    const cPath = isPathPrefix(child.prefix);
    const pPath = isPathPrefix(parent.prefix);
    if (cPath !== pPath) return 'a path prefix and a plain string prefix cannot be compared';
    if (!cPath) return child.prefix.startsWith(parent.prefix) ? undefined : `prefix "${child.prefix}" does not start with "${parent.prefix}"`;
    const c = normalisePath(child.prefix);
    const p = normalisePath(parent.prefix);
    // conservative: a prefix that is not a plain absolute path admits nothing, but is refused.
    if (c === undefined) return `prefix "${child.prefix}" is not a plain absolute path`;
    if (p === undefined) return `the parent's prefix "${parent.prefix}" is not a plain absolute path`;
    if (p === '/' || c === p || c.startsWith(p + '/')) return undefined;
    return `path prefix "${child.prefix}" (${c}) is not under "${parent.prefix}" (${p})`;
  }

  if ('domains' in child) {
    if (!('domains' in parent)) return 'a domain list is wider than the parent\'s non-domain constraint';
    const bad = child.domains.filter((d) => !domainEntryCovered(d, parent.domains));
    return bad.length === 0 ? undefined : `domains ${bad.map((d) => `"${d}"`).join(', ')} are not covered by the parent's`;
  }

  // conservative: regex containment is not decided; only an identical regex (above) implies one.
  return 'a regex implies only the identical regex';
}

// ---------------------------------------------------------------------------------- tools

/** Why `child` is not within `parent`, or undefined when every call it allows the parent allows. */
function grantGap(child: ToolGrant, parent: ToolGrant, work: RegexWork): string | undefined {
  if (!globCovers(parent.name, child.name)) return `"${parent.name}" does not cover it`;
  const childArgs = new Map(Object.entries(child.args ?? {}));
  const gaps: string[] = [];
  for (const [arg, pc] of Object.entries(parent.args ?? {})) {
    const cc = childArgs.get(arg);
    if (cc === undefined) {
      gaps.push(`argument "${arg}" is constrained by the parent but not by the child`);
      continue;
    }
    const why = constraintImplicationGap(cc, pc, work);
    if (why !== undefined) gaps.push(`argument "${arg}": ${why}`);
  }
  return gaps.length === 0 ? undefined : gaps.join('; ');
}

function toolViolations(child: Mandate, parent: Mandate, out: string[]): void {
  // what the parent's regexes may spend on the child's fixed values, for the whole comparison
  const work = new RegexWork();
  for (const g of child.tools) {
    // conservative: one parent grant must cover the child grant on its own (a child grant that
    // only a union of parent grants would cover is refused).
    const candidates = parent.tools.filter((p) => globCovers(p.name, g.name));
    if (candidates.length === 0) {
      out.push(`tool "${g.name}" is not granted by the parent`);
      continue;
    }
    const gaps: string[] = [];
    let covered = false;
    for (const p of candidates) {
      const why = grantGap(g, p, work);
      if (why === undefined) {
        covered = true;
        break;
      }
      gaps.push(why);
    }
    if (!covered) out.push(`tool "${g.name}" allows arguments the parent refuses: ${gaps[0] ?? ''}`);
  }
}

// ---------------------------------------------------------------------------------- time

function minutesOf(hhmm: string): number {
  return Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));
}

/** The same daily test as `withinTimeWindow`; `start` > `end` wraps past midnight. */
function insideHours(h: { start: string; end: string }, m: number): boolean {
  const start = minutesOf(h.start);
  const end = minutesOf(h.end);
  return start <= end ? m >= start && m < end : m >= start || m < end;
}

function timeViolations(c: TimeWindow | undefined, p: TimeWindow | undefined, out: string[]): void {
  if (!p) return;
  if (p.not_before !== undefined) {
    // written so that an unparsable date (NaN) refuses
    if (!(c?.not_before !== undefined && Date.parse(c.not_before) >= Date.parse(p.not_before))) out.push(`time_window.not_before must be declared and no earlier than the parent's ${p.not_before}`);
  }
  if (p.not_after !== undefined) {
    if (!(c?.not_after !== undefined && Date.parse(c.not_after) <= Date.parse(p.not_after))) out.push(`time_window.not_after must be declared and no later than the parent's ${p.not_after}`);
  }
  if (p.weekdays !== undefined) {
    const allowed = p.weekdays;
    if (!c?.weekdays) out.push(`time_window.weekdays must be declared within the parent's ${allowed.join(', ')}`);
    else {
      const extra = c.weekdays.filter((d) => !allowed.includes(d));
      if (extra.length > 0) out.push(`time_window.weekdays ${extra.join(', ')} are outside the parent's`);
    }
  }
  if (p.hours !== undefined) {
    const ph = p.hours;
    const ch = c?.hours;
    if (!ch) out.push(`time_window.hours must be declared within the parent's ${ph.start}-${ph.end}`);
    else {
      // Exact: the daily test works on whole minutes, so compare all 1440 of them.
      for (let m = 0; m < 24 * 60; m += 1) {
        if (insideHours(ch, m) && !insideHours(ph, m)) {
          out.push(`time_window.hours ${ch.start}-${ch.end} are not within the parent's ${ph.start}-${ph.end}`);
          break;
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------- budgets

/**
 * True when some tool name is matched by both globs (`*` = any run of characters). Exact:
 * a search over pairs of positions in the two patterns.
 */
export function globsOverlap(a: string, b: string): boolean {
  const seen = new Set<number>();
  const width = b.length + 1;
  const stack: [number, number][] = [[0, 0]];
  while (stack.length > 0) {
    const [i, j] = stack.pop() as [number, number];
    const key = i * width + j;
    if (seen.has(key)) continue;
    seen.add(key);
    if (i === a.length && j === b.length) return true;
    const ai = a[i];
    const bj = b[j];
    if (ai === '*') stack.push([i + 1, j]); // the star matches nothing more
    if (bj === '*') stack.push([i, j + 1]);
    if (ai === undefined || bj === undefined) continue;
    if (ai === '*' && bj !== '*') stack.push([i, j + 1]); // a's star eats b's literal
    else if (bj === '*' && ai !== '*') stack.push([i + 1, j]);
    else if (ai !== '*' && ai === bj) stack.push([i + 1, j + 1]);
  }
  return false;
}

function budgetViolations(child: Mandate, parent: Mandate, remaining: number | undefined, out: string[]): void {
  // Total: bounded by what the parent has left, and never above the parent's declared total.
  let cap = remaining;
  const parentTotal = parent.budgets?.calls;
  if (parentTotal !== undefined) cap = cap === undefined ? parentTotal : Math.min(cap, parentTotal);
  if (cap !== undefined) {
    const bound = Math.max(0, cap);
    const total = child.budgets?.calls;
    if (total === undefined || !(total <= bound)) out.push(`call budget must be declared and at most the parent's remaining ${bound}`);
  }

  // Per tool. `toolBudget` picks the exact key, else the first glob key (in key order) that
  // matches. The child's limit for a tool must be defined and no higher than the parent's
  // wherever the parent's is defined. Sufficient (and checked here):
  //  1. every parent key is a child key, with a limit no higher: so every tool the parent
  //     limits is limited in the child too, whatever child grant reaches it;
  //  2. the parent's keys appear in the child in the same relative order (conservative: a
  //     reordering that happens to pick the same limits is refused), so that, extra keys aside,
  //     the child picks the same key the parent does;
  //  3. a child key the parent does not have is no higher than any parent limit whose key can
  //     match a tool it matches (conservative: even when the parent would pick another key),
  //     since it may take precedence for that tool.
  const pPer = Object.entries(parent.budgets?.per_tool ?? {});
  const cPer = new Map(Object.entries(child.budgets?.per_tool ?? {}));
  for (const [key, limit] of pPer) {
    const c = cPer.get(key);
    if (c === undefined) out.push(`per-tool budget "${key}" must be declared and at most the parent's ${limit}`);
    else if (!(c <= limit)) out.push(`per-tool budget "${key}" of ${c} exceeds the parent's ${limit}`);
  }
  const parentKeys = new Set(pPer.map(([k]) => k));
  const sharedInChildOrder = [...cPer.keys()].filter((k) => parentKeys.has(k));
  const sharedInParentOrder = pPer.map(([k]) => k).filter((k) => cPer.has(k));
  if (sharedInChildOrder.join('\0') !== sharedInParentOrder.join('\0')) out.push('per-tool budget keys must keep the parent\'s order');
  for (const [key, limit] of cPer) {
    if (parentKeys.has(key)) continue;
    for (const [pKey, pLimit] of pPer) {
      if (limit > pLimit && globsOverlap(key, pKey)) {
        out.push(`per-tool budget "${key}" of ${limit} exceeds the parent's ${pLimit} for "${pKey}"`);
        break;
      }
    }
  }
}

// ---------------------------------------------------------------------------------- delegation

function delegationViolations(child: Mandate, parent: Mandate, out: string[]): void {
  const pd = parent.delegation;
  const parentDepth = pd?.max_depth ?? 1;
  if (!pd?.allowed) out.push('the parent may not delegate');
  // max_depth counts the levels allowed below a task: 0 leaves none.
  else if (parentDepth < 1) out.push('the parent may not delegate (max_depth 0)');
  const cd = child.delegation;
  if (cd?.allowed) {
    const depth = cd.max_depth ?? 1;
    if (!(depth < parentDepth)) out.push(`delegation depth ${depth} must be below the parent's ${parentDepth}`);
    if (pd?.max_children !== undefined && !(cd.max_children !== undefined && cd.max_children <= pd.max_children)) {
      out.push(`delegation max_children must be declared and at most the parent's ${pd.max_children}`);
    }
  }
}

function approvalViolations(child: Mandate, parent: Mandate, out: string[]): void {
  const mine = new Set((child.approvals ?? []).map((r) => canonicalJson(r)));
  for (const r of parent.approvals ?? []) {
    if (!mine.has(canonicalJson(r))) out.push(`approval rule for "${r.tool}" from the parent must be kept`);
  }
}

/**
 * Lists every way the `child` mandate asks for more than its `parent` task's mandate; empty
 * means a sub-agent may be given it (DESIGN invariant 6: delegation only narrows). Both are
 * parsed mandates (`parseMandate`).
 *
 * Guarantee: every call `checkCall(child, …)` allows, `checkCall(parent, …)` allows with the same
 * facts (tool grant and argument constraints, resources, data classes, time window, budgets by
 * their declared limits); every parent approval rule is kept; delegation depth strictly shrinks.
 *
 * - tools: each child grant is covered by one parent grant: the parent's name glob covers the
 *   child's, and every argument the parent constrains the child constrains with a constraint
 *   that implies it (the child may constrain more). See `constraintImplicationGap`.
 * - environment equal; data classes a subset; resources covered by the parent's globs when
 *   the parent lists any (then the child must list them too).
 * - time window inside the parent's on each axis the parent sets.
 * - budgets: total at most `opts.parentRemainingCalls` (and the parent's declared total);
 *   per-tool limits as described in `budgetViolations`. Per-tool limits are compared with the
 *   parent's declared limits, not with what the parent has left of them.
 * - delegation: the parent must allow it; a child that may delegate has a smaller max_depth
 *   (default 1) and no more max_children.
 * - ttl is NOT checked here: the caller caps the child's expiry at the parent's.
 * - purpose is free text and not compared.
 */
export function attenuationViolations(child: Mandate, parent: Mandate, opts: AttenuationOptions): string[] {
  const out: string[] = [];
  delegationViolations(child, parent, out);
  if (child.environment !== parent.environment) out.push(`environment "${child.environment}" differs from the parent's "${parent.environment}"`);
  toolViolations(child, parent, out);

  if (parent.resources !== undefined) {
    if (child.resources === undefined) out.push('resources must be declared: the parent lists them');
    else {
      const pr = parent.resources;
      for (const r of child.resources) if (!pr.some((p) => globCovers(p, r))) out.push(`resource "${r}" is not covered by the parent's resources`);
    }
  }

  for (const d of child.data_classes) if (!parent.data_classes.includes(d)) out.push(`data class "${d}" is not declared by the parent`);

  timeViolations(child.time_window, parent.time_window, out);
  budgetViolations(child, parent, opts.parentRemainingCalls, out);
  approvalViolations(child, parent, out);
  scaleViolations(child, parent, out);
  return out;
}

/** a child declares no larger a scale than its parent (the volume detector's yardstick) */
function scaleViolations(child: Mandate, parent: Mandate, out: string[]): void {
  for (const k of ['records', 'bytes'] as const) {
    const p = parent.scale?.[k];
    if (p === undefined) continue;
    const c = child.scale?.[k];
    if (c === undefined || c > p) out.push(`scale.${k} must be declared and at most the parent's ${p}`);
  }
}
