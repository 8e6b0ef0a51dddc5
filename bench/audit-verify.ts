/**
 * `mandate audit verify` over large logs: records per second and peak memory, at two log sizes
 * (100k and 1M records by default), each verified by the real CLI in a child process. The logs
 * are written the way the server writes them: records linked by the core's `linkRecords` (SHA-256
 * chain, canonical JSON), a signed checkpoint every 1000 records (the default
 * `audit.checkpoint_every`) in the store and in the data folder's copy, and the key file beside
 * the database. Each run is checked: the verdict must be `intact` over every record.
 *
 *   node bench/audit-verify.ts [--quick] [--json-only] [--out DIR]
 *
 * Reported per size: wall and CPU time (user + system, from /usr/bin/time), records/s, peak RSS;
 * the marginal rate between the two sizes (start-up excluded) and the peak-RSS ratio (flat: ~1).
 * The target is that ratio: peak RSS over 1M records at most 1.15 times that over 100k (most of
 * either is the process itself, ~100 MB: 1.15 allows ~15 MB that grows with the log); the rate
 * (>= 200k records/s) is checked beside it.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { exportJWK, generateKeyPair } from 'jose';
import { canonicalJson, linkRecords, signCheckpoint, type AuditDraft, type JsonObject } from '@mandate/core';
import { AUDIT_KEY_FILE, CHECKPOINT_FILE, sha256Hasher } from '@mandate/server';
import { openSqliteStore } from '@mandate/store-sqlite';
import { CLI } from '../packages/server/test/serve-process.ts';
import { type BenchResult, emitResult, newResult, parseBenchArgs, startInfo, printer } from './lib/report.ts';

const CHECKPOINT_EVERY = 1000;
const BATCH = 10_000;
/** peak RSS of the largest log over that of the smallest, at most */
const RSS_RATIO_MAX = 1.15;
const RATE_MIN = 200_000;

interface Plan {
  readonly sizes: readonly number[];
  readonly rounds: number;
}
const FULL: Plan = { sizes: [100_000, 1_000_000], rounds: 3 };
const QUICK: Plan = { sizes: [2_000, 20_000], rounds: 1 };

/** a decision's records as the engine writes them: the decision, then the final action */
function drafts(i: number): AuditDraft[] {
  const ts = 1_780_000_000_000 + i;
  const common = { ts, callId: `call_${String(i).padStart(24, '0')}`, taskId: `task_${String(i % 10_000).padStart(24, '0')}`, agentId: 'spiffe://bench.mandate.local/agents/verify' };
  const denied = i % 4 === 0;
  return [
    {
      kind: 'decision',
      ...common,
      data: { tool: denied ? 'fs.read_file' : 'helpdesk.search_tickets', effect: denied ? 'deny' : 'allow', reasons: denied ? ['ARG_CONSTRAINT_FAILED'] : [], policy_ids: ['org.call.within-task-environment'], args: denied ? { path: `/etc/shadow-${i}` } : { query: `q${i}` }, policy_version: 'sha256:4f1c', duration_us: 42 },
    },
    { kind: 'action', ...common, data: { action: denied ? 'blocked' : 'forwarded', effect: denied ? 'deny' : 'allow' } },
  ];
}

/** a data folder holding an audit log of `n` records, checkpoints and the key file */
export async function writeLog(dir: string, n: number): Promise<void> {
  const path = join(dir, 'mandate.db');
  await openSqliteStore({ path, hasher: sha256Hasher }).close(); // the schema
  const { privateKey, publicKey } = await generateKeyPair('EdDSA', { extractable: true });
  const kid = 'bench-audit-key';
  const privateJwk = { ...(await exportJWK(privateKey)), kid } as unknown as JsonObject;
  const publicJwk = { ...(await exportJWK(publicKey)), kid } as unknown as JsonObject;
  writeFileSync(join(dir, AUDIT_KEY_FILE), JSON.stringify({ keys: [{ kid, purpose: 'audit', alg: 'EdDSA', status: 'active', createdAt: 0, publicJwk, privateJwk }] }));
  const db = new DatabaseSync(path);
  db.exec('PRAGMA synchronous = OFF');
  const insert = db.prepare('INSERT INTO audit_log (seq, ts, kind, call_id, task_id, agent_id, txn, data, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?, ?)');
  const insertCp = db.prepare('INSERT INTO checkpoints (seq, head_hash, ts, kid, signature) VALUES (?, ?, ?, ?, ?)');
  let head: { seq: number; hash: string } | undefined;
  let i = 0;
  while ((head?.seq ?? 0) < n) {
    const batch: AuditDraft[] = [];
    while (batch.length < BATCH && (head?.seq ?? 0) + batch.length < n) batch.push(...drafts(i++));
    batch.length = Math.min(batch.length, n - (head?.seq ?? 0));
    const records = linkRecords(head, batch, sha256Hasher);
    db.exec('BEGIN');
    for (const r of records) {
      insert.run(r.seq, r.ts, r.kind, r.callId ?? null, r.taskId ?? null, r.agentId ?? null, canonicalJson(r.data), r.prevHash, r.hash);
      if (r.seq % CHECKPOINT_EVERY === 0 || r.seq === n) {
        const cp = await signCheckpoint({ seq: r.seq, hash: r.hash }, r.ts, { kid, privateJwk });
        insertCp.run(cp.seq, cp.headHash, cp.ts, cp.kid, cp.signature);
        appendFileSync(join(dir, CHECKPOINT_FILE), JSON.stringify(cp) + '\n');
      }
    }
    db.exec('COMMIT');
    const last = records.at(-1);
    if (last) head = { seq: last.seq, hash: last.hash };
  }
  db.close();
}

interface Run {
  readonly records: number;
  readonly wallS: number;
  readonly cpuS: number;
  readonly peakRssMb: number;
}

/** `mandate audit verify --json` under /usr/bin/time: the verdict, wall and CPU time, peak RSS */
async function verifyOnce(dir: string, n: number): Promise<Run> {
  const child = spawn('/usr/bin/time', ['-f', 'TIME %e %U %S %M', process.execPath, CLI, 'audit', 'verify', '--data-dir', dir, '--json', '--require-checkpoint'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((r) => child.on('close', r));
  const report = JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as { ok?: boolean; status?: string; records?: number };
  if (code !== 0 || report.ok !== true || report.status !== 'intact' || report.records !== n) throw new Error(`verify of ${n} records failed (exit ${String(code)}): ${out.slice(0, 400)} ${err.slice(-400)}`);
  const m = /TIME ([\d.]+) ([\d.]+) ([\d.]+) (\d+)/.exec(err);
  if (!m) throw new Error(`no timing from /usr/bin/time: ${err.slice(-400)}`);
  return { records: n, wallS: Number(m[1]), cpuS: Number(m[2]) + Number(m[3]), peakRssMb: Number(m[4]) / 1024 };
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? (s[(s.length - 1) / 2] as number) : ((s[s.length / 2 - 1] as number) + (s[s.length / 2] as number)) / 2;
};

export async function runAuditVerifyBenchmark(argv: readonly string[]): Promise<BenchResult> {
  const args = parseBenchArgs(argv);
  const plan = args.quick ? QUICK : FULL;
  const say = printer(args);
  const start = startInfo();
  const dirs = plan.sizes.map(() => mkdtempSync(join(tmpdir(), 'mandate-bench-verify-')));
  try {
    say(`audit verify benchmark: mandate audit verify --json over ${plan.sizes.join(' and ')} records, ${plan.rounds} round(s), sizes interleaved; load ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
    for (const [k, n] of plan.sizes.entries()) {
      const t0 = performance.now();
      await writeLog(dirs[k] as string, n);
      say(`  wrote ${n} records in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
    // one run not counted: the first run after a source change fills the CLI's compile cache,
    // which costs it time and memory that no later run pays
    await verifyOnce(dirs[0] as string, plan.sizes[0] as number);
    const runs: Run[][] = plan.sizes.map(() => []);
    for (let round = 0; round < plan.rounds; round++) {
      // rotate the order so neither size always runs on a warmer (or busier) machine
      const order = plan.sizes.map((_, k) => k);
      if (round % 2 === 1) order.reverse();
      for (const k of order) {
        const r = await verifyOnce(dirs[k] as string, plan.sizes[k] as number);
        (runs[k] as Run[]).push(r);
        say(`  round ${round + 1}: ${r.records} records: ${r.wallS.toFixed(2)} s wall, ${r.cpuS.toFixed(2)} s CPU, ${Math.round(r.records / r.wallS)} records/s, peak RSS ${r.peakRssMb.toFixed(0)} MB`);
      }
    }
    const per = plan.sizes.map((n, k) => {
      const rs = runs[k] as Run[];
      return { records: n, wall_s: median(rs.map((r) => r.wallS)), cpu_s: median(rs.map((r) => r.cpuS)), peak_rss_mb: median(rs.map((r) => r.peakRssMb)), wall_s_range: [Math.min(...rs.map((r) => r.wallS)), Math.max(...rs.map((r) => r.wallS))] };
    });
    const small = per[0] as (typeof per)[number];
    const big = per.at(-1) as (typeof per)[number];
    const derived: Record<string, number> = {};
    for (const p of per) {
      derived[`records/s wall, ${p.records} records (start-up included)`] = p.records / p.wall_s;
      derived[`records/s CPU, ${p.records} records`] = p.records / p.cpu_s;
      derived[`peak RSS MB, ${p.records} records`] = p.peak_rss_mb;
    }
    const marginal = (big.records - small.records) / (big.wall_s - small.wall_s);
    derived['records/s marginal wall (between the sizes, start-up excluded)'] = marginal;
    const ratio = big.peak_rss_mb / small.peak_rss_mb;
    derived['peak RSS ratio largest / smallest'] = ratio;
    derived['peak RSS MB added per 100k records (between the sizes)'] = ((big.peak_rss_mb - small.peak_rss_mb) * 100_000) / (big.records - small.records);
    const rate = big.records / big.wall_s;
    const result: BenchResult = {
      ...newResult({ name: 'audit-verify', title: 'mandate audit verify: records/s and peak RSS by log size', mode: args.quick ? 'quick' : 'full', params: { sizes: plan.sizes, rounds: plan.rounds, checkpoint_every: CHECKPOINT_EVERY, store: 'sqlite', per, loadavg_end: loadavg().map((l) => Math.round(l * 100) / 100) } }, start),
      figures: {},
      derived,
      target: {
        description: `audit verify's memory is flat in the log's size: peak RSS over ${big.records} records <= ${RSS_RATIO_MAX} x that over ${small.records} (and >= ${RATE_MIN / 1000}k records/s: see the notes)`,
        metric: 'peak RSS ratio largest / smallest',
        required: RSS_RATIO_MAX,
        comparison: '<=',
        actual: ratio,
        met: ratio <= RSS_RATIO_MAX,
      },
      notes: [
        `rate target: >= ${RATE_MIN / 1000}k records/s (wall, ${big.records} records, start-up included): ${Math.round(rate)} records/s, ${rate >= RATE_MIN ? 'met' : 'NOT met'}`,
        'each size is its own data folder; wall and CPU times include the CLI start-up (the marginal rate excludes it)',
        'peak RSS is the child process maximum resident set (/usr/bin/time %M), the median of the rounds; one uncounted run first fills the compile cache',
      ],
    };
    return emitResult(result, args, say);
  } finally {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  await runAuditVerifyBenchmark(process.argv.slice(2));
}
