/**
 * What the browser tests stand on: the dashboard built from its sources, a real `mandate serve`
 * process, Debian's Chromium, and a scripted agent that speaks the public HTTP API.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServe } from '../../server/test/serve-process.ts';

export const DASHBOARD = fileURLToPath(new URL('..', import.meta.url));
export const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
export const CHROMIUM = '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Fails loudly: CI installs Chromium (.ci/run); a missing browser is never a silent skip. */
export function requireChromium(): string {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium is missing at ${CHROMIUM}: install it with \`apt-get update && apt-get install -y chromium\` (.ci/run does this)`);
  }
  return CHROMIUM;
}

/** Builds packages/dashboard/dist from the sources (vite build, ~1-2 s), so what is tested is what is served. */
export function buildDashboard(): void {
  const vite = join(DASHBOARD, 'node_modules', 'vite', 'bin', 'vite.js');
  const bin = existsSync(vite) ? vite : join(ROOT, 'node_modules', 'vite', 'bin', 'vite.js');
  execFileSync(process.execPath, [bin, 'build'], { cwd: DASHBOARD, stdio: 'pipe', timeout: 240_000 });
}

export interface Served {
  readonly url: string;
  readonly admin: string;
  readonly dataDir: string;
  stop(): Promise<void>;
}

/**
 * Starts the real CLI, `mandate serve`, on a free port with the example policies and the dev
 * issuer, and waits until it is ready (serve-process.ts: a long bound, and an early end if it
 * exits); `config` (optional) is written to a config file passed with `--config`; `policies` is the
 * policy folder (the example one unless given).
 */
export async function startMandate(config?: Record<string, unknown>, policies = join(ROOT, 'examples/policies')): Promise<Served> {
  const dataDir = mkdtempSync(join(tmpdir(), 'mandate-e2e-'));
  const confDir = mkdtempSync(join(tmpdir(), 'mandate-e2e-conf-'));
  const confArgs: string[] = [];
  if (config !== undefined) {
    writeFileSync(join(confDir, 'mandate.json'), JSON.stringify(config));
    confArgs.push('--config', join(confDir, 'mandate.json'));
  }
  let served;
  try {
    served = await startServe({
      args: [...confArgs, '--port', '0', '--host', '127.0.0.1', '--data-dir', dataDir, '--policies', policies, '--dev-issuer'],
      env: { ...process.env, MANDATE_ENVIRONMENT: 'prod', MANDATE_LOG_LEVEL: 'warn' },
    });
  } catch (e) {
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(confDir, { recursive: true, force: true });
    throw e;
  }
  const admin = readFileSync(join(dataDir, 'admin.key'), 'utf8').trim();
  return {
    url: served.url,
    admin,
    dataDir,
    async stop() {
      await served.stop(5000);
      rmSync(dataDir, { recursive: true, force: true });
      rmSync(confDir, { recursive: true, force: true });
    },
  };
}

interface Json {
  [k: string]: unknown;
}

export async function call(url: string, key: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; json: Json }> {
  const res = await fetch(url + path, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, json: (await res.json()) as Json };
}

export const TRUST_DOMAIN = 'dev.mandate.local';

export interface ScriptedMandate {
  purpose: string;
  tools: { name: string; args?: Record<string, unknown> }[];
}

/** The support triage agent's mandate: search, read the knowledge base, e-mail customers once approved. */
export const TRIAGE_MANDATE: ScriptedMandate = {
  purpose: 'Triage refund tickets and e-mail customers once a human agrees.',
  tools: [{ name: 'helpdesk.search_tickets' }, { name: 'fs.read_file', args: { path: { prefix: '/srv/kb/' } } }, { name: 'mail.send', args: { to: { domains: ['acme.example'] } } }],
};

export interface Decided {
  call_id: string;
  effect: string;
  reasons: string[];
  approval_id: string | null;
  policy_effect?: string;
  signals?: { detector: string; severity: string }[];
  containment?: string[];
}

/** A scripted support agent: registered by the admin, proves itself with a dev JWT-SVID, starts a task. */
export class ScriptedAgent {
  readonly id: string;
  readonly url: string;
  readonly mandate: ScriptedMandate;
  taskId = '';
  token = '';

  constructor(url: string, name: string, mandate: ScriptedMandate = TRIAGE_MANDATE) {
    this.url = url;
    this.id = `spiffe://${TRUST_DOMAIN}/agents/${name}`;
    this.mandate = mandate;
  }

  async register(admin: string): Promise<void> {
    const ceiling = { tools: ['helpdesk.*', 'fs.read_file', 'mail.send'], data_classes: ['internal'], environments: ['prod'], max_ttl: '1h', max_calls: 100 };
    const r = await call(this.url, admin, 'POST', '/v1/agents', { id: this.id, owner: 'team-support', type: 'support', ceiling });
    if (r.status !== 201) throw new Error(`register: ${r.status} ${JSON.stringify(r.json)}`);
    const svid = await call(this.url, admin, 'POST', '/v1/dev/workload-tokens', { spiffe_id: this.id });
    const mandate = {
      purpose: this.mandate.purpose,
      environment: 'prod',
      ttl: '15m',
      tools: this.mandate.tools,
      data_classes: ['internal'],
      budgets: { calls: 20 },
    };
    const t = await call(this.url, String(svid.json['token']), 'POST', '/v1/tasks', { mandate });
    if (t.status !== 201) throw new Error(`start task: ${t.status} ${JSON.stringify(t.json)}`);
    this.taskId = String((t.json['task'] as Json)['id']);
    this.token = String(t.json['token']);
  }

  async act(tool: string, args: Record<string, unknown>): Promise<Decided> {
    const r = await call(this.url, this.token, 'POST', '/v1/authorize', { tool, args });
    if (r.status !== 200) throw new Error(`authorize: ${r.status} ${JSON.stringify(r.json)}`);
    return r.json as unknown as Decided;
  }

  /** reports an allowed call's result (`POST /v1/outcomes`), as an agent does after running the tool */
  async report(callId: string, result: unknown): Promise<void> {
    const r = await call(this.url, this.token, 'POST', '/v1/outcomes', { call_id: callId, result });
    if (r.status !== 200) throw new Error(`outcome: ${r.status} ${JSON.stringify(r.json)}`);
  }
}
