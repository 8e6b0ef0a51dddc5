/**
 * Kill latency (issue 5): from the moment a kill request is sent to the first call that is
 * denied, while agents keep calling, on one node. Also the time the kill takes to answer (it
 * answers only once every revocation is durable).
 *
 *   node bench/kill.ts [--quick] [--json-only] [--out DIR]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildHttpApp, createRuntime, parseConfig } from '@mandate/server';
import { REPO_ROOT } from './lib/stats.ts';
import { type BenchResult, emitResult, figure, newResult, parseBenchArgs, startInfo } from './lib/report.ts';

const TRUST_DOMAIN = 'bench.mandate.local';
const MANDATE = {
  purpose: 'kill latency benchmark',
  environment: 'prod',
  ttl: '30m',
  tools: [{ name: 'helpdesk.search_tickets' }],
  data_classes: ['internal'],
};
const CALL = { tool: 'helpdesk.search_tickets', args: { query: 'refund' } };

export async function runKillBenchmark(argv: readonly string[]): Promise<BenchResult> {
  const args = parseBenchArgs(argv);
  const start = startInfo();
  const say = (s: string) => {
    if (!args.jsonOnly) process.stdout.write(s + '\n');
  };
  const trials = args.quick ? 5 : 40;
  const tasksPerAgent = 4;
  const callers = 8;
  const dir = mkdtempSync(join(tmpdir(), 'mandate-bench-kill-'));
  const rt = await createRuntime(
    parseConfig({
      environment: 'prod',
      data_dir: dir,
      policies: { dir: join(REPO_ROOT, 'examples', 'policies') },
      identity: { dev_issuer: { enabled: true, trust_domain: TRUST_DOMAIN } },
      log: { level: 'silent' },
    }),
    { writeAdminKeyFile: false },
  );
  const app = buildHttpApp(rt, { logger: false });
  const admin = rt.bootstrapAdminKey as string;
  const post = (url: string, bearer: string, payload: object) => app.inject({ method: 'POST', url, headers: { authorization: `Bearer ${bearer}` }, payload });
  const toFirstDeny: number[] = [];
  const killAnswer: number[] = [];
  let callsDecided = 0;
  try {
    say(`kill latency: ${trials} trials, ${tasksPerAgent} tasks per agent, ${callers} callers in flight`);
    for (let trial = 0; trial < trials; trial++) {
      const agent = `spiffe://${TRUST_DOMAIN}/agents/victim-${trial}`;
      await post('/v1/agents', admin, { id: agent, owner: 'bench', type: 'support', ceiling: {} });
      const tokens: string[] = [];
      for (let i = 0; i < tasksPerAgent; i++) {
        const svid = await (rt.devIssuer as NonNullable<typeof rt.devIssuer>).mint(agent, { audience: 'mandate', ttlMs: 300_000 });
        tokens.push((await post('/v1/tasks', svid, { mandate: MANDATE })).json<{ token: string }>().token);
      }
      let killSentAt = Number.POSITIVE_INFINITY;
      let firstDenyAt = Number.POSITIVE_INFINITY;
      let stop = false;
      // callers keep calling until they see a deny that was decided after the kill was sent
      const loops = Array.from({ length: callers }, async (_, c) => {
        for (let n = 0; !stop && n < 100_000; n++) {
          const sentAt = performance.now();
          const d = (await post('/v1/authorize', tokens[(c + n) % tokens.length] as string, CALL)).json<{ effect: string }>();
          callsDecided += 1;
          if (d.effect !== 'allow') {
            if (sentAt >= killSentAt || performance.now() >= killSentAt) {
              firstDenyAt = Math.min(firstDenyAt, performance.now());
              stop = true;
            } else throw new Error('a call was denied before the kill');
          }
        }
      });
      await new Promise((r) => setTimeout(r, 20 + (trial % 7) * 3)); // kill at varying points of the traffic
      killSentAt = performance.now();
      const killed = await post('/v1/kill', admin, { agent, reason: 'benchmark' });
      const answeredAt = performance.now();
      if (killed.statusCode !== 200) throw new Error(`kill failed: ${killed.statusCode} ${killed.body}`);
      await Promise.all(loops);
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
    await rt.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  await runKillBenchmark(process.argv.slice(2));
  // kill sent -> an in-flight MCP call cancelled upstream (bench/kill-inflight.ts)
  const { runKillInflightBenchmark } = await import('./kill-inflight.ts');
  await runKillInflightBenchmark(process.argv.slice(2));
  // the same across three nodes on PostgreSQL (bench/kill-inflight-cluster.ts)
  const { runKillInflightClusterBenchmark } = await import('./kill-inflight-cluster.ts');
  await runKillInflightClusterBenchmark(process.argv.slice(2));
}
