/**
 * The runner every comparison in bench/ goes through: each target is measured beside its floor in
 * the same run, in rounds (A/B/A/B…, at least 3), the order rotated every round so neither side
 * always goes first, both sides warmed up before the first timed round, and the machine's load
 * (`uptime`) recorded before and after. A ratio is taken within each round and reported as the
 * median of the rounds with their range, so drift on a shared machine shows as spread instead of
 * as a bias.
 *
 * An arm reports what it did in a round: the operations completed, the wall time, optionally the
 * latency samples and the CPU time of the process that did the work (this process's
 * `process.cpuUsage()` for in-process code, /proc for a child). CPU time against CPU time is the
 * per-core comparison: it holds whatever else the machine runs, where wall throughput does not.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { type Figure } from './report.ts';
import { loopConcurrent, loopSequential, loopSync, settle, summarize, warmConcurrent, type LoopBounds, type LoopResult } from './stats.ts';

export const MIN_ROUNDS = 3;

/** What one arm measured in one round. */
export interface RoundSample {
  /** operations completed in the timed part */
  readonly ops: number;
  /** wall time of the timed part, ms */
  readonly elapsedMs: number;
  /** per-operation latencies, ms (absent when only a summary is known, e.g. from autocannon) */
  readonly samples?: readonly number[] | undefined;
  /** latency summary when `samples` is absent (autocannon's histogram) */
  readonly latency?: { readonly p50: number; readonly p99: number; readonly min: number; readonly max: number; readonly mean: number } | undefined;
  /** CPU time (user + system, every thread) of the process that did the work, µs */
  readonly cpuUs?: number | undefined;
  /** anything else worth keeping (error counts and the like) */
  readonly extra?: Record<string, number> | undefined;
}

export interface Arm {
  readonly name: string;
  readonly label: string;
  /** operations in flight at once while measured */
  readonly concurrency: number;
  /** untimed run before the first round (JIT, caches, connections); both sides get one */
  readonly warmup?: (() => Promise<void> | void) | undefined;
  readonly measure: (round: number) => Promise<RoundSample> | RoundSample;
}

export interface LoadSnapshot {
  readonly at: string;
  /** `uptime` as printed, or null where there is no such command */
  readonly uptime: string | null;
  readonly loadavg: readonly number[];
}

export function loadSnapshot(): LoadSnapshot {
  let uptime: string | null = null;
  try {
    uptime = execFileSync('uptime', [], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }).trim();
  } catch {
    uptime = null;
  }
  return { at: new Date().toISOString(), uptime, loadavg: loadavg().map((l) => Math.round(l * 100) / 100) };
}

export interface Interleaved {
  readonly rounds: number;
  /** the order the arms ran in, per round */
  readonly order: readonly (readonly string[])[];
  readonly load: { readonly before: LoadSnapshot; readonly after: LoadSnapshot };
  readonly arms: Readonly<Record<string, { readonly arm: Arm; readonly rounds: readonly RoundSample[] }>>;
}

export interface InterleaveOptions {
  readonly rounds: number;
  readonly say?: ((line: string) => void) | undefined;
  /** called between arms (e.g. to let a server drain); `settle()` always runs */
  readonly between?: (() => Promise<void>) | undefined;
}

/**
 * Round r starts at arm r·step (mod n), step = max(1, ⌊n / rounds⌋), so over the rounds every part
 * of the list gets to go first: A B, B A, A B for two arms; A B C, B C A, C A B for three.
 */
export function rotation<T>(arms: readonly T[], round: number, rounds: number = arms.length): T[] {
  const n = arms.length;
  if (n === 0) return [];
  const k = (round * Math.max(1, Math.floor(n / Math.max(1, rounds)))) % n;
  return [...arms.slice(k), ...arms.slice(0, k)];
}

export async function interleave(arms: readonly Arm[], o: InterleaveOptions): Promise<Interleaved> {
  if (arms.length === 0) throw new Error('interleave needs at least one arm');
  const names = new Set(arms.map((a) => a.name));
  if (names.size !== arms.length) throw new Error('arm names must be unique');
  if (!Number.isInteger(o.rounds) || o.rounds < 1) throw new Error('rounds must be a whole number of at least 1');
  const before = loadSnapshot();
  const out: Record<string, { arm: Arm; rounds: RoundSample[] }> = {};
  for (const a of arms) out[a.name] = { arm: a, rounds: [] };
  // warm-up on every side, in the first round's order
  for (const a of arms) {
    if (!a.warmup) continue;
    await settle();
    await a.warmup();
  }
  const order: string[][] = [];
  for (let r = 0; r < o.rounds; r++) {
    const seq = rotation(arms, r, o.rounds);
    order.push(seq.map((a) => a.name));
    for (const a of seq) {
      if (o.between) await o.between();
      await settle();
      const s = await a.measure(r);
      if (!(s.ops > 0)) throw new Error(`${a.name}: round ${r + 1} completed no operation`);
      (out[a.name] as { rounds: RoundSample[] }).rounds.push(s);
    }
    o.say?.(`  round ${r + 1}/${o.rounds} (${seq.map((a) => a.name).join(' → ')}); load ${loadavg()[0]?.toFixed(2)}`);
  }
  return { rounds: o.rounds, order, load: { before, after: loadSnapshot() }, arms: out };
}

// ---------------------------------------------------------------------------------------------
// per-round metrics, their median and range

export type Metric = (s: RoundSample) => number;

export const metrics = {
  /** operations per wall second */
  opsPerSec: ((s) => (s.ops / s.elapsedMs) * 1000) as Metric,
  /** CPU µs per operation (needs cpuUs) */
  cpuUsPerOp: ((s) => (s.cpuUs === undefined ? Number.NaN : s.cpuUs / s.ops)) as Metric,
  /** operations one core sustains: 1e6 / CPU µs per operation */
  perCore: ((s) => (s.cpuUs === undefined || s.cpuUs <= 0 ? Number.NaN : (1e6 * s.ops) / s.cpuUs)) as Metric,
  p50: ((s) => latency(s).p50) as Metric,
  p99: ((s) => latency(s).p99) as Metric,
};

function latency(s: RoundSample): { p50: number; p99: number; min: number; max: number; mean: number } {
  if (s.latency) return s.latency;
  if (s.samples && s.samples.length > 0) return summarize(s.samples);
  return { p50: Number.NaN, p99: Number.NaN, min: Number.NaN, max: Number.NaN, mean: Number.NaN };
}

export interface Spread {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  /** every round's value, in round order */
  readonly rounds: readonly number[];
}

export function spread(values: readonly number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length / 2;
  const median = sorted.length === 0 ? Number.NaN : sorted.length % 2 === 1 ? (sorted[Math.floor(mid)] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
  return { median, min: sorted[0] ?? Number.NaN, max: sorted.at(-1) ?? Number.NaN, rounds: values };
}

function armRounds(run: Interleaved, name: string): readonly RoundSample[] {
  const a = run.arms[name];
  if (!a) throw new Error(`no arm ${name}`);
  return a.rounds;
}

/** One arm's metric, round by round. */
export function of(run: Interleaved, name: string, m: Metric): Spread {
  return spread(armRounds(run, name).map(m));
}

/** a / b within each round (the same metric on both), median and range over the rounds. */
export function ratio(run: Interleaved, a: string, b: string, m: Metric): Spread {
  const ra = armRounds(run, a);
  const rb = armRounds(run, b);
  return spread(ra.map((s, i) => m(s) / m(rb[i] as RoundSample)));
}

/** a - b within each round. */
export function difference(run: Interleaved, a: string, b: string, m: Metric): Spread {
  const ra = armRounds(run, a);
  const rb = armRounds(run, b);
  return spread(ra.map((s, i) => m(s) - m(rb[i] as RoundSample)));
}

/**
 * An arm's rounds as one Figure: percentiles over every sample when there are samples, else the
 * median of the rounds' summaries; ops/s over the summed wall time.
 */
export function armFigure(run: Interleaved, name: string): Figure {
  const a = run.arms[name];
  if (!a) throw new Error(`no arm ${name}`);
  const rounds = a.rounds;
  const ops = rounds.reduce((t, s) => t + s.ops, 0);
  const elapsedMs = rounds.reduce((t, s) => t + s.elapsedMs, 0);
  const all = rounds.flatMap((s) => s.samples ?? []);
  if (all.length > 0) {
    const s = summarize(all);
    return { label: a.arm.label, unit: 'ms', concurrency: a.arm.concurrency, ...s, runs: ops, opsPerSec: (ops / elapsedMs) * 1000, opsBasis: 'wall', elapsedMs };
  }
  const med = (m: Metric) => spread(rounds.map(m)).median;
  const lat = (k: 'min' | 'max' | 'mean') => spread(rounds.map((s) => latency(s)[k])).median;
  return { label: a.arm.label, unit: 'ms', concurrency: a.arm.concurrency, runs: ops, p50: med(metrics.p50), p99: med(metrics.p99), min: lat('min'), max: lat('max'), mean: lat('mean'), opsPerSec: (ops / elapsedMs) * 1000, opsBasis: 'wall', elapsedMs };
}

export function armFigures(run: Interleaved): Record<string, Figure> {
  return Object.fromEntries(Object.keys(run.arms).map((k) => [k, armFigure(run, k)]));
}

/**
 * The `f` quantile (0..1, nearest rank below) of a Spread's per-round values: with many rounds on
 * a loaded machine the quartiles say more than the range.
 */
export function quantile(s: Spread, f: number): number {
  const sorted = [...s.rounds].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(f * sorted.length))] ?? Number.NaN;
}

/**
 * The derived numbers of a same-run A/B of two checkouts (arms `this` and `base`), CPU µs per
 * decision: each side, and their per-round ratio with its range and quartiles.
 */
export function checkoutComparison(run: Interleaved): { readonly ratio: Spread; readonly entries: Record<string, number> } {
  const r = ratio(run, 'this', 'base', metrics.cpuUsPerOp);
  return {
    ratio: r,
    entries: {
      ...spreadEntries('CPU us per decision, this checkout', of(run, 'this', metrics.cpuUsPerOp)),
      ...spreadEntries('CPU us per decision, other checkout', of(run, 'base', metrics.cpuUsPerOp)),
      ...spreadEntries('CPU per decision ratio this/other', r),
      'CPU per decision ratio this/other q1': quantile(r, 0.25),
      'CPU per decision ratio this/other q3': quantile(r, 0.75),
    },
  };
}

/**
 * A Spread as derived numbers: `<name>` is the median, `<name> min` / `<name> max` the range.
 * Keeps the result's derived map flat (numbers only) and the range next to every figure.
 */
export function spreadEntries(name: string, s: Spread): Record<string, number> {
  return { [name]: s.median, [`${name} min`]: s.min, [`${name} max`]: s.max };
}

/** "median [min–max]" with `digits` decimals, for notes and printed lines. */
export function fmtSpread(s: Spread, digits = 2): string {
  return `${s.median.toFixed(digits)} [${s.min.toFixed(digits)}–${s.max.toFixed(digits)}]`;
}

/** What the runner did, for a result's params. */
export function runParams(run: Interleaved): Record<string, unknown> {
  return { rounds: run.rounds, order: run.order, load_before: run.load.before, load_after: run.load.after };
}

// ---------------------------------------------------------------------------------------------
// CPU time of this process or of another one

/** This process's CPU time so far, µs (user + system, every thread). */
export function ownCpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

let clockTicks: number | undefined;
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** Another process's CPU time so far, µs (utime + stime of every thread, from /proc/<pid>/stat). */
export function processCpuUs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // after the command: state(0) ppid(1) … utime(11) stime(12)
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1e6) / ticksPerSecond();
}

/** How much of a loop to time: `iterations` calls, or fewer once `maxMs` passed (at least `min`). */
export interface Budget {
  readonly iterations: number;
  readonly maxMs?: number | undefined;
  /** calls taken whatever the time (default min(iterations, 20)) */
  readonly min?: number | undefined;
}

function budgetOf(b: Budget | number): LoopBounds {
  const o = typeof b === 'number' ? { iterations: b } : b;
  return { iterations: o.iterations, maxMs: o.maxMs ?? Number.POSITIVE_INFINITY, min: o.min ?? Math.min(o.iterations, 20) };
}

/** Times a synchronous `fn` call by call, with this process's CPU time over the loop. */
export function timeSyncCpu(fn: () => unknown, budget: Budget | number): RoundSample {
  const c0 = ownCpuUs();
  return withCpu(loopSync(fn, budgetOf(budget)), c0);
}

/** Awaits `fn` one call at a time, with this process's CPU time over the loop. */
export async function timeSequentialCpu(fn: () => Promise<unknown>, budget: Budget | number): Promise<RoundSample> {
  const c0 = ownCpuUs();
  return withCpu(await loopSequential(fn, budgetOf(budget)), c0);
}

/** `concurrency` workers awaiting `fn`, with this process's CPU time over the run (every thread). */
export async function timeConcurrentCpu(fn: () => Promise<unknown>, concurrency: number, budget: Budget | number): Promise<RoundSample> {
  const c0 = ownCpuUs();
  return withCpu(await loopConcurrent(fn, concurrency, budgetOf(budget)), c0);
}

function withCpu(r: LoopResult, c0: number): RoundSample {
  return { ops: r.samples.length, elapsedMs: r.elapsedMs, samples: r.samples, cpuUs: ownCpuUs() - c0 };
}

/** Runs `fn` `n` times untimed (a warm-up), one call at a time. */
export async function warmSequential(fn: () => unknown, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await fn();
}

export { warmConcurrent };
