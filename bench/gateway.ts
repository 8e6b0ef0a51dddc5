/**
 * MCP gateway overhead: one `tools/call` (server-everything's `echo`, a real stdio server from
 * npm) through the gateway against a direct SDK connection to the same upstream, in the same run.
 * The gateway is measured with its client over the SDK's in-memory transport (the gateway's own
 * cost: decide with its durable audit commit, forward, outcome report), with `full` (the shipped
 * default, one fsync per commit group) and `normal` durability, and over Streamable HTTP on a
 * real socket (what an HTTP client adds on top). `decide` alone is timed too, so what costs what
 * can be read off: added = decide + forward bookkeeping.
 *
 *   node bench/gateway.ts [--quick] [--json-only] [--out DIR]
 *
 * Target: ≤ 0.5 ms added at p50 (in-memory client link, shipped durability).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { buildHttpApp, createRuntime, parseConfig, type MandateRuntime } from '@mandate/server';
import { type BenchResult, type Figure, emitResult, figure, newResult, parseBenchArgs, startInfo } from './lib/report.ts';
import { REPO_ROOT, settle, timeSequential, type LoopOptions } from './lib/stats.ts';

const TRUST_DOMAIN = 'bench.mandate.local';
const AGENT = `spiffe://${TRUST_DOMAIN}/agents/gateway-bench`;
const EVERYTHING = join(REPO_ROOT, 'node_modules', '@modelcontextprotocol', 'server-everything', 'dist', 'index.js');
const MANDATE = { purpose: 'gateway benchmark', environment: 'prod', ttl: '1h', tools: [{ name: 'ev__echo', args: { message: { regex: '[a-z ]{1,64}' } } }], data_classes: ['internal'] };
const ARGS = { message: 'hello gateway' };

interface Plan {
  readonly call: LoopOptions;
}
const FULL: Plan = { call: { warmup: 300, iterations: 4000, maxMs: 6000 } };
const QUICK: Plan = { call: { warmup: 20, iterations: 200, maxMs: 500, minIterations: 30 } };

interface Bed {
  readonly rt: MandateRuntime;
  readonly dir: string;
  readonly token: string;
  close(): Promise<void>;
}

/** tmpfs, where fsync costs nothing: the gateway's compute alone (falls back to the temp folder) */
const SHM = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();

async function startBed(durability: 'full' | 'normal', base = tmpdir()): Promise<Bed> {
  const dir = mkdtempSync(join(base, `mandate-bench-gateway-${durability}-`));
  const rt = await createRuntime(
    parseConfig({
      environment: 'prod',
      data_dir: dir,
      policies: { dir: join(REPO_ROOT, 'examples', 'policies') },
      identity: { dev_issuer: { enabled: true, trust_domain: TRUST_DOMAIN } },
      audit: { durability },
      log: { level: 'silent' },
      mcp: { upstreams: [{ name: 'ev', transport: 'stdio', command: process.execPath, args: [EVERYTHING] }] },
    }),
    { writeAdminKeyFile: false },
  );
  const app = buildHttpApp(rt, { logger: false });
  const reg = await app.inject({ method: 'POST', url: '/v1/agents', headers: { authorization: `Bearer ${rt.bootstrapAdminKey as string}` }, payload: { id: AGENT, owner: 'bench', type: 'support', ceiling: {} } });
  if (reg.statusCode >= 300) throw new Error(`register agent: ${reg.statusCode} ${reg.body}`);
  const svid = await (rt.devIssuer as NonNullable<typeof rt.devIssuer>).mint(AGENT, { audience: 'mandate', ttlMs: 600_000 });
  const task = await rt.tasks.start(svid, MANDATE);
  return {
    rt,
    dir,
    token: task.token,
    async close() {
      await app.close();
      await rt.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function gatewayClient(bed: Bed): Promise<Client> {
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await bed.rt.mcp.openSession(bed.token, serverSide);
  const client = new Client({ name: 'bench', version: '1.0.0' });
  await client.connect(clientSide);
  await client.listTools();
  return client;
}

function checkEcho(r: unknown): void {
  const c = (r as { content?: { text?: string }[]; isError?: boolean }).content?.[0]?.text;
  if (c !== 'Echo: hello gateway' || (r as { isError?: boolean }).isError) throw new Error(`unexpected result ${JSON.stringify(r).slice(0, 300)}`);
}

export async function runGatewayBenchmark(argv: readonly string[]): Promise<BenchResult> {
  const args = parseBenchArgs(argv);
  const plan = args.quick ? QUICK : FULL;
  const say = (m: string) => (args.jsonOnly ? process.stderr : process.stdout).write(m + '\n');
  const start = startInfo();
  say(`gateway benchmark: tools/call ev__echo through the gateway vs a direct SDK stdio connection to server-everything; ${args.quick ? 'quick' : 'full'} run`);

  const direct = new Client({ name: 'bench-direct', version: '1.0.0' });
  await direct.connect(new StdioClientTransport({ command: process.execPath, args: [EVERYTHING], stderr: 'pipe' }));
  const full = await startBed('full');
  const normal = await startBed('normal');
  const shm = await startBed('full', SHM);
  const httpApp = buildHttpApp(full.rt, { logger: false });
  try {
    const gwFull = await gatewayClient(full);
    const gwNormal = await gatewayClient(normal);
    const gwShm = await gatewayClient(shm);
    await httpApp.listen({ host: '127.0.0.1', port: 0 });
    const addr = httpApp.server.address();
    const port = typeof addr === 'object' && addr ? addr.port : 0;
    const gwHttp = new Client({ name: 'bench-http', version: '1.0.0' });
    await gwHttp.connect(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${port}/mcp`), { requestInit: { headers: { authorization: `Bearer ${full.token}` } } }));
    await gwHttp.listTools();

    const callDirect = async () => checkEcho(await direct.callTool({ name: 'echo', arguments: ARGS }));
    const via = (c: Client) => async () => checkEcho(await c.callTool({ name: 'ev__echo', arguments: ARGS }));
    let n = 0;
    const decideOnly = (bed: Bed) => async () => {
      const d = await bed.rt.engine.decide({ taskToken: bed.token, tool: 'ev__echo', args: ARGS, callId: `bench-decide-${n++}` });
      if (d.effect !== 'allow') throw new Error(`decide: ${d.reasons.join(',')}`);
    };

    // interleave the order so drift on a shared machine hits each side alike
    const runs: [string, () => Promise<unknown>][] = [
      ['direct', callDirect],
      ['gateway_full', via(gwFull)],
      ['decide_full', decideOnly(full)],
      ['gateway_normal', via(gwNormal)],
      ['decide_normal', decideOnly(normal)],
      ['gateway_shm', via(gwShm)],
      ['decide_shm', decideOnly(shm)],
      ['gateway_http_full', via(gwHttp)],
      ['direct_again', callDirect],
    ];
    const samples: Record<string, { samples: number[]; elapsedMs: number }> = {};
    for (const [name, fn] of runs) {
      await settle();
      samples[name] = await timeSequential(fn, plan.call);
    }
    const labels: Record<string, string> = {
      direct: 'direct SDK stdio client → server-everything echo',
      direct_again: 'direct, measured again last (drift check)',
      gateway_full: 'gateway (in-memory client link), durability full',
      gateway_normal: 'gateway (in-memory client link), durability normal',
      gateway_http_full: 'gateway over Streamable HTTP (socket), durability full',
      decide_full: 'engine.decide alone, durability full',
      decide_normal: 'engine.decide alone, durability normal',
      gateway_shm: 'gateway (in-memory client link), full, store on tmpfs',
      decide_shm: 'engine.decide alone, full, store on tmpfs',
    };
    const figures: Record<string, Figure> = {};
    for (const [k, v] of Object.entries(samples)) figures[k] = figure(labels[k] ?? k, v.samples, { concurrency: 1, elapsedMs: v.elapsedMs, opsBasis: 'wall' });
    const p50 = (k: string) => (figures[k] as Figure).p50;
    const p99 = (k: string) => (figures[k] as Figure).p99;
    const directP50 = Math.min(p50('direct'), p50('direct_again'));
    const directP99 = Math.min(p99('direct'), p99('direct_again'));
    const added = p50('gateway_full') - directP50;

    const result: BenchResult = {
      ...newResult(
        {
          name: 'gateway',
          title: 'MCP gateway: added latency per tools/call vs a direct connection',
          mode: args.quick ? 'quick' : 'full',
          params: {
            upstream: '@modelcontextprotocol/server-everything (stdio), tool echo',
            store: 'sqlite (node:sqlite, WAL)',
            policies: 'examples/policies',
            mandate: MANDATE.tools,
            plan,
            loadavg_end: loadavg().map((l) => Math.round(l * 100) / 100),
          },
        },
        start,
      ),
      figures,
      derived: {
        'added p50 ms (full)': added,
        'added p99 ms (full)': p99('gateway_full') - directP99,
        'added p50 ms (normal)': p50('gateway_normal') - directP50,
        'added p50 ms (http, full)': p50('gateway_http_full') - directP50,
        'added p50 ms (tmpfs: no disk sync)': p50('gateway_shm') - directP50,
        'ratio p50 gateway/direct (full)': p50('gateway_full') / directP50,
        'ratio p99 gateway/direct (full)': p99('gateway_full') / directP99,
        'ratio p50 gateway/direct (normal)': p50('gateway_normal') / directP50,
        'ratio p50 gateway/direct (http, full)': p50('gateway_http_full') / directP50,
        'decide share of added p50 (full)': p50('decide_full') / added,
        'decide share of added p50 (normal)': p50('decide_normal') / (p50('gateway_normal') - directP50),
        'decide share of added p50 (tmpfs)': p50('decide_shm') / (p50('gateway_shm') - directP50),
      },
      target: { description: 'added latency per tools/call at p50 (in-memory client link, shipped durability full)', metric: 'added p50 ms (full)', required: 0.5, actual: added, met: added <= 0.5, comparison: '<=' },
      notes: [
        'direct = the SDK client over stdio to its own server-everything process; gateway = the SDK client over the in-memory transport to a gateway session whose own server-everything process is the upstream (stdio)',
        'the gateway per call: task check (cache), tools map lookup, engine.decide (token cache, mandate + Cedar, one durable audit commit: decision + action records and the budget), forward, scrub, outcome report (off the response path; its record is a lazy commit entry that shares the next decision’s commit, so one fsync per call)',
        'decide_* = engine.decide alone on the same call: most of the added time; the rest is the forward bookkeeping and the second MCP hop',
        `tmpfs = durability full with the data folder on ${SHM}: fsync is free there, so what remains is compute (Cedar, SQLite, MCP framing)`,
        'http = the same gateway behind fastify /mcp on a real socket (JSON responses); adds the HTTP hop a remote client pays anyway',
      ],
    };
    await Promise.all([gwFull.close(), gwNormal.close(), gwShm.close(), gwHttp.close()]);
    return emitResult(result, args, say);
  } finally {
    await direct.close();
    await httpApp.close();
    await full.close();
    await normal.close();
    await shm.close();
  }
}

if (import.meta.main) {
  await runGatewayBenchmark(process.argv.slice(2));
}
