/**
 * Soak over many live tasks: `mandate serve` (SQLite, shipped defaults, log level included) in a
 * child process; N tasks started (one agent), then M decisions through `POST /v1/authorize`
 * spread round-robin over every task (3 of 4 allowed, 1 of 4 denied by the mandate), from a
 * closed loop of C clients. The server's RSS is sampled through the run: what grows per task
 * and per decision, and where it levels off.
 *
 *   node bench/soak.ts --tasks [--quick] [--json-only] [--out DIR]
 *   env SOAK_TASKS (10000), SOAK_DECISIONS (1000000), SOAK_MAX_SECONDS (1800), SOAK_RENEW_AFTER_MS (180000: task tokens live 5 min): a bounded run
 *   stops at the time limit and reports how far it got; SOAK_SNAPSHOT_DIR: the server writes a
 *   heap snapshot there after the tasks and at the end (for finding what grows); SOAK_SNAPSHOT_AT=end:
 *   only at the end, after the last sample, so that writing one does not weigh on the figures
 *
 * Writes bench/results/soak-tasks.json: RSS idle, after the tasks, and every sample
 * (seconds, decisions, RSS MB), the tail slope (MB per 100k decisions) and a check that every
 * answer was a policy decision.
 */
import { spawn } from 'node:child_process';
import { Agent, request } from 'node:http';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../packages/server/test/cluster/throwaway-pg.ts';
import { CLI, waitReady } from '../../packages/server/test/serve-process.ts';
import { type BenchResult, emitResult, newResult, parseBenchArgs, startInfo } from './report.ts';
import { REPO_ROOT } from './stats.ts';

const ADMIN = 'mk_' + 'T'.repeat(43);
const AGENT = 'spiffe://dev.mandate.local/agents/soak-tasks';
const RENEW_AFTER_MS = Number(process.env['SOAK_RENEW_AFTER_MS'] ?? 180_000);

interface Plan {
  readonly tasks: number;
  readonly decisions: number;
  readonly clients: number;
  readonly maxSeconds: number;
  readonly sampleMs: number;
}

function plan(quick: boolean): Plan {
  const env = (k: string, d: number) => (process.env[k] === undefined ? d : Number(process.env[k]));
  return quick
    ? { tasks: 200, decisions: 4000, clients: 16, maxSeconds: 120, sampleMs: 1000 }
    : { tasks: env('SOAK_TASKS', 10_000), decisions: env('SOAK_DECISIONS', 1_000_000), clients: 32, maxSeconds: env('SOAK_MAX_SECONDS', 1800), sampleMs: 10_000 };
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 102.4) / 10 : NaN;
}

/** CPU time (user + system) of a process so far, ms */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // clock ticks: USER_HZ is 100 on Linux
}

/** where the resident memory is: malloc's heap, other anonymous mappings (V8's heap, thread arenas, wasm), files */
function residentBreakdown(pid: number): { malloc_heap_mb: number; anonymous_mb: number; files_mb: number } {
  let cur = '';
  const kb = { heap: 0, anon: 0, file: 0 };
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) cur = line.split(/\s+/)[5] ?? '';
    else if (line.startsWith('Rss:')) {
      const v = Number(line.split(/\s+/)[1]);
      if (cur === '[heap]') kb.heap += v;
      else if (cur === '' || cur.startsWith('[')) kb.anon += v;
      else kb.file += v;
    }
  }
  const mb = (x: number) => Math.round(x / 102.4) / 10;
  return { malloc_heap_mb: mb(kb.heap), anonymous_mb: mb(kb.anon), files_mb: mb(kb.file) };
}

export async function runTaskSoak(argv: readonly string[]): Promise<BenchResult> {
  const args = parseBenchArgs(argv.filter((a) => a !== '--tasks'));
  const p = plan(args.quick);
  const say = (m: string) => (args.jsonOnly ? process.stderr : process.stdout).write(m + '\n');
  const start = startInfo();
  const dir = mkdtempSync(join(tmpdir(), 'mandate-soak-tasks-'));
  const port = await freePort();
  const snapshots = process.env['SOAK_SNAPSHOT_DIR'];
  /** a heap snapshot of the server, written by itself (waits until the file stops growing) */
  const snapshot = async (): Promise<void> => {
    if (snapshots === undefined) return;
    const before = new Set(readdirSync(snapshots));
    proc.kill('SIGUSR2');
    for (let last = -1; ; ) {
      await new Promise((r) => setTimeout(r, 2000));
      const f = readdirSync(snapshots).find((x) => !before.has(x));
      const size = f === undefined ? -1 : statSync(join(snapshots, f)).size;
      if (size > 0 && size === last) {
        say(`  heap snapshot ${join(snapshots, f as string)}`);
        return;
      }
      last = size;
    }
  };
  const proc = spawn(process.execPath, [CLI, 'serve', '--port', String(port), '--data-dir', dir, '--policies', join(REPO_ROOT, 'examples', 'policies'), '--dev-issuer'], {
    env: { ...process.env, MANDATE_BOOTSTRAP_ADMIN_KEY: ADMIN, MANDATE_ENVIRONMENT: 'prod', ...(snapshots === undefined ? {} : { NODE_OPTIONS: `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${snapshots}` }) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let tail = '';
  proc.stdout.on('data', (d: Buffer) => (tail = (tail + d.toString()).slice(-16_384)));
  const agent = new Agent({ keepAlive: true, maxSockets: p.clients + 4 });
  const post = (path: string, bearer: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> =>
    new Promise((resolve, reject) => {
      const payload = JSON.stringify(body);
      const req = request({ host: '127.0.0.1', port, path, method: 'POST', agent, headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }, timeout: 30_000 }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => {
          try {
            resolve({ status: res.statusCode ?? 0, json: (text ? JSON.parse(text) : {}) as Record<string, unknown> });
          } catch (e) {
            reject(e as Error);
          }
        });
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
      req.end(payload);
    });
  try {
    await waitReady(proc, () => tail);
    if (proc.pid === undefined) throw new Error('server did not start');
    const pid = proc.pid;
    await new Promise((r) => setTimeout(r, 2000));
    const rssIdle = rssMb(pid);
    const idleParts = residentBreakdown(pid);
    say(`soak --tasks: ${p.tasks} live tasks, ${p.decisions} decisions round-robin over them, ${p.clients} clients, at most ${p.maxSeconds} s; idle RSS ${rssIdle} MB; load ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
    await post('/v1/agents', ADMIN, { id: AGENT, owner: 'soak', type: 'support', ceiling: {} });
    const svid = (await post('/v1/dev/workload-tokens', ADMIN, { spiffe_id: AGENT })).json['token'] as string;
    // task tokens live tokens.ttl (5 min): each is renewed once it is older than RENEW_AFTER_MS
    const tokens: { id: string; token: string; at: number }[] = [];
    const t0 = performance.now();
    // tasks started by the same closed loop of clients
    let next = 0;
    await Promise.all(
      Array.from({ length: p.clients }, async () => {
        while (next < p.tasks) {
          next += 1;
          const started = await post('/v1/tasks', svid, { mandate: { purpose: 'soak over many tasks', environment: 'prod', ttl: '1h', data_classes: ['internal'], budgets: { calls: 1_000_000 }, tools: [{ name: 'helpdesk.search_tickets' }, { name: 'fs.read_file', args: { path: { prefix: '/srv/kb/' } } }] } });
          if (started.status !== 201) throw new Error(`task start: ${started.status} ${JSON.stringify(started.json).slice(0, 300)}`);
          tokens.push({ id: (started.json['task'] as { id: string }).id, token: started.json['token'] as string, at: performance.now() });
        }
      }),
    );
    const rssTasks = rssMb(pid);
    const taskParts = residentBreakdown(pid);
    say(`  ${p.tasks} tasks started in ${((performance.now() - t0) / 1000).toFixed(1)} s; RSS ${rssTasks} MB`);
    // writing a snapshot costs the server memory of its own (~140 MB more RSS, seen right after)
    if (process.env['SOAK_SNAPSHOT_AT'] !== 'end') await snapshot();

    let n = 0;
    let done = 0;
    let failures = 0;
    const samples: { s: number; decisions: number; rss_mb: number }[] = [];
    const failureSamples: string[] = [];
    const t1 = performance.now();
    const cpu0 = cpuMs(pid);
    const deadline = t1 + p.maxSeconds * 1000;
    const sample = () => {
      const s = { s: Math.round((performance.now() - t1) / 100) / 10, decisions: done, rss_mb: rssMb(pid) };
      samples.push(s);
      if (!args.jsonOnly) say(`  ${s.s} s: ${s.decisions} decisions, RSS ${s.rss_mb} MB`);
    };
    const sampler = setInterval(sample, p.sampleMs);
    await Promise.all(
      Array.from({ length: p.clients }, async () => {
        while (n < p.decisions && performance.now() < deadline) {
          const i = n++;
          const task = tokens[i % tokens.length] as (typeof tokens)[number];
          if (performance.now() - task.at > RENEW_AFTER_MS) {
            task.at = performance.now();
            const renewed = await post(`/v1/tasks/${task.id}/renew`, task.token, {});
            if (renewed.status !== 200 && renewed.status !== 201) throw new Error(`task renew: ${renewed.status} ${JSON.stringify(renewed.json).slice(0, 300)}`);
            task.token = renewed.json['token'] as string;
          }
          const token = task.token;
          const body = i % 4 === 0 ? { tool: 'fs.read_file', args: { path: `/etc/shadow-${i}` } } : { tool: 'helpdesk.search_tickets', args: { query: `q${i}` } };
          try {
            const r = await post('/v1/authorize', token, body);
            const effect = r.json['effect'];
            if (r.status !== 200 || effect !== (i % 4 === 0 ? 'deny' : 'allow')) throw new Error(`${r.status} ${JSON.stringify(r.json).slice(0, 200)}`);
          } catch (e) {
            failures += 1;
            if (failureSamples.length < 5) failureSamples.push(String(e));
          }
          done += 1;
        }
      }),
    ).finally(() => clearInterval(sampler));
    sample();
    const serverCpuMs = cpuMs(pid) - cpu0;
    const endParts = residentBreakdown(pid);
    await snapshot();
    const seconds = (performance.now() - t1) / 1000;
    // the slope of the last half of the samples: growth still under way, per 100k decisions
    const half = samples.slice(Math.floor(samples.length / 2));
    const first = half[0];
    const last = half.at(-1);
    const slope = first && last && last.decisions > first.decisions ? ((last.rss_mb - first.rss_mb) / (last.decisions - first.decisions)) * 100_000 : NaN;
    const peak = Math.max(...samples.map((s) => s.rss_mb));
    const result: BenchResult = {
      ...newResult(
        {
          name: 'soak-tasks',
          title: 'Soak over many live tasks: mandate serve RSS through a long run of decisions',
          mode: args.quick ? 'quick' : 'full',
          params: { ...p, store: 'sqlite', defaults: 'shipped (log level info)', mix: '3/4 allowed, 1/4 denied by the mandate', loadavg_end: loadavg().map((l) => Math.round(l * 100) / 100) },
        },
        start,
      ),
      figures: {},
      derived: {
        decisions: done,
        decisions_per_s: done / seconds,
        server_cpu_ms_per_decision: Math.round((serverCpuMs / Math.max(1, done)) * 1000) / 1000,
        errors_not_policy: failures,
        rss_idle_mb: rssIdle,
        rss_after_tasks_mb: rssTasks,
        rss_end_mb: samples.at(-1)?.rss_mb ?? NaN,
        rss_peak_mb: peak,
        rss_slope_mb_per_100k_decisions_last_half: Math.round(slope * 10) / 10,
      },
      target: { description: 'mandate serve RSS <= 250 MB over the run (1M decisions over 10k live tasks, default limits)', metric: 'rss_peak_mb', required: 250, actual: peak, met: peak <= 250 && done >= p.decisions, comparison: '<=' },
      notes: [`resident memory by kind, MB: idle ${JSON.stringify(idleParts)}, after the tasks ${JSON.stringify(taskParts)}, at the end ${JSON.stringify(endParts)}`, `samples (s, decisions, RSS MB): ${samples.map((s) => `${s.s}/${s.decisions}/${s.rss_mb}`).join(' ')}`, ...(done < p.decisions ? [`stopped at the time limit after ${done} of ${p.decisions} decisions`] : []), ...failureSamples],
    };
    emitResult(result, args, say);
    if (failures > 0) process.exitCode = 1;
    return result;
  } finally {
    agent.destroy();
    proc.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}
