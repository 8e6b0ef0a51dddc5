/**
 * Kill → in-flight MCP call cancelled, on one node (SQLite): a real gateway with a per-session
 * stdio upstream whose tool waits until cancelled (it prints `cancelled` on stderr the moment
 * `notifications/cancelled` arrives); each trial starts a 10-minute call, waits until it is
 * upstream, sends POST /v1/kill {task}, and times (a) the upstream's cancellation line reaching
 * the gateway and (b) the client's answer carrying the reason.
 *
 *   node bench/kill-inflight.ts [--quick] [--json-only] [--out DIR]
 *
 * bench/kill-inflight-cluster.ts measures the same across three nodes on PostgreSQL.
 */
import { loadavg } from 'node:os';
import { startGatewayBed } from '../packages/gateway/test/support.ts';
import { type BenchResult, emitResult, figure, newResult, parseBenchArgs, startInfo, printer } from './lib/report.ts';

const TARGET_P99_MS = 100;
const SLOW = new URL('../packages/gateway/test/fixtures/slow-server.ts', import.meta.url).pathname;

async function until(ok: () => boolean, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setImmediate(r));
  }
}

export async function runKillInflightBenchmark(argv: readonly string[]): Promise<BenchResult> {
  const args = parseBenchArgs(argv);
  const start = startInfo();
  const say = printer(args);
  const trials = args.quick ? 5 : 40;
  const cancels: number[] = [];
  const halts: number[] = [];
  let started = 0;
  const quiet = () => undefined;
  const bed = await startGatewayBed({
    log: {
      debug: (o, msg) => {
        const line = JSON.stringify(o);
        if (line.includes('cancelled 600')) cancels.push(performance.now());
        if (line.includes('waiting 600')) started += 1;
      },
      info: quiet,
      warn: (_o, msg) => {
        if (msg === 'calls in flight halted') halts.push(performance.now());
      },
      error: quiet,
    },
    upstreams: () => [{ name: 'slow', transport: 'stdio', command: process.execPath, args: [SLOW], sharing: 'per_session', warm: 2 }],
    config: { limits: { task_check_interval: '1h', halt_grace: '100ms' } },
  });
  const toHalted: number[] = [];
  const toUpstream: number[] = [];
  const toClient: number[] = [];
  const loadBefore = loadavg()[0] ?? 0;
  try {
    say(`kill -> in-flight call cancelled: ${trials} trials, one node (SQLite), stdio upstream per session`);
    for (let i = 0; i < trials; i++) {
      const t = await bed.task([{ name: 'slow__*' }]);
      const client = await bed.http(t.token);
      const seen = cancels.length;
      const halted = halts.length;
      const startedBefore = started;
      let answeredAt = 0;
      const call = client.callTool({ name: 'slow__wait', arguments: { seconds: 600 } }, undefined, { timeout: 120_000 }).then(
        () => {
          throw new Error('the call was answered, not halted');
        },
        () => {
          answeredAt = performance.now();
        },
      );
      await until(() => started > startedBefore);
      const sentAt = performance.now();
      const res = await bed.h.op('POST', '/v1/kill', { task: t.id, reason: 'benchmark' });
      if (res.statusCode !== 200) throw new Error(`kill failed: ${res.statusCode}`);
      await call;
      await until(() => cancels.length > seen);
      toUpstream.push((cancels[seen] as number) - sentAt);
      await until(() => halts.length > halted);
      toHalted.push((halts[halted] as number) - sentAt);
      toClient.push(answeredAt - sentAt);
      await client.close();
      await until(() => bed.h.runtime.mcp.sessionCount === 0);
    }
    const loadAfter = loadavg()[0] ?? 0;
    const up = figure('kill sent -> upstream heard notifications/cancelled', toUpstream, { concurrency: 1, elapsedMs: toUpstream.reduce((a, b) => a + b, 0), opsBasis: 'inverse-mean' });
    const result: BenchResult = {
      ...newResult({ name: 'kill-inflight', title: 'Kill: kill sent to in-flight MCP call cancelled upstream (single node)', mode: args.quick ? 'quick' : 'full', params: { trials, node: 'single (SQLite)', upstream: 'stdio, per session' } }, start),
      figures: {
        toHalted: figure('kill sent -> gateway halted the call (cancellation sent upstream)', toHalted, { concurrency: 1, elapsedMs: toHalted.reduce((a, b) => a + b, 0), opsBasis: 'inverse-mean' }),
        toUpstreamCancelled: up,
        toClientAnswered: figure('kill sent -> client answered with the reason', toClient, { concurrency: 1, elapsedMs: toClient.reduce((a, b) => a + b, 0), opsBasis: 'inverse-mean' }),
      },
      derived: { loadavg1Before: loadBefore, loadavg1After: loadAfter },
      target: { description: `kill -> upstream cancelled p99 <= ${TARGET_P99_MS} ms on one node (idle machine)`, metric: 'toUpstreamCancelled p99 ms', required: TARGET_P99_MS, actual: up.p99, met: up.p99 <= TARGET_P99_MS, comparison: '<=' },
      notes: [
        'halted = the gateway\'s "calls in flight halted" log call, made as the calls are aborted (Mandate\'s part; the rest is the upstream process reading the cancellation and answering)',
        'upstream cancelled = the fixture’s stderr line written in its abort handler, as read by the gateway (includes the pipe back)',
        'the kill goes through the HTTP API in-process (fastify inject); the MCP client talks to the gateway over loopback HTTP',
      ],
    };
    return emitResult(result, args, say);
  } finally {
    await bed.close();
  }
}

if (import.meta.main) {
  await runKillInflightBenchmark(process.argv.slice(2));
}
