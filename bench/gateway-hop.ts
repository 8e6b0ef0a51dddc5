/**
 * Where the MCP gateway's time per allowed `tools/call` goes: a `mandate serve` child process (the
 * shipped defaults, log level info), one SDK client over Streamable HTTP → /mcp → server-everything
 * over HTTP (shared), `echo`, one call at a time. Beside it, in the same rounds, the same client
 * straight to server-everything; the CPU time of the serve process per call comes from
 * /proc/<pid>/stat (every thread: the SQLite commit thread included).
 *
 * The floor, in the same rounds: `POST /v1/authorize` of the same tool and arguments to the same
 * serve process, one call at a time over one keep-alive connection (an HTTP hop, the decision and
 * its durable audit commit: what a gateway call costs before any MCP), and the disk's own commit
 * (a write of one decision's audit bytes + fdatasync, in the serve process's data folder). What the
 * gateway adds over `direct` minus the authorize hop is what the MCP side of the gateway costs.
 *
 *   node bench/gateway-hop.ts [--calls N] [--rounds R] [--profile DIR] [--baseline CHECKOUT] [--no-floor]
 *
 * --profile DIR  the serve process runs with --cpu-prof; on exit its main thread's profile is
 *                summarised (bench/lib/cpuprofile.ts: self time by subsystem, top functions by
 *                self and by inclusive time); profiling costs time, so its latencies are not the
 *                figures to quote
 * --baseline DIR a second `mandate serve` from another checkout of the repository (e.g.
 *                `git archive <commit>` unpacked, with node_modules beside it) is timed in the same
 *                rounds: a same-run A/B of two versions of the gateway against one upstream
 * --no-floor     no /v1/authorize and disk arms (the serve process then does gateway calls only,
 *                e.g. to count its instructions per call with `perf stat -p`)
 */
import { closeSync, existsSync, fdatasyncSync, openSync, readdirSync, readFileSync, writeSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { summariseProfile, type Profile } from './lib/cpuprofile.ts';
import { startHttpEverything } from './lib/everything.ts';
import { difference, interleave, metrics, of, processCpuUs, spread, timeSyncCpu, warmSequential, type Arm } from './lib/interleave.ts';
import { postJson, startMandateServe, startTaskOver, type ChildServer } from './lib/procs.ts';
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

/** `calls` calls of `fn` one at a time, with the CPU the serve process `pid` spent on them */
function sequentialArm(name: string, label: string, fn: () => Promise<unknown>, pid: number, calls: number): Arm {
  return {
    name,
    label,
    concurrency: 1,
    warmup: () => warmSequential(fn, 300),
    measure: async () => {
      const c0 = processCpuUs(pid);
      const r = await loopSequential(fn, { iterations: calls, maxMs: Infinity, min: calls });
      return { ops: r.samples.length, ...r, cpuUs: processCpuUs(pid) - c0 };
    },
  };
}


export async function main(argv: readonly string[]): Promise<void> {
  const { values } = parseArgs({ args: [...argv], options: { calls: { type: 'string', default: '2000' }, rounds: { type: 'string', default: '3' }, profile: { type: 'string' }, baseline: { type: 'string' }, floor: { type: 'boolean', default: true } }, allowNegative: true });
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
  const servers: { name: string; gw: ChildServer & { admin: string; dir: string } }[] = [];
  const clients: Client[] = [];
  let probe: number | undefined;
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
      arms.push(sequentialArm(name, name, fn, gw.pid, calls));
    }
    // the floor: an authorized HTTP call to the same serve process, and the disk's own commit
    // (not when profiling, nor with --no-floor: the serve process then handles gateway calls alone)
    const gw0 = profDir === undefined && values.floor ? servers[0]?.gw : undefined;
    if (gw0 !== undefined) {
      const authToken = await startTaskOver(gw0.url, gw0.admin, 'spiffe://dev.mandate.local/agents/hop-authorize', MANDATE);
      const authorize = async () => {
        const r = await postJson(`${gw0.url}/v1/authorize`, authToken, { tool: 'web__echo', args: ARGS });
        if (r.status !== 200 || (JSON.parse(r.text) as { effect?: string }).effect !== 'allow') throw new Error(`/v1/authorize did not allow: ${r.status} ${r.text.slice(0, 300)}`);
      };
      const head = async () => (JSON.parse(await fetch(`${gw0.url}/v1/audit?tail=true&limit=1`, { headers: { authorization: `Bearer ${gw0.admin}` } }).then((r) => r.text())) as { records: { seq: number }[] }).records[0]?.seq ?? 0;
      const before = await head();
      await authorize();
      const recs = await fetch(`${gw0.url}/v1/audit?from=${before + 1}&limit=100`, { headers: { authorization: `Bearer ${gw0.admin}` } }).then((r) => r.text());
      const recordBytes = Buffer.byteLength(JSON.stringify((JSON.parse(recs) as { records: unknown[] }).records));
      const payload = Buffer.alloc(recordBytes, 0x61);
      const fd = openSync(join(gw0.dir, 'fsync-probe.bin'), 'w');
      probe = fd;
      let offset = 0;
      const commit = () => (writeSync(fd, payload, 0, payload.length, (offset += payload.length)), fdatasyncSync(fd));
      arms.push(
        sequentialArm('authorize', "POST /v1/authorize to the gateway's serve process, one at a time", authorize, gw0.pid, calls),
        { name: 'disk', label: `disk: write ${recordBytes} B + fdatasync`, concurrency: 1, warmup: () => void timeSyncCpu(commit, 20), measure: () => timeSyncCpu(commit, Math.min(calls, 500)) },
      );
    }
    const measuredFrom = performance.now();
    const run = await interleave(arms, { rounds, say });
    window.lastUs = (performance.now() - measuredFrom) * 1000;
    for (const a of arms) {
      const p50 = of(run, a.name, metrics.p50);
      const p99 = of(run, a.name, metrics.p99);
      const cpu = a.name === 'direct' || a.name === 'disk' ? '' : `; serve CPU ${of(run, a.name, metrics.cpuUsPerOp).median.toFixed(0)} µs/call (rounds ${of(run, a.name, metrics.cpuUsPerOp).rounds.map((v) => v.toFixed(0)).join(', ')})`;
      say(`  ${a.name}: p50 ${fmt(p50.median)} ms (rounds ${p50.rounds.map(fmt).join(', ')}), p99 ${fmt(p99.median)} ms (rounds ${p99.rounds.map(fmt).join(', ')})${cpu}`);
    }
    for (const { name } of servers) {
      for (const m of ['p50', 'p99'] as const) {
        const d = difference(run, name, 'direct', metrics[m]);
        say(`  ${name} added ${m}: ${fmt(d.median)} ms (rounds ${d.rounds.map(fmt).join(', ')})`);
      }
    }
    for (const m of run.arms['authorize'] !== undefined ? (['p50', 'p99'] as const) : []) {
      const d = difference(run, 'gateway', 'direct', metrics[m]);
      const a = of(run, 'authorize', metrics[m]);
      const beyond = spread(d.rounds.map((v, i) => v - (a.rounds[i] ?? Number.NaN)));
      say(`  floor ${m}: disk commit ${fmt(of(run, 'disk', metrics[m]).median)} ms; /v1/authorize (an HTTP hop, the decision, its commit) ${fmt(a.median)} ms; gateway added ${fmt(d.median)} ms, beyond /v1/authorize ${fmt(beyond.median)} ms (rounds ${beyond.rounds.map(fmt).join(', ')})`);
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
    if (probe !== undefined) closeSync(probe);
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
