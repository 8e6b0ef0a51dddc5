/**
 * Supervision of long-running tasks and re-evaluation of live tasks when what admitted them
 * changes. A task keeps renewing its short-lived token only while it shows it is supervised:
 * a heartbeat from its supervisor, or a signed task state that matches what Mandate recorded.
 * A task that stops showing it is suspended (never silently extended), with an audit record.
 */
import { MandateError } from './errors.ts';
import type { JsonObject } from './json.ts';
import type { Agent, Task } from './model.ts';
import { startTaskRequest } from './policy/context.ts';
import type { PolicySet } from './policy/engine.ts';
import type { AgentReader, AuditAppender, Clock, SupervisionStore, TaskReader, TaskWriter } from './ports.ts';
import type { ReasonCode } from './reasons.ts';
import { checkAdmissible, taskDraft } from './task-rules.ts';
import type { TaskTokenClaims } from './tokens/task-token.ts';
import { verifyTaskState } from './tokens/dpop.ts';

export interface SupervisionSettings {
  /** when false, renewal needs no sign of supervision and the sweeper suspends nothing */
  readonly enabled: boolean;
  readonly heartbeatIntervalMs: number;
  /** heartbeats a task may miss; one more and it is suspended */
  readonly missedBeforeSuspend: number;
  /** how long a signed task state may be old (its iat) */
  readonly stateWindowMs: number;
}

export interface SupervisorDeps {
  readonly clock: Clock;
  readonly tasks: TaskReader & TaskWriter;
  readonly store: SupervisionStore;
  readonly audit: AuditAppender;
  readonly agents: AgentReader;
  readonly policies: () => PolicySet;
  readonly environment: () => string;
  readonly settings: SupervisionSettings;
  /** cancels a suspended task's open approvals (they must not outlive its supervision) */
  readonly approvals?: { cancelForTasks(taskIds: readonly string[], reason: string): Promise<unknown> } | undefined;
}

export type SupervisionActor = { readonly operatorId: string } | { readonly agentId: string } | { readonly system: string };

/**
 * Suspends one active task: compare-and-set to `suspended`, an audit record naming the reason,
 * and its open approvals cancelled. Its tokens stop working at once, because every decision
 * (and renewal) checks the task's state. Returns whether this call suspended it.
 */
export async function suspendTask(
  d: Pick<SupervisorDeps, 'tasks' | 'audit' | 'approvals'>,
  taskId: string,
  reason: ReasonCode,
  detail: string,
  now: number,
  by: SupervisionActor,
): Promise<boolean> {
  const { changed, task } = await d.tasks.transitionTask(taskId, ['active'], 'suspended', now, `${reason}: ${detail}`.slice(0, 500));
  if (!changed || !task) return false;
  await d.audit.append([taskDraft('task.suspended', task, now, { reason, detail, by: by as unknown as JsonObject })]);
  if (d.approvals) await d.approvals.cancelForTasks([taskId], 'task suspended');
  return true;
}

export class Supervisor {
  private readonly d: SupervisorDeps;

  constructor(deps: SupervisorDeps) {
    this.d = deps;
  }

  get settings(): SupervisionSettings {
    return this.d.settings;
  }

  /** how long a task may go without showing supervision */
  get lapseMs(): number {
    return this.d.settings.heartbeatIntervalMs * this.d.settings.missedBeforeSuspend;
  }

  /** records the key binding and the start as the first sign of supervision */
  async started(taskId: string, jkt: string | undefined, now: number): Promise<void> {
    await this.d.store.initSupervision(taskId, jkt, now);
  }

  /**
   * A heartbeat from the task's supervisor. A task that has already lapsed is suspended, not
   * revived: a late heartbeat does not undo a missed one.
   */
  async heartbeat(taskId: string, by: SupervisionActor): Promise<{ task: Task; supervisedAt: number }> {
    const now = this.d.clock.now();
    const task = await this.d.tasks.getTask(taskId);
    if (!task) throw new MandateError('TASK_NOT_FOUND', 'task not found');
    if (task.state !== 'active') throw new MandateError(task.state === 'suspended' ? 'TASK_SUSPENDED' : task.state === 'completed' ? 'TASK_COMPLETED' : task.state === 'killed' ? 'TASK_KILLED' : task.state === 'revoked' ? 'TASK_REVOKED' : 'TASK_EXPIRED', `task is ${task.state}`);
    if (now >= task.expiresAt) throw new MandateError('TASK_EXPIRED', 'task expired');
    const s = await this.d.store.getSupervision(taskId);
    const last = s?.supervisedAt ?? task.createdAt;
    if (this.d.settings.enabled && now - last > this.lapseMs) {
      await suspendTask(this.d, taskId, 'SUPERVISION_LAPSED', `no sign of supervision for ${Math.round((now - last) / 1000)}s`, now, { system: 'supervision' });
      throw new MandateError('SUPERVISION_LAPSED', 'the task missed its heartbeats and is suspended');
    }
    if (!s) await this.d.store.initSupervision(taskId, undefined, now);
    else await this.d.store.recordSupervision(taskId, now);
    await this.d.audit.append([taskDraft('task.heartbeat', task, now, { by: by as unknown as JsonObject })]);
    return { task, supervisedAt: now };
  }

  /**
   * Before a renewal: the task must show it is supervised: a signed task state that matches
   * the audit log (allowed calls and the last one's id), or a heartbeat within the lapse window.
   * Otherwise the task is suspended and the renewal refused. Throws MandateError.
   */
  async checkRenewal(task: Task, claims: TaskTokenClaims, signedState: string | undefined): Promise<void> {
    const now = this.d.clock.now();
    if (signedState !== undefined) {
      const jkt = claims.cnf?.jkt;
      if (jkt === undefined) throw new MandateError('MALFORMED_REQUEST', 'a signed task state needs a key-bound task (start it with a DPoP proof)');
      const v = await verifyTaskState(signedState, jkt, now, this.d.settings.stateWindowMs);
      const recorded = await this.d.store.taskProgress(task.id);
      const mismatch = !v.ok
        ? v.detail
        : v.state.taskId !== task.id
          ? 'the task state names another task'
          : v.state.progress !== recorded.allowedCalls || v.state.lastCallId !== recorded.lastCallId
            ? `the task state (${v.state.progress} calls, last ${String(v.state.lastCallId)}) does not match the record (${recorded.allowedCalls} calls, last ${String(recorded.lastCallId)})`
            : undefined;
      if (mismatch !== undefined) {
        await suspendTask(this.d, task.id, 'SUPERVISION_STATE_MISMATCH', mismatch, now, { agentId: task.agentId });
        throw new MandateError('SUPERVISION_STATE_MISMATCH', `${mismatch}; the task is suspended`);
      }
      await this.d.store.recordSupervision(task.id, now);
      return;
    }
    if (!this.d.settings.enabled) return;
    const s = await this.d.store.getSupervision(task.id);
    const last = s?.supervisedAt ?? task.createdAt;
    if (now - last > this.lapseMs) {
      await suspendTask(this.d, task.id, 'SUPERVISION_LAPSED', `renewal without a heartbeat for ${Math.round((now - last) / 1000)}s`, now, { system: 'supervision' });
      throw new MandateError('SUPERVISION_LAPSED', 'no recent heartbeat from the supervisor: the task is suspended');
    }
  }

  /** The sweeper: suspends every active task whose supervision lapsed. Returns how many. */
  async suspendLapsed(): Promise<number> {
    if (!this.d.settings.enabled) return 0;
    const now = this.d.clock.now();
    let n = 0;
    for (let round = 0; round < 1000; round++) {
      const ids = await this.d.store.listUnsupervised(now - this.lapseMs, 200);
      for (const id of ids) if (await suspendTask(this.d, id, 'SUPERVISION_LAPSED', 'missed its heartbeats', now, { system: 'supervision sweeper' })) n += 1;
      if (ids.length < 200) break;
    }
    return n;
  }

  /**
   * Re-checks every active task against what admits a task now: the deployment's environment,
   * the agent's ceiling, the start_task policies, and whether the policies can still permit
   * each tool of its mandate. Suspends those that no longer fit (MANDATE_NO_LONGER_FITS).
   * Returns the ids it suspended.
   */
  async reevaluate(cause: string, scope: { agentId?: string | undefined } = {}): Promise<string[]> {
    const suspended: string[] = [];
    const policies = this.d.policies();
    const environment = this.d.environment();
    let after: string | undefined;
    for (let round = 0; round < 10_000; round++) {
      const page = await this.d.tasks.listTasks({ limit: 200, state: 'active', agentId: scope.agentId, after });
      for (const task of page) {
        const agent = await this.d.agents.getAgent(task.agentId);
        // a missing or disabled agent's tasks end through their own path (revocation)
        if (!agent || agent.status !== 'active') continue;
        const why = misfit(task, agent, policies, environment, this.d.clock.now());
        if (why !== undefined && (await suspendTask(this.d, task.id, 'MANDATE_NO_LONGER_FITS', `${cause}: ${why}`, this.d.clock.now(), { system: 're-evaluation' }))) {
          suspended.push(task.id);
        }
      }
      if (page.length < 200) break;
      after = page.at(-1)?.id;
    }
    return suspended;
  }
}

/**
 * Why a live task's mandate no longer fits, or undefined. The tool check is an approximation
 * that never suspends a task the policies could still serve: a tool is "forbidden" when no
 * permit policy can apply to a call of it (by the policy's scope and leading `resource.name`
 * test, the same sound reading the engine uses to skip policies), or when a forbid policy
 * without conditions, for any principal, applies to it. A permit whose conditions reject every
 * real call of the tool is not detected; such calls are still denied one by one at decision time.
 */
export function misfit(task: Task, agent: Agent, policies: PolicySet, environment: string, now: number): string | undefined {
  try {
    checkAdmissible(agent, task.mandate, environment);
  } catch (e) {
    return e instanceof MandateError ? `${e.code}: ${e.message}` : 'the mandate is no longer admissible';
  }
  const start = policies.evaluateStartTask(startTaskRequest(agent, task.id, task.mandate, task.depth, environment, now));
  if (start.decision !== 'allow') return `the start_task policies no longer admit this task (${start.reason})`;
  const forbidden = task.mandate.tools.map((t) => t.name).filter((name) => toolForbidden(name, policies));
  if (forbidden.length > 0) return `the policies no longer permit ${forbidden.map((n) => `"${n}"`).join(', ')}`;
  return undefined;
}

function toolForbidden(pattern: string, policies: PolicySet): boolean {
  const isGlob = pattern.includes('*');
  const forCall = (p: (typeof policies.policies)[number]) => p.applies.actions === undefined || p.applies.actions.has('call_tool');
  // a glob names tools the policies may treat differently: only a tool test-free policy speaks for all of them
  const covers = (p: (typeof policies.policies)[number]) => (isGlob ? p.applies.tool === undefined : p.applies.tool === undefined || p.applies.tool(pattern));
  const mayCover = (p: (typeof policies.policies)[number]) => (isGlob ? true : p.applies.tool === undefined || p.applies.tool(pattern));
  if (policies.policies.some((p) => p.effect === 'forbid' && !p.stepUp && p.unconditional === true && forCall(p) && covers(p))) return true;
  return !policies.policies.some((p) => p.effect === 'permit' && forCall(p) && mayCover(p));
}
