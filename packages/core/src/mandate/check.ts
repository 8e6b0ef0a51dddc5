import { MandateError } from '../errors.ts';
import type { JsonObject } from '../json.ts';
import { globMatch } from '../glob.ts';
import type { BudgetUsage, ToolInfo } from '../model.ts';
import type { ReasonCode } from '../reasons.ts';
import { evaluateConstraint, readArg } from './constraints.ts';
import { RegexWork } from './regex.ts';
import type { ApprovalRule, Mandate, TimeWindow, ToolGrant } from './schema.ts';

export interface CallFacts {
  readonly tool: string;
  readonly resource: string | undefined;
  readonly args: JsonObject;
  readonly now: number;
  readonly toolInfo: ToolInfo;
  readonly usage: BudgetUsage;
}

export interface MandateVerdict {
  readonly ok: boolean;
  readonly reasons: ReasonCode[];
  readonly details: string[];
  /** the approval rule that applies to this call, if any (only meaningful when ok) */
  readonly approval: ApprovalRule | undefined;
}

const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;

function minutesOf(hhmm: string): number {
  return Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));
}

export function withinTimeWindow(tw: TimeWindow | undefined, now: number): boolean {
  if (!tw) return true;
  if (tw.not_before && now < Date.parse(tw.not_before)) return false;
  if (tw.not_after && now >= Date.parse(tw.not_after)) return false;
  const d = new Date(now);
  if (tw.weekdays && !tw.weekdays.includes(WEEKDAYS[d.getUTCDay()] as (typeof WEEKDAYS)[number])) return false;
  if (tw.hours) {
    const m = d.getUTCHours() * 60 + d.getUTCMinutes();
    const start = minutesOf(tw.hours.start);
    const end = minutesOf(tw.hours.end);
    const inside = start <= end ? m >= start && m < end : m >= start || m < end;
    if (!inside) return false;
  }
  return true;
}

/** The per-tool budget that applies to `tool` (exact key first, then the first matching glob). */
export function toolBudget(m: Mandate, tool: string): number | undefined {
  const per = m.budgets?.per_tool;
  if (!per) return undefined;
  if (Object.hasOwn(per, tool)) return per[tool];
  for (const [pattern, limit] of Object.entries(per)) if (globMatch(pattern, tool)) return limit;
  return undefined;
}

function grantAllows(grant: ToolGrant, args: JsonObject, details: string[], work: RegexWork): boolean {
  let ok = true;
  for (const [name, c] of Object.entries(grant.args ?? {})) {
    const r = evaluateConstraint(c, readArg(args, name), work);
    if (!r.ok) {
      ok = false;
      details.push(`argument "${name}": ${r.why ?? 'constraint failed'}`);
    }
  }
  return ok;
}

export type ApprovalLookup = { readonly rule: ApprovalRule | undefined } | { readonly undecided: string };

/**
 * The first approval rule that applies to the call, or why that cannot be told: a `when`
 * constraint that could not be evaluated is neither "applies" nor "does not", and the call is
 * denied rather than let through without the approval it may need.
 */
export function approvalFor(m: Mandate, tool: string, args: JsonObject, work: RegexWork = new RegexWork()): ApprovalLookup {
  for (const rule of m.approvals ?? []) {
    if (!globMatch(rule.tool, tool)) continue;
    let applies = true;
    for (const [key, c] of Object.entries(rule.when ?? {})) {
      const r = evaluateConstraint(c, readArg(args, key.slice('args.'.length)), work);
      if (r.undecided) return { undecided: `approval rule for "${rule.tool}", ${key}: ${r.why ?? 'not evaluated'}` };
      if (!r.ok) {
        applies = false;
        break;
      }
    }
    if (applies) return { rule };
  }
  return { rule: undefined };
}

/** The first approval rule that applies to the call; throws when that cannot be told. */
export function approvalRuleFor(m: Mandate, tool: string, args: JsonObject): ApprovalRule | undefined {
  const r = approvalFor(m, tool, args);
  if ('undecided' in r) throw new MandateError('ARG_CONSTRAINT_FAILED', r.undecided);
  return r.rule;
}

/**
 * Checks one call against the task's mandate: tool grant and argument constraints, resources,
 * data classes, time window and budgets (the budget check here is advisory; the atomic count
 * happens in the ledger only for calls that are otherwise allowed).
 */
export function checkCall(m: Mandate, f: CallFacts): MandateVerdict {
  const reasons: ReasonCode[] = [];
  const details: string[] = [];
  // what every regex of this check may spend together (regex.ts), grants and approval rules alike
  const work = new RegexWork();

  const grants = m.tools.filter((g) => globMatch(g.name, f.tool));
  if (grants.length === 0) {
    reasons.push('TOOL_NOT_IN_MANDATE');
    details.push(`tool "${f.tool}" is not in the mandate`);
  } else {
    const perGrant: string[] = [];
    if (!grants.some((g) => grantAllows(g, f.args, perGrant, work))) {
      reasons.push('ARG_CONSTRAINT_FAILED');
      details.push(...perGrant);
    }
  }

  if (m.resources && f.resource !== undefined && !m.resources.some((r) => globMatch(r, f.resource as string))) {
    reasons.push('RESOURCE_NOT_IN_MANDATE');
    details.push(`resource "${f.resource}" is not in the mandate`);
  }

  const undeclared = f.toolInfo.dataClasses.filter((c) => !m.data_classes.includes(c));
  if (undeclared.length > 0) {
    reasons.push('DATA_CLASS_NOT_DECLARED');
    details.push(`tool touches undeclared data classes: ${undeclared.join(', ')}`);
  }

  if (!withinTimeWindow(m.time_window, f.now)) {
    reasons.push('OUTSIDE_TIME_WINDOW');
    details.push('call is outside the mandate time window');
  }

  const total = m.budgets?.calls;
  if (total !== undefined && f.usage.calls >= total) {
    reasons.push('BUDGET_EXHAUSTED');
    details.push(`task budget of ${total} calls is used up`);
  }
  const perTool = toolBudget(m, f.tool);
  if (perTool !== undefined && f.usage.toolCalls >= perTool) {
    reasons.push('TOOL_BUDGET_EXHAUSTED');
    details.push(`budget of ${perTool} calls to "${f.tool}" is used up`);
  }

  if (reasons.length > 0) return { ok: false, reasons, details, approval: undefined };
  const approval = approvalFor(m, f.tool, f.args, work);
  if ('undecided' in approval) return { ok: false, reasons: ['ARG_CONSTRAINT_FAILED'], details: [approval.undecided], approval: undefined };
  return { ok: true, reasons, details, approval: approval.rule };
}
