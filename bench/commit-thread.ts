/**
 * The SQLite audit commit on its commit thread against the same commit on the event loop, and
 * against the disk's own commit, interleaved in one run (≥ 3 rounds, order rotated):
 *
 * - one commit at a time (c1): `audit.commitDecision` of a decision's 2 records with a budget,
 *   durability full, as the engine makes it; beside it, on the same disk, one single-row SQLite
 *   commit at synchronous=FULL (SQLite in Node syncs with fsync, file metadata included) and one
 *   4 KiB overwrite + fdatasync (what the store's own WAL sync does: the floor for a durable
 *   commit here);
 * - 32 at a time (c32): throughput, and the event loop's delay while they run (what every other
 *   call on the node waits for);
 * - a control-plane write on the event loop's connection beside 32 commits in flight: how long
 *   each holds the loop (on the commit thread's store it may meet a batch's write lock).
 *
 *   node bench/commit-thread.ts [--quick] [--json-only] [--out DIR]
 *
 * No target: the differences and ratios are the result (one call at a time, the thread costs a
 * hand-off; under load, the loop stays free).
 */
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { DatabaseSync } from 'node:sqlite';
import type { AuditDraft, DecisionCommit } from '@mandate/core';
import { sha256Hasher } from '@mandate/server';
import { openSqliteStore, type SqliteStore } from '@mandate/store-sqlite';
import { type BenchResult, type Figure, emitResult, figure, newResult, parseBenchArgs, startInfo } from './lib/report.ts';
import { settle, summarize, timeConcurrent, timeSequential, timeSync, type LoopOptions } from './lib/stats.ts';

interface Plan {
  readonly rounds: number;
  readonly c1: LoopOptions;
  readonly c32: LoopOptions;
  readonly disk: LoopOptions;
}
const FULL: Plan = { rounds: 3, c1: { warmup: 20, iterations: 1000, maxMs: 3000 }, c32: { warmup: 200, iterations: 20_000, maxMs: 3000 }, disk: { warmup: 20, iterations: 1000, maxMs: 3000 } };
const QUICK: Plan = { rounds: 3, c1: { warmup: 5, iterations: 100, maxMs: 300, minIterations: 20 }, c32: { warmup: 64, iterations: 2000, maxMs: 300, minIterations: 64 }, disk: { warmup: 5, iterations: 100, maxMs: 300, minIterations: 20 } };
const C = 32;

/** a decision as the engine commits it: decision and action records, and the budget it spends */
function decision(n: number): DecisionCommit {
  const ts = Date.now();
  const common = { ts, callId: `call_bench_${n}`, taskId: 'task_bench', agentId: 'spiffe://bench.mandate.local/agents/commit', txn: 'txn_bench' };
  const drafts: AuditDraft[] = [
    { kind: 'decision', ...common, data: { tool: 'helpdesk.search_tickets', effect: 'allow', reasons: [], policy_ids: ['org.call.within-task-environment'], args: { query: 'refund' } } },
    { kind: 'action', ...common, data: { final: 'forwarded', effect: 'allow' } },
  ];
  return { drafts, budget: { taskId: 'task_bench', tool: 'helpdesk.search_tickets', limits: {}, exhausted: () => drafts } };
}

/**
 * Runs `load` and, beside it, a control-plane write on the store's event-loop connection every
 * ~2 ms; returns how long each write held the event loop (its synchronous part, ms).
 */
async function writesBeside(store: SqliteStore, load: () => Promise<unknown>): Promise<number[]> {
  const held: number[] = [];
  let running = true;
  const writer = (async () => {
    for (let i = 0; running; i++) {
      const t0 = performance.now();
      const written = store.controls.setControl('bench.control', { i }, Date.now());
      held.push(performance.now() - t0);
      await written;
      await new Promise((r) => setTimeout(r, 2));
    }
  })();
  try {
    await load();
  } finally {
    running = false;
    await writer;
  }
  return held;
}

export async function runCommitThreadBenchmark(argv: readonly string[]): Promise<BenchResult> {
  const args = parseBenchArgs(argv);
  const plan = args.quick ? QUICK : FULL;
  const say = (m: string) => (args.jsonOnly ? process.stderr : process.stdout).write(m + '\n');
  const start = startInfo();
  const dir = mkdtempSync(join(tmpdir(), 'mandate-bench-commit-'));
  const stores: Record<'loop' | 'thread', SqliteStore> = {
    loop: openSqliteStore({ path: join(dir, 'loop.db'), hasher: sha256Hasher, durability: 'full', backgroundCheckpointMs: 250 }),
    thread: openSqliteStore({ path: join(dir, 'thread.db'), hasher: sha256Hasher, durability: 'full', backgroundCheckpointMs: 250, commitThread: true }),
  };
  const disk = new DatabaseSync(join(dir, 'disk.db'));
  const raw = openSync(join(dir, 'raw.bin'), 'w');
  const page = Buffer.alloc(4096, 7);
  let rawAt = 0;
  try {
    await stores.thread.started();
    say(`commit-thread benchmark: ${plan.rounds} interleaved rounds, ${args.quick ? 'quick' : 'full'} run; load ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
    disk.exec('PRAGMA journal_mode = WAL');
    disk.exec('PRAGMA synchronous = FULL');
    disk.exec('CREATE TABLE probe (k INTEGER PRIMARY KEY, n INTEGER NOT NULL)');
    const bump = disk.prepare('INSERT INTO probe (k, n) VALUES (1, 1) ON CONFLICT (k) DO UPDATE SET n = n + 1');
    let n = 0;
    const commit = (s: SqliteStore) => async () => {
      const r = await s.audit.commitDecision(decision(n++));
      if (r.records.length !== 2 || r.budget?.ok !== true) throw new Error('the commit did not commit');
    };
    const samples: Record<string, number[][]> = {};
    const delays: Record<string, number[]> = {};
    const rates: Record<string, number[]> = {};
    const variants = ['disk', 'fdatasync', 'loop', 'thread'] as const;
    for (let r = 0; r < plan.rounds; r++) {
      // rotate the order, so neither side always runs first in a round
      const order = variants.map((_, i) => variants[(i + r) % variants.length] as (typeof variants)[number]);
      for (const v of order) {
        await settle();
        if (v === 'disk') {
          const res = timeSync(() => {
            disk.exec('BEGIN IMMEDIATE');
            bump.run();
            disk.exec('COMMIT');
          }, plan.disk);
          (samples['disk_c1'] ??= []).push(res.samples);
          continue;
        }
        if (v === 'fdatasync') {
          const res = timeSync(() => {
            // overwrite within 64 KiB, as a WAL reused from its start after a checkpoint is
            writeSync(raw, page, 0, page.length, (rawAt++ % 16) * page.length);
            fdatasyncSync(raw);
          }, plan.disk);
          (samples['fdatasync_c1'] ??= []).push(res.samples);
          continue;
        }
        const c1 = await timeSequential(commit(stores[v]), plan.c1);
        (samples[`${v}_c1`] ??= []).push(c1.samples);
        await settle();
        const h = monitorEventLoopDelay({ resolution: 1 });
        h.enable();
        const c32 = await timeConcurrent(commit(stores[v]), C, plan.c32);
        h.disable();
        (samples[`${v}_c${C}`] ??= []).push(c32.samples);
        (delays[v] ??= []).push(h.percentile(99) / 1e6);
        (rates[v] ??= []).push((c32.samples.length / c32.elapsedMs) * 1000);
        await settle();
        (samples[`${v}_write`] ??= []).push(await writesBeside(stores[v], () => timeConcurrent(commit(stores[v]), C, plan.c32)));
      }
      say(`  round ${r + 1}/${plan.rounds} done; load ${loadavg()[0]?.toFixed(2)}`);
    }
    const labels: Record<string, string> = {
      disk_c1: 'disk: one single-row SQLite commit, synchronous=FULL (fsync)',
      fdatasync_c1: 'disk: 4 KiB overwrite + fdatasync (the WAL sync\'s floor)',
      loop_c1: 'commitDecision on the event loop (audit.commit_thread: false), one at a time',
      thread_c1: 'commitDecision on the commit thread (default), one at a time',
      [`loop_c${C}`]: `commitDecision on the event loop, ${C} in flight`,
      [`thread_c${C}`]: `commitDecision on the commit thread, ${C} in flight`,
      loop_write: `a control-plane write (setControl) while ${C} commits are in flight on the event loop: the time it holds the loop`,
      thread_write: `a control-plane write (setControl) while ${C} commits are in flight on the commit thread: the time it holds the loop`,
    };
    const r3 = (x: number) => Math.round(x * 1000) / 1000;
    const derived: Record<string, number> = {};
    const figures: Record<string, Figure> = {};
    for (const [k, rounds] of Object.entries(samples)) {
      const all = rounds.flat();
      figures[k] = figure(labels[k] ?? k, all, { concurrency: k.endsWith(`c${C}`) ? C : 1, elapsedMs: all.reduce((a, b) => a + b, 0), opsBasis: 'wall' });
      if (k.endsWith('_write')) derived[`${k.replace('_write', '')}: control-plane writes holding the loop >= 1 ms, per 1000`] = r3((1000 * all.filter((ms) => ms >= 1).length) / Math.max(1, all.length));
    }
    const med = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
    const roundP = (k: string, p: 'p50' | 'p99') => (samples[k] ?? []).map((s) => summarize(s)[p]);
    const diff = (a: string, b: string, p: 'p50' | 'p99') => roundP(a, p).map((x, i) => x - (roundP(b, p)[i] ?? NaN));
    /** the median over rounds, and the range */
    const spread = (key: string, xs: readonly number[]) => {
      derived[`${key} median of rounds`] = r3(med(xs));
      derived[`${key} min round`] = r3(Math.min(...xs));
      derived[`${key} max round`] = r3(Math.max(...xs));
    };
    spread('c1 p50 ms thread - loop', diff('thread_c1', 'loop_c1', 'p50'));
    spread('c1 p99 ms thread - loop', diff('thread_c1', 'loop_c1', 'p99'));
    spread('c1 p50 ms thread - disk commit', diff('thread_c1', 'disk_c1', 'p50'));
    spread('c1 p99 ms thread - disk commit p99', diff('thread_c1', 'disk_c1', 'p99'));
    spread('c1 p99 ms loop - disk commit p99', diff('loop_c1', 'disk_c1', 'p99'));
    spread('c1 p50 ms thread - fdatasync', diff('thread_c1', 'fdatasync_c1', 'p50'));
    spread('c1 p99 ms thread - fdatasync p99', diff('thread_c1', 'fdatasync_c1', 'p99'));
    spread(`c${C} commits/s thread / loop`, (rates['thread'] ?? []).map((x, i) => x / (rates['loop']?.[i] ?? NaN)));
    spread(`c${C} event loop delay p99 ms, loop`, delays['loop'] ?? []);
    spread(`c${C} event loop delay p99 ms, thread`, delays['thread'] ?? []);
    spread(`c${C} control-plane write holding the loop p99 ms, thread - loop`, diff('thread_write', 'loop_write', 'p99'));
    const result: BenchResult = {
      ...newResult(
        {
          name: 'commit-thread',
          title: 'SQLite audit commit: on the commit thread vs on the event loop vs the disk\'s own commit',
          mode: args.quick ? 'quick' : 'full',
          params: { store: 'sqlite (node:sqlite, WAL), durability full', entry: '2 records + budget spend', concurrency: [1, C], plan, loadavg_end: loadavg().map((l) => Math.round(l * 100) / 100) },
        },
        start,
      ),
      figures,
      derived,
      notes: [
        'each round times the disk commit, the event-loop store and the thread store in turn, order rotated; differences are taken within a round, the median and range over rounds are given',
        'event loop delay: p99 of perf_hooks.monitorEventLoopDelay while 32 commits are in flight: how long any other work on the node (other calls, HTTP parsing, upstream answers) waits',
        'a commit resolves only once durable on both sides (thread: fdatasync of the WAL after COMMIT; loop: SQLite FULL inside COMMIT or a WAL sync on the thread pool)',
        `control-plane write: a phase of its own after each c${C} phase, the same ${C} commits in flight and beside them one setControl every ~2 ms on the event loop's connection, each timed from its call to its return (the synchronous part: the loop is held for it; its sync is awaited after); on the commit thread's store the write may meet a batch's transaction and waits for it to end`,
      ],
    };
    return emitResult(result, args, say);
  } finally {
    disk.close();
    closeSync(raw);
    await stores.loop.close();
    await stores.thread.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  await runCommitThreadBenchmark(process.argv.slice(2));
}
