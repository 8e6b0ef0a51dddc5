/**
 * MCP gateway overhead, as real hosts meet it, against a direct connection in the same run:
 *
 * - calls: one allowed `tools/call` (server-everything's `echo`) over Streamable HTTP (the SDK's
 *   client → the gateway's /mcp → the same server-everything over HTTP, against the SDK's client
 *   straight to it) and over stdio (the SDK's stdio client → `mandate mcp --stdio` → /mcp →
 *   server-everything over stdio, against the SDK's stdio client straight to its own process);
 *   the in-memory client link is timed too (the gateway's own cost, no client transport);
 * - session open with warm pooled (shared) upstreams: connect + initialize + tools/list through
 *   the gateway, against the same straight to server-everything over HTTP;
 * - abandonment: N sessions opened by SDK clients over several tasks and dropped without DELETE;
 *   upstream processes and RSS are counted before, at the peak and after the idle timeout.
 *
 * Every measurement runs in ≥ 3 interleaved rounds (direct and gateway alternate), so drift on a
 * shared machine hits both alike; the spread of the rounds' p50 is reported.
 *
 *   node bench/gateway.ts [--quick] [--json-only] [--out DIR]
 *
 * Targets (idle machine): calls add ≤ 0.5 ms at p50 and ≤ 2 ms at p99; a session opens with
 * ≤ 50 ms added at p50; abandoned sessions leave no more than the configured pool.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { buildHttpApp, createRuntime, parseConfig, type MandateRuntime } from '@mandate/server';
import type { FastifyInstance } from 'fastify';
import { type BenchResult, type Figure, emitResult, figure, newResult, parseBenchArgs, startInfo } from './lib/report.ts';
import { REPO_ROOT, settle, summarize, timeSequential, type LoopOptions } from './lib/stats.ts';

const TRUST_DOMAIN = 'bench.mandate.local';
const EVERYTHING = join(REPO_ROOT, 'node_modules', '@modelcontextprotocol', 'server-everything', 'dist', 'index.js');
const MEMORY = join(REPO_ROOT, 'node_modules', '@modelcontextprotocol', 'server-memory', 'dist', 'index.js');
const CLI = join(REPO_ROOT, 'packages', 'cli', 'src', 'main.ts');
const ECHO = { message: { regex: '[a-z ]{1,64}' } };
const MANDATE = { purpose: 'gateway benchmark', environment: 'prod', ttl: '1h', tools: [{ name: 'ev__echo', args: ECHO }, { name: 'web__echo', args: ECHO }, { name: 'mem__*' }], data_classes: ['internal'] };
const ARGS = { message: 'hello gateway' };

interface Plan {
  readonly rounds: number;
  readonly call: LoopOptions;
  readonly opens: number;
  readonly abandon: { readonly sessions: number; readonly tasks: number; readonly idle: string };
}
const FULL: Plan = { rounds: 3, call: { warmup: 200, iterations: 1500, maxMs: 4000 }, opens: 30, abandon: { sessions: 200, tasks: 10, idle: '5s' } };
const QUICK: Plan = { rounds: 3, call: { warmup: 10, iterations: 60, maxMs: 400, minIterations: 20 }, opens: 4, abandon: { sessions: 12, tasks: 3, idle: '2s' } };

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

async function startHttpEverything(): Promise<{ url: string; proc: ChildProcess }> {
  const port = await freePort();
  const proc = spawn(process.execPath, [EVERYTHING, 'streamableHttp'], { env: { PATH: process.env['PATH'] ?? '', PORT: String(port) }, stdio: ['ignore', 'ignore', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server-everything (HTTP) did not start')), 60_000);
    proc.stderr?.on('data', (d: Buffer) => {
      if (d.toString().includes('listening on port')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return { url: `http://127.0.0.1:${port}/mcp`, proc };
}

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
  const say = (m: string) => (args.jsonOnly ? process.stderr : process.stdout).write(m + '\n');
  const start = startInfo();
  say(`gateway benchmark: ${plan.rounds} interleaved rounds, ${args.quick ? 'quick' : 'full'} run; load ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);

  const web = await startHttpEverything();
  const bed = await startBed([
    { name: 'ev', transport: 'stdio', command: process.execPath, args: [EVERYTHING], sharing: 'shared' },
    { name: 'web', transport: 'http', url: web.url, sharing: 'shared' },
  ]);
  const closers: (() => Promise<unknown>)[] = [];
  try {
    const token = await bed.task('gateway-bench');
    // direct clients
    const directStdio = new Client({ name: 'bench-direct', version: '1.0.0' });
    await directStdio.connect(new StdioClientTransport({ command: process.execPath, args: [EVERYTHING], stderr: 'pipe' }));
    closers.push(() => directStdio.close());
    const dh = httpClient(web.url);
    await dh.client.connect(dh.transport);
    closers.push(() => dh.client.close());
    // through the gateway: HTTP, the stdio relay as hosts launch it, and the in-memory link
    const gh = httpClient(`${bed.url}/mcp`, token);
    await gh.client.connect(gh.transport);
    closers.push(() => gh.client.close());
    const relay = new Client({ name: 'bench-host', version: '1.0.0' });
    await relay.connect(new StdioClientTransport({ command: process.execPath, args: [CLI, 'mcp', '--stdio'], env: { PATH: process.env['PATH'] ?? '', MANDATE_URL: bed.url, MANDATE_TASK_TOKEN: token }, stderr: 'pipe' }));
    closers.push(() => relay.close());
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    await bed.rt.mcp.openSession(token, serverSide);
    const mem = new Client({ name: 'bench-mem', version: '1.0.0' });
    await mem.connect(clientSide);
    closers.push(() => mem.close());
    for (const c of [gh.client, relay, mem]) await c.listTools();

    const call = (c: Client, name: string) => async () => checkEcho(await c.callTool({ name, arguments: ARGS }));
    const calls: [string, () => Promise<unknown>][] = [
      ['direct_http', call(dh.client, 'echo')],
      ['gateway_http', call(gh.client, 'web__echo')],
      ['direct_stdio', call(directStdio, 'echo')],
      ['gateway_stdio_relay', call(relay, 'ev__echo')],
      ['gateway_in_memory', call(mem, 'ev__echo')],
    ];
    // session open: connect + initialize + tools/list, then DELETE
    const openDirect = async () => {
      const c = httpClient(web.url);
      await c.client.connect(c.transport);
      await c.client.listTools();
      await c.transport.terminateSession();
      await c.client.close();
    };
    const openGateway = async () => {
      const c = httpClient(`${bed.url}/mcp`, token);
      await c.client.connect(c.transport);
      await c.client.listTools();
      await c.transport.terminateSession();
      await c.client.close();
    };
    const opens: [string, () => Promise<unknown>][] = [
      ['open_direct_http', openDirect],
      ['open_gateway_http', openGateway],
    ];
    const openPlan: LoopOptions = { warmup: 2, iterations: plan.opens, maxMs: 60_000, minIterations: plan.opens };

    const perRound: Record<string, number[][]> = {};
    for (let r = 0; r < plan.rounds; r++) {
      for (const [name, fn] of [...calls, ...opens]) {
        await settle();
        const res = await timeSequential(fn, name.startsWith('open_') ? openPlan : plan.call);
        (perRound[name] ??= []).push(res.samples);
      }
      say(`  round ${r + 1}/${plan.rounds} done; load ${loadavg()[0]?.toFixed(2)}`);
    }
    const labels: Record<string, string> = {
      direct_http: 'direct: SDK client over Streamable HTTP → server-everything (HTTP) echo',
      gateway_http: 'gateway: SDK client over Streamable HTTP → /mcp → server-everything (HTTP, shared)',
      direct_stdio: 'direct: SDK stdio client → its own server-everything process',
      gateway_stdio_relay: 'gateway: SDK stdio client → mandate mcp --stdio → /mcp → server-everything (stdio, shared)',
      gateway_in_memory: 'gateway: SDK client over the in-memory link → session → server-everything (stdio, shared)',
      open_direct_http: 'session open direct: connect + initialize + tools/list + DELETE, server-everything (HTTP)',
      open_gateway_http: 'session open via the gateway (warm shared upstreams: stdio and HTTP): connect + initialize + tools/list + DELETE',
    };
    const figures: Record<string, Figure> = {};
    const derived: Record<string, number> = {};
    for (const [name, rounds] of Object.entries(perRound)) {
      const all = rounds.flat();
      figures[name] = figure(labels[name] ?? name, all, { concurrency: 1, elapsedMs: all.reduce((a, b) => a + b, 0), opsBasis: 'wall' });
    }
    const roundP = (name: string, p: 'p50' | 'p99') => (perRound[name] ?? []).map((s) => summarize(s)[p]);
    const added = (gw: string, direct: string, p: 'p50' | 'p99') => {
      const g = roundP(gw, p);
      const d = roundP(direct, p);
      return g.map((x, i) => x - (d[i] ?? 0));
    };
    const addFigures = (key: string, gw: string, direct: string) => {
      for (const p of ['p50', 'p99'] as const) {
        const a = added(gw, direct, p);
        const sorted = [...a].sort((x, y) => x - y);
        derived[`added ${p} ms (${key}) median of rounds`] = round2(sorted[Math.floor(sorted.length / 2)] ?? NaN);
        derived[`added ${p} ms (${key}) min round`] = round2(sorted[0] ?? NaN);
        derived[`added ${p} ms (${key}) max round`] = round2(sorted.at(-1) ?? NaN);
      }
    };
    addFigures('http', 'gateway_http', 'direct_http');
    addFigures('stdio relay', 'gateway_stdio_relay', 'direct_stdio');
    addFigures('in-memory link vs direct stdio', 'gateway_in_memory', 'direct_stdio');
    addFigures('session open', 'open_gateway_http', 'open_direct_http');
    await Promise.all(closers.splice(0).map((c) => c().catch(() => undefined)));

    // --- abandonment: sessions dropped without DELETE, over several tasks, reclaimed after idle
    // printed now: the abandonment phase below may fail on a loaded machine (sessions idle out while opening)
    for (const [k, f] of Object.entries(figures)) say(`  ${k}: p50 ${f.p50.toFixed(3)} ms, p99 ${f.p99.toFixed(3)} ms, ${f.runs} calls`);
    for (const [k, v] of Object.entries(derived)) say(`  ${k}: ${v}`);
    say(`  abandonment: ${plan.abandon.sessions} sessions over ${plan.abandon.tasks} tasks, dropped without DELETE; idle_timeout ${plan.abandon.idle}`);
    const before = children();
    const ab = await startBed(
      [
        { name: 'ev', transport: 'stdio', command: process.execPath, args: [EVERYTHING], sharing: 'shared' },
        { name: 'mem', transport: 'stdio', command: process.execPath, args: [MEMORY], sharing: 'per_task', warm: 1, env: { MEMORY_FILE_PATH: join(tmpdir(), `mandate-bench-mem-${process.pid}.jsonl`) } },
      ],
      { idle_timeout: plan.abandon.idle },
    );
    try {
      const pool = children();
      const tokens = await Promise.all(Array.from({ length: plan.abandon.tasks }, (_, i) => ab.task(`abandon-${i}`)));
      let peak = pool;
      let opened = 0;
      const openedAt = performance.now();
      while (opened < plan.abandon.sessions) {
        const batch = Array.from({ length: Math.min(5, plan.abandon.sessions - opened) }, (_, i) => tokens[(opened + i) % tokens.length] as string);
        await Promise.all(
          batch.map(async (t) => {
            const c = httpClient(`${ab.url}/mcp`, t);
            await c.client.connect(c.transport);
            await c.client.listTools();
            // what the SDK's close() does: drop the connection, send no DELETE
            await c.client.close();
          }),
        );
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
            plan,
            loadavg_end: loadavg().map((l) => Math.round(l * 100) / 100),
          },
        },
        start,
      ),
      figures,
      derived,
      target: { description: 'added p50 per tools/call over Streamable HTTP (median of rounds), idle machine', metric: 'added p50 ms (http) median of rounds', required: 0.5, actual: p50Http, met: p50Http <= 0.5, comparison: '<=' },
      notes: [
        'each round times every variant in turn (direct and gateway alternate); "added" is gateway minus direct within one round, and the median, min and max over rounds are given',
        'gateway per call: token check (cache), task check, decide (Cedar, one durable audit commit), forward, scrub, outcome report (off the response path); over HTTP also the SSE framing of the answer',
        'stdio relay: the host talks to `mandate mcp --stdio` (a child process) which relays each message over HTTP to /mcp: two more hops than a direct stdio server',
        'session open through the gateway uses warm shared upstreams (no process starts); per-session upstreams take a warm spare instead, and start the next one in the background',
        'abandonment: the pool after the idle timeout is ev (shared, 1 process) + mem (per_task, 1 warm spare); per-task connections end with their tasks\' last sessions',
        'targets are for an idle machine; the load average at start and end is in the result: on a shared machine the numbers are upper bounds',
      ],
    };
    return emitResult(result, args, say);
  } finally {
    await Promise.all(closers.map((c) => c().catch(() => undefined)));
    await bed.close();
    web.proc.kill();
  }
}

if (import.meta.main) {
  await runGatewayBenchmark(process.argv.slice(2));
}
