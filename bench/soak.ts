/**
 * Soak: a bounded run at a fixed request rate through a real `mandate serve` process (SQLite,
 * the durability it ships with), stopping by itself. Open loop: requests are sent on a schedule,
 * not when the previous one returns, so a slow server shows up as latency, not as a lower rate.
 *
 *   node bench/soak.ts [--quick] [--json-only] [--out DIR]      (npm run soak: 60 s at 200 req/s)
 *
 * Checks, and exits non-zero when one fails:
 * - 0 errors that are not policy decisions (every answer is a 200 with allow / deny);
 * - 0 lost audit records: every answer's call has its committed decision record with the same
 *   effect at the sequence number the client was told, and the task has no other decisions;
 * - memory flat: the server's RSS after the run against after the warm-up (reported, and a
 *   growth beyond 64 MiB fails);
 * - latency percentiles reported.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { freePort } from '../packages/server/test/cluster/throwaway-pg.ts';
import { type BenchResult, emitResult, figure, newResult, parseBenchArgs, startInfo } from './lib/report.ts';
import { REPO_ROOT } from './lib/stats.ts';

const CLI = join(REPO_ROOT, 'packages', 'cli', 'src', 'main.ts');
const ADMIN = 'mk_' + 'K'.repeat(43);
const AGENT = 'spiffe://dev.mandate.local/agents/soak';
const RSS_GROWTH_LIMIT_MB = 64;

interface Plan {
  readonly seconds: number;
  readonly rate: number;
  readonly warmupSeconds: number;
}
const FULL: Plan = { seconds: 60, rate: 200, warmupSeconds: 5 };
const QUICK: Plan = { seconds: 3, rate: 100, warmupSeconds: 1 };

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

export async function runSoak(argv: readonly string[]): Promise<BenchResult> {
  const args = parseBenchArgs(argv);
  const plan = args.quick ? QUICK : FULL;
  const say = (m: string) => (args.jsonOnly ? process.stderr : process.stdout).write(m + '\n');
  const start = startInfo();
  const dir = mkdtempSync(join(tmpdir(), 'mandate-soak-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const proc = spawn(process.execPath, [CLI, 'serve', '--port', String(port), '--data-dir', dir, '--policies', join(REPO_ROOT, 'examples', 'policies'), '--dev-issuer'], {
    env: { ...process.env, MANDATE_BOOTSTRAP_ADMIN_KEY: ADMIN, MANDATE_ENVIRONMENT: 'prod', MANDATE_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const post = async (path: string, bearer: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> => {
    const res = await fetch(url + path, { method: 'POST', headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
    const text = await res.text();
    return { status: res.status, json: (text ? JSON.parse(text) : {}) as Record<string, unknown> };
  };
  try {
    let up = false;
    for (let i = 0; i < 200 && !up; i++) {
      up = await fetch(`${url}/readyz`).then((r) => r.ok, () => false);
      if (!up) await new Promise((r) => setTimeout(r, 50));
    }
    if (!up || proc.pid === undefined) throw new Error('server did not start');
    await post('/v1/agents', ADMIN, { id: AGENT, owner: 'soak', type: 'support', ceiling: {} });
    const svid = (await post('/v1/dev/workload-tokens', ADMIN, { spiffe_id: AGENT })).json['token'] as string;
    const started = await post('/v1/tasks', svid, {
      mandate: { purpose: 'soak', environment: 'prod', ttl: '1h', tools: [{ name: 'helpdesk.search_tickets' }, { name: 'fs.read_file', args: { path: { prefix: '/srv/kb/' } } }], data_classes: ['internal'], budgets: { calls: 1_000_000 } },
    });
    if (started.status !== 201) throw new Error(`task start: ${started.status} ${JSON.stringify(started.json)}`);
    const token = started.json['token'] as string;
    const taskId = (started.json['task'] as { id: string }).id;

    const seen = new Map<string, { effect: string; seq: number | null }>();
    const latencies: number[] = [];
    let failures = 0;
    const failureSamples: string[] = [];
    let n = 0;
    /** one call: 3 of 4 allowed, 1 of 4 denied by the mandate (a path outside its prefix) */
    const one = async (measure: boolean): Promise<void> => {
      const i = ++n;
      const callId = `soak-${i}`;
      const body = i % 4 === 0 ? { tool: 'fs.read_file', args: { path: `/etc/shadow-${i}` }, call_id: callId } : { tool: 'helpdesk.search_tickets', args: { query: `q${i}` }, call_id: callId };
      const t0 = performance.now();
      try {
        const r = await post('/v1/authorize', token, body);
        const ms = performance.now() - t0;
        const effect = r.json['effect'];
        if (r.status !== 200 || (effect !== 'allow' && effect !== 'deny')) throw new Error(`${r.status} ${JSON.stringify(r.json).slice(0, 200)}`);
        if ((i % 4 === 0) !== (effect === 'deny')) throw new Error(`unexpected ${String(effect)} for ${callId}`);
        seen.set(callId, { effect, seq: (r.json['audit_seq'] as number | null) ?? null });
        if (measure) latencies.push(ms);
      } catch (e) {
        failures += 1;
        if (failureSamples.length < 5) failureSamples.push(String(e));
      }
    };
    /** open loop at `rate` per second for `seconds` */
    const drive = async (seconds: number, rate: number, measure: boolean) => {
      const inflight: Promise<void>[] = [];
      const t0 = performance.now();
      const total = Math.round(seconds * rate);
      for (let k = 0; k < total; k++) {
        const due = t0 + (k * 1000) / rate;
        const wait = due - performance.now();
        if (wait > 1) await new Promise((r) => setTimeout(r, wait));
        inflight.push(one(measure));
      }
      await Promise.all(inflight);
      return performance.now() - t0;
    };

    say(`soak: ${plan.rate} req/s for ${plan.seconds} s (after ${plan.warmupSeconds} s warm-up) against mandate serve on SQLite`);
    await drive(plan.warmupSeconds, plan.rate, false);
    const rssBefore = rssMb(proc.pid);
    const elapsed = await drive(plan.seconds, plan.rate, true);
    const rssAfter = rssMb(proc.pid);

    // every answer has its committed record, and nothing else was decided for the task
    const db = new DatabaseSync(join(dir, 'mandate.db'), { readOnly: true });
    let lost = 0;
    let extra = 0;
    try {
      const rows = db.prepare("SELECT call_id, seq, data FROM audit_log WHERE kind = 'decision' AND task_id = ?").all(taskId) as { call_id: string; seq: number; data: string }[];
      const committed = new Map(rows.map((r) => [r.call_id, { seq: r.seq, effect: (JSON.parse(r.data) as { effect: string }).effect }]));
      for (const [callId, s] of seen) {
        const c = committed.get(callId);
        if (!c || c.effect !== s.effect || (s.seq !== null && c.seq !== s.seq)) lost += 1;
      }
      extra = rows.filter((r) => !seen.has(r.call_id)).length - failures;
    } finally {
      db.close();
    }
    const verify = await fetch(`${url}/v1/audit/verify`, { headers: { authorization: `Bearer ${ADMIN}` } }).then((r) => r.json() as Promise<{ ok: boolean; records: number }>);

    const fig = figure('authorize', latencies, { concurrency: 0, elapsedMs: elapsed, opsBasis: 'wall' });
    const growth = rssAfter - rssBefore;
    const ok = failures === 0 && lost === 0 && verify.ok && growth <= RSS_GROWTH_LIMIT_MB;
    const result: BenchResult = {
      ...newResult({ name: 'soak', title: 'Soak: fixed-rate load through the HTTP API, stopping by itself', mode: args.quick ? 'quick' : 'full', params: { rate: plan.rate, seconds: plan.seconds, warmup_seconds: plan.warmupSeconds, store: 'sqlite', durability: 'full', mix: '3/4 allowed, 1/4 denied by the mandate' } }, start),
      figures: { authorize: fig },
      derived: {
        requests: seen.size + failures,
        errors_not_policy: failures,
        lost_audit_records: lost,
        unexplained_audit_records: Math.max(0, extra),
        audit_records: verify.records,
        audit_verified: verify.ok ? 1 : 0,
        rss_before_mb: Math.round(rssBefore * 10) / 10,
        rss_after_mb: Math.round(rssAfter * 10) / 10,
        rss_growth_mb: Math.round(growth * 10) / 10,
      },
      notes: [...failureSamples, ok ? 'all checks passed' : 'A CHECK FAILED'],
    };
    emitResult(result, args, say);
    if (!ok) process.exitCode = 1;
    return result;
  } finally {
    proc.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) await runSoak(process.argv.slice(2));
