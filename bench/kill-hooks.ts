/**
 * Kill hook latency: from the moment a kill request is sent to the moment the hook's receiver has
 * the delivery (verified with the SDK's verifyKillHook), on one node (SQLite), while the killed
 * agent's other tasks keep calling. The receiver is a real HTTP server on 127.0.0.1, in this
 * process. Also the time the kill takes to answer: it never waits for the hook.
 *
 *   node bench/kill-hooks.ts [--quick] [--json-only] [--out DIR]
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MemorySeenDeliveries, verifyKillHook } from '@mandate/sdk';
import { startKillFixture } from './lib/kill-fixture.ts';
import { type BenchResult, emitResult, figure, newResult, parseBenchArgs, printer, startInfo } from './lib/report.ts';

const SECRET = 'bench-kill-hook-secret-0123456789';

export async function runKillHooksBenchmark(argv: readonly string[]): Promise<BenchResult> {
  const args = parseBenchArgs(argv);
  const start = startInfo();
  const say = printer(args);
  const trials = args.quick ? 5 : 60;
  const callers = 4;

  // the receiver: verifies each delivery, notes when a new one arrived
  const seen = new MemorySeenDeliveries();
  const arrived = new Map<string, number>();
  let refused = 0;
  const waiters = new Map<string, () => void>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const at = performance.now();
      void verifyKillHook({ secret: SECRET, headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), seen }).then((v) => {
        res.writeHead(v.ok || v.code === 'KILL_HOOK_REPLAYED' ? 200 : 401).end();
        if (!v.ok) {
          refused += 1;
          return;
        }
        const agent = (v.event.kill.target as { agent?: string }).agent ?? '';
        arrived.set(agent, at);
        waiters.get(agent)?.();
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/kill-hook`;

  const fx = await startKillFixture({
    name: 'kill-hooks',
    config: { kill_hooks: [{ name: 'bench', url, secret_env: 'BENCH_KILL_HOOK_SECRET', kills: ['agent'] }] },
    env: { BENCH_KILL_HOOK_SECRET: SECRET },
  });
  const toHook: number[] = [];
  const killAnswer: number[] = [];
  let callsDecided = 0;
  try {
    say(`kill hook latency: ${trials} kills, ${callers} callers in flight on the killed agent's tasks`);
    for (let trial = 0; trial < trials; trial++) {
      const { agent, tokens } = await fx.agentWithTasks(`victim-${trial}`, 2, 'kill hook latency benchmark');
      let stop = false;
      const loops = fx.callUntil(tokens, callers, () => stop, (effect) => {
        callsDecided += 1;
        if (effect !== 'allow') stop = true;
      });
      await new Promise((r) => setTimeout(r, 10 + (trial % 5) * 3));
      const received = new Promise<void>((resolve) => waiters.set(agent, resolve));
      const sentAt = performance.now();
      const killed = await fx.post('/v1/kill', fx.admin, { agent, reason: 'benchmark' });
      const answeredAt = performance.now();
      if (killed.statusCode !== 200) throw new Error(`kill failed: ${killed.statusCode} ${killed.body}`);
      await Promise.race([received, new Promise((_, reject) => setTimeout(() => reject(new Error(`no kill hook for ${agent} within 30 s`)), 30_000).unref())]);
      waiters.delete(agent);
      stop = true;
      await loops;
      killAnswer.push(answeredAt - sentAt);
      toHook.push((arrived.get(agent) as number) - sentAt);
    }
    if (refused > 0) throw new Error(`${refused} deliveries failed verification`);
    const result: BenchResult = {
      ...newResult({ name: 'kill-hooks', title: 'Kill hooks: kill request to signed webhook received (single node, SQLite)', mode: args.quick ? 'quick' : 'full', params: { trials, callers, node: 'single', store: 'sqlite', transport: 'kill over the HTTP API in-process (fastify inject); hook over real HTTP on 127.0.0.1' } }, start),
      figures: {
        toHook: figure('kill sent -> kill hook received (verified)', toHook, { concurrency: 1, elapsedMs: toHook.reduce((a, b) => a + b, 0), opsBasis: 'inverse-mean' }),
        killAnswer: figure('kill sent -> kill answered (durable, outbox written)', killAnswer, { concurrency: 1, elapsedMs: killAnswer.reduce((a, b) => a + b, 0), opsBasis: 'inverse-mean' }),
      },
      derived: { callsDecided },
      notes: [
        'every trial: a fresh agent with 2 live tasks and 4 callers calling without pause; POST /v1/kill {agent}; the hook asks for agent kills',
        'received = the request body fully read by the receiver (same process, same event loop), before verification',
        'a kill made on another node is picked up at the hook\'s next poll (poll_ms, 1 s by default): add up to that on several nodes',
      ],
    };
    return emitResult(result, args, say);
  } finally {
    await fx.close();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
}

if (import.meta.main) {
  await runKillHooksBenchmark(process.argv.slice(2));
}
