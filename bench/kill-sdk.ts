/**
 * Kill → SDK-guarded tool function aborted, on one node (SQLite): a real server over loopback
 * HTTP; the agent's task has a kill watch (`watchKills`, the task event stream); each trial starts
 * a guarded function that runs until its AbortSignal fires, sends POST /v1/kill {task}, and times
 * the moment the function's signal fires (the function's own abort handler).
 *
 *   node bench/kill-sdk.ts [--quick] [--json-only] [--out DIR]
 */
import { loadavg } from 'node:os';
import { MandateClient } from '../packages/sdk/src/index.ts';
import { startExampleServer, SUPPORT_MANDATE } from '../examples/support/mandate-server.ts';
import { type BenchResult, emitResult, figure, newResult, parseBenchArgs, startInfo, printer } from './lib/report.ts';

async function until(ok: () => boolean, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setImmediate(r));
  }
}

export async function runKillSdkBenchmark(argv: readonly string[]): Promise<BenchResult> {
  const args = parseBenchArgs(argv);
  const start = startInfo();
  const say = printer(args);
  const trials = args.quick ? 5 : 40;
  const server = await startExampleServer();
  const client = new MandateClient({ url: server.url, workloadToken: () => server.workloadToken(), autoRenew: false, reportOutcomes: false, watchKills: { lostAfterMs: 120_000 } });
  const toAborted: number[] = [];
  const toKillAnswered: number[] = [];
  const loadBefore = loadavg()[0] ?? 0;
  try {
    say(`kill -> SDK-guarded function aborted: ${trials} trials, one node (SQLite), loopback HTTP`);
    for (let i = 0; i < trials; i++) {
      const task = await client.startTask({ mandate: SUPPORT_MANDATE });
      await until(() => task.killWatch?.state === 'live');
      let running = false;
      let abortedAt = 0;
      const guarded = task.guard(
        'helpdesk.search_tickets',
        (_a: { query: string }, signal?: AbortSignal) =>
          new Promise<string>((_resolve, reject) => {
            running = true;
            signal?.addEventListener('abort', () => {
              abortedAt = performance.now();
              reject(signal.reason as Error);
            });
          }),
        { passSignal: (signal, [a]) => [a, signal] },
      );
      const call = guarded({ query: 'bench' }).then(
        () => {
          throw new Error('the call finished, it was not halted');
        },
        (e: unknown) => {
          if ((e as { code?: unknown }).code !== 'HALTED') throw e as Error;
        },
      );
      await until(() => running);
      const sentAt = performance.now();
      const res = await server.op('POST', '/v1/kill', { task: task.id, reason: 'benchmark' });
      const answeredAt = performance.now();
      if (res.status !== 200) throw new Error(`kill failed: ${res.status}`);
      await call;
      toAborted.push(abortedAt - sentAt);
      toKillAnswered.push(answeredAt - sentAt);
      task.close();
    }
    const loadAfter = loadavg()[0] ?? 0;
    const result: BenchResult = {
      ...newResult({ name: 'kill-sdk', title: 'Kill: kill sent to SDK-guarded tool function aborted (single node)', mode: args.quick ? 'quick' : 'full', params: { trials, node: 'single (SQLite)', transport: 'loopback HTTP, server-sent events' } }, start),
      figures: {
        toFunctionAborted: figure('kill sent -> guarded function signal aborted', toAborted, { concurrency: 1, elapsedMs: toAborted.reduce((a, b) => a + b, 0), opsBasis: 'inverse-mean' }),
        toKillAnswered: figure('kill sent -> kill answered', toKillAnswered, { concurrency: 1, elapsedMs: toKillAnswered.reduce((a, b) => a + b, 0), opsBasis: 'inverse-mean' }),
      },
      derived: { loadavg1Before: loadBefore, loadavg1After: loadAfter },
      notes: ['the agent and the server share one process (and its event loop); the kill and the stream go over loopback HTTP'],
    };
    return emitResult(result, args, say);
  } finally {
    await server.close();
  }
}

if (import.meta.main) {
  await runKillSdkBenchmark(process.argv.slice(2));
}
