/**
 * Instructions per decision, for A/B runs on a busy machine (instruction counts do not depend on
 * the load the way CPU times do). Run under callgrind with instrumentation off at start; this
 * switches it on after the warm-up and off after the measured decisions:
 *
 *   valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/tmp/cg.%p \
 *     node_modules/node/bin/node --single-threaded --expose-gc bench/lib/callgrind-decide.ts [CHECKOUT] [DECISIONS]
 *
 * With TMPDIR on a tmpfs (/dev/shm) the WAL syncs return at once, so how many decisions each
 * group commit gathers no longer depends on the disk. Outside the collector and the compiler the
 * same checkout still reads 512k-557k instructions a decision from one run to the next (40,000
 * decisions of warm-up): run several side-by-side pairs, alternating, and compare medians.
 *
 * CHECKOUT (default: this one) is the checkout whose decision fixture and packages are measured,
 * so two checkouts are compared with the same driver. The deployment is the decision
 * benchmark's with every detector on, the audit commit on the event loop (one thread to count)
 * and no sampled cedar-wasm cross-check (random, and paced by the clock, not by decisions); for
 * the same reason the clock-paced background work (checkpoints by time, the audit integrity check,
 * the expiry sweep) is pushed out to a day: under valgrind a run is ~50× slower, so how often it
 * would fire inside the window depends on the machine's load. Checkpoints every 1,000 records stay.
 * valgrind prints the instructions collected ("Collected"): divide by DECISIONS.
 *
 * A full collection inside the window costs 100-250k instructions, enough to decide an A/B pair
 * by itself: the heap is collected in full just before the window opens (hence --expose-gc, given
 * on the command line: re-running itself with it, as bench/lib/gc.ts does, would leave valgrind
 * behind), and the collections V8 reported inside it are printed. That count is short (runs whose
 * output holds mark-compact functions have printed 0 full ones): the collector's own functions in
 * callgrind_annotate's list are the surer check. The node binary is named directly: `npx` would put valgrind on npm.
 */
import { spawn } from 'node:child_process';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { decideAllowed } from './decide-allowed.ts';
import type { createDecisionFixture } from './decision-fixture.ts';

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with --expose-gc (see the header)');
const dir = resolve(process.argv[2] ?? '.');
const decisions = Number(process.argv[3] ?? 1000);
/**
 * decisions before the window (env WARMUP): under valgrind 6,000 left hot functions running
 * baseline code in the window (~630 generic property loads a decision, ~50k instructions more);
 * 20,000 brings a decision within 1 % of what 40,000 measure
 */
const warmup = Number(process.env['WARMUP'] ?? 20_000);
if (!(Number.isInteger(warmup) && warmup >= 0)) throw new Error('WARMUP takes a non-negative integer');
if (!(Number.isInteger(decisions) && decisions > 0)) throw new Error('DECISIONS takes a positive integer');
const { createDecisionFixture: create } = (await import(pathToFileURL(`${dir}/bench/lib/decision-fixture.ts`).href)) as { createDecisionFixture: typeof createDecisionFixture };
const fx = await create({
  durability: 'full',
  config: {
    behaviour: { enabled: true, detectors: { rate: { max_per_window: 1_000_000 } } },
    audit: { durability: 'full', commit_thread: false, checkpoint_interval: '24h', integrity_check_interval: '24h' },
    tokens: { expiry_sweep_interval: '24h' },
    policies: { cross_check_fraction: 0 },
  },
});

// this checkout's driver over the measured checkout's fixture
const run = (total: number) => decideAllowed(fx, total, 128);

/** callgrind_control -i on|off: the loop stays awake (a slow timer) so valgrind hears it */
function instrumentation(on: boolean): Promise<void> {
  return new Promise((done, fail) => {
    const awake = setInterval(() => {}, 50);
    const c = spawn('callgrind_control', ['-i', on ? 'on' : 'off', String(process.pid)], { stdio: 'ignore' });
    c.on('error', (e) => {
      clearInterval(awake);
      fail(e);
    });
    c.on('exit', () => {
      clearInterval(awake);
      done();
    });
  });
}

/** the collections V8 ran while `counting` (full: mark-compact; other: scavenges, incremental marking steps) */
const collections = { full: 0, other: 0 };
let counting = false;
const observer = new PerformanceObserver((list) => {
  if (!counting) return;
  for (const e of list.getEntries()) {
    const kind = (e as { detail?: { kind?: number } }).detail?.kind;
    if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) collections.full++;
    else collections.other++;
  }
});
observer.observe({ entryTypes: ['gc'] });

try {
  await run(warmup);
  gc();
  gc();
  await instrumentation(true);
  counting = true;
  await run(decisions);
  await instrumentation(false);
  // the observer hears of the last collections on a later turn
  await new Promise((r) => setTimeout(r, 100));
  counting = false;
  console.error(`collections in the window: ${collections.full} full, ${collections.other} other`);
} finally {
  observer.disconnect();
  await fx.close();
}
