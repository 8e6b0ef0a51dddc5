import type { AuditDraft } from './audit/chain.ts';
import { MandateError } from './errors.ts';
import type { JsonObject } from './json.ts';
import type { AgentReader, AgentWriter, AuditAppender, Clock, ControlStore, KillKind } from './ports.ts';
import type { Actor, TaskService } from './tasks.ts';

export type KillTarget = { readonly agent: string } | { readonly task: string } | { readonly all: true };

export interface KillReport {
  readonly target: KillTarget;
  /** the agent whose identity was disabled (an agent kill) */
  readonly disabledAgent: string | undefined;
  /** every task that was live and is now killed, descendants included */
  readonly killedTasks: readonly string[];
  readonly emergencyStop: boolean;
  /** secret leases revoked: none exist until the MCP gateway brokers them */
  readonly revokedLeases: number;
  readonly auditSeq: number | undefined;
}

export interface KillSwitchDeps {
  readonly clock: Clock;
  readonly controls: ControlStore;
  readonly agents: AgentReader & AgentWriter;
  readonly tasks: TaskService;
  readonly audit: AuditAppender;
  /**
   * Where a kill is written for the kill hooks (their durable outbox), once the kill has taken
   * effect and is audited; the hooks are delivered later, so the kill never waits on a receiver.
   */
  readonly outbox?: { record(kind: KillKind, ts: number, data: JsonObject): Promise<void> } | undefined;
}

const EMERGENCY = 'emergency_stop';

/**
 * The deterministic kill path: no model, no heuristics. A kill disables (agent), ends every live
 * task of the target and all their descendants (their tokens stop working at the next call, on
 * this node at once), cancels their open approvals, and for `all` sets an emergency stop that
 * refuses every call and every new task. It answers only once all of that is durable.
 * Releasing (unkill) re-enables an identity or lifts the stop; killed tasks stay killed.
 */
export class KillSwitch {
  private readonly d: KillSwitchDeps;
  private stop = false;

  private constructor(deps: KillSwitchDeps) {
    this.d = deps;
  }

  static async open(deps: KillSwitchDeps): Promise<KillSwitch> {
    const k = new KillSwitch(deps);
    await k.reload();
    return k;
  }

  /** re-reads the emergency stop from the store (another node may have set it) */
  async reload(): Promise<void> {
    this.stop = (await this.d.controls.getControl(EMERGENCY)) !== undefined;
  }

  stopped(): boolean {
    return this.stop;
  }

  async kill(target: KillTarget, actor: Actor, reason: string): Promise<KillReport> {
    const now = this.d.clock.now();
    let disabledAgent: string | undefined;
    let killed: string[];
    if ('all' in target) {
      // the stop first: from this line on, no call and no new task passes on this node
      await this.d.controls.setControl(EMERGENCY, { reason, at: now, by: actorId(actor) }, now);
      this.stop = true;
      killed = await this.d.tasks.endLiveTasks({}, 'killed', actor, reason);
    } else if ('agent' in target) {
      const agent = await this.d.agents.getAgent(target.agent);
      if (!agent) throw new MandateError('NOT_FOUND', 'agent not found');
      await this.d.agents.updateAgent(agent.id, { status: 'disabled' }, now);
      disabledAgent = agent.id;
      killed = await this.d.tasks.endLiveTasks({ agentId: agent.id }, 'killed', actor, reason);
    } else {
      killed = await this.d.tasks.killTree(target.task, actor, reason);
    }
    const report: KillReport = { target, disabledAgent, killedTasks: killed, emergencyStop: this.stop, revokedLeases: 0, auditSeq: undefined };
    const data: JsonObject = { target: target as JsonObject, reason, by: actorId(actor), disabled_agent: disabledAgent ?? null, killed_tasks: killed, emergency_stop: this.stop };
    const [record] = await this.d.audit.append([this.draft('kill', now, data)]);
    const kind: KillKind = 'all' in target ? 'emergency_stop' : 'agent' in target ? 'agent' : 'task';
    await this.d.outbox?.record(kind, now, { ...data, audit_seq: record?.seq ?? null });
    return { ...report, auditSeq: record?.seq };
  }

  /** Lifts an emergency stop or re-enables an agent. Never revives a killed task or its tokens. */
  async unkill(target: { agent: string } | { all: true }, actor: Actor, reason: string): Promise<{ released: string }> {
    const now = this.d.clock.now();
    let released: string;
    if ('all' in target) {
      await this.d.controls.setControl(EMERGENCY, undefined, now);
      this.stop = false;
      released = 'emergency stop';
    } else {
      const agent = await this.d.agents.getAgent(target.agent);
      if (!agent) throw new MandateError('NOT_FOUND', 'agent not found');
      await this.d.agents.updateAgent(agent.id, { status: 'active' }, now);
      released = agent.id;
    }
    await this.d.audit.append([this.draft('unkill', now, { target: target as JsonObject, reason, by: actorId(actor) })]);
    return { released };
  }

  private draft(kind: AuditDraft['kind'], ts: number, data: JsonObject): AuditDraft {
    return { kind, ts, data };
  }
}

function actorId(a: Actor): string {
  return a.kind === 'agent' ? a.agentId : a.operatorId;
}
