import { MandateError } from './errors.ts';
import { canonicalJson, type JsonObject, type JsonValue } from './json.ts';
import { attenuationViolations } from './mandate/attenuation.ts';
import { mandateHash, parseMandate } from './mandate/parse.ts';
import type { Mandate } from './mandate/schema.ts';
import type { Task } from './model.ts';
import { startTaskRequest } from './policy/context.ts';
import type { ReasonCode } from './reasons.ts';
import { checkAdmissible, normaliseMandate, taskDraft } from './task-rules.ts';
import type { IssuedTask, RequestProof, TaskService, TaskServiceDeps, VerifiedWorkload } from './tasks.ts';
import type { Hasher } from './ports.ts';
import type { ActorClaim } from './tokens/task-token.ts';

/** Fan-out when a mandate allows delegation without naming max_children. */
export const DEFAULT_MAX_CHILDREN = 10;

/**
 * What makes a workload token "the same token" for single use: its issuer (the OIDC issuer, or
 * the SPIFFE trust domain whose bundle verified it) and its `jti`, or, without a `jti`, all its
 * verified claims. Never the token's text: an ECDSA signature (r, s) has a twin (r, n − s) that
 * verifies as well, so one token has two spellings. Rejecting high-S signatures is no cure here:
 * ordinary ECDSA signers (WebCrypto, OpenSSL, Go) produce them about half the time.
 */
export function workloadTokenUseKey(identity: VerifiedWorkload, hasher: Hasher): string {
  const issuer = identity.issuer ?? `spiffe://${identity.trustDomain}`;
  const jti = identity.claims['jti'];
  const what: JsonValue = typeof jti === 'string' && jti.length > 0 ? ['jti', jti] : ['claims', identity.claims as JsonObject];
  return `wl:${hasher.sha256Hex(canonicalJson([issuer, what]))}`;
}

/**
 * Delegation: a live task hands a narrower mandate to a sub-agent. The child proves its own
 * identity (its workload token, usable for one delegation only), its mandate must lie within
 * the parent's (attenuationViolations) and its own ceiling, its life within the parent's, its
 * call budget is carved out of the parent's remaining budget, and depth and fan-out are bounded.
 * The child's token carries the chain as nested RFC 8693 `act` claims.
 */
export async function delegateTask(svc: TaskService, d: TaskServiceDeps, parentToken: string, childWorkloadToken: string, mandateInput: unknown, req: RequestProof = {}): Promise<IssuedTask> {
  if (d.emergency?.stopped()) throw new MandateError('EMERGENCY_STOP', 'an emergency stop is in force: no new tasks');
  // a key-bound parent proves possession of its key for the delegation request too
  const claims = await svc.authenticateTaskToken(parentToken, req.proof);
  const parent = await svc.liveTask(claims.task_id);
  const parentAgent = await d.agents.getAgent(parent.agentId);
  if (!parentAgent || parentAgent.status !== 'active') throw new MandateError('AGENT_DISABLED', 'the delegating agent is disabled');
  const rule = parent.mandate.delegation;
  if (!rule?.allowed || (rule.max_depth ?? 1) < 1) throw new MandateError('DELEGATION_NOT_ALLOWED', "the parent task's mandate does not allow delegation");
  const children = await d.tasks.listChildren(parent.id);
  const maxChildren = rule.max_children ?? DEFAULT_MAX_CHILDREN;
  if (children.length >= maxChildren) throw new MandateError('DELEGATION_LIMIT_REACHED', `the parent task may delegate at most ${maxChildren} times`);

  const identity = await d.workload.verify(childWorkloadToken);
  // one delegation per workload token, known by what it says (not how it is spelt): refused early
  // here, and decided below by one atomic insert
  const useKey = workloadTokenUseKey(identity, d.hasher);
  if (await d.revocations.isTokenRevoked(useKey)) throw new MandateError('TOKEN_REVOKED', 'this workload token was already used for a delegation');
  const child = await d.agents.getAgent(identity.agentId);
  if (!child) throw new MandateError('AGENT_UNKNOWN', `agent ${identity.agentId} is not registered`);
  if (child.status !== 'active') throw new MandateError('AGENT_DISABLED', 'the child agent is disabled');
  // the child's own key cannot be bound through this request yet: refuse rather than issue it an unbound token
  if (d.requirePop === true || child.ceiling.require_pop === true) {
    throw new MandateError('DPOP_PROOF_MISSING', 'the child agent must hold a key-bound task, which delegation cannot issue yet');
  }

  const now = d.clock.now();
  const taskId = d.ids.next('task');
  let mandate: Mandate;
  try {
    mandate = normaliseMandate(parseMandate(mandateInput), d.limits);
    checkAdmissible(child, mandate, d.environment);
    const total = parent.mandate.budgets?.calls;
    const used = total === undefined || !d.budgets ? 0 : (await d.budgets.usage(parent.id, '')).calls;
    const over = attenuationViolations(mandate, parent.mandate, { parentRemainingCalls: total === undefined ? undefined : Math.max(0, total - used) });
    if (over.length > 0) throw new MandateError('MANDATE_EXCEEDS_PARENT', over.join('; '), { violations: over });
  } catch (e) {
    if (e instanceof MandateError) await svc.auditDenied(child, taskId, now, e);
    throw e;
  }
  const policy = d.policies().evaluateStartTask(startTaskRequest(child, taskId, mandate, parent.depth + 1, d.environment, now));
  if (policy.decision !== 'allow') {
    const code: ReasonCode = policy.reason === 'APPROVAL_REQUIRED' ? 'POLICY_FORBID' : (policy.reason as ReasonCode);
    const err = new MandateError(code, 'a policy refuses this delegation', { policy_ids: policy.policyIds, errors: policy.errors });
    await svc.auditDenied(child, taskId, now, err);
    throw err;
  }
  // the use is spent here, once, by insert-if-absent: of concurrent delegations with this token one
  // goes on (a token spent by a delegation that fails after this point stays spent: fail closed)
  if (!(await d.revocations.useOnce(useKey, taskId, Math.max(now, identity.expiresAt), 'used for a delegation', now))) {
    throw new MandateError('TOKEN_REVOKED', 'this workload token was already used for a delegation');
  }
  // the child's share is set aside from the parent's budget before the child exists
  const share = mandate.budgets?.calls;
  const parentTotal = parent.mandate.budgets?.calls;
  if (parentTotal !== undefined && share !== undefined) {
    if (!d.budgets || !(await d.budgets.carve(parent.id, share, parentTotal))) {
      throw new MandateError('MANDATE_EXCEEDS_PARENT', "the child's call budget no longer fits in the parent's remaining budget");
    }
  }

  const ttl = mandate.ttl ?? d.limits.defaultTtlMs;
  const task: Task = {
    id: taskId,
    agentId: child.id,
    mandate,
    mandateHash: mandateHash(mandate, d.hasher),
    state: 'active',
    txn: parent.txn, // one transaction from the root intent down
    parentId: parent.id,
    depth: parent.depth + 1,
    createdAt: now,
    expiresAt: Math.min(now + ttl, parent.expiresAt),
    maxExpiresAt: Math.min(now + d.limits.maxLifetimeMs, parent.maxExpiresAt),
    endedAt: undefined,
    endReason: undefined,
  };
  await d.tasks.createTask(task);
  await d.supervisor?.started(task.id, undefined, now);
  await d.audit.append([
    taskDraft('task.delegated', parent, now, { child_task_id: task.id, child_agent_id: child.id, mandate_hash: task.mandateHash, carved_calls: share ?? null }),
    taskDraft('task.started', task, now, {
      purpose: mandate.purpose,
      mandate: mandate as unknown as JsonObject,
      mandate_hash: task.mandateHash,
      expires_at: task.expiresAt,
      parent_task_id: parent.id,
      depth: task.depth,
      policy_ids: policy.policyIds,
      policy_version: d.policies().version,
    }),
  ]);
  const act: ActorClaim = claims.act ? { sub: parent.agentId, act: claims.act } : { sub: parent.agentId };
  const { token, claims: childClaims } = await d.tokens.mint({
    agentId: child.id,
    taskId: task.id,
    mandateHash: task.mandateHash,
    txn: task.txn,
    expiresAt: Math.min(now + d.limits.tokenTtlMs, task.expiresAt),
    act,
  });
  return { task, token, claims: childClaims };
}
