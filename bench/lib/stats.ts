/**
 * Small, dependency-free statistics and machine facts for the benchmarks. Latencies are kept in
 * milliseconds (from `performance.now()`, microsecond resolution); percentiles use the
 * nearest-rank method so p99 is always a latency that was actually observed.
 */
import { execFileSync } from 'node:child_process';
import { cpus, totalmem, platform, arch, release, loadavg } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface Summary {
  /** number of timed calls */
  readonly runs: number;
  readonly p50: number;
  readonly p99: number;
  readonly min: number;
  readonly max: number;
  readonly mean: number;
}

/** Nearest-rank percentile of an ascending array (p in 0..100). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  if (p <= 0) return sorted[0] as number;
  if (p >= 100) return sorted[sorted.length - 1] as number;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] as number;
}

export function summarize(samples: readonly number[]): Summary {
  const sorted = Float64Array.from(samples).sort();
  const arr = Array.from(sorted);
  let sum = 0;
  for (const v of arr) sum += v;
  return {
    runs: arr.length,
    p50: percentile(arr, 50),
    p99: percentile(arr, 99),
    min: arr.length > 0 ? (arr[0] as number) : Number.NaN,
    max: arr.length > 0 ? (arr[arr.length - 1] as number) : Number.NaN,
    mean: arr.length > 0 ? sum / arr.length : Number.NaN,
  };
}

export interface MachineInfo {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly platform: string;
  readonly arch: string;
  readonly kernel: string;
  readonly node: string;
  readonly v8: string;
  /** 1, 5 and 15 minute load averages when the benchmark started: other work on the machine skews every figure */
  readonly loadavg: readonly number[];
}

export function machineInfo(): MachineInfo {
  const list = cpus();
  return {
    cpu: list[0]?.model.trim() ?? 'unknown',
    cores: list.length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    platform: platform(),
    arch: arch(),
    kernel: release(),
    node: process.version,
    v8: process.versions.v8,
    loadavg: loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

export interface GitInfo {
  /** `git rev-parse HEAD`, or null outside a git checkout */
  readonly commit: string | null;
  /** true when the working tree has uncommitted changes (the numbers are then not of `commit` alone) */
  readonly dirty: boolean | null;
}

export function gitInfo(cwd: string = REPO_ROOT): GitInfo {
  const git = (...args: string[]): string | null => {
    try {
      return execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }).trim();
    } catch {
      return null;
    }
  };
  const commit = git('rev-parse', 'HEAD');
  if (commit === null) return { commit: null, dirty: null };
  const status = git('status', '--porcelain', '--untracked-files=no');
  return { commit, dirty: status === null ? null : status.length > 0 };
}

/** Lets pending I/O callbacks and timers run, so a measurement does not inherit a backlog. */
export function settle(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}

export interface LoopOptions {
  /** untimed calls first (JIT, caches, SQLite page cache) */
  readonly warmup: number;
  /** timed calls wanted */
  readonly iterations: number;
  /** stop early after this long (ms), whatever the count; at least `minIterations` are still taken */
  readonly maxMs: number;
  readonly minIterations?: number;
}

export interface LoopResult {
  readonly samples: number[];
  /** wall-clock time of the timed part, ms */
  readonly elapsedMs: number;
}

/** How long a timed loop runs: `iterations` calls, or fewer once `maxMs` passed (at least `min`). */
export interface LoopBounds {
  readonly iterations: number;
  readonly maxMs: number;
  readonly min: number;
}

const boundsOf = (o: LoopOptions): LoopBounds => ({ iterations: o.iterations, maxMs: o.maxMs, min: o.minIterations ?? Math.min(o.iterations, 100) });

/** Times a synchronous `fn` call by call within `b` (no warm-up). */
export function loopSync(fn: () => unknown, b: LoopBounds): LoopResult {
  const samples: number[] = [];
  const start = performance.now();
  const deadline = start + b.maxMs;
  for (let i = 0; i < b.iterations; i++) {
    const t0 = performance.now();
    fn();
    const t1 = performance.now();
    samples.push(t1 - t0);
    if (t1 > deadline && samples.length >= b.min) break;
  }
  return { samples, elapsedMs: performance.now() - start };
}

/** Times an async `fn` awaited call by call within `b` (no warm-up). */
export async function loopSequential(fn: () => Promise<unknown>, b: LoopBounds): Promise<LoopResult> {
  const samples: number[] = [];
  const start = performance.now();
  const deadline = start + b.maxMs;
  for (let i = 0; i < b.iterations; i++) {
    const t0 = performance.now();
    await fn();
    const t1 = performance.now();
    samples.push(t1 - t0);
    if (t1 > deadline && samples.length >= b.min) break;
  }
  return { samples, elapsedMs: performance.now() - start };
}

/**
 * `concurrency` workers in this process, each awaiting `fn` in a loop, within `b` in total (no
 * warm-up). Samples are each call's own latency (queueing included).
 */
export async function loopConcurrent(fn: () => Promise<unknown>, concurrency: number, b: LoopBounds): Promise<LoopResult> {
  const samples: number[] = [];
  let started = 0;
  const start = performance.now();
  const deadline = start + b.maxMs;
  let stop = false;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (!stop && started < b.iterations) {
        started += 1;
        const t0 = performance.now();
        await fn();
        const t1 = performance.now();
        samples.push(t1 - t0);
        if (t1 > deadline && samples.length >= b.min) stop = true;
      }
    }),
  );
  return { samples, elapsedMs: performance.now() - start };
}

/** Runs `fn` `n` times untimed with `concurrency` in flight. */
export async function warmConcurrent(fn: () => Promise<unknown>, concurrency: number, n: number): Promise<void> {
  let left = n;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (left > 0) {
        left -= 1;
        await fn();
      }
    }),
  );
}

/** Times a synchronous function call by call. */
export function timeSync(fn: () => unknown, o: LoopOptions): LoopResult {
  for (let i = 0; i < o.warmup; i++) fn();
  return loopSync(fn, boundsOf(o));
}

/** Times an async function awaited call by call (concurrency 1). */
export async function timeSequential(fn: () => Promise<unknown>, o: LoopOptions): Promise<LoopResult> {
  for (let i = 0; i < o.warmup; i++) await fn();
  return loopSequential(fn, boundsOf(o));
}

/**
 * `concurrency` workers in this process, each awaiting `fn` in a loop, until `iterations` calls
 * completed in total or `maxMs` passed. Samples are each call's own latency (queueing included).
 */
export async function timeConcurrent(fn: () => Promise<unknown>, concurrency: number, o: LoopOptions): Promise<LoopResult> {
  await warmConcurrent(fn, concurrency, o.warmup);
  return loopConcurrent(fn, concurrency, boundsOf(o));
}
