/**
 * HTTP benchmark: Mandate's `POST /v1/authorize` and AuthZEN `POST /access/v1/evaluation` (an
 * agent subject: the same decide() pipeline) over a real socket on 127.0.0.1, against a raw
 * `node:http` server answering the same JSON body, all under the same load generator
 * (autocannon, 50 keep-alive connections, fixed duration, run in its own worker thread).
 *
 *   node bench/http.ts [--quick] [--json-only] [--out DIR]
 *
 * Mandate runs as shipped: serve() from @mandate/server, SQLite in a temp data dir, durability
 * 'full' with group commit (every allow is audited durably before it is answered), the example
 * policies of examples/policies, the dev workload issuer. No target: the ratio is the result.
 */
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon, { type AutocannonResult } from 'autocannon';
import { parseConfig, serve } from '@mandate/server';
import { type BenchResult, type Figure, emitResult, newResult, parseBenchArgs, startInfo } from './lib/report.ts';
import { REPO_ROOT } from './lib/stats.ts';

const TRUST_DOMAIN = 'bench.mandate.local';
const AGENT = `spiffe://${TRUST_DOMAIN}/agents/http-bench`;
const CONNECTIONS = 50;
const MANDATE = {
  purpose: 'http benchmark',
  environment: 'prod',
  ttl: '30m',
  tools: [{ name: 'helpdesk.search_tickets' }],
  data_classes: ['internal'],
  budgets: { calls: 1_000_000 },
};
const CALL = { tool: 'helpdesk.search_tickets', args: { query: 'refund' } };

interface Plan {
  /** seconds of load per target, after the warm-up */
  readonly seconds: number;
  /** seconds of untimed load per target first (JIT, caches) */
  readonly warmupSeconds: number;
}

const FULL: Plan = { seconds: 8, warmupSeconds: 2 };
/** a smoke run: proves the benchmark works; its numbers are rough */
const QUICK: Plan = { seconds: 1, warmupSeconds: 0.5 };

interface Target {
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly body: string;
}

async function load(t: Target, seconds: number): Promise<AutocannonResult> {
  return autocannon({ url: t.url, method: 'POST', headers: { 'content-type': 'application/json', ...t.headers }, body: t.body, connections: CONNECTIONS, duration: seconds, workers: 1 });
}

/** autocannon's summary as a Figure (its latency histogram, not our samples: same fields, same units) */
function toFigure(label: string, r: AutocannonResult): Figure {
  const total = r['2xx'] + r.non2xx;
  return {
    label,
    unit: 'ms',
    concurrency: CONNECTIONS,
    runs: total,
    p50: r.latency.p50,
    p99: r.latency.p99,
    min: r.latency.min,
    max: r.latency.max,
    mean: r.latency.mean,
    opsPerSec: total / r.duration,
    opsBasis: 'wall',
    elapsedMs: r.duration * 1000,
  };
}

function failures(r: AutocannonResult): number {
  return r.non2xx + r.errors + r.timeouts;
}

/** A bare node:http server answering every POST with `body` once it has read the request. */
async function rawServer(body: string): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  if (typeof addr !== 'object' || addr === null) throw new Error('raw server has no address');
  return { server, url: `http://127.0.0.1:${addr.port}` };
}

async function postJson(url: string, bearer: string, payload: unknown): Promise<{ status: number; text: string }> {
  const res = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' }, body: JSON.stringify(payload) });
  return { status: res.status, text: await res.text() };
}

export async function runHttpBenchmark(argv: readonly string[]): Promise<BenchResult> {
  const args = parseBenchArgs(argv);
  const plan = args.quick ? QUICK : FULL;
  const say = (m: string) => (args.jsonOnly ? process.stderr : process.stdout).write(m + '\n');
  const start = startInfo();

  const dir = mkdtempSync(join(tmpdir(), 'mandate-bench-http-'));
  const mandate = await serve(
    parseConfig({
      environment: 'prod',
      data_dir: dir,
      server: { host: '127.0.0.1', port: 0 },
      policies: { dir: join(REPO_ROOT, 'examples', 'policies') },
      identity: { dev_issuer: { enabled: true, trust_domain: TRUST_DOMAIN } },
      log: { level: 'silent' },
    }),
    { writeAdminKeyFile: false, logger: false },
  );
  let raw: { server: Server; url: string } | undefined;
  try {
    const rt = mandate.runtime;
    const admin = rt.bootstrapAdminKey as string;
    const reg = await postJson(`${mandate.url}/v1/agents`, admin, { id: AGENT, owner: 'bench', type: 'support', ceiling: {} });
    if (reg.status >= 300) throw new Error(`register agent: ${reg.status} ${reg.text}`);
    const startTask = async (): Promise<string> => {
      const svid = await (rt.devIssuer as NonNullable<typeof rt.devIssuer>).mint(AGENT, { audience: 'mandate', ttlMs: 300_000 });
      const t = await postJson(`${mandate.url}/v1/tasks`, svid, { mandate: MANDATE });
      if (t.status !== 201 && t.status !== 200) throw new Error(`start task: ${t.status} ${t.text}`);
      return (JSON.parse(t.text) as { token: string }).token;
    };
    // one task per endpoint, so neither spends the other's budget
    const authorizeToken = await startTask();
    const authzenToken = await startTask();

    const authorize: Target = { url: `${mandate.url}/v1/authorize`, headers: { authorization: `Bearer ${authorizeToken}` }, body: JSON.stringify(CALL) };
    const evaluation: Target = {
      url: `${mandate.url}/access/v1/evaluation`,
      headers: { authorization: `Bearer ${admin}` },
      body: JSON.stringify({ subject: { type: 'agent', id: AGENT, properties: { task_token: authzenToken } }, action: { name: CALL.tool }, resource: { type: 'tool', id: CALL.tool }, context: { args: CALL.args } }),
    };

    // sanity: both endpoints allow, and the raw server answers with /v1/authorize's own body
    const a = await postJson(authorize.url, authorizeToken, CALL);
    if (a.status !== 200 || (JSON.parse(a.text) as { effect: string }).effect !== 'allow') throw new Error(`/v1/authorize did not allow: ${a.status} ${a.text}`);
    const e = await postJson(evaluation.url, admin, JSON.parse(evaluation.body));
    if (e.status !== 200 || (JSON.parse(e.text) as { decision: boolean }).decision !== true) throw new Error(`/access/v1/evaluation did not allow: ${e.status} ${e.text}`);
    raw = await rawServer(a.text);
    const rawTarget: Target = { url: `${raw.url}/v1/authorize`, headers: { authorization: `Bearer ${authorizeToken}` }, body: authorize.body };

    say(`http benchmark: autocannon, ${CONNECTIONS} connections, ${plan.warmupSeconds} s warm-up + ${plan.seconds} s per target, 127.0.0.1, ${args.quick ? 'quick' : 'full'} run`);
    const results: Record<string, AutocannonResult> = {};
    for (const [name, label, t] of [
      ['raw', 'raw node:http, same JSON body', rawTarget],
      ['authorize', 'mandate POST /v1/authorize', authorize],
      ['authzen', 'mandate POST /access/v1/evaluation', evaluation],
    ] as const) {
      say(`  ${label}`);
      await load(t, plan.warmupSeconds);
      results[name] = await load(t, plan.seconds);
      const r = results[name];
      if (failures(r) > 0) say(`  !! ${label}: ${r.non2xx} non-2xx, ${r.errors} errors, ${r.timeouts} timeouts`);
    }
    const rawR = results['raw'] as AutocannonResult;
    const authR = results['authorize'] as AutocannonResult;
    const azR = results['authzen'] as AutocannonResult;
    const figures = {
      raw: toFigure('raw node:http (floor)', rawR),
      authorize: toFigure('POST /v1/authorize', authR),
      authzen: toFigure('POST /access/v1/evaluation', azR),
    };

    const result: BenchResult = {
      ...newResult(
        {
          name: 'http',
          title: 'HTTP decisions: Mandate over a real socket vs a raw node:http server (autocannon)',
          mode: args.quick ? 'quick' : 'full',
          params: {
            loadGenerator: 'autocannon (1 worker thread)',
            connections: CONNECTIONS,
            seconds: plan.seconds,
            warmupSeconds: plan.warmupSeconds,
            host: '127.0.0.1',
            store: 'sqlite (node:sqlite, WAL)',
            durability: rt.config.audit.durability,
            group_commit: true,
            policies: 'examples/policies',
            responseBytes: Buffer.byteLength(a.text),
            loadavg_end: loadavg().map((l) => Math.round(l * 100) / 100),
          },
        },
        start,
      ),
      figures,
      derived: {
        'non-2xx raw': rawR.non2xx,
        'non-2xx /v1/authorize': authR.non2xx,
        'non-2xx /access/v1/evaluation': azR.non2xx,
        'errors+timeouts (all targets)': rawR.errors + rawR.timeouts + authR.errors + authR.timeouts + azR.errors + azR.timeouts,
        'throughput ratio /v1/authorize / raw': figures.authorize.opsPerSec / figures.raw.opsPerSec,
        'throughput ratio /access/v1/evaluation / raw': figures.authzen.opsPerSec / figures.raw.opsPerSec,
        'p50 ratio /v1/authorize / raw': figures.authorize.p50 / figures.raw.p50,
        'p99 ratio /v1/authorize / raw': figures.authorize.p99 / figures.raw.p99,
      },
      notes: [
        'latencies and counts from autocannon (its histogram, ms); ops/s = completed requests / duration',
        'raw = node:http reading the request body and answering a captured /v1/authorize body (same bytes); the floor of any HTTP PDP on this machine',
        'every allowed Mandate call is durably audited (synchronous=FULL, group commit) before it is answered',
        'the load generator shares the machine: all three targets pay the same tax',
      ],
    };
    return emitResult(result, args, say);
  } finally {
    if (raw) await new Promise<void>((r) => (raw as { server: Server }).server.close(() => r()));
    await mandate.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  await runHttpBenchmark(process.argv.slice(2));
}
