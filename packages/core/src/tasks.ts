import type { AuditDraft } from './audit/chain.ts';
import { MandateError } from './errors.ts';
import type { JsonObject } from './json.ts';
import { mandateHash, parseMandate } from './mandate/parse.ts';
import type { Mandate } from './mandate/schema.ts';
import { TASK_STATE_REASON, type Agent, type Task, type TaskState } from './model.ts';
import { startTaskRequest } from './policy/context.ts';
import type { PolicySet } from './policy/engine.ts';
import type { AgentReader, AuditAppender, BudgetLedger, Clock, Hasher, IdGenerator, RevocationStore, TaskReader, TaskWriter } from './ports.ts';
import type { ReasonCode } from './reasons.ts';
import type { TaskTokenClaims, TaskTokens } from './tokens/task-token.ts';
import { delegateTask } from './delegation.ts';
import { checkAdmissible, normaliseMandate, taskDraft } from './task-rules.ts';
import type { ApprovalService } from './approvals.ts';
import { decodeJwt } from 'jose';
import { checkBinding, isJkt, type ProofResult } from './tokens/dpop.ts';
import type { Supervisor } from './supervision.ts';

/** What a verified workload token says: whose it is, who issued it, and its claims. */
export interface VerifiedWorkload {
  readonly agentId: string;
  /** ms since the epoch */
  readonly expiresAt: number;
  /** the SPIFFE trust domain whose keys (or whose OIDC issuer's keys) verified the token */
  readonly trustDomain: string;
  /** the OIDC issuer; absent for a JWT-SVID */
  readonly issuer?: string | undefined;
  /** the verified claims */
  readonly claims: Readonly<Record<string, unknown>>;
}

export interface WorkloadAuthenticator {
  verify(token: string): Promise<VerifiedWorkload>;
}

export interface TaskLimits {
  /** ttl when the mandate declares none */
  readonly defaultTtlMs: number;
  /** the longest ttl a mandate may declare */
  readonly maxTtlMs: number;
  /** hard end of every task, renewals included */
  readonly maxLifetimeMs: number;
  /** longest life of one task token (renewal mints the next) */
  readonly tokenTtlMs: number;
  /** how long a renewed token keeps working for calls in flight (never past its own exp) */
  readonly renewGraceMs?: number | undefined;
}

export interface TaskServiceDeps {
  readonly clock: Clock;
  readonly ids: IdGenerator;
  readonly hasher: Hasher;
  readonly tokens: TaskTokens;
  readonly workload: WorkloadAuthenticator;
  readonly agents: AgentReader;
  readonly tasks: TaskReader & TaskWriter;
  readonly revocations: RevocationStore;
  readonly audit: AuditAppender;
  readonly policies: () => PolicySet;
  readonly environment: string;
  readonly limits: TaskLimits;
  /** cancels a task's open approvals when it ends */
  readonly approvals?: Pick<ApprovalService, 'cancelForTasks'> | undefined;
  /** refuses new tasks while an emergency stop is in force */
  readonly emergency?: { stopped(): boolean } | undefined;
  /** a parent's budget, read and carved when it delegates */
  readonly budgets?: Pick<BudgetLedger, 'usage' | 'carve'> | undefined;
  /** every task of this deployment must be bound to a key (config tokens.require_pop_environments) */
  readonly requirePop?: boolean | undefined;
  /** key binding records, heartbeats and the renewal check (supervision.ts) */
  readonly supervisor?: Supervisor | undefined;
}

/** What the edge verified about a request beside its bearer token. */
export interface RequestProof {
  /** the DPoP proof result, or undefined when the request carried none */
  readonly proof?: ProofResult | undefined;
  /** RFC 8707: the resource (an MCP gateway's URL) the token is for; it becomes part of its `aud` */
  readonly resource?: string | undefined;
}


export interface IssuedTask {
  readonly task: Task;
  readonly token: string;
  readonly claims: TaskTokenClaims;
}

export type Actor = { readonly kind: 'agent'; readonly agentId: string } | { readonly kind: 'operator'; readonly operatorId: string };

const ENDABLE: readonly TaskState[] = ['active', 'suspended'];
const END_KIND: Partial<Record<TaskState, AuditDraft['kind']>> = { completed: 'task.completed', revoked: 'task.revoked', killed: 'task.killed', expired: 'task.expired' };

/** Task lifecycle: start (mint), renew, complete, revoke. Every step is audited before it returns. */
export class TaskService {
  private readonly d: TaskServiceDeps;

  constructor(deps: TaskServiceDeps) {
    this.d = deps;
  }

  /**
   * Starts a task: the workload token proves the agent, the mandate is checked against the
   * deployment's limits, the agent's ceiling and the organisation's start_task policies.
   */
  async start(workloadToken: string, mandateInput: unknown, req: RequestProof = {}): Promise<IssuedTask> {
    if (this.d.emergency?.stopped()) throw new MandateError('EMERGENCY_STOP', 'an emergency stop is in force: no new tasks');
    const identity = await this.d.workload.verify(workloadToken);
    const agent = await this.d.agents.getAgent(identity.agentId);
    if (!agent) throw new MandateError('AGENT_UNKNOWN', `agent ${identity.agentId} is not registered`);
    if (agent.status !== 'active') throw new MandateError('AGENT_DISABLED', 'agent is disabled');
    const now = this.d.clock.now();
    const taskId = this.d.ids.next('task');
    const jkt = await this.startBinding(agent, workloadToken, req.proof, taskId, now);

    let mandate: Mandate;
    try {
      mandate = this.normalise(parseMandate(mandateInput));
      this.checkAdmissible(agent, mandate);
    } catch (e) {
      if (e instanceof MandateError) await this.auditDenied(agent, taskId, now, e);
      throw e;
    }
    const policy = this.d.policies().evaluateStartTask(startTaskRequest(agent, taskId, mandate, 0, this.d.environment, now));
    if (policy.decision !== 'allow') {
      const code: ReasonCode = policy.reason === 'APPROVAL_REQUIRED' ? 'POLICY_FORBID' : (policy.reason as ReasonCode);
      const err = new MandateError(code, policy.reason === 'NO_PERMITTING_POLICY' ? 'no policy permits this task' : 'a policy refuses this task', {
        policy_ids: policy.policyIds,
        errors: policy.errors,
      });
      await this.auditDenied(agent, taskId, now, err);
      throw err;
    }

    const ttl = mandate.ttl ?? this.d.limits.defaultTtlMs;
    const task: Task = {
      id: taskId,
      agentId: agent.id,
      mandate,
      mandateHash: mandateHash(mandate, this.d.hasher),
      state: 'active',
      txn: this.d.ids.next('txn'),
      parentId: undefined,
      depth: 0,
      createdAt: now,
      expiresAt: now + ttl,
      maxExpiresAt: now + this.d.limits.maxLifetimeMs,
      endedAt: undefined,
      endReason: undefined,
    };
    await this.d.tasks.createTask(task);
    await this.d.supervisor?.started(task.id, jkt, now);
    await this.d.audit.append([
      this.draft('task.started', task, now, {
        purpose: mandate.purpose,
        mandate: mandate as unknown as JsonObject,
        mandate_hash: task.mandateHash,
        expires_at: task.expiresAt,
        policy_ids: policy.policyIds,
        policy_version: this.d.policies().version,
        ...(jkt !== undefined ? { cnf_jkt: jkt } : {}),
      }),
    ]);
    const { token, claims } = await this.d.tokens.mint({
      agentId: agent.id,
      taskId: task.id,
      mandateHash: task.mandateHash,
      txn: task.txn,
      expiresAt: Math.min(now + this.d.limits.tokenTtlMs, task.expiresAt),
      cnfJkt: jkt,
      resource: req.resource,
    });
    return { task, token, claims };
  }

  /**
   * The key a new task is bound to: the one whose DPoP proof came with the workload token (its
   * `ath` is that token's hash, so the key and the workload identity are presented together).
   * A workload token that names a key itself (`cnf.jkt`) must be accompanied by that key's proof;
   * an agent whose ceiling says `require_pop`, or a deployment that requires it, must bring one.
   */
  private async startBinding(agent: Agent, workloadToken: string, proof: ProofResult | undefined, taskId: string, now: number): Promise<string | undefined> {
    let workloadJkt: string | undefined;
    try {
      const cnf = (decodeJwt(workloadToken) as { cnf?: { jkt?: unknown } }).cnf;
      if (cnf !== undefined) {
        if (!isJkt(cnf.jkt)) throw new MandateError('TOKEN_CLAIMS_INVALID', 'the workload token cnf must name a jkt');
        workloadJkt = cnf.jkt;
      }
    } catch (e) {
      if (e instanceof MandateError) throw e;
      throw new MandateError('TOKEN_MALFORMED', 'the workload token is not a JWT');
    }
    const required = this.d.requirePop === true || agent.ceiling.require_pop === true || workloadJkt !== undefined;
    const failed = checkBinding(workloadJkt, proof) ?? (required && proof === undefined ? { reason: 'DPOP_PROOF_MISSING' as const, detail: 'this agent or environment requires a key-bound task: send a DPoP proof' } : undefined);
    if (failed) {
      const err = new MandateError(failed.reason, failed.detail);
      await this.auditDenied(agent, taskId, now, err);
      throw err;
    }
    return proof?.ok ? proof.jkt : undefined;
  }

  /** Delegation to a sub-agent: see delegation.ts. */
  delegate(parentToken: string, childWorkloadToken: string, mandateInput: unknown, req: RequestProof = {}): Promise<IssuedTask> {
    return delegateTask(this, this.d, parentToken, childWorkloadToken, mandateInput, req);
  }

  /** A fresh token for a live task; the task's life moves forward within its hard maximum. */
  async renew(taskToken: string, req: RequestProof & { signedState?: string | undefined } = {}): Promise<IssuedTask> {
    const claims = await this.authenticateTaskToken(taskToken, req.proof);
    const task = await this.liveTask(claims.task_id);
    if (task.agentId !== claims.sub) throw new MandateError('AGENT_MISMATCH', 'token subject is not the task agent');
    const agent = await this.d.agents.getAgent(task.agentId);
    if (!agent || agent.status !== 'active') throw new MandateError('AGENT_DISABLED', 'agent is disabled');
    const now = this.d.clock.now();
    if (now >= task.maxExpiresAt) throw new MandateError('TASK_MAX_LIFETIME_REACHED', 'task reached its maximum lifetime');
    // supervision before anything moves: a lapsed task is suspended here, not extended
    await this.d.supervisor?.checkRenewal(task, claims, req.signedState);
    const ttl = task.mandate.ttl ?? this.d.limits.defaultTtlMs;
    const extended = (await this.d.tasks.extendTask(task.id, Math.min(now + ttl, task.maxExpiresAt))) ?? task;
    const { token, claims: next } = await this.d.tokens.mint({
      agentId: task.agentId,
      taskId: task.id,
      mandateHash: task.mandateHash,
      txn: task.txn,
      expiresAt: Math.min(now + this.d.limits.tokenTtlMs, extended.expiresAt),
      act: claims.act,
      cnfJkt: claims.cnf?.jkt,
      // a renewal keeps the resource the token was bound to
      resource: typeof claims.aud === 'string' ? undefined : claims.aud[1],
    });
    // one live token per task: the previous one stops working for calls after the grace window
    // (at once without one); it can never renew again. Suspending, revoking or killing the task
    // stops it at once whatever the grace, since every decision checks the task's state.
    const grace = Math.max(0, Math.min(this.d.limits.renewGraceMs ?? 0, claims.exp * 1000 - now));
    await this.d.revocations.revokeToken(claims.jti, task.id, claims.exp * 1000, 'renewed', now + grace);
    this.d.tokens.forget(taskToken);
    await this.d.audit.append([this.draft('task.renewed', extended, now, { expires_at: extended.expiresAt, previous_jti: claims.jti, jti: next.jti })]);
    return { task: extended, token, claims: next };
  }

  /** Ends a task because its work is done; its tokens stop working at once. */
  async complete(taskId: string, actor: Actor): Promise<Task> {
    return this.end(taskId, 'completed', actor, 'completed');
  }

  async revoke(taskId: string, actor: Actor, reason: string): Promise<Task> {
    return this.end(taskId, 'revoked', actor, reason);
  }

  /**
   * Suspends an active task (containment): every later call is denied with TASK_SUSPENDED, on
   * every node, until the task is revoked, killed or expires. Idempotent: suspending a task that
   * is already suspended returns it unchanged; a task that has ended cannot be suspended.
   */
  async suspend(taskId: string, reason: string, actor: Actor): Promise<Task> {
    const now = this.d.clock.now();
    const { changed, task } = await this.d.tasks.transitionTask(taskId, ['active'], 'suspended', now, reason);
    if (!task) throw new MandateError('NOT_FOUND', 'task not found');
    if (changed) {
      const by = actor.kind === 'agent' ? { agent: actor.agentId } : { operator: actor.operatorId };
      await this.d.audit.append([this.draft('task.suspended', task, now, { reason, by })]);
      return task;
    }
    if (task.state === 'suspended') return task;
    throw new MandateError('CONFLICT', `task is already ${task.state}`);
  }

  /**
   * Moves every active task whose time is up to `expired`, with a `task.expired` audit record.
   * Decisions never wait for this: they deny an expired task by its time alone.
   */
  async expireDue(): Promise<number> {
    const now = this.d.clock.now();
    let expired = 0;
    let after: string | undefined;
    for (;;) {
      const page = await this.d.tasks.listTasks({ limit: 200, state: 'active', after });
      for (const t of page) if (now >= t.expiresAt && (await this.expire(t, now))) expired += 1;
      if (page.length < 200) break;
      after = page.at(-1)?.id;
    }
    return expired;
  }

  private async expire(t: Task, now: number): Promise<boolean> {
    const { changed, task } = await this.d.tasks.transitionTask(t.id, ['active'], 'expired', now, 'ttl elapsed');
    if (changed && task) await this.d.audit.append([this.draft('task.expired', task, now, { expires_at: task.expiresAt })]);
    return changed;
  }

  /** Revokes every live (active or suspended) task of an agent; returns how many it ended. */
  async revokeAgentTasks(agentId: string, actor: Actor, reason: string): Promise<number> {
    return (await this.endLiveTasks({ agentId }, 'revoked', actor, reason)).length;
  }

  /**
   * Ends every live task (of one agent, or all of them) and their subtrees; a task ended
   * meanwhile by someone else is simply skipped. Returns the ids it ended.
   */
  async endLiveTasks(scope: { agentId?: string | undefined }, to: 'revoked' | 'killed', actor: Actor, reason: string): Promise<string[]> {
    const ended: string[] = [];
    for (const state of ['active', 'suspended'] as const) {
      for (;;) {
        const live = await this.d.tasks.listTasks({ limit: 100, agentId: scope.agentId, state });
        if (live.length === 0) break;
        for (const t of live) ended.push(...(await this.endTree(t, to, actor, reason)));
      }
    }
    return ended;
  }

  /** Kills a task and everything delegated below it; idempotent. Returns the ids it ended. */
  async killTree(taskId: string, actor: Actor, reason: string): Promise<string[]> {
    const task = await this.d.tasks.getTask(taskId);
    if (!task) throw new MandateError('NOT_FOUND', 'task not found');
    return this.endTree(task, 'killed', actor, reason);
  }

  /** The agent behind a task token, for endpoints an agent may call on its own task. */
  async authenticateTaskToken(taskToken: string, proof?: ProofResult): Promise<TaskTokenClaims> {
    const claims = await this.d.tokens.verify(taskToken);
    // every revocation counts here, scheduled ones too: a renewed token never renews or ends a task again
    if (await this.d.revocations.isTokenRevoked(claims.jti)) throw new MandateError('TOKEN_REVOKED', 'task token revoked');
    const failed = checkBinding(claims.cnf?.jkt, proof);
    if (failed) throw new MandateError(failed.reason, failed.detail);
    return claims;
  }

  private async end(taskId: string, to: TaskState, actor: Actor, reason: string): Promise<Task> {
    const current = await this.d.tasks.getTask(taskId);
    if (!current) throw new MandateError('NOT_FOUND', 'task not found');
    if (actor.kind === 'agent' && actor.agentId !== current.agentId) throw new MandateError('FORBIDDEN', 'an agent may only end its own task');
    const ended = await this.endTree(current, to, actor, reason);
    const task = await this.d.tasks.getTask(taskId);
    if (!task) throw new MandateError('NOT_FOUND', 'task not found');
    if (ended[0] !== taskId) throw new MandateError('CONFLICT', `task is already ${task.state}`);
    return task;
  }

  /**
   * Ends a task and every live task delegated below it (a parent's end is its subtree's end),
   * each with its own audit record, and cancels their open approvals. Returns the ids it ended,
   * the root first when the root was still live.
   */
  private async endTree(root: Task, to: TaskState, actor: Actor, reason: string): Promise<string[]> {
    const now = this.d.clock.now();
    const by = actor.kind === 'agent' ? { agent: actor.agentId } : { operator: actor.operatorId };
    const ended: string[] = [];
    const endOne = async (id: string, state: TaskState, why: string) => {
      const { changed, task } = await this.d.tasks.transitionTask(id, ENDABLE, state, now, why);
      if (!changed || !task) return;
      ended.push(id);
      await this.d.audit.append([this.draft(END_KIND[state] ?? 'task.revoked', task, now, { reason: why, by })]);
    };
    await endOne(root.id, to, reason);
    const below: TaskState = to === 'killed' ? 'killed' : 'revoked';
    const queue = [root.id];
    for (let guard = 0; queue.length > 0 && guard < 100_000; guard++) {
      const id = queue.shift() as string;
      for (const child of await this.d.tasks.listChildren(id)) {
        if (ENDABLE.includes(child.state)) await endOne(child.id, below, `parent task ${to}`);
        queue.push(child.id);
      }
    }
    if (ended.length > 0 && this.d.approvals) await this.d.approvals.cancelForTasks(ended, `task ${to}`);
    return ended;
  }

  /** The task, if it is active and in time; otherwise the reason code of why not. */
  async liveTask(taskId: string): Promise<Task> {
    const task = await this.d.tasks.getTask(taskId);
    if (!task) throw new MandateError('TASK_NOT_FOUND', 'task not found');
    const now = this.d.clock.now();
    if (task.state === 'active' && now >= task.expiresAt) {
      await this.expire(task, now);
      throw new MandateError('TASK_EXPIRED', 'task expired');
    }
    if (task.state !== 'active') throw new MandateError(TASK_STATE_REASON[task.state], `task is ${task.state}`);
    return task;
  }

  /** Records a refused task start (or delegation) of an identified agent. */
  async auditDenied(agent: Agent, taskId: string, now: number, e: MandateError): Promise<void> {
    await this.d.audit.append([{ kind: 'task.start_denied', ts: now, taskId, agentId: agent.id, data: { code: e.code, message: e.message } }]);
  }

  private normalise(m: Mandate): Mandate {
    return normaliseMandate(m, this.d.limits);
  }

  private checkAdmissible(agent: Agent, m: Mandate): void {
    checkAdmissible(agent, m, this.d.environment);
  }

  private draft(kind: AuditDraft['kind'], task: Task, ts: number, data: JsonObject): AuditDraft {
    return taskDraft(kind, task, ts, data);
  }
}
