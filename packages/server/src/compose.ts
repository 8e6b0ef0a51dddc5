/**
 * The composition root: the only place adapters are chosen and wired. Everything else receives
 * its collaborators explicitly; there are no module-level singletons.
 */
import { EndingTasks, TaskEnds } from './task-ends.ts';
import { existsSync, mkdirSync, writeFileSync, chmodSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import type {
  CachedTasks} from '@mandate/core';
import {
  ApprovalService,
  BehaviourMonitor,
  CONTAINMENT_OPERATOR,
  ContainmentLifter,
  KillSwitch,
  CachedAgents,
  CachedBudgets,
  CachedRevocations,
  CrossChecker,
  type DecisionEngine,
  describeError,
  DevIssuer,
  KeyRing,
  MandateError,
  ProvenanceLedger,
  type SharedLabelOptions,
  DpopNonces,
  DpopVerifier,
  MemoryReplayCache,
  Supervisor,
  ShadowEvaluator,
  TaskService,
  TaskTokens,
  WorkloadVerifier,
  type Clock,
  type Hasher,
  type IdGenerator,
  type JsonObject,
  type KeyStore,
  type OidcIssuer,
  type Store,
  type TrustBundle,
} from '@mandate/core';
import { openSqliteStore } from '@mandate/store-sqlite';
import { openPostgresStore, type Subscription } from '@mandate/store-postgres';
import type { JWK } from 'jose';
import { AUDIT_KEY_FILE, FileKeyStore, MirroredCheckpoints } from './audit-files.ts';
import { EncryptedKeyStore, loadKeks, protectSigningKeys } from './key-encryption.ts';
import { openAnchors, type AnchoredCheckpoints } from './anchors.ts';
import { CheckpointingAudit, type CheckpointerLog } from './checkpointer.ts';
import { WriteHealth } from './write-health.ts';
import { AuditIntegrity } from './audit-integrity.ts';
import { createTracing, type Tracing } from './tracing.ts';
import { readAnchorFile } from './anchor-file.ts';
import { LIVE_COUNT_CAP, MandateMetrics, countLiveTasks } from './metrics.ts';
import type { MandateConfig } from './config.ts';
import { loadOidcIssuer, loadTrustBundle } from './identity/bundles.ts';
import { randomIds, sha256Hasher, systemClock } from './node-ports.ts';
import { OperatorAuth } from './operators.ts';
import { PolicyHolder } from './policies.ts';
import { createAuthzen, type AuthzenRuntime } from './authzen/runtime.ts';
import { SignedWebhook, webhookNotifier } from './webhook.ts';
import { EventBus, PublishingDecisionEngine, publishingAudit } from './events.ts';
import { AlertHub } from './behaviour/alerts.ts';
import { sinkName } from './behaviour/config.ts';
import { AlertDelivery } from './behaviour/delivery.ts';
import { KillHooks } from './kill-hooks/hooks.ts';
import { alertView } from './http/views.ts';
import { HttpJudge } from './behaviour/judge.ts';
import { BehaviourSharing } from './behaviour/share.ts';
import { loadSecretsKey, McpGateway, type PinAlert } from '@mandate/gateway';

export interface RuntimeOptions {
  readonly clock?: Clock;
  readonly ids?: IdGenerator;
  readonly log?: CheckpointerLog & { debug?(obj: object, msg: string): void; info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
  /** an admin key to create when the store has no operator yet (else one is generated) */
  readonly bootstrapAdminKey?: string | undefined;
  /** write the generated bootstrap admin key to <data_dir>/admin.key (default true) */
  readonly writeAdminKeyFile?: boolean;
  /** the environment MANDATE_SECRETS_KEY is read from (default process.env) */
  readonly env?: Record<string, string | undefined>;
  /** the MCP gateway's pin-change alerts (the behaviour subsystem wires in here) */
  readonly onMcpAlert?: (alert: PinAlert) => void;
}

export interface MandateRuntime {
  readonly config: MandateConfig;
  readonly clock: Clock;
  readonly ids: IdGenerator;
  readonly hasher: Hasher;
  readonly store: Store;
  readonly agents: CachedAgents;
  readonly taskState: CachedTasks;
  /** what ends a task, told to what watches it (task-ends.ts) */
  readonly taskEnds: TaskEnds;
  readonly audit: CheckpointingAudit;
  /** signed checkpoints: the store's copy and the file outside it */
  readonly checkpoints: MirroredCheckpoints;
  /** the sinks every new checkpoint is anchored to (audit.anchors) */
  readonly anchors: AnchoredCheckpoints;
  /** audit.anchors.file, resolved, when configured */
  readonly anchorFile: string | undefined;
  readonly policies: PolicyHolder;
  /** what this start did about encryption of the private signing keys at rest (key-encryption.ts) */
  readonly keyEncryption: { readonly kek: string; readonly source: string; readonly generated: boolean; readonly encrypted: number; readonly reEncrypted: number };
  readonly taskKeys: KeyRing;
  readonly auditKeys: KeyRing;
  readonly tokens: TaskTokens;
  readonly workload: WorkloadVerifier;
  readonly devIssuer: DevIssuer | undefined;
  readonly engine: DecisionEngine;
  readonly tasks: TaskService;
  readonly approvals: ApprovalService;
  readonly kill: KillSwitch;
  /** webhooks told of every kill, from the store's outbox */
  readonly killHooks: KillHooks;
  readonly operators: OperatorAuth;
  /** live events for `GET /v1/events` (the dashboard): decisions, approvals, tasks, kills, alerts */
  readonly events: EventBus;
  /** AuthZEN 1.0: the generic PDP beside the agent engine (issue 12) */
  readonly authzen: AuthzenRuntime;
  /** behavioural detection and containment (issue 4); undefined when behaviour.enabled is false */
  readonly behaviour: BehaviourMonitor | undefined;
  /** several nodes with behaviour on: the exchange of per-agent counts and chain marks between nodes */
  readonly behaviourSharing: BehaviourSharing | undefined;
  /** alerts: stored, listed, acknowledged, delivered to webhooks and the live stream */
  readonly alerts: AlertHub;
  /** an operator's audited lift of a task's behavioural restrictions */
  readonly containment: ContainmentLifter;
  /** proof of possession: verifies DPoP proofs at every HTTP edge (issue 13) */
  readonly dpop: DpopVerifier;
  /** heartbeats, the renewal check, the lapse sweeper and re-evaluation of live tasks (issue 13) */
  readonly supervisor: Supervisor;
  /** the MCP gateway at /mcp (issue 3): sessions, tool pins, the secret vault */
  readonly mcp: McpGateway;
  /** shadow mode (policies.shadow_dir): the candidate set and what it would have decided differently */
  readonly shadow: ShadowEvaluator | undefined;
  readonly shadowPolicies: PolicyHolder | undefined;
  /** whether this node can commit (readiness) */
  readonly writeHealth: WriteHealth;
  /** whether the audit log still holds what its newest signed checkpoint covers (readiness) */
  readonly auditIntegrity: AuditIntegrity;
  /** OpenTelemetry spans (tracing.enabled), through @opentelemetry/api */
  readonly tracing: Tracing;
  /**
   * Prometheus metrics of this runtime, served at /metrics (metrics.ts); present only when
   * metrics.enabled: with metrics off nothing is counted, timed or sampled on any path.
   */
  readonly metrics: MandateMetrics | undefined;
  /** whether this node's cached state is current (always, on one node; with several, its change feed is connected and, with behaviour on, its last exchange of behaviour counts is recent) */
  fresh(): boolean;
  /** whether the change feed is connected (always true on one node) */
  changeFeedConnected(): boolean;
  /** the bootstrap admin key, only when this start created it */
  readonly bootstrapAdminKey: string | undefined;
  close(): Promise<void>;
}

/**
 * The MCP gateway as an OAuth 2.1 protected resource (RFC 9728): its identifier and where its
 * metadata is, from `server.public_url` (else the configured host and port): never from a
 * request's Host header, which a client controls.
 */
export function mcpResource(config: MandateConfig): { base: string; resource: string; metadata: string } {
  const base = (config.server.public_url ?? `http://${config.server.host.includes(':') ? `[${config.server.host}]` : config.server.host}:${config.server.port}`).replace(/\/$/, '');
  return { base, resource: `${base}/mcp`, metadata: `${base}/.well-known/oauth-protected-resource/mcp` };
}

const silentLog: NonNullable<RuntimeOptions['log']> = { info: () => undefined, warn: () => undefined, error: () => undefined };

export function isPostgres(config: MandateConfig): boolean {
  return config.store.startsWith('postgres://') || config.store.startsWith('postgresql://');
}

/** the shared-resource label settings (provenance/labels.ts) */
function sharedLabelOptions(config: MandateConfig): SharedLabelOptions {
  const l = config.shared_labels;
  return {
    ttlMs: l.ttl,
    limits: { maxLabels: l.max_labels_per_entry, maxTasks: l.max_tasks_per_label, maxEntries: l.max_entries },
    maxRead: l.max_labels_per_read,
    maxTextLength: l.max_text_length,
  };
}

/** the SQLite database file of a sqlite store */
export function storePath(config: MandateConfig): string {
  if (config.store === 'sqlite') return join(config.data_dir, 'mandate.db');
  return config.store.slice('sqlite:'.length);
}

/** readiness: a commit this recent says the store can write; otherwise it is probed, at most once a second */
const WRITE_FRESH_MS = 5_000;
const WRITE_PROBE_GAP_MS = 1_000;
/** unanchored records the readiness check walks at most (checkpoint_every bounds the tail: 1000 by default) */
const AUDIT_INTEGRITY_MAX_TAIL = 100_000;

/** how often the SQLite store's WAL is checkpointed in the background (store-sqlite, checkpoint-worker.ts) */
const WAL_CHECKPOINT_MS = 250;

async function devIssuerFrom(keys: KeyStore, trustDomain: string, clock: Clock, ids: IdGenerator): Promise<DevIssuer> {
  const existing = (await keys.listKeys('dev-issuer')).find((k) => k.status === 'active');
  if (existing) return DevIssuer.fromJwk(trustDomain, existing.privateJwk as JWK, existing.kid, clock, ids);
  const issuer = await DevIssuer.create(trustDomain, clock, ids);
  const pub = issuer.publicJwks().keys[0] as JsonObject;
  await keys.addKey({
    kid: issuer.kid,
    purpose: 'dev-issuer',
    alg: 'ES256',
    publicJwk: pub,
    privateJwk: issuer.privateJwk() as JsonObject,
    status: 'active',
    createdAt: clock.now(),
    retiredAt: undefined,
  });
  return issuer;
}

/** policy folder(s) from the config, resolved against the working directory */
function resolveDirs(dir: string | readonly string[] | undefined): string | string[] | undefined {
  if (dir === undefined) return undefined;
  return typeof dir === 'string' ? resolve(dir) : dir.map((d) => resolve(d));
}

/**
 * Runs a sampled policy cross-check (0.3-1 ms of cedar-wasm) one turn of the loop later than
 * `setImmediate` would. The decision it re-checks hands its audit commit to the store with a
 * `setImmediate` queued after the sample; a check in the same turn ran first, so that call waited
 * for its own check before its commit even started (1 % of calls: the p99 of one call at a time).
 * A turn later, the check runs while the commit is on the disk.
 */
export function deferPastCommit(run: () => void): void {
  setImmediate(() => setImmediate(run));
}

export async function createRuntime(config: MandateConfig, opts: RuntimeOptions = {}): Promise<MandateRuntime> {
  const clock = opts.clock ?? systemClock;
  const ids = opts.ids ?? randomIds;
  const hasher = sha256Hasher;
  const log = opts.log ?? silentLog;
  const metrics = config.metrics.enabled ? new MandateMetrics() : undefined;

  mkdirSync(config.data_dir, { recursive: true, mode: 0o700 });
  const pg = isPostgres(config)
    ? await openPostgresStore({
        url: config.store,
        hasher,
        schema: config.postgres.schema,
        poolSize: config.postgres.pool_size,
        statementTimeoutMs: config.postgres.statement_timeout,
        // once per outage and once on recovery, however many statements fail in between
        onAvailability: (e) => {
          // the cause only: a driver error can carry its client, connection settings and all
          if (e.kind === 'unavailable') {
            metrics?.storeError('outage');
            log.warn({ event: 'store.unavailable', cause: e.cause }, 'PostgreSQL is unavailable; calls are denied (STORE_UNAVAILABLE) until it answers again');
          } else log.info({ event: 'store.recovered', downMs: e.downMs, failedStatements: e.failures }, 'PostgreSQL answers again');
        },
      })
    : undefined;
  // the WAL is checkpointed on a thread of its own, not inside the commit that fills it, and the
  // audit's group commits (transaction and sync) run on another, off the event loop
  const sqlite = pg ? undefined : openSqliteStore({ path: storePath(config), hasher, durability: config.audit.durability, backgroundCheckpointMs: WAL_CHECKPOINT_MS, commitThread: config.audit.commit_thread });
  const store: Store = pg ?? (sqlite as Store);
  // several nodes: cached state expires after max_staleness even if an invalidation is lost
  const staleness = pg ? { clock, maxAgeMs: config.postgres.max_staleness } : undefined;
  let feed: Subscription | undefined;
  let checkpointer: CheckpointingAudit | undefined;
  let deliveries: AlertDelivery[] = [];
  let killHooks: KillHooks | undefined;
  try {
    const policies = new PolicyHolder(resolveDirs(config.policies.dir), hasher, {
      engine: config.policies.engine,
      crossCheck:
        config.policies.engine === 'compiled' && config.policies.cross_check_fraction > 0
          ? new CrossChecker({
              fraction: config.policies.cross_check_fraction,
              random: Math.random,
              ...(config.policies.cross_check_max_per_second > 0 ? { maxPerSecond: config.policies.cross_check_max_per_second, now: () => clock.now() } : {}),
              defer: deferPastCommit,
              onDivergence: (d) => log.error({ divergence: d }, 'compiled policy evaluation diverged from cedar-wasm; the compiled answer was used'),
            })
          : undefined,
    });
    // private signing keys are encrypted at rest (key-encryption.ts): plaintext ones left by an
    // older version, and ones under a previous KEK, are re-encrypted before any is used
    const auditKeyFile = new FileKeyStore(config.audit.key_file ?? join(config.data_dir, AUDIT_KEY_FILE));
    const keks = await loadKeks(config.keys, opts.env ?? process.env, config.data_dir, [store.keys, auditKeyFile], log);
    const keyEncryption = { kek: keks.current.id, source: keks.current.source, generated: keks.generated, encrypted: 0, reEncrypted: 0 };
    for (const [where, keyStore] of [['store', store.keys], ['audit key file', auditKeyFile]] as const) {
      const { encrypted, reEncrypted } = await protectSigningKeys(keyStore, keks);
      keyEncryption.encrypted += encrypted;
      keyEncryption.reEncrypted += reEncrypted;
      if (encrypted > 0) log.warn({ where, keys: encrypted, kek: keks.current.id }, 'encrypted private signing keys that were stored in plain text; rotate them (POST /v1/keys/rotate), since copies made before may hold them');
      if (reEncrypted > 0) log.info({ where, keys: reEncrypted, kek: keks.current.id }, 're-encrypted private signing keys under the current key encryption key');
    }
    const signingKeys = new EncryptedKeyStore(store.keys, keks);
    // Retired keys stay published until every token or checkpoint they signed can be checked.
    const taskKeys = await KeyRing.open(signingKeys, 'task-token', clock, ids, config.tokens.max_task_lifetime + config.tokens.ttl);
    // kept out of the database the log lives in (see audit-files.ts)
    const auditKeys = await KeyRing.open(new EncryptedKeyStore(auditKeyFile, keks), 'audit-checkpoint', clock, ids, Number.MAX_SAFE_INTEGER);
    const tokens = new TaskTokens(taskKeys, { issuer: config.tokens.issuer, audience: config.tokens.audience, clock, ids, hasher, cacheSize: config.tokens.verified_cache_size });

    const bundles: TrustBundle[] = [];
    for (const entry of config.identity.trust_bundles) bundles.push(await loadTrustBundle(toBundleEntry(entry)));
    const oidc: OidcIssuer[] = [];
    for (const entry of config.identity.oidc_issuers) oidc.push(await loadOidcIssuer(toOidcEntry(entry)));
    let devIssuer: DevIssuer | undefined;
    if (config.identity.dev_issuer.enabled) {
      devIssuer = await devIssuerFrom(signingKeys, config.identity.dev_issuer.trust_domain, clock, ids);
      if (bundles.some((b) => b.trustDomain === devIssuer?.trustDomain)) {
        throw new MandateError('CONFIG_INVALID', `trust domain ${devIssuer.trustDomain} is configured twice (dev issuer and a trust bundle)`);
      }
      bundles.push(devIssuer.bundle());
      log.warn({ trustDomain: devIssuer.trustDomain }, 'the development workload issuer is enabled: never do this in production');
    }
    const workload = new WorkloadVerifier({
      audience: config.identity.audience,
      maxLifetimeMs: config.identity.max_token_lifetime,
      clockSkewMs: config.identity.clock_skew,
      bundles,
      oidcIssuers: oidc,
      clock,
    });

    // one node owns the store: revocations and budget usage are read from memory too (several
    // nodes read them from the store on every call: no change feed carries them)
    const revocations = pg ? store.revocations : new CachedRevocations(store.revocations, config.cache.revocations);
    const budgets = pg ? undefined : new CachedBudgets(store.budgets, config.cache.budgets);
    const agents = new CachedAgents(store.agents, config.cache.agents, staleness);
    // what ends a task reaches what runs for it (MCP calls in flight, task event streams) at once
    const taskEnds = new TaskEnds((id) => store.tasks.getTask(id), (e) => log.warn({ err: describeError(e) }, 'task end delivery failed'), config.cache.task_ends);
    const taskState = new EndingTasks(store.tasks, taskEnds, config.cache.tasks, staleness);
    const checkpoints = new MirroredCheckpoints(store.checkpoints, config.data_dir);
    // copies of each checkpoint out of reach of whoever can write the data folder (anchors.ts)
    const { anchors, anchorFile } = await openAnchors(checkpoints, config.audit.anchors, config.data_dir, () => clock.now() / 1000, log);
    const events = new EventBus();
    // readiness follows the audit commits, and probes the store when none is recent
    const writeHealth = new WriteHealth(() => store.probeWrite(), { freshMs: WRITE_FRESH_MS, minProbeGapMs: WRITE_PROBE_GAP_MS, now: () => performance.now() }, log);
    const audit = new CheckpointingAudit(publishingAudit(store.audit, events, metrics), anchors, auditKeys, clock, config.audit.checkpoint_every, config.audit.checkpoint_interval, log, writeHealth);
    checkpointer = audit;
    // the log against its newest signed checkpoint, at start and every integrity_check_interval
    const auditIntegrity = new AuditIntegrity(
      {
        reader: store.audit,
        checkpoints: async () => [...(await checkpoints.listCheckpoints()), ...(anchorFile !== undefined && existsSync(anchorFile) ? readAnchorFile(anchorFile) : [])],
        publicKeys: () => auditKeys.publicKeys(),
        hasher,
        intervalMs: config.audit.integrity_check_interval,
        maxTail: AUDIT_INTEGRITY_MAX_TAIL,
      },
      log,
    );
    const current = () => policies.current;
    // shadow mode: the candidate folder is judged beside the active one and never enforced
    const shadowPolicies = config.policies.shadow_dir === undefined ? undefined : new PolicyHolder(resolveDirs(config.policies.shadow_dir), hasher);
    const shadow = shadowPolicies === undefined ? undefined : new ShadowEvaluator({ candidate: () => shadowPolicies.current, clock });
    // the emergency stop is read on every call; the kill switch is created below, once tasks exist
    let killSwitch: KillSwitch | undefined;
    const emergency = { stopped: () => killSwitch?.stopped() ?? false };
    const approvals = new ApprovalService({
      clock,
      ids,
      store: store.approvals,
      tasks: taskState,
      agents,
      audit,
      limits: {
        ttlMs: config.approvals.ttl,
        maxPendingPerTask: config.approvals.max_pending_per_task,
        forbidOwnerApproval: config.approvals.forbid_owner_approval,
      },
      notify: config.approvals.webhook_url === undefined ? undefined : webhookNotifier(config.approvals.webhook_url, log),
    });
    // --- behaviour (issue 4): detectors, containment that only restricts, alerts
    const b = config.behaviour;
    // each webhook is owed every stored alert: a cursor and a lease per webhook, in the store
    const node = ids.next('node');
    deliveries = b.alerts.webhooks.map(
      (w) =>
        new AlertDelivery(
          { sink: sinkName(w), url: w.url, secret: w.secret, maxAttempts: w.max_attempts, backoffMs: w.backoff_ms, maxBackoffMs: w.max_backoff_ms, timeoutMs: w.timeout_ms, retentionMs: w.retention_ms, pollMs: w.poll_ms },
          { store: store.alertSinks, clock, owner: node, log, view: alertView },
        ),
    );
    for (const d of deliveries) await d.start();
    const alerts = new AlertHub({
      store: store.alerts,
      audit,
      clock,
      webhooks: b.alerts.webhooks.map(
        (w) => new SignedWebhook({ url: w.url, secret: w.secret, maxAttempts: w.max_attempts, backoffMs: w.backoff_ms, maxBackoffMs: w.max_backoff_ms, timeoutMs: w.timeout_ms, queueSize: w.queue_size, now: () => clock.now() / 1000 }, log),
      ),
      deliveries,
      sinks: store.alertSinks,
      storeQueue: b.alerts.store_queue,
      maxSubscribers: b.alerts.stream_max_subscribers,
      subscriberQueue: b.alerts.stream_queue,
      log,
      onPublish: (event, view) => {
        if (event === 'alert') metrics?.alertRaised(view.severity);
        events.publish('alert', JSON.parse(JSON.stringify({ ...view, event })) as JsonObject);
      },
    });
    const containmentActor = { kind: 'operator', operatorId: CONTAINMENT_OPERATOR } as const;
    const behaviour = b.enabled
      ? new BehaviourMonitor({
          clock,
          ids,
          config: b,
          store: store.containment,
          alerts,
          // the control paths are created below; containment reaches them only after start-up
          enforcer: {
            suspend: async (taskId, reason) => {
              await tasks.suspend(taskId, reason, containmentActor);
              log.warn({ event: 'task.suspended', taskId, reason, by: CONTAINMENT_OPERATOR }, 'behavioural containment suspended a task');
            },
            kill: async (agentId, reason) => {
              const r = await kill.kill({ agent: agentId }, containmentActor, reason);
              log.warn({ event: 'kill', target: { agent: agentId }, agentId, reason, by: CONTAINMENT_OPERATOR, killed: r.killedTasks.length, taskIds: r.killedTasks.slice(0, 100) }, 'behavioural containment killed an agent');
            },
          },
          judge: b.judge.url === undefined ? undefined : new HttpJudge(b.judge.url, b.judge.timeout_ms, b.judge.token),
          log,
          // several nodes: agent scopes count calls in buckets that BehaviourSharing exchanges
          share: pg ? { bucketMs: b.share.bucket_ms } : undefined,
        })
      : undefined;
    let sharing: BehaviourSharing | undefined;
    // --- end behaviour
    const tracing = createTracing(config.tracing.enabled);
    const engine = new PublishingDecisionEngine({
      clock,
      ids,
      hasher,
      tokens,
      agents,
      tasks: taskState,
      revocations,
      budgets: budgets ?? store.budgets,
      audit: budgets ? budgets.committing(audit) : audit,
      policies: current,
      environment: config.environment,
      approvals,
      emergency,
      // several nodes: no decision on state this node cannot confirm is current
      freshness: pg ? { fresh: () => feed?.connected === true && (sharing?.fresh() ?? true) } : undefined,
      provenance: new ProvenanceLedger({ minLength: config.limits.provenance_min_length, maxTasks: config.limits.provenance_tasks, maxTextPerTask: config.limits.provenance_chars_per_task, maxText: config.limits.provenance_chars }),
      labels: { store: store.labels, options: sharedLabelOptions(config) },
      behaviour,
      shadow,
      limits: {
        args: {
          maxDepth: config.limits.args_max_depth,
          maxEntries: config.limits.args_max_entries,
          maxStringLength: config.limits.args_max_string,
          maxNodes: config.limits.args_max_nodes,
        },
        pendingOutcomes: config.limits.pending_outcomes,
      },
    }, events, metrics, tracing);
    // --- proof of possession and supervision (issue 13)
    const dpop = new DpopVerifier({
      hasher,
      replay: new MemoryReplayCache(config.tokens.dpop.replay_cache_size),
      iatWindowMs: config.tokens.dpop.iat_window,
      nonces: config.tokens.dpop.nonce ? new DpopNonces(await nonceSecret(store, clock), config.tokens.dpop.nonce_period, hasher) : undefined,
    });
    const sup = config.tasks.supervision;
    const supervisor = new Supervisor({
      clock,
      tasks: taskState,
      store: store.supervision,
      audit,
      agents,
      policies: current,
      environment: () => config.environment,
      settings: { enabled: sup.enabled, heartbeatIntervalMs: sup.heartbeat_interval, missedBeforeSuspend: sup.missed_heartbeats_before_suspend, stateWindowMs: sup.state_window },
      approvals: { cancelForTasks: (ids, reason) => approvals.cancelForTasks(ids, reason) },
    });
    // --- end proof of possession and supervision
    const tasks = new TaskService({
      clock,
      ids,
      hasher,
      tokens,
      workload,
      agents,
      tasks: taskState,
      revocations,
      audit,
      policies: current,
      environment: config.environment,
      limits: {
        defaultTtlMs: config.tokens.default_task_ttl,
        maxTtlMs: config.tokens.max_task_ttl,
        maxLifetimeMs: config.tokens.max_task_lifetime,
        tokenTtlMs: config.tokens.ttl,
        renewGraceMs: sup.grace,
      },
      approvals,
      emergency,
      budgets: budgets ?? store.budgets,
      requirePop: config.tokens.require_pop_environments.includes(config.environment),
      supervisor,
    });
    // every kill is written to the store's outbox; each kill hook delivers it from there
    killHooks = new KillHooks(config.kill_hooks, { store, clock, ids, owner: node, log, env: opts.env ?? process.env });
    await killHooks.start();
    const kill = await KillSwitch.open({ clock, controls: store.controls, agents, tasks, audit, outbox: killHooks });
    const containment = new ContainmentLifter({
      clock,
      store: store.containment,
      tasks: taskState,
      audit: { append: (drafts) => audit.append(drafts), readByTask: (taskId, limit) => store.audit.readByTask(taskId, limit) },
      invalidate: (taskId) => behaviour?.invalidate(taskId),
      reevaluate: (agentId) => supervisor.reevaluate('containment lifted', { agentId }),
    });
    killSwitch = kill;
    if (pg) {
      // what other nodes change reaches this node's caches through the store's change feed
      const reloadKill = () => kill.reload().catch((e: unknown) => log.error({ err: e }, 'emergency stop reload failed'));
      let feedLost = false;
      feed = await pg.subscribe(
        (c) => {
          if (c.kind === 'task') {
            taskState.invalidateTask(c.key);
            taskEnds.changed(c.key);
          }
          else if (c.kind === 'agent') agents.invalidateAgent(c.key);
          else if (c.kind === 'control') void reloadKill();
          else if (c.kind === 'containment') behaviour?.invalidate(c.key);
          else if (c.kind === 'kill') killHooks?.wake();
        },
        {
          onLost: (e) => {
            feedLost = true;
            metrics?.storeError('change_feed');
            log.warn({ event: 'change_feed.lost', cause: describeError(e) }, 'change feed lost its connection; this node denies every call (STORE_UNAVAILABLE) until it is back');
          },
          // while it is lost, each failed attempt to come back says the same: one line per outage
          onError: (e) => {
            if (!feedLost) log.warn({ cause: describeError(e) }, 'change feed error');
          },
          onReconnect: (o) => {
            feedLost = false;
            log.info({ event: 'change_feed.recovered', downMs: o.downMs, failedAttempts: o.failedAttempts }, 'change feed listening again; re-read every change made while it was away');
            taskEnds.recheckAll();
            killHooks?.wake();
          },
          onGap: () => {
            taskState.clear();
            agents.clear();
            taskEnds.recheckAll();
            behaviour?.clearCache();
            void reloadKill();
            killHooks?.wake();
          },
        },
      );
      if (behaviour) {
        // an agent's calls spread over nodes are judged together (docs/behaviour.md, several nodes)
        sharing = new BehaviourSharing({
          node: ids.next('node'),
          monitor: behaviour,
          store: pg.behaviourShare,
          clock,
          intervalMs: b.share.interval_ms,
          maxLagMs: b.share.max_lag_ms,
          maxScopes: b.share.max_scopes,
          log,
        });
        await sharing.start();
      }
    }
    const operators = new OperatorAuth(store.operators, hasher, ids);
    // --- AuthZEN (issue 12): generic PDP and enforcement-point auth; agent subjects use `engine`
    const authzen = createAuthzen(config.authzen, {
      dataDir: config.data_dir,
      clock,
      ids,
      hasher,
      audit,
      engine,
      tokens,
      operators,
      proofs: (p) => dpop.verifyProof({ ...p, now: clock.now() }),
    });
    // --- end AuthZEN
    // --- MCP gateway (issue 3): pins and encrypted secrets live in the store's controls
    const mcp = new McpGateway({
      config: config.mcp,
      engine,
      tokens,
      tasks: taskState,
      audit,
      controls: store.controls,
      secretsKey: loadSecretsKey(config.mcp.secrets_key_file, opts.env ?? process.env),
      clock,
      ids,
      hasher,
      log: { ...(log.debug !== undefined ? { debug: log.debug.bind(log) } : {}), info: log.info.bind(log), warn: log.warn.bind(log), error: log.error.bind(log) },
      onAlert: opts.onMcpAlert,
      resourceMetadataUrl: mcpResource(config).metadata,
      resource: { id: mcpResource(config).resource, audience: config.tokens.audience },
      taskEnds,
    });
    // --- end MCP gateway
    let bootstrapAdminKey: string | undefined;
    if ((await store.operators.listOperatorKeys()).length === 0) {
      const { secret } = await operators.create('bootstrap-admin', 'admin', clock.now(), opts.bootstrapAdminKey);
      bootstrapAdminKey = secret;
      if (opts.writeAdminKeyFile !== false) {
        const file = join(config.data_dir, 'admin.key');
        writeFileSync(file, secret + '\n', { mode: 0o600 });
        chmodSync(file, 0o600);
        log.info({ file }, 'created the bootstrap admin API key');
      }
    }

    // what admitted the live tasks may have changed while this node was down (environment, policies)
    const misfits = await supervisor.reevaluate('startup');
    if (misfits.length > 0) log.warn({ event: 'task.suspended', reason: 'MANDATE_NO_LONGER_FITS', tasks: misfits.length, taskIds: misfits.slice(0, 100) }, 'suspended live tasks whose mandate no longer fits (policies or environment changed while this node was down)');
    const supervisionSweep = setInterval(() => {
      supervisor.suspendLapsed().catch((e: unknown) => log.error({ err: e }, 'supervision sweep failed'));
    }, sup.sweep_interval);
    supervisionSweep.unref();

    const sweep = setInterval(() => {
      tasks.expireDue().catch((e: unknown) => log.error({ err: e }, 'task expiry sweep failed'));
      approvals.expireDue().catch((e: unknown) => log.error({ err: e }, 'approval expiry sweep failed'));
      // the change feed keeps a day: a node away longer drops its caches (onGap) on return
      pg?.pruneChanges(86_400_000).catch((e: unknown) => log.error({ err: e }, 'change feed pruning failed'));
    }, config.tokens.expiry_sweep_interval);
    sweep.unref();

    // the commit thread started beside the rest: ready only once it can commit at once
    await sqlite?.started();
    // a tail left by a run that crashed is covered now, not at the first append
    audit.trigger();
    metrics?.attach({
      liveTasks: () => countLiveTasks(store.tasks),
      gateway: () => ({ sessions: mcp.sessionCount, upstreamConnections: mcp.pooledConnections }),
      storeUp: () => store.ping(),
      changeFeedConnected: () => !pg || feed?.connected === true,
      approvalsPending: async () => (await store.approvals.listApprovals({ limit: LIVE_COUNT_CAP, state: 'pending' })).length,
      policies: () => policies.current.policies.length,
    });
    let closed = false;
    auditIntegrity.start();
    return {
      config,
      clock,
      ids,
      hasher,
      store,
      agents,
      taskState,
      taskEnds,
      audit,
      checkpoints,
      anchors,
      anchorFile,
      writeHealth,
      auditIntegrity,
      tracing,
      metrics,
      policies,
      keyEncryption,
      taskKeys,
      auditKeys,
      tokens,
      workload,
      devIssuer,
      engine,
      tasks,
      approvals,
      kill,
      killHooks,
      operators,
      events,
      authzen,
      behaviour,
      alerts,
      containment,
      dpop,
      supervisor,
      mcp,
      shadow,
      shadowPolicies,
      bootstrapAdminKey,
      behaviourSharing: sharing,
      fresh: () => !pg || (feed?.connected === true && (sharing?.fresh() ?? true)),
      changeFeedConnected: () => !pg || feed?.connected === true,
      async close() {
        if (closed) return;
        closed = true;
        clearInterval(sweep);
        auditIntegrity.stop();
        events.close();
        await alerts.close();
        await killHooks?.close();
        clearInterval(supervisionSweep);
        try {
          await mcp.close();
          await sharing?.close();
          await feed?.close();
          await audit.close();
          await anchors.close();
        } finally {
          await store.close();
        }
      },
    };
  } catch (e) {
    checkpointer?.stop();
    await Promise.all(deliveries.map((d) => d.close()));
    await killHooks?.close();
    await store.close();
    throw e;
  }
}

/** the secret DPoP nonces derive from, shared by every node through the store */
async function nonceSecret(store: Store, clock: Clock): Promise<string> {
  const key = 'dpop.nonce_secret';
  const existing = (await store.controls.getControl(key))?.['secret'];
  if (typeof existing === 'string') return existing;
  const secret = randomBytes(32).toString('base64url');
  await store.controls.setControl(key, { secret }, clock.now());
  // two nodes racing here: the last write wins and both read it back
  const stored = (await store.controls.getControl(key))?.['secret'];
  return typeof stored === 'string' ? stored : secret;
}

type BundleConfig = MandateConfig['identity']['trust_bundles'][number];
type OidcConfig = MandateConfig['identity']['oidc_issuers'][number];

function toBundleEntry(e: BundleConfig): Parameters<typeof loadTrustBundle>[0] {
  if ('jwks_url' in e) return { trust_domain: e.trust_domain, jwks_url: e.jwks_url, refresh_interval_ms: e.refresh_interval };
  return e;
}

function toOidcEntry(e: OidcConfig): Parameters<typeof loadOidcIssuer>[0] {
  return e as Parameters<typeof loadOidcIssuer>[0];
}
