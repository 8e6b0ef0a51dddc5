import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { canonicalJson, type JsonValue } from '../json.ts';
import { MandateError } from '../errors.ts';
import type { Hasher } from '../ports.ts';
import { ToolCatalog, type ToolCatalogInput } from './catalog.ts';
import { applicabilityOf, type Applicability } from './applicability.ts';
import { ACTION_CALL_TOOL, ACTION_START_TASK, CEDAR_SCHEMA } from './schema.ts';
import { Bail, RequestShapes, evaluateCompiled, tryCompilePolicy, type CompiledEntry } from './compile.ts';
import type { CrossChecker } from './cross-check.ts';

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
  /** which calls the policy can possibly apply to (see applicability.ts) */
  readonly applies: Applicability;
  /** Cedar's JSON form of the policy (what compile.ts compiles) */
  readonly json: cedar.PolicyJson;
  /** no condition and any principal: where its scope matches, it always applies (re-evaluation reads it) */
  readonly unconditional?: boolean;
}

export interface PolicyProblem {
  readonly policyId: string | undefined;
  readonly source: string;
  readonly message: string;
}

type EntityUid = { type: string; id: string };
type CedarEntity = { uid: EntityUid; attrs: Record<string, JsonValue>; parents: EntityUid[]; tags?: Record<string, JsonValue> };

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
      const json = cedar.policyToJson(text);
      if (json.type !== 'success') {
        problems.push({ policyId: undefined, source: src.source, message: json.errors.map((e) => e.message).join('; ') });
        return;
      }
      const ann = (json.json.annotations ?? {}) as Record<string, string>;
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
      const effect = json.json.effect;
      const stepUp = Object.hasOwn(ann, 'step_up');
      if (stepUp && effect !== 'forbid') {
        problems.push({ policyId: id, source: src.source, message: '@step_up is only meaningful on a forbid policy' });
      }
      const unconditional = json.json.conditions.length === 0 && (json.json.principal as { op?: unknown }).op === 'All';
      policies.push({ id, source: src.source, effect, stepUp, text, applies: applicabilityOf(json.json), json: json.json, unconditional });
    });
  }
  return { policies, problems };
}

/** Validates policies against a Cedar schema (strict mode): Mandate's own unless another is given. */
export function validatePolicies(policies: readonly LoadedPolicy[], schema: cedar.Schema = CEDAR_SCHEMA): PolicyProblem[] {
  if (policies.length === 0) return [];
  const bySource = new Map(policies.map((p) => [p.id, p.source]));
  const answer = cedar.validate({
    schema,
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
 * For a policy domain other than Mandate's own (the AuthZEN generic PDP): its schema, or `null`
 * for none (then policies are not validated and requests not checked against a schema), and
 * the action hierarchy the schema declares, so that narrowing by action stays sound.
 */
export interface PolicySetOptions {
  readonly schema?: cedar.Schema | null;
  /** action id -> the ids of every action group it is in, transitively */
  readonly actionAncestors?: ReadonlyMap<string, ReadonlySet<string>>;
  /**
   * 'compiled' (default): schema-validated policies compiled to JS (compile.ts), cedar-wasm for
   * any set with a policy that did not compile and any request the compiled path cannot answer
   * exactly; 'cedar': cedar-wasm for every decision. Schema-less domains always use cedar-wasm.
   */
  readonly engine?: 'compiled' | 'cedar';
  /** re-checks a sampled fraction of compiled decisions with cedar-wasm, off the hot path */
  readonly crossCheck?: CrossChecker | undefined;
}

/** How a set's decisions are made (GET /v1/policies). */
export interface EngineInfo {
  readonly engine: 'compiled' | 'cedar';
  readonly compiled: number;
  readonly total: number;
  /** policies that did not compile (their sets use cedar-wasm), and why */
  readonly notCompiled: readonly { readonly id: string; readonly reason: string }[];
}

/** A preparsed subset of the policies: all of them, and (when step-ups exist) all but the step-ups. */
interface Prepared {
  readonly allId: string;
  readonly hardId: string | undefined;
  /** every policy of the subset compiled, or undefined (then cedar-wasm answers) */
  readonly compiled: readonly CompiledEntry[] | undefined;
}

/** At most this many distinct subsets are preparsed; beyond it the full set answers (always correct). */
const MAX_SUBSETS = 256;
const MAX_TOOL_CACHE = 4096;

/**
 * A loaded, validated, preparsed policy set with its tool catalogue. Immutable: a reload builds
 * a new one and swaps it in, so a decision never sees half of two versions.
 *
 * A decision evaluates only the policies that can apply to its action and tool (Cedar's cost is
 * per policy): see applicability.ts for why skipping the others cannot change any answer.
 */
export class PolicySet {
  readonly version: string;
  readonly policies: readonly LoadedPolicy[];
  readonly catalog: ToolCatalog;
  private readonly base: string;
  /** the preparsed schema, or undefined for a schema-less domain */
  private readonly schemaId: string | undefined;
  private readonly actionAncestors: ReadonlyMap<string, ReadonlySet<string>>;
  private readonly stepUpIds: ReadonlySet<string>;
  private readonly full: Prepared;
  private readonly subsets = new Map<string, Prepared>();
  private readonly byTool = new Map<string, Prepared>();
  private readonly byAction = new Map<string, Prepared>();
  private startTask: Prepared | undefined;
  private disposed = false;
  /** the compiled path: request shapes from the schema, and each policy that compiled */
  private readonly shapes: RequestShapes | undefined;
  private readonly compiledById = new Map<string, CompiledEntry>();
  private readonly notCompiled: { id: string; reason: string }[] = [];
  private readonly crossCheck: CrossChecker | undefined;
  /** decisions the compiled path handed to cedar-wasm (a request outside the checked shapes, or a Bail) */
  private fallbacks = 0;

  private constructor(policies: LoadedPolicy[], catalog: ToolCatalog, catalogInput: ToolCatalogInput, hasher: Hasher, options: PolicySetOptions = {}) {
    this.policies = policies;
    this.catalog = catalog;
    const schema = options.schema === undefined ? CEDAR_SCHEMA : options.schema;
    this.version =
      'sha256:' +
      hasher.sha256Hex(
        canonicalJson({
          policies: Object.fromEntries(policies.map((p) => [p.id, p.text])),
          tools: catalogInput as JsonValue,
          // another domain's schema is part of its version; Mandate's own is not (versions stay as they were)
          ...(options.schema === undefined ? {} : { schema: schema as JsonValue }),
        }),
      );
    instanceCounter += 1;
    this.base = `mandate-${instanceCounter}`;
    this.actionAncestors = options.actionAncestors ?? new Map();
    this.stepUpIds = new Set(policies.filter((p) => p.stepUp).map((p) => p.id));
    if (schema === null) {
      this.schemaId = undefined;
    } else {
      this.schemaId = `${this.base}:schema`;
      const schemaAnswer = cedar.preparseSchema(this.schemaId, schema);
      if (schemaAnswer.type !== 'success') throw new MandateError('POLICY_INVALID', `Cedar schema failed to parse: ${schemaAnswer.errors.map((e) => e.message).join('; ')}`);
    }
    this.crossCheck = options.crossCheck;
    if (schema !== null && options.engine !== 'cedar') {
      const json = cedar.schemaToJson(schema);
      if (json.type !== 'success') throw new MandateError('POLICY_INVALID', `Cedar schema failed to convert: ${json.errors.map((e) => e.message).join('; ')}`);
      this.shapes = new RequestShapes(json.json as ConstructorParameters<typeof RequestShapes>[0]);
      for (const p of policies) {
        const fn = tryCompilePolicy(p.json);
        if (typeof fn === 'string') this.notCompiled.push({ id: p.id, reason: fn });
        else this.compiledById.set(p.id, { id: p.id, effect: p.effect, fn });
      }
    } else {
      this.shapes = undefined;
    }
    this.full = this.prepare('full', policies);
  }

  /** How this set's decisions are made. */
  get engineInfo(): EngineInfo {
    return {
      engine: this.shapes === undefined ? 'cedar' : 'compiled',
      compiled: this.compiledById.size,
      total: this.policies.length,
      notCompiled: this.notCompiled,
    };
  }

  /** Compiled decisions that cedar-wasm answered instead (see compile.ts, "never guess"). */
  get compiledFallbacks(): number {
    return this.fallbacks;
  }

  /**
   * Parses, validates and preparses. Throws POLICY_INVALID listing every problem: a policy set
   * that does not validate is never half-loaded. Without options: Mandate's own schema.
   */
  static load(sources: readonly PolicySource[], catalogInput: ToolCatalogInput, hasher: Hasher, options: PolicySetOptions = {}): PolicySet {
    const { policies, problems } = splitPolicies(sources);
    const schema = options.schema === undefined ? CEDAR_SCHEMA : options.schema;
    const all = [...problems, ...(problems.length === 0 && schema !== null ? validatePolicies(policies, schema) : [])];
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
    return new PolicySet(policies, catalog, catalogInput, hasher, options);
  }

  private prepare(name: string, policies: readonly LoadedPolicy[]): Prepared {
    const allId = `${this.base}:${name}`;
    this.preparse(allId, policies);
    let hardId: string | undefined;
    if (policies.some((p) => p.stepUp)) {
      hardId = `${allId}:hard`;
      this.preparse(hardId, policies.filter((p) => !p.stepUp));
    }
    let compiled: CompiledEntry[] | undefined;
    if (this.shapes !== undefined) {
      compiled = [];
      for (const p of policies) {
        const c = this.compiledById.get(p.id);
        if (c === undefined) {
          compiled = undefined;
          break;
        }
        compiled.push(c);
      }
    }
    return { allId, hardId, compiled };
  }

  private preparse(id: string, policies: readonly LoadedPolicy[]): void {
    const answer = cedar.preparsePolicySet(id, { staticPolicies: Object.fromEntries(policies.map((p) => [p.id, p.text])) });
    if (answer.type !== 'success') {
      throw new MandateError('POLICY_INVALID', answer.errors.map((e) => e.message).join('; '));
    }
  }

  /** The preparsed subset of the policies that can apply to this action (and tool). */
  private subsetFor(action: string, tool: string | undefined): Prepared {
    const groups = this.actionAncestors.get(action);
    const forAction = (actions: ReadonlySet<string>) => actions.has(action) || (groups !== undefined && [...groups].some((g) => actions.has(g)));
    const ids = this.policies.filter((p) => (p.applies.actions === undefined || forAction(p.applies.actions)) && (tool === undefined || p.applies.tool === undefined || p.applies.tool(tool)));
    if (ids.length === this.policies.length) return this.full;
    const key = ids.map((p) => p.id).join('\n');
    let prepared = this.subsets.get(key);
    if (prepared === undefined) {
      if (this.subsets.size >= MAX_SUBSETS) return this.full;
      prepared = this.prepare(`s${this.subsets.size}`, ids);
      this.subsets.set(key, prepared);
    }
    return prepared;
  }

  private forCall(tool: string): Prepared {
    let prepared = this.byTool.get(tool);
    if (prepared === undefined) {
      prepared = this.subsetFor(ACTION_CALL_TOOL.id, tool);
      if (this.byTool.size >= MAX_TOOL_CACHE) this.byTool.clear();
      this.byTool.set(tool, prepared);
    }
    return prepared;
  }

  evaluateCall(req: CedarRequest): PolicyResult {
    return this.evaluate(ACTION_CALL_TOOL, req, this.forCall(req.resource.id));
  }

  evaluateStartTask(req: CedarRequest): PolicyResult {
    this.startTask ??= this.subsetFor(ACTION_START_TASK.id, undefined);
    return this.evaluate(ACTION_START_TASK, req, this.startTask);
  }

  /**
   * Any action of another policy domain (the AuthZEN generic PDP): evaluated against the policies
   * whose action scope can include it, with the same fail-closed rules as a tool call.
   */
  evaluateAction(action: EntityUid, req: CedarRequest): PolicyResult {
    let prepared = this.byAction.get(action.id);
    if (prepared === undefined) {
      prepared = this.subsetFor(action.id, undefined);
      if (this.byAction.size >= MAX_TOOL_CACHE) this.byAction.clear();
      this.byAction.set(action.id, prepared);
    }
    return this.evaluate(action, req, prepared);
  }

  /** Evaluates against every policy, without narrowing (the reference for equivalence tests). */
  evaluateCallUnnarrowed(req: CedarRequest): PolicyResult {
    return this.evaluate(ACTION_CALL_TOOL, req, this.full);
  }

  /**
   * Frees the WASM memory of this set's preparsed policies (cedar-wasm has no delete, so each id
   * is overwritten with an empty set). Any later evaluation denies: call it only once no decision
   * can still hold this set.
   */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const p of [this.full, ...this.subsets.values()]) {
      for (const id of [p.allId, p.hardId]) if (id !== undefined) cedar.preparsePolicySet(id, { staticPolicies: {} });
    }
    this.subsets.clear();
    this.byTool.clear();
    this.byAction.clear();
  }

  /**
   * Any Cedar error is a deny: Cedar itself skips a policy whose condition errors, which would
   * let an erroring forbid silently stop forbidding.
   */
  private evaluate(action: EntityUid, req: CedarRequest, set: Prepared): PolicyResult {
    if (this.disposed) return { decision: 'deny', reason: 'POLICY_EVALUATION_ERROR', policyIds: [], errors: [{ policyId: '*', message: 'policy set was replaced' }] };
    if (set.compiled !== undefined) {
      const result = this.evaluateCompiled(action, req, set.compiled);
      if (result !== undefined) {
        const check = this.crossCheck;
        if (check !== undefined && check.sample()) {
          check.offer({
            compiled: result,
            oracle: () => this.evaluateCedar(action, req, set),
            describe: () => ({ policyVersion: this.version, action: action.id, principal: `${req.principal.type}::${req.principal.id}`, resource: `${req.resource.type}::${req.resource.id}` }),
          });
        }
        return result;
      }
      this.fallbacks += 1;
    }
    return this.evaluateCedar(action, req, set);
  }

  /**
   * The compiled path: every policy of the subset evaluated once; the step-up rule below
   * (a hard re-run without the step-up forbids) falls out of the same outcomes. Undefined when
   * cedar-wasm must answer.
   */
  private evaluateCompiled(action: EntityUid, req: CedarRequest, entries: readonly CompiledEntry[]): PolicyResult | undefined {
    const env = (this.shapes as RequestShapes).env(action, req);
    if (env === undefined) return undefined;
    let outcome;
    try {
      outcome = evaluateCompiled(entries, env);
    } catch (e) {
      if (e instanceof Bail) return undefined;
      throw e;
    }
    if (outcome.errors.length > 0) {
      const errors = outcome.errors.sort((a, b) => (a.policyId < b.policyId ? -1 : a.policyId > b.policyId ? 1 : 0));
      return { decision: 'deny', reason: 'POLICY_EVALUATION_ERROR', policyIds: [...new Set(errors.map((e) => e.policyId))], errors };
    }
    if (outcome.forbids.length > 0) {
      const ids = outcome.forbids.sort();
      if (ids.every((id) => this.stepUpIds.has(id))) {
        // what the set without its step-up forbids answers: no forbid left
        if (outcome.permits.length > 0) return { decision: 'step_up', reason: 'APPROVAL_REQUIRED', policyIds: ids, errors: [] };
        return { decision: 'deny', reason: 'NO_PERMITTING_POLICY', policyIds: [], errors: [] };
      }
      return { decision: 'deny', reason: 'POLICY_FORBID', policyIds: ids, errors: [] };
    }
    if (outcome.permits.length > 0) return { decision: 'allow', reason: 'PERMITTED', policyIds: outcome.permits.sort(), errors: [] };
    return { decision: 'deny', reason: 'NO_PERMITTING_POLICY', policyIds: [], errors: [] };
  }

  /** The cedar-wasm path (the oracle of the compiled one). */
  private evaluateCedar(action: EntityUid, req: CedarRequest, set: Prepared): PolicyResult {
    if (this.disposed) return { decision: 'deny', reason: 'POLICY_EVALUATION_ERROR', policyIds: [], errors: [{ policyId: '*', message: 'policy set was replaced' }] };
    const first = this.run(set.allId, action, req);
    if (first.decision !== 'allow' && first.reason === 'POLICY_FORBID' && set.hardId !== undefined && first.policyIds.every((id) => this.stepUpIds.has(id))) {
      const hard = this.run(set.hardId, action, req);
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
        ...(this.schemaId === undefined ? {} : { preparsedSchemaName: this.schemaId, validateRequest: true }),
      });
    } catch (e) {
      return { decision: 'deny', reason: 'POLICY_EVALUATION_ERROR', policyIds: [], errors: [{ policyId: '*', message: (e as Error).message }] };
    }
    if (answer.type !== 'success') {
      return { decision: 'deny', reason: 'POLICY_EVALUATION_ERROR', policyIds: [], errors: answer.errors.map((e) => ({ policyId: '*', message: e.message })) };
    }
    const { decision, diagnostics } = answer.response;
    // Cedar reports from hash sets: sort, so the same call always yields the same record
    if (diagnostics.errors.length > 0) {
      const errors = diagnostics.errors.map((e) => ({ policyId: e.policyId, message: e.error.message })).sort((a, b) => (a.policyId < b.policyId ? -1 : a.policyId > b.policyId ? 1 : 0));
      return { decision: 'deny', reason: 'POLICY_EVALUATION_ERROR', policyIds: [...new Set(errors.map((e) => e.policyId))], errors };
    }
    const ids = [...diagnostics.reason].sort();
    if (decision === 'allow') return { decision: 'allow', reason: 'PERMITTED', policyIds: ids, errors: [] };
    if (ids.length === 0) return { decision: 'deny', reason: 'NO_PERMITTING_POLICY', policyIds: [], errors: [] };
    return { decision: 'deny', reason: 'POLICY_FORBID', policyIds: ids, errors: [] };
  }
}
