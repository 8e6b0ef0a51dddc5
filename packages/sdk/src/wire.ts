import { MandateSdkError } from './errors.ts';

/** `POST /v1/authorize`'s answer, in the SDK's words. */
export interface Decision {
  readonly effect: 'allow' | 'deny' | 'approval_required';
  readonly final: string;
  readonly reasons: readonly string[];
  readonly policyIds: readonly string[];
  readonly policyVersion: string | undefined;
  readonly callId: string;
  readonly taskId: string | undefined;
  readonly approvalId: string | undefined;
  readonly auditSeq: number | undefined;
}

/** A task token as the server issued it. */
export interface IssuedTask {
  readonly taskId: string;
  readonly agentId: string | undefined;
  readonly mandateHash: string | undefined;
  readonly token: string;
  /** milliseconds since the epoch */
  readonly tokenExpiresAt: number;
  /** the task's own end (milliseconds since the epoch), where the server says */
  readonly taskExpiresAt: number | undefined;
}

const EFFECTS = new Set(['allow', 'deny', 'approval_required']);

function bad(what: string): never {
  throw new MandateSdkError('PROTOCOL_ERROR', `Mandate's answer is malformed: ${what}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function stringList(v: unknown, what: string): string[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) bad(`${what} is not a list of strings`);
  return v as string[];
}

function optString(v: unknown, what: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') bad(`${what} is not a string`);
  return v;
}

function time(v: unknown, what: string): number {
  const ms = typeof v === 'string' ? Date.parse(v) : NaN;
  if (!Number.isFinite(ms)) bad(`${what} is not a timestamp`);
  return ms;
}

/**
 * Reads a decision strictly. Only the exact string `allow` allows; anything that does not
 * parse is an error, never a decision.
 */
export function parseDecision(json: unknown): Decision {
  if (!isObject(json)) bad('the decision is not an object');
  const effect = json['effect'];
  if (typeof effect !== 'string' || !EFFECTS.has(effect)) bad(`effect ${JSON.stringify(effect)} is not allow, deny or approval_required`);
  const callId = json['call_id'];
  if (typeof callId !== 'string' || callId === '') bad('call_id is missing');
  const seq = json['audit_seq'];
  const approvalId = optString(json['approval_id'], 'approval_id');
  if (effect === 'approval_required' && approvalId === undefined) bad('approval_required without an approval_id');
  return {
    effect: effect as Decision['effect'],
    final: typeof json['final'] === 'string' ? json['final'] : '',
    reasons: stringList(json['reasons'], 'reasons'),
    policyIds: stringList(json['policy_ids'] ?? [], 'policy_ids'),
    policyVersion: optString(json['policy_version'], 'policy_version'),
    callId,
    taskId: optString(json['task_id'], 'task_id'),
    approvalId,
    auditSeq: typeof seq === 'number' ? seq : undefined,
  };
}

/** Reads `{task, token, token_expires_at}` (task start, renewal, delegation). */
export function parseIssued(json: unknown): IssuedTask {
  if (!isObject(json)) bad('the task answer is not an object');
  const task = json['task'];
  if (!isObject(task)) bad('task is missing');
  const id = task['id'];
  if (typeof id !== 'string' || id === '') bad('task.id is missing');
  const token = json['token'];
  if (typeof token !== 'string' || token.split('.').length !== 3) bad('token is not a JWT');
  return {
    taskId: id,
    agentId: optString(task['agent_id'], 'task.agent_id'),
    mandateHash: optString(task['mandate_hash'], 'task.mandate_hash'),
    token,
    tokenExpiresAt: time(json['token_expires_at'], 'token_expires_at'),
    taskExpiresAt: task['expires_at'] === undefined || task['expires_at'] === null ? undefined : time(task['expires_at'], 'task.expires_at'),
  };
}
