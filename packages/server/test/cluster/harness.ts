/**
 * Several Mandate processes (`mandate serve`) on loopback over one throw-away PostgreSQL: the
 * multi-node tests and bench/cluster.ts share this.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startThrowawayPostgres, type ThrowawayPostgres } from './throwaway-pg.ts';
import { CLI, waitReady } from '../serve-process.ts';

export const ROOT = join(import.meta.dirname, '..', '..', '..', '..');
export const ADMIN = 'mk_' + 'A'.repeat(43);
export const TD = 'cluster.test';

export interface ClusterNode {
  readonly name: string;
  readonly url: string;
  readonly proc: ChildProcess;
  /** what the process wrote so far, stdout and stderr */
  log(): string;
}

export interface Cluster {
  readonly pg: ThrowawayPostgres;
  readonly nodes: readonly ClusterNode[];
  close(): Promise<void>;
}

export async function http(url: string, method: string, path: string, bearer?: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(url + path, {
    method,
    headers: { ...(bearer ? { authorization: `Bearer ${bearer}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  return { status: res.status, json: (text ? JSON.parse(text) : {}) as Record<string, unknown> };
}

export async function until<T>(fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs: number): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch((e: unknown) => e as T);
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`condition not met in ${timeoutMs} ms: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Starts PostgreSQL and `count` nodes: the first alone (it creates schema and keys), then the rest.
 * `extra`: top-level config sections added to every node's (behaviour, …).
 */
export async function startCluster(count: number, logLevel = 'warn', extra: Record<string, unknown> = {}): Promise<Cluster> {
  const pg = await startThrowawayPostgres();
  const dir = mkdtempSync(join(tmpdir(), 'mandate-cluster-'));
  // every node of a cluster reads the signing keys with the same key encryption key
  const kekFile = join(dir, 'kek.key');
  writeFileSync(kekFile, randomBytes(32).toString('base64') + '\n', { mode: 0o600 });
  const nodes: ClusterNode[] = [];
  const startNode = async (name: string): Promise<ClusterNode> => {
    const port = await freePort();
    const configFile = join(dir, `${name}.yaml`);
    writeFileSync(
      configFile,
      JSON.stringify({
        environment: 'prod',
        data_dir: join(dir, name),
        store: pg.url,
        postgres: { schema: 'mandate', max_staleness: '5s', statement_timeout: '2s' },
        server: { host: '127.0.0.1', port },
        policies: { dir: join(ROOT, 'examples', 'policies') },
        identity: { dev_issuer: { enabled: true, trust_domain: TD } },
        audit: { key_file: join(dir, 'audit-checkpoint-keys.json') },
        keys: { kek_file: kekFile },
        log: { level: logLevel },
        ...extra,
      }),
    );
    const proc = spawn(process.execPath, [CLI, 'serve', '--config', configFile], {
      env: { ...process.env, MANDATE_BOOTSTRAP_ADMIN_KEY: ADMIN },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    proc.stdout?.on('data', (d: Buffer) => (log += d.toString()));
    proc.stderr?.on('data', (d: Buffer) => (log += d.toString()));
    // a long bound (a busy machine is slow to start a node), and an early end if the node exits
    const url = await waitReady(proc, () => log).catch((e: unknown) => {
      proc.kill('SIGKILL');
      throw new Error(`${name} did not become ready: ${(e as Error).message}`);
    });
    return { name, url, proc, log: () => log };
  };
  try {
    nodes.push(await startNode('a'));
    nodes.push(...(await Promise.all(Array.from({ length: count - 1 }, (_, i) => startNode(String.fromCharCode(98 + i))))));
  } catch (e) {
    for (const n of nodes) n.proc.kill('SIGKILL');
    pg.destroy();
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    pg,
    nodes,
    async close() {
      for (const n of nodes) n.proc.kill('SIGTERM');
      await Promise.all(nodes.map((n) => new Promise((r) => (n.proc.exitCode !== null ? r(null) : n.proc.once('exit', r)))));
      pg.destroy();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Registers an agent, starts a task for it on `node`, returns the task's id and token. */
export async function startAgentTask(node: ClusterNode, agent: string, mandate: object): Promise<{ id: string; token: string }> {
  const reg = await http(node.url, 'POST', '/v1/agents', ADMIN, { id: agent, owner: 'team', type: 'support', ceiling: {} });
  if (reg.status !== 201 && reg.status !== 409) throw new Error(`register ${agent}: ${reg.status}`);
  const svid = (await http(node.url, 'POST', '/v1/dev/workload-tokens', ADMIN, { spiffe_id: agent })).json['token'] as string;
  const r = await http(node.url, 'POST', '/v1/tasks', svid, { mandate });
  if (r.status !== 201) throw new Error(`start task: ${r.status} ${JSON.stringify(r.json)}`);
  return { id: (r.json['task'] as { id: string }).id, token: r.json['token'] as string };
}
