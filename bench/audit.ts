/**
 * Audit append throughput with the durability the product ships: `store.audit.append` of
 * 2-record entries on openSqliteStore (node:sqlite, WAL, synchronous=FULL, group commit, hash
 * chain), from 1 and 32 concurrent appenders, against the disk's floor in the same run: raw
 * node:sqlite INSERTs of the same row shape in one big transaction, and one fsync'd commit.
 *
 *   node bench/audit.ts [--quick] [--json-only] [--out DIR]
 *
 * No target: the ratios are the result.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import type { AuditDraft } from '@mandate/core';
import { sha256Hasher } from '@mandate/server';
import { openSqliteStore } from '@mandate/store-sqlite';
import { type BenchResult, type Figure, emitResult, figure, newResult, parseBenchArgs, startInfo } from './lib/report.ts';
import { settle, timeConcurrent, timeSequential, timeSync, type LoopOptions } from './lib/stats.ts';

const RECORDS_PER_APPEND = 2;
const CONCURRENCY = 32;

interface Plan {
  readonly c1: LoopOptions;
  readonly c32: LoopOptions;
  /** rows per raw transaction */
  readonly rawRows: number;
  readonly raw: LoopOptions;
  readonly commit: LoopOptions;
}

const FULL: Plan = {
  c1: { warmup: 20, iterations: 2000, maxMs: 5000 },
  c32: { warmup: 200, iterations: 200_000, maxMs: 6000 },
  rawRows: 20_000,
  raw: { warmup: 1, iterations: 10, maxMs: 6000, minIterations: 3 },
  commit: { warmup: 20, iterations: 400, maxMs: 2000 },
};

/** a smoke run: proves the benchmark works; its numbers are rough */
const QUICK: Plan = {
  c1: { warmup: 5, iterations: 200, maxMs: 400, minIterations: 20 },
  c32: { warmup: 64, iterations: 20_000, maxMs: 600, minIterations: 64 },
  rawRows: 5000,
  raw: { warmup: 1, iterations: 3, maxMs: 400, minIterations: 2 },
  commit: { warmup: 5, iterations: 100, maxMs: 300, minIterations: 20 },
};

/** a decision's two records, as the engine writes them (a call and its outcome) */
function entry(n: number): AuditDraft[] {
  const ts = Date.now();
  const callId = `call_bench_${String(n).padStart(22, '0')}`;
  const common = { ts, callId, taskId: 'task_bench_00000000000000000000', agentId: 'spiffe://bench.mandate.local/agents/audit', txn: 'txn_bench_000000000000000000000' };
  return [
    { kind: 'decision', ...common, data: { tool: 'helpdesk.search_tickets', effect: 'allow', reasons: [], policy_ids: ['org.call.within-task-environment'], args: { query: 'refund' } } },
    { kind: 'decision', ...common, data: { tool: 'helpdesk.search_tickets', effect: 'allow', outcome: 'ok', duration_ms: 12 } },
  ] as AuditDraft[];
}

function log(jsonOnly: boolean, msg: string): void {
  (jsonOnly ? process.stderr : process.stdout).write(msg + '\n');
}

export async function runAuditBenchmark(argv: readonly string[]): Promise<BenchResult> {
  const args = parseBenchArgs(argv);
  const plan = args.quick ? QUICK : FULL;
  const say = (m: string) => log(args.jsonOnly, m);
  const start = startInfo();
  const dir = mkdtempSync(join(tmpdir(), 'mandate-bench-audit-'));
  const store = openSqliteStore({ path: join(dir, 'mandate.db'), hasher: sha256Hasher, durability: 'full' });
  try {
    say(`audit benchmark: store.audit.append of ${RECORDS_PER_APPEND}-record entries, sqlite synchronous=FULL + group commit, c1 and c${CONCURRENCY}; floor: raw INSERTs in one transaction, one fsync'd commit; ${args.quick ? 'quick' : 'full'} run`);
    let n = 0;
    const append = async () => {
      const recs = await store.audit.append(entry(n++));
      if (recs.length !== RECORDS_PER_APPEND) throw new Error('append returned the wrong number of records');
    };
    await settle();
    const c1 = await timeSequential(append, plan.c1);
    await settle();
    const c32 = await timeConcurrent(append, CONCURRENCY, plan.c32);
    const head = await store.audit.head();
    if (!head || head.seq < n * RECORDS_PER_APPEND) throw new Error(`audit head ${String(head?.seq)} behind ${n * RECORDS_PER_APPEND} appended records`);

    // --- the floor: raw node:sqlite on the same disk, same row shape, no hashing
    const disk = new DatabaseSync(join(dir, 'raw.db'));
    disk.exec('PRAGMA journal_mode = WAL');
    disk.exec('PRAGMA synchronous = FULL');
    disk.exec(
      'CREATE TABLE audit_log (seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL, kind TEXT NOT NULL, call_id TEXT, task_id TEXT, agent_id TEXT, txn TEXT, data TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL) STRICT',
    );
    disk.exec('CREATE INDEX audit_log_by_task ON audit_log (task_id, seq)');
    disk.exec('CREATE INDEX audit_log_by_call ON audit_log (call_id, seq)');
    const insert = disk.prepare('INSERT INTO audit_log (ts, kind, call_id, task_id, agent_id, txn, data, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
    const hash = '0'.repeat(64);
    let rawN = 0;
    const rows = (() => {
      const out: { d: AuditDraft; data: string }[] = [];
      for (let i = 0; i < plan.rawRows / RECORDS_PER_APPEND; i++) for (const d of entry(i)) out.push({ d, data: JSON.stringify(d.data) });
      return out;
    })();
    await settle();
    const raw = timeSync(() => {
      disk.exec('BEGIN IMMEDIATE');
      for (const { d, data } of rows) insert.run(d.ts, d.kind, `${d.callId ?? ''}-${rawN++}`, d.taskId ?? null, d.agentId ?? null, d.txn ?? null, data, hash, hash);
      disk.exec('COMMIT');
    }, plan.raw);
    disk.exec('CREATE TABLE probe (k INTEGER PRIMARY KEY, n INTEGER NOT NULL)');
    const bump = disk.prepare('INSERT INTO probe (k, n) VALUES (1, 1) ON CONFLICT (k) DO UPDATE SET n = n + 1');
    const commit = timeSync(() => {
      disk.exec('BEGIN IMMEDIATE');
      bump.run();
      disk.exec('COMMIT');
    }, plan.commit);
    disk.close();

    const figures: Record<string, Figure> = {
      append_c1: figure(`audit.append (${RECORDS_PER_APPEND} records)`, c1.samples, { concurrency: 1, elapsedMs: c1.elapsedMs, opsBasis: 'wall' }),
      append_c32: figure(`audit.append (${RECORDS_PER_APPEND} records)`, c32.samples, { concurrency: CONCURRENCY, elapsedMs: c32.elapsedMs, opsBasis: 'wall' }),
      raw_tx: figure(`raw INSERT x${plan.rawRows}, one tx (floor)`, raw.samples, { concurrency: 1, elapsedMs: raw.elapsedMs, opsBasis: 'wall' }),
      sqlite_commit: figure('sqlite commit, sync=FULL (disk)', commit.samples, { concurrency: 1, elapsedMs: commit.elapsedMs, opsBasis: 'inverse-mean' }),
    };
    const recsPerSec = (f: Figure, perOp: number) => f.opsPerSec * perOp;
    const c1Recs = recsPerSec(figures['append_c1'] as Figure, RECORDS_PER_APPEND);
    const c32Recs = recsPerSec(figures['append_c32'] as Figure, RECORDS_PER_APPEND);
    const rawRecs = recsPerSec(figures['raw_tx'] as Figure, plan.rawRows);
    const commitsPerSec = (figures['sqlite_commit'] as Figure).opsPerSec;

    const result: BenchResult = {
      ...newResult(
        {
          name: 'audit',
          title: 'Audit append throughput: store.audit.append (sync=FULL, group commit) vs raw SQLite',
          mode: args.quick ? 'quick' : 'full',
          params: {
            store: 'sqlite (node:sqlite, WAL)',
            durability: 'full',
            group_commit: true,
            recordsPerAppend: RECORDS_PER_APPEND,
            concurrency: [1, CONCURRENCY],
            rawRowsPerTransaction: plan.rawRows,
            appendedRecords: head.seq,
            plan,
            loadavg_end: loadavg().map((l) => Math.round(l * 100) / 100),
          },
        },
        start,
      ),
      figures,
      derived: {
        'records/s append c1': c1Recs,
        [`records/s append c${CONCURRENCY}`]: c32Recs,
        'records/s raw INSERT, one tx (floor)': rawRecs,
        'durable commits/s (disk floor, c1)': commitsPerSec,
        [`ratio append c${CONCURRENCY} / raw INSERT`]: c32Recs / rawRecs,
        'ratio append c1 / durable commits (x records)': c1Recs / (commitsPerSec * RECORDS_PER_APPEND),
        [`group-commit gain c${CONCURRENCY} / c1`]: c32Recs / c1Recs,
      },
      notes: [
        'append = the product path: hash chain (sha256), JSON, one group-committed transaction per turn, synchronous=FULL (fsync per commit), acknowledged only once durable',
        'raw INSERT = the same table, indexes and row shape, precomputed JSON, no hashing, all rows in one transaction: the fastest this disk and SQLite can take records',
        'sqlite commit = one single-row transaction with synchronous=FULL: at c1 each append waits for at least one',
      ],
    };
    return emitResult(result, args, say);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  await runAuditBenchmark(process.argv.slice(2));
}
