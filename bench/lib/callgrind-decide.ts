/**
 * Instructions per decision, for A/B runs on a busy machine (instruction counts do not depend on
 * the load the way CPU times do). Run under callgrind with instrumentation off at start; this
 * switches it on after the warm-up and off after the measured decisions:
 *
 *   valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/tmp/cg.%p \
 *     node --single-threaded bench/lib/callgrind-decide.ts [CHECKOUT] [DECISIONS]
 *
 * CHECKOUT (default: this one) is the checkout whose decision fixture and packages are measured,
 * so two checkouts are compared with the same driver. The deployment is the decision
 * benchmark's with every detector on, the audit commit on the event loop (one thread to count)
 * and no sampled cedar-wasm cross-check (random, and paced by the clock, not by decisions).
 * valgrind prints the instructions collected ("Collected"): divide by DECISIONS.
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { decideAllowed } from './decide-allowed.ts';
import type { createDecisionFixture } from './decision-fixture.ts';

const dir = resolve(process.argv[2] ?? '.');
const decisions = Number(process.argv[3] ?? 1000);
if (!(Number.isInteger(decisions) && decisions > 0)) throw new Error('DECISIONS takes a positive integer');
const { createDecisionFixture: create } = (await import(pathToFileURL(`${dir}/bench/lib/decision-fixture.ts`).href)) as { createDecisionFixture: typeof createDecisionFixture };
const fx = await create({
  durability: 'full',
  config: {
    behaviour: { enabled: true, detectors: { rate: { max_per_window: 1_000_000 } } },
    audit: { durability: 'full', commit_thread: false },
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

try {
  await run(6000);
  await instrumentation(true);
  await run(decisions);
  await instrumentation(false);
} finally {
  await fx.close();
}
