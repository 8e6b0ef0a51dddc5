import type { JsonObject } from './json.ts';
import type { Ceiling, Mandate } from './mandate/schema.ts';
import type { ReasonCode } from './reasons.ts';
import type { ContainmentAction, Signal } from './behaviour/types.ts';
import type { ProofResult } from './tokens/dpop.ts';
import type { ArgProvenance } from './policy/context.ts';
import type { SharedResource } from './provenance/labels.ts';

export type AgentStatus = 'active' | 'disabled';

/** A registered non-human identity. */
export interface Agent {
  /** SPIFFE ID */
  readonly id: string;
  readonly owner: string;
  readonly type: string;
  readonly status: AgentStatus;
  readonly ceiling: Ceiling;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export type TaskState = 'active' | 'completed' | 'expired' | 'suspended' | 'revoked' | 'killed';
export const TERMINAL_TASK_STATES: ReadonlySet<TaskState> = new Set(['completed', 'expired', 'revoked', 'killed']);

/** Why a task in this state cannot act (the reason code of the deny). */
export const TASK_STATE_REASON = {
  completed: 'TASK_COMPLETED',
  expired: 'TASK_EXPIRED',
  suspended: 'TASK_SUSPENDED',
  revoked: 'TASK_REVOKED',
  killed: 'TASK_KILLED',
} as const satisfies Record<Exclude<TaskState, 'active'>, ReasonCode>;

/** One execution under one mandate. */
export interface Task {
  readonly id: string;
  readonly agentId: string;
  readonly mandate: Mandate;
  readonly mandateHash: string;
  readonly state: TaskState;
  /** transaction id carried into audit records (transaction-token style) */
  readonly txn: string;
  readonly parentId: string | undefined;
  readonly depth: number;
  readonly createdAt: number;
  /** current end of life; renewal moves it, never past maxExpiresAt */
  readonly expiresAt: number;
  /** hard end of life fixed at start */
  readonly maxExpiresAt: number;
  readonly endedAt: number | undefined;
  readonly endReason: string | undefined;
}

export type ApprovalState = 'pending' | 'approved' | 'denied' | 'used' | 'expired' | 'cancelled';

/** A human decision bound to one call: task, tool, canonical hash of the arguments. Single-use. */
export interface Approval {
  readonly id: string;
  readonly taskId: string;
  readonly agentId: string;
  readonly tool: string;
  readonly argsHash: string;
  readonly resource: string | undefined;
  /** the call that asked for it */
  readonly callId: string;
  readonly state: ApprovalState;
  /** the policies (or mandate rule) that asked for the step-up */
  readonly policyIds: readonly string[];
  /** the arguments with secrets redacted, for the approver to read */
  readonly args: JsonObject;
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly decidedAt: number | undefined;
  readonly decidedBy: string | undefined;
  readonly reason: string | undefined;
  readonly usedAt: number | undefined;
  readonly usedCallId: string | undefined;
}

export type Effect = 'allow' | 'deny' | 'approval_required';
/** What the system did (or, for a PDP answer, tells the caller to do). */
export type FinalAction = 'allowed' | 'blocked' | 'held';

/** One request to use a tool, inside a task. */
export interface CallRequest {
  readonly taskToken: string;
  readonly tool: string;
  readonly resource?: string | undefined;
  readonly args: JsonObject;
  /** caller-chosen id for idempotent correlation; generated when absent */
  readonly callId?: string | undefined;
  /** when the caller names the task, it must be the token's task */
  readonly taskId?: string | undefined;
  /**
   * The DPoP proof the enforcement point verified for this request (method, URL, token hash,
   * freshness, replay); undefined when the request carried none. Set by the edge, never parsed
   * from a request body. A key-bound token (`cnf.jkt`) is denied without a matching one.
   */
  readonly proof?: ProofResult | undefined;
}

export interface Decision {
  readonly callId: string;
  readonly effect: Effect;
  readonly reasons: readonly ReasonCode[];
  readonly policyIds: readonly string[];
  readonly policyVersion: string;
  readonly final: FinalAction;
  readonly taskId: string | undefined;
  readonly agentId: string | undefined;
  /** human-readable detail for each reason (never secrets) */
  readonly details: readonly string[];
  /** evaluation errors Cedar reported, by policy id */
  readonly errors: readonly { policyId: string; message: string }[];
  readonly auditSeq: number | undefined;
  /** the approval a held call waits for, or the approval an allow consumed */
  readonly approvalId?: string | undefined;
  /** with behaviour on: the policy's own answer, before containment restricted it */
  readonly policyEffect?: Effect | undefined;
  /** with behaviour on: what the detectors found for this call */
  readonly signals?: readonly Signal[] | undefined;
  /** with behaviour on: the containment actions this call's signals caused */
  readonly containment?: readonly ContainmentAction[] | undefined;
  /** where the arguments' values came from, when they were classified (for explaining a decision) */
  readonly provenance?: ArgProvenance | undefined;
}

/** Classification of a tool, from the organisation's tool catalogue. */
export interface ToolInfo {
  readonly name: string;
  /** read | write | external_sink | exec | unknown (free-form for organisations) */
  readonly category: string;
  readonly risk: string;
  readonly dataClasses: readonly string[];
  /** whether the tool's output may carry instructions from outside (untrusted) */
  readonly outputTrust: 'trusted' | 'untrusted';
  /** output fields the operator vouches for when the output as a whole is untrusted (key paths) */
  readonly trustedFields?: readonly string[] | undefined;
  /** arguments that name where data, money or access goes (a recipient, an IBAN, a URL, an invitee) */
  readonly sinkArgs?: readonly string[] | undefined;
  /** arguments whose content goes out or is written (a body, a subject, a file's content, a password) */
  readonly contentArgs?: readonly string[] | undefined;
  /** the shared resource the tool reaches (provenance/labels.ts) */
  readonly shared?: SharedResource | undefined;
}

export interface BudgetLimits {
  readonly calls?: number | undefined;
  readonly toolCalls?: number | undefined;
}

export interface BudgetUsage {
  readonly calls: number;
  readonly toolCalls: number;
}

export interface SigningKey {
  readonly kid: string;
  readonly purpose: 'task-token' | 'audit-checkpoint' | 'dev-issuer';
  readonly alg: 'EdDSA' | 'ES256';
  readonly publicJwk: JsonObject;
  readonly privateJwk: JsonObject;
  readonly status: 'active' | 'retired';
  readonly createdAt: number;
  readonly retiredAt: number | undefined;
}

export type OperatorRole = 'viewer' | 'approver' | 'admin';

export interface OperatorKey {
  readonly id: string;
  readonly name: string;
  readonly role: OperatorRole;
  /** SHA-256 of the secret; the secret itself is never stored */
  readonly secretHash: string;
  readonly createdAt: number;
  readonly revokedAt: number | undefined;
}
