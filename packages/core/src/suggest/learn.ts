/**
 * The learner: from the tasks an agent ran, the smallest ceiling and mandate template that would
 * have allowed every call it made (budgets aside: see below), per agent and per purpose cluster.
 * Pure: the caller reads the audit log or the traces (observe.ts) and writes the YAML.
 *
 * - tools: exactly the tool names called (no globs); a name the mandate language cannot hold is
 *   reported and left out;
 * - arguments: each argument of each tool through the generalisers (generalise.ts);
 * - data classes: the catalogue's classes of the tools called when a catalogue is given, else the
 *   classes the observed tasks declared;
 * - budgets: the calls per task, in total and per tool, at the `budgetPercentile` (nearest rank,
 *   default 99) over the tasks (over the tasks that called the tool, per tool). At 100 the
 *   budget is the most any task used; below, up to (100 - p) % of the tasks ran over it, which is
 *   the point: a runaway task should not set the budget. The training report counts them apart;
 * - ttl: the longest ttl the tasks declared, in the template and as the ceiling's `max_ttl` (only
 *   when every task declared one);
 * - ceiling: the tools, data classes and environments seen, and the largest call budget of the
 *   templates as `max_calls`.
 */
import { formatDuration } from '../duration.ts';
import type { JsonObject, JsonValue } from '../json.ts';
import type { ToolInfo } from '../model.ts';
import type { CeilingInput, MandateInput } from '../mandate/schema.ts';
import { clusterPurposes } from './cluster.ts';
import { extent, generaliseArg, type GeneraliseOptions, type GeneraliserRule } from './generalise.ts';
import type { ObservedTask } from './observe.ts';

export interface SuggestOptions extends GeneraliseOptions {
  /** percentile of calls per task the budgets are set at (default 99; 1 to 100) */
  readonly budgetPercentile?: number;
  /** the tool catalogue's facts (data classes) by tool name; without it, declared classes are used */
  readonly toolInfo?: ((tool: string) => ToolInfo) | undefined;
  /** environment for tasks that declared none (traces): default prod */
  readonly environment?: string;
  /** Jaccard similarity of purpose words at which two tasks share a cluster (default 0.5; 1 = same words only) */
  readonly clusterSimilarity?: number;
  /** the most clusters per agent (default 32); tasks beyond are in the agent's template only */
  readonly maxClusters?: number;
}

/** How one argument's constraint was derived (or why it was left open). */
export interface ArgRule {
  readonly tool: string;
  readonly arg: string;
  readonly rule: GeneraliserRule;
  readonly seen: number;
  readonly distinct: number;
  readonly constrained: boolean;
}

export interface ClusterSuggestion {
  readonly id: string;
  /** the purpose words the cluster's tasks share */
  readonly words: readonly string[];
  readonly purpose: string;
  readonly tasks: number;
  readonly calls: number;
  readonly mandate: MandateInput;
}

export interface AgentSuggestion {
  readonly agent: string;
  readonly tasks: number;
  readonly calls: number;
  readonly ceiling: CeilingInput;
  readonly mandate: MandateInput;
  readonly clusters: readonly ClusterSuggestion[];
  readonly rules: readonly ArgRule[];
  /** what could not be written into a mandate (tool names, argument names) */
  readonly skipped: readonly string[];
}

const TOOL_NAME = /^[A-Za-z0-9._:/@-]{1,200}$/;
const ARG_NAME = /^[A-Za-z0-9_-]{1,100}$/;
const LABEL = /^[A-Za-z0-9._-]{1,100}$/;
const MAX_DEPTH = 4;
const MAX_TOOLS = 256;
export const TEMPLATE_PURPOSE = '(template: replace with the task’s own purpose)';

/** Nearest-rank percentile of counts (p in 1..100). */
export function percentile(counts: readonly number[], p: number): number {
  if (counts.length === 0) return 0;
  const sorted = [...counts].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1] as number;
}

/** Scalar leaves of an arguments object by dotted path (objects nested up to MAX_DEPTH; a list is a leaf). */
function leaves(args: JsonObject, skipped: Set<string>, tool: string, prefix = '', depth = 0, out = new Map<string, JsonValue>()): Map<string, JsonValue> {
  for (const [k, v] of Object.entries(args)) {
    if (!ARG_NAME.test(k)) {
      skipped.add(`${tool}: argument ${JSON.stringify(prefix + k)} cannot be named in a mandate`);
      continue;
    }
    const path = prefix + k;
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && depth < MAX_DEPTH && Object.keys(v).length > 0) leaves(v, skipped, tool, path + '.', depth + 1, out);
    else out.set(path, v);
  }
  return out;
}

/** Everything learnt from one set of tasks: the pieces both the agent's and a cluster's mandate use. */
function learnMandate(tasks: readonly ObservedTask[], purpose: string, opts: SuggestOptions, rules: ArgRule[] | undefined, skipped: Set<string>): { mandate: MandateInput; dataClasses: string[]; environments: string[]; calls: number } {
  const p = Math.min(Math.max(opts.budgetPercentile ?? 99, 1), 100);
  const byTool = new Map<string, { args: Map<string, JsonValue>[]; perTask: number[] }>();
  const perTaskCalls: number[] = [];
  const dataClasses = new Set<string>();
  const environments = new Set<string>();
  let calls = 0;
  for (const t of tasks) {
    const counts = new Map<string, number>();
    let n = 0;
    for (const c of t.calls) {
      if (!TOOL_NAME.test(c.tool)) {
        skipped.add(`tool ${JSON.stringify(c.tool.slice(0, 200))} cannot be named in a mandate`);
        continue;
      }
      n += 1;
      counts.set(c.tool, (counts.get(c.tool) ?? 0) + 1);
      let entry = byTool.get(c.tool);
      if (entry === undefined) {
        entry = { args: [], perTask: [] };
        byTool.set(c.tool, entry);
      }
      entry.args.push(leaves(c.args, skipped, c.tool));
      if (opts.toolInfo !== undefined) for (const d of opts.toolInfo(c.tool).dataClasses) dataClasses.add(d);
    }
    calls += n;
    // a task that made no call says nothing about how many calls a task needs
    if (n > 0) perTaskCalls.push(n);
    for (const [tool, k] of counts) byTool.get(tool)?.perTask.push(k);
    if (opts.toolInfo === undefined) for (const d of t.dataClasses ?? []) dataClasses.add(d);
    environments.add(t.environment ?? opts.environment ?? 'prod');
  }
  const tools: NonNullable<MandateInput['tools']> = [];
  const perTool: Record<string, number> = {};
  for (const tool of [...byTool.keys()].sort().slice(0, MAX_TOOLS)) {
    const entry = byTool.get(tool) as { args: Map<string, JsonValue>[]; perTask: number[] };
    const names = new Set<string>();
    for (const a of entry.args) for (const k of a.keys()) names.add(k);
    const args: Record<string, NonNullable<NonNullable<MandateInput['tools']>[number]['args']>[string]> = {};
    for (const name of [...names].sort()) {
      const g = generaliseArg(
        entry.args.map((a) => a.get(name)),
        opts,
      );
      rules?.push({ tool, arg: name, rule: g.rule, seen: g.seen, distinct: g.distinct, constrained: g.constraint !== undefined });
      if (g.constraint !== undefined) args[name] = g.constraint;
    }
    tools.push(Object.keys(args).length > 0 ? { name: tool, args } : { name: tool });
    perTool[tool] = Math.max(1, percentile(entry.perTask, p));
  }
  if (byTool.size > MAX_TOOLS) skipped.add(`more than ${MAX_TOOLS} tools: the first ${MAX_TOOLS} by name are in the mandate`);
  const envs = [...environments].filter((e) => LABEL.test(e)).sort();
  const classes = [...dataClasses].filter((d) => LABEL.test(d)).sort();
  // a task that declared no ttl ran under the server's default: no ttl can be read then
  const ttls = tasks.map((t) => t.ttlMs).filter((x): x is number => x !== undefined);
  const ttl = ttls.length === tasks.length && ttls.length > 0 ? formatDuration(extent(ttls)[1]) : undefined;
  const mandate: MandateInput = {
    purpose,
    environment: envs[0] ?? 'prod',
    ...(ttl !== undefined ? { ttl } : {}),
    tools,
    data_classes: classes,
    budgets: { calls: Math.max(1, percentile(perTaskCalls, p)), per_tool: perTool },
    delegation: { allowed: false },
  };
  return { mandate, dataClasses: classes, environments: envs, calls };
}

/**
 * Suggests, per agent, a ceiling and a mandate template (and one template per purpose cluster)
 * that allow what the observed tasks did. Agents are in name order, clusters by size.
 */
export function suggest(tasks: readonly ObservedTask[], opts: SuggestOptions = {}): AgentSuggestion[] {
  const byAgent = new Map<string, ObservedTask[]>();
  for (const t of tasks) {
    const own = byAgent.get(t.agent);
    if (own === undefined) byAgent.set(t.agent, [t]);
    else own.push(t);
  }
  const out: AgentSuggestion[] = [];
  for (const agent of [...byAgent.keys()].sort()) {
    const own = byAgent.get(agent) as ObservedTask[];
    const skipped = new Set<string>();
    const rules: ArgRule[] = [];
    const learnt = learnMandate(own, TEMPLATE_PURPOSE, opts, rules, skipped);
    // an agent none of whose calls can be written into a mandate gets no suggestion: it is denied everything
    if (learnt.mandate.tools?.length === 0) continue;
    const clusters: ClusterSuggestion[] = [];
    for (const c of clusterPurposes(own, opts)) {
      const m = learnMandate(c.tasks, c.purpose.trim() === '' ? TEMPLATE_PURPOSE : c.purpose.slice(0, 4000), opts, undefined, new Set());
      if ((m.mandate.tools ?? []).length > 0) clusters.push({ id: c.id, words: c.words, purpose: c.purpose, tasks: c.tasks.length, calls: m.calls, mandate: m.mandate });
    }
    const ceiling: CeilingInput = {
      tools: (learnt.mandate.tools ?? []).map((t) => t.name),
      data_classes: learnt.dataClasses,
      environments: learnt.environments.length > 0 ? learnt.environments : ['prod'],
      ...(learnt.mandate.ttl !== undefined ? { max_ttl: learnt.mandate.ttl } : {}),
      // a cluster's percentile may sit above the agent's: the ceiling must hold every template
      max_calls: Math.max(learnt.mandate.budgets?.calls ?? 0, ...clusters.map((c) => c.mandate.budgets?.calls ?? 0)),
      max_delegation_depth: 0,
    };
    out.push({ agent, tasks: own.length, calls: learnt.calls, ceiling, mandate: learnt.mandate, clusters, rules, skipped: [...skipped].sort() });
  }
  return out;
}


