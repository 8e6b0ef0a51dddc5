/** Builders for valid records, so each test spells out only what it is about. */
import { createHash } from 'node:crypto';
import type { Approval, AuditDraft, Ceiling, Mandate, Agent, OperatorKey, SigningKey, Task, Hasher, Store } from '@mandate/core';

export type GetStore = () => Store;

/** the port requires lowercase hex SHA-256, so any correct adapter hashes exactly like this */
export const sha256: Hasher = { sha256Hex: (s) => createHash('sha256').update(s).digest('hex') };

/** a fixed instant (2026-11-01T00:00:00Z): tests never read the wall clock */
export const T0 = Date.UTC(2026, 10, 1);
export const MINUTE = 60_000;

export const CEILING: Ceiling = { tools: ['helpdesk.*', 'fs.read_file'], data_classes: ['internal', 'customer-pii'], max_calls: 1000 };

export const MANDATE: Mandate = {
  purpose: 'Triage new support tickets for ACME and draft replies; no customer data leaves the helpdesk.',
  environment: 'prod',
  tools: [
    { name: 'helpdesk.search_tickets' },
    { name: 'helpdesk.draft_reply', args: { ticket_id: { regex: '^T-[0-9]+$' } } },
    { name: 'fs.read_file', args: { path: { prefix: '/srv/kb/' } } },
  ],
  data_classes: ['internal', 'customer-pii'],
  budgets: { calls: 200, per_tool: { 'helpdesk.draft_reply': 20 } },
  delegation: { allowed: true, max_depth: 2 },
};

export function agent(id = 'spiffe://acme.test/agents/triage', over: Partial<Agent> = {}): Agent {
  return { id, owner: 'team-support', type: 'llm', status: 'active', ceiling: CEILING, createdAt: T0, updatedAt: T0, ...over };
}

export function task(id: string, agentId: string, over: Partial<Task> = {}): Task {
  return {
    id,
    agentId,
    mandate: MANDATE,
    mandateHash: 'a'.repeat(64),
    state: 'active',
    txn: `txn-${id}`,
    parentId: undefined,
    depth: 0,
    createdAt: T0,
    expiresAt: T0 + 15 * MINUTE,
    maxExpiresAt: T0 + 60 * MINUTE,
    endedAt: undefined,
    endReason: undefined,
    ...over,
  };
}

/** creates the agent first: a store may require a task's agent to exist */
export async function seedTask(store: Store, id: string, over: Partial<Task> = {}): Promise<Task> {
  const agentId = over.agentId ?? 'spiffe://acme.test/agents/triage';
  if ((await store.agents.getAgent(agentId)) === undefined) await store.agents.createAgent(agent(agentId));
  const t = task(id, agentId, over);
  await store.tasks.createTask(t);
  return t;
}

export function draft(i: number, over: Partial<AuditDraft> = {}): AuditDraft {
  return {
    kind: 'decision',
    ts: T0 + i,
    callId: `call-${i}`,
    taskId: 'task-1',
    agentId: 'spiffe://acme.test/agents/triage',
    txn: 'txn-task-1',
    data: { i, effect: 'allow', reasons: ['POLICY_PERMIT'], args: { path: '/srv/kb/a.md', depth: 2, flag: true, none: null } },
    ...over,
  };
}

export function signingKey(kid: string, over: Partial<SigningKey> = {}): SigningKey {
  return {
    kid,
    purpose: 'task-token',
    alg: 'EdDSA',
    publicJwk: { kty: 'OKP', crv: 'Ed25519', x: `x-${kid}` },
    privateJwk: { kty: 'OKP', crv: 'Ed25519', x: `x-${kid}`, d: `d-${kid}` },
    status: 'active',
    createdAt: T0,
    retiredAt: undefined,
    ...over,
  };
}

export function operatorKey(id: string, over: Partial<OperatorKey> = {}): OperatorKey {
  return { id, name: `operator ${id}`, role: 'admin', secretHash: sha256.sha256Hex(`secret-${id}`), createdAt: T0, revokedAt: undefined, ...over };
}

/** matches a rejection carrying a MandateError-style `code` */
export function withCode(code: string): { code: string } {
  return { code };
}

export function approval(id: string, over: Partial<Approval> = {}): Approval {
  return {
    id,
    taskId: 'task-1',
    agentId: 'spiffe://acme.test/agents/triage',
    tool: 'mail.send',
    argsHash: 'b'.repeat(64),
    resource: undefined,
    callId: `call-${id}`,
    state: 'approved',
    policyIds: ['org.external-send'],
    args: { to: 'a@example.com' },
    createdAt: T0,
    expiresAt: T0 + 600_000,
    decidedAt: T0 + 1,
    decidedBy: 'operator-1',
    reason: undefined,
    usedAt: undefined,
    usedCallId: undefined,
    ...over,
  };
}
