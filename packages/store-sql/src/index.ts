/**
 * What the SQL adapters (SQLite, PostgreSQL) share: typed column readers and the mapping of rows
 * to domain records. Both keep the same columns, so one mapping serves both.
 */
import {
  canonicalJson,
  GroupCommit,
  MandateError,
  type AlertSinkState,
  type KillEvent,
  type KillKind,
  type AuditAppender,
  type AuditDraft,
  type DecisionCommit,
  type DecisionCommitResult,
  type DecisionCommitter,
  isJsonObject,
  type Agent,
  type AgentStatus,
  type Approval,
  type ApprovalState,
  type AuditKind,
  type AuditRecord,
  type StoredAuditRecord,
  type Checkpoint,
  type Ceiling,
  type JsonObject,
  type Mandate,
  type OperatorKey,
  type OperatorRole,
  type SigningKey,
  type Task,
  type TaskState,
  type Alert,
  type AlertState,
  type Effect,
  type Restriction,
  type Severity,
  type Signal,
  type ContainmentAction,
} from '@mandate/core';

export { bool, checkLimit, json, num, optNum, optStr, str, toJson, type Row } from './columns.ts';
import { json, num, optNum, optStr, str, toJson, type Row } from './columns.ts';

export function toAgent(r: Row): Agent {
  return {
    id: str(r, 'id'),
    owner: str(r, 'owner'),
    type: str(r, 'type'),
    status: str(r, 'status') as AgentStatus,
    // written only from a validated Ceiling, so reading it back needs no re-validation
    ceiling: json(r, 'ceiling') as Ceiling,
    createdAt: num(r, 'created_at'),
    updatedAt: num(r, 'updated_at'),
  };
}

export function toTask(r: Row): Task {
  return {
    id: str(r, 'id'),
    agentId: str(r, 'agent_id'),
    // written only from a validated Mandate, so reading it back needs no re-validation
    mandate: json(r, 'mandate') as Mandate,
    mandateHash: str(r, 'mandate_hash'),
    state: str(r, 'state') as TaskState,
    txn: str(r, 'txn'),
    parentId: optStr(r, 'parent_id'),
    depth: num(r, 'depth'),
    createdAt: num(r, 'created_at'),
    expiresAt: num(r, 'expires_at'),
    maxExpiresAt: num(r, 'max_expires_at'),
    endedAt: optNum(r, 'ended_at'),
    endReason: optStr(r, 'end_reason'),
  };
}

export function toApproval(r: Row): Approval {
  return {
    id: str(r, 'id'),
    taskId: str(r, 'task_id'),
    agentId: str(r, 'agent_id'),
    tool: str(r, 'tool'),
    argsHash: str(r, 'args_hash'),
    resource: optStr(r, 'resource'),
    callId: str(r, 'call_id'),
    state: str(r, 'state') as ApprovalState,
    policyIds: JSON.parse(str(r, 'policy_ids')) as string[],
    args: json(r, 'args'),
    createdAt: num(r, 'created_at'),
    expiresAt: num(r, 'expires_at'),
    decidedAt: optNum(r, 'decided_at'),
    decidedBy: optStr(r, 'decided_by'),
    reason: optStr(r, 'reason'),
    usedAt: optNum(r, 'used_at'),
    usedCallId: optStr(r, 'used_call_id'),
  };
}

function jsonArray(row: Row, name: string): unknown[] {
  const v: unknown = JSON.parse(str(row, name));
  if (!Array.isArray(v)) throw new Error(`column ${name} is not a JSON array`);
  return v;
}

export const SEVERITY_RANK: Record<Severity, number> = { low: 0, medium: 1, high: 2, critical: 3 };

/** the columns of an alert row, in the order both adapters insert them */
export function alertColumns(a: Alert): unknown[] {
  return [
    a.id, a.ts, a.taskId, a.agentId, a.callId, a.tool, a.severity, SEVERITY_RANK[a.severity], canonicalJson(a.detectors), canonicalJson(a.signals),
    canonicalJson(a.actions), a.policyEffect, a.finalEffect, a.state, a.ackedBy ?? null, a.ackedAt ?? null, a.ackNote ?? null,
  ];
}
export const ALERT_COLUMNS = 'id, ts, task_id, agent_id, call_id, tool, severity, severity_rank, detectors, signals, actions, policy_effect, final_effect, state, acked_by, acked_at, ack_note';

export function toAlertSink(r: Row): AlertSinkState {
  return {
    sink: str(r, 'sink'),
    cursor: num(r, 'cursor'),
    delivered: num(r, 'delivered'),
    dropped: num(r, 'dropped'),
    owner: optStr(r, 'owner'),
    leaseUntil: num(r, 'lease_until'),
    lastError: optStr(r, 'last_error'),
    updatedAt: num(r, 'updated_at'),
  };
}

const KILL_KINDS: ReadonlySet<string> = new Set<KillKind>(['agent', 'task', 'emergency_stop']);

export function toKillEvent(r: Row): KillEvent {
  const kind = str(r, 'kind');
  if (!KILL_KINDS.has(kind)) throw new Error(`kill event ${str(r, 'id')} has an unknown kind ${kind}`);
  return { id: str(r, 'id'), ts: num(r, 'ts'), kind: kind as KillKind, data: json(r, 'data') };
}

export function toAlert(r: Row): Alert {
  return {
    id: str(r, 'id'),
    ts: num(r, 'ts'),
    taskId: str(r, 'task_id'),
    agentId: str(r, 'agent_id'),
    callId: str(r, 'call_id'),
    tool: str(r, 'tool'),
    severity: str(r, 'severity') as Severity,
    detectors: jsonArray(r, 'detectors') as string[],
    // written only from validated signals, so reading them back needs no re-validation
    signals: jsonArray(r, 'signals') as Signal[],
    actions: jsonArray(r, 'actions') as ContainmentAction[],
    policyEffect: str(r, 'policy_effect') as Effect,
    finalEffect: str(r, 'final_effect') as Effect,
    state: str(r, 'state') as AlertState,
    ackedBy: optStr(r, 'acked_by'),
    ackedAt: optNum(r, 'acked_at'),
    ackNote: optStr(r, 'ack_note'),
  };
}

export function toRestriction(r: Row): Restriction {
  return {
    taskId: str(r, 'task_id'),
    agentId: str(r, 'agent_id'),
    action: str(r, 'action') as Restriction['action'],
    tool: str(r, 'tool'),
    detector: str(r, 'detector'),
    callId: str(r, 'call_id'),
    reason: str(r, 'reason'),
    createdAt: num(r, 'created_at'),
  };
}

export function toSigningKey(r: Row): SigningKey {
  return {
    kid: str(r, 'kid'),
    purpose: str(r, 'purpose') as SigningKey['purpose'],
    alg: str(r, 'alg') as SigningKey['alg'],
    publicJwk: json(r, 'public_jwk'),
    privateJwk: json(r, 'private_jwk'),
    status: str(r, 'status') as SigningKey['status'],
    createdAt: num(r, 'created_at'),
    retiredAt: optNum(r, 'retired_at'),
  };
}

export function toOperatorKey(r: Row): OperatorKey {
  return {
    id: str(r, 'id'),
    name: str(r, 'name'),
    role: str(r, 'role') as OperatorRole,
    secretHash: str(r, 'secret_hash'),
    createdAt: num(r, 'created_at'),
    revokedAt: optNum(r, 'revoked_at'),
  };
}

export function toAuditRecord(r: Row): AuditRecord {
  return {
    seq: num(r, 'seq'),
    ts: num(r, 'ts'),
    kind: str(r, 'kind') as AuditKind,
    callId: optStr(r, 'call_id'),
    taskId: optStr(r, 'task_id'),
    agentId: optStr(r, 'agent_id'),
    txn: optStr(r, 'txn'),
    data: auditData(r),
    prevHash: str(r, 'prev_hash'),
    hash: str(r, 'hash'),
  };
}

/** the columns `storedAuditRecord` reads, in its order */
export const STORED_AUDIT_COLUMNS = 'seq, ts, kind, call_id, task_id, agent_id, txn, data, prev_hash, hash';

/**
 * A row of STORED_AUDIT_COLUMNS read as an array (no object per row), its data kept as text:
 * what a walk of the whole chain reads.
 */
export function storedAuditRecord(a: readonly unknown[]): StoredAuditRecord {
  const [seq, ts, kind, callId, taskId, agentId, txn, data, prevHash, hash] = a;
  if (typeof seq !== 'number' || typeof ts !== 'number') throw new Error('audit seq and ts must be numbers');
  if (typeof kind !== 'string' || typeof data !== 'string' || typeof prevHash !== 'string' || typeof hash !== 'string') throw new Error('audit kind, data, prev_hash and hash must be text');
  return { seq, ts, kind: kind as AuditKind, callId: optText(callId), taskId: optText(taskId), agentId: optText(agentId), txn: optText(txn), dataText: data, prevHash, hash };
}

function optText(v: unknown): string | undefined {
  if (v === null) return undefined;
  if (typeof v !== 'string') throw new Error('audit ids must be text');
  return v;
}

/**
 * An audit record's data as stored. Rows are only ever written as canonical JSON objects, so
 * anything else was written around this API: keep the raw text, whose hash can never match, so
 * verification reports the record as modified instead of failing to read the log.
 */
function auditData(r: Row): JsonObject {
  const text = str(r, 'data');
  try {
    const v: unknown = JSON.parse(text);
    if (isJsonObject(v)) return v;
  } catch {
    // fall through
  }
  return { unreadable_data: text };
}

/** Refuses, per caller, a draft no store can keep, before it joins a group it would sink. */
export function checkDrafts(drafts: readonly AuditDraft[], extra?: (d: AuditDraft) => void): void {
  for (const d of drafts) {
    if (!Number.isSafeInteger(d.ts)) throw new TypeError(`audit ts must be integer milliseconds, got ${String(d.ts)}`);
    canonicalJson(d.data);
    extra?.(d);
  }
}

/** How long an outcome record (a lazy commit entry) may wait to share the next commit. */
export const LAZY_COMMIT_DELAY_MS = 5;

export interface AuditFrontOptions {
  /** how long a lazy entry may wait for company before it is committed alone (default 5 ms) */
  readonly lazyDelayMs?: number;
  /** runs `fn` after `ms`, returns what cancels it (default setTimeout) */
  readonly later?: (fn: () => void, ms: number) => () => void;
}

/**
 * A timer that keeps the process alive while it is armed: it is armed only while a lazy entry
 * awaits its commit, and a caller awaiting that commit must not see the process exit under it.
 */
function setTimeoutLater(fn: () => void, ms: number): () => void {
  const t = setTimeout(fn, ms);
  return () => clearTimeout(t);
}

/**
 * The front both SQL adapters put before their batch writer: per-caller checks, group commit,
 * and tracking of what is in flight so `drain()` (at close) waits for every accepted entry.
 * Entries marked `lazy` (outcome records) join the next commit, at most `lazyDelayMs` later.
 */
export function auditFront(
  writeBatch: (entries: readonly DecisionCommit[]) => Promise<DecisionCommitResult[]> | DecisionCommitResult[],
  schedule: (fn: () => void) => void,
  extraCheck?: (d: AuditDraft) => void,
  options: AuditFrontOptions = {},
): Pick<AuditAppender & DecisionCommitter, 'append' | 'commitDecision'> & { drain(): Promise<void> } {
  const group = new GroupCommit(writeBatch, schedule, { lazyDelayMs: options.lazyDelayMs ?? LAZY_COMMIT_DELAY_MS, later: options.later ?? setTimeoutLater });
  const inFlight = new Set<Promise<unknown>>();
  let closed = false;
  const submit = async (entry: DecisionCommit): Promise<DecisionCommitResult> => {
    if (closed) throw new MandateError('AUDIT_UNAVAILABLE', 'the store is closed');
    checkDrafts(entry.drafts, extraCheck);
    const p = group.submit(entry, { lazy: entry.lazy === true });
    inFlight.add(p);
    try {
      return await p;
    } finally {
      inFlight.delete(p);
    }
  };
  return {
    async append(drafts) {
      if (drafts.length === 0) return [];
      return (await submit({ drafts })).records;
    },
    commitDecision(entry) {
      return submit(entry);
    },
    /** refuses new appends, commits lazy entries at once, and waits until every accepted one has committed or failed */
    async drain() {
      closed = true;
      group.commitPending();
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    },
  };
}

export function toCheckpoint(r: Row): Checkpoint {
  return { seq: num(r, 'seq'), headHash: str(r, 'head_hash'), ts: num(r, 'ts'), kid: str(r, 'kid'), signature: str(r, 'signature') };
}

/** A numbered schema step. A step is never edited once released: a change is a new step. */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

/** Refuses a database that has schema steps this build does not know: a newer Mandate wrote it. */
export function refuseUnknownVersions(applied: Iterable<number>, migrations: readonly Migration[], where: string): void {
  const known = new Set(migrations.map((m) => m.version));
  const unknown = [...applied].filter((v) => !known.has(v));
  if (unknown.length > 0) {
    throw new MandateError('CONFIG_INVALID', `${where} has schema version(s) ${unknown.join(', ')} that this build does not know: it was written by a newer Mandate`);
  }
}
