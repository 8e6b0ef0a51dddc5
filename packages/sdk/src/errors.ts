/**
 * One error base class with a closed union of codes. A guarded tool never runs when any of
 * these is thrown: a deny, a held call, a server that does not answer or answers nonsense.
 */
export type SdkErrorCode =
  /** Mandate decided `deny`: `reasons` says why */
  | 'DENIED'
  /** Mandate decided `approval_required` and no approval came in time (or waiting is off) */
  | 'APPROVAL_REQUIRED'
  /** the server answered with an error envelope (a 4xx or a 5xx): `serverCode` is its code */
  | 'API_ERROR'
  /** the server could not be reached, timed out, or kept failing after the retries */
  | 'UNAVAILABLE'
  /** the server's answer was not what the protocol says (garbage JSON, a missing field…) */
  | 'PROTOCOL_ERROR'
  /** the caller gave up (an AbortSignal) */
  | 'ABORTED'
  /** the client's `dpopKey` cannot make proofs (not an Ed25519 or P-256 signing key pair) */
  | 'DPOP_KEY_INVALID'
  /** the task was killed, revoked, suspended, completed or expired: a guarded call in flight was cut off, or a new one refused */
  | 'HALTED'
  /** the task's kill watch has had no live stream for too long: guarded calls fail closed until it is back */
  | 'KILL_WATCH_LOST';

export class MandateSdkError extends Error {
  readonly code: SdkErrorCode;

  constructor(code: SdkErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MandateSdkError';
    this.code = code;
  }
}

/** The parts of a decision a refusal carries, for logs and for the model. */
export interface RefusedCall {
  readonly tool: string;
  readonly callId: string | undefined;
  readonly reasons: readonly string[];
  readonly policyIds: readonly string[];
}

function because(reasons: readonly string[], policyIds: readonly string[]): string {
  const why = reasons.length > 0 ? reasons.join(', ') : 'no reason given';
  return policyIds.length > 0 ? `${why} (policy ${policyIds.join(', ')})` : why;
}

/** Mandate denied the call. The message names the reason codes so a framework shows them to the model. */
export class MandateDeniedError extends MandateSdkError {
  readonly tool: string;
  readonly callId: string | undefined;
  readonly reasons: readonly string[];
  readonly policyIds: readonly string[];

  constructor(call: RefusedCall) {
    super('DENIED', `Mandate denied the call to ${call.tool}: ${because(call.reasons, call.policyIds)}`);
    this.name = 'MandateDeniedError';
    this.tool = call.tool;
    this.callId = call.callId;
    this.reasons = call.reasons;
    this.policyIds = call.policyIds;
  }
}

/** The call needs a human's approval; it was not given in time (or the guard was told not to wait). */
export class MandateApprovalRequiredError extends MandateSdkError {
  readonly tool: string;
  readonly callId: string | undefined;
  readonly approvalId: string | undefined;
  readonly reasons: readonly string[];
  readonly policyIds: readonly string[];

  constructor(call: RefusedCall & { readonly approvalId: string | undefined }, waitedMs: number) {
    const waited = waitedMs > 0 ? ` after waiting ${Math.round(waitedMs / 1000)} s` : '';
    super('APPROVAL_REQUIRED', `Mandate holds the call to ${call.tool} for a human's approval${call.approvalId ? ` (${call.approvalId})` : ''}${waited}: ${because(call.reasons, call.policyIds)}`);
    this.name = 'MandateApprovalRequiredError';
    this.tool = call.tool;
    this.callId = call.callId;
    this.approvalId = call.approvalId;
    this.reasons = call.reasons;
    this.policyIds = call.policyIds;
  }
}

/** The server answered with its error envelope `{"error": {"code", "message", "requestId"}}` or a bare status. */
export class MandateApiError extends MandateSdkError {
  readonly status: number;
  readonly serverCode: string;
  readonly requestId: string | undefined;

  constructor(status: number, serverCode: string, message: string, requestId: string | undefined) {
    super(status >= 500 ? 'UNAVAILABLE' : 'API_ERROR', `Mandate answered ${status} ${serverCode}: ${message}`);
    this.name = 'MandateApiError';
    this.status = status;
    this.serverCode = serverCode;
    this.requestId = requestId;
  }
}

/**
 * The task ended (or was suspended) while a guarded call ran, or before one started: the call's
 * AbortSignal fired with this error as its reason. `reason` is the server's code for the end
 * (TASK_KILLED, TASK_REVOKED, TASK_SUSPENDED, TASK_COMPLETED, TASK_EXPIRED).
 */
export class MandateHaltedError extends MandateSdkError {
  readonly taskId: string;
  readonly reason: string;
  /** the words given with the end (an operator's kill reason), at most 500 characters */
  readonly detail: string;

  constructor(end: { readonly taskId: string; readonly code: string; readonly reason: string }, what = 'the call') {
    super('HALTED', `Mandate halted ${what}: task ${end.taskId} ended with ${end.code}${end.reason !== '' ? ` (${end.reason})` : ''}`);
    this.name = 'MandateHaltedError';
    this.taskId = end.taskId;
    this.reason = end.code;
    this.detail = end.reason;
  }
}

export function isMandateSdkError(e: unknown): e is MandateSdkError {
  return e instanceof MandateSdkError;
}
