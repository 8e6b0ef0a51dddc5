/**
 * Soak: a bounded run at a fixed request rate through a real `mandate serve` process (SQLite,
 * the durability it ships with), stopping by itself. Open loop: requests are sent on a schedule,
 * not when the previous one returns, so a slow server shows up as latency, not as a lower rate.
 * Two drivers run at once against the same server, each with its own task:
 * - HTTP: `POST /v1/authorize`, 3 of 4 calls allowed, 1 of 4 denied by the mandate;
 * - MCP gateway: the SDK's real MCP client over Streamable HTTP at `/mcp` (one session, the task
 *   token as its bearer), `tools/call` of the granted `ev__echo` (server-everything over stdio,
 *   forwarded) and, 1 of 5, of `ev__get-sum`, which the mandate does not grant (a tool error
 *   result with TOOL_NOT_IN_MANDATE).
 *
 *   node bench/soak.ts [--quick] [--json-only] [--out DIR]
 *   node bench/soak.ts --tasks …: many live tasks and a long run of decisions, for memory (lib/soak-tasks.ts)
 *   (npm run soak: 60 s at 200 req/s over HTTP and 50 calls/s through the gateway)
 *
 * Checks, and exits non-zero when one fails:
 * - 0 errors that are not policy decisions (HTTP: every answer is a 200 with allow / deny;
 *   gateway: no transport or JSON-RPC error, every echo answered by the upstream, every other
 *   call a denial result with its reason code);
 * - 0 lost audit records: HTTP: every answer's call has its committed decision record with the
 *   same effect at the sequence number the client was told; gateway: every denial's call id
 *   (`_meta["mandate/decision"].call_id`) has its deny record, every allowed echo (its message
 *   is unique) its allow record and its outcome record; and neither task has other decisions;
 * - memory flat: the server's RSS after the run against after the warm-up (reported, and a
 *   growth beyond 64 MiB fails);
 * - latency percentiles reported, per path.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { freePort } from '../packages/server/test/cluster/throwaway-pg.ts';
import { CLI, waitReady } from '../packages/server/test/serve-process.ts';
import { type BenchResult, emitResult, figure, newResult, parseBenchArgs, startInfo, printer } from './lib/report.ts';
import { REPO_ROOT } from './lib/stats.ts';

const ADMIN = 'mk_' + 'K'.repeat(43);
const AGENT = 'spiffe://dev.mandate.local/agents/soak';
const RSS_GROWTH_LIMIT_MB = 64;
const EVERYTHING = join(REPO_ROOT, 'node_modules', '@modelcontextprotocol', 'server-everything', 'dist', 'index.js');
/** 1 gateway call in DENY_EVERY goes to a tool outside the mandate */
const DENY_EVERY = 5;

interface Plan {
  readonly seconds: number;
  readonly rate: number;
  readonly gatewayRate: number;
  readonly warmupSeconds: number;
}
const FULL: Plan = { seconds: 60, rate: 200, gatewayRate: 50, warmupSeconds: 5 };
const QUICK: Plan = { seconds: 3, rate: 100, gatewayRate: 20, warmupSeconds: 1 };

/** a unique echo message the mandate's regex admits: the call number in letters */
function words(i: number): string {
  let out = '';
  let k = i;
  do {
    out = String.fromCharCode(97 + (k % 26)) + out;
    k = Math.floor(k / 26);
  } while (k > 0);
  return `soak ${out}`;
}

/** open loop: `one` started at `rate` per second for `seconds`, not waiting for answers */
async function drive(seconds: number, rate: number, one: () => Promise<void>): Promise<number> {
  const inflight: Promise<void>[] = [];
  const t0 = performance.now();
  const total = Math.round(seconds * rate);
  for (let k = 0; k < total; k++) {
    const due = t0 + (k * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    inflight.push(one());
  }
  await Promise.all(inflight);
  return performance.now() - t0;
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

export async function runSoak(argv: readonly string[]): Promise<BenchResult> {
  const args = parseBenchArgs(argv);
  const plan = args.quick ? QUICK : FULL;
  const say = printer(args);
  const start = startInfo();
  const dir = mkdtempSync(join(tmpdir(), 'mandate-soak-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  // the gateway's upstream: server-everything over stdio, one process per MCP session
  const configFile = join(dir, 'mandate.json');
  writeFileSync(configFile, JSON.stringify({ mcp: { upstreams: [{ name: 'ev', transport: 'stdio', command: process.execPath, args: [EVERYTHING] }] } }));
  const proc = spawn(process.execPath, [CLI, 'serve', '--config', configFile, '--port', String(port), '--data-dir', dir, '--policies', join(REPO_ROOT, 'examples', 'policies'), '--dev-issuer'], {
    env: { ...process.env, MANDATE_BOOTSTRAP_ADMIN_KEY: ADMIN, MANDATE_ENVIRONMENT: 'prod', MANDATE_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let serverOutput = '';
  proc.stdout.on('data', (d: Buffer) => (serverOutput = (serverOutput + d.toString()).slice(-65_536)));
  const post = async (path: string, bearer: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> => {
    const res = await fetch(url + path, { method: 'POST', headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
    const text = await res.text();
    return { status: res.status, json: (text ? JSON.parse(text) : {}) as Record<string, unknown> };
  };
  let mcp: Client | undefined;
  try {
    // ready when /readyz says so: a long bound for a busy machine, an early end if the process exits
    await waitReady(proc, () => serverOutput);
    if (proc.pid === undefined) throw new Error('server did not start');
    const pid = proc.pid;
    await post('/v1/agents', ADMIN, { id: AGENT, owner: 'soak', type: 'support', ceiling: {} });
    const svid = (await post('/v1/dev/workload-tokens', ADMIN, { spiffe_id: AGENT })).json['token'] as string;
    const startTask = async (mandate: Record<string, unknown>) => {
      const started = await post('/v1/tasks', svid, { mandate: { environment: 'prod', ttl: '1h', data_classes: ['internal'], budgets: { calls: 1_000_000 }, ...mandate } });
      if (started.status !== 201) throw new Error(`task start: ${started.status} ${JSON.stringify(started.json)}`);
      return { token: started.json['token'] as string, taskId: (started.json['task'] as { id: string }).id };
    };
    const httpTask = await startTask({ purpose: 'soak', tools: [{ name: 'helpdesk.search_tickets' }, { name: 'fs.read_file', args: { path: { prefix: '/srv/kb/' } } }] });
    const gwTask = await startTask({ purpose: 'soak through the MCP gateway', tools: [{ name: 'ev__echo', args: { message: { regex: '[a-z ]{1,64}' } } }] });
    const rssStart = rssMb(pid);

    // ---- HTTP: POST /v1/authorize
    const seen = new Map<string, { effect: string; seq: number | null }>();
    const latencies: number[] = [];
    let failures = 0;
    const failureSamples: string[] = [];
    let n = 0;
    let measureHttp = false;
    /** one call: 3 of 4 allowed, 1 of 4 denied by the mandate (a path outside its prefix) */
    const one = async (): Promise<void> => {
      const i = ++n;
      const measure = measureHttp;
      const callId = `soak-${i}`;
      const body = i % 4 === 0 ? { tool: 'fs.read_file', args: { path: `/etc/shadow-${i}` }, call_id: callId } : { tool: 'helpdesk.search_tickets', args: { query: `q${i}` }, call_id: callId };
      const t0 = performance.now();
      try {
        const r = await post('/v1/authorize', httpTask.token, body);
        const ms = performance.now() - t0;
        const effect = r.json['effect'];
        if (r.status !== 200 || (effect !== 'allow' && effect !== 'deny')) throw new Error(`${r.status} ${JSON.stringify(r.json).slice(0, 200)}`);
        if ((i % 4 === 0) !== (effect === 'deny')) throw new Error(`unexpected ${String(effect)} for ${callId}`);
        seen.set(callId, { effect, seq: (r.json['audit_seq'] as number | null) ?? null });
        if (measure) latencies.push(ms);
      } catch (e) {
        failures += 1;
        if (failureSamples.length < 5) failureSamples.push(`http: ${String(e)}`);
      }
    };

    // ---- MCP gateway: tools/call over one Streamable HTTP session
    mcp = new Client({ name: 'mandate-soak', version: '1.0.0' });
    await mcp.connect(new StreamableHTTPClientTransport(new URL(`${url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${gwTask.token}` } } }));
    const listed = (await mcp.listTools()).tools.map((t) => t.name);
    if (!listed.includes('ev__echo') || listed.includes('ev__get-sum')) throw new Error(`gateway tools/list: ${listed.join(', ')}`);
    const gwClient = mcp;
    const gwAllowed = new Set<string>(); // echo messages answered by the upstream
    const gwDenied = new Map<string, string>(); // call id → reasons, from _meta["mandate/decision"]
    const gwLatencies: number[] = [];
    const gwDeniedLatencies: number[] = [];
    let gwFailures = 0;
    let gwN = 0;
    let measureGw = false;
    const gwOne = async (): Promise<void> => {
      const i = ++gwN;
      const measure = measureGw;
      const denied = i % DENY_EVERY === 0;
      const message = words(i);
      const t0 = performance.now();
      try {
        const r = (await gwClient.callTool(denied ? { name: 'ev__get-sum', arguments: { a: i, b: 1 } } : { name: 'ev__echo', arguments: { message } }, undefined, { timeout: 10_000 })) as {
          isError?: boolean;
          content?: { type: string; text?: string }[];
          _meta?: Record<string, unknown>;
        };
        const ms = performance.now() - t0;
        const text = r.content?.[0]?.text ?? '';
        if (denied) {
          const d = r._meta?.['mandate/decision'] as { call_id?: unknown; effect?: unknown; reasons?: unknown } | undefined;
          if (r.isError !== true || d?.effect !== 'deny' || typeof d.call_id !== 'string' || !Array.isArray(d.reasons) || !d.reasons.includes('TOOL_NOT_IN_MANDATE') || !text.includes('TOOL_NOT_IN_MANDATE'))
            throw new Error(`unexpected answer to a call outside the mandate: ${JSON.stringify(r).slice(0, 300)}`);
          gwDenied.set(d.call_id, (d.reasons as string[]).join(','));
          if (measure) gwDeniedLatencies.push(ms);
        } else {
          if (r.isError === true || text !== `Echo: ${message}`) throw new Error(`unexpected echo result: ${JSON.stringify(r).slice(0, 300)}`);
          gwAllowed.add(message);
          if (measure) gwLatencies.push(ms);
        }
      } catch (e) {
        gwFailures += 1;
        if (failureSamples.length < 10) failureSamples.push(`gateway: ${String(e).slice(0, 300)}`);
      }
    };

    say(`soak: ${plan.rate} req/s over HTTP and ${plan.gatewayRate} calls/s through the MCP gateway for ${plan.seconds} s (after ${plan.warmupSeconds} s warm-up) against mandate serve on SQLite`);
    await Promise.all([drive(plan.warmupSeconds, plan.rate, one), drive(plan.warmupSeconds, plan.gatewayRate, gwOne)]);
    const rssBefore = rssMb(pid);
    measureHttp = true;
    measureGw = true;
    const rssSeries: number[] = [];
    const sampler = setInterval(() => rssSeries.push(Math.round(rssMb(pid))), Math.max(500, (plan.seconds * 1000) / 12));
    const [elapsed, gwElapsed] = await Promise.all([drive(plan.seconds, plan.rate, one), drive(plan.seconds, plan.gatewayRate, gwOne)]).finally(() => clearInterval(sampler));
    const rssAfter = rssMb(pid);
    await mcp.close();
    mcp = undefined;

    // every answer has its committed record, and nothing else was decided for either task
    const db = new DatabaseSync(join(dir, 'mandate.db'), { readOnly: true });
    let lost = 0;
    let extra = 0;
    let gwLost = 0;
    let gwLostOutcomes = 0;
    let gwExtra = 0;
    try {
      const decisions = db.prepare("SELECT call_id, seq, data FROM audit_log WHERE kind = 'decision' AND task_id = ?");
      const rows = decisions.all(httpTask.taskId) as { call_id: string; seq: number; data: string }[];
      const committed = new Map(rows.map((r) => [r.call_id, { seq: r.seq, effect: (JSON.parse(r.data) as { effect: string }).effect }]));
      for (const [callId, s] of seen) {
        const c = committed.get(callId);
        if (!c || c.effect !== s.effect || (s.seq !== null && c.seq !== s.seq)) lost += 1;
      }
      extra = rows.filter((r) => !seen.has(r.call_id)).length - failures;

      // the gateway: the outcome of the last allowed calls is committed after their answer
      await new Promise((r) => setTimeout(r, 500));
      const gwRows = (decisions.all(gwTask.taskId) as { call_id: string; data: string }[]).map((r) => ({ callId: r.call_id, data: JSON.parse(r.data) as { tool: string; effect: string; reasons: string[]; args: { message?: unknown } } }));
      const outcomes = new Set((db.prepare("SELECT call_id FROM audit_log WHERE kind = 'outcome' AND task_id = ? AND json_extract(data, '$.is_error') = 0").all(gwTask.taskId) as { call_id: string }[]).map((r) => r.call_id));
      const byCall = new Map(gwRows.map((r) => [r.callId, r.data]));
      const allowByMessage = new Map<string, string>();
      for (const r of gwRows) if (r.data.effect === 'allow' && r.data.tool === 'ev__echo' && typeof r.data.args.message === 'string') allowByMessage.set(r.data.args.message, r.callId);
      for (const [callId, reasons] of gwDenied) {
        const c = byCall.get(callId);
        if (!c || c.effect !== 'deny' || c.tool !== 'ev__get-sum' || c.reasons.join(',') !== reasons) gwLost += 1;
      }
      for (const message of gwAllowed) {
        const callId = allowByMessage.get(message);
        if (callId === undefined) gwLost += 1;
        else if (!outcomes.has(callId)) gwLostOutcomes += 1;
      }
      gwExtra = gwRows.length - gwDenied.size - gwAllowed.size - gwFailures;
    } finally {
      db.close();
    }
    const verify = await fetch(`${url}/v1/audit/verify`, { headers: { authorization: `Bearer ${ADMIN}` } }).then((r) => r.json() as Promise<{ ok: boolean; records: number }>);

    const fig = figure('authorize', latencies, { concurrency: 0, elapsedMs: elapsed, opsBasis: 'wall' });
    const gwFig = figure('gateway tools/call ev__echo (allowed, forwarded)', gwLatencies, { concurrency: 0, elapsedMs: gwElapsed, opsBasis: 'wall' });
    const gwDeniedFig = figure('gateway tools/call ev__get-sum (denied by the mandate)', gwDeniedLatencies, { concurrency: 0, elapsedMs: gwElapsed, opsBasis: 'wall' });
    const gwAll = [...gwLatencies, ...gwDeniedLatencies].sort((a, b) => a - b);
    const pct = (sorted: number[], p: number) => (sorted.length === 0 ? NaN : (sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number));
    const growth = rssAfter - rssBefore;
    const gwRequests = gwAllowed.size + gwDenied.size + gwFailures;
    const ok = failures === 0 && lost === 0 && gwFailures === 0 && gwLost === 0 && gwLostOutcomes === 0 && gwExtra <= 0 && gwRequests > 0 && verify.ok && growth <= RSS_GROWTH_LIMIT_MB;
    const round = (x: number) => Math.round(x * 10) / 10;
    const result: BenchResult = {
      ...newResult(
        {
          name: 'soak',
          title: 'Soak: fixed-rate load through the HTTP API and the MCP gateway at once, stopping by itself',
          mode: args.quick ? 'quick' : 'full',
          params: {
            rate: plan.rate,
            gateway_rate: plan.gatewayRate,
            seconds: plan.seconds,
            warmup_seconds: plan.warmupSeconds,
            store: 'sqlite',
            durability: 'full',
            mix: '3/4 allowed, 1/4 denied by the mandate',
            gateway: `one MCP session over Streamable HTTP (/mcp, bearer task token) to server-everything over stdio; ${DENY_EVERY - 1}/${DENY_EVERY} tools/call ev__echo (allowed, forwarded), 1/${DENY_EVERY} ev__get-sum (not in the mandate: denied)`,
          },
        },
        start,
      ),
      figures: { authorize: fig, gateway_echo: gwFig, gateway_denied: gwDeniedFig },
      derived: {
        requests: seen.size + failures,
        errors_not_policy: failures,
        lost_audit_records: lost,
        unexplained_audit_records: Math.max(0, extra),
        gateway_requests: gwRequests,
        gateway_allowed: gwAllowed.size,
        gateway_denied: gwDenied.size,
        gateway_errors_not_policy: gwFailures,
        gateway_lost_audit_records: gwLost,
        gateway_lost_outcome_records: gwLostOutcomes,
        gateway_unexplained_audit_records: Math.max(0, gwExtra),
        gateway_p50_ms: pct(gwAll, 50),
        gateway_p99_ms: pct(gwAll, 99),
        audit_records: verify.records,
        audit_verified: verify.ok ? 1 : 0,
        rss_start_mb: round(rssStart),
        rss_before_mb: round(rssBefore),
        rss_after_mb: round(rssAfter),
        rss_growth_mb: round(growth),
      },
      notes: [
        'rss_before = the server process after the warm-up of both drivers, rss_after = after the timed run; rss_start = before any load (the gateway session and its upstream process are opened in the warm-up); the upstream server-everything process is not counted',
        'gateway p50/p99 over every timed call (allowed and denied); per kind in the figures',
        `server RSS during the timed run, MB: ${rssSeries.join(' ')}`,
        ...failureSamples,
        ok ? 'all checks passed' : 'A CHECK FAILED',
      ],
    };
    emitResult(result, args, say);
    if (!ok) process.exitCode = 1;
    return result;
  } finally {
    await mcp?.close().catch(() => undefined);
    proc.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const argv = process.argv.slice(2);
  // --tasks: many live tasks and a long run of decisions, for memory (lib/soak-tasks.ts)
  if (argv.includes('--tasks')) await (await import('./lib/soak-tasks.ts')).runTaskSoak(argv);
  else await runSoak(argv);
}
