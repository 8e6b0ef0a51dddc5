export { MandateClient, DEFAULT_APPROVAL_WAIT, type MandateClientOptions, type StartTaskOptions } from './client.ts';
export { KillWatch, type KillWatchOptions, type KillWatchState, type TaskEndNotice } from './kill-watch.ts';
export { MandateTask, type ApprovalWait, type CallOptions, type GuardOptions, type ToolCall } from './task.ts';
export { MandateSdkError, MandateDeniedError, MandateApprovalRequiredError, MandateApiError, MandateHaltedError, isMandateSdkError, type SdkErrorCode, type RefusedCall } from './errors.ts';
export { DEFAULT_RETRY, type RetryOptions, type RequestKind } from './http.ts';
export { workloadTokenFromEnv, type WorkloadTokenSource } from './workload.ts';
export type { Decision, IssuedTask } from './wire.ts';
export { createDpopProof, dpopThumbprint, type DpopKeyPair, type ProofRequest } from './dpop.ts';
export { verifyKillHook, MemorySeenDeliveries, type SeenDeliveries, type MemorySeenDeliveriesOptions, type KillHookEvent, type KillHookRefusal, type KillHookVerification, type VerifyKillHookOptions, type HookHeaders } from './kill-hooks.ts';
