/**
 * HTTP benchmark: a real `mandate serve` process at its shipped defaults (log level info, SQLite,
 * durability full with group commit, the example policies, the dev issuer) answering
 * `POST /v1/authorize` and AuthZEN `POST /access/v1/evaluation`, against a raw `node:http` server
 * doing the same JSON parse and answer in its own process, and, when a Cerbos binary is there,
 * Cerbos at its default configuration on the same rule. The load generator (autocannon, 50
 * keep-alive connections) is a child process of its own; with a core to spare, servers are pinned
 * to one set of cores and the generator to the other.
 *
 * One call at a time: `/v1/authorize` from a single connection, against the disk's own commit in
 * the same run (a write of the decision's audit bytes + fdatasync, and a one-row SQLite commit of
 * the same size with synchronous=FULL, in the server's data folder), and against the raw server
 * from the same client one call at a time (the HTTP round trip alone, its floor).
 *
 * Every target runs in the same interleaved rounds (rotated order, warm-up on all sides); ratios
 * are taken within a round, reported as median [min–max] of the rounds, with CPU time of the
 * server process (from /proc) beside wall throughput.
 *
 *   node bench/http.ts [--quick] [--json-only] [--out DIR] [--publish] [--baseline CHECKOUT]
 *
 * HTTP_BENCH_VARIANT='<config JSON>' adds a second `mandate serve` with that configuration over the
 * defaults (e.g. '{"server":{"max_heap_mb":4096}}'), timed in the same rounds: a same-run A/B of
 * a setting, reported as its throughput ratio to the defaults and its own p99 and CPU per request,
 * at 50 connections and one call at a time.
 *
 * --baseline CHECKOUT adds a `mandate serve` from another checkout of the repository (with its
 * node_modules, e.g. a worktree of the commit a change starts from), shipped defaults, timed in
 * the same rounds at 50 connections and one call at a time: a same-run A/B of the code.
 *
 * Cerbos: set CERBOS_BIN, or `npm install --no-save @cerbos/cerbos-linux-x64`; without it the row
 * is skipped and the result says why.
 */
import { closeSync, existsSync, fdatasyncSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import type { AutocannonResult } from 'autocannon';
import { freePort } from '../packages/server/test/cluster/throwaway-pg.ts';
import { armFigures, difference, fmtSpread, interleave, metrics, of, processCpuUs, ratio, runParams, spreadEntries, timeSyncCpu, type Arm, type RoundSample } from './lib/interleave.ts';
import { findCerbos, pinning, postJson, runLoad, runSequential, startCerbos, startMandateServe, startRawHttp, startTaskOver, type ChildServer, type LoadSpec } from './lib/procs.ts';
import { type BenchResult, emitResult, newResult, parseBenchArgs, startInfo, printer } from './lib/report.ts';

const TRUST_DOMAIN = 'dev.mandate.local';
const AGENT = `spiffe://${TRUST_DOMAIN}/agents/http-bench`;
const CONNECTIONS = 50;
/** the rule compared with Cerbos: role (agent type), tool, a path prefix, `..` refused */
const MANDATE = {
  purpose: 'http benchmark',
  environment: 'prod',
  ttl: '1h',
  tools: [{ name: 'fs.read_file', args: { path: { prefix: '/srv/kb/' } } }],
  data_classes: ['internal'],
  budgets: { calls: 1_000_000 },
};
const CALL = { tool: 'fs.read_file', args: { path: '/srv/kb/refunds.md' } };
const P99_TARGET_MS = 5;
const SHARE_TARGET = 0.5;
const SEQUENTIAL_SLACK_MS = 0.2;

interface Plan {
  readonly rounds: number;
  /** seconds of load per target per round */
  readonly seconds: number;
  /** seconds of untimed load per target before the first round */
  readonly warmupSeconds: number;
  /** disk commits per round */
  readonly commits: number;
}

const FULL: Plan = { rounds: 3, seconds: 8, warmupSeconds: 3, commits: 400 };
/** a smoke run: proves the benchmark works; its numbers are rough */
const QUICK: Plan = { rounds: 3, seconds: 1, warmupSeconds: 0.5, commits: 20 };

const CERBOS_POLICY = `apiVersion: api.cerbos.dev/v1
resourcePolicy:
  version: default
  resource: tool
  rules:
    - actions: ['call']
      effect: EFFECT_ALLOW
      roles: ['support']
      condition:
        match:
          all:
            of:
              - expr: request.resource.id == "fs.read_file"
              - expr: request.resource.attr.path.startsWith("/srv/kb/")
              - expr: '!request.resource.attr.path.contains("..")'
`;

function fromAutocannon(r: AutocannonResult, cpuUs: number): RoundSample {
  return {
    ops: r['2xx'] + r.non2xx,
    elapsedMs: r.duration * 1000,
    latency: { p50: r.latency.p50, p99: r.latency.p99, min: r.latency.min, max: r.latency.max, mean: r.latency.mean },
    cpuUs,
    extra: { non2xx: r.non2xx, errors: r.errors, timeouts: r.timeouts },
  };
}

/** HTTP_BENCH_VARIANT: a configuration (JSON object) for a second server timed beside the defaults */
function variantFromEnv(): Record<string, unknown> | undefined {
  const text = process.env['HTTP_BENCH_VARIANT'];
  if (text === undefined || text === '') return undefined;
  const v = JSON.parse(text) as unknown;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('HTTP_BENCH_VARIANT must be a JSON object (a configuration)');
  return v as Record<string, unknown>;
}

export async function runHttpBenchmark(argv: readonly string[]): Promise<BenchResult> {
  const b = argv.indexOf('--baseline');
  const baselineDir = b === -1 ? undefined : argv[b + 1];
  if (b !== -1 && (baselineDir === undefined || baselineDir.startsWith('--'))) throw new Error('--baseline needs a checkout of the repository');
  const baselineCli = baselineDir === undefined ? undefined : join(baselineDir, 'packages', 'cli', 'bin', 'mandate.js');
  if (baselineCli !== undefined && !existsSync(baselineCli)) throw new Error(`--baseline: no ${baselineCli}`);
  const args = parseBenchArgs(b === -1 ? argv : [...argv.slice(0, b), ...argv.slice(b + 2)]);
  const variantConfig = variantFromEnv();
  const plan = args.quick ? QUICK : FULL;
  const say = printer(args);
  const start = startInfo();
  const pin = pinning();
  const cerbosBin = findCerbos();
  const servers: ChildServer[] = [];
  try {
    const mandate = await startMandateServe({ cpus: pin?.server });
    servers.push(mandate);
    const admin = mandate.admin;
    // one task per endpoint, so neither spends the other's budget
    const authorizeToken = await startTaskOver(mandate.url, admin, AGENT, MANDATE);
    const authzenToken = await startTaskOver(mandate.url, admin, AGENT, MANDATE);
    const seqToken = await startTaskOver(mandate.url, admin, AGENT, MANDATE);

    // sanity: allowed, `..` refused, and the records one decision writes (their size is the disk floor's write)
    const headBefore = (JSON.parse((await fetch(`${mandate.url}/v1/audit?tail=true&limit=1`, { headers: { authorization: `Bearer ${admin}` } }).then((r) => r.text()))) as { records: { seq: number }[] }).records[0]?.seq ?? 0;
    const a = await postJson(`${mandate.url}/v1/authorize`, authorizeToken, CALL);
    if (a.status !== 200 || (JSON.parse(a.text) as { effect: string }).effect !== 'allow') throw new Error(`/v1/authorize did not allow: ${a.status} ${a.text}`);
    const recs = await fetch(`${mandate.url}/v1/audit?from=${headBefore + 1}&limit=100`, { headers: { authorization: `Bearer ${admin}` } }).then((r) => r.text());
    const recordBytes = Buffer.byteLength(JSON.stringify((JSON.parse(recs) as { records: unknown[] }).records));
    const dotdot = await postJson(`${mandate.url}/v1/authorize`, authorizeToken, { tool: CALL.tool, args: { path: '/srv/kb/../../etc/shadow' } });
    if ((JSON.parse(dotdot.text) as { effect: string }).effect === 'allow') throw new Error('/v1/authorize allowed a path with ..');
    const evaluationBody = { subject: { type: 'agent', id: AGENT, properties: { task_token: authzenToken } }, action: { name: CALL.tool }, resource: { type: 'tool', id: CALL.tool }, context: { args: CALL.args } };
    const e = await postJson(`${mandate.url}/access/v1/evaluation`, admin, evaluationBody);
    if (e.status !== 200 || (JSON.parse(e.text) as { decision: boolean }).decision !== true) throw new Error(`/access/v1/evaluation did not allow: ${e.status} ${e.text}`);

    const variant = variantConfig === undefined ? undefined : await startMandateServe({ cpus: pin?.server, configJson: variantConfig });
    if (variant) servers.push(variant);
    const baseline = baselineCli === undefined ? undefined : await startMandateServe({ cpus: pin?.server, cli: baselineCli });
    if (baseline) servers.push(baseline);
    // the other servers (a configuration, a checkout): their own tasks, at 50 connections and one call at a time
    const others: { name: string; what: string; server: ChildServer; token: string; seqToken: string }[] = [];
    for (const [name, what, server] of [
      ['variant', `mandate serve with ${JSON.stringify(variantConfig)}`, variant],
      ['baseline', `mandate serve from ${baselineDir ?? ''}`, baseline],
    ] as const) {
      if (server === undefined) continue;
      const token = await startTaskOver(server.url, server.admin, AGENT, MANDATE);
      const v = await postJson(`${server.url}/v1/authorize`, token, CALL);
      if (v.status !== 200 || (JSON.parse(v.text) as { effect: string }).effect !== 'allow') throw new Error(`the ${name}'s /v1/authorize did not allow: ${v.status} ${v.text}`);
      others.push({ name, what, server, token, seqToken: await startTaskOver(server.url, server.admin, AGENT, MANDATE) });
    }

    const raw = await startRawHttp({ cpus: pin?.server, body: a.text });
    servers.push(raw);

    const targets: { name: string; label: string; server: ChildServer; spec: Omit<LoadSpec, 'duration'> }[] = [
      { name: 'raw', label: 'raw node:http (child process): JSON parse + same answer bytes', server: raw, spec: { url: `${raw.url}/v1/authorize`, headers: { authorization: `Bearer ${authorizeToken}` }, body: JSON.stringify(CALL), connections: CONNECTIONS } },
      { name: 'authorize', label: 'mandate serve: POST /v1/authorize', server: mandate, spec: { url: `${mandate.url}/v1/authorize`, headers: { authorization: `Bearer ${authorizeToken}` }, body: JSON.stringify(CALL), connections: CONNECTIONS } },
      { name: 'authzen', label: 'mandate serve: POST /access/v1/evaluation', server: mandate, spec: { url: `${mandate.url}/access/v1/evaluation`, headers: { authorization: `Bearer ${admin}` }, body: JSON.stringify(evaluationBody), connections: CONNECTIONS } },
    ];
    for (const o of others) {
      targets.push({ name: `authorize_${o.name}`, label: `${o.what}: POST /v1/authorize`, server: o.server, spec: { url: `${o.server.url}/v1/authorize`, headers: { authorization: `Bearer ${o.token}` }, body: JSON.stringify(CALL), connections: CONNECTIONS } });
    }
    let cerbosSkipped: string | undefined;
    if ('bin' in cerbosBin) {
      const port = await freePort();
      const cerbos = await startCerbos({ bin: cerbosBin.bin, cpus: pin?.server, policies: { 'tool.yaml': CERBOS_POLICY }, port });
      servers.push(cerbos);
      const check = (path: string) => ({ requestId: 'bench', principal: { id: AGENT, roles: ['support'] }, resources: [{ actions: ['call'], resource: { kind: 'tool', id: CALL.tool, attr: { path } } }] });
      const verdict = async (path: string) => {
        const r = await postJson(`${cerbos.url}/api/check/resources`, '', check(path));
        return (JSON.parse(r.text) as { results: { actions: Record<string, string> }[] }).results[0]?.actions['call'];
      };
      if ((await verdict(CALL.args.path)) !== 'EFFECT_ALLOW') throw new Error('cerbos did not allow the benchmark call');
      if ((await verdict('/srv/kb/../../etc/shadow')) !== 'EFFECT_DENY') throw new Error('cerbos allowed a path with ..');
      targets.push({ name: 'cerbos', label: 'Cerbos (default config): POST /api/check/resources, same rule', server: cerbos, spec: { url: `${cerbos.url}/api/check/resources`, body: JSON.stringify(check(CALL.args.path)), connections: CONNECTIONS } });
    } else {
      cerbosSkipped = cerbosBin.reason;
      say(`  Cerbos row skipped: ${cerbosSkipped}`);
    }

    const loadArm = (t: (typeof targets)[number], connections: number, name = t.name, label = t.label): Arm => ({
      name,
      label,
      concurrency: connections,
      warmup: async () => {
        await runLoad({ ...t.spec, connections, duration: plan.warmupSeconds }, pin?.load);
      },
      measure: async () => {
        const c0 = processCpuUs(t.server.pid);
        const r = await runLoad({ ...t.spec, connections, duration: plan.seconds }, pin?.load);
        return fromAutocannon(r, processCpuUs(t.server.pid) - c0);
      },
    });

    // one call at a time (each timed, µs resolution), and the disk's own commit of the same bytes, on the server's disk
    const sequentialArm = (name: string, what: string, server: ChildServer, token: string): Arm => {
      const seqSpec = { url: `${server.url}/v1/authorize`, headers: { authorization: `Bearer ${token}` }, body: JSON.stringify(CALL) };
      return {
        name,
        label: `${what}: POST /v1/authorize, one call at a time (one keep-alive connection)`,
        concurrency: 1,
        warmup: async () => void (await runSequential({ ...seqSpec, duration: plan.warmupSeconds }, pin?.load)),
        measure: async () => {
          const c0 = processCpuUs(server.pid);
          const r = await runSequential({ ...seqSpec, duration: plan.seconds }, pin?.load);
          return { ops: r.samples.length, elapsedMs: r.elapsedMs, samples: r.samples, cpuUs: processCpuUs(server.pid) - c0, extra: { non2xx: r.non2xx, errors: r.errors } };
        },
      };
    };
    const sequential = sequentialArm('authorize_c1', 'mandate serve', mandate, seqToken);
    const payload = Buffer.alloc(recordBytes, 0x61);
    const fsyncFile = openSync(join(mandate.dir, 'fsync-probe.bin'), 'w');
    let offset = 0;
    const disk = new DatabaseSync(join(mandate.dir, 'commit-probe.db'));
    disk.exec('PRAGMA journal_mode = WAL');
    disk.exec('PRAGMA synchronous = FULL');
    disk.exec('CREATE TABLE probe (seq INTEGER PRIMARY KEY, data BLOB NOT NULL)');
    const insert = disk.prepare('INSERT INTO probe (data) VALUES (?)');
    const arms: Arm[] = [
      ...targets.map((t) => loadArm(t, CONNECTIONS)),
      sequential,
      // the HTTP round trip's own floor, one call at a time: the same client and connection, the raw server
      sequentialArm('raw_c1', 'raw node:http', raw, seqToken),
      ...others.map((o) => sequentialArm(`authorize_c1_${o.name}`, o.what, o.server, o.seqToken)),
      {
        name: 'fsync',
        label: `disk: write ${recordBytes} B + fdatasync (the decision's audit bytes)`,
        concurrency: 1,
        warmup: () => void timeSyncCpu(() => (writeSync(fsyncFile, payload, 0, payload.length, (offset += payload.length)), fdatasyncSync(fsyncFile)), 10),
        measure: () => timeSyncCpu(() => (writeSync(fsyncFile, payload, 0, payload.length, (offset += payload.length)), fdatasyncSync(fsyncFile)), plan.commits),
      },
      {
        name: 'sqlite_commit',
        label: `disk: one-row SQLite commit of ${recordBytes} B, WAL, synchronous=FULL`,
        concurrency: 1,
        warmup: () => void timeSyncCpu(() => insert.run(payload), 10),
        measure: () => timeSyncCpu(() => insert.run(payload), plan.commits),
      },
    ];
    say(`http benchmark: ${plan.rounds} interleaved rounds of ${plan.seconds} s per target (${plan.warmupSeconds} s warm-up each), autocannon in a child process, ${CONNECTIONS} connections; ${pin ? `servers pinned to cpu ${pin.server}, load generator to cpu ${pin.load}` : 'nothing pinned (no core to spare)'}; ${args.quick ? 'quick' : 'full'} run`);
    const run = await interleave(arms, { rounds: plan.rounds, say });
    // the resident memory each mandate server peaked at over the whole run (what a heap setting costs)
    const peakRss = (pid: number): number => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? Number.NaN) / 1024;
    const peaks: Record<string, number> = { 'peak RSS MiB (VmHWM): mandate serve': peakRss(mandate.pid) };
    for (const o of others) peaks[`peak RSS MiB (VmHWM): ${o.name}`] = peakRss(o.server.pid);
    closeSync(fsyncFile);
    disk.close();

    const failures = Object.values(run.arms).reduce((t, a) => t + a.rounds.reduce((u, s) => u + (s.extra?.['non2xx'] ?? 0) + (s.extra?.['errors'] ?? 0) + (s.extra?.['timeouts'] ?? 0), 0), 0);
    // a refused request is cheaper than a decision: any failure would flatter the figures
    if (failures > 0) throw new Error(`${failures} requests failed (non-2xx, errors or timeouts): the figures would not be of decisions`);
    const share = ratio(run, 'authorize', 'raw', metrics.opsPerSec);
    const cpuShare = ratio(run, 'authorize', 'raw', metrics.perCore);
    const p99 = of(run, 'authorize', metrics.p99);
    const seqOverDisk = difference(run, 'authorize_c1', 'fsync', metrics.p99);
    const seqOverCommit = difference(run, 'authorize_c1', 'sqlite_commit', metrics.p99);
    const seqOverRaw = difference(run, 'authorize_c1', 'raw_c1', metrics.p99);
    const rawSeqOverDisk = difference(run, 'raw_c1', 'fsync', metrics.p99);
    const derived: Record<string, number> = {
      'failed requests (non-2xx, errors, timeouts; all targets)': failures,
      'audit bytes per decision (the disk floor\u2019s write)': recordBytes,
      ...peaks,
      ...spreadEntries('throughput ratio /v1/authorize / raw', share),
      ...spreadEntries('per-core ratio /v1/authorize / raw (CPU time)', cpuShare),
      ...spreadEntries('throughput ratio /access/v1/evaluation / raw', ratio(run, 'authzen', 'raw', metrics.opsPerSec)),
      ...spreadEntries('/v1/authorize p99 ms at 50 connections', p99),
      ...spreadEntries('/v1/authorize CPU us per request', of(run, 'authorize', metrics.cpuUsPerOp)),
      ...spreadEntries('raw CPU us per request', of(run, 'raw', metrics.cpuUsPerOp)),
      ...spreadEntries('one at a time: /v1/authorize p99 ms', of(run, 'authorize_c1', metrics.p99)),
      // a call alone shares no batch, sync, wake-up or loop turn with another: its CPU, beside the CPU at 50 connections
      ...spreadEntries('one at a time: /v1/authorize CPU us per call', of(run, 'authorize_c1', metrics.cpuUsPerOp)),
      ...spreadEntries('one at a time: raw node:http CPU us per call', of(run, 'raw_c1', metrics.cpuUsPerOp)),
      ...spreadEntries('one at a time: disk fsync p99 ms', of(run, 'fsync', metrics.p99)),
      ...spreadEntries('one at a time: sqlite commit p99 ms', of(run, 'sqlite_commit', metrics.p99)),
      ...spreadEntries('one at a time: p99 /v1/authorize - fsync p99 (ms)', seqOverDisk),
      ...spreadEntries('one at a time: p99 /v1/authorize - sqlite commit p99 (ms)', seqOverCommit),
      ...spreadEntries('one at a time: raw node:http p50 ms (the round trip alone)', of(run, 'raw_c1', metrics.p50)),
      ...spreadEntries('one at a time: raw node:http p99 ms (the round trip alone)', of(run, 'raw_c1', metrics.p99)),
      ...spreadEntries('one at a time: raw node:http p99 - fsync p99 (ms)', rawSeqOverDisk),
      ...spreadEntries('one at a time: p99 /v1/authorize - raw node:http p99 (ms)', seqOverRaw),
      [`p99 at ${CONNECTIONS} connections <= ${P99_TARGET_MS} ms`]: p99.median <= P99_TARGET_MS ? 1 : 0,
      [`one at a time: p99 <= fsync p99 + ${SEQUENTIAL_SLACK_MS} ms`]: seqOverDisk.median <= SEQUENTIAL_SLACK_MS ? 1 : 0,
    };
    for (const o of others) {
      const n = o.name;
      Object.assign(derived, spreadEntries(`throughput ratio ${n} / this`, ratio(run, `authorize_${n}`, 'authorize', metrics.opsPerSec)));
      Object.assign(derived, spreadEntries(`${n} p99 ms at 50 connections`, of(run, `authorize_${n}`, metrics.p99)));
      Object.assign(derived, spreadEntries(`${n} CPU us per request`, of(run, `authorize_${n}`, metrics.cpuUsPerOp)));
      Object.assign(derived, spreadEntries(`one at a time: ${n} p99 ms`, of(run, `authorize_c1_${n}`, metrics.p99)));
      Object.assign(derived, spreadEntries(`one at a time: ${n} CPU us per call`, of(run, `authorize_c1_${n}`, metrics.cpuUsPerOp)));
      Object.assign(derived, spreadEntries(`one at a time: p99 this - ${n} (ms)`, difference(run, 'authorize_c1', `authorize_c1_${n}`, metrics.p99)));
      Object.assign(derived, spreadEntries(`one at a time: p50 this - ${n} (ms)`, difference(run, 'authorize_c1', `authorize_c1_${n}`, metrics.p50)));
      Object.assign(derived, spreadEntries(`one at a time: ${n} p99 - fsync p99 (ms)`, difference(run, `authorize_c1_${n}`, 'fsync', metrics.p99)));
    }
    if (run.arms['cerbos']) {
      Object.assign(derived, spreadEntries('throughput ratio /v1/authorize / cerbos', ratio(run, 'authorize', 'cerbos', metrics.opsPerSec)));
      Object.assign(derived, spreadEntries('per-core ratio /v1/authorize / cerbos (CPU time)', ratio(run, 'authorize', 'cerbos', metrics.perCore)));
      Object.assign(derived, spreadEntries('cerbos p99 ms at 50 connections', of(run, 'cerbos', metrics.p99)));
    }
    const result: BenchResult = {
      ...newResult(
        {
          name: 'http',
          title: 'HTTP decisions: mandate serve (shipped defaults) vs raw node:http and Cerbos, load generator out of process',
          mode: args.quick ? 'quick' : 'full',
          params: {
            ...runParams(run),
            loadGenerator: 'autocannon in a child process',
            pinning: pin ?? 'none (fewer than 2 cores or no taskset)',
            connections: CONNECTIONS,
            seconds: plan.seconds,
            warmupSeconds: plan.warmupSeconds,
            host: '127.0.0.1',
            server: 'mandate serve, shipped defaults (log level info to a file, SQLite WAL, durability full, group commit), examples/policies, --dev-issuer',
            call: CALL,
            mandate: MANDATE.tools,
            ...(variantConfig === undefined ? {} : { variant: variantConfig }),
            ...(baselineDir === undefined ? {} : { baseline: baselineDir }),
            cerbos: 'bin' in cerbosBin ? cerbosBin.bin : `skipped: ${cerbosSkipped ?? ''}`,
            responseBytes: Buffer.byteLength(a.text),
          },
        },
        start,
      ),
      figures: armFigures(run),
      derived,
      target: {
        description: `POST /v1/authorize at shipped defaults >= ${SHARE_TARGET * 100} % of raw node:http's requests/s, ${CONNECTIONS} connections (median of ${plan.rounds} interleaved rounds)`,
        metric: 'throughput ratio /v1/authorize / raw (median)',
        required: SHARE_TARGET,
        actual: share.median,
        met: share.median >= SHARE_TARGET,
      },
      notes: [
        `throughput /v1/authorize / raw: ${fmtSpread(share)}; per core (server CPU time per request, from /proc): ${fmtSpread(cpuShare)}; p99 at ${CONNECTIONS} connections ${fmtSpread(p99)} ms`,
        `one at a time: /v1/authorize p99 minus the fsync p99 ${fmtSpread(seqOverDisk, 3)} ms; minus the SQLite commit p99 ${fmtSpread(seqOverCommit, 3)} ms; minus raw node:http's p99 one call at a time (the round trip with no work and no disk) ${fmtSpread(seqOverRaw, 3)} ms, whose own p99 is ${fmtSpread(rawSeqOverDisk, 3)} ms over the fsync p99`,
        'every target runs in each round, the order rotated every round; ratios are taken within a round: median [min–max] of the rounds',
        'latencies and counts from autocannon (its histogram, ms); ops/s = completed requests / duration; CPU = utime + stime of the server process (every thread) over the round',
        'raw = node:http in its own process reading the body, JSON.parse, answering /v1/authorize\u2019s captured body (same bytes): the floor of any JSON-over-HTTP PDP here',
        'every allowed Mandate call is durably audited (synchronous=FULL, group commit) before it is answered, and logged at info',
        ...(cerbosSkipped === undefined ? ['Cerbos: default configuration (its audit off), the same rule as a resource policy: role support, resource fs.read_file, path prefix /srv/kb/, `..` refused'] : [`Cerbos row skipped: ${cerbosSkipped}`]),
      ],
    };
    return emitResult(result, args, say);
  } finally {
    for (const s of servers.reverse()) await s.stop().catch(() => undefined);
  }
}

if (import.meta.main) {
  await runHttpBenchmark(process.argv.slice(2));
}
