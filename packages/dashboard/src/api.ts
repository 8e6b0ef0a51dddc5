/**
 * The dashboard's only way to the server: the public HTTP API, with the operator key in the
 * Authorization header. The key lives in sessionStorage (gone when the tab closes), never in a
 * URL, a cookie or localStorage.
 */

const KEY = 'mandate.operatorKey';

export function storedKey(): string | null {
  return sessionStorage.getItem(KEY);
}
export function storeKey(key: string): void {
  sessionStorage.setItem(KEY, key);
}
export function forgetKey(): void {
  sessionStorage.removeItem(KEY);
}

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export interface Decision {
  ts: string;
  call_id: string;
  task_id: string | null;
  agent_id: string | null;
  tool: string | null;
  effect: 'allow' | 'deny' | 'approval_required';
  reasons: string[];
  policy_ids: string[];
  latency_ms?: number;
  approval_id?: string;
}

/** how many recent audit records the dashboard reads on sign-in to show decisions made before it */
export const HISTORY_RECORDS = 2000;

/**
 * The decisions in a stretch of audit records, newest first, shaped like the stream's `decision`
 * events: the `decision` record gives tool, reasons and policies; the call's `action` record, when
 * there is one, gives the final effect (containment can make it stricter than the policy's).
 * Latency is not in the audit log, so history rows have none.
 */
export function decisionsFromAudit(records: readonly AuditRecord[]): Decision[] {
  const key = (r: { task_id: string | null; call_id: string | null }) => `${r.task_id ?? ''}\u0000${r.call_id ?? ''}`;
  const finals = new Map<string, { effect: string; reasons: unknown }>();
  for (const r of records) if (r.kind === 'action' && r.call_id !== null) finals.set(key(r), { effect: String(r.data['effect']), reasons: r.data['reasons'] });
  const out: Decision[] = [];
  for (const r of records) {
    if (r.kind !== 'decision' || r.call_id === null) continue;
    const fin = finals.get(key(r));
    const effect = String(fin?.effect ?? r.data['effect']);
    if (effect !== 'allow' && effect !== 'deny' && effect !== 'approval_required') continue;
    const reasons = Array.isArray(fin?.reasons) ? fin.reasons : r.data['reasons'];
    const approval = r.data['approval_id'];
    out.push({
      ts: r.ts,
      call_id: r.call_id,
      task_id: r.task_id,
      agent_id: r.agent_id,
      tool: typeof r.data['tool'] === 'string' ? r.data['tool'] : null,
      effect,
      reasons: Array.isArray(reasons) ? reasons.map(String) : [],
      policy_ids: Array.isArray(r.data['policy_ids']) ? (r.data['policy_ids'] as unknown[]).map(String) : [],
      ...(typeof approval === 'string' ? { approval_id: approval } : {}),
    });
  }
  return out.reverse();
}

/** Live decisions first, then the history the stream has not already shown, newest first, at most `max`. */
export function mergeDecisions(live: readonly Decision[], history: readonly Decision[], max: number): Decision[] {
  const seen = new Set(live.map((d) => `${d.task_id ?? ''}\u0000${d.call_id}`));
  const merged = [...live, ...history.filter((d) => !seen.has(`${d.task_id ?? ''}\u0000${d.call_id}`))];
  return merged.sort((a, b) => (a.ts < b.ts ? 1 : a.ts > b.ts ? -1 : 0)).slice(0, max);
}

export interface Agent {
  id: string;
  owner: string;
  type: string;
  status: 'active' | 'disabled';
  ceiling: Record<string, unknown>;
  created_at: string;
}

export interface Mandate {
  purpose: string;
  environment: string;
  tools: { name: string; args?: Record<string, unknown> }[];
  data_classes: string[];
  budgets?: { calls?: number; per_tool?: Record<string, number> };
}

export interface Task {
  id: string;
  agent_id: string;
  state: string;
  mandate: Mandate;
  parent_id: string | null;
  depth: number;
  created_at: string;
  expires_at: string;
  ended_at: string | null;
  end_reason: string | null;
  /** only on `GET /v1/tasks/{id}` */
  containment?: Containment;
}

export interface Approval {
  id: string;
  task_id: string;
  agent_id: string;
  tool: string;
  args: Record<string, unknown>;
  resource: string | null;
  call_id: string;
  state: 'pending' | 'approved' | 'denied' | 'used' | 'expired' | 'cancelled';
  policy_ids: string[];
  created_at: string;
  expires_at: string;
  decided_by: string | null;
  reason: string | null;
}

export interface AuditRecord {
  seq: number;
  ts: string;
  kind: string;
  call_id: string | null;
  task_id: string | null;
  agent_id: string | null;
  data: Record<string, unknown>;
  hash: string;
}

export type Severity = 'low' | 'medium' | 'high' | 'critical';

export interface Signal {
  detector: string;
  severity: Severity;
  confidence: number;
  evidence: Record<string, unknown>;
}

/** `alertView` on the server: one call's signals and what containment did about them */
export interface Alert {
  id: string;
  ts: string;
  task_id: string;
  agent_id: string;
  call_id: string;
  tool: string;
  /** the highest severity among the signals */
  severity: Severity;
  detectors: string[];
  signals: Signal[];
  /** containment actions this call caused: alert, step_up, narrow, suspend, kill */
  actions: string[];
  policy_effect: string;
  final_effect: string;
  state: 'open' | 'acknowledged';
  acked_by: string | null;
  acked_at: string | null;
  ack_note: string | null;
}

/** `GET /v1/tasks/{id}`'s `containment`: restrictions only accumulate */
export interface Containment {
  step_up: boolean;
  narrowed_tools: string[];
  suspended: boolean;
  killed: boolean;
  restrictions: { action: string; tool: string | null; detector: string; call_id: string | null; reason: string; at: string }[];
}

/** Whether a value from the event stream has the shape of an alert (it is never trusted blindly). */
export function isAlert(v: unknown): v is Alert {
  if (v === null || typeof v !== 'object') return false;
  const a = v as Record<string, unknown>;
  return typeof a['id'] === 'string' && typeof a['ts'] === 'string' && (a['state'] === 'open' || a['state'] === 'acknowledged') && Array.isArray(a['signals']) && Array.isArray(a['actions']);
}

/**
 * The listed alerts with the live stream's alert events applied on top (oldest event first), so a
 * new alert shows before the next refetch. An alert only moves open → acknowledged: a stale `alert`
 * event never reopens one the list or a later event shows acknowledged.
 */
export function mergeAlerts(listed: readonly Alert[], streamed: readonly Record<string, unknown>[]): Alert[] {
  const byId = new Map<string, Alert>(listed.map((a) => [a.id, a]));
  for (const e of [...streamed].reverse()) {
    if (!isAlert(e)) continue;
    const known = byId.get(e.id);
    if (known?.state === 'acknowledged' && e.state !== 'acknowledged') continue;
    byId.set(e.id, e);
  }
  return [...byId.values()].sort((a, b) => (a.ts < b.ts ? 1 : a.ts > b.ts ? -1 : a.id < b.id ? 1 : -1));
}

export interface Verdict {
  ok: boolean;
  /** intact, unanchored_tail (the newest records are not yet covered by a checkpoint), broken */
  status?: string;
  unanchored?: { records: number; since: string } | null;
  records: number;
  checkpoints_verified: number;
  head_hash: string | null;
  problem: unknown;
}

export interface PolicyView {
  version: string;
  policies: { id: string; source: string; effect: string; step_up: boolean; text: string }[];
  tools: unknown[];
}

export interface ShadowRecord {
  seq: number;
  ts: string;
  call_id: string | null;
  task_id: string | null;
  tool: string | null;
  status: 'same' | 'diverged' | 'not_evaluated' | 'unreconstructable';
  recorded: { effect: string; reasons: string[] };
  draft?: { outcome: string; reason: string; policy_ids: string[] };
  note?: string;
}

export interface ShadowReport {
  ok: boolean;
  problems?: { message: string; source?: string }[];
  draft_version?: string;
  live_version?: string;
  examined?: number;
  counts?: Record<ShadowRecord['status'], number>;
  records?: ShadowRecord[];
  assumptions?: string[];
}

/** The operator actions the dashboard offers (GET /v1/operators/me names them). */
export type OperatorAction = 'kill' | 'unkill' | 'approve' | 'deny' | 'acknowledge_alert' | 'lift_containment' | 'reload_policies' | 'manage_keys';

/** The signed-in key, as the server tells it: who it is and which actions its role may take. */
export interface Me {
  readonly id: string;
  readonly name: string;
  readonly role: string;
  readonly can: Readonly<Partial<Record<OperatorAction, boolean>>>;
}

/**
 * Whether the signed-in key may take `action`: only what the server said it may (unknown while
 * loading, or when the server did not say: hidden). The server checks every request anyway.
 */
export function allowed(me: Me | undefined, action: OperatorAction): boolean {
  return me?.can[action] === true;
}

export class Api {
  readonly key: string;
  constructor(key: string) {
    this.key = key;
  }

  async request<T>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.key}` };
    const init: RequestInit = { method, headers, cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer' };
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    if (signal) init.signal = signal;
    const res = await fetch(path, init);
    const text = await res.text();
    let json: unknown;
    try {
      json = text === '' ? undefined : JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (!res.ok) {
      const err = (json as { error?: { code?: string; message?: string } } | undefined)?.error;
      throw new ApiError(res.status, err?.code ?? `HTTP_${res.status}`, err?.message ?? res.statusText);
    }
    return json as T;
  }

  get<T>(path: string, signal?: AbortSignal): Promise<T> {
    return this.request<T>('GET', path, undefined, signal);
  }
  post<T>(path: string, body: unknown = {}): Promise<T> {
    return this.request<T>('POST', path, body);
  }
  delete<T>(path: string): Promise<T> {
    return this.request<T>('DELETE', path);
  }
}

export const q = encodeURIComponent;
