/**
 * decide()'s CPU per decision, detectors on, at 128 in flight: the audit commit on its thread
 * (audit.commit_thread, the default) against the same commit on the event loop, interleaved in
 * one run (order rotated each round). CPU is the process's (user + system, every thread: the
 * commit thread's share counts).
 *
 *   node bench/decision-cpu.ts [--quick] [--json-only] [--out DIR]
 *   node bench/decision-cpu.ts --only thread --seconds 10   one arm, untimed, for --cpu-prof
 *   node bench/decision-cpu.ts --against ../base [--quick] [--rounds N]   this checkout's thread arm against
 *                                another checkout's (its own packages), interleaved in one run
 *
 * A narrower companion of bench/decision.ts (which times every other arm as well): quick to
 * rerun before and after a change to the hot path.
 */
import { createDecisionFixture, type DecisionFixture } from './lib/decision-fixture.ts';
import { type BenchResult, emitResult, newResult, parseBenchArgs, startInfo, printer } from './lib/report.ts';
import { heapInUse, shippedHeap } from './lib/shipped-heap.ts';
import { armFigures, checkoutComparison, fmtSpread, interleave, metrics, of, quantile, ratio, runParams, spreadEntries, timeConcurrentCpu, warmConcurrent, type Arm } from './lib/interleave.ts';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Decision } from '@mandate/core';

const C = 128;
const DETECTORS_ON = { behaviour: { enabled: true, detectors: { rate: { max_per_window: 1_000_000 } } } } as const;

function allowed(d: Decision): void {
  if (d.effect !== 'allow' || d.auditSeq === undefined) throw new Error(`expected a committed allow, got ${d.effect} (${d.reasons.join(', ')})`);
}

function option(argv: readonly string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
}

export async function runDecisionCpuBenchmark(argv: readonly string[]): Promise<BenchResult | undefined> {
  const only = option(argv, '--only');
  const seconds = Number(option(argv, '--seconds') ?? 10);
  const against = option(argv, '--against');
  const rounds = option(argv, '--rounds');
  const valued = ['--only', '--seconds', '--against', '--rounds'];
  const args = parseBenchArgs(argv.filter((a, i) => !valued.includes(a) && !valued.includes(argv[i - 1] ?? '')));
  if (against !== undefined) return runAgainst(resolve(against), args, rounds === undefined ? undefined : Number(rounds));
  const say = printer(args);
  const start = startInfo();
  const fx: Record<'thread' | 'loop', DecisionFixture | undefined> = { thread: undefined, loop: undefined };
  try {
    if (only === undefined || only === 'thread') fx.thread = await createDecisionFixture({ durability: 'full', config: { ...DETECTORS_ON, audit: { durability: 'full', commit_thread: true } } });
    if (only === undefined || only === 'loop') fx.loop = await createDecisionFixture({ durability: 'full', config: { ...DETECTORS_ON, audit: { durability: 'full', commit_thread: false } } });
    const decideOf = (f: DecisionFixture) => async () => allowed(await f.runtime.engine.decide(f.call));
    if (only !== undefined) {
      const f = fx[only as 'thread' | 'loop'];
      if (!f) throw new Error('--only thread | loop');
      const fn = decideOf(f);
      await warmConcurrent(fn, C, 5000);
      const t0 = Date.now();
      const c0 = process.cpuUsage();
      let n = 0;
      while (Date.now() - t0 < seconds * 1000) {
        await warmConcurrent(fn, C, 2000);
        n += 2000;
      }
      const c = process.cpuUsage(c0);
      say(`${only}: ${n} decisions, ${((c.user + c.system) / n).toFixed(1)} µs CPU each (process, every thread)`);
      return undefined;
    }
    const plan = args.quick ? { rounds: 3, iterations: 3000, maxMs: 600, warmup: 2000 } : { rounds: 5, iterations: 15_000, maxMs: 3000, warmup: 5000 };
    const arms: Arm[] = (['thread', 'loop'] as const).map((k) => {
      const fn = decideOf(fx[k] as DecisionFixture);
      return {
        name: k,
        label: `decide() + audit, detectors on, commit_thread ${k === 'thread' ? 'on' : 'off'}`,
        concurrency: C,
        warmup: () => warmConcurrent(fn, C, plan.warmup),
        measure: () => timeConcurrentCpu(fn, C, { iterations: plan.iterations, maxMs: plan.maxMs, min: C }),
      };
    });
    const run = await interleave(arms, { rounds: plan.rounds, say });
    const cpu = (k: string) => of(run, k, metrics.cpuUsPerOp);
    const perCore = (k: string) => of(run, k, metrics.perCore);
    const r = ratio(run, 'thread', 'loop', metrics.cpuUsPerOp);
    say(`CPU µs per decision (c${C}, detectors on, durability full), median [min–max] of ${plan.rounds} rounds:`);
    say(`  commit_thread on : ${fmtSpread(cpu('thread'), 1)} µs  (${fmtSpread(perCore('thread'), 0)} per core-second)`);
    say(`  commit_thread off: ${fmtSpread(cpu('loop'), 1)} µs  (${fmtSpread(perCore('loop'), 0)} per core-second)`);
    say(`  on / off: ${fmtSpread(r)}x`);
    const result: BenchResult = {
      ...newResult({ name: 'decision-cpu', title: 'decide() CPU per decision, detectors on: commit thread on vs off', mode: args.quick ? 'quick' : 'full', params: { concurrency: C, durability: 'full', v8_heap: heapInUse(), plan, ...runParams(run) } }, start),
      figures: armFigures(run),
      derived: {
        ...spreadEntries('CPU us per decision, commit_thread on', cpu('thread')),
        ...spreadEntries('CPU us per decision, commit_thread off', cpu('loop')),
        ...spreadEntries('decisions per core-second, commit_thread on', perCore('thread')),
        ...spreadEntries('decisions per core-second, commit_thread off', perCore('loop')),
        ...spreadEntries('CPU per decision ratio on/off', r),
      },
      notes: ['process CPU (user + system, every thread) over each timed run / decisions; both arms in every round, order rotated'],
    };
    return emitResult(result, args, say);
  } finally {
    await fx.thread?.close();
    await fx.loop?.close();
  }
}

/**
 * This checkout's commit-thread arm against another checkout's (a baseline worktree with its own
 * node_modules), both in this process and interleaved, so load and CPU frequency hit both alike.
 */
async function runAgainst(dir: string, args: ReturnType<typeof parseBenchArgs>, rounds?: number): Promise<BenchResult | undefined> {
  const say = printer(args);
  const start = startInfo();
  const other = (await import(pathToFileURL(`${dir}/bench/lib/decision-fixture.ts`).href)) as { createDecisionFixture: typeof createDecisionFixture };
  const config = { ...DETECTORS_ON, audit: { durability: 'full', commit_thread: true } } as const;
  const fx: Record<'this' | 'base', DecisionFixture | undefined> = { this: undefined, base: undefined };
  try {
    fx.this = await createDecisionFixture({ durability: 'full', config });
    fx.base = await other.createDecisionFixture({ durability: 'full', config });
    const base = args.quick ? { rounds: 3, iterations: 3000, maxMs: 600, warmup: 2000 } : { rounds: 7, iterations: 15_000, maxMs: 3000, warmup: 5000 };
    const plan = rounds === undefined ? base : { ...base, rounds };
    const arms: Arm[] = (['this', 'base'] as const).map((k) => {
      const f = fx[k] as DecisionFixture;
      const fn = async () => allowed(await f.runtime.engine.decide(f.call));
      return {
        name: k,
        label: `decide() + audit, detectors on, commit_thread on: ${k === 'this' ? 'this checkout' : dir}`,
        concurrency: C,
        warmup: () => warmConcurrent(fn, C, plan.warmup),
        measure: () => timeConcurrentCpu(fn, C, { iterations: plan.iterations, maxMs: plan.maxMs, min: C }),
      };
    });
    const run = await interleave(arms, { rounds: plan.rounds, say });
    const cpu = (k: string) => of(run, k, metrics.cpuUsPerOp);
    const perCore = (k: string) => of(run, k, metrics.perCore);
    const { ratio: r, entries } = checkoutComparison(run);
    say(`CPU µs per decision (c${C}, detectors on, durability full, commit thread), median [min–max] of ${plan.rounds} rounds:`);
    say(`  this checkout: ${fmtSpread(cpu('this'), 1)} µs  (${fmtSpread(perCore('this'), 0)} per core-second)`);
    say(`  ${dir}: ${fmtSpread(cpu('base'), 1)} µs  (${fmtSpread(perCore('base'), 0)} per core-second)`);
    say(`  this / base: ${fmtSpread(r)}x`);
    const q = (f: number) => quantile(r, f);
    say(`  this / base by round: ${[...r.rounds].sort((a, b) => a - b).map((x) => x.toFixed(2)).join(' ')} (quartiles ${q(0.25).toFixed(2)} / ${q(0.5).toFixed(2)} / ${q(0.75).toFixed(2)})`);
    const result: BenchResult = {
      ...newResult({ name: 'decision-cpu-against', title: 'decide() CPU per decision, detectors on, commit thread: this checkout vs another', mode: args.quick ? 'quick' : 'full', params: { concurrency: C, durability: 'full', against: dir, v8_heap: heapInUse(), plan, ...runParams(run) } }, start),
      figures: armFigures(run),
      derived: entries,
      notes: ['process CPU (user + system, every thread) over each timed run / decisions; both arms in every round, order rotated'],
    };
    return emitResult(result, args, say);
  } finally {
    await fx.this?.close();
    await fx.base?.close();
  }
}

if (import.meta.main) {
  shippedHeap();
  await runDecisionCpuBenchmark(process.argv.slice(2));
}
