import type { ReasonCode } from './reasons.ts';

/** Codes for failures that are not decisions: operator API misuse, conflicts, lookups. */
export type ErrorCode =
  | ReasonCode
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'INVALID_ARGUMENT'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'PAYLOAD_TOO_LARGE'
  | 'RATE_LIMITED'
  | 'NOT_READY'
  | 'CONFIG_INVALID'
  /** a stored private key cannot be decrypted with the configured key encryption key(s) */
  | 'KEK_MISMATCH';

/** The one error base class. `code` is stable; `message` is for humans. */
export class MandateError extends Error {
  readonly code: ErrorCode;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'MandateError';
    this.code = code;
    this.details = details;
  }
}

export function isMandateError(value: unknown): value is MandateError {
  return value instanceof MandateError;
}

/** A short, safe description of any thrown value, for audit records and logs. */
export function describeError(error: unknown): string {
  if (error instanceof MandateError) return `${error.code}: ${error.message}`;
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return 'non-error value thrown';
}
