/**
 * Where the MCP gateway's time per allowed `tools/call` goes: a `mandate serve` child process (the
 * shipped defaults, log level info), one SDK client over Streamable HTTP → /mcp → server-everything
 * over HTTP (shared), `echo`, one call at a time. Beside it, in the same rounds, the same client
 * straight to server-everything; the CPU time of the serve process per call comes from
 * /proc/<pid>/stat (every thread: the SQLite commit thread included).
 *
 *   node bench/gateway-hop.ts [--calls N] [--rounds R] [--profile DIR] [--baseline CHECKOUT]
 *
 * --profile DIR  the serve process runs with --cpu-prof; on exit its main thread's profile is
 *                summarised (bench/lib/cpuprofile.ts: self time by subsystem, top functions by
 *                self and by inclusive time); profiling costs time, so its latencies are not the
 *                figures to quote
 * --baseline DIR a second `mandate serve` from another checkout of the repository (e.g.
 *                `git archive <commit>` unpacked, with node_modules beside it) is timed in the same
 *                rounds: a same-run A/B of two versions of the gateway against one upstream
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { summariseProfile, type Profile } from './lib/cpuprofile.ts';
import { startHttpEverything } from './lib/everything.ts';
import { difference, interleave, metrics, of, processCpuUs, warmSequential, type Arm } from './lib/interleave.ts';
import { startMandateServe, startTaskOver, type ChildServer } from './lib/procs.ts';
import { loopSequential } from './lib/stats.ts';

const ECHO = { message: { regex: '[a-z ]{1,64}' } };
const MANDATE = { purpose: 'gateway hop profile', environment: 'prod', ttl: '1h', tools: [{ name: 'web__echo', args: ECHO }], data_classes: ['internal'] };
const ARGS = { message: 'hello gateway' };

function checkEcho(r: unknown): void {
  const c = (r as { content?: { text?: string }[] }).content?.[0]?.text;
  if (c !== 'Echo: hello gateway') throw new Error(`unexpected result ${JSON.stringify(r).slice(0, 300)}`);
}

async function connect(url: string, token?: string): Promise<Client> {
  const client = new Client({ name: 'bench-hop', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), token === undefined ? {} : { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
  return client;
}

const fmt = (n: number) => n.toFixed(3);

export async function main(argv: readonly string[]): Promise<void> {
  const { values } = parseArgs({ args: [...argv], options: { calls: { type: 'string', default: '2000' }, rounds: { type: 'string', default: '3' }, profile: { type: 'string' }, baseline: { type: 'string' } } });
  const calls = Number(values.calls);
  const rounds = Number(values.rounds);
  const profDir = values.profile;
  const say = (l: string) => process.stdout.write(l + '\n');
  say(`gateway hop: ${rounds} rounds × ${calls} sequential echo calls; load ${loadavg().map((l) => l.toFixed(2)).join(' ')}${profDir !== undefined ? ' (profiled: --cpu-prof)' : ''}`);
  const web = await startHttpEverything();
  const config = { mcp: { upstreams: [{ name: 'web', transport: 'http', url: web.url, sharing: 'shared' }], limits: { connect_timeout: '60s' } } };
  const env = profDir !== undefined ? { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${profDir} --cpu-prof-interval=100` } : undefined;
  // the timed rounds, counted back from the serve process's exit (its profile ends there)
  const window = { lastUs: 0, skipLastUs: 0 };
  const servers: { name: string; gw: ChildServer & { admin: string } }[] = [];
  const clients: Client[] = [];
  try {
    servers.push({ name: 'gateway', gw: await startMandateServe({ configJson: config, ...(env ? { env } : {}) }) });
    if (values.baseline !== undefined) {
      const cli = join(values.baseline, 'packages', 'cli', 'bin', 'mandate.js');
      if (!existsSync(cli)) throw new Error(`no ${cli}`);
      servers.push({ name: 'baseline', gw: await startMandateServe({ configJson: config, cli }) });
    }
    const direct = await connect(web.url);
    clients.push(direct);
    const call = (c: Client, name: string) => async () => checkEcho(await c.callTool({ name, arguments: ARGS }));
    const arms: Arm[] = [{ name: 'direct', label: 'direct', concurrency: 1, warmup: () => warmSequential(call(direct, 'echo'), 200), measure: async () => ({ ops: calls, ...(await loopSequential(call(direct, 'echo'), { iterations: calls, maxMs: Infinity, min: calls })) }) }];
    for (const { name, gw } of servers) {
      const token = await startTaskOver(gw.url, gw.admin, `spiffe://dev.mandate.local/agents/hop-${name}`, MANDATE);
      const c = await connect(`${gw.url}/mcp`, token);
      clients.push(c);
      await c.listTools();
      const fn = call(c, 'web__echo');
      arms.push({
        name,
        label: name,
        concurrency: 1,
        warmup: () => warmSequential(fn, 300),
        measure: async () => {
          const c0 = processCpuUs(gw.pid);
          const r = await loopSequential(fn, { iterations: calls, maxMs: Infinity, min: calls });
          return { ops: r.samples.length, ...r, cpuUs: processCpuUs(gw.pid) - c0 };
        },
      });
    }
    const measuredFrom = performance.now();
    const run = await interleave(arms, { rounds, say });
    window.lastUs = (performance.now() - measuredFrom) * 1000;
    for (const a of arms) {
      const p50 = of(run, a.name, metrics.p50);
      const p99 = of(run, a.name, metrics.p99);
      const cpu = a.name === 'direct' ? '' : `; serve CPU ${of(run, a.name, metrics.cpuUsPerOp).median.toFixed(0)} µs/call (rounds ${of(run, a.name, metrics.cpuUsPerOp).rounds.map((v) => v.toFixed(0)).join(', ')})`;
      say(`  ${a.name}: p50 ${fmt(p50.median)} ms (rounds ${p50.rounds.map(fmt).join(', ')}), p99 ${fmt(p99.median)} ms (rounds ${p99.rounds.map(fmt).join(', ')})${cpu}`);
    }
    for (const { name } of servers) {
      for (const m of ['p50', 'p99'] as const) {
        const d = difference(run, name, 'direct', metrics[m]);
        say(`  ${name} added ${m}: ${fmt(d.median)} ms (rounds ${d.rounds.map(fmt).join(', ')})`);
      }
    }
    if (servers.length === 2) {
      for (const m of ['p50', 'p99'] as const) {
        const d = difference(run, 'gateway', 'baseline', metrics[m]);
        say(`  gateway − baseline ${m}: ${fmt(d.median)} ms (rounds ${d.rounds.map(fmt).join(', ')})`);
      }
      const d = difference(run, 'gateway', 'baseline', metrics.cpuUsPerOp);
      say(`  gateway − baseline serve CPU per call: ${d.median.toFixed(0)} µs (rounds ${d.rounds.map((v) => v.toFixed(0)).join(', ')})`);
    }
    say(`load after: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  } finally {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    const stopping = performance.now();
    await Promise.all(servers.map(({ gw }) => gw.stop()));
    window.skipLastUs = (performance.now() - stopping) * 1000;
    window.lastUs += window.skipLastUs;
    web.proc.kill();
  }
  if (profDir !== undefined) {
    // one profile per thread: CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile; the main thread is 0
    const pid = servers[0]?.gw.pid;
    for (const f of readdirSync(profDir).filter((n) => n.endsWith('.cpuprofile') && n.includes(`.${pid}.`))) {
      const main = f.includes(`.${pid}.0.`);
      say(`\n--- ${f} (${main ? 'main thread' : 'worker thread'}; the timed rounds only)`);
      say(summariseProfile(JSON.parse(readFileSync(join(profDir, f), 'utf8')) as Profile, main ? 30 : 8, { inclusive: main, busy: true, ...window }));
    }
  }
}

if (import.meta.main) {
  await main(process.argv.slice(2));
}
