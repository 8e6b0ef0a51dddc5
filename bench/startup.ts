/**
 * Start-up: how long `mandate --help` takes to print, and `mandate serve` (fresh data folder,
 * the example policies, the dev issuer) to answer 200 on /readyz, from spawning the process;
 * median of several runs each, with Node's compile cache warm (the usual case: bin/mandate.js
 * turns it on and the first run fills it) and switched off (NODE_DISABLE_COMPILE_CACHE=1: every
 * module type-stripped and compiled again, as on a first run). The floor is `node -e 0`.
 *
 *   node bench/startup.ts [--quick] [--json-only] [--out DIR]
 *
 * Target: serve ready ≤ 1.5 s (p50, cache warm) on an idle machine; `--help` ≤ 150 ms is reported
 * beside it. On a busy machine both are noisy: the load average is printed with the result.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, waitReady } from '../packages/server/test/serve-process.ts';
import { type BenchResult, type Figure, emitResult, figure, newResult, parseBenchArgs, startInfo, printer } from './lib/report.ts';
import { REPO_ROOT, settle } from './lib/stats.ts';

const HELP_TARGET_MS = 150;
const READY_TARGET_MS = 1500;

type Env = Record<string, string | undefined>;

function timeRun(args: readonly string[], env: Env): number {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${args.join(' ')} exited with ${String(r.status)}: ${r.stderr.toString()}`);
  return ms;
}

/** spawn → GET /readyz 200, on a fresh data folder; then stops the server and waits for it to exit */
async function timeReady(env: Env): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'mandate-bench-startup-'));
  let out = '';
  const t0 = performance.now();
  const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--data-dir', dir, '--policies', join(REPO_ROOT, 'examples', 'policies'), '--dev-issuer'], {
    env: { ...env, MANDATE_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  try {
    await waitReady(child, () => out, 120_000, 5);
    return performance.now() - t0;
  } finally {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  }
}

async function measure(label: string, runs: number, one: () => number | Promise<number>): Promise<Figure> {
  await one(); // warm-up: fills the compile cache and the page cache
  const samples: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < runs; i++) {
    await settle();
    samples.push(await one());
  }
  return figure(label, samples, { concurrency: 1, elapsedMs: performance.now() - t0, opsBasis: 'inverse-mean' });
}

export async function runStartupBenchmark(argv: readonly string[]): Promise<BenchResult> {
  const args = parseBenchArgs(argv);
  const runs = args.quick ? 3 : 7;
  const say = printer(args);
  const start = startInfo();
  say(`startup benchmark: node -e 0, mandate --help, mandate serve to ready; ${runs} runs each after a warm-up, median; ${args.quick ? 'quick' : 'full'} run`);
  const warm: Env = { ...process.env, NODE_DISABLE_COMPILE_CACHE: undefined };
  const cold: Env = { ...process.env, NODE_DISABLE_COMPILE_CACHE: '1' };

  const figures: Record<string, Figure> = {
    node: await measure('node -e 0 (floor)', runs, () => timeRun(['-e', '0'], warm)),
    help: await measure('mandate --help', runs, () => timeRun([CLI, '--help'], warm)),
    help_no_cache: await measure('mandate --help, no compile cache', runs, () => timeRun([CLI, '--help'], cold)),
    serve: await measure('mandate serve → /readyz 200', runs, () => timeReady(warm)),
    serve_no_cache: await measure('mandate serve → /readyz 200, no compile cache', runs, () => timeReady(cold)),
  };
  const help = figures['help']?.p50 ?? Number.NaN;
  const ready = figures['serve']?.p50 ?? Number.NaN;
  const result: BenchResult = {
    ...newResult({ name: 'startup', title: 'Start-up: mandate --help and mandate serve to ready', mode: args.quick ? 'quick' : 'full', params: { runs, help_target_ms: HELP_TARGET_MS, ready_target_ms: READY_TARGET_MS } }, start),
    figures,
    derived: {
      'help p50 ms': help,
      'help p50 ms above node -e 0': help - (figures['node']?.p50 ?? 0),
      [`help within ${HELP_TARGET_MS} ms (1 = yes)`]: help <= HELP_TARGET_MS ? 1 : 0,
      'serve ready p50 ms': ready,
      'serve ready p50 ms, no compile cache': figures['serve_no_cache']?.p50 ?? Number.NaN,
    },
    target: { description: `mandate serve ready within ${READY_TARGET_MS} ms (p50, compile cache warm, idle machine)`, metric: 'serve ready p50 ms', required: READY_TARGET_MS, actual: ready, met: ready <= READY_TARGET_MS, comparison: '<=' },
    notes: ['wall time from spawning the process; ops/s is 1 / mean and means nothing here'],
  };
  return emitResult(result, args, say);
}

if (import.meta.main) {
  await runStartupBenchmark(process.argv.slice(2));
}
