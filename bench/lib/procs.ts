/**
 * Processes for the benchmarks that measure a server from the outside: a real `mandate serve`, a
 * raw `node:http` floor doing the same JSON parse and answer, and the load generator (autocannon),
 * each its own process. When the machine has a core to spare, servers are pinned to one set of
 * cores and the load generator to another (`taskset`), so the generator's work is never billed to
 * the server and every server gets the same cores.
 */
import { execFileSync, spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AutocannonResult } from 'autocannon';
import { CLI, waitReady } from '../../packages/server/test/serve-process.ts';
import { REPO_ROOT } from './stats.ts';

const LIB = import.meta.dirname;

export interface Pinning {
  /** cpu list for servers (taskset -c) */
  readonly server: string;
  /** cpu list for the load generator */
  readonly load: string;
}

let tasksetOk: boolean | undefined;
function hasTaskset(): boolean {
  if (tasksetOk === undefined) {
    try {
      execFileSync('taskset', ['-c', '0', 'true'], { stdio: 'ignore', timeout: 5000 });
      tasksetOk = true;
    } catch {
      tasksetOk = false;
    }
  }
  return tasksetOk;
}

/**
 * Servers on the first half of the cores, the load generator on the rest; null on one core or
 * without taskset (then nothing is pinned and the result says so).
 */
export function pinning(): Pinning | null {
  const n = cpus().length;
  if (n < 2 || !hasTaskset()) return null;
  const half = Math.floor(n / 2);
  const list = (from: number, to: number) => (to - from === 1 ? String(from) : `${from}-${to - 1}`);
  return { server: list(0, half), load: list(half, n) };
}

/** `node args…`, under `taskset -c cpus` when given. */
export function spawnNode(args: readonly string[], o: { cpus?: string | undefined; env?: NodeJS.ProcessEnv; stdio?: StdioOptions }): ChildProcess {
  const node = [process.execPath, ...args];
  const [cmd, ...rest] = o.cpus === undefined ? node : ['taskset', '-c', o.cpus, ...node];
  return spawn(cmd as string, rest, { env: o.env ?? process.env, stdio: o.stdio ?? ['ignore', 'pipe', 'pipe'] });
}

export interface ChildServer {
  readonly url: string;
  readonly pid: number;
  readonly child: ChildProcess;
  /** what it wrote to stdout and stderr (its log file) */
  output(): string;
  stop(): Promise<void>;
}

async function stopChild(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

export const BENCH_ADMIN_KEY = 'mk_' + 'B'.repeat(43);

/**
 * `mandate serve` at its shipped defaults (log level info included) unless `env` says otherwise,
 * on a fresh data folder with the example policies and the dev issuer. Its log goes to a file, as
 * a supervisor would take it, so reading it costs this process nothing. `cli`: another checkout's
 * `mandate` (an A/B of two versions of the code, bench/gateway-hop.ts).
 */
export async function startMandateServe(o: { cpus?: string | undefined; env?: Record<string, string>; configJson?: Record<string, unknown>; dir?: string; cli?: string } = {}): Promise<ChildServer & { dir: string; admin: string }> {
  const dir = o.dir ?? mkdtempSync(join(tmpdir(), 'mandate-bench-serve-'));
  const logFile = join(dir, 'serve.log');
  const fd = openSync(logFile, 'w');
  const args = [o.cli ?? CLI, 'serve', '--port', '0', '--host', '127.0.0.1', '--data-dir', join(dir, 'data'), '--policies', join(REPO_ROOT, 'examples', 'policies'), '--dev-issuer'];
  // the one departure from the defaults: a task token lives 1 h instead of 5 min, since a full run on
  // a busy machine outlives the default (a real agent renews; the token's life costs nothing per call)
  const cfg = join(dir, 'mandate.json');
  writeFileSync(cfg, JSON.stringify({ tokens: { ttl: '1h' }, ...o.configJson }));
  args.push('--config', cfg);
  const env: NodeJS.ProcessEnv = { ...process.env, MANDATE_BOOTSTRAP_ADMIN_KEY: BENCH_ADMIN_KEY, MANDATE_ENVIRONMENT: 'prod', ...o.env };
  delete env['MANDATE_LOG_LEVEL'];
  if (o.env?.['MANDATE_LOG_LEVEL'] !== undefined) env['MANDATE_LOG_LEVEL'] = o.env['MANDATE_LOG_LEVEL'];
  const child = spawnNode(args, { cpus: o.cpus, env, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const output = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
  try {
    const url = await waitReady(child, output);
    const stop = async () => {
      await stopChild(child);
      if (o.dir === undefined) rmSync(dir, { recursive: true, force: true });
    };
    return { url, pid: child.pid as number, child, output, stop, dir, admin: BENCH_ADMIN_KEY };
  } catch (e) {
    child.kill('SIGKILL');
    throw e;
  }
}

/** The raw node:http floor (bench/lib/raw-http-server.ts) in its own process. */
export async function startRawHttp(o: { cpus?: string | undefined; body: string }): Promise<ChildServer> {
  const child = spawnNode([join(LIB, 'raw-http-server.ts')], { cpus: o.cpus, env: { ...process.env, RAW_HTTP_BODY: o.body } });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`raw http server did not start:\n${out}`)), 60_000);
    const check = () => {
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1] as string);
      }
    };
    child.stdout?.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`raw http server exited (${String(code)}):\n${out}`));
    });
  });
  return { url, pid: child.pid as number, child, output: () => out, stop: () => stopChild(child) };
}

export interface LoadSpec {
  readonly url: string;
  readonly method?: string;
  readonly headers?: Record<string, string>;
  readonly body?: string;
  readonly connections: number;
  /** seconds */
  readonly duration: number;
  /** one request at a time on one connection, each timed (µs resolution) instead of autocannon */
  readonly sequential?: boolean;
}

export interface SequentialResult {
  /** per-request latency, ms */
  readonly samples: number[];
  readonly elapsedMs: number;
  readonly non2xx: number;
  readonly errors: number;
}

/** autocannon (bench/lib/loadgen.ts) in a child process, pinned when `cpus` is given. */
export async function runLoad(spec: LoadSpec, cpus?: string): Promise<AutocannonResult> {
  return (await loadChild(spec, cpus)) as AutocannonResult;
}

/** One request at a time from a child process (bench/lib/loadgen.ts), each timed. */
export async function runSequential(spec: Omit<LoadSpec, 'sequential' | 'connections'>, cpus?: string): Promise<SequentialResult> {
  return (await loadChild({ ...spec, connections: 1, sequential: true }, cpus)) as SequentialResult;
}

async function loadChild(spec: LoadSpec, cpus?: string): Promise<unknown> {
  const child = spawnNode([join(LIB, 'loadgen.ts'), JSON.stringify(spec)], { cpus });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  if (code !== 0) throw new Error(`load generator exited with ${String(code)}:\n${err}`);
  return JSON.parse(out.trim().split('\n').at(-1) ?? '') as unknown;
}

export async function postJson(url: string, bearer: string, payload: unknown): Promise<{ status: number; text: string }> {
  const res = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' }, body: JSON.stringify(payload), signal: AbortSignal.timeout(30_000) });
  return { status: res.status, text: await res.text() };
}

/**
 * Against a running server: registers `agent`, mints it a dev workload token and starts a task
 * with `mandate`; returns the task token.
 */
export async function startTaskOver(url: string, admin: string, agent: string, mandate: Record<string, unknown>): Promise<string> {
  const reg = await postJson(`${url}/v1/agents`, admin, { id: agent, owner: 'bench', type: 'support', ceiling: {} });
  if (reg.status >= 300 && reg.status !== 409) throw new Error(`register agent: ${reg.status} ${reg.text}`);
  const svid = await postJson(`${url}/v1/dev/workload-tokens`, admin, { spiffe_id: agent });
  if (svid.status !== 200 && svid.status !== 201) throw new Error(`workload token: ${svid.status} ${svid.text}`);
  const t = await postJson(`${url}/v1/tasks`, (JSON.parse(svid.text) as { token: string }).token, { mandate });
  if (t.status !== 200 && t.status !== 201) throw new Error(`start task: ${t.status} ${t.text}`);
  return (JSON.parse(t.text) as { token: string }).token;
}

/** Where a Cerbos binary is, or why there is none (the row is then skipped with that reason). */
export function findCerbos(): { bin: string } | { reason: string } {
  const candidates = [
    process.env['CERBOS_BIN'],
    join(REPO_ROOT, 'node_modules', '@cerbos', `cerbos-${process.platform}-${process.arch}`, `cerbos-${process.platform}-${process.arch}`),
    join(REPO_ROOT, 'node_modules', '.bin', 'cerbos'),
  ].filter((c): c is string => c !== undefined && c !== '');
  for (const c of candidates) if (existsSync(c)) return { bin: c };
  let onPath = '';
  try {
    onPath = execFileSync('which', ['cerbos'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    onPath = '';
  }
  if (onPath !== '') return { bin: onPath };
  return { reason: `no Cerbos binary: set CERBOS_BIN, or \`npm install --no-save @cerbos/cerbos-${process.platform}-${process.arch}\` (looked in ${candidates.join(', ')} and PATH)` };
}

/** Cerbos `server` on 127.0.0.1 with the given policies (YAML text by file name), default config otherwise. */
export async function startCerbos(o: { bin: string; cpus?: string | undefined; policies: Record<string, string>; port: number }): Promise<ChildServer> {
  const dir = mkdtempSync(join(tmpdir(), 'mandate-bench-cerbos-'));
  const pdir = join(dir, 'policies');
  execFileSync('mkdir', ['-p', pdir]);
  for (const [name, text] of Object.entries(o.policies)) writeFileSync(join(pdir, name), text);
  const args = ['server', `--set=server.httpListenAddr=127.0.0.1:${o.port}`, `--set=server.grpcListenAddr=127.0.0.1:${o.port + 1}`, '--set=storage.driver=disk', `--set=storage.disk.directory=${pdir}`];
  const [cmd, ...rest] = o.cpus === undefined ? [o.bin, ...args] : ['taskset', '-c', o.cpus, o.bin, ...args];
  const child = spawn(cmd as string, rest, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-65_536)));
  child.stderr?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-65_536)));
  const url = `http://127.0.0.1:${o.port}`;
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`cerbos exited (${child.exitCode}):\n${out}`);
    const ok = await fetch(`${url}/_cerbos/health`, { signal: AbortSignal.timeout(5000) }).then((r) => r.status === 200, () => false);
    if (ok) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`cerbos was not healthy after 120 s:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const stop = async () => {
    await stopChild(child);
    rmSync(dir, { recursive: true, force: true });
  };
  return { url, pid: child.pid as number, child, output: () => out, stop };
}
