/**
 * `mandate serve` applies server.max_heap_mb to its own process: V8 reads the limit only when it
 * creates the heap, so the command starts again in place with the flags (bin/mandate.js with the
 * defaults, serve itself when the config names another limit). The limit in force is read back
 * through /metrics (mandate_heap_limit_bytes: v8.getHeapStatistics().heap_size_limit) and
 * compared with a plain Node started with the same flags.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_HEAP_SETTINGS, heapFlags, type HeapSettings } from '@mandate/server';
import { CLI, READY_TIMEOUT_MS, startServe } from '../../server/test/serve-process.ts';
import { EXAMPLE_POLICIES } from './support.ts';

const TOKEN = 'scrape-token-0123456789abcdefghijklmnop';
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'mandate-serve-heap-'));
  writeFileSync(join(dir, 'metrics.token'), TOKEN, { mode: 0o600 });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** heap_size_limit of a Node process started with these settings' flags */
function limitWith(s: HeapSettings): number {
  const r = spawnSync(process.execPath, [...heapFlags(s), '-p', 'require("node:v8").getHeapStatistics().heap_size_limit'], { encoding: 'utf8', timeout: 60_000 });
  return Number(r.stdout.trim());
}

/** a config file: metrics on, and these settings */
function config(name: string, extra: Record<string, unknown>): string {
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify({ metrics: { enabled: true, token_file: join(dir, 'metrics.token') }, ...extra }));
  return file;
}

/** serve with this config file; the heap limit its /metrics reports */
async function servedLimit(name: string, file: string): Promise<{ limit: number; exitCode: number | null; argv: string[] }> {
  const data = join(dir, name);
  const s = await startServe({ args: ['--port', '0', '--data-dir', data, '--policies', EXAMPLE_POLICIES, '--config', file], env: { ...process.env, MANDATE_LOG_LEVEL: 'warn' }, readyTimeoutMs: READY_TIMEOUT_MS });
  let limit = NaN;
  // the command line it runs with now: started again in place, /proc shows the new one
  const argv = readFileSync(`/proc/${s.child.pid}/cmdline`, 'utf8').split('\0');
  try {
    const text = await (await fetch(`${s.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
    limit = Number(text.split('\n').find((l) => l.startsWith('mandate_heap_limit_bytes '))?.split(' ')[1]);
  } catch (e) {
    await s.stop();
    throw e;
  }
  // SIGTERM to the pid it was spawned as: started again in place, it is still that process
  const exitCode = await s.stop(60_000);
  return { limit, exitCode, argv };
}

describe('mandate serve heap limit', () => {
  it('runs with the shipped limit and a young generation kept small', { timeout: 2 * READY_TIMEOUT_MS }, async () => {
    const r = await servedLimit('defaults', config('defaults', {}));
    expect(r.limit).toBe(limitWith(DEFAULT_HEAP_SETTINGS));
    // far below V8's own limit on this machine (gigabytes)
    expect(r.limit).toBeLessThan(limitWith({ maxHeapMb: 1024, youngGenerationGrowth: true, parallelScavenge: false }));
    // young collections on the thread that allocated (V8's helpers only cost, heap.ts)
    expect(r.argv).toContain('--no-parallel-scavenge');
  });

  it('runs with the limit its config names, in the process it was started as', { timeout: 2 * READY_TIMEOUT_MS }, async () => {
    const r = await servedLimit('named', config('named', { server: { max_heap_mb: 700, young_generation_growth: true, parallel_scavenge: true } }));
    expect(r.limit).toBe(limitWith({ maxHeapMb: 700, youngGenerationGrowth: true, parallelScavenge: true }));
    expect(r.argv).not.toContain('--no-parallel-scavenge');
    expect(r.argv).toContain('--max-old-space-size=700');
    expect(r.exitCode).toBe(0);
  });

  it('refuses to start with a limit that cannot hold what the bounds allow', { timeout: READY_TIMEOUT_MS }, async () => {
    const file = config('small', { server: { max_heap_mb: 200 }, behaviour: { enabled: true } });
    const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--data-dir', join(dir, 'small'), '--policies', EXAMPLE_POLICIES, '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code).toBe(3);
    expect(err).toContain('server.max_heap_mb: 200 MiB cannot hold');
  });
});
