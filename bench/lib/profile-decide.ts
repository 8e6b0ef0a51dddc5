/**
 * Where a decision's CPU goes: `decide()` at 128 in flight on the decision benchmark's deployment
 * (every detector on unless `--detectors off`), profiled with the V8 sampling profiler over the
 * steady state only (start-up, policy loading and warm-up left out), then summarised.
 *
 *   node bench/lib/profile-decide.ts [--decisions N] [--detectors on|off] [--out FILE.cpuprofile]
 *
 * Prints the process CPU time per decision over the profiled run (user + system, every thread)
 * and the profile's summary (bench/lib/cpuprofile.ts). The profiler itself costs a few percent.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { loadavg } from 'node:os';
import { decideAllowed } from './decide-allowed.ts';
import { createDecisionFixture } from './decision-fixture.ts';
import { summariseProfile, type Profile } from './cpuprofile.ts';
import { heapInUse, shippedHeap } from './shipped-heap.ts';

const IN_FLIGHT = 128;

function option(argv: readonly string[], name: string, fallback: string): string {
  const i = argv.indexOf(name);
  if (i === -1) return fallback;
  const v = argv[i + 1];
  if (v === undefined || v.startsWith('--')) throw new Error(`${name} needs a value`);
  return v;
}

async function main(argv: readonly string[]): Promise<void> {
  const decisions = Number(option(argv, '--decisions', '20000'));
  const detectors = option(argv, '--detectors', 'on');
  const out = option(argv, '--out', '');
  if (!(Number.isInteger(decisions) && decisions > 0)) throw new Error('--decisions takes a positive integer');
  if (detectors !== 'on' && detectors !== 'off') throw new Error('--detectors takes on or off');
  const fx = await createDecisionFixture({
    durability: 'full',
    // the decision benchmark's "detectors on": the rate ceiling lifted, so detectors run in full and find nothing
    ...(detectors === 'on' ? { config: { behaviour: { enabled: true, detectors: { rate: { max_per_window: 1_000_000 } } } } } : {}),
  });
  try {
    const run = (total: number) => decideAllowed(fx, total, IN_FLIGHT);
    await run(Math.min(5000, decisions));
    const session = new Session();
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
    const cpu0 = process.cpuUsage();
    await run(decisions);
    const cpu = process.cpuUsage(cpu0);
    const { profile } = await session.post('Profiler.stop');
    session.disconnect();
    if (out !== '') writeFileSync(out, JSON.stringify(profile));
    const us = (cpu.user + cpu.system) / decisions;
    const heap = heapInUse();
    process.stdout.write(`decide() x ${decisions}, ${IN_FLIGHT} in flight, detectors ${detectors}, durability full; V8 heap: ${heap.heap} (${heap.flags.join(' ') || 'no flags'}); load ${loadavg().map((l) => l.toFixed(1)).join(' / ')}\n`);
    process.stdout.write(`CPU per decision ${us.toFixed(1)} µs (${Math.round(1e6 / us)} per core-second, profiler included)\n\n`);
    process.stdout.write(summariseProfile(profile as unknown as Profile, 25) + '\n');
  } finally {
    await fx.close();
  }
}

shippedHeap();
await main(process.argv.slice(2));
