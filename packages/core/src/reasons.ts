/**
 * Stable reason codes. A decision carries one or more; errors carry exactly one.
 * Tests and clients assert on these strings, so they never change meaning.
 */
export const REASON_CODES = [
  // request shape and limits
  'MALFORMED_REQUEST',
  'LIMIT_EXCEEDED',
  // task tokens and workload tokens
  'TOKEN_MISSING',
  'TOKEN_MALFORMED',
  'TOKEN_ALG_NOT_ALLOWED',
  'TOKEN_KID_MISSING',
  'TOKEN_KEY_UNKNOWN',
  'TOKEN_SIGNATURE_INVALID',
  'TOKEN_EXPIRED',
  'TOKEN_NOT_YET_VALID',
  'TOKEN_LIFETIME_TOO_LONG',
  'TOKEN_AUDIENCE_MISMATCH',
  'TOKEN_ISSUER_MISMATCH',
  'TOKEN_CLAIMS_INVALID',
  'TOKEN_REVOKED',
  'TOKEN_TASK_MISMATCH',
  // proof of possession (RFC 9449 DPoP) for key-bound task tokens
  'DPOP_PROOF_MISSING',
  'DPOP_PROOF_INVALID',
  'DPOP_PROOF_REPLAYED',
  'DPOP_PROOF_STALE',
  'DPOP_WRONG_TARGET',
  'DPOP_KEY_MISMATCH',
  'DPOP_NONCE_REQUIRED',
  // identity
  'SPIFFE_ID_INVALID',
  'TRUST_DOMAIN_UNKNOWN',
  'AGENT_UNKNOWN',
  'AGENT_DISABLED',
  'AGENT_MISMATCH',
  // task state
  'TASK_NOT_FOUND',
  'TASK_COMPLETED',
  'TASK_EXPIRED',
  'TASK_REVOKED',
  'TASK_SUSPENDED',
  'TASK_KILLED',
  'TASK_MAX_LIFETIME_REACHED',
  'MANDATE_HASH_MISMATCH',
  // supervision of long-running tasks, re-evaluation on change
  'SUPERVISION_LAPSED',
  'SUPERVISION_STATE_MISMATCH',
  'MANDATE_NO_LONGER_FITS',
  // mandate
  'MANDATE_INVALID',
  'MANDATE_EXCEEDS_CEILING',
  'ENVIRONMENT_MISMATCH',
  'TOOL_NOT_IN_MANDATE',
  'ARG_CONSTRAINT_FAILED',
  'RESOURCE_NOT_IN_MANDATE',
  'DATA_CLASS_NOT_DECLARED',
  'OUTSIDE_TIME_WINDOW',
  'BUDGET_EXHAUSTED',
  'TOOL_BUDGET_EXHAUSTED',
  // policy
  'NO_PERMITTING_POLICY',
  'POLICY_FORBID',
  'POLICY_EVALUATION_ERROR',
  'POLICY_INVALID',
  'APPROVAL_REQUIRED',
  'APPROVAL_DENIED',
  'APPROVAL_LIMIT_REACHED',
  // control paths
  'EMERGENCY_STOP',
  'DELEGATION_NOT_ALLOWED',
  'DELEGATION_LIMIT_REACHED',
  'DELEGATION_CHAIN_BROKEN',
  'MANDATE_EXCEEDS_PARENT',
  // behavioural containment (restricts a permitted call; never permits one)
  'CONTAINMENT_STEP_UP',
  'CONTAINMENT_NARROWED',
  'CONTAINMENT_SUSPENDED',
  'CONTAINMENT_KILLED',
  // MCP gateway
  'TOOL_DESCRIPTION_CHANGED',
  // infrastructure
  'STORE_UNAVAILABLE',
  'AUDIT_UNAVAILABLE',
  'INTERNAL_ERROR',
] as const;

export type ReasonCode = (typeof REASON_CODES)[number];

const known: ReadonlySet<string> = new Set(REASON_CODES);
export function isReasonCode(value: string): value is ReasonCode {
  return known.has(value);
}
