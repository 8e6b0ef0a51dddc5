import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { z } from 'zod';
import { parse as parseYaml } from 'yaml';
import { MandateError, durationSchema, zodIssues } from '@mandate/core';
import { authzenConfigSchema } from './authzen/config.ts';
import { behaviourConfigSchema } from './behaviour/config.ts';
import { killHooksSchema } from './kill-hooks/config.ts';
import { anchorsConfigSchema } from './anchor-file.ts';
import { mcpConfigSchema } from '@mandate/gateway/config';
import { metricsConfigSchema } from './metrics-config.ts';
import { MIN_MAX_HEAP_MB, heapBudget } from './heap-budget.ts';

const duration = (dflt: string) => durationSchema.prefault(dflt);
/** one policy folder, or several loaded as one set (their *.cedar files and tools.yaml entries together) */
const policyDirs = z
  .union([z.string().min(1), z.array(z.string().min(1)).min(1).max(16)])
  .describe('a policy folder, or a list of folders loaded as one set (e.g. policies/agent-baseline and a folder of your tool facts)');

/** `10.1.2.3`, `fd00::1`, `10.0.0.0/8`, `fd00::/8` */
export function isAddressOrRange(text: string): boolean {
  const [address = '', prefix, extra] = text.split('/');
  const family = isIP(address);
  if (family === 0 || extra !== undefined) return false;
  if (prefix === undefined) return true;
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
}

const trustBundleSchema = z.union([
  z.strictObject({ trust_domain: z.string().min(1).describe('the SPIFFE trust domain (example.org) whose workload tokens these keys verify'), jwks_file: z.string().min(1).describe('a JWKS file with the trust domain\'s public keys') }).describe('a trust domain whose JWT-SVID keys are a JWKS file'),
  z.strictObject({ trust_domain: z.string().min(1).describe('the SPIFFE trust domain whose workload tokens these keys verify'), spiffe_bundle_file: z.string().min(1).describe('a SPIFFE trust bundle (JWKS with spiffe_refresh_hint), as SPIRE writes it') }).describe('a trust domain whose keys are a SPIFFE bundle file'),
  z.strictObject({ trust_domain: z.string().min(1).describe('the SPIFFE trust domain whose workload tokens these keys verify'), jwks_url: z.url().describe('where the trust domain\'s JWKS is fetched (https)'), refresh_interval: duration('5m').describe('how often it is fetched again') }).describe('a trust domain whose keys are fetched from a URL'),
]);

const oidcIssuerSchema = z.strictObject({
  issuer: z.string().min(1).describe('the issuer (iss) of the OIDC tokens accepted as workload identity'),
  audience: z.string().min(1).describe('the audience (aud) those tokens must carry'),
  trust_domain: z.string().min(1).describe('the SPIFFE trust domain the token\'s subject is mapped into (spiffe://<trust_domain>/<subject>)'),
  jwks_url: z.url().optional().describe('where the issuer\'s JWKS is fetched'),
  jwks_file: z.string().min(1).optional().describe('the issuer\'s JWKS, from a file (instead of jwks_url)'),
  subject_claim: z.string().min(1).default('sub').describe('the claim that names the workload'),
});

/**
 * Mandate's configuration. Every section has defaults; unknown keys are rejected so a typo
 * never silently falls back to a default. docs/config.schema.json is generated from this.
 */
export const configSchema = z.strictObject({
  environment: z.string().regex(/^[A-Za-z0-9._-]{1,100}$/).default('dev').describe('the environment this deployment guards; mandates must name it'),
  data_dir: z.string().min(1).default('./.mandate').describe('where the embedded store, keys and the bootstrap admin key live'),
  /** `sqlite` (the embedded default, in data_dir), `sqlite:<path>`, or `postgres://…` for several nodes */
  store: z
    .string()
    .regex(/^(sqlite(:.+)?|postgres(ql)?:\/\/.+)$/, 'sqlite, sqlite:<path> or postgres://…').describe('where the state lives: sqlite (the embedded store in data_dir), sqlite:<path>, or postgres://… for several nodes; also --store, MANDATE_STORE')
    .default('sqlite'),
  /** settings of the PostgreSQL store (used when `store` is a postgres:// URL) */
  postgres: z
    .strictObject({
      schema: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/).default('mandate').describe('the PostgreSQL schema Mandate\'s tables live in; every node of one cluster uses the same'),
      pool_size: z.number().int().min(1).max(200).default(10).describe('connections each node keeps to PostgreSQL'),
      statement_timeout: duration('5s').describe('a statement that runs longer is cancelled (and the call it served denied)'),
      max_staleness: duration('5s').describe('the longest a node serves cached state without hearing from the change feed'),
    })
    .prefault({}).describe('settings of the PostgreSQL store (used when store is a postgres:// URL)'),
  server: z
    .strictObject({
      host: z.string().default('127.0.0.1').describe('the address to listen on (0.0.0.0: every interface)'),
      port: z.number().int().min(0).max(65535).default(8787).describe('the port to listen on (0: any free port)'),
      young_generation_growth: z
        .boolean()
        .default(false)
        .describe("let V8's young generation grow (up to ~96 MiB resident) under load; off, `mandate serve` caps its semi-space at 8 MiB from the start, which saved ~50 MiB RSS at rest and more under load at no measured cost in CPU per decision (docs/operations.md, memory)"),
      parallel_scavenge: z
        .boolean()
        .default(false)
        .describe("collect V8's young generation with helper threads; off, `mandate serve` collects it on the thread that allocated it. A decision leaves few live young objects (~30 KiB at a collection), and waking helpers cost more than they saved: measured pauses 0.86 → 0.43 ms on the event loop and 0.38 → 0.10 ms on the commit thread with the server on one core, 0.57 → 0.46 ms on two (docs/operations.md, memory)"),
      max_heap_mb: z
        .union([z.literal('auto'), z.number().int().min(MIN_MAX_HEAP_MB).max(65_536)])
        .default('auto')
        .describe(
          "the V8 heap's old-generation limit of `mandate serve`, MiB (its --max-old-space-size; wins over NODE_OPTIONS). auto: a base for the process and its garbage plus what the bounded in-memory structures this config enables may hold (heap-budget.ts; 309 at the defaults). A number (96 to 65536) below that is refused at start. A heap that still fills ends the process with an out-of-memory error, which a supervisor restarts; nothing durable is lost (docs/operations.md, memory)",
        ),
      body_limit_bytes: z.number().int().min(1024).max(16 * 1024 * 1024).default(1024 * 1024).describe('largest accepted request body'),
      max_json_depth: z.number().int().min(2).max(128).default(32).describe('deepest JSON nesting accepted in any body'),
      public_url: z
        .url()
        .regex(/^https?:\/\/[^/?#]+\/?$/, 'scheme://host[:port] only')
        .optional()
        .describe(
          'the address agents use to reach this server (https://mandate.example.com), without a path: DPoP proofs are checked against it (htu) and AuthZEN metadata names it. Unset: DPoP proofs are refused and the metadata is not published, except in development (the dev issuer on), where the request\'s Host header stands in',
        ),
      headers_timeout: duration('10s').describe("a connection must deliver a request's line and headers within this, from its opening or the request's first byte; else 408 and closed"),
      request_timeout: duration('30s').describe("a request's headers and body must arrive within this; a slower client gets 408 and is disconnected"),
      idle_timeout: duration('72s').describe("a kept-alive connection with no request in progress is closed after this (longer than a load balancer's usual 60 s, so the balancer closes first)"),
      max_connections_per_ip: z
        .number()
        .int()
        .min(1)
        .max(1_000_000)
        .default(256)
        .describe(
          "open connections one client address may hold; more are closed as they open. The client is the socket's peer; when that peer is a trusted proxy, the X-Forwarded-For client, whose requests in progress are bounded instead (answered 429 RATE_LIMITED past it)",
        ),
      trusted_proxies: z
        .array(z.string().refine(isAddressOrRange, 'an IP address or a CIDR range (10.0.0.0/8, fd00::/8)'))
        .max(100)
        .default([])
        .describe("proxies (IP addresses or CIDR ranges) whose X-Forwarded-For header is believed; empty: none, the socket's peer is the client"),
    })
    .superRefine((s, ctx) => {
      for (const key of ['headers_timeout', 'request_timeout', 'idle_timeout'] as const) {
        if (s[key] < 100 || s[key] > 3_600_000) ctx.addIssue({ code: 'custom', path: [key], message: 'must be between 100ms and 1h' });
      }
      if (s.headers_timeout > s.request_timeout) ctx.addIssue({ code: 'custom', path: ['headers_timeout'], message: 'must not exceed request_timeout (the headers are part of the request)' });
    })
    .prefault({}).describe('the HTTP listener: address, limits, timeouts, proxies'),
  tokens: z
    .strictObject({
      issuer: z.string().min(1).default('mandate').describe('`iss` of task tokens'),
      audience: z.string().min(1).default('mandate').describe('`aud` of task tokens'),
      ttl: duration('5m').describe('longest life of one task token; renewal mints the next'),
      default_task_ttl: duration('15m').describe('a task\'s life when its mandate names no ttl'),
      max_task_ttl: duration('1h').describe('the longest ttl a mandate may ask for'),
      max_task_lifetime: duration('4h').describe('hard end of every task, renewals included'),
      expiry_sweep_interval: duration('30s').describe('how often tasks past their time are marked expired (and audited)'),
      verified_cache_size: z
        .number()
        .int()
        .min(100)
        .max(10_000_000)
        .default(50_000)
        .describe("verified task tokens remembered (per node), so that a call checks a token's signature only at its first use; ~700 B each (the SHA-256 of the token's text as the key, and its claims). An expired token is forgotten when a lookup finds it, by a walk of the cache at most once a minute as new tokens are verified, or when the cache is full (the expired ones first, then the oldest)"),
      require_pop_environments: z.array(z.string().regex(/^[A-Za-z0-9._-]{1,100}$/)).max(100).default([]).describe('environments where every task must be bound to a key (DPoP proof at start); per agent: ceiling.require_pop'),
      /** proof of possession (RFC 9449 DPoP) for key-bound task tokens */
      dpop: z
        .strictObject({
          iat_window: duration('60s').describe('how far a proof\'s iat may lie from the server\'s clock, either way'),
          replay_cache_size: z.number().int().min(100).max(10_000_000).default(100_000).describe('proof ids remembered (per node) against replay; when full of live ids, proofs are refused'),
          nonce: z.boolean().default(false).describe('require server-issued nonces (DPoP-Nonce response header), rotating every nonce_period'),
          nonce_period: duration('5m').describe('how often the server\'s DPoP nonce changes (the previous one stays accepted for one period)'),
        })
        .prefault({}).describe('proof of possession (RFC 9449 DPoP) for key-bound task tokens'),
    })
    .prefault({}).describe('task tokens: issuer, audience, lifetimes'),
  identity: z
    .strictObject({
      audience: z.string().min(1).default('mandate').describe('what workload tokens\' `aud` must contain'),
      max_token_lifetime: duration('1h').describe('longest lifetime a workload token may have'),
      clock_skew: duration('30s').describe('tolerance for iat, nbf and exp of workload tokens'),
      trust_bundles: z.array(trustBundleSchema).max(100).default([]).describe('SPIFFE trust domains whose JWT-SVIDs are accepted, each with its keys'),
      oidc_issuers: z.array(oidcIssuerSchema).max(100).default([]).describe('OIDC issuers whose tokens are accepted as workload identity'),
      /** built-in issuer of JWT-SVIDs for demos and tests; never enable in production */
      dev_issuer: z
        .strictObject({ enabled: z.boolean().default(false).describe('turn on the built-in development issuer (also --dev-issuer, MANDATE_DEV_ISSUER=1)'), trust_domain: z.string().default('dev.mandate.local').describe('the trust domain of the SPIFFE IDs it issues') })
        .prefault({}).describe('built-in issuer of JWT-SVIDs for demos and tests; never enable in production'),
    })
    .prefault({}).describe('workload identity: which JWT-SVIDs and OIDC tokens prove what an agent is'),
  policies: z
    .strictObject({
      dir: policyDirs.optional().describe('folder of *.cedar files and an optional tools.yaml, or several loaded as one set (e.g. policies/agent-baseline and your tool facts); absent = empty set = deny everything'),
      shadow_dir: policyDirs.optional().describe('shadow mode: a candidate folder (or folders) judged beside the active set on every call; divergences are recorded, never enforced'),
      engine: z.enum(['compiled', 'cedar']).default('compiled').describe('compiled: validated policies compiled to JS, cedar-wasm as the oracle (docs/benchmarks.md, Compiled policies); cedar: cedar-wasm only'),
      cross_check_fraction: z.number().min(0).max(1).default(0.01).describe('share of compiled decisions re-evaluated by cedar-wasm in the background; a divergence is logged and counted'),
      cross_check_max_per_second: z.number().int().min(0).max(1_000_000).default(20).describe('ceiling on those re-evaluations per second (each costs hundreds of µs of the decision thread); 0 = none'),
    })
    .prefault({}).describe('the Cedar policy folders and how they are evaluated (docs/policies.md)'),
  /** in-memory copies of the store's tasks and agents, read on every decision */
  cache: z
    .strictObject({
      tasks: z
        .number()
        .int()
        .min(100)
        .max(10_000_000)
        .default(20_000)
        .describe("tasks held in memory (per node) so a decision reads its task without the store; ~1.1 KB each with a small mandate, more with a larger one. When full it is emptied and refills from the store as tasks are used: size it above the tasks live at once"),
      agents: z
        .number()
        .int()
        .min(100)
        .max(10_000_000)
        .default(10_000)
        .describe("agents held in memory (per node) so a decision reads its agent without the store; ~650 B each with a small ceiling. When full it is emptied and refills from the store as agents act: size it above the agents acting at once"),
      revocations: z
        .number()
        .int()
        .min(100)
        .max(10_000_000)
        .default(40_000)
        .describe("token ids (jti) whose revocation state is held in memory, one per token used (SQLite store only: with PostgreSQL every call reads the store); ~110 B each. When full it is emptied: a token not held is read from the store again, so a revoked token stays refused. The default holds two tokens (a live one and the one it renewed) for each task cache.tasks holds"),
      budgets: z
        .number()
        .int()
        .min(100)
        .max(10_000_000)
        .default(40_000)
        .describe("budget counters held in memory for the policy context (SQLite store only): at most this many per task and tool used, and as many per-task totals; ~220 B for the two. When full they are emptied and read from the store again (enforcement always counts in the store). The default holds two tools for each task cache.tasks holds"),
      task_ends: z
        .number()
        .int()
        .min(100)
        .max(10_000_000)
        .default(10_000)
        .describe("task ends (a kill, a revocation, a completion) held in memory so that a watch registered after one (an MCP call in flight, a task event stream) hears it without a store read; the oldest are forgotten first, and a watch of a forgotten end reads the store. ~250 B each"),
    })
    .prefault({})
    .describe("in-memory copies of the store's tasks, agents, task ends, token revocations and budget counters (per node); their bounds count towards server.max_heap_mb's auto"),
  tasks: z
    .strictObject({
      /** long-running tasks renew only while they show they are supervised */
      supervision: z
        .strictObject({
          enabled: z.boolean().default(false).describe('on: renewal needs a recent heartbeat (or a matching signed task state); lapsed tasks are suspended'),
          heartbeat_interval: duration('30s').describe('how often a supervisor is expected to call POST /v1/tasks/{id}/heartbeat'),
          missed_heartbeats_before_suspend: z.number().int().min(1).max(100).default(3).describe('heartbeats a task may miss before it is suspended'),
          state_window: duration('60s').describe('how old (iat) a signed task state sent with a renewal may be'),
          grace: duration('0s').describe('a renewed token keeps working for calls this long (never past its exp, a revocation or a kill)'),
          sweep_interval: duration('10s').describe('how often lapsed tasks are looked for'),
        })
        .prefault({}).describe('long-running tasks renew only while they show they are supervised'),
      /** GET /v1/tasks/{id}/events: the stream that tells an agent (the SDK's watchKills) its task ended */
      events: z
        .strictObject({
          heartbeat: duration('10s')
            .refine((ms) => ms >= 100 && ms <= 300_000, 'tasks.events.heartbeat must be between 100ms and 5m')
            .describe("a comment line this often keeps proxies from closing an idle task event stream and lets the client tell a dead stream from a quiet one; the task's state (and an operator's key) is re-checked at each"),
          max_streams_per_task: z
            .number()
            .int()
            .min(1)
            .max(1000)
            .default(4)
            .describe("task event streams open at once for one task; one more makes the task's oldest give way (a reconnecting client is never locked out by its own stream that has not noticed it is dead)"),
          max_streams_per_agent: z
            .number()
            .int()
            .min(1)
            .max(100_000)
            .default(256)
            .describe("task event streams open at once for all the tasks of one agent; one more makes the agent's oldest give way"),
        })
        .prefault({}).describe('the task event stream (GET /v1/tasks/{id}/events) that tells an agent its task ended'),
    })
    .prefault({}).describe('task lifecycle settings'),
  approvals: z
    .strictObject({
      ttl: duration('15m').describe('how long a request waits for a human, and how long an approval stays usable'),
      max_pending_per_task: z.number().int().min(1).max(1000).default(5).describe('approval fatigue: open requests one task may have at once'),
      max_decisions_per_approver: z.number().int().min(1).max(100_000).default(60).describe('approval fatigue: decisions one approver may make per window'),
      approver_window: duration('10m').describe('the window max_decisions_per_approver counts in'),
      forbid_owner_approval: z.boolean().default(false).describe('refuse approvals from an operator key whose name is the agent\'s owner'),
      webhook_url: z.url().optional().describe('POSTed a JSON notice for every new request (fire and forget, 5 s timeout)'),
    })
    .prefault({}).describe('step-up approvals: lifetime and limits against approval fatigue'),
  audit: z
    .strictObject({
      checkpoint_every: z.number().int().min(1).max(1_000_000).default(1000).describe('sign a checkpoint after this many records (appended by this node)…'),
      checkpoint_interval: duration('30s').refine((ms) => ms >= 100 && ms <= 86_400_000, 'checkpoint_interval must be between 100ms and 24h').describe('…or this often whenever the log has records no checkpoint covers (idle or not): the longest a record stays unanchored'),
      /**
       * the checkpoint signing keys (mode 0600), kept out of the log's database; default
       * <data_dir>/audit-checkpoint-keys.json. Nodes of one cluster share one file.
       */
      key_file: z.string().min(1).optional().describe('the checkpoint signing keys (mode 0600), kept out of the log\'s database; default <data_dir>/audit-checkpoint-keys.json. Nodes of one cluster share one file'),
      durability: z.enum(['full', 'normal']).default('full').describe('full: fsync every commit; normal: survive a process crash, not a power cut'),
      commit_thread: z
        .boolean()
        .default(true)
        .describe(
          'SQLite store: run the audit group commits (the transaction and the WAL sync) on a thread of their own, so the event loop decides other calls while the disk works; a call is still answered only once its records are durable, and a thread that dies refuses every commit (calls denied, readiness fails) until restart. false: commit on the event loop',
        ),
      integrity_check_interval: duration('60s')
        .refine((ms) => ms >= 1000 && ms <= 86_400_000, 'integrity_check_interval must be between 1s and 24h')
        .describe(
          'how often (and at start) the node checks that the audit log still holds what its newest signed checkpoint covers and that the records after it link up; while that fails, /readyz answers 503 (checks.audit)',
        ),
      anchors: anchorsConfigSchema.describe('copies of every signed checkpoint kept outside the data folder (see anchors.ts)'),
    })
    .prefault({}).describe('the audit chain: checkpoints, durability, anchors, integrity checks (docs/audit.md)'),
  keys: z
    .strictObject({
      kek_file: z
        .string()
        .min(1)
        .optional()
        .describe(
          'file holding the key encryption key (base64 of 32 bytes, mode 0600) that encrypts private signing keys at rest; MANDATE_KEK (the value itself) wins over it. Unset: <data_dir>/kek.key, generated on first start; keep it outside the data folder in production. Every node of a cluster uses the same',
        ),
      previous_kek_files: z
        .array(z.string().min(1))
        .max(10)
        .default([])
        .describe('earlier key encryption keys, accepted for reading only: at start every key under one of them is re-encrypted under kek_file (rotation); also MANDATE_KEK_PREVIOUS, comma-separated values'),
    })
    .prefault({})
    .describe('encryption at rest of the private signing keys (task tokens, the dev issuer, audit checkpoints)'),
  limits: z
    .strictObject({
      args_max_depth: z.number().int().min(1).max(64).default(8).describe('deepest nesting of a call\'s arguments'),
      args_max_entries: z.number().int().min(1).max(100_000).default(256).describe('most keys or items in one object or list of a call\'s arguments'),
      args_max_string: z.number().int().min(16).max(10 * 1024 * 1024).default(65_536).describe('longest string in a call\'s arguments (characters)'),
      args_max_nodes: z.number().int().min(1).max(1_000_000).default(4096).describe('most values in a call\'s arguments, all levels together'),
      provenance_min_length: z.number().int().min(4).max(1024).default(8).describe('free-text argument values at least this long are matched against earlier tool results (provenance)'),
      provenance_tasks: z
        .number()
        .int()
        .min(1)
        .max(10_000_000)
        .default(10_000)
        .describe("tasks whose tool results are remembered for provenance (per node); the least recently active is forgotten first, and from then on every value of its later calls that its purpose or a trusted output does not hold is untrusted (fail closed): size it above the tasks live at once"),
      provenance_chars_per_task: z
        .number()
        .int()
        .min(1000)
        .max(100_000_000)
        .default(2_000_000)
        .describe("characters of tool results remembered per task for provenance, the oldest results dropped first (untrusted ones before trusted); a task that dropped any is lossy: every value of its later calls that its purpose or a trusted output does not hold is untrusted (fail closed)"),
      provenance_chars: z
        .number()
        .int()
        .min(1000)
        .max(1_000_000_000)
        .default(8_000_000)
        .describe("characters of tool results remembered for provenance by the whole node, all tasks together; over it, the least recently active tasks' records are dropped first (those tasks become lossy, as with limits.provenance_chars_per_task). ~6.5 B of memory a character with the values found in it; counts towards server.max_heap_mb's auto"),
      pending_outcomes: z.number().int().min(1).max(10_000_000).default(50_000).describe("allowed calls remembered for their outcome report (POST /v1/outcomes, the gateway); the oldest are forgotten first. ~140 B each; counts towards server.max_heap_mb's auto"),
    })
    .prefault({}).describe('bounds on what an agent sends (arguments) and what is remembered for provenance'),
  shared_labels: z
    .strictObject({
      ttl: duration('30d')
        .refine((ms) => ms >= 60_000 && ms <= 3650 * 86_400_000, 'ttl must be between 1m and 3650d')
        .describe('how long the labels of a shared entry live after its last write; an expired entry reads back with its tool\'s trust, so outlive the data'),
      max_entries: z.number().int().min(1).max(10_000_000).default(100_000).describe('live shared entries whose labels are kept; past it a write that would add an entry is denied (expired entries make room; a live one is never forgotten, so its values cannot read back trusted)'),
      max_labels_per_entry: z.number().int().min(1).max(100_000).default(1000).describe('labelled values kept per entry; past it the entry is saturated: everything read from it is untrusted whole'),
      max_tasks_per_label: z.number().int().min(1).max(64).default(8).describe('writing task ids kept per label (the newest), for policies and the audit'),
      max_labels_per_read: z.number().int().min(1).max(1_000_000).default(10_000).describe('labels one read brings back; a read that matches more is untrusted whole'),
      max_text_length: z.number().int().min(16).max(65_536).default(1024).describe('characters of a free-text value kept in its label (longer values are labelled by their start)'),
    })
    .prefault({})
    .describe('provenance labels that travel with values through shared resources (tools.yaml `shared`): what a task writes there keeps its labels for every task that reads it back'),
  authzen: authzenConfigSchema.describe('AuthZEN 1.0 endpoints and the generic policy domain (see authzen/config.ts)'),
  behaviour: behaviourConfigSchema.describe('behavioural detectors, containment, alerts and the judge hook (see behaviour/config.ts)'),
  kill_hooks: killHooksSchema.describe('webhooks told of every kill (see kill-hooks/config.ts)'),
  mcp: mcpConfigSchema.describe('the MCP gateway at /mcp: upstream servers, the secrets key, message limits (see packages/gateway/src/config.ts)'),
  metrics: metricsConfigSchema,
  tracing: z
    .strictObject({
      enabled: z
        .boolean()
        .default(false)
        .describe(
          'start OpenTelemetry spans (through @opentelemetry/api) for /v1/authorize, /mcp and each decision, as children of the caller\'s traceparent; they go to the tracer provider the process registers (an OTel SDK loaded with node --import, for instance), and nowhere without one',
        ),
    })
    .prefault({})
    .describe('OpenTelemetry traces (docs/operations.md#traces)'),
  log: z.strictObject({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').describe('the lowest level written (JSON lines on stdout); also MANDATE_LOG_LEVEL') }).prefault({}).describe('the server\'s log'),
}).superRefine((c, ctx) => {
  // every task start would need a proof that cannot be checked
  if (c.server.public_url === undefined && !c.identity.dev_issuer.enabled && c.tokens.require_pop_environments.includes(c.environment)) {
    ctx.addIssue({ code: 'custom', path: ['server', 'public_url'], message: `is required when tokens.require_pop_environments includes this deployment's environment (${c.environment}): DPoP proofs name the server's URL, and outside development the Host header is not trusted to give it` });
  }
});

export type MandateConfig = z.output<typeof configSchema>;

/**
 * Whether the server may name itself from a request's Host header when `server.public_url` is
 * unset: only in development, which is the development issuer being on (`--dev-issuer`; never in
 * production). Anywhere else a forged Host would choose the URL DPoP proofs are checked against
 * and the one AuthZEN metadata publishes.
 */
export function trustsHostHeader(config: MandateConfig): boolean {
  return config.identity.dev_issuer.enabled;
}
export type MandateConfigInput = z.input<typeof configSchema>;

/** Environment variables that override the config file (documented in docs/configuration.md). */
export const ENV_OVERRIDES: Record<string, (c: Record<string, unknown>, v: string) => void> = {
  MANDATE_ENVIRONMENT: (c, v) => (c['environment'] = v),
  MANDATE_DATA_DIR: (c, v) => (c['data_dir'] = v),
  MANDATE_STORE: (c, v) => (c['store'] = v),
  MANDATE_HOST: (c, v) => (section(c, 'server')['host'] = v),
  MANDATE_PORT: (c, v) => (section(c, 'server')['port'] = Number(v)),
  MANDATE_POLICIES_DIR: (c, v) => (section(c, 'policies')['dir'] = v),
  MANDATE_LOG_LEVEL: (c, v) => (section(c, 'log')['level'] = v),
  MANDATE_DEV_ISSUER: (c, v) => (section(section(c, 'identity'), 'dev_issuer')['enabled'] = v === '1' || v === 'true'),
};

function section(c: Record<string, unknown>, key: string): Record<string, unknown> {
  const cur = c[key];
  if (cur !== null && typeof cur === 'object' && !Array.isArray(cur)) return cur as Record<string, unknown>;
  const fresh: Record<string, unknown> = {};
  c[key] = fresh;
  return fresh;
}

export function parseConfig(input: unknown): MandateConfig {
  const r = configSchema.safeParse(input ?? {});
  if (!r.success) {
    throw new MandateError('CONFIG_INVALID', `configuration is invalid: ${zodIssues(r.error)}`);
  }
  const heap = r.data.server.max_heap_mb;
  if (heap !== 'auto') {
    const budget = heapBudget(r.data);
    if (heap < budget.totalMb) throw new MandateError('CONFIG_INVALID', `configuration is invalid: server.max_heap_mb: ${heap} MiB cannot hold what this config's bounds allow (${budget.totalMb} MiB: ${budget.describe()}); raise it, lower those bounds, or use auto`);
  }
  return r.data;
}

/** Reads a YAML or JSON config file (or nothing), applies env overrides, validates. */
export function loadConfig(file: string | undefined, env: Record<string, string | undefined>, overrides: Record<string, unknown> = {}): MandateConfig {
  let raw: Record<string, unknown> = {};
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new MandateError('CONFIG_INVALID', `cannot read config file ${file}: ${(e as Error).message}`);
    }
    let parsed: unknown;
    try {
      parsed = parseYaml(text, { maxAliasCount: 100, uniqueKeys: true });
    } catch (e) {
      throw new MandateError('CONFIG_INVALID', `config file ${file} is not valid YAML/JSON: ${(e as Error).message}`);
    }
    if (parsed !== null && parsed !== undefined) {
      if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new MandateError('CONFIG_INVALID', `config file ${file} must hold a mapping`);
      raw = parsed as Record<string, unknown>;
    }
  }
  for (const [name, apply] of Object.entries(ENV_OVERRIDES)) {
    const v = env[name];
    if (v !== undefined && v !== '') apply(raw, v);
  }
  for (const [path, value] of Object.entries(overrides)) {
    const keys = path.split('.');
    let cur = raw;
    for (const k of keys.slice(0, -1)) cur = section(cur, k);
    cur[keys[keys.length - 1] as string] = value;
  }
  if (file === undefined) return parseConfig(raw);
  try {
    return parseConfig(raw);
  } catch (e) {
    // name the file: the paths in the message (server.port, ...) are paths inside it
    if (e instanceof MandateError && e.code === 'CONFIG_INVALID') throw new MandateError('CONFIG_INVALID', `config file ${file}: ${e.message}`);
    throw e;
  }
}

export function configJsonSchema(): unknown {
  return z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' });
}
