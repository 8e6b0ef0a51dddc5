/**
 * MCP gateway overhead, as real hosts meet it, against a direct connection in the same run:
 *
 * - calls: one allowed `tools/call` (server-everything's `echo`) over Streamable HTTP (the SDK's
 *   client → the gateway's /mcp → the same server-everything over HTTP, against the SDK's client
 *   straight to it) and over stdio (the SDK's stdio client → `mandate mcp --stdio` → /mcp →
 *   server-everything over stdio, against the SDK's stdio client straight to its own process);
 *   the gateway is a real `mandate serve` process at its shipped defaults (log level info);
 * - session open with warm pooled (shared) upstreams: connect + initialize + tools/list through
 *   the gateway, against the same straight to server-everything over HTTP;
 * - abandonment: N sessions opened by SDK clients over several tasks and dropped without DELETE;
 *   upstream processes and RSS are counted before, at the peak and after the idle timeout.
 *
 * Every measurement runs in ≥ 3 interleaved rounds, the order rotated every round
 * (bench/lib/interleave.ts), so drift on a shared machine hits both alike; "added" is taken within a
 * round and reported as the median and range of the rounds.
 *
 *   node bench/gateway.ts [--quick] [--json-only] [--out DIR] [--publish]
 *
 * Targets (idle machine): calls add ≤ 0.5 ms at p50 and ≤ 2 ms at p99; a session opens with
 * ≤ 50 ms added at p50; abandoned sessions leave no more than the configured pool.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { buildHttpApp, createRuntime, parseConfig, type MandateRuntime } from '@mandate/server';
import type { FastifyInstance } from 'fastify';
import { type BenchResult, type Figure, emitResult, newResult, parseBenchArgs, startInfo, printer } from './lib/report.ts';
import { armFigures, difference, interleave, metrics, runParams, timeSequentialCpu, warmSequential, type Arm, type Budget } from './lib/interleave.ts';
import { EVERYTHING, startHttpEverything } from './lib/everything.ts';
import { startMandateServe, startTaskOver } from './lib/procs.ts';
import { REPO_ROOT } from './lib/stats.ts';

const TRUST_DOMAIN = 'bench.mandate.local';
const MEMORY = join(REPO_ROOT, 'node_modules', '@modelcontextprotocol', 'server-memory', 'dist', 'index.js');
const CLI = join(REPO_ROOT, 'packages', 'cli', 'src', 'main.ts');
const ECHO = { message: { regex: '[a-z ]{1,64}' } };
const MANDATE = { purpose: 'gateway benchmark', environment: 'prod', ttl: '1h', tools: [{ name: 'ev__echo', args: ECHO }, { name: 'web__echo', args: ECHO }, { name: 'mem__*' }], data_classes: ['internal'] };
const ARGS = { message: 'hello gateway' };

interface Plan {
  readonly rounds: number;
  readonly call: Budget & { readonly warmup: number };
  readonly opens: number;
  readonly abandon: { readonly sessions: number; readonly tasks: number; readonly idle: string };
}
const FULL: Plan = { rounds: 3, call: { warmup: 200, iterations: 1500, maxMs: 4000 }, opens: 30, abandon: { sessions: 200, tasks: 10, idle: '5s' } };
/** how often an abandoned session's open is tried when its session was gone before its client finished */
const ABANDON_ATTEMPTS = 3;
const QUICK: Plan = { rounds: 3, call: { warmup: 10, iterations: 60, maxMs: 400, min: 20 }, opens: 4, abandon: { sessions: 12, tasks: 3, idle: '2s' } };

interface Bed {
  readonly rt: MandateRuntime;
  readonly app: FastifyInstance;
  readonly url: string;
  task(name: string): Promise<string>;
  close(): Promise<void>;
}

async function startBed(upstreams: Record<string, unknown>[], limits: Record<string, unknown> = {}): Promise<Bed> {
  const dir = mkdtempSync(join(tmpdir(), 'mandate-bench-gateway-'));
  const rt = await createRuntime(
    parseConfig({
      environment: 'prod',
      data_dir: dir,
      policies: { dir: join(REPO_ROOT, 'examples', 'policies') },
      identity: { dev_issuer: { enabled: true, trust_domain: TRUST_DOMAIN } },
      log: { level: 'silent' },
      // a slow (busy) machine's run outlasts the default token lifetime
      tokens: { ttl: '1h', default_task_ttl: '1h', max_task_ttl: '1h' },
      mcp: { upstreams, limits: { connect_timeout: '60s', max_sessions: 1000, max_sessions_per_agent: 1000, ...limits } },
    }),
    { writeAdminKeyFile: false },
  );
  const app = buildHttpApp(rt, { logger: false });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  const url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  if (!(await rt.mcp.warmed(120_000))) throw new Error('the gateway\'s upstreams did not start');
  return {
    rt,
    app,
    url,
    async task(name) {
      const agent = `spiffe://${TRUST_DOMAIN}/agents/${name}`;
      const reg = await app.inject({ method: 'POST', url: '/v1/agents', headers: { authorization: `Bearer ${rt.bootstrapAdminKey as string}` }, payload: { id: agent, owner: 'bench', type: 'support', ceiling: {} } });
      if (reg.statusCode >= 300) throw new Error(`register agent: ${reg.statusCode} ${reg.body}`);
      const svid = await (rt.devIssuer as NonNullable<typeof rt.devIssuer>).mint(agent, { audience: 'mandate', ttlMs: 3_600_000 });
      return (await rt.tasks.start(svid, MANDATE)).token;
    },
    async close() {
      await app.close();
      await rt.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function httpClient(url: string, token?: string): { client: Client; transport: StreamableHTTPClientTransport } {
  const transport = new StreamableHTTPClientTransport(new URL(url), token === undefined ? {} : { requestInit: { headers: { authorization: `Bearer ${token}` } } });
  return { client: new Client({ name: 'bench', version: '1.0.0' }), transport };
}

function checkEcho(r: unknown): void {
  const c = (r as { content?: { text?: string }[]; isError?: boolean }).content?.[0]?.text;
  if (c !== 'Echo: hello gateway' || (r as { isError?: boolean }).isError) throw new Error(`unexpected result ${JSON.stringify(r).slice(0, 300)}`);
}

/** This process's children (upstreams, relays) and their resident memory, from /proc. */
function children(): { count: number; rssMb: number } {
  let count = 0;
  let rssKb = 0;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== process.pid) continue;
      count += 1;
      rssKb += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      // gone meanwhile
    }
  }
  return { count, rssMb: rssKb / 1024 };
}

const ownRssMb = () => process.memoryUsage().rss / 1024 / 1024;
const round2 = (n: number) => Math.round(n * 1000) / 1000;

export async function runGatewayBenchmark(argv: readonly string[]): Promise<BenchResult> {
  const args = parseBenchArgs(argv);
  const plan = args.quick ? QUICK : FULL;
  const say = printer(args);
  const start = startInfo();
  say(`gateway benchmark: ${plan.rounds} interleaved rounds, ${args.quick ? 'quick' : 'full'} run; load ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);

  const web = await startHttpEverything();
  // the gateway as shipped: a `mandate serve` process at its default log level, the upstreams in its
  // config; not pinned, since its upstream processes would inherit the pinning and the direct ones not
  const gw = await startMandateServe({
    configJson: {
      mcp: {
        upstreams: [
          { name: 'ev', transport: 'stdio', command: process.execPath, args: [EVERYTHING], sharing: 'shared' },
          { name: 'web', transport: 'http', url: web.url, sharing: 'shared' },
        ],
        limits: { connect_timeout: '60s', max_sessions: 1000, max_sessions_per_agent: 1000 },
      },
    },
  });
  const closers: (() => Promise<unknown>)[] = [];
  const derived: Record<string, number> = {};
  let figures: Record<string, Figure> = {};
  let runInfo: Record<string, unknown> = {};
  try {
    const token = await startTaskOver(gw.url, gw.admin, `spiffe://dev.mandate.local/agents/gateway-bench`, MANDATE);
    // direct clients
    const directStdio = new Client({ name: 'bench-direct', version: '1.0.0' });
    await directStdio.connect(new StdioClientTransport({ command: process.execPath, args: [EVERYTHING], stderr: 'pipe' }));
    closers.push(() => directStdio.close());
    const dh = httpClient(web.url);
    await dh.client.connect(dh.transport);
    closers.push(() => dh.client.close());
    // through the gateway: Streamable HTTP, and the stdio relay as hosts launch it
    const gh = httpClient(`${gw.url}/mcp`, token);
    await gh.client.connect(gh.transport);
    closers.push(() => gh.client.close());
    const relay = new Client({ name: 'bench-host', version: '1.0.0' });
    await relay.connect(new StdioClientTransport({ command: process.execPath, args: [CLI, 'mcp', '--stdio'], env: { PATH: process.env['PATH'] ?? '', MANDATE_URL: gw.url, MANDATE_TASK_TOKEN: token }, stderr: 'pipe' }));
    closers.push(() => relay.close());
    for (const c of [gh.client, relay]) await c.listTools();

    const call = (c: Client, name: string) => async () => checkEcho(await c.callTool({ name, arguments: ARGS }));
    // session open: connect + initialize + tools/list, then DELETE
    const open = (url: string, tok?: string) => async () => {
      const c = httpClient(url, tok);
      await c.client.connect(c.transport);
      await c.client.listTools();
      await c.transport.terminateSession();
      await c.client.close();
    };
    const callArm = (name: string, label: string, fn: () => Promise<unknown>): Arm => ({ name, label, concurrency: 1, warmup: () => warmSequential(fn, plan.call.warmup), measure: () => timeSequentialCpu(fn, plan.call) });
    const openArm = (name: string, label: string, fn: () => Promise<unknown>): Arm => ({ name, label, concurrency: 1, warmup: () => warmSequential(fn, 2), measure: () => timeSequentialCpu(fn, { iterations: plan.opens, min: plan.opens }) });
    const run = await interleave(
      [
        callArm('direct_http', 'direct: SDK client over Streamable HTTP → server-everything (HTTP) echo', call(dh.client, 'echo')),
        callArm('gateway_http', 'gateway: SDK client over Streamable HTTP → mandate serve /mcp → server-everything (HTTP, shared)', call(gh.client, 'web__echo')),
        callArm('direct_stdio', 'direct: SDK stdio client → its own server-everything process', call(directStdio, 'echo')),
        callArm('gateway_stdio_relay', 'gateway: SDK stdio client → mandate mcp --stdio → mandate serve /mcp → server-everything (stdio, shared)', call(relay, 'ev__echo')),
        openArm('open_direct_http', 'session open direct: connect + initialize + tools/list + DELETE, server-everything (HTTP)', open(web.url)),
        openArm('open_gateway_http', 'session open via the gateway (warm shared upstreams: stdio and HTTP): connect + initialize + tools/list + DELETE', open(`${gw.url}/mcp`, token)),
      ],
      { rounds: plan.rounds, say },
    );
    runInfo = runParams(run);
    figures = armFigures(run);
    const addFigures = (key: string, gwArm: string, direct: string) => {
      for (const p of ['p50', 'p99'] as const) {
        const d = difference(run, gwArm, direct, metrics[p]);
        derived[`added ${p} ms (${key}) median of rounds`] = round2(d.median);
        derived[`added ${p} ms (${key}) min round`] = round2(d.min);
        derived[`added ${p} ms (${key}) max round`] = round2(d.max);
      }
    };
    addFigures('http', 'gateway_http', 'direct_http');
    addFigures('stdio relay', 'gateway_stdio_relay', 'direct_stdio');
    addFigures('session open', 'open_gateway_http', 'open_direct_http');
    await Promise.all(closers.splice(0).map((c) => c().catch(() => undefined)));
    await gw.stop();

    // --- abandonment: sessions dropped without DELETE, over several tasks, reclaimed after idle
    // printed now, in case the abandonment phase below fails
    for (const [k, f] of Object.entries(figures)) say(`  ${k}: p50 ${f.p50.toFixed(3)} ms, p99 ${f.p99.toFixed(3)} ms, ${f.runs} calls`);
    for (const [k, v] of Object.entries(derived)) say(`  ${k}: ${v}`);
    say(`  abandonment: ${plan.abandon.sessions} sessions over ${plan.abandon.tasks} tasks, dropped without DELETE; idle_timeout ${plan.abandon.idle}`);
    const before = children();
    const ab = await startBed(
      [
        { name: 'ev', transport: 'stdio', command: process.execPath, args: [EVERYTHING], sharing: 'shared' },
        { name: 'mem', transport: 'stdio', command: process.execPath, args: [MEMORY], sharing: 'per_task', warm: 1, env: { MEMORY_FILE_PATH: join(tmpdir(), `mandate-bench-mem-${process.pid}.jsonl`) } },
      ],
      // no per-task cap short of the plan: every abandoned session is still open at the peak
      { idle_timeout: plan.abandon.idle, max_sessions_per_task: 1000 },
    );
    try {
      const pool = children();
      const tokens = await Promise.all(Array.from({ length: plan.abandon.tasks }, (_, i) => ab.task(`abandon-${i}`)));
      let peak = pool;
      let opened = 0;
      let retried = 0;
      // a session is never reclaimed while it opens or answers; on a loaded machine with a short
      // idle_timeout, a client slower than that between its own messages (initialize, then
      // initialized, then tools/list) can still find its session gone (404): it opens another
      const abandonOne = async (t: string) => {
        for (let attempt = 1; ; attempt++) {
          const c = httpClient(`${ab.url}/mcp`, t);
          try {
            await c.client.connect(c.transport);
            await c.client.listTools();
            // what the SDK's close() does: drop the connection, send no DELETE
            await c.client.close();
            return;
          } catch (e) {
            await c.client.close().catch(() => undefined);
            const message = e instanceof Error ? e.message : String(e);
            const gone = (e instanceof StreamableHTTPError && e.code === 404) || message.includes('Session not found');
            if (attempt >= ABANDON_ATTEMPTS || !gone) throw e;
            retried += 1;
            say(`  abandonment: a session open failed (${message.slice(0, 120)}), retrying`);
          }
        }
      };
      const openedAt = performance.now();
      while (opened < plan.abandon.sessions) {
        const batch = Array.from({ length: Math.min(5, plan.abandon.sessions - opened) }, (_, i) => tokens[(opened + i) % tokens.length] as string);
        await Promise.all(batch.map(abandonOne));
        opened += batch.length;
        const now = children();
        if (now.count > peak.count) peak = now;
      }
      const openingMs = performance.now() - openedAt;
      const sessionsAtPeak = ab.rt.mcp.sessionCount;
      const idleMs = Number(/^(\d+)s$/.exec(plan.abandon.idle)?.[1] ?? 5) * 1000;
      const deadline = Date.now() + idleMs + 30_000;
      while (ab.rt.mcp.sessionCount > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
      await new Promise((r) => setTimeout(r, 1000)); // processes exit after their pipes close
      const after = children();
      Object.assign(derived, {
        'abandon sessions opened': opened,
        'abandon session opens retried': retried,
        'abandon opening s': round2(openingMs / 1000),
        'abandon sessions open at the end of opening': sessionsAtPeak,
        'abandon sessions open after idle timeout': ab.rt.mcp.sessionCount,
        'abandon child processes before the gateway': before.count,
        'abandon child processes with the warm pool': pool.count,
        'abandon child processes at peak': peak.count,
        'abandon child processes after idle timeout': after.count,
        'abandon pool connections after idle timeout': ab.rt.mcp.pooledConnections,
        'abandon children RSS MB with the warm pool': round2(pool.rssMb),
        'abandon children RSS MB at peak': round2(peak.rssMb),
        'abandon children RSS MB after idle timeout': round2(after.rssMb),
        'abandon own RSS MB after idle timeout': round2(ownRssMb()),
      });
    } finally {
      await ab.close();
    }

    const p50Http = derived['added p50 ms (http) median of rounds'] ?? NaN;
    const result: BenchResult = {
      ...newResult(
        {
          name: 'gateway',
          title: 'MCP gateway: added latency per call and per session open vs a direct connection; abandoned sessions reclaimed',
          mode: args.quick ? 'quick' : 'full',
          params: {
            upstream: '@modelcontextprotocol/server-everything (stdio and Streamable HTTP, shared), tool echo',
            store: 'sqlite (node:sqlite, WAL), durability full',
            policies: 'examples/policies',
            mandate: MANDATE.tools,
            gateway: 'mandate serve child process at shipped defaults (log level info to a file)',
            plan,
            ...runInfo,
          },
        },
        start,
      ),
      figures,
      derived,
      target: { description: 'added p50 per tools/call over Streamable HTTP (median of rounds), idle machine', metric: 'added p50 ms (http) median of rounds', required: 0.5, actual: p50Http, met: p50Http <= 0.5, comparison: '<=' },
      notes: [
        'each round times every variant in turn, the order rotated every round (bench/lib/interleave.ts); "added" is gateway minus direct within one round, and the median, min and max over rounds are given',
        'the gateway is a real `mandate serve` process at its shipped defaults (log level info); the clients are in this process, as a host would be',
        'gateway per call: token check (cache), task check, decide (Cedar, one durable audit commit), forward, scrub, outcome report (off the response path); over HTTP also the SSE framing of the answer',
        'the in-memory client link is no longer timed: no host reaches the gateway that way',
        'stdio relay: the host talks to `mandate mcp --stdio` (a child process) which relays each message over HTTP to /mcp: two more hops than a direct stdio server',
        'session open through the gateway uses warm shared upstreams (no process starts); per-session upstreams take a warm spare instead, and start the next one in the background',
        'abandonment: the pool after the idle timeout is ev (shared, 1 process) + mem (per_task, 1 warm spare); per-task connections end with their tasks\' last sessions',
        'abandonment: max_sessions_per_task is lifted (1000), so every abandoned session is open at the peak (at the default 4, 10 tasks held at most 40); a session open whose session was gone before its client finished (404) is retried up to 3 times, and counted',
        'targets are for an idle machine; the load average at start and end is in the result: on a shared machine the numbers are upper bounds',
      ],
    };
    return emitResult(result, args, say);
  } finally {
    await Promise.all(closers.map((c) => c().catch(() => undefined)));
    await gw.stop();
    web.proc.kill();
  }
}

if (import.meta.main) {
  await runGatewayBenchmark(process.argv.slice(2));
}
