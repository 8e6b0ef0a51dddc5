/**
 * AuthZEN Authorization API 1.0 requests (§5 information model, §6 Access Evaluation, §7 Access
 * Evaluations): parsed into plain evaluation tuples, with batch defaults applied.
 *
 * - unknown fields are ignored (§10.1.1: receivers MUST ignore unknown fields), and a JSON `null`
 *   counts as absent (§11 JSON payload considerations: nulls SHOULD be omitted);
 * - a missing or mistyped required attribute is MALFORMED_REQUEST, which the edge answers with
 *   400 (§10.1.1: the server MUST return a "Bad Request" error);
 * - an item's `subject`, `action`, `resource` or `context` replaces the top-level default whole
 *   (§7.1.1); a default is only checked where an item uses it.
 */
import { z } from 'zod';
import { MandateError } from '../errors.ts';
import type { JsonObject } from '../json.ts';
import { zodIssues } from '../mandate/parse.ts';

export const EVALUATIONS_SEMANTICS = ['execute_all', 'deny_on_first_deny', 'permit_on_first_permit'] as const;
export type EvaluationsSemantic = (typeof EVALUATIONS_SEMANTICS)[number];

/** A Subject or a Resource (§5.1, §5.2). */
export interface AuthzenEntity {
  readonly type: string;
  readonly id: string;
  readonly properties: JsonObject | undefined;
}

/** An Action (§5.3). */
export interface AuthzenAction {
  readonly name: string;
  readonly properties: JsonObject | undefined;
}

/** One access evaluation: the request of §6.1, or one item of §7.1 with its defaults applied. */
export interface AuthzenEvaluation {
  readonly subject: AuthzenEntity;
  readonly action: AuthzenAction;
  readonly resource: AuthzenEntity;
  readonly context: JsonObject;
}

export interface AuthzenEvaluationsRequest {
  /** undefined when the `evaluations` array is absent or empty: answered as a single evaluation (§7.1) */
  readonly evaluations: readonly AuthzenEvaluation[] | undefined;
  readonly single: AuthzenEvaluation | undefined;
  readonly semantic: EvaluationsSemantic;
}

export interface AuthzenRequestLimits {
  /** most items in one `evaluations` array */
  readonly maxEvaluations: number;
}

const MAX_TYPE = 256;
const MAX_ID = 1024;
const MAX_NAME = 256;

const jsonObject = z.custom<JsonObject>((v) => typeof v === 'object' && v !== null && !Array.isArray(v), 'expected an object');
const optionalObject = jsonObject.nullish().transform((v) => v ?? undefined);

const entitySchema = z.object({
  type: z.string().min(1).max(MAX_TYPE),
  id: z.string().max(MAX_ID),
  properties: optionalObject,
});

const actionSchema = z.object({
  name: z.string().min(1).max(MAX_NAME),
  properties: optionalObject,
});

type Part = 'subject' | 'action' | 'resource' | 'context';

function parsePart<T>(schema: z.ZodType<T>, value: unknown, where: string): T {
  const r = schema.safeParse(value);
  if (!r.success) throw new MandateError('MALFORMED_REQUEST', `invalid ${where}: ${zodIssues(r.error, where, 5)}`);
  return r.data;
}

function asObject(value: unknown, where: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new MandateError('MALFORMED_REQUEST', `${where} must be a JSON object`);
  }
  return value as Record<string, unknown>;
}

/** a present value, or undefined for absent and JSON null */
function present(obj: Record<string, unknown>, key: Part): unknown {
  const v = Object.hasOwn(obj, key) ? obj[key] : undefined;
  return v === null ? undefined : v;
}

function tuple(item: Record<string, unknown>, defaults: Record<string, unknown>, where: string): AuthzenEvaluation {
  const pick = (key: Part): { value: unknown; at: string } => {
    const own = present(item, key);
    if (own !== undefined) return { value: own, at: `${where}.${key}` };
    return { value: present(defaults, key), at: `${key} (the top-level default)` };
  };
  const required = (key: 'subject' | 'action' | 'resource'): { value: unknown; at: string } => {
    const p = pick(key);
    if (p.value === undefined) throw new MandateError('MALFORMED_REQUEST', `${where}.${key} is required (in the item or as a top-level default)`);
    return p;
  };
  const s = required('subject');
  const a = required('action');
  const r = required('resource');
  const c = pick('context');
  return {
    subject: parsePart(entitySchema, s.value, s.at),
    action: parsePart(actionSchema, a.value, a.at),
    resource: parsePart(entitySchema, r.value, r.at),
    context: c.value === undefined ? {} : parsePart(jsonObject, c.value, c.at),
  };
}

/** The body of `POST /access/v1/evaluation` (§6.1). */
export function parseEvaluationRequest(body: unknown): AuthzenEvaluation {
  return tuple(asObject(body, 'the request body'), {}, 'request');
}

/** The body of `POST /access/v1/evaluations` (§7.1). */
export function parseEvaluationsRequest(body: unknown, limits: AuthzenRequestLimits): AuthzenEvaluationsRequest {
  const top = asObject(body, 'the request body');
  for (const key of ['subject', 'action', 'resource', 'context'] as const) {
    const v = present(top, key);
    if (v !== undefined) asObject(v, key);
  }
  let semantic: EvaluationsSemantic = 'execute_all';
  const options = Object.hasOwn(top, 'options') && top['options'] !== null ? asObject(top['options'], 'options') : {};
  const chosen = Object.hasOwn(options, 'evaluations_semantic') ? options['evaluations_semantic'] : undefined;
  if (chosen !== undefined && chosen !== null) {
    if (typeof chosen !== 'string' || !(EVALUATIONS_SEMANTICS as readonly string[]).includes(chosen)) {
      throw new MandateError('MALFORMED_REQUEST', `options.evaluations_semantic must be one of ${EVALUATIONS_SEMANTICS.join(', ')}`);
    }
    semantic = chosen as EvaluationsSemantic;
  }
  const list = Object.hasOwn(top, 'evaluations') ? top['evaluations'] : undefined;
  if (list === undefined || list === null || (Array.isArray(list) && list.length === 0)) {
    // §7.1: without items, the request behaves as a single Access Evaluation Request
    return { evaluations: undefined, single: tuple(top, {}, 'request'), semantic };
  }
  if (!Array.isArray(list)) throw new MandateError('MALFORMED_REQUEST', 'evaluations must be an array');
  if (list.length > limits.maxEvaluations) {
    throw new MandateError('LIMIT_EXCEEDED', `evaluations has ${list.length} items; at most ${limits.maxEvaluations} are accepted in one request`);
  }
  const evaluations = list.map((item: unknown, i) => tuple(asObject(item, `evaluations[${i}]`), top, `evaluations[${i}]`));
  return { evaluations, single: undefined, semantic };
}
