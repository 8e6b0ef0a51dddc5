/**
 * Ports: what the core needs from the outside world. Store adapters implement the capability
 * interfaces (each checked with `satisfies`), and one conformance suite covers them all.
 * Every method is async so that a networked store fits the same shape as an embedded one.
 */
import type { AuditDraft, AuditRecord, Checkpoint, StoredAuditRecord } from './audit/chain.ts';
import type { JsonObject } from './json.ts';
import type { Agent, AgentStatus, Approval, ApprovalState, BudgetLimits, BudgetUsage, OperatorKey, SigningKey, Task, TaskState } from './model.ts';
import type { Ceiling } from './mandate/schema.ts';
import type { Alert, AlertState, Severity } from './behaviour/types.ts';
import type { ContainmentStore } from './behaviour/monitor.ts';
import type { ContainmentLifts } from './behaviour/lift.ts';
import type { LabelStore } from './provenance/labels.ts';

export type { ContainmentStore } from './behaviour/monitor.ts';
export type { LabelStore } from './provenance/labels.ts';

export interface Clock {
  /** milliseconds since the epoch */
  now(): number;
}

export interface IdGenerator {
  /** a new unique, unguessable id with the given prefix */
  next(prefix: string): string;
}

export interface Hasher {
  /** lowercase hex SHA-256 of the UTF-8 bytes of `data` */
  sha256Hex(data: string): string;
}

export interface AgentReader {
  getAgent(id: string): Promise<Agent | undefined>;
  listAgents(opts: { limit: number; after?: string | undefined }): Promise<Agent[]>;
}

export interface AgentWriter {
  /** throws MandateError CONFLICT when the id exists */
  createAgent(agent: Agent): Promise<void>;
  /** throws NOT_FOUND when the id does not exist; returns the updated agent */
  updateAgent(
    id: string,
    patch: { status?: AgentStatus; owner?: string; type?: string; ceiling?: Ceiling },
    at: number,
  ): Promise<Agent>;
}

export interface TaskReader {
  getTask(id: string): Promise<Task | undefined>;
  listTasks(opts: { limit: number; agentId?: string | undefined; state?: TaskState | undefined; after?: string | undefined }): Promise<Task[]>;
  /** the direct children of a task (delegated sub-tasks), oldest first */
  listChildren(parentId: string): Promise<Task[]>;
}

export interface TaskWriter {
  createTask(task: Task): Promise<void>;
  /**
   * Compare-and-set state transition: moves the task to `to` only when its current state is
   * one of `from`. Returns the task after the call and whether this call changed it.
   */
  transitionTask(
    id: string,
    from: readonly TaskState[],
    to: TaskState,
    at: number,
    reason: string,
  ): Promise<{ changed: boolean; task: Task | undefined }>;
  /** moves expiresAt forward (never backward, never past maxExpiresAt) of an active task */
  extendTask(id: string, expiresAt: number): Promise<Task | undefined>;
}

export interface ApprovalStore {
  createApproval(a: Approval): Promise<void>;
  getApproval(id: string): Promise<Approval | undefined>;
  /** the newest approval for this exact call (task, tool, args hash) that has not expired at `now`, in any state */
  findApproval(taskId: string, tool: string, argsHash: string, now: number): Promise<Approval | undefined>;
  listApprovals(opts: { limit: number; state?: ApprovalState | undefined; taskId?: string | undefined; after?: string | undefined }): Promise<Approval[]>;
  /** pending approvals of a task not yet expired at `now` */
  countPending(taskId: string, now: number): Promise<number>;
  /** compare-and-set: moves the approval to `to` only from one of `from` (single use rests on this) */
  transitionApproval(
    id: string,
    from: readonly ApprovalState[],
    to: ApprovalState,
    patch: { at: number; by?: string | undefined; reason?: string | undefined; callId?: string | undefined },
  ): Promise<{ changed: boolean; approval: Approval | undefined }>;
  /** pending or approved approvals of these tasks → cancelled; returns those it cancelled */
  cancelForTasks(taskIds: readonly string[], at: number, reason: string): Promise<Approval[]>;
  /** pending or approved approvals past their expiry → expired; returns those it expired */
  expireApprovals(now: number): Promise<Approval[]>;
}

/** Small, durable switches (the emergency stop). */
export interface ControlStore {
  getControl(key: string): Promise<JsonObject | undefined>;
  /** sets (or, with undefined, clears) a control */
  setControl(key: string, value: JsonObject | undefined, at: number): Promise<void>;
}

export interface RevocationStore {
  /** revokes one credential by its `jti` until `expiresAt` (after which it is dead anyway) */
  revokeToken(jti: string, taskId: string, expiresAt: number, reason: string, at: number): Promise<void>;
  /**
   * Whether `jti` is revoked. With `now`, a revocation whose `at` lies after `now` (scheduled:
   * a renewed token's grace window) does not count yet; without it, every revocation counts.
   */
  isTokenRevoked(jti: string, now?: number): Promise<boolean>;
  /**
   * Single use: records `key` as used (revoked until `expiresAt`) only when no record of it
   * exists, in one atomic step (insert-if-absent), and returns whether this call recorded it.
   * Of N concurrent calls with one key, on one node or many, exactly one returns true; a key
   * already revoked through `revokeToken` counts as used. A check and a write apart would let
   * concurrent uses all pass the check.
   */
  useOnce(key: string, taskId: string, expiresAt: number, reason: string, at: number): Promise<boolean>;
}

/** What Mandate knows of a task's supervision and key binding. */
export interface TaskSupervision {
  readonly taskId: string;
  /** the RFC 7638 thumbprint of the key the task's tokens are bound to */
  readonly jkt: string | undefined;
  /** the last time the task showed it is supervised: start, a heartbeat, a matching signed state */
  readonly supervisedAt: number;
}

export interface SupervisionStore {
  /** creates the task's row (a second call for the same task changes nothing) */
  initSupervision(taskId: string, jkt: string | undefined, at: number): Promise<void>;
  getSupervision(taskId: string): Promise<TaskSupervision | undefined>;
  /** moves supervisedAt forward, never back; false when the task has no row */
  recordSupervision(taskId: string, at: number): Promise<boolean>;
  /** ids of active tasks last supervised before `before`, oldest first, at most `limit` */
  listUnsupervised(before: number, limit: number): Promise<string[]>;
  /** from the audit log: how many calls of the task were allowed, and the last one's call id */
  taskProgress(taskId: string): Promise<{ allowedCalls: number; lastCallId: string | null }>;
}

export interface BudgetLedger {
  /**
   * Atomically counts one call against the task's total and per-tool budgets. Counts nothing
   * and returns ok=false when either limit is already reached.
   */
  consume(taskId: string, tool: string, limits: BudgetLimits): Promise<{ ok: boolean; usage: BudgetUsage; exhausted?: 'calls' | 'tool' }>;
  usage(taskId: string, tool: string): Promise<BudgetUsage>;
  /**
   * Atomically sets `calls` of a task's total budget aside (a delegated child's share): only when
   * used + calls stays within `limit`. Returns whether it did.
   */
  carve(taskId: string, calls: number, limit: number): Promise<boolean>;
}

export interface AuditAppender {
  /**
   * Appends records to the hash chain, in order, and resolves only when they are durably
   * committed. Rejects when they are not; the caller must then treat the call as denied.
   */
  append(drafts: readonly AuditDraft[]): Promise<AuditRecord[]>;
}

/** A decision's audit records, and the budget it spends if it is an allow. */
export interface DecisionCommit {
  /** the records to write (for an allow: the allow records, written only if the budget allows) */
  readonly drafts: readonly AuditDraft[];
  readonly budget?: {
    readonly taskId: string;
    readonly tool: string;
    readonly limits: BudgetLimits;
    /**
     * The records to write instead when the total or the per-tool budget is already used up,
     * built only then (inside the commit, so they must not fail where the allow's did not).
     */
    readonly exhausted: (which: 'calls' | 'tool') => readonly AuditDraft[];
  };
  /**
   * Nobody waits on these records to answer a call (an outcome record): they may wait a few
   * milliseconds to share the next commit instead of forcing one. The promise still resolves
   * only once they are durably committed, and the chain keeps submission order.
   */
  readonly lazy?: boolean;
}

export interface DecisionCommitResult {
  readonly records: AuditRecord[];
  /** present when the commit carried a budget: whether the call was counted */
  readonly budget?: { ok: boolean; usage: BudgetUsage; exhausted?: 'calls' | 'tool' };
}

export interface DecisionCommitter {
  /**
   * Spends the budget (check and increment) and appends the records in ONE durable transaction,
   * group-committed with concurrent decisions: an allow is counted exactly when its records are
   * committed, and a crash can lose neither without the other. Rejects when nothing committed.
   */
  commitDecision(entry: DecisionCommit): Promise<DecisionCommitResult>;
}

export interface AuditReader {
  /** last record, or undefined for an empty log */
  head(): Promise<AuditRecord | undefined>;
  /** records with seq >= fromSeq, ascending, at most `limit` */
  readRange(fromSeq: number, limit: number): Promise<AuditRecord[]>;
  /**
   * `readRange` with each record's data as its stored text, not parsed: what a walk of the whole
   * chain reads (`verifyAuditLog`), without building a value per record
   */
  readStored(fromSeq: number, limit: number): Promise<StoredAuditRecord[]>;
  /** records of one task, ascending (never those of another task whose call id equals `taskId`) */
  readByTask(taskId: string, limit: number): Promise<AuditRecord[]>;
}

export interface CheckpointStore {
  addCheckpoint(cp: Checkpoint): Promise<void>;
  listCheckpoints(): Promise<Checkpoint[]>;
}

export interface KeyStore {
  listKeys(purpose: SigningKey['purpose']): Promise<SigningKey[]>;
  addKey(key: SigningKey): Promise<void>;
  retireKey(kid: string, at: number): Promise<void>;
}

/** Rewrites a stored key's private part in place: its encryption at rest (a new KEK, or none before). */
export interface PrivateKeyRewriter {
  /** sets the stored private JWK of `kid`, nothing else of the row; throws NOT_FOUND for an unknown kid */
  replacePrivateKey(kid: string, privateJwk: JsonObject): Promise<void>;
}

export interface OperatorKeyStore {
  createOperatorKey(key: OperatorKey): Promise<void>;
  findOperatorKeyByHash(secretHash: string): Promise<OperatorKey | undefined>;
  listOperatorKeys(): Promise<OperatorKey[]>;
  revokeOperatorKey(id: string, at: number): Promise<boolean>;
}

/** Behavioural alerts, listed and acknowledged by operators. */
export interface AlertStore {
  /** throws MandateError CONFLICT when the id exists */
  createAlert(a: Alert): Promise<void>;
  getAlert(id: string): Promise<Alert | undefined>;
  /** by time then id; `minSeverity` keeps alerts of that severity or higher */
  listAlerts(opts: {
    limit: number;
    after?: string | undefined;
    state?: AlertState | undefined;
    taskId?: string | undefined;
    agentId?: string | undefined;
    minSeverity?: Severity | undefined;
  }): Promise<Alert[]>;
  /** compare-and-set open → acknowledged; returns the alert after the call and whether this call changed it */
  ackAlert(id: string, by: string, at: number, note: string | undefined): Promise<{ changed: boolean; alert: Alert | undefined }>;
}

/** A stored alert and its place in the store's order: the order webhooks receive alerts in. */
export interface SequencedAlert {
  /** 1, 2, 3… in the order alerts were stored (commit order, on every node) */
  readonly seq: number;
  readonly alert: Alert;
}

/** Where one webhook's delivery stands: its cursor, its counters and who holds its lease. */
export interface AlertSinkState {
  readonly sink: string;
  /** the place of the last alert delivered or dropped; later ones are still owed */
  readonly cursor: number;
  readonly delivered: number;
  readonly dropped: number;
  /** the node delivering now, while `leaseUntil` has not passed */
  readonly owner: string | undefined;
  readonly leaseUntil: number;
  readonly lastError: string | undefined;
  readonly updatedAt: number;
}

/**
 * Durable alert delivery: each webhook (a sink) keeps a cursor into the stored alerts, so an
 * alert is delivered after any outage or restart; a lease lets one node at a time deliver it.
 */
export interface AlertSinkStore {
  /** the place of the newest stored alert (0 when there is none) */
  alertHead(): Promise<number>;
  /** alerts stored after place `after`, in store order, at most `limit` */
  alertsAfter(after: number, limit: number): Promise<SequencedAlert[]>;
  /** registers a sink once, its cursor at the head then (a new sink is not sent the past); returns its state */
  openSink(sink: string, now: number): Promise<AlertSinkState>;
  /**
   * Takes or renews the sink's lease for `owner` until `until`, unless another owner holds a
   * lease that has not expired at `now`. The state when `owner` holds it, else undefined.
   */
  claimSink(sink: string, owner: string, now: number, until: number): Promise<AlertSinkState | undefined>;
  /**
   * Moves the cursor forward to `to` (never back), adds the counts and records the last error
   * (undefined clears it), only while `owner` holds the lease. False when it does not.
   */
  advanceSink(sink: string, owner: string, to: number, counts: { delivered: number; dropped: number }, lastError: string | undefined, now: number): Promise<boolean>;
  /** gives the lease up (a node closing), so another node need not wait for it to expire */
  releaseSink(sink: string, owner: string): Promise<void>;
  listSinks(): Promise<AlertSinkState[]>;
}

/** Which kind of kill a kill event records. */
export type KillKind = 'agent' | 'task' | 'emergency_stop';

/** One kill, as the kill hooks' outbox keeps it: written in the kill path, delivered later. */
export interface KillEvent {
  /** unique; with the hook's name, the delivery id receivers dedupe on */
  readonly id: string;
  readonly ts: number;
  readonly kind: KillKind;
  /** what the kill reports (target, reason, killed tasks…), as the receivers get it */
  readonly data: JsonObject;
}

/** A stored kill event and its place in the outbox's order (commit order, on every node). */
export interface SequencedKillEvent {
  readonly seq: number;
  readonly event: KillEvent;
}

/**
 * The kill hooks' durable outbox: every kill is appended once, and each hook reads it through a
 * cursor and a lease kept beside the alert webhooks' (claimSink, advanceSink… of AlertSinkStore).
 */
export interface KillOutbox {
  /** throws MandateError CONFLICT when the id exists */
  appendKillEvent(e: KillEvent): Promise<number>;
  /** the place of the newest kill event (0 when there is none) */
  killEventHead(): Promise<number>;
  /** kill events after place `after`, in store order, at most `limit` */
  killEventsAfter(after: number, limit: number): Promise<SequencedKillEvent[]>;
  /** registers a hook's sink once, its cursor at the outbox's head then; returns its state */
  openKillSink(sink: string, now: number): Promise<AlertSinkState>;
}

/** Everything a full store adapter provides. */
export interface Store {
  readonly agents: AgentReader & AgentWriter;
  readonly tasks: TaskReader & TaskWriter;
  readonly revocations: RevocationStore;
  readonly supervision: SupervisionStore;
  readonly approvals: ApprovalStore;
  readonly controls: ControlStore;
  readonly budgets: BudgetLedger;
  readonly audit: AuditAppender & AuditReader & DecisionCommitter;
  readonly checkpoints: CheckpointStore;
  readonly keys: KeyStore & PrivateKeyRewriter;
  readonly operators: OperatorKeyStore;
  readonly alerts: AlertStore;
  readonly alertSinks: AlertSinkStore;
  readonly killOutbox: KillOutbox;
  readonly containment: ContainmentStore & ContainmentLifts;
  /** provenance labels of values written to shared resources (provenance/labels.ts) */
  readonly labels: LabelStore;
  /** true when the store answers */
  ping(): Promise<boolean>;
  /**
   * Commits a small write that leaves nothing behind and never touches the audit chain, and
   * rejects (STORE_UNAVAILABLE, AUDIT_UNAVAILABLE) when the store cannot commit: a full disk, an
   * I/O error, a failed sync. Readiness asks it when no recent commit says so.
   */
  probeWrite(): Promise<void>;
  close(): Promise<void>;
}
