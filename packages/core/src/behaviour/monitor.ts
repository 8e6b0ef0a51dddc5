/**
 * The behaviour monitor: what the decision engine calls, beside policy, for every decided call.
 *
 *   load(task)    the task's containment (cached; read through the store on a miss)
 *   assess(...)   detectors → signals → containment actions → final = restrict(policy, containment),
 *                 and admission: the call counts in its task's and its agents' scopes (rate,
 *                 retry, chain marks, baseline) and the containment it caused holds for every
 *                 call judged after it on this node, all in one synchronous step, so N calls
 *                 sent at once are judged as the same N calls sent one by one
 *   settle(...)   after the commit: new restrictions are stored, suspensions and kills enforced,
 *                 alerts emitted, the judge asked; all off the hot path (nothing here is awaited
 *                 by the decision)
 *
 * Signals can only alert or restrict. A failing store, enforcer, sink or judge never loosens
 * anything: the in-memory containment already holds on this node, and the signal and action
 * records are in the audit chain with the decision.
 */
import { redactArgs } from '../audit/redact.ts';
import { hasGlob } from '../glob.ts';
import type { JsonObject, JsonValue } from '../json.ts';
import type { Effect, Task, ToolInfo } from '../model.ts';
import type { ArgProvenance } from '../policy/context.ts';
import type { Clock, IdGenerator } from '../ports.ts';
import { markChains, stepHits } from './chains.ts';
import { applyActions, foldRestrictions, isSensitive, isUncatalogued, NO_CONTAINMENT, planActions, restrict, type ContainmentState, type FinalVerdict, type PlannedAction, type Verdict } from './combine.ts';
import type { BehaviourCoreConfig } from './config.ts';
import { runDetectors } from './detect.ts';
import { purposeWords } from './drift.ts';
import { BehaviourHistory, type TaskHistory } from './history.ts';
import { ceilingOf } from './rate.ts';
import { RingMap, type RemoteScope, type Scope } from './scope.ts';
import { mergeShared, type SharedScope } from './share.ts';
import { severityRank, SEVERITIES, type Alert, type CallEvent, type DetectorInput, type Restriction, type Severity, type Signal, type TaskProfile } from './types.ts';

/** Where restrictions are kept (a store capability). */
export interface ContainmentStore {
  /** adds restrictions; one already present (task, action, tool) stays as it was */
  addRestrictions(rows: readonly Restriction[]): Promise<void>;
  /** a task's restrictions, oldest first */
  listRestrictions(taskId: string): Promise<Restriction[]>;
}

/** Receives every alert; must not throw or block (delivery is its business). */
export interface AlertSink {
  emit(alert: Alert): void;
}

/** Carries out the containment that needs the control paths. */
export interface ContainmentEnforcer {
  suspend(taskId: string, reason: string): Promise<void>;
  kill(agentId: string, reason: string): Promise<void>;
}

export interface JudgeQuery {
  readonly taskId: string;
  readonly callId: string;
  readonly agentType: string;
  readonly purpose: string;
  readonly tool: string;
  readonly resource: string | undefined;
  /** secrets redacted */
  readonly args: JsonObject;
}

/**
 * An outside opinion on drift (an HTTP endpoint, a model): a score in 0..1. Its answer is only
 * ever a signal, for the task's later calls; errors and timeouts are ignored (the implementation
 * bounds its own time).
 */
export interface DriftJudge {
  judge(q: JudgeQuery): Promise<number>;
}

export interface MonitorLog {
  warn(obj: object, msg: string): void;
}

export interface BehaviourMonitorDeps {
  readonly clock: Clock;
  readonly ids: IdGenerator;
  readonly config: BehaviourCoreConfig;
  readonly store: ContainmentStore;
  readonly alerts?: AlertSink | undefined;
  readonly enforcer?: ContainmentEnforcer | undefined;
  readonly judge?: DriftJudge | undefined;
  readonly log?: MonitorLog | undefined;
  /** several nodes: agent scopes count their calls in buckets of this size, to share them (share.ts) */
  readonly share?: { readonly bucketMs: number } | undefined;
}

export interface AssessInput {
  readonly task: Task;
  readonly agentType: string;
  readonly tool: ToolInfo;
  readonly resource: string | undefined;
  readonly args: JsonObject;
  readonly provenance: ArgProvenance;
  readonly callId: string;
  readonly argsHash: string;
  readonly now: number;
  /** the policy's decision for the call */
  readonly policy: Verdict;
  /** a delegated task: the agents that delegated it, root first (their scopes count the call too) */
  readonly lineage?: readonly string[] | undefined;
}

export interface Assessment {
  readonly input: AssessInput;
  readonly event: CallEvent;
  readonly signals: readonly Signal[];
  /** containment actions these signals called for */
  readonly actions: readonly PlannedAction[];
  /** the task's containment after them */
  readonly state: ContainmentState;
  readonly final: FinalVerdict;
  readonly inWindow: number;
  /** this call's kill is the first for its agent on this node: settle() carries it out */
  readonly startsKill: boolean;
}

const NO_HITS: readonly number[] = [];

const MAX_PENDING_JUDGE = 8;

function typeOf(v: JsonValue): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

/** `tool(key:type,…)`, keys sorted: what a call's arguments look like, without their values */
export function argShape(tool: string, args: JsonObject): string {
  const keys = Object.keys(args).sort();
  return `${tool}(${keys.map((k) => `${k}:${typeOf(args[k] as JsonValue)}`).join(',')})`;
}

/** tools whose last argument shape is remembered (see ArgShapes); past this, all are forgotten */
const MAX_SHAPED_TOOLS = 1024;

/**
 * `argShape`, remembering each tool's last shape with the keys (in the arguments' own order) and
 * types it came from: a tool is mostly called with the same keys, so the shape is found by
 * comparing them instead of sorting and writing it again, and every call event of that shape
 * holds the same string.
 */
class ArgShapes {
  private readonly last = new Map<string, { readonly keys: readonly string[]; readonly types: readonly string[]; readonly shape: string }>();

  of(tool: string, args: JsonObject): string {
    const keys = Object.keys(args);
    const hit = this.last.get(tool);
    if (hit !== undefined && hit.keys.length === keys.length) {
      let same = true;
      for (let i = 0; i < keys.length && same; i++) {
        const k = keys[i] as string;
        same = k === hit.keys[i] && typeOf(args[k] as JsonValue) === hit.types[i];
      }
      if (same) return hit.shape;
    }
    const shape = argShape(tool, args);
    if (this.last.size >= MAX_SHAPED_TOOLS && hit === undefined) this.last.clear();
    this.last.set(tool, { keys, types: keys.map((k) => typeOf(args[k] as JsonValue)), shape });
    return shape;
  }
}

/** records in a tool result: the longest list at its top level or one level down (at least 1) */
export function recordsIn(result: JsonValue): number {
  if (Array.isArray(result)) return Math.max(1, result.length);
  if (result === null || typeof result !== 'object') return 1;
  let best = 1;
  for (const v of Object.values(result)) {
    if (Array.isArray(v)) best = Math.max(best, v.length);
    else if (v !== null && typeof v === 'object') for (const w of Object.values(v)) if (Array.isArray(w)) best = Math.max(best, w.length);
  }
  return best;
}

export class BehaviourMonitor {
  private readonly d: BehaviourMonitorDeps;
  readonly history: BehaviourHistory;
  /** per task: its containment as this node knows it (bounded like the tasks' history) */
  private readonly states: RingMap<ContainmentState>;
  /**
   * per task: containment decided here whose store writes have not all finished (a reload must
   * keep it), and how many are outstanding; bounded by the writes in flight
   */
  private readonly unstored = new Map<string, { state: ContainmentState; writes: number }>();
  private readonly killedAgents = new Set<string>();
  private readonly pendingJudge: RingMap<Signal[]>;
  private judging = 0;
  /** whether any detector judges the agent scope (else calls count in their task alone) */
  private readonly agentScoped: boolean;
  /** several nodes: agent scopes changed since last shared, and what the other nodes shared */
  private dirty = new Set<Scope>();
  private remote: Map<string, RemoteScope> | undefined;
  /** counts invalidations: a read of the store that one overtook is not cached */
  private epoch = 0;
  private readonly shapes = new ArgShapes();

  constructor(deps: BehaviourMonitorDeps) {
    this.d = deps;
    const h = deps.config.history;
    const det = deps.config.detectors;
    this.agentScoped = (det.rate.enabled && det.rate.scope.agent) || (det.retry.enabled && det.retry.scope.agent) || (det.chains.enabled && det.chains.scope.agent);
    this.history = new BehaviourHistory({
      perTask: h.per_task,
      maxTasks: h.max_tasks,
      perAgent: h.per_agent,
      maxAgents: h.max_agents,
      maxAgentTypes: h.max_agent_types,
      maxBaselineEntries: h.max_baseline_entries,
      // a ceiling needs counts up to twice itself (high severity) and one more
      rateCapTask: 2 * ceilingOf(det.rate, 'task') + 1,
      rateCapAgent: 2 * ceilingOf(det.rate, 'agent') + 1,
      share: deps.share === undefined ? undefined : { bucketMs: deps.share.bucketMs, horizonMs: Math.max(det.rate.window_ms, det.retry.window_ms) },
    });
    this.states = new RingMap(h.max_tasks);
    this.pendingJudge = new RingMap(h.max_tasks);
  }

  /** The task's containment: from memory, or read through the store once. */
  async load(task: Task): Promise<ContainmentState> {
    const known = this.states.get(task.id);
    if (known !== undefined) return known;
    for (let attempt = 0; ; attempt++) {
      const epoch = this.epoch;
      const read = foldRestrictions(await this.d.store.listRestrictions(task.id));
      // a restriction added meanwhile on this node, or decided here and not yet stored, wins over what the read saw
      const unstored = this.unstored.get(task.id);
      const state = unstored === undefined ? read : applyActions(read, toActions(unstored.state));
      if (epoch === this.epoch) return this.merge(task.id, state);
      // an invalidation (a lift) overtook the read: it may be stale, so it is not cached
      if (attempt >= 2) return state;
    }
  }

  /**
   * Whether the task's containment already holds this call for a step-up: a policy step-up on
   * the same call then asks one approval for both reasons (approvals answer the reasons they name).
   */
  async stepUpHolds(task: Task, tool: ToolInfo): Promise<boolean> {
    const state = await this.load(task);
    return state.stepUp && isSensitive(this.d.config.containment.sensitive, tool.category, tool.risk);
  }

  /** Forgets the cached containment of a task (another node changed it, or it was lifted). */
  invalidate(taskId: string): void {
    this.epoch += 1;
    this.states.delete(taskId);
  }

  /** Forgets every cached containment (a gap in the change feed); each is read again on use. */
  clearCache(): void {
    this.epoch += 1;
    this.states.clear();
  }

  /**
   * Signals, containment and the final verdict for one decided call, and its admission into the
   * detectors' memory. Never awaits: no other call can be judged between the two. `loaded` is
   * the task's containment as `load` returned it.
   */
  assess(input: AssessInput, loaded?: ContainmentState): Assessment {
    const { task, tool, now } = input;
    const cfg = this.d.config;
    const t = this.history.task(task.id);
    const profile = this.profile(t, input);
    const scopes: Scope[] = [t];
    if (this.agentScoped) {
      this.addAgentScope(scopes, task.agentId);
      if (input.lineage !== undefined) for (const a of input.lineage) this.addAgentScope(scopes, a);
    }
    let before = this.states.get(task.id);
    if (before === undefined) {
      before = loaded ?? NO_CONTAINMENT;
      this.states.set(task.id, before);
    }
    const sensitive = isSensitive(cfg.containment.sensitive, tool.category, tool.risk);
    const unknown = isUncatalogued(tool.category, tool.risk);
    const killedBefore = this.killedAgents.size > 0 && this.killedAgents.has(task.agentId);
    // denied before its own signals: by the policy, or by containment already in force (step-up only holds)
    const contained = killedBefore || before.killed || before.suspended || before.narrowed.length > 0;
    const deniedBefore = input.policy.effect === 'deny' || (contained && restrict(input.policy, { state: killedBefore ? { ...before, killed: true } : before, tool: tool.name, sensitive, unknown }).effect === 'deny');
    const event: CallEvent = {
      ts: now,
      callId: input.callId,
      tool: tool.name,
      category: tool.category,
      risk: tool.risk,
      dataClasses: tool.dataClasses,
      resourceKind: input.resource === undefined ? undefined : input.resource.split(':', 1)[0],
      argShape: this.shapes.of(tool.name, input.args),
      untrustedArgs: input.provenance.untrusted,
      policyEffect: input.policy.effect,
      denied: deniedBefore,
      argsHash: input.argsHash,
    };
    const chains = cfg.detectors.chains;
    const hits = chains.enabled ? stepHits(chains.rules, event) : NO_HITS;
    const baseline = this.history.baseline(input.agentType);
    const detectorInput: DetectorInput = {
      now,
      task: profile,
      // a copy of the ring, made only if a detector reads it
      get history() {
        return t.items();
      },
      call: event,
      baseline,
      volume: t.volume,
      scopes,
    };
    const signals = runDetectors(detectorInput, cfg.detectors, hits);
    const judged = this.pendingJudge.peek(task.id);
    if (judged !== undefined) {
      this.pendingJudge.delete(task.id);
      signals.push(...judged);
    }
    const actions = planActions(signals, cfg.containment.rules, tool.name);
    let state = before;
    let startsKill = false;
    if (actions.length > 0) {
      state = this.merge(task.id, applyActions(before, actions));
      if (actions.some((x) => x.action !== 'alert')) {
        const unstored = this.unstored.get(task.id);
        if (unstored === undefined) this.unstored.set(task.id, { state, writes: 1 });
        else this.unstored.set(task.id, { state: applyActions(unstored.state, toActions(state)), writes: unstored.writes + 1 });
      }
      if (actions.some((x) => x.action === 'kill') && !this.killedAgents.has(task.agentId)) {
        // denied on this node from this call on; settle() makes it durable everywhere
        this.killedAgents.add(task.agentId);
        startsKill = true;
      }
    }
    const effective = this.killedAgents.size > 0 && this.killedAgents.has(task.agentId) ? { ...state, killed: true } : state;
    const final = restrict(input.policy, { state: effective, tool: tool.name, sensitive, unknown });

    // admission: from here on every call this node judges sees this one, denied ones included
    const admitted: CallEvent = final.effect === 'deny' && !event.denied ? { ...event, denied: true } : event;
    for (const s of scopes) s.admit(admitted);
    if (chains.enabled) for (const s of scopes) if (chains.scope[s.kind]) markChains(s, chains.rules, admitted, hits, now);
    if (this.remote !== undefined) for (const s of scopes) if (s.kind === 'agent') this.dirty.add(s);
    const inWindow = t.calls(now, cfg.detectors.rate.window_ms);
    if (inWindow > t.peakPerWindow) t.peakPerWindow = inWindow;
    // only calls the policy allowed teach the baseline: probing must not become normal
    if (input.policy.effect === 'allow') baseline.learn(admitted);
    return { input, event: admitted, signals, actions, state, final, inWindow, startsKill };
  }

  /** After the decision committed (or failed to): enforce, alert. Nothing here is awaited. */
  settle(a: Assessment, finalEffect: Effect): void {
    const { input } = a;
    this.enforce(a);
    this.alert(a, finalEffect);
    if (input.policy.effect === 'allow' && finalEffect === 'allow') this.askJudge(input);
  }

  /**
   * Several nodes: the agent scopes that changed since the last call, as this node shares them.
   * The first call switches sharing on (until then nothing is collected).
   */
  shareOut(now: number): SharedScope[] {
    this.remote ??= new Map();
    const out: SharedScope[] = [];
    const det = this.d.config.detectors;
    const horizon = Math.max(det.rate.window_ms, det.retry.window_ms);
    const changed = this.dirty;
    this.dirty = new Set();
    for (const s of changed) {
      const b = s.buckets;
      if (b === undefined) continue;
      b.trim(now);
      const marks = s.liveMarks(now).map(([rule, step, m]) => ({ rule, step, until: m.until, calls: m.calls }));
      const last = b.rows[b.rows.length - 1];
      let expiresAt = last === undefined ? now : last[0] + (this.d.share?.bucketMs ?? 0) + horizon;
      for (const m of marks) expiresAt = Math.max(expiresAt, m.until);
      out.push({ agentId: s.id, buckets: b.rows.map((r) => [r[0], r[1], r[2]] as const), marks, expiresAt });
    }
    return out;
  }

  /** Several nodes: what every other node shared (replaces what was known before). */
  shareIn(rows: readonly SharedScope[]): void {
    this.remote = mergeShared(rows, this.d.share?.bucketMs ?? 1000);
    for (const s of this.history.agentScopes()) s.remote = this.remote.get(s.id);
  }

  /** A tool result of the task (outcome report): volume counts it. */
  outcome(taskId: string, result: JsonValue): void {
    const t = this.history.peekTask(taskId);
    if (t === undefined) return;
    let bytes: number;
    try {
      bytes = JSON.stringify(result).length;
    } catch {
      bytes = 0;
    }
    t.volume = { records: t.volume.records + recordsIn(result), bytes: t.volume.bytes + bytes, results: t.volume.results + 1 };
  }

  /** The task ended: its memory goes (its busiest window feeds the baseline). */
  forget(taskId: string, agentType?: string): void {
    this.history.forget(taskId, agentType);
    this.states.delete(taskId);
    this.unstored.delete(taskId);
    this.pendingJudge.delete(taskId);
  }

  /** For the API: a task's stored restrictions and the containment they add up to. */
  async containmentOf(taskId: string): Promise<{ state: ContainmentState; restrictions: Restriction[] }> {
    const restrictions = await this.d.store.listRestrictions(taskId);
    const stored = foldRestrictions(restrictions);
    const mem = this.states.peek(taskId);
    return { state: mem === undefined ? stored : applyActions(stored, toActions(mem)), restrictions };
  }

  private profile(t: TaskHistory, input: AssessInput): TaskProfile {
    if (t.profile !== undefined && t.profile.taskId === input.task.id) return t.profile;
    const m = input.task.mandate;
    const profile: TaskProfile = {
      taskId: input.task.id,
      agentId: input.task.agentId,
      agentType: input.agentType,
      purpose: m.purpose,
      purposeWords: purposeWords(m.purpose),
      declaredTools: new Set(m.tools.map((x) => x.name).filter((n) => !hasGlob(n))),
      startedAt: input.task.createdAt,
      declaredCalls: m.budgets?.calls,
      declaredScale: m.scale,
    };
    t.profile = profile;
    return profile;
  }

  /** monotone: the union of what is known and `next` */
  private merge(taskId: string, next: ContainmentState): ContainmentState {
    const cur = this.states.get(taskId);
    const state = cur === undefined ? next : applyActions(cur, toActions(next));
    this.states.set(taskId, state);
    return state;
  }

  private addAgentScope(scopes: Scope[], agentId: string): void {
    for (const s of scopes) if (s.kind === 'agent' && s.id === agentId) return;
    const s = this.history.agent(agentId);
    if (this.remote !== undefined) s.remote = this.remote.get(agentId);
    scopes.push(s);
  }

  private enforce(a: Assessment): void {
    const restricting = a.actions.filter((x) => x.action !== 'alert');
    if (restricting.length === 0) return;
    const { task } = a.input;
    const at = a.input.now;
    const rows: Restriction[] = [];
    for (const x of restricting) {
      const base = { taskId: task.id, agentId: task.agentId, detector: x.detector, callId: a.input.callId, reason: `${x.detector} ${x.severity} (${x.confidence.toFixed(2)})`, createdAt: at };
      if (x.action === 'narrow') for (const tool of x.tools) rows.push({ ...base, action: 'narrow', tool });
      else if (x.action !== 'alert') rows.push({ ...base, action: x.action, tool: '' });
    }
    this.background(
      'containment store',
      this.d.store.addRestrictions(rows).finally(() => {
        const u = this.unstored.get(task.id);
        if (u !== undefined && --u.writes <= 0) this.unstored.delete(task.id);
      }),
    );
    const enforcer = this.d.enforcer;
    if (enforcer === undefined) return;
    const why = (x: PlannedAction) => `containment: ${x.detector} signal (${x.severity}, confidence ${x.confidence.toFixed(2)}) on call ${a.input.callId}`;
    const suspend = restricting.find((x) => x.action === 'suspend');
    if (suspend !== undefined) this.background('suspend', enforcer.suspend(task.id, why(suspend)));
    const kill = restricting.find((x) => x.action === 'kill');
    if (kill !== undefined && a.startsKill) {
      // denied on this node since assess(); once the kill is durable, the agent's disabled state holds everywhere
      this.background(
        'kill',
        enforcer.kill(task.agentId, why(kill)).finally(() => this.killedAgents.delete(task.agentId)),
      );
    }
  }

  private alert(a: Assessment, finalEffect: Effect): void {
    const sink = this.d.alerts;
    if (sink === undefined || a.signals.length === 0) return;
    const min = severityRank(this.d.config.alert_min_severity);
    const signals = a.signals.filter((s) => severityRank(s.severity) >= min);
    if (signals.length === 0 && a.actions.length === 0) return;
    const shown = signals.length > 0 ? signals : a.signals;
    let top = 0;
    for (const s of shown) top = Math.max(top, severityRank(s.severity));
    const alert: Alert = {
      id: this.d.ids.next('alr'),
      ts: a.input.now,
      taskId: a.input.task.id,
      agentId: a.input.task.agentId,
      callId: a.input.callId,
      tool: a.input.tool.name,
      severity: SEVERITIES[top] as Severity,
      detectors: [...new Set(shown.map((s) => s.detector))],
      signals: shown,
      actions: [...new Set(a.actions.map((x) => x.action))],
      policyEffect: a.input.policy.effect,
      finalEffect,
      state: 'open',
      ackedBy: undefined,
      ackedAt: undefined,
      ackNote: undefined,
    };
    try {
      sink.emit(alert);
    } catch (e) {
      this.d.log?.warn({ err: e }, 'alert sink failed');
    }
  }

  private askJudge(input: AssessInput): void {
    const judge = this.d.judge;
    const cfg = this.d.config.judge_signal;
    if (judge === undefined || this.judging >= cfg.max_in_flight) return;
    this.judging += 1;
    const q: JudgeQuery = {
      taskId: input.task.id,
      callId: input.callId,
      agentType: input.agentType,
      purpose: input.task.mandate.purpose,
      tool: input.tool.name,
      resource: input.resource,
      args: redactArgs(input.args),
    };
    let answer: Promise<number>;
    try {
      answer = judge.judge(q);
    } catch {
      this.judging -= 1;
      return;
    }
    answer
      .then((score) => {
        if (typeof score !== 'number' || !Number.isFinite(score) || score < cfg.min_score) return;
        const s: Signal = { detector: 'judge', severity: cfg.severity, confidence: Math.min(1, Math.max(0, score)), evidence: { score, judged_call: input.callId, tool: input.tool.name } };
        const list = this.pendingJudge.peek(input.task.id) ?? [];
        if (list.length < MAX_PENDING_JUDGE) list.push(s);
        this.pendingJudge.set(input.task.id, list);
        const sink = this.d.alerts;
        if (sink !== undefined && severityRank(s.severity) >= severityRank(this.d.config.alert_min_severity)) {
          sink.emit({
            id: this.d.ids.next('alr'),
            ts: this.d.clock.now(),
            taskId: input.task.id,
            agentId: input.task.agentId,
            callId: input.callId,
            tool: input.tool.name,
            severity: s.severity,
            detectors: ['judge'],
            signals: [s],
            actions: [],
            policyEffect: input.policy.effect,
            finalEffect: 'allow',
            state: 'open',
            ackedBy: undefined,
            ackedAt: undefined,
            ackNote: undefined,
          });
        }
      })
      .catch(() => undefined) // a judge that fails or times out is ignored: it can never allow anything anyway
      .finally(() => {
        this.judging -= 1;
      });
  }

  private background(what: string, p: Promise<unknown>): void {
    p.catch((e: unknown) => this.d.log?.warn({ err: e }, `containment: ${what} failed`));
  }
}

function toActions(s: ContainmentState): PlannedAction[] {
  const out: PlannedAction[] = [];
  const base = { detector: '', severity: 'low' as const, confidence: 0 };
  if (s.stepUp) out.push({ ...base, action: 'step_up', tools: [] });
  if (s.suspended) out.push({ ...base, action: 'suspend', tools: [] });
  if (s.killed) out.push({ ...base, action: 'kill', tools: [] });
  if (s.narrowed.length > 0) out.push({ ...base, action: 'narrow', tools: s.narrowed });
  return out;
}
