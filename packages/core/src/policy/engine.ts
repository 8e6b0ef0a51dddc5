import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { canonicalJson, type JsonValue } from '../json.ts';
import { MandateError } from '../errors.ts';
import type { Hasher } from '../ports.ts';
import { ToolCatalog, type ToolCatalogInput } from './catalog.ts';
import { ACTION_CALL_TOOL, ACTION_START_TASK, CEDAR_SCHEMA } from './schema.ts';

export interface PolicySource {
  /** file name (or any label) the text came from; used in default policy ids and errors */
  readonly source: string;
  readonly text: string;
}

export interface LoadedPolicy {
  readonly id: string;
  readonly source: string;
  readonly effect: 'permit' | 'forbid';
  readonly stepUp: boolean;
  readonly text: string;
}

export interface PolicyProblem {
  readonly policyId: string | undefined;
  readonly source: string;
  readonly message: string;
}

type EntityUid = { type: string; id: string };
type CedarEntity = { uid: EntityUid; attrs: Record<string, JsonValue>; parents: EntityUid[]; tags?: Record<string, string> };

export interface CedarRequest {
  readonly principal: EntityUid;
  readonly resource: EntityUid;
  readonly context: Record<string, JsonValue>;
  readonly entities: CedarEntity[];
}

export interface PolicyResult {
  /** step_up: permitted, but only with an approval (a `@step_up` forbid matched) */
  readonly decision: 'allow' | 'deny' | 'step_up';
  readonly reason: 'PERMITTED' | 'NO_PERMITTING_POLICY' | 'POLICY_FORBID' | 'POLICY_EVALUATION_ERROR' | 'APPROVAL_REQUIRED';
  readonly policyIds: string[];
  readonly errors: { policyId: string; message: string }[];
}

let instanceCounter = 0;

const ID_PATTERN = /^[A-Za-z0-9._:/@#-]{1,200}$/;

function annotationsOf(text: string): Record<string, string> {
  const json = cedar.policyToJson(text);
  if (json.type !== 'success') return {};
  return (json.json.annotations ?? {}) as Record<string, string>;
}

function effectOf(text: string): 'permit' | 'forbid' {
  const json = cedar.policyToJson(text);
  if (json.type !== 'success') throw new MandateError('POLICY_INVALID', 'policy could not be converted to JSON');
  return json.json.effect;
}

/**
 * Splits policy files into individual policies with stable ids (`@id("…")`, else `<source>#<n>`),
 * and reports every parse problem rather than the first.
 */
export function splitPolicies(sources: readonly PolicySource[]): { policies: LoadedPolicy[]; problems: PolicyProblem[] } {
  const policies: LoadedPolicy[] = [];
  const problems: PolicyProblem[] = [];
  const ids = new Set<string>();
  for (const src of sources) {
    const parts = cedar.policySetTextToParts(src.text);
    if (parts.type !== 'success') {
      for (const e of parts.errors) problems.push({ policyId: undefined, source: src.source, message: e.message });
      continue;
    }
    if (parts.policy_templates.length > 0) {
      problems.push({ policyId: undefined, source: src.source, message: 'policy templates are not supported; write static policies' });
    }
    parts.policies.forEach((text, i) => {
      const ann = annotationsOf(text);
      const id = ann['id'] ?? `${src.source}#${i + 1}`;
      if (!ID_PATTERN.test(id)) {
        problems.push({ policyId: id, source: src.source, message: `policy id "${id}" must match ${ID_PATTERN.source}` });
        return;
      }
      if (ids.has(id)) {
        problems.push({ policyId: id, source: src.source, message: `duplicate policy id "${id}"` });
        return;
      }
      ids.add(id);
      const effect = effectOf(text);
      const stepUp = Object.hasOwn(ann, 'step_up');
      if (stepUp && effect !== 'forbid') {
        problems.push({ policyId: id, source: src.source, message: '@step_up is only meaningful on a forbid policy' });
      }
      policies.push({ id, source: src.source, effect, stepUp, text });
    });
  }
  return { policies, problems };
}

/** Validates policies against Mandate's Cedar schema (strict mode). */
export function validatePolicies(policies: readonly LoadedPolicy[]): PolicyProblem[] {
  if (policies.length === 0) return [];
  const bySource = new Map(policies.map((p) => [p.id, p.source]));
  const answer = cedar.validate({
    schema: CEDAR_SCHEMA,
    policies: { staticPolicies: Object.fromEntries(policies.map((p) => [p.id, p.text])) },
    validationSettings: { mode: 'strict' },
  });
  if (answer.type !== 'success') {
    return answer.errors.map((e) => ({ policyId: undefined, source: 'schema', message: e.message }));
  }
  return answer.validationErrors.map((e) => ({
    policyId: e.policyId,
    source: bySource.get(e.policyId) ?? 'unknown',
    message: e.error.message,
  }));
}

/**
 * A loaded, validated, preparsed policy set with its tool catalogue. Immutable: a reload builds
 * a new one and swaps it in, so a decision never sees half of two versions.
 */
export class PolicySet {
  readonly version: string;
  readonly policies: readonly LoadedPolicy[];
  readonly catalog: ToolCatalog;
  private readonly allId: string;
  private readonly hardId: string | undefined;
  private readonly stepUpIds: ReadonlySet<string>;
  private readonly schemaId: string;

  private constructor(policies: LoadedPolicy[], catalog: ToolCatalog, catalogInput: ToolCatalogInput, hasher: Hasher) {
    this.policies = policies;
    this.catalog = catalog;
    this.version =
      'sha256:' +
      hasher.sha256Hex(canonicalJson({ policies: Object.fromEntries(policies.map((p) => [p.id, p.text])), tools: catalogInput as JsonValue }));
    instanceCounter += 1;
    const base = `mandate-${instanceCounter}`;
    this.allId = `${base}:all`;
    this.schemaId = `${base}:schema`;
    this.stepUpIds = new Set(policies.filter((p) => p.stepUp).map((p) => p.id));
    const schemaAnswer = cedar.preparseSchema(this.schemaId, CEDAR_SCHEMA);
    if (schemaAnswer.type !== 'success') throw new MandateError('POLICY_INVALID', 'built-in Cedar schema failed to parse');
    this.preparse(this.allId, policies);
    if (this.stepUpIds.size > 0) {
      this.hardId = `${base}:hard`;
      this.preparse(this.hardId, policies.filter((p) => !p.stepUp));
    } else {
      this.hardId = undefined;
    }
  }

  /**
   * Parses, validates and preparses. Throws POLICY_INVALID listing every problem: a policy set
   * that does not validate is never half-loaded.
   */
  static load(sources: readonly PolicySource[], catalogInput: ToolCatalogInput, hasher: Hasher): PolicySet {
    const { policies, problems } = splitPolicies(sources);
    const all = [...problems, ...(problems.length === 0 ? validatePolicies(policies) : [])];
    if (all.length > 0) {
      throw new MandateError('POLICY_INVALID', `${all.length} policy problem(s): ${all.map((p) => `${p.source}${p.policyId ? ` (${p.policyId})` : ''}: ${p.message}`).join('; ')}`, {
        problems: all,
      });
    }
    let catalog: ToolCatalog;
    try {
      catalog = new ToolCatalog(catalogInput);
    } catch (e) {
      throw new MandateError('POLICY_INVALID', `tool catalogue is invalid: ${(e as Error).message}`);
    }
    return new PolicySet(policies, catalog, catalogInput, hasher);
  }

  private preparse(id: string, policies: readonly LoadedPolicy[]): void {
    const answer = cedar.preparsePolicySet(id, { staticPolicies: Object.fromEntries(policies.map((p) => [p.id, p.text])) });
    if (answer.type !== 'success') {
      throw new MandateError('POLICY_INVALID', answer.errors.map((e) => e.message).join('; '));
    }
  }

  evaluateCall(req: CedarRequest): PolicyResult {
    return this.evaluate(ACTION_CALL_TOOL, req);
  }

  evaluateStartTask(req: CedarRequest): PolicyResult {
    return this.evaluate(ACTION_START_TASK, req);
  }

  /**
   * Any Cedar error is a deny: Cedar itself skips a policy whose condition errors, which would
   * let an erroring forbid silently stop forbidding.
   */
  private evaluate(action: EntityUid, req: CedarRequest): PolicyResult {
    const first = this.run(this.allId, action, req);
    if (first.decision !== 'allow' && first.reason === 'POLICY_FORBID' && this.hardId !== undefined && first.policyIds.every((id) => this.stepUpIds.has(id))) {
      const hard = this.run(this.hardId, action, req);
      if (hard.decision === 'allow') {
        return { decision: 'step_up', reason: 'APPROVAL_REQUIRED', policyIds: first.policyIds, errors: [] };
      }
      return hard;
    }
    return first;
  }

  private run(setId: string, action: EntityUid, req: CedarRequest): PolicyResult {
    let answer: cedar.AuthorizationAnswer;
    try {
      answer = cedar.statefulIsAuthorized({
        principal: req.principal,
        action,
        resource: req.resource,
        context: req.context,
        entities: req.entities,
        preparsedPolicySetId: setId,
        preparsedSchemaName: this.schemaId,
        validateRequest: true,
      });
    } catch (e) {
      return { decision: 'deny', reason: 'POLICY_EVALUATION_ERROR', policyIds: [], errors: [{ policyId: '*', message: (e as Error).message }] };
    }
    if (answer.type !== 'success') {
      return { decision: 'deny', reason: 'POLICY_EVALUATION_ERROR', policyIds: [], errors: answer.errors.map((e) => ({ policyId: '*', message: e.message })) };
    }
    const { decision, diagnostics } = answer.response;
    if (diagnostics.errors.length > 0) {
      return {
        decision: 'deny',
        reason: 'POLICY_EVALUATION_ERROR',
        policyIds: diagnostics.errors.map((e) => e.policyId),
        errors: diagnostics.errors.map((e) => ({ policyId: e.policyId, message: e.error.message })),
      };
    }
    if (decision === 'allow') return { decision: 'allow', reason: 'PERMITTED', policyIds: [...diagnostics.reason], errors: [] };
    if (diagnostics.reason.length === 0) return { decision: 'deny', reason: 'NO_PERMITTING_POLICY', policyIds: [], errors: [] };
    return { decision: 'deny', reason: 'POLICY_FORBID', policyIds: [...diagnostics.reason], errors: [] };
  }
}
