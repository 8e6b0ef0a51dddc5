import { z } from 'zod';
import { durationSchema } from '@mandate/core';

/** A server name: the namespace of its tools (`<name>__<tool>`). */
export const UPSTREAM_NAME = /^[A-Za-z0-9][A-Za-z0-9.-]{0,39}$/;
/** A secret's name, as `secret:<name>` refers to it. */
export const SECRET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/** A plain value, or `secret:<name>`: a secret from the store, decrypted only into the upstream's connection. */
const valueRef = z.string().max(8192);
const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/);
const headerName = z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$/);

/**
 * Who shares one connection to an upstream (one process, for stdio):
 * - `per_session`: each MCP session has its own (the default; secrets and state die with the session);
 * - `per_task`: the sessions of one task share one, ended with the task's last session;
 * - `shared`: every session shares one, kept for the gateway's lifetime. Only for upstreams that
 *   hold no per-session secrets or state: whatever one session leaves in it (files, memory,
 *   subscriptions, caches) the next can see. It cannot take `secret:` values.
 */
export const SHARING_MODES = ['per_session', 'per_task', 'shared'] as const;
export type SharingMode = (typeof SHARING_MODES)[number];

const common = {
  name: z.string().regex(UPSTREAM_NAME).describe('namespace of the upstream\'s tools: `<name>__<tool>` is what mandates and policies see'),
  trusted: z.boolean().default(false).describe('its results count as trusted provenance (default: untrusted)'),
  tool_prefix: z.string().regex(UPSTREAM_NAME).optional().describe('the prefix before `__` (default: the name)'),
  sharing: z
    .enum(SHARING_MODES)
    .default('per_session')
    .describe('who shares one connection (one process): per_session (default), per_task (the sessions of one task), shared (every session; no secrets allowed, state leaks between sessions)'),
  warm: z
    .number()
    .int()
    .min(0)
    .max(64)
    .default(1)
    .describe('connections started ahead of demand (per_session, per_task), so a session opens without waiting for a process to start; a shared upstream always has its one connection started at start-up'),
};

const isSecretRef = (v: string) => v.startsWith('secret:');

export const upstreamSchema = z
  .discriminatedUnion('transport', [
    z.strictObject({
      ...common,
      transport: z.literal('stdio').describe('stdio: the gateway starts the server as a process and speaks MCP over its stdin/stdout'),
      command: z.string().min(1).max(4096).describe('the program to start (looked up in PATH)'),
      args: z.array(z.string().max(8192)).max(256).default([]).describe('its arguments'),
      env: z.record(envName, valueRef).default({}).describe('extra environment (values may be `secret:<name>`); the gateway\'s own environment is not inherited beyond PATH, HOME and the like'),
      cwd: z.string().min(1).optional().describe('its working folder (default: Mandate\'s)'),
    }),
    z.strictObject({
      ...common,
      transport: z.literal('http').describe('http: the server is reached over MCP Streamable HTTP at url'),
      url: z.url().describe('the upstream\'s MCP endpoint'),
      headers: z.record(headerName, valueRef).default({}).describe('request headers (values may be `secret:<name>`)'),
    }),
  ])
  .superRefine((u, ctx) => {
    // a shared connection outlives every task: a secret in it would be a standing credential
    // that no task's end or kill revokes, so a shared upstream takes none
    const values = u.transport === 'stdio' ? u.env : u.headers;
    if (u.sharing === 'shared' && Object.values(values).some(isSecretRef)) {
      ctx.addIssue({ code: 'custom', path: [u.transport === 'stdio' ? 'env' : 'headers'], message: `upstream "${u.name}" is shared: it cannot take secret: values (use per_task or per_session)` });
    }
  });

export const mcpConfigSchema = z
  .strictObject({
    upstreams: z.array(upstreamSchema).max(64).default([]).describe('the MCP servers behind the gateway'),
    secrets_key_file: z.string().min(1).optional().describe('file holding the 32-byte secrets key (base64 or hex); or env MANDATE_SECRETS_KEY'),
    require_resource_audience: z
      .boolean()
      .default(false)
      .describe('accept at /mcp only task tokens requested for this gateway (RFC 8707: the task started with resource = server.public_url + /mcp); a token bound to another resource is refused either way'),
    limits: z
      .strictObject({
        max_message_bytes: z.number().int().min(1024).max(16 * 1024 * 1024).default(1024 * 1024).describe('largest JSON-RPC message accepted from a client'),
        max_depth: z.number().int().min(4).max(128).default(32).describe('deepest JSON nesting in a client message'),
        max_sessions: z
          .number()
          .int()
          .min(1)
          .max(10_000)
          .default(64)
          .describe('MCP sessions open at once, all tasks together; at the cap, the agent holding the most sessions gives up its least recently used one'),
        max_sessions_per_task: z
          .number()
          .int()
          .min(1)
          .max(1000)
          .default(4)
          .describe('MCP sessions of one task; opening one more closes that task\'s least recently used session'),
        max_sessions_per_agent: z
          .number()
          .int()
          .min(1)
          .max(10_000)
          .default(16)
          .describe('MCP sessions of one agent (all its tasks); opening one more closes that agent\'s least recently used session'),
        halt_grace: durationSchema.prefault('250ms').describe('when a task ends, its calls in flight are cancelled upstream at once; its upstream connections (per-session processes and HTTP sessions) are ended after this grace, so an upstream that honours the cancellation can finish cleanly'),
        upstream_timeout: durationSchema.prefault('30s').describe('an upstream that does not answer a request in this time fails the request'),
        connect_timeout: durationSchema
          .prefault('3s')
          .describe('how long opening a session waits for an upstream that is not ready; the session opens without it (and says so), and gets it when it is ready'),
        health_interval: durationSchema.prefault('30s').describe('how often an idle upstream connection is pinged; one that does not answer is restarted'),
        restart_backoff: durationSchema.prefault('500ms').describe('wait before restarting an upstream that exited or failed to start; doubled on each failure in a row'),
        restart_max_backoff: durationSchema.prefault('30s').describe('the longest wait between restarts of a failing upstream'),
        task_check_interval: durationSchema.prefault('5s').describe('how often the gateway checks that the tasks of its sessions are still active (and ends their sessions and leases if not)'),
        idle_timeout: durationSchema
          .prefault('5m')
          .describe('a session idle this long is closed, with its upstream connections. Idle means not opening and no request in flight (a tools/call running for an hour keeps its session), measured from the end of its last request or of its open; an open SSE stream (GET) alone is not a request'),
        max_list_items: z.number().int().min(1).max(100_000).default(1000).describe('tools, resources or prompts kept from one upstream\'s list'),
      })
      .prefault({}).describe('bounds of the gateway: message sizes, sessions, timeouts, restarts'),
  })
  .prefault({})
  .superRefine((c, ctx) => {
    const prefixes = new Set<string>();
    for (const [i, u] of c.upstreams.entries()) {
      const p = u.tool_prefix ?? u.name;
      if (prefixes.has(p)) ctx.addIssue({ code: 'custom', path: ['upstreams', i, 'tool_prefix'], message: `two MCP upstreams share the tool prefix "${p}"` });
      prefixes.add(p);
    }
  });

export type McpConfig = z.output<typeof mcpConfigSchema>;
export type UpstreamConfig = z.output<typeof upstreamSchema>;
export type McpLimits = McpConfig['limits'];
