/**
 * The generic PDP: AuthZEN evaluations over plain principals (users, services) and resources,
 * decided by a separate Cedar policy domain that operators configure. The mapping:
 *
 *   subject  {type, id, properties}  ->  principal  <TypeMapper(type)>::"id"
 *   resource {type, id, properties}  ->  resource   <TypeMapper(type)>::"id"
 *   action   {name}                  ->  action     <namespace>::Action::"name"
 *   context                          ->  context (a record)
 *
 * An entity's attributes are the entity store's, with the request's `properties` merged over
 * them; its parents are the store's. Decided by PolicySet with the engine's fail-closed rules:
 * any Cedar error is a deny, a `@step_up` forbid is approval_required (a `false` for AuthZEN).
 */
import { canonicalJson, type JsonObject } from '../json.ts';
import { describeError, isMandateError, type ErrorCode } from '../errors.ts';
import type { Effect } from '../model.ts';
import type { CedarRequest, PolicySet } from '../policy/engine.ts';
import type { ReasonCode } from '../reasons.ts';
import { cedarRecord, uidKey, type EntityUid, type TypeMapper } from './cedar-json.ts';
import type { CedarEntityJson, EntityStore } from './entities.ts';
import type { AuthzenEntity, AuthzenEvaluation } from './request.ts';
import type { SchemaInfo } from './schema-info.ts';

/** One version of the generic policy domain; a reload or an entity change swaps in another. */
export interface GenericDomain {
  readonly policies: PolicySet;
  readonly schema: SchemaInfo | undefined;
  readonly entities: EntityStore;
  readonly types: TypeMapper;
}

export interface AuthzenOutcome {
  readonly effect: Effect;
  readonly reasons: readonly ReasonCode[];
  readonly policyIds: readonly string[];
  readonly policyVersion: string;
  readonly details: readonly string[];
  readonly errors: readonly { policyId: string; message: string }[];
  /** set when the item itself could not be evaluated (the edge gives it an HTTP-like status) */
  readonly failure?: { readonly code: ErrorCode; readonly message: string } | undefined;
}

/**
 * Shaped entities of one batch, so that a subject (or resource) repeated across the items of an
 * `evaluations` request is converted once.
 */
export class EntityShapes {
  private readonly shapes = new Map<string, { uid: EntityUid; entity: CedarEntityJson | undefined }>();

  shape(domain: GenericDomain, az: AuthzenEntity, role: 'subject' | 'resource'): { uid: EntityUid; entity: CedarEntityJson | undefined } {
    const key = `${role}\u0000${az.type}\u0000${az.id}\u0000${az.properties === undefined ? '' : canonicalJson(az.properties)}`;
    let s = this.shapes.get(key);
    if (s === undefined) {
      s = shapeEntity(domain, az, role);
      if (this.shapes.size < 4096) this.shapes.set(key, s);
    }
    return s;
  }
}

function shapeEntity(domain: GenericDomain, az: AuthzenEntity, role: string): { uid: EntityUid; entity: CedarEntityJson | undefined } {
  const uid = { type: domain.types.entityType(az.type), id: az.id };
  const stored = domain.entities.get(uid);
  if (az.properties === undefined) return { uid, entity: stored };
  const props = cedarRecord(az.properties, `${role}.properties`, domain.schema?.attributesOf(uid.type));
  const entity: CedarEntityJson = stored === undefined ? { uid, attrs: props, parents: [] } : { ...stored, attrs: { ...stored.attrs, ...props } };
  return { uid, entity };
}

function merged(a: CedarEntityJson | undefined, b: CedarEntityJson | undefined): CedarEntityJson | undefined {
  if (a === undefined || b === undefined) return a ?? b;
  return { ...a, attrs: { ...a.attrs, ...b.attrs } };
}

const REASON_DETAIL: Partial<Record<ReasonCode, string>> = {
  NO_PERMITTING_POLICY: 'no policy permits this request',
  POLICY_FORBID: 'forbidden by policy',
  POLICY_EVALUATION_ERROR: 'a policy failed to evaluate',
  APPROVAL_REQUIRED: 'this request needs an approval',
};

/** Decides one evaluation in the generic domain. Never throws: an error is a deny that names it. */
export function evaluateGeneric(domain: GenericDomain, item: AuthzenEvaluation, shapes: EntityShapes): AuthzenOutcome {
  const policyVersion = domain.policies.version;
  try {
    const action = domain.types.actionUid(item.action.name);
    const principal = shapes.shape(domain, item.subject, 'subject');
    const resource = shapes.shape(domain, item.resource, 'resource');
    const context: JsonObject = cedarRecord(item.context, 'context', domain.schema?.contextOf(action));
    const seeds: CedarEntityJson[] = [];
    if (uidKey(principal.uid) === uidKey(resource.uid)) {
      const one = merged(principal.entity, resource.entity);
      if (one !== undefined) seeds.push(one);
    } else {
      if (principal.entity !== undefined) seeds.push(principal.entity);
      if (resource.entity !== undefined) seeds.push(resource.entity);
    }
    const req: CedarRequest = {
      principal: principal.uid,
      resource: resource.uid,
      context,
      entities: domain.entities.slice(seeds) as unknown as CedarRequest['entities'],
    };
    const r = domain.policies.evaluateAction(action, req);
    if (r.decision === 'allow') return { effect: 'allow', reasons: [], policyIds: r.policyIds, policyVersion, details: [], errors: [] };
    const reason = r.reason as ReasonCode;
    return {
      effect: r.decision === 'step_up' ? 'approval_required' : 'deny',
      reasons: [reason],
      policyIds: r.policyIds,
      policyVersion,
      details: [REASON_DETAIL[reason] ?? reason],
      errors: r.errors,
    };
  } catch (e) {
    const code: ReasonCode = isMandateError(e) && e.code === 'MALFORMED_REQUEST' ? 'MALFORMED_REQUEST' : 'INTERNAL_ERROR';
    const message = code === 'MALFORMED_REQUEST' && isMandateError(e) ? e.message : describeError(e);
    return { effect: 'deny', reasons: [code], policyIds: [], policyVersion, details: [message], errors: [], failure: { code, message } };
  }
}
