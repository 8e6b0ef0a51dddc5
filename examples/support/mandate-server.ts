/**
 * A real Mandate server for the SDK examples: embedded SQLite in a temp folder, the example
 * policies, the development workload issuer, listening on 127.0.0.1 on a free port (the SDK
 * speaks HTTP with fetch, so the examples go through a real socket). The operator side
 * (register the agent, mint its workload token, approve a held call) uses the admin API key.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, serve, type RunningServer } from '@mandate/server';

export const EXAMPLE_POLICIES = fileURLToPath(new URL('../policies', import.meta.url));
const TRUST_DOMAIN = 'examples.mandate.local';

/** The support agent's mandate in every example: search freely, read the KB, mail only acme.example (with a human's approval). */
export const SUPPORT_MANDATE = {
  purpose: 'Answer a customer about their refund: search tickets, read the knowledge base, e-mail the customer.',
  environment: 'prod',
  ttl: '15m',
  tools: [
    { name: 'helpdesk.search_tickets' },
    { name: 'fs.read_file', args: { path: { prefix: '/srv/kb/' } } },
    { name: 'mail.send', args: { to: { domains: ['acme.example'] } } },
  ],
  data_classes: ['internal'],
  budgets: { calls: 50 },
};

export interface ApprovalView {
  readonly id: string;
  readonly state: string;
  readonly tool: string;
  readonly task_id: string;
  readonly used_call_id: string | null;
}

export interface ExampleServer {
  readonly url: string;
  readonly agentId: string;
  /** a fresh JWT-SVID for the agent (or another registered agent) from the development issuer */
  workloadToken(agentId?: string): Promise<string>;
  /** registers another agent with the same ceiling; returns its SPIFFE ID */
  registerAgent(name: string): Promise<string>;
  /** an operator request with the admin key */
  op(method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; json: unknown }>;
  /** what an operator does while the agent waits: watch the queue, approve the first pending request */
  approveNextPending(reason: string, timeoutMs?: number): Promise<ApprovalView>;
  approval(id: string): Promise<ApprovalView>;
  /** the audit records of one task, oldest first */
  taskAudit(taskId: string): Promise<{ kind: string; data: Record<string, unknown> }[]>;
  close(): Promise<void>;
}

let counter = 0;

/** `overrides`: flat config keys on top of the example's (e.g. `{ 'tokens.ttl': '3s' }`). */
export async function startExampleServer(overrides: Record<string, unknown> = {}): Promise<ExampleServer> {
  const dir = await mkdtemp(join(tmpdir(), 'mandate-sdk-example-'));
  const config = loadConfig(undefined, {}, {
    environment: 'prod',
    data_dir: dir,
    'server.host': '127.0.0.1',
    'server.port': 0,
    'policies.dir': EXAMPLE_POLICIES,
    'identity.dev_issuer.enabled': true,
    'identity.dev_issuer.trust_domain': TRUST_DOMAIN,
    'log.level': 'silent',
    ...overrides,
  });
  let server: RunningServer;
  try {
    server = await serve(config, { logger: false, writeAdminKeyFile: false });
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  const admin = server.runtime.bootstrapAdminKey;
  if (admin === undefined) throw new Error('a fresh data folder must create a bootstrap admin key');
  const url = server.url;

  async function op(method: 'GET' | 'POST', path: string, body?: unknown) {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${admin}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body === undefined ? null : JSON.stringify(body),
    });
    return { status: res.status, json: (await res.json()) as unknown };
  }

  async function registerAgent(name: string): Promise<string> {
    counter += 1;
    const id = `spiffe://${TRUST_DOMAIN}/agents/${name}-${process.pid}-${counter}`;
    const reg = await op('POST', '/v1/agents', {
      id,
      owner: 'team-support',
      type: 'support',
      ceiling: { tools: ['helpdesk.*', 'fs.read_file', 'mail.send'], data_classes: ['internal'], environments: ['prod'], max_ttl: '1h', max_calls: 200 },
    });
    if (reg.status !== 201 && reg.status !== 200) throw new Error(`register agent: ${reg.status} ${JSON.stringify(reg.json)}`);
    return id;
  }
  let agentId: string;
  try {
    agentId = await registerAgent('support');
  } catch (e) {
    await server.close();
    await rm(dir, { recursive: true, force: true });
    throw e;
  }

  return {
    url,
    agentId,
    op,
    registerAgent,
    async workloadToken(id = agentId) {
      const r = await op('POST', '/v1/dev/workload-tokens', { spiffe_id: id });
      if (r.status !== 200) throw new Error(`mint workload token: ${r.status} ${JSON.stringify(r.json)}`);
      return (r.json as { token: string }).token;
    },
    async approveNextPending(reason, timeoutMs = 5_000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const list = (await op('GET', '/v1/approvals?state=pending')).json as { approvals: ApprovalView[] };
        const first = list.approvals[0];
        if (first) {
          const r = await op('POST', `/v1/approvals/${encodeURIComponent(first.id)}/approve`, { reason });
          if (r.status !== 200) throw new Error(`approve: ${r.status} ${JSON.stringify(r.json)}`);
          return r.json as ApprovalView;
        }
        if (Date.now() > until) throw new Error('no approval request showed up');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    async approval(id) {
      return (await op('GET', `/v1/approvals/${encodeURIComponent(id)}`)).json as ApprovalView;
    },
    async taskAudit(taskId) {
      const r = await op('GET', `/v1/tasks/${encodeURIComponent(taskId)}/audit`);
      return (r.json as { records: { kind: string; data: Record<string, unknown> }[] }).records;
    },
    async close() {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
