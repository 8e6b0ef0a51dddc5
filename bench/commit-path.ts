/**
 * The audit commit path alone, as decide() drives it with the commit thread on: batches of 117
 * decisions (a decision and an action record each, sealed as decide() seals them, and a budget
 * spend) committed through the SQLite store's commitDecision, group-committed on its thread.
 * Process CPU (every thread) per decision, this checkout's store against another checkout's
 * (each side with its own packages, so each seals with its own core), in the same process, in
 * alternating rounds. Without the policy, detectors and provenance around it, a change to the
 * commit path shows above a loaded machine's noise with fewer rounds than the whole decide().
 *
 *   node bench/commit-path.ts --against ../base [--rounds 45] [--durability normal|full] [--json-only] [--out DIR]
 *
 * `normal` (default here) leaves the WAL's fdatasync out: kernel time that is the same on both
 * sides and only adds noise.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { armFigures, checkoutComparison, fmtSpread, interleave, metrics, of, ownCpuUs, quantile, runParams, type Arm, type RoundSample } from './lib/interleave.ts';
import { emitResult, newResult, parseBenchArgs, printer, startInfo, type BenchResult } from './lib/report.ts';
import { REPO_ROOT } from './lib/stats.ts';

const BATCH = 117;
const BATCHES_PER_ROUND = 60;
const BODY = 'Hello Ada, thanks for the report. We reproduced the export failure on our side and a fix is being rolled out today; your next nightly export should complete normally. Kind regards, Support';

function option(argv: readonly string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
}

interface Side {
  /** commits `batches` batches of BATCH decisions, one batch at a time */
  run(batches: number): Promise<void>;
  close(): Promise<void>;
}

type Json = unknown;
interface CoreModule {
  sealJson<T extends Json>(v: T): T;
}
interface Store {
  started(): Promise<void>;
  close(): Promise<void>;
  audit: { commitDecision(entry: unknown): Promise<unknown> };
}
interface SqliteModule {
  openSqliteStore(opts: { path: string; hasher: unknown; commitThread: boolean; durability: 'full' | 'normal' }): Store;
}
interface FixturesModule {
  sha256: unknown;
  seedTask(store: Store, id: string): Promise<{ id: string; agentId: string }>;
}

/** a store of the checkout in `dir`, on a temp file, with the commit thread on */
async function side(dir: string, durability: 'full' | 'normal'): Promise<Side> {
  const load = async <T>(path: string): Promise<T> => (await import(pathToFileURL(join(dir, path)).href)) as T;
  const core = await load<CoreModule>('packages/core/src/index.ts');
  const sqlite = await load<SqliteModule>('packages/store-sqlite/src/index.ts');
  const fixtures = await load<FixturesModule>('packages/store-testkit/src/fixtures.ts');
  const tmp = mkdtempSync(join(tmpdir(), 'mandate-commit-path-'));
  const store = sqlite.openSqliteStore({ path: join(tmp, 'mandate.db'), hasher: fixtures.sha256, commitThread: true, durability });
  await store.started();
  const task = await fixtures.seedTask(store, 'task_commit_path');
  let n = 0;
  // the records decide() writes for an allow, built and sealed the way that checkout's decide() seals them
  const entry = () => {
    n++;
    const common = { ts: 1_796_589_863_610 + n, callId: `call_${n.toString().padStart(28, '0')}`, taskId: task.id, agentId: task.agentId, txn: 'txn_01M96HKCHEdSION6E4qJURjXS_HSuqqA' };
    const args = core.sealJson({ ticket_id: 'T-1042', visibility: 'internal', body: BODY, tags: ['billing', 'export'] });
    const drafts = [
      {
        kind: 'decision',
        ...common,
        data: core.sealJson({
          args,
          args_hash: 'sha256:d0837ce703e5f182b9543c1deaee8b640444165e85cb1ef7f4d8b6753a4f7ac5',
          details: [],
          effect: 'allow',
          errors: [],
          policy_ids: ['helpdesk.permit'],
          policy_version: 'sha256:39fee214583be70d39e2b13f73f7629b1af4c46c730e9a2c5a4c4568128605a8',
          reasons: [],
          resource: 'ticket:T-1042',
          tool: 'helpdesk.draft_reply',
        }),
      },
      { kind: 'action', ...common, data: core.sealJson({ containment: [], effect: 'allow', final: 'allowed', policy_effect: 'allow', reasons: [] }) },
    ];
    return { drafts, budget: { taskId: task.id, tool: 'helpdesk.draft_reply', limits: { calls: 1e12, toolCalls: 1e12 }, exhausted: () => drafts } };
  };
  return {
    async run(batches) {
      for (let b = 0; b < batches; b++) await Promise.all(Array.from({ length: BATCH }, () => store.audit.commitDecision(entry())));
    },
    async close() {
      try {
        await store.close();
      } finally {
        rmSync(tmp, { recursive: true, force: true });
      }
    },
  };
}

export async function runCommitPathBenchmark(argv: readonly string[]): Promise<BenchResult | undefined> {
  const against = option(argv, '--against');
  if (against === undefined) throw new Error('--against DIR: the checkout to compare this one with');
  const rounds = Number(option(argv, '--rounds') ?? 45);
  const durability = option(argv, '--durability') === 'full' ? 'full' : 'normal';
  const valued = ['--against', '--rounds', '--durability'];
  const args = parseBenchArgs(argv.filter((a, i) => !valued.includes(a) && !valued.includes(argv[i - 1] ?? '')));
  const say = printer(args);
  const start = startInfo();
  const dir = resolve(against);
  const sides: Partial<Record<'this' | 'base', Side>> = {};
  try {
    sides.this = await side(REPO_ROOT, durability);
    sides.base = await side(dir, durability);
    const arms: Arm[] = (['this', 'base'] as const).map((k) => {
      const s = sides[k] as Side;
      return {
        name: k,
        label: `audit commit path, ${BATCH} decisions a batch, commit thread, durability ${durability}: ${k === 'this' ? 'this checkout' : dir}`,
        concurrency: BATCH,
        warmup: () => s.run(20),
        measure: async (): Promise<RoundSample> => {
          const c0 = ownCpuUs();
          const t0 = performance.now();
          await s.run(BATCHES_PER_ROUND);
          return { ops: BATCHES_PER_ROUND * BATCH, elapsedMs: performance.now() - t0, cpuUs: ownCpuUs() - c0 };
        },
      };
    });
    const run = await interleave(arms, { rounds, say });
    const cpu = (k: string) => of(run, k, metrics.cpuUsPerOp);
    const { ratio: r, entries } = checkoutComparison(run);
    const q = (f: number) => quantile(r, f);
    say(`CPU µs per decision on the commit path (durability ${durability}), median [min–max] of ${rounds} rounds:`);
    say(`  this checkout: ${fmtSpread(cpu('this'), 1)} µs`);
    say(`  ${dir}: ${fmtSpread(cpu('base'), 1)} µs`);
    say(`  this / base: ${fmtSpread(r)}x, quartiles ${q(0.25).toFixed(2)} / ${q(0.5).toFixed(2)} / ${q(0.75).toFixed(2)}`);
    const result: BenchResult = {
      ...newResult({ name: 'commit-path', title: 'audit commit path CPU per decision: this checkout vs another', mode: 'full', params: { batch: BATCH, batchesPerRound: BATCHES_PER_ROUND, durability, against: dir, ...runParams(run) } }, start),
      figures: armFigures(run),
      derived: entries,
      notes: ['process CPU (user + system, every thread) over each round / decisions; both sides in every round, order alternating'],
    };
    return emitResult(result, args, say);
  } finally {
    await sides.this?.close();
    await sides.base?.close();
  }
}

if (import.meta.main) {
  await runCommitPathBenchmark(process.argv.slice(2));
}
