/**
 * Prometheus metrics (prom-client). One registry per runtime: no module-level default registry,
 * so two runtimes in one process (tests, several nodes) never mix their counts. Every label
 * takes its values from a closed set (effects, reason codes, audit kinds, route templates,
 * detector names): no id, tool name or URL ever becomes a label, so cardinality stays bounded
 * and no agent-chosen string reaches the exposition. docs/metrics.md lists every name.
 */
import { getHeapStatistics } from 'node:v8';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { MandateError, SEVERITIES, type AuditRecord, type Decision, type TaskReader } from '@mandate/core';

/** decisions take hundreds of µs in memory and milliseconds with their audit commit */
const DECISION_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
/** a group commit is a sync to disk (SQLite) or a round trip (PostgreSQL) */
const COMMIT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const HTTP_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** what a scrape reads from the running runtime (set once the runtime is composed) */
export interface MetricsSources {
  /** live tasks by state, counted in the store (bounded; see countLiveTasks) */
  liveTasks(): Promise<Record<string, number>>;
  /** open MCP gateway sessions and pooled upstream connections */
  gateway(): { sessions: number; upstreamConnections: number };
  /** whether the store answers, and (several nodes) whether the change feed is connected */
  storeUp(): Promise<boolean>;
  changeFeedConnected(): boolean;
  /** approvals waiting for a human */
  approvalsPending(): Promise<number>;
  /** the number of policies in force */
  policies(): number;
}

export type StoreErrorKind = 'audit_commit' | 'outage' | 'change_feed';

export class MandateMetrics {
  readonly registry = new Registry();
  private sources: MetricsSources | undefined;
  private readonly decisions: Counter<'effect'>;
  private readonly reasons: Counter<'reason'>;
  private readonly decisionSeconds: Histogram<'effect'>;
  private readonly auditRecords: Counter<'kind'>;
  private readonly auditCommitSeconds: Histogram<'operation'>;
  private readonly auditFailures: Counter<'operation'>;
  private readonly storeErrors: Counter<'kind'>;
  private readonly kills: Counter<'target'>;
  private readonly alerts: Counter<'severity'>;
  private readonly policyReloads: Counter<'outcome'>;
  private readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  private readonly httpSeconds: Histogram<'route'>;

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.decisions = new Counter({ name: 'mandate_decisions_total', help: 'Decisions on agent calls, by effect (allow, deny, approval_required).', labelNames: ['effect'], registers });
    this.reasons = new Counter({ name: 'mandate_decision_reasons_total', help: 'Reason codes carried by decisions that were not allowed, one count per code.', labelNames: ['reason'], registers });
    this.decisionSeconds = new Histogram({ name: 'mandate_decision_duration_seconds', help: 'Time to decide one call, including its durable audit commit.', labelNames: ['effect'], buckets: DECISION_BUCKETS, registers });
    this.auditRecords = new Counter({ name: 'mandate_audit_records_total', help: 'Audit records committed to the hash chain, by kind.', labelNames: ['kind'], registers });
    this.auditCommitSeconds = new Histogram({ name: 'mandate_audit_commit_duration_seconds', help: 'Time for an audit append or a decision commit to become durable.', labelNames: ['operation'], buckets: COMMIT_BUCKETS, registers });
    this.auditFailures = new Counter({ name: 'mandate_audit_commit_failures_total', help: 'Audit appends or decision commits that failed (the call was denied).', labelNames: ['operation'], registers });
    this.storeErrors = new Counter({ name: 'mandate_store_errors_total', help: 'Store failures: failed audit commits, database outages, change feed losses.', labelNames: ['kind'], registers });
    this.kills = new Counter({ name: 'mandate_kills_total', help: 'Kill switch uses, by target (agent, task, all).', labelNames: ['target'], registers });
    this.alerts = new Counter({ name: 'mandate_alerts_total', help: 'Behavioural alerts raised, by severity.', labelNames: ['severity'], registers });
    this.policyReloads = new Counter({ name: 'mandate_policy_reloads_total', help: 'Policy reloads, by outcome (loaded, refused).', labelNames: ['outcome'], registers });
    this.httpRequests = new Counter({ name: 'mandate_http_requests_total', help: 'HTTP requests answered, by method, route template and status code.', labelNames: ['method', 'route', 'status'], registers });
    this.httpSeconds = new Histogram({ name: 'mandate_http_request_duration_seconds', help: 'Time to answer an HTTP request, by route template.', labelNames: ['route'], buckets: HTTP_BUCKETS, registers });
    // read at scrape time from the runtime
    const self = this;
    new Gauge({
      name: 'mandate_tasks_live',
      help: 'Tasks that are not finished, by state (active, suspended).',
      labelNames: ['state'],
      registers,
      async collect() {
        const counts = (await self.sources?.liveTasks()) ?? {};
        for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
      },
    });
    new Gauge({ name: 'mandate_heap_limit_bytes', help: "The V8 heap's size limit (server.max_heap_mb and the young generation's), from v8.getHeapStatistics().", registers, collect() { this.set(getHeapStatistics().heap_size_limit); } });
    new Gauge({ name: 'mandate_gateway_sessions', help: 'Open MCP gateway sessions.', registers, collect() { this.set(self.sources?.gateway().sessions ?? 0); } });
    new Gauge({ name: 'mandate_gateway_upstream_connections', help: 'Connections to upstream MCP servers held by the gateway (pooled and spare).', registers, collect() { this.set(self.sources?.gateway().upstreamConnections ?? 0); } });
    new Gauge({
      name: 'mandate_store_up',
      help: '1 when the store answers a ping, else 0.',
      registers,
      async collect() {
        let up = false;
        try {
          up = (await self.sources?.storeUp()) ?? false;
        } catch {
          up = false;
        }
        this.set(up ? 1 : 0);
      },
    });
    new Gauge({ name: 'mandate_change_feed_connected', help: '1 when the change feed from the store is connected (always 1 on one node).', registers, collect() { this.set(self.sources?.changeFeedConnected() === false ? 0 : 1); } });
    new Gauge({
      name: 'mandate_approvals_pending',
      help: 'Approvals waiting for a human decision.',
      registers,
      async collect() {
        this.set((await self.sources?.approvalsPending()) ?? 0);
      },
    });
    new Gauge({ name: 'mandate_policies_loaded', help: 'Policies in the set in force.', registers, collect() { this.set(self.sources?.policies() ?? 0); } });
  }

  /** the runtime wires what scrapes read once it is composed */
  attach(sources: MetricsSources): void {
    this.sources = sources;
  }

  decided(d: Decision, seconds: number): void {
    this.decisions.inc({ effect: d.effect });
    this.decisionSeconds.observe({ effect: d.effect }, seconds);
    if (d.effect !== 'allow') for (const reason of d.reasons) this.reasons.inc({ reason });
  }

  /** records committed by an append or a decision commit */
  committed(operation: 'append' | 'decision', records: readonly AuditRecord[], seconds: number): void {
    this.auditCommitSeconds.observe({ operation }, seconds);
    for (const r of records) {
      this.auditRecords.inc({ kind: r.kind });
      if (r.kind === 'kill') this.kills.inc({ target: killTarget(r) });
      else if (r.kind === 'policy.reloaded') this.policyReloads.inc({ outcome: 'loaded' });
      else if (r.kind === 'policy.reload_refused') this.policyReloads.inc({ outcome: 'refused' });
    }
  }

  /** a commit that failed; a store error unless the records themselves were refused */
  commitFailed(operation: 'append' | 'decision', error: unknown): void {
    this.auditFailures.inc({ operation });
    if (!(error instanceof MandateError) || error.code === 'AUDIT_UNAVAILABLE' || error.code === 'STORE_UNAVAILABLE') this.storeErrors.inc({ kind: 'audit_commit' });
  }

  storeError(kind: StoreErrorKind): void {
    this.storeErrors.inc({ kind });
  }

  alertRaised(severity: string): void {
    this.alerts.inc({ severity: ALERT_SEVERITIES.has(severity) ? severity : 'other' });
  }

  /** `route` is the matched route's template (`/v1/tasks/:id`), never the URL */
  request(method: string, route: string, status: number, seconds: number): void {
    this.httpRequests.inc({ method, route, status: String(status) });
    this.httpSeconds.observe({ route }, seconds);
  }

  exposition(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

const ALERT_SEVERITIES: ReadonlySet<string> = new Set(SEVERITIES);

function killTarget(r: AuditRecord): string {
  const t = r.data['target'];
  if (t !== null && typeof t === 'object' && !Array.isArray(t)) {
    if ('all' in t) return 'all';
    if ('agent' in t) return 'agent';
    if ('task' in t) return 'task';
  }
  return 'other';
}

/** live tasks and pending approvals are counted at most this far, so a scrape stays cheap */
export const LIVE_COUNT_CAP = 10_000;

/** tasks not finished, by state, each counted up to LIVE_COUNT_CAP */
export async function countLiveTasks(tasks: TaskReader): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const state of ['active', 'suspended'] as const) out[state] = (await tasks.listTasks({ limit: LIVE_COUNT_CAP, state })).length;
  return out;
}
