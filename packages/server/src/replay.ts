/**
 * Replay: recorded agent traces fed through the real decision pipeline, as live traffic would be.
 *
 * One runtime (createRuntime, the same composition as `mandate serve`) on a throw-away SQLite data
 * folder, a clock that never moves on its own and ids from a counter, so the same traces and
 * policies give the same decisions. Per suite, one registered agent whose ceiling is the policy
 * folder's catalogue; per trace, one task whose declared purpose is the user's request, whose
 * tools are every catalogued tool and whose data classes are the catalogue's. Each step is
 * decided with a call id; an allowed step's recorded result (or error text) is reported back
 * with `recordOutcome`, so provenance sees it. A blocked step's result is NOT recorded: the agent
 * never received it. The recording itself goes on as if the agent had (a limit of offline
 * replay: a live agent would have acted differently after the block).
 *
 * The audit runs with `durability: normal` (no fsync per commit: a crash of the replay loses
 * nothing that matters), which is what makes tens of thousands of traces take seconds.
 */
import { createReadStream, mkdtempSync, rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MandateError, type ArgProvenance, type Decision, type ShadowEvaluator, type Clock, type Divergence, type IdGenerator, type JsonObject, type JsonValue, type ShadowStats } from '@mandate/core';
import { createRuntime, type MandateRuntime } from './compose.ts';
import { parseConfig } from './config.ts';
import { loadPolicyDir } from './policies.ts';
import { sha256Hasher } from './node-ports.ts';

export interface ReplayStep {
  readonly tool: string;
  readonly args: JsonObject;
  readonly result: JsonValue;
  readonly error: string | null;
}

export interface ReplayTrace {
  readonly id: string;
  readonly suite: string;
  readonly purpose: string;
  readonly steps: readonly ReplayStep[];
}

export type ReplayEffect = 'allow' | 'deny' | 'approval_required';

/** One line of the decisions file: what the gateway decided for step `step` of trace `id`. */
export interface ReplayDecision {
  readonly id: string;
  readonly step: number;
  readonly decision: ReplayEffect;
  readonly reasons: readonly string[];
  readonly policy_ids: readonly string[];
  /** shadow mode: what the candidate set decided, when it differs from the active one */
  readonly shadow?: { readonly decision: ReplayEffect; readonly policy_ids: readonly string[] } | undefined;
  /** with `explain`, for a blocked or held call: the tool's facts and each argument's provenance */
  readonly explain?: Explanation | undefined;
}

/** Why a call was blocked or held, for the author of a policy: the rule, the arguments and where their values came from. */
export interface Explanation {
  readonly tool: string;
  readonly category: string;
  readonly args: readonly ExplainedArg[];
}

export interface ExplainedArg {
  readonly name: string;
  /** `sink` (names a destination) or `content` (sent or written), from tools.yaml; absent otherwise */
  readonly role?: 'sink' | 'content' | undefined;
  /** the provenance sets the argument is in (purpose, trusted, purpose_source, purpose_source_text, untrusted, untrusted_text, unknown) */
  readonly provenance: readonly string[];
  /** the value, cut to 200 characters */
  readonly value: string;
}

export interface ReplayOptions {
  /** the active policy folder (*.cedar + tools.yaml), or several loaded as one set */
  readonly policiesDir: string | readonly string[];
  /** a candidate policy folder (or folders) judged beside the active one (shadow mode) */
  readonly shadowDir?: string | readonly string[] | undefined;
  /** explain each blocked or held call in its decision (`explain`) */
  readonly explain?: boolean | undefined;
  /** the environment tasks declare and the deployment guards (default prod) */
  readonly environment?: string;
  /** traces in flight at once (default 16); the output order is the input order regardless */
  readonly concurrency?: number;
  /** told of each trace's decisions, in input order */
  readonly onTrace?: (decisions: readonly ReplayDecision[], trace: ReplayTrace, elapsedMs: number) => void;
}

export interface ReplaySummary {
  readonly traces: number;
  readonly calls: number;
  readonly allowed: number;
  readonly denied: number;
  readonly held: number;
  /** traces with at least one blocked (denied or held) call */
  readonly tracesBlocked: number;
  readonly elapsedMs: number;
  readonly tracesPerSec: number;
  readonly callsPerSec: number;
  readonly policyVersion: string;
  readonly shadow?: (ShadowStats & { readonly sample: readonly Divergence[] }) | undefined;
}

const START_MS = Date.UTC(2026, 0, 5, 9, 0, 0);
const TRUST_DOMAIN = 'replay.mandate.local';
const MAX_STEPS = 10_000;
const NO_PURPOSE = '(no purpose declared)';

/** A clock that stands still: every decision of a replay sees the same time. */
export function frozenClock(ms = START_MS): Clock {
  return { now: () => ms };
}

/** `<prefix>_<counter>`: deterministic ids (a replay is not a place for unguessable ones). */
export function counterIds(): IdGenerator {
  let n = 0;
  return { next: (prefix) => `${prefix}_r${(++n).toString(36)}` };
}

/** Checks one parsed JSON line is a trace; throws MandateError MALFORMED_REQUEST naming what is wrong. */
export function parseTrace(v: unknown, where: string): ReplayTrace {
  const bad = (msg: string): never => {
    throw new MandateError('MALFORMED_REQUEST', `${where}: ${msg}`);
  };
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return bad('a trace must be a JSON object');
  const o = v as Record<string, unknown>;
  if (typeof o['id'] !== 'string' || o['id'].length === 0 || o['id'].length > 1024) bad('id must be a string of 1 to 1024 characters');
  if (typeof o['suite'] !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(o['suite'])) bad('suite must match [A-Za-z0-9._-]{1,64}');
  if (typeof o['purpose'] !== 'string') bad('purpose must be a string');
  if (!Array.isArray(o['steps']) || o['steps'].length > MAX_STEPS) bad(`steps must be an array of at most ${MAX_STEPS}`);
  const steps = (o['steps'] as unknown[]).map((s, i): ReplayStep => {
    if (s === null || typeof s !== 'object' || Array.isArray(s)) return bad(`steps[${i}] must be an object`);
    const st = s as Record<string, unknown>;
    if (typeof st['tool'] !== 'string') bad(`steps[${i}].tool must be a string`);
    const args = st['args'] ?? {};
    if (args === null || typeof args !== 'object' || Array.isArray(args)) bad(`steps[${i}].args must be an object`);
    const error = st['error'] ?? null;
    if (error !== null && typeof error !== 'string') bad(`steps[${i}].error must be a string or null`);
    return { tool: st['tool'] as string, args: args as JsonObject, result: (st['result'] ?? null) as JsonValue, error: error as string | null };
  });
  return { id: o['id'] as string, suite: o['suite'] as string, purpose: o['purpose'] as string, steps };
}

/** Reads a JSON Lines trace file (gzip when the name ends in .gz), one validated trace a line. */
export async function* readTraceFile(path: string): AsyncGenerator<ReplayTrace> {
  const raw = createReadStream(path);
  const input = path.endsWith('.gz') ? raw.pipe(createGunzip()) : raw;
  raw.on('error', (e) => input.destroy(e));
  const lines = createInterface({ input, crlfDelay: Infinity });
  let n = 0;
  for await (const line of lines) {
    n += 1;
    if (line.trim() === '') continue;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (e) {
      throw new MandateError('MALFORMED_REQUEST', `${path}:${n}: not JSON: ${(e as Error).message}`);
    }
    yield parseTrace(v, `${path}:${n}`);
  }
}

interface Pack {
  readonly tools: string[];
  readonly dataClasses: string[];
}

function packOf(dir: string | readonly string[]): Pack {
  const set = loadPolicyDir(dir, sha256Hasher);
  try {
    const tools = set.catalog.entries.map((e) => e.name).filter((n) => !n.includes('*'));
    if (tools.length === 0) throw new MandateError('POLICY_INVALID', `${String(dir)}: tools.yaml names no tool: a replay task needs the tools it may call`);
    const dataClasses = [...new Set(set.catalog.entries.flatMap((e) => e.data_classes))].sort();
    return { tools: [...new Set(tools)].sort(), dataClasses };
  } finally {
    set.dispose();
  }
}

/**
 * A replay session: the runtime, one agent per suite. `run` can be called once per trace stream;
 * `close` removes the temporary data folder.
 */
export class ReplaySession {
  private readonly rt: MandateRuntime;
  private readonly dir: string;
  private readonly pack: Pack;
  private readonly environment: string;
  private readonly shadow: ShadowEvaluator | undefined;
  private readonly explain: boolean;
  private readonly agents = new Map<string, Promise<string>>();
  /** shadow divergences not yet attached to their call, by call id, and the last one read */
  private readonly divergences = new Map<string, Divergence>();
  private divergenceSeq = 0;

  private constructor(rt: MandateRuntime, dir: string, pack: Pack, environment: string, shadow: ShadowEvaluator | undefined, explain: boolean) {
    this.rt = rt;
    this.dir = dir;
    this.pack = pack;
    this.environment = environment;
    this.shadow = shadow;
    this.explain = explain;
  }

  static async open(o: ReplayOptions): Promise<ReplaySession> {
    const pack = packOf(o.policiesDir);
    const dir = mkdtempSync(join(tmpdir(), 'mandate-replay-'));
    try {
      const environment = o.environment ?? 'prod';
      const config = parseConfig({
        environment,
        data_dir: dir,
        policies: { dir: typeof o.policiesDir === 'string' ? o.policiesDir : [...o.policiesDir], ...(o.shadowDir !== undefined ? { shadow_dir: typeof o.shadowDir === 'string' ? o.shadowDir : [...o.shadowDir] } : {}) },
        identity: { dev_issuer: { enabled: true, trust_domain: TRUST_DOMAIN } },
        // replay decides one recorded call after another: nothing to answer while a commit runs,
        // so the event loop's own commit (no thread hop) is the quicker
        audit: { durability: 'normal', checkpoint_every: 100_000, checkpoint_interval: '1h', commit_thread: false },
        approvals: { max_pending_per_task: 1000 },
        tokens: { ttl: '1h', default_task_ttl: '1h', max_task_ttl: '1h', expiry_sweep_interval: '1h' },
        log: { level: 'silent' },
      });
      const rt = await createRuntime(config, { clock: frozenClock(), ids: counterIds(), writeAdminKeyFile: false });
      return new ReplaySession(rt, dir, pack, environment, rt.shadow, o.explain === true);
    } catch (e) {
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
  }

  get runtime(): MandateRuntime {
    return this.rt;
  }

  /** the agent of a suite, registered on first use with a ceiling covering the pack */
  private agentFor(suite: string): Promise<string> {
    let p = this.agents.get(suite);
    if (!p) {
      p = (async () => {
        const id = `spiffe://${TRUST_DOMAIN}/agents/${suite}`;
        const now = this.rt.clock.now();
        await this.rt.agents.createAgent({
          id,
          owner: 'replay',
          type: 'replay',
          status: 'active',
          ceiling: { tools: this.pack.tools, data_classes: this.pack.dataClasses, environments: [this.environment] },
          createdAt: now,
          updatedAt: now,
        });
        return id;
      })();
      this.agents.set(suite, p);
    }
    return p;
  }

  /** Replays one trace, step by step, and returns one decision per step. */
  async replayTrace(trace: ReplayTrace, index: number): Promise<ReplayDecision[]> {
    const agentId = await this.agentFor(trace.suite);
    const issuer = this.rt.devIssuer;
    if (!issuer) throw new MandateError('INTERNAL_ERROR', 'the replay runtime has no workload issuer');
    const svid = await issuer.mint(agentId, { audience: this.rt.config.identity.audience, ttlMs: 3_600_000 });
    const task = await this.rt.tasks.start(svid, {
      // a recording without the user's words declares no purpose: nothing can come from it
      purpose: trace.purpose.trim() === '' ? NO_PURPOSE : trace.purpose.slice(0, 4000),
      environment: this.environment,
      ttl: '1h',
      tools: this.pack.tools.map((name) => ({ name })),
      data_classes: this.pack.dataClasses,
      budgets: { calls: 100_000 },
    });
    const out: ReplayDecision[] = [];
    try {
      for (const [step, s] of trace.steps.entries()) {
        const callId = `t${index.toString(36)}-s${step}`;
        const d = await this.rt.engine.decide({ taskToken: task.token, tool: s.tool, args: s.args, callId });
        const diverged = this.divergenceOf(callId);
        out.push({
          id: trace.id,
          step,
          decision: d.effect,
          reasons: [...d.reasons],
          policy_ids: d.policyIds.filter((p) => !p.startsWith('approval:')),
          ...(diverged ? { shadow: { decision: diverged.candidate.effect, policy_ids: [...diverged.candidate.policyIds] } } : {}),
          ...(this.explain && d.effect !== 'allow' ? { explain: this.explainCall(s, d) } : {}),
        });
        // only what the agent received can inform its later calls
        if (d.effect === 'allow') {
          await this.rt.engine.recordOutcome({ taskToken: task.token, callId, result: s.error ?? s.result, isError: s.error !== null });
        }
      }
    } finally {
      await this.rt.tasks.complete(task.task.id, { kind: 'agent', agentId });
      this.rt.engine.forgetTask(task.task.id);
    }
    return out;
  }

  /** The shadow divergence recorded for this call, if any (the candidate is judged inside `decide`). */
  private divergenceOf(callId: string): Divergence | undefined {
    const shadow = this.shadow;
    if (shadow === undefined) return undefined;
    const total = shadow.stats().divergences;
    if (total > this.divergenceSeq) {
      for (const d of shadow.list(this.divergenceSeq, total - this.divergenceSeq)) this.divergences.set(d.callId, d);
      this.divergenceSeq = total;
    }
    const d = this.divergences.get(callId);
    if (d !== undefined) this.divergences.delete(callId);
    return d;
  }

  private explainCall(s: ReplayStep, d: Decision): Explanation {
    const info = this.rt.policies.current.catalog.lookup(s.tool);
    const p: ArgProvenance | undefined = d.provenance;
    const sets: [string, readonly string[] | undefined][] = [
      ['purpose', p?.purpose],
      ['trusted', p?.trusted],
      ['purpose_source', p?.purposeSource],
      ['purpose_source_text', p?.purposeSourceText],
      ['untrusted', p?.untrusted],
      ['untrusted_text', p?.untrustedText],
      ['unknown', p?.unknown],
      ['labelled', p?.labelled],
    ];
    const args = Object.entries(s.args).map(([name, v]): ExplainedArg => {
      const role = info.sinkArgs?.includes(name) ? 'sink' : info.contentArgs?.includes(name) ? 'content' : undefined;
      const text = typeof v === 'string' ? v : JSON.stringify(v);
      return {
        name,
        ...(role !== undefined ? { role } : {}),
        provenance: sets.filter(([, names]) => names?.includes(name) === true).map(([set]) => set),
        value: text.length > 200 ? text.slice(0, 200) + '…' : text,
      };
    });
    return { tool: s.tool, category: info.category, args };
  }

  /**
   * Replays a stream of traces with `concurrency` in flight; decisions are handed to `onTrace` in
   * input order. Returns the summary.
   */
  async run(traces: AsyncIterable<ReplayTrace> | Iterable<ReplayTrace>, o: Pick<ReplayOptions, 'concurrency' | 'onTrace'> = {}): Promise<ReplaySummary> {
    const concurrency = Math.max(1, Math.min(256, o.concurrency ?? 16));
    const started = performance.now();
    let traceCount = 0;
    let calls = 0;
    let allowed = 0;
    let denied = 0;
    let held = 0;
    let tracesBlocked = 0;
    const done = new Map<number, { trace: ReplayTrace; decisions: ReplayDecision[]; ms: number }>();
    let nextOut = 0;
    const flush = () => {
      for (let r = done.get(nextOut); r !== undefined; r = done.get(nextOut)) {
        done.delete(nextOut);
        nextOut += 1;
        traceCount += 1;
        let blocked = false;
        for (const d of r.decisions) {
          calls += 1;
          if (d.decision === 'allow') allowed += 1;
          else {
            blocked = true;
            if (d.decision === 'deny') denied += 1;
            else held += 1;
          }
        }
        if (blocked) tracesBlocked += 1;
        o.onTrace?.(r.decisions, r.trace, r.ms);
      }
    };
    const inFlight = new Set<Promise<void>>();
    let index = 0;
    for await (const trace of traces) {
      const i = index++;
      const t0 = performance.now();
      const p: Promise<void> = this.replayTrace(trace, i).then((decisions) => {
        done.set(i, { trace, decisions, ms: performance.now() - t0 });
        flush();
      });
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p)).catch(() => undefined);
      if (inFlight.size >= concurrency) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    flush();
    const elapsedMs = performance.now() - started;
    const stats = this.shadow?.stats();
    return {
      traces: traceCount,
      calls,
      allowed,
      denied,
      held,
      tracesBlocked,
      elapsedMs,
      tracesPerSec: traceCount / (elapsedMs / 1000),
      callsPerSec: calls / (elapsedMs / 1000),
      policyVersion: this.rt.policies.current.version,
      ...(stats ? { shadow: { ...stats, sample: this.shadow?.list(0, 20) ?? [] } } : {}),
    };
  }

  async close(): Promise<void> {
    try {
      await this.rt.close();
    } finally {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}

/** Opens a session, replays, closes. */
export async function replayTraces(traces: AsyncIterable<ReplayTrace> | Iterable<ReplayTrace>, o: ReplayOptions): Promise<ReplaySummary> {
  const session = await ReplaySession.open(o);
  try {
    return await session.run(traces, o);
  } finally {
    await session.close();
  }
}
