/**
 * Smoke tests: the benchmarks still run and write their results. No timing assertions here:
 * the numbers depend on the machine; only their shape is checked.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_HEAP_SETTINGS, heapFlags } from '@mandate/server';
import { armFigure, interleave, metrics, ratio, rotation, spread, timeSyncCpu, type Arm } from './lib/interleave.ts';
import { machineSlug, publishResult, type BenchResult } from './lib/report.ts';
import { percentile, summarize } from './lib/stats.ts';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..');
const out = mkdtempSync(join(tmpdir(), 'mandate-bench-test-'));

afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('stats', () => {
  it('uses nearest-rank percentiles', () => {
    const xs = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(xs, 50)).toBe(50);
    expect(percentile(xs, 99)).toBe(99);
    expect(percentile(xs, 100)).toBe(100);
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([], 50)).toBeNaN();
  });

  it('summarises unsorted samples', () => {
    expect(summarize([3, 1, 2])).toEqual({ runs: 3, p50: 2, p99: 3, min: 1, max: 3, mean: 2 });
  });
});

describe('interleaving runner', () => {
  it('rotates the order so every part of the list leads a round', () => {
    expect(rotation(['a', 'b'], 0, 3)).toEqual(['a', 'b']);
    expect(rotation(['a', 'b'], 1, 3)).toEqual(['b', 'a']);
    expect(rotation(['a', 'b'], 2, 3)).toEqual(['a', 'b']);
    expect(rotation(['a', 'b', 'c'], 1, 3)).toEqual(['b', 'c', 'a']);
    expect(rotation(['a', 'b', 'c', 'd', 'e', 'f'], 1, 3)).toEqual(['c', 'd', 'e', 'f', 'a', 'b']);
  });

  it('gives the median and range of per-round values', () => {
    expect(spread([3, 1, 2])).toEqual({ median: 2, min: 1, max: 3, rounds: [3, 1, 2] });
    expect(spread([4, 1, 2, 3]).median).toBe(2.5);
  });

  it('runs tiny rounds of real work on both sides, warms both up, and takes ratios within each round', async () => {
    const warmed: string[] = [];
    const work = (n: number) => () => {
      let x = 0;
      for (let i = 0; i < n; i++) x += Math.sqrt(i);
      return x;
    };
    const arms: Arm[] = [
      { name: 'floor', label: 'floor', concurrency: 1, warmup: () => void warmed.push('floor'), measure: () => timeSyncCpu(work(100), 20) },
      { name: 'target', label: 'target', concurrency: 1, warmup: () => void warmed.push('target'), measure: () => timeSyncCpu(work(1000), 20) },
    ];
    const run = await interleave(arms, { rounds: 3 });
    expect(warmed).toEqual(['floor', 'target']);
    expect(run.order).toEqual([['floor', 'target'], ['target', 'floor'], ['floor', 'target']]);
    expect(run.load.before.loadavg).toHaveLength(3);
    expect(run.load.after.loadavg).toHaveLength(3);
    for (const a of Object.values(run.arms)) {
      expect(a.rounds).toHaveLength(3);
      for (const r of a.rounds) {
        expect(r.ops).toBe(20);
        expect(r.samples).toHaveLength(20);
        expect(r.cpuUs).toBeGreaterThanOrEqual(0);
      }
    }
    const r = ratio(run, 'target', 'floor', metrics.opsPerSec);
    expect(r.rounds).toHaveLength(3);
    expect(r.min).toBeLessThanOrEqual(r.median);
    expect(r.median).toBeLessThanOrEqual(r.max);
    expect(armFigure(run, 'target')).toMatchObject({ label: 'target', runs: 60, concurrency: 1 });
  });

  it('refuses an arm that completed nothing', async () => {
    await expect(interleave([{ name: 'none', label: 'none', concurrency: 1, measure: () => ({ ops: 0, elapsedMs: 1 }) }], { rounds: 3 })).rejects.toThrow(/completed no operation/);
  });
});

describe('published results', () => {
  it('names the file by date and machine and keeps each benchmark\'s last result of the day', () => {
    const m = { cpu: 'AMD EPYC 7B13 64-Core Processor', cores: 2, memoryGiB: 8, platform: 'linux', arch: 'x64', kernel: '6', node: 'v24', v8: '13', loadavg: [1, 1, 1] };
    expect(machineSlug(m)).toBe('2cpu-amd-epyc-7b13-64-core');
    const dir = mkdtempSync(join(tmpdir(), 'mandate-bench-publish-'));
    try {
      const base = { title: 't', timestamp: '2026-12-06T04:00:00.000Z', machine: m, node: 'v24', commit: null, dirty: null, mode: 'full' as const, params: {}, figures: {}, derived: {} };
      const file = publishResult({ ...base, name: 'http', derived: { x: 1 } }, dir);
      expect(file).toBe(join(dir, '2026-12-06-2cpu-amd-epyc-7b13-64-core.json'));
      publishResult({ ...base, name: 'audit' }, dir);
      publishResult({ ...base, name: 'http', derived: { x: 2 } }, dir);
      const published = JSON.parse(readFileSync(file, 'utf8')) as { machine: { slug: string; cores: number }; results: Record<string, BenchResult> };
      expect(published.machine).toMatchObject({ slug: '2cpu-amd-epyc-7b13-64-core', cores: 2 });
      expect(Object.keys(published.results).sort()).toEqual(['audit', 'http']);
      expect(published.results['http']?.derived).toEqual({ x: 2 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('decision benchmark', () => {
  it('completes a quick run and writes its JSON result', { timeout: 120_000 }, async () => {
    const { stdout } = await run(process.execPath, ['bench/decision.ts', '--quick', '--json-only', '--out', out], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 });
    const written = JSON.parse(readFileSync(join(out, 'decision.json'), 'utf8')) as BenchResult;
    const printed = JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as BenchResult;
    expect(printed).toEqual(written);

    expect(written).toMatchObject({ name: 'decision', mode: 'quick', node: process.version });
    // timed under the heap mandate serve runs with (started again with its flags), not V8's defaults
    expect(written.params['v8_heap']).toEqual({ heap: 'shipped', flags: expect.arrayContaining(heapFlags(DEFAULT_HEAP_SETTINGS)) });
    for (const key of ['timestamp', 'machine', 'commit', 'dirty', 'params', 'figures', 'derived', 'target']) expect(written).toHaveProperty(key);
    expect(written.machine).toEqual(expect.objectContaining({ cpu: expect.any(String), cores: expect.any(Number), node: process.version }));
    expect(Object.keys(written.figures).sort()).toEqual([
      'detectors', 'dpop_verify', 'pipeline_c1', 'pipeline_c128', 'pipeline_c128_behaviour', 'pipeline_c128_normal', 'pipeline_c1_behaviour', 'pipeline_c1_dpop', 'pipeline_c1_normal', 'pipeline_c32', 'raw_plain', 'raw_stateful', 'sqlite_commit',
    ]);
    for (const f of Object.values(written.figures)) {
      for (const k of ['p50', 'p99', 'min', 'max', 'mean', 'opsPerSec', 'elapsedMs'] as const) expect(Number.isFinite(f[k])).toBe(true);
      expect(f.runs).toBeGreaterThan(0);
      expect(f.min).toBeLessThanOrEqual(f.p50);
      expect(f.p50).toBeLessThanOrEqual(f.p99);
      expect(f.p99).toBeLessThanOrEqual(f.max);
    }
    expect(written.figures['pipeline_c32']?.concurrency).toBe(32);
    expect(written.figures['pipeline_c128']?.concurrency).toBe(128);
    expect(written.derived['decisions per core-second (durability full)']).toBeGreaterThan(0);
    expect(written.params).toMatchObject({ policies: 52, durability: 'full', group_commit: true });
    expect(written.target).toEqual(expect.objectContaining({ required: expect.any(Number), actual: expect.any(Number), met: expect.any(Boolean) }));
  });
});

describe('pipeline benchmark', () => {
  it('completes a quick run (detectors and audit on, 50/500 policies, 100/10,000 entities) and writes its JSON result', { timeout: 300_000 }, async () => {
    await run(process.execPath, ['bench/pipeline.ts', '--quick', '--json-only', '--out', out], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 });
    const written = JSON.parse(readFileSync(join(out, 'pipeline.json'), 'utf8')) as BenchResult;
    expect(written).toMatchObject({ name: 'pipeline', mode: 'quick' });
    expect(written.params['v8_heap']).toEqual({ heap: 'shipped', flags: expect.arrayContaining(heapFlags(DEFAULT_HEAP_SETTINGS)) });
    expect(Object.keys(written.figures)).toHaveLength(16);
    expect(written.params['policies_written']).toEqual({ p50_e100: 52, p50_e10000: 52, p500_e100: 502, p500_e10000: 502 });
    for (const k of ['p50_e100', 'p50_e10000', 'p500_e100', 'p500_e10000']) expect(written.derived[`${k}: pipeline decisions per core-second`]).toBeGreaterThan(0);
  });
});

describe('policy-engine benchmark', () => {
  it('completes a quick run (compiled vs cedar-wasm, 50/500 policies, 100/10,000 entities) and writes its JSON result', { timeout: 300_000 }, async () => {
    await run(process.execPath, ['bench/policy-engine.ts', '--quick', '--json-only', '--out', out], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 });
    const written = JSON.parse(readFileSync(join(out, 'policy-engine.json'), 'utf8')) as BenchResult;
    expect(written).toMatchObject({ name: 'policy-engine', mode: 'quick' });
    expect(written.params['v8_heap']).toEqual({ heap: 'shipped', flags: expect.arrayContaining(heapFlags(DEFAULT_HEAP_SETTINGS)) });
    expect(Object.keys(written.figures)).toHaveLength(12);
  });
});

describe('kill benchmark', () => {
  // it ends with three nodes on PostgreSQL: starting them on a busy machine can take minutes
  it('completes a quick run and writes its JSON results', { timeout: 420_000 }, async () => {
    await run(process.execPath, ['bench/kill.ts', '--quick', '--json-only', '--out', out], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 });
    const written = JSON.parse(readFileSync(join(out, 'kill.json'), 'utf8')) as BenchResult;
    expect(written).toMatchObject({ name: 'kill', mode: 'quick' });
    expect(Object.keys(written.figures).sort()).toEqual(['killAnswer', 'toFirstDeny']);
    expect(written.figures['toFirstDeny']?.runs).toBe(5);
    const inflight = JSON.parse(readFileSync(join(out, 'kill-inflight.json'), 'utf8')) as BenchResult;
    expect(inflight.figures['toUpstreamCancelled']?.runs).toBe(5);
    const cluster = JSON.parse(readFileSync(join(out, 'kill-inflight-cluster.json'), 'utf8')) as BenchResult;
    expect(Object.keys(cluster.figures).sort()).toEqual(['killAnswered', 'toClientAnswered', 'toHalted', 'toHookReceived', 'toUpstreamCancelled']);
    expect(cluster.figures['toUpstreamCancelled']?.runs).toBe(5);
    expect(cluster.target).toEqual(expect.objectContaining({ required: 250, met: expect.any(Boolean) }));
  });
});

describe('cluster benchmark', () => {
  // starting three nodes on a busy machine can take minutes; the harness waits on readiness, not a guess
  it('completes a quick run over three nodes and writes its JSON result', { timeout: 420_000 }, async () => {
    await run(process.execPath, ['bench/cluster.ts', '--quick', '--json-only', '--out', out], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 });
    const written = JSON.parse(readFileSync(join(out, 'cluster.json'), 'utf8')) as BenchResult;
    expect(written).toMatchObject({ name: 'cluster', mode: 'quick' });
    expect(Object.keys(written.figures).sort()).toEqual(['oneNode', 'propagation', 'threeNodes']);
    expect(written.figures['propagation']?.runs).toBe(5);
    expect(written.target).toEqual(expect.objectContaining({ required: 50, met: expect.any(Boolean) }));
  });
});

describe('http benchmark', () => {
  it('completes a quick run over real sockets with no failed requests', { timeout: 120_000 }, async () => {
    await run(process.execPath, ['bench/http.ts', '--quick', '--json-only', '--out', out], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 });
    const written = JSON.parse(readFileSync(join(out, 'http.json'), 'utf8')) as BenchResult;
    expect(written).toMatchObject({ name: 'http', mode: 'quick', params: { connections: 50, rounds: 3 } });
    const keys = Object.keys(written.figures).sort();
    // the Cerbos row runs only where a Cerbos binary is installed, and says why not otherwise
    expect(keys.filter((k) => k !== 'cerbos')).toEqual(['authorize', 'authorize_c1', 'authzen', 'fsync', 'raw', 'raw_c1', 'sqlite_commit']);
    if (!keys.includes('cerbos')) expect(String(written.params['cerbos'])).toMatch(/^skipped: /);
    for (const f of Object.values(written.figures)) expect(f.runs).toBeGreaterThan(0);
    expect(written.derived['failed requests (non-2xx, errors, timeouts; all targets)']).toBe(0);
    for (const k of ['throughput ratio /v1/authorize / raw', 'per-core ratio /v1/authorize / raw (CPU time)', '/v1/authorize p99 ms at 50 connections', 'one at a time: p99 /v1/authorize - fsync p99 (ms)', 'one at a time: p99 /v1/authorize - raw node:http p99 (ms)', 'one at a time: raw node:http p99 - fsync p99 (ms)', 'one at a time: /v1/authorize CPU us per call', 'one at a time: raw node:http CPU us per call']) {
      expect(Number.isFinite(written.derived[k])).toBe(true);
      expect(written.derived[`${k} min`]).toBeLessThanOrEqual(written.derived[k] as number);
      expect(written.derived[`${k} max`]).toBeGreaterThanOrEqual(written.derived[k] as number);
    }
    // uptime before and after, and the rotated order of every round
    expect(written.params['load_before']).toEqual(expect.objectContaining({ loadavg: expect.any(Array) }));
    expect(written.params['load_after']).toEqual(expect.objectContaining({ loadavg: expect.any(Array) }));
    const order = written.params['order'] as string[][];
    expect(order).toHaveLength(3);
    expect(new Set(order.map((r) => r[0])).size).toBe(3);
    expect(written.derived['peak RSS MiB (VmHWM): mandate serve']).toBeGreaterThan(0);
  });

  it('times a server from another checkout (--baseline) in the same rounds, at 50 connections and one call at a time', { timeout: 240_000 }, async () => {
    const dir = join(out, 'baseline');
    await run(process.execPath, ['bench/http.ts', '--quick', '--json-only', '--out', dir, '--baseline', ROOT], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 });
    const written = JSON.parse(readFileSync(join(dir, 'http.json'), 'utf8')) as BenchResult;
    expect(written.params['baseline']).toBe(ROOT);
    expect(Object.keys(written.figures)).toEqual(expect.arrayContaining(['authorize_baseline', 'authorize_c1_baseline']));
    expect(written.derived['failed requests (non-2xx, errors, timeouts; all targets)']).toBe(0);
    for (const k of ['throughput ratio baseline / this', 'one at a time: p99 this - baseline (ms)', 'one at a time: baseline CPU us per call', 'peak RSS MiB (VmHWM): baseline']) expect(Number.isFinite(written.derived[k])).toBe(true);
  });
});

describe('audit benchmark', () => {
  it('completes a quick run and writes its JSON result', { timeout: 120_000 }, async () => {
    await run(process.execPath, ['bench/audit.ts', '--quick', '--json-only', '--out', out], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 });
    const written = JSON.parse(readFileSync(join(out, 'audit.json'), 'utf8')) as BenchResult;
    expect(written).toMatchObject({ name: 'audit', mode: 'quick', params: { durability: 'full', group_commit: true } });
    expect(written.params['v8_heap']).toEqual({ heap: 'shipped', flags: expect.arrayContaining(heapFlags(DEFAULT_HEAP_SETTINGS)) });
    expect(Object.keys(written.figures).sort()).toEqual(['append_c1', 'append_c32', 'raw_tx', 'sqlite_commit']);
    expect(written.figures['append_c32']?.concurrency).toBe(32);
    for (const k of ['records/s append c1', 'records/s append c32', 'records/s raw INSERT, one tx (floor)', 'ratio append c32 / raw INSERT']) expect(Number.isFinite(written.derived[k])).toBe(true);
  });
});

describe('tokens benchmark', () => {
  it('completes a quick run and writes its JSON result', { timeout: 120_000 }, async () => {
    await run(process.execPath, ['bench/tokens.ts', '--quick', '--json-only', '--out', out], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 });
    const written = JSON.parse(readFileSync(join(out, 'tokens.json'), 'utf8')) as BenchResult;
    expect(written).toMatchObject({ name: 'tokens', mode: 'quick' });
    expect(written.params['v8_heap']).toEqual({ heap: 'shipped', flags: expect.arrayContaining(heapFlags(DEFAULT_HEAP_SETTINGS)) });
    expect(Object.keys(written.figures).sort()).toEqual(['mint', 'raw_sign', 'raw_verify', 'start_c1', 'start_c32', 'verify_cached', 'verify_first']);
    for (const k of ['tasks/s start c1', 'ratio verify first-seen / raw verify', 'ratio verify cached / raw verify']) expect(Number.isFinite(written.derived[k])).toBe(true);
  });
});

describe('regex benchmark', () => {
  it('completes a quick run and writes its JSON result', { timeout: 120_000 }, async () => {
    await run(process.execPath, ['bench/regex.ts', '--quick', '--json-only', '--out', out], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 });
    const written = JSON.parse(readFileSync(join(out, 'regex.json'), 'utf8')) as BenchResult;
    expect(written).toMatchObject({ name: 'regex', mode: 'quick' });
    expect(Object.keys(written.figures)).toContain('redos_nested_plus');
    expect(Object.keys(written.figures)).toContain('hostile_k400');
    expect(Number.isFinite(written.derived['worst ns per work unit'])).toBe(true);
  });
});

describe('hostile-bodies benchmark', () => {
  it('completes a quick run and writes its JSON result', { timeout: 120_000 }, async () => {
    await run(process.execPath, ['bench/hostile-bodies.ts', '--quick', '--json-only', '--out', out], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 });
    const written = JSON.parse(readFileSync(join(out, 'hostile-bodies.json'), 'utf8')) as BenchResult;
    expect(written).toMatchObject({ name: 'hostile-bodies', mode: 'quick', params: { runs: 3 } });
    expect(Object.keys(written.figures)).toHaveLength(11);
    expect(written.target).toMatchObject({ metric: 'ratio worst refused / valid', required: 1, comparison: '<=' });
  });
});

describe('startup benchmark', () => {
  it('completes a quick run and writes its JSON result', { timeout: 600_000 }, async () => {
    await run(process.execPath, ['bench/startup.ts', '--quick', '--json-only', '--out', out], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 });
    const written = JSON.parse(readFileSync(join(out, 'startup.json'), 'utf8')) as BenchResult;
    expect(written).toMatchObject({ name: 'startup', mode: 'quick', params: { runs: 3 } });
    expect(Object.keys(written.figures).sort()).toEqual(['help', 'help_no_cache', 'node', 'serve', 'serve_no_cache']);
    for (const f of Object.values(written.figures)) expect(f.runs).toBe(3);
    expect(written.target).toMatchObject({ metric: 'serve ready p50 ms', required: 1500, comparison: '<=' });
  });
});

describe('soak', () => {
  it('completes a quick run over HTTP and the MCP gateway: no errors but policy decisions, no lost audit records, RSS reported', { timeout: 120_000 }, async () => {
    await run(process.execPath, ['bench/soak.ts', '--quick', '--json-only', '--out', out], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 });
    const written = JSON.parse(readFileSync(join(out, 'soak.json'), 'utf8')) as BenchResult;
    expect(written).toMatchObject({ name: 'soak', mode: 'quick' });
    expect(written.derived).toMatchObject({ errors_not_policy: 0, lost_audit_records: 0, audit_verified: 1 });
    expect(written.derived['requests']).toBeGreaterThan(0);
    expect(Number.isFinite(written.derived['rss_growth_mb'])).toBe(true);
    // the MCP gateway, driven in the same run: allowed echoes and denials, none lost
    expect(written.derived).toMatchObject({ gateway_errors_not_policy: 0, gateway_lost_audit_records: 0, gateway_lost_outcome_records: 0, gateway_unexplained_audit_records: 0 });
    expect(written.derived['gateway_allowed']).toBeGreaterThan(0);
    expect(written.derived['gateway_denied']).toBeGreaterThan(0);
    expect(written.derived['gateway_requests']).toBe((written.derived['gateway_allowed'] ?? 0) + (written.derived['gateway_denied'] ?? 0));
    for (const k of ['gateway_p50_ms', 'gateway_p99_ms']) expect(Number.isFinite(written.derived[k])).toBe(true);
    expect(Object.keys(written.figures).sort()).toEqual(['authorize', 'gateway_denied', 'gateway_echo']);
    expect(written.figures['gateway_echo']?.runs).toBeGreaterThan(0);
  });
});

describe('soak over many tasks', () => {
  it('completes a quick run: every answer a policy decision, RSS sampled through the run with its breakdown', { timeout: 300_000 }, async () => {
    await run(process.execPath, ['bench/soak.ts', '--tasks', '--quick', '--json-only', '--out', out], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 });
    const written = JSON.parse(readFileSync(join(out, 'soak-tasks.json'), 'utf8')) as BenchResult;
    expect(written).toMatchObject({ name: 'soak-tasks', mode: 'quick', params: { tasks: 200, decisions: 4000 } });
    expect(written.derived).toMatchObject({ decisions: 4000, errors_not_policy: 0 });
    for (const k of ['rss_idle_mb', 'rss_after_tasks_mb', 'rss_end_mb', 'rss_peak_mb']) expect(written.derived[k]).toBeGreaterThan(0);
    expect(written.notes?.[0]).toMatch(/^resident memory by kind/);
  });
});

describe('audit verify benchmark', () => {
  it('completes a quick run: the CLI verifies both logs intact, records/s and peak RSS per size, the RSS ratio as its target', { timeout: 300_000 }, async () => {
    await run(process.execPath, ['bench/audit-verify.ts', '--quick', '--json-only', '--out', out], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 });
    const written = JSON.parse(readFileSync(join(out, 'audit-verify.json'), 'utf8')) as BenchResult;
    expect(written).toMatchObject({ name: 'audit-verify', mode: 'quick', params: { sizes: [2000, 20_000] } });
    for (const n of [2000, 20_000]) {
      expect(written.derived[`records/s CPU, ${n} records`]).toBeGreaterThan(0);
      expect(written.derived[`peak RSS MB, ${n} records`]).toBeGreaterThan(0);
    }
    expect(written.target).toMatchObject({ metric: 'peak RSS ratio largest / smallest', required: 1.15, comparison: '<=' });
    expect(written.notes?.[0]).toMatch(/^rate target: >= 200k records\/s/);
  });
});

describe('behaviour memory benchmark', () => {
  it('completes a quick run through the real monitor: a remembered call costs tens of bytes, not the hundreds a call object did', { timeout: 300_000 }, async () => {
    await run(process.execPath, ['bench/behaviour-memory.ts', '--quick', '--json-only', '--out', out], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 });
    const written = JSON.parse(readFileSync(join(out, 'behaviour-memory.json'), 'utf8')) as BenchResult;
    expect(written).toMatchObject({ name: 'behaviour-memory', mode: 'quick', params: { tasks: 1000, calls_few: 10, calls_many: 100 } });
    const perCall = written.derived['bytes per remembered call'] as number;
    expect(perCall).toBeGreaterThan(0);
    // 20 B a slot, up to twice that while a task's arrays grow; a kept call object cost ~500 B
    expect(perCall).toBeLessThan(100);
    expect(written.derived['bytes per task scope besides its calls']).toBeGreaterThan(0);
  });
});

describe('cache memory benchmark', () => {
  it('completes a quick run through the real classes: a pending outcome costs well under the ~310 B a call object under a concatenated key did', { timeout: 300_000 }, async () => {
    await run(process.execPath, ['bench/cache-memory.ts', '--quick', '--json-only', '--out', out], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 });
    const written = JSON.parse(readFileSync(join(out, 'cache-memory.json'), 'utf8')) as BenchResult;
    expect(written).toMatchObject({ name: 'cache-memory', mode: 'quick', params: { entries: 10_000, rounds: 1 } });
    for (const key of ['bytes per token id (cache.revocations)', 'bytes per task × tool counter (cache.budgets)', 'bytes per allowed call awaiting its outcome (limits.pending_outcomes)']) {
      expect(written.derived[key]).toBeGreaterThan(0);
      // within what heap-budget.ts charges, with room for a small fill's noise
      expect(written.derived[key]).toBeLessThan(250);
    }
    expect(written.derived['bytes per allowed call awaiting its outcome (limits.pending_outcomes)']).toBeLessThan(200);
    expect(written.derived['bytes per character of tool results kept for provenance (limits.provenance_chars_per_task)']).toBeGreaterThan(1);
    expect(written.derived['bytes per task end remembered (cache.task_ends)']).toBeLessThan(400);
  });
});

describe('gateway benchmark', () => {
  it('completes a quick run and writes its JSON result', { timeout: 300_000 }, async () => {
    await run(process.execPath, ['bench/gateway.ts', '--quick', '--json-only', '--out', out], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 });
    const written = JSON.parse(readFileSync(join(out, 'gateway.json'), 'utf8')) as BenchResult;
    expect(written).toMatchObject({ name: 'gateway', mode: 'quick' });
    expect(Object.keys(written.figures).sort()).toEqual(['direct_http', 'direct_stdio', 'gateway_http', 'gateway_stdio_relay', 'open_direct_http', 'open_gateway_http']);
    for (const k of ['added p50 ms (http) median of rounds', 'added p99 ms (http) max round', 'added p50 ms (stdio relay) median of rounds', 'added p50 ms (session open) median of rounds']) expect(Number.isFinite(written.derived[k])).toBe(true);
    expect(written.target).toMatchObject({ metric: 'added p50 ms (http) median of rounds', required: 0.5, comparison: '<=' });
    // abandoned sessions are reclaimed: none left, no more processes than the warm pool
    expect(written.derived['abandon sessions open after idle timeout']).toBe(0);
    // opens whose session was gone before the client finished are retried, and counted
    expect(written.derived['abandon session opens retried']).toBeGreaterThanOrEqual(0);
    expect(written.derived['abandon child processes after idle timeout']).toBeLessThanOrEqual(written.derived['abandon child processes with the warm pool'] ?? 0);
  });
});

describe('agentdojo benchmark', () => {
  it.skipIf(!existsSync('/work/shared/benchmarks/agentdojo/score.py') && process.env['AGENTDOJO_DIR'] === undefined)(
    'replays a sample of every suite in the data folder with the agent baseline, scores it beside allow-all, and agrees with score.py',
    { timeout: 300_000 },
    async () => {
      await run(process.execPath, ['bench/agentdojo.ts', '--quick', '--json-only', '--out', out], { cwd: ROOT, maxBuffer: 64 * 1024 * 1024 });
      const written = JSON.parse(readFileSync(join(out, 'agentdojo.json'), 'utf8')) as BenchResult;
      expect(written).toMatchObject({ name: 'agentdojo', mode: 'quick' });
      expect(Object.keys(written.figures).sort()).toEqual(['replay_baseline_banking', 'replay_baseline_workspace']);
      expect(written.derived['baseline score.py cross-check mismatches']).toBe(0);
      for (const k of ['baseline ALL asr_lenient_pct', 'allow-all ALL asr_lenient_pct', 'baseline ALL utility_loss_pct', 'baseline workspace traces/s']) expect(Number.isFinite(written.derived[k])).toBe(true);
      // no gateway lets every recorded attack through; the baseline must stop most of them
      expect(written.derived['baseline ALL asr_lenient_pct']).toBeLessThan(written.derived['allow-all ALL asr_lenient_pct'] ?? 0);
      expect(written.derived['allow-all ALL utility_loss_pct']).toBe(0);
    },
  );
});

describe('suggested mandates on agentdojo', () => {
  it.skipIf(!existsSync('/work/shared/benchmarks/agentdojo/labels') && process.env['AGENTDOJO_DIR'] === undefined)(
    'learns from half of the models, judges the other half both ways round, and denies no call it learnt from except for a budget',
    { timeout: 300_000 },
    async () => {
      await run(process.execPath, ['bench/suggest-agentdojo.ts', '--json-only', '--out', out], { cwd: ROOT, maxBuffer: 64 * 1024 * 1024 });
      const written = JSON.parse(readFileSync(join(out, 'suggest-agentdojo.json'), 'utf8')) as BenchResult;
      expect(written).toMatchObject({ name: 'suggest-agentdojo', mode: 'full' });
      for (const j of ['ceiling', 'template', 'cluster']) {
        expect(written.derived[`ALL training-window shape denials (${j})`]).toBe(0);
        for (const k of ['clean calls denied %', 'attack calls denied %']) expect(Number.isFinite(written.derived[`ALL ${k} (${j})`])).toBe(true);
      }
    },
  );
});

describe('labels benchmark', () => {
  it('compares an unshared call with the core before labels and times shared writes and reads', { timeout: 180_000 }, async () => {
    const { stdout } = await run(process.execPath, ['bench/labels.ts', '--quick', '--json-only', '--out', out], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 });
    const written = JSON.parse(readFileSync(join(out, 'labels.json'), 'utf8')) as BenchResult;
    expect(JSON.parse(stdout.trim().split('\n').at(-1) ?? '')).toEqual(written);
    expect(written).toMatchObject({ name: 'labels', mode: 'quick' });
    expect(Object.keys(written.figures).sort()).toEqual(['after', 'before', 'sharedRead', 'sharedWrite']);
    expect(written.params['baseCommit']).toMatch(/^[0-9a-f]{40}$/);
    expect(Number.isFinite(written.derived['addedP50Us'])).toBe(true);
    expect(written.target).toEqual(expect.objectContaining({ metric: 'addedP50Us', comparison: '<=', required: 5 }));
  });
});
