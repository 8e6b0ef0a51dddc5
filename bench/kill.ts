/**
 * Kill latency (issue 5): from the moment a kill request is sent to the first call that is
 * denied, while agents keep calling, on one node. Also the time the kill takes to answer (it
 * answers only once every revocation is durable).
 *
 *   node bench/kill.ts [--quick] [--json-only] [--out DIR]
 */
import { startKillFixture } from './lib/kill-fixture.ts';
import { type BenchResult, emitResult, figure, newResult, parseBenchArgs, printer, startInfo } from './lib/report.ts';

export async function runKillBenchmark(argv: readonly string[]): Promise<BenchResult> {
  const args = parseBenchArgs(argv);
  const start = startInfo();
  const say = printer(args);
  const trials = args.quick ? 5 : 40;
  const tasksPerAgent = 4;
  const callers = 8;
  const fx = await startKillFixture({ name: 'kill' });
  const toFirstDeny: number[] = [];
  const killAnswer: number[] = [];
  let callsDecided = 0;
  try {
    say(`kill latency: ${trials} trials, ${tasksPerAgent} tasks per agent, ${callers} callers in flight`);
    for (let trial = 0; trial < trials; trial++) {
      const { agent, tokens } = await fx.agentWithTasks(`victim-${trial}`, tasksPerAgent, 'kill latency benchmark');
      let killSentAt = Number.POSITIVE_INFINITY;
      let firstDenyAt = Number.POSITIVE_INFINITY;
      let stop = false;
      // callers keep calling until they see a deny that was decided after the kill was sent
      const loops = fx.callUntil(tokens, callers, () => stop, (effect, sentAt) => {
        callsDecided += 1;
        if (effect === 'allow') return;
        if (sentAt >= killSentAt || performance.now() >= killSentAt) {
          firstDenyAt = Math.min(firstDenyAt, performance.now());
          stop = true;
        } else throw new Error('a call was denied before the kill');
      });
      await new Promise((r) => setTimeout(r, 20 + (trial % 7) * 3)); // kill at varying points of the traffic
      killSentAt = performance.now();
      const killed = await fx.post('/v1/kill', fx.admin, { agent, reason: 'benchmark' });
      const answeredAt = performance.now();
      if (killed.statusCode !== 200) throw new Error(`kill failed: ${killed.statusCode} ${killed.body}`);
      await loops;
      killAnswer.push(answeredAt - killSentAt);
      toFirstDeny.push(firstDenyAt - killSentAt);
    }
    const total = toFirstDeny.reduce((a, b) => a + b, 0);
    const result: BenchResult = {
      ...newResult({ name: 'kill', title: 'Kill switch: kill request to first denied call (single node)', mode: args.quick ? 'quick' : 'full', params: { trials, tasksPerAgent, callers, node: 'single', transport: 'HTTP API in-process (fastify inject)' } }, start),
      figures: {
        toFirstDeny: figure('kill sent -> first denied call', toFirstDeny, { concurrency: callers, elapsedMs: total, opsBasis: 'inverse-mean' }),
        killAnswer: figure('kill sent -> kill answered (durable)', killAnswer, { concurrency: 1, elapsedMs: killAnswer.reduce((a, b) => a + b, 0), opsBasis: 'inverse-mean' }),
      },
      derived: { callsDecided },
      notes: [
        'every trial: a fresh agent with 4 live tasks, 8 callers calling without pause; POST /v1/kill {agent} at a varying point',
        'first denied call = the earliest completion of a call denied after the kill was sent; a deny before the kill fails the run',
        'multi-node propagation is measured by the PostgreSQL issue',
      ],
    };
    return emitResult(result, args, say);
  } finally {
    await fx.close();
  }
}

if (import.meta.main) {
  await runKillBenchmark(process.argv.slice(2));
  // kill sent -> an in-flight MCP call cancelled upstream (bench/kill-inflight.ts)
  const { runKillInflightBenchmark } = await import('./kill-inflight.ts');
  await runKillInflightBenchmark(process.argv.slice(2));
  // kill sent -> an SDK-guarded tool function's signal aborted (bench/kill-sdk.ts)
  const { runKillSdkBenchmark } = await import('./kill-sdk.ts');
  await runKillSdkBenchmark(process.argv.slice(2));
  // the same across three nodes on PostgreSQL (bench/kill-inflight-cluster.ts)
  const { runKillInflightClusterBenchmark } = await import('./kill-inflight-cluster.ts');
  await runKillInflightClusterBenchmark(process.argv.slice(2));
}
