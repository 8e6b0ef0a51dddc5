/**
 * The AuthZEN decision service: every evaluation of `/access/v1/evaluation(s)` goes through here.
 *
 * - A subject of the agent type (`agent` unless configured otherwise) carries its task token in
 *   `properties.task_token` and is decided by the same `DecisionEngine.decide()` as
 *   `/v1/authorize`: action.name is the tool, the resource `type:id` is the call's target (type
 *   `tool` means none), `context.args` the arguments, `context.call_id` / `context.task_id` as
 *   there. So every invariant of a tool call holds (task state, mandate, budgets, audit).
 * - Any other subject is decided by the generic PDP (pdp.ts).
 *
 * Audit before act: generic decisions are appended to the audit chain (one record each, one
 * append for a whole batch) before the answer leaves; if the append fails, every allow of the
 * batch becomes a deny (AUDIT_UNAVAILABLE). The engine audits agent decisions itself.
 *
 * Items are evaluated in request order, one after the other, so that `deny_on_first_deny` and
 * `permit_on_first_permit` stop before a later item could spend an agent's budget.
 */
import type { AuditDraft } from '../audit/chain.ts';
import { redactArgs } from '../audit/redact.ts';
import { describeError } from '../errors.ts';
import { canonicalJson, isJsonObject, type JsonObject, type JsonValue } from '../json.ts';
import type { Decision } from '../model.ts';
import type { AuditAppender, Clock, Hasher, IdGenerator } from '../ports.ts';
import type { ReasonCode } from '../reasons.ts';
import type { CallRequest } from '../model.ts';
import type { ProofResult } from '../tokens/dpop.ts';
import type { TaskTokenClaims } from '../tokens/task-token.ts';
import { EntityShapes, evaluateGeneric, type AuthzenOutcome, type GenericDomain } from './pdp.ts';
import type { AuthzenEvaluation, EvaluationsSemantic } from './request.ts';

export interface AuthzenServiceDeps {
  readonly clock: Clock;
  readonly ids: IdGenerator;
  readonly hasher: Hasher;
  readonly audit: AuditAppender;
  /** the generic domain in force now (swapped atomically on reload or entity change) */
  readonly domain: () => GenericDomain;
  readonly engine: { decide(req: CallRequest): Promise<Decision> };
  readonly tokens: { verify(token: string): Promise<TaskTokenClaims> };
  /**
   * Verifies the agent's DPoP proof the PEP forwards in `subject.properties.dpop` as
   * `{proof, htm, htu}` (the method and URL the agent's request was made to). Without it, a
   * forwarded proof is refused rather than ignored.
   */
  readonly proofs?: ((input: { proof: string; method: string; htu: string; accessToken: string }) => Promise<ProofResult>) | undefined;
  /** the subject type decided as an agent with a task token */
  readonly agentType: string;
  /**
   * Lets other work run (the server: one turn of the event loop). Cedar evaluates synchronously,
   * so a long batch pauses every PAUSE_EVERY items instead of holding the process.
   */
  readonly pause?: () => Promise<void>;
}

/** Who asked: for the audit records. */
export interface AuthzenCaller {
  /** the request identifier (X-Request-ID, or one the server generated) */
  readonly requestId: string;
  /** the enforcement point's credential name */
  readonly pep: string;
}

/** One answered evaluation: its outcome, and for agents the engine's decision. */
export interface AuthzenResult extends AuthzenOutcome {
  /** the decision's id in the audit log (call id) */
  readonly id: string;
  readonly agent: { readonly taskId: string | undefined; readonly auditSeq: number | undefined; readonly approvalId: string | undefined } | undefined;
}

const RESOURCE_NONE = 'tool';
const PAUSE_EVERY = 32;

function approvalIdOf(decision: Decision): string | undefined {
  const id = (decision as { approvalId?: unknown }).approvalId;
  return typeof id === 'string' ? id : undefined;
}

export class AuthzenService {
  private readonly d: AuthzenServiceDeps;

  constructor(deps: AuthzenServiceDeps) {
    this.d = deps;
  }

  /**
   * Evaluates items in order under a semantic; returns one result per evaluated item (fewer than
   * the items when a short-circuit semantic stopped early: the last one is the deciding item).
   */
  async evaluate(items: readonly AuthzenEvaluation[], semantic: EvaluationsSemantic, caller: AuthzenCaller): Promise<AuthzenResult[]> {
    const domain = this.d.domain();
    const shapes = new EntityShapes();
    const results: AuthzenResult[] = [];
    const drafts: { index: number; draft: AuditDraft }[] = [];
    for (const [index, item] of items.entries()) {
      let result: AuthzenResult;
      if (item.subject.type === this.d.agentType) {
        const r = await this.agent(item, caller, index);
        result = r.result;
        if (r.draft) drafts.push({ index: results.length, draft: r.draft });
      } else {
        if (index > 0 && index % PAUSE_EVERY === 0 && this.d.pause !== undefined) await this.d.pause();
        const outcome = evaluateGeneric(domain, item, shapes);
        result = { ...outcome, id: this.d.ids.next('dec'), agent: undefined };
        drafts.push({ index: results.length, draft: this.draft(result, item, caller, index) });
      }
      results.push(result);
      if (semantic === 'deny_on_first_deny' && result.effect !== 'allow') break;
      if (semantic === 'permit_on_first_permit' && result.effect === 'allow') break;
    }
    if (drafts.length > 0) {
      try {
        await this.d.audit.append(drafts.map((x) => x.draft));
      } catch (e) {
        // no committed record, no allow
        const why = describeError(e);
        for (const { index } of drafts) {
          const r = results[index] as AuthzenResult;
          results[index] = {
            ...r,
            effect: 'deny',
            reasons: r.effect === 'deny' ? [...r.reasons, 'AUDIT_UNAVAILABLE'] : ['AUDIT_UNAVAILABLE'],
            details: [...r.details, why],
            failure: { code: 'AUDIT_UNAVAILABLE', message: 'the decision could not be recorded' },
          };
        }
      }
    }
    return results;
  }

  private async agent(item: AuthzenEvaluation, caller: AuthzenCaller, index: number): Promise<{ result: AuthzenResult; draft: AuditDraft | undefined }> {
    const props = item.subject.properties ?? {};
    const token = props['task_token'];
    const refuse = (reason: ReasonCode, detail: string) => {
      const result: AuthzenResult = { effect: 'deny', reasons: [reason], policyIds: [], policyVersion: 'unknown', details: [detail], errors: [], id: this.d.ids.next('call'), agent: undefined };
      return { result, draft: this.draft(result, item, caller, index) };
    };
    if (typeof token !== 'string' || token === '') return refuse('TOKEN_MISSING', 'an agent subject carries its task token in properties.task_token');
    // the subject named must be the token's agent; checked before decide(), which may spend budget
    let claims: TaskTokenClaims | undefined;
    try {
      claims = await this.d.tokens.verify(token);
    } catch {
      claims = undefined; // decide() answers with the token's own reason
    }
    if (claims !== undefined && claims.sub !== item.subject.id) return refuse('AGENT_MISMATCH', 'subject.id is not the agent the task token was issued to');
    const ctx = item.context;
    const text = (v: JsonValue | undefined) => (typeof v === 'string' ? v : undefined);
    const proof = await this.forwardedProof(props['dpop'], token);
    const decision = await this.d.engine.decide({
      proof,
      taskToken: token,
      tool: item.action.name,
      resource: item.resource.type === RESOURCE_NONE ? undefined : `${item.resource.type}:${item.resource.id}`,
      args: (ctx['args'] ?? {}) as JsonObject,
      callId: text(ctx['call_id']),
      taskId: text(ctx['task_id']),
    });
    const result: AuthzenResult = {
      effect: decision.effect,
      reasons: decision.reasons,
      policyIds: decision.policyIds,
      policyVersion: decision.policyVersion,
      details: decision.details,
      errors: decision.errors,
      id: decision.callId,
      // read structurally: the approval a held call waits for, where the engine names one
      agent: { taskId: decision.taskId, auditSeq: decision.auditSeq, approvalId: approvalIdOf(decision) },
    };
    // the engine audits what it can attribute to a task; the rest is recorded here
    return { result, draft: decision.auditSeq === undefined ? this.draft(result, item, caller, index) : undefined };
  }

  /** The agent's DPoP proof as the PEP received it: `{proof, htm, htu}`, verified here. */
  private async forwardedProof(dpop: JsonValue | undefined, token: string): Promise<ProofResult | undefined> {
    if (dpop === undefined || dpop === null) return undefined;
    if (!isJsonObject(dpop) || typeof dpop['proof'] !== 'string' || typeof dpop['htm'] !== 'string' || typeof dpop['htu'] !== 'string') {
      return { ok: false, reason: 'DPOP_PROOF_INVALID', detail: 'subject.properties.dpop must be {proof, htm, htu} strings' };
    }
    if (!this.d.proofs) return { ok: false, reason: 'DPOP_PROOF_INVALID', detail: 'this PDP does not verify forwarded DPoP proofs' };
    return this.d.proofs({ proof: dpop['proof'], method: dpop['htm'], htu: dpop['htu'], accessToken: token });
  }

  private draft(r: AuthzenResult, item: AuthzenEvaluation, caller: AuthzenCaller, index: number): AuditDraft {
    const args = item.context['args'];
    return {
      kind: 'decision',
      ts: this.d.clock.now(),
      callId: r.id,
      data: {
        api: 'authzen',
        pep: caller.pep,
        request_id: caller.requestId.slice(0, 256),
        item: index,
        subject: { type: item.subject.type, id: item.subject.id },
        action: item.action.name,
        resource: { type: item.resource.type, id: item.resource.id },
        // the full request is bound by its hash; properties and context may hold personal data
        request_hash: 'sha256:' + this.d.hasher.sha256Hex(canonicalJson(item as unknown as JsonValue)),
        ...(item.subject.type === this.d.agentType && isJsonObject(args) ? { args: redactArgs(args) } : {}),
        effect: r.effect,
        decision: r.effect === 'allow',
        reasons: [...r.reasons],
        policy_ids: [...r.policyIds],
        policy_version: r.policyVersion,
        details: [...r.details],
        errors: r.errors.map((e) => ({ policy_id: e.policyId, message: e.message })),
      },
    };
  }
}
