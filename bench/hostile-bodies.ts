/**
 * What a hostile request body costs the server before it is refused: CPU time (user + system, of
 * this process) per body just under the body limit, nested or wide past the JSON limits, sent
 * with a task token to /v1/authorize and without any credential to an operator route
 * (/v1/agents). Beside them, a valid body of the same size that is parsed and decided, for scale.
 * Driven in-process (app.inject): the figures are the server's work, not the sockets'.
 *
 *   node bench/hostile-bodies.ts [--quick] [--json-only] [--out DIR]
 *
 * Target: refusing a hostile body costs no more than parsing and deciding a valid body of its size
 * (p50). Before the text was checked ahead of JSON.parse, the worst of these cost 130-550 ms.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildHttpApp, createRuntime, parseConfig } from '@mandate/server';
import { type BenchResult, type Figure, emitResult, figure, newResult, parseBenchArgs, startInfo, printer } from './lib/report.ts';
import { REPO_ROOT, settle } from './lib/stats.ts';

const TRUST_DOMAIN = 'bench.mandate.local';
const AGENT = `spiffe://${TRUST_DOMAIN}/agents/hostile-bodies`;
/** just under the default body limit (1 MiB) */
const SIZE = 1024 * 1024 - 64;

const SHAPES: Record<string, string> = {
  nested_arrays: '['.repeat(SIZE / 2) + ']'.repeat(SIZE / 2),
  nested_objects: '{"a":'.repeat(SIZE / 6) + '1' + '}'.repeat(SIZE / 6),
  wide_array: '[' + '0,'.repeat(SIZE / 2 - 1) + '0]',
  wide_object: '{' + Array.from({ length: Math.floor(SIZE / 12) }, (_, i) => `"k${i.toString(36).padStart(6, '0')}":0`).join(',') + '}',
  empty_objects: '[' + '{},'.repeat(SIZE / 3 - 1) + '{}]',
};

/** CPU milliseconds of this process spent in `fn` */
async function cpuMs(fn: () => Promise<void>): Promise<number> {
  const before = process.cpuUsage();
  await fn();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000;
}

export async function runHostileBodiesBenchmark(argv: readonly string[]): Promise<BenchResult> {
  const args = parseBenchArgs(argv);
  const runs = args.quick ? 3 : 20;
  const say = printer(args);
  const start = startInfo();
  const dir = mkdtempSync(join(tmpdir(), 'mandate-bench-bodies-'));
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
  try {
    const app = buildHttpApp(rt, { logger: false });
    const admin = rt.bootstrapAdminKey as string;
    const reg = await app.inject({ method: 'POST', url: '/v1/agents', headers: { authorization: `Bearer ${admin}` }, payload: { id: AGENT, owner: 'bench', type: 'support', ceiling: {} } });
    if (reg.statusCode >= 300) throw new Error(`register agent: ${reg.statusCode} ${reg.body}`);
    const svid = await (rt.devIssuer as NonNullable<typeof rt.devIssuer>).mint(AGENT, { audience: 'mandate', ttlMs: 600_000 });
    const task = await rt.tasks.start(svid, { purpose: 'bench', environment: 'prod', ttl: '30m', tools: [{ name: 'helpdesk.search_tickets' }], data_classes: ['internal'] });
    say(`hostile bodies: CPU ms per body of ~${SIZE} bytes, ${runs} runs each, in-process; ${args.quick ? 'quick' : 'full'} run`);

    const send = (url: string, body: string, authorization?: string) => async () => {
      const res = await app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) }, payload: body });
      if (res.statusCode < 400 && url !== '/v1/authorize') throw new Error(`${url} accepted a hostile body`);
    };
    const measure = async (label: string, fn: () => Promise<void>): Promise<Figure> => {
      await fn(); // warm-up
      await settle();
      const samples: number[] = [];
      const t0 = performance.now();
      for (let i = 0; i < runs; i++) samples.push(await cpuMs(fn));
      return figure(label, samples, { concurrency: 1, elapsedMs: performance.now() - t0, opsBasis: 'wall' });
    };

    const figures: Record<string, Figure> = {};
    // a valid call of the same size: a long argument string, parsed and decided
    const valid = JSON.stringify({ tool: 'helpdesk.search_tickets', args: { rows: Array.from({ length: 4000 }, (_, i) => ({ id: i, text: 'x'.repeat(200) })) } });
    for (const [name, body] of Object.entries(SHAPES)) {
      figures[`${name}_authorize`] = await measure(`${name}, /v1/authorize with a task token`, send('/v1/authorize', body, `Bearer ${task.token}`));
      figures[`${name}_unauthenticated`] = await measure(`${name}, /v1/agents without a credential`, send('/v1/agents', body));
    }
    figures['valid_parsed'] = await measure('valid ~1 MB body, parsed and decided', send('/v1/authorize', valid, `Bearer ${task.token}`));

    const valid50 = figures['valid_parsed']?.p50 ?? Number.NaN;
    const worst = Math.max(...Object.entries(figures).filter(([k]) => k !== 'valid_parsed').map(([, f]) => f.p50));
    const result: BenchResult = {
      ...newResult({ name: 'hostile-bodies', title: 'CPU per refused hostile body (nested / wide JSON near the body limit)', mode: args.quick ? 'quick' : 'full', params: { body_bytes: SIZE, runs, max_json_depth: rt.config.server.max_json_depth } }, start),
      figures,
      derived: { 'worst refused body, CPU ms (p50)': worst, 'valid body, CPU ms (p50)': valid50, 'ratio worst refused / valid': worst / valid50 },
      target: { description: 'refusing a hostile body costs no more than accepting a valid body of its size', metric: 'ratio worst refused / valid', required: 1, actual: worst / valid50, met: worst / valid50 <= 1, comparison: '<=' },
      notes: ['figures are CPU time of the process (user + system) per request, not wall time'],
    };
    return emitResult(result, args, say);
  } finally {
    await rt.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  await runHostileBodiesBenchmark(process.argv.slice(2));
}
