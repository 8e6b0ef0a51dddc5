/**
 * Shared test harness: a real runtime on a temp SQLite data dir, its HTTP app driven in-process
 * with `app.inject` (no sockets), a controllable clock, and small helpers for the usual steps
 * (register an agent, mint a workload token, start a task, authorize a call).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { buildHttpApp, createRuntime, parseConfig, type MandateConfigInput, type MandateRuntime, type RuntimeOptions } from '@mandate/server';

export const EXAMPLE_POLICIES = fileURLToPath(new URL('../../../examples/policies', import.meta.url));
export const TRUST_DOMAIN = 'test.local';
/** 2026-11-02T10:00:00Z, a Monday, on a whole second */
export const START_MS = Date.UTC(2026, 10, 2, 10, 0, 0);

/** A clock the test moves by hand; it never moves on its own. */
export class ManualClock {
  private ms: number;

  constructor(start = START_MS) {
    this.ms = start;
  }

  now(): number {
    return this.ms;
  }

  advance(ms: number): void {
    if (ms < 0) throw new TypeError('time only moves forward');
    this.ms += ms;
  }
}

export const MINUTE = 60_000;

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** A helper agent's ceiling that covers every tool of the example catalogue. */
export const WIDE_CEILING = {
  tools: ['helpdesk.*', 'fs.read_file', 'mail.send'],
  data_classes: ['internal', 'customer-pii'],
  environments: ['prod'],
  max_ttl: '1h',
  max_calls: 1000,
};

export function mandate(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    purpose: 'Triage support tickets and draft replies.',
    environment: 'prod',
    ttl: '15m',
    tools: [{ name: 'helpdesk.search_tickets' }, { name: 'helpdesk.draft_reply', args: { ticket_id: { regex: 'T-[0-9]+' } } }, { name: 'fs.read_file', args: { path: { prefix: '/srv/kb/' } } }],
    data_classes: ['internal'],
    budgets: { calls: 500 },
    ...overrides,
  };
}

export interface HarnessOptions {
  /** config on top of the test defaults (deep keys replace whole sections) */
  readonly config?: Partial<MandateConfigInput>;
  readonly clock?: ManualClock;
  /** the runtime's log (default: silent) */
  readonly log?: RuntimeOptions['log'];
}

export interface StartedTask {
  readonly id: string;
  readonly token: string;
  readonly body: {
    task: { id: string; agent_id: string; state: string; mandate_hash: string; txn: string; expires_at: string; max_expires_at: string };
    token: string;
    token_expires_at: string;
  };
}

export interface Harness {
  readonly dir: string;
  readonly runtime: MandateRuntime;
  readonly app: FastifyInstance;
  readonly admin: string;
  readonly clock: ManualClock;
  inject(opts: InjectOptions): Promise<LightMyRequestResponse>;
  /** an operator request with the admin key (or `key`) */
  op(method: Method, url: string, payload?: unknown, key?: string): Promise<LightMyRequestResponse>;
  registerAgent(name: string, ceiling?: Record<string, unknown>): Promise<string>;
  workloadToken(spiffeId: string, ttlMs?: number): Promise<string>;
  /** starts a task for a registered agent; fails the test unless the start returns 201 */
  startTask(spiffeId: string, m?: Record<string, unknown>): Promise<StartedTask>;
  authorize(token: string, body: Record<string, unknown>): Promise<LightMyRequestResponse>;
  /** GET /v1/audit/verify as the admin */
  verifyAudit(): Promise<{ ok: boolean; records: number; checkpoints_verified: number; problem: unknown }>;
  close(): Promise<void>;
}

let agentCounter = 0;

export async function startHarness(opts: HarnessOptions = {}): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), 'mandate-http-test-'));
  const clock = opts.clock ?? new ManualClock();
  const extra = opts.config ?? {};
  const config = parseConfig({
    environment: 'prod',
    data_dir: dir,
    policies: { dir: EXAMPLE_POLICIES },
    identity: { dev_issuer: { enabled: true, trust_domain: TRUST_DOMAIN } },
    log: { level: 'silent' },
    ...extra,
  });
  let runtime: MandateRuntime;
  try {
    runtime = await createRuntime(config, { writeAdminKeyFile: false, clock, ...(opts.log ? { log: opts.log } : {}) });
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  const app = buildHttpApp(runtime, { logger: false });
  const admin = runtime.bootstrapAdminKey;
  if (admin === undefined) throw new Error('a fresh data dir must create a bootstrap admin key');

  const inject = (o: InjectOptions): Promise<LightMyRequestResponse> => app.inject(o);
  const op = (method: Method, url: string, payload?: unknown, key = admin): Promise<LightMyRequestResponse> => {
    const o: InjectOptions = { method, url, headers: { authorization: `Bearer ${key}` } };
    if (payload !== undefined) o.payload = payload as NonNullable<InjectOptions['payload']>;
    return inject(o);
  };

  const workloadToken = async (spiffeId: string, ttlMs = 10 * MINUTE): Promise<string> => {
    const issuer = runtime.devIssuer;
    if (!issuer) throw new Error('the dev issuer is not enabled');
    return issuer.mint(spiffeId, { audience: 'mandate', ttlMs });
  };

  const h: Harness = {
    dir,
    runtime,
    app,
    admin,
    clock,
    inject,
    op,
    async registerAgent(name, ceiling = WIDE_CEILING) {
      agentCounter += 1;
      const id = `spiffe://${TRUST_DOMAIN}/agents/${name}-${agentCounter}`;
      const res = await op('POST', '/v1/agents', { id, owner: 'team-test', type: 'support', ceiling });
      if (res.statusCode !== 201) throw new Error(`registering ${id} failed: ${res.statusCode} ${res.body}`);
      return id;
    },
    workloadToken,
    async startTask(spiffeId, m = mandate()) {
      const svid = await workloadToken(spiffeId);
      const res = await inject({ method: 'POST', url: '/v1/tasks', headers: { authorization: `Bearer ${svid}` }, payload: { mandate: m } });
      if (res.statusCode !== 201) throw new Error(`starting a task failed: ${res.statusCode} ${res.body}`);
      const body = res.json<StartedTask['body']>();
      return { id: body.task.id, token: body.token, body };
    },
    authorize(token, body) {
      return inject({ method: 'POST', url: '/v1/authorize', headers: { authorization: `Bearer ${token}` }, payload: body });
    },
    async verifyAudit() {
      const res = await op('GET', '/v1/audit/verify');
      if (res.statusCode !== 200) throw new Error(`audit verify failed: ${res.statusCode} ${res.body}`);
      return res.json();
    },
    async close() {
      try {
        await app.close();
        await runtime.close();
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
  return h;
}

/** The error envelope of a response, checked to have exactly the documented shape. */
export function errorOf(res: LightMyRequestResponse): { code: string; message: string; requestId: string; details?: unknown } {
  const body = res.json<{ error?: { code: string; message: string; requestId: string; details?: unknown } }>();
  if (body.error === undefined) throw new Error(`expected an error envelope, got ${res.statusCode} ${res.body}`);
  return body.error;
}

export interface DecisionBody {
  call_id: string;
  effect: 'allow' | 'deny' | 'approval_required';
  final: 'allowed' | 'blocked' | 'held';
  reasons: string[];
  policy_ids: string[];
  policy_version: string;
  task_id: string | null;
  agent_id: string | null;
  details: string[];
  audit_seq: number | null;
}

export interface AuditRecordBody {
  seq: number;
  ts: string;
  kind: string;
  call_id: string | null;
  task_id: string | null;
  agent_id: string | null;
  txn: string | null;
  data: Record<string, unknown>;
  prev_hash: string;
  hash: string;
}

/** Every audit record, through the operator API. */
export async function allAuditRecords(h: Harness): Promise<AuditRecordBody[]> {
  const out: AuditRecordBody[] = [];
  let from = 1;
  for (;;) {
    const res = await h.op('GET', `/v1/audit?from=${from}&limit=1000`);
    if (res.statusCode !== 200) throw new Error(`GET /v1/audit failed: ${res.statusCode} ${res.body}`);
    const body = res.json<{ records: AuditRecordBody[]; next: number | null }>();
    out.push(...body.records);
    if (body.next === null) return out;
    from = body.next;
  }
}

/** Decodes a JWT's header and payload without verifying it (the test verifies separately). */
export function decodeJwt(token: string): { header: Record<string, unknown>; payload: Record<string, unknown> } {
  const [h, p] = token.split('.');
  if (h === undefined || p === undefined) throw new Error('not a JWT');
  return {
    header: JSON.parse(Buffer.from(h, 'base64url').toString('utf8')) as Record<string, unknown>,
    payload: JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as Record<string, unknown>,
  };
}
