/**
 * The live event bus behind `GET /v1/events` (the operator dashboard's stream). Publishing never
 * blocks and never throws: each subscriber has a bounded queue, and a subscriber that falls
 * behind by a whole queue is dropped (its stream ends with a `dropped` event) rather than letting
 * memory grow. Subscribers are bounded too. Events are published only after what they report is
 * durable: decisions after `decide()` returned (its records committed), everything else after
 * its audit records committed.
 */
import {
  DecisionEngine,
  MandateError,
  type ArgProvenance,
  type AuditAppender,
  type AuditDraft,
  type AuditReader,
  type AuditRecord,
  type CallRequest,
  type Clock,
  type Decision,
  type DecisionCommit,
  type DecisionCommitResult,
  type DecisionCommitter,
  type DecisionEngineDeps,
  type JsonObject,
  type JsonValue,
} from '@mandate/core';
import { performance } from 'node:perf_hooks';
import type { MandateMetrics } from './metrics.ts';
import { createTracing, decisionAttributes, type Tracing } from './tracing.ts';

/** `alert` is reserved for the behaviour detectors: {id, ts, task_id, agent_id, call_id, detector, severity, confidence, evidence, action, acknowledged} */
export const EVENT_TYPES = ['decision', 'approval', 'task', 'kill', 'alert'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export interface MandateEvent {
  /** increasing per bus, the SSE `id:` */
  readonly id: number;
  readonly type: EventType;
  readonly data: JsonObject;
}

export interface EventBusLimits {
  /** streams open at once */
  readonly maxSubscribers: number;
  /** events a subscriber may have waiting; one more and it is dropped */
  readonly queueLength: number;
}

export const DEFAULT_EVENT_LIMITS: EventBusLimits = { maxSubscribers: 64, queueLength: 1024 };

export type DropReason = 'slow' | 'closed';

export interface SubscribeOptions {
  /** only these types (default: all) */
  readonly types?: ReadonlySet<EventType> | undefined;
  /** called (once per burst, in a microtask) when events are waiting */
  readonly onReady: () => void;
  /** called once when the bus drops this subscriber */
  readonly onDrop: (reason: DropReason) => void;
}

/** One stream's view of the bus: a bounded queue drained by its writer. */
export class EventSubscription {
  private queue: MandateEvent[] = [];
  private scheduled = false;
  private ended = false;
  private readonly bus: EventBus;
  private readonly opts: SubscribeOptions;

  constructor(bus: EventBus, opts: SubscribeOptions) {
    this.bus = bus;
    this.opts = opts;
  }

  get closed(): boolean {
    return this.ended;
  }

  /** events waiting now */
  get pending(): number {
    return this.queue.length;
  }

  /** takes up to `max` waiting events, oldest first */
  take(max = Number.POSITIVE_INFINITY): MandateEvent[] {
    if (this.queue.length <= max) {
      const out = this.queue;
      this.queue = [];
      return out;
    }
    return this.queue.splice(0, max);
  }

  /** the subscriber leaves (its client went away) */
  close(): void {
    if (this.ended) return;
    this.ended = true;
    this.queue = [];
    this.bus.remove(this);
  }

  /** @internal by the bus */
  offer(e: MandateEvent, max: number): void {
    if (this.ended || (this.opts.types !== undefined && !this.opts.types.has(e.type))) return;
    if (this.queue.length >= max) {
      this.drop('slow');
      return;
    }
    this.queue.push(e);
    if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(() => {
        this.scheduled = false;
        if (!this.ended && this.queue.length > 0) this.opts.onReady();
      });
    }
  }

  /** @internal by the bus */
  drop(reason: DropReason): void {
    if (this.ended) return;
    this.close();
    this.opts.onDrop(reason);
  }
}

export class EventBus {
  private readonly subs = new Set<EventSubscription>();
  private seq = 0;
  private dropped = 0;
  private readonly limits: EventBusLimits;

  constructor(limits: EventBusLimits = DEFAULT_EVENT_LIMITS) {
    if (!(limits.maxSubscribers >= 1 && limits.queueLength >= 1)) throw new TypeError('event bus limits must be at least 1');
    this.limits = limits;
  }

  get subscribers(): number {
    return this.subs.size;
  }

  /** subscribers dropped for being slow, since start */
  get droppedSlow(): number {
    return this.dropped;
  }

  subscribe(opts: SubscribeOptions): EventSubscription {
    if (this.subs.size >= this.limits.maxSubscribers) {
      throw new MandateError('RATE_LIMITED', `at most ${this.limits.maxSubscribers} event streams may be open at once`);
    }
    const sub = new EventSubscription(this, {
      ...opts,
      onDrop: (reason) => {
        if (reason === 'slow') this.dropped += 1;
        opts.onDrop(reason);
      },
    });
    this.subs.add(sub);
    return sub;
  }

  /** O(subscribers), never blocks, never throws */
  publish(type: EventType, data: JsonObject): void {
    if (this.subs.size === 0) return;
    this.seq += 1;
    const e: MandateEvent = { id: this.seq, type, data };
    for (const s of [...this.subs]) s.offer(e, this.limits.queueLength);
  }

  /** @internal */
  remove(sub: EventSubscription): void {
    this.subs.delete(sub);
  }

  /** ends every stream (shutdown) */
  close(): void {
    for (const s of [...this.subs]) s.drop('closed');
  }
}

const iso = (ms: number) => new Date(ms).toISOString();

/** The `decision` event: what the dashboard's live view shows. */
export function decisionEvent(d: Decision, tool: unknown, latencyMs: number, ts: number): JsonObject {
  return {
    ts: iso(ts),
    call_id: d.callId,
    task_id: d.taskId ?? null,
    agent_id: d.agentId ?? null,
    tool: typeof tool === 'string' ? tool.slice(0, 200) : null,
    effect: d.effect,
    reasons: [...d.reasons],
    policy_ids: [...d.policyIds],
    latency_ms: Math.round(latencyMs * 1000) / 1000,
    ...(d.approvalId !== undefined ? { approval_id: d.approvalId } : {}),
  };
}

/** The decision engine, publishing each decision (with its latency) once `decide()` returns. */
export class PublishingDecisionEngine extends DecisionEngine {
  private readonly bus: EventBus;
  private readonly clock: Clock;
  private readonly metrics: MandateMetrics | undefined;

  private readonly tracing: Tracing;

  constructor(deps: DecisionEngineDeps, bus: EventBus, metrics?: MandateMetrics, tracing: Tracing = createTracing(false)) {
    super(deps);
    this.bus = bus;
    this.clock = deps.clock;
    this.metrics = metrics;
    this.tracing = tracing;
  }

  override decide(req: CallRequest, provenance?: ArgProvenance): Promise<Decision> {
    // tracing off (the default): no span, so no attributes or closures to build for one
    if (!this.tracing.enabled) return this.decideAndPublish(req, provenance);
    return this.tracing.child('mandate.decide', { 'mandate.tool': req.tool }, async (span) => {
      const d = await this.decideAndPublish(req, provenance);
      span?.setAttributes(decisionAttributes(d));
      return d;
    });
  }

  private async decideAndPublish(req: CallRequest, provenance?: ArgProvenance): Promise<Decision> {
    // metrics off and no stream open: nothing to time, nothing to publish
    if (this.metrics === undefined && this.bus.subscribers === 0) return super.decide(req, provenance);
    const t0 = performance.now();
    const d = await super.decide(req, provenance);
    this.metrics?.decided(d, (performance.now() - t0) / 1000);
    // the event is built only for someone to read it: with no stream open, a decision costs nothing here
    if (this.bus.subscribers > 0) this.bus.publish('decision', decisionEvent(d, req.tool, performance.now() - t0, this.clock.now()));
    return d;
  }
}

const APPROVAL = 'approval.';
const TASK = 'task.';

/** The event an audit record becomes, if any (decisions come from the engine, with latency). */
export function recordEvent(r: AuditRecord): { type: EventType; data: JsonObject } | undefined {
  const common: Record<string, JsonValue> = { ts: iso(r.ts), seq: r.seq, task_id: r.taskId ?? null, agent_id: r.agentId ?? null };
  if (r.kind.startsWith(APPROVAL)) {
    return { type: 'approval', data: { ...common, call_id: r.callId ?? null, kind: r.kind.slice(APPROVAL.length), ...pick(r.data, ['approval_id', 'tool', 'by', 'reason', 'expires_at']) } };
  }
  if (r.kind.startsWith(TASK)) {
    return { type: 'task', data: { ...common, kind: r.kind.slice(TASK.length), ...pick(r.data, ['reason', 'by', 'code']) } };
  }
  if (r.kind === 'containment.lifted') {
    return { type: 'task', data: { ...common, kind: 'containment_lifted', ...pick(r.data, ['reason', 'by', 'resumes_task']) } };
  }
  if (r.kind === 'kill' || r.kind === 'unkill') {
    return { type: 'kill', data: { ...common, kind: r.kind, ...pick(r.data, ['target', 'reason', 'by', 'disabled_agent', 'killed_tasks', 'emergency_stop']) } };
  }
  return undefined;
}

function pick(data: JsonObject, keys: readonly string[]): JsonObject {
  const out: JsonObject = {};
  for (const k of keys) if (data[k] !== undefined) out[k] = data[k];
  return out;
}

type FullAudit = AuditAppender & AuditReader & DecisionCommitter;

/**
 * Wraps the audit log: committed approval, task and kill records are published as they land, and
 * (with metrics) every commit is timed and counted, and every failed one counted.
 */
export function publishingAudit(inner: FullAudit, bus: EventBus, metrics?: MandateMetrics): FullAudit {
  const publish = (records: readonly AuditRecord[]) => {
    if (bus.subscribers === 0) return;
    for (const r of records) {
      const e = recordEvent(r);
      if (e) bus.publish(e.type, e.data);
    }
  };
  return {
    async append(drafts: readonly AuditDraft[]) {
      if (metrics === undefined) {
        const records = await inner.append(drafts);
        publish(records);
        return records;
      }
      const t0 = performance.now();
      let records: AuditRecord[];
      try {
        records = await inner.append(drafts);
      } catch (e) {
        metrics.commitFailed('append', e);
        throw e;
      }
      metrics.committed('append', records, (performance.now() - t0) / 1000);
      publish(records);
      return records;
    },
    async commitDecision(entry: DecisionCommit): Promise<DecisionCommitResult> {
      if (metrics === undefined) return inner.commitDecision(entry);
      const t0 = performance.now();
      let result: DecisionCommitResult;
      try {
        result = await inner.commitDecision(entry);
      } catch (e) {
        metrics.commitFailed('decision', e);
        throw e;
      }
      metrics.committed('decision', result.records, (performance.now() - t0) / 1000);
      return result;
    },
    head: () => inner.head(),
    readRange: (from, limit) => inner.readRange(from, limit),
    readStored: (from, limit) => inner.readStored(from, limit),
    readByTask: (taskId, limit) => inner.readByTask(taskId, limit),
  };
}
