import { z } from 'zod';
import { durationSchema } from '@mandate/core';

/** A server name: the namespace of its tools (`<name>__<tool>`). */
export const UPSTREAM_NAME = /^[A-Za-z0-9][A-Za-z0-9.-]{0,39}$/;
/** A secret's name, as `secret:<name>` refers to it. */
export const SECRET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/** A plain value, or `secret:<name>`: a secret from the store, decrypted only into the upstream's session. */
const valueRef = z.string().max(8192);
const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/);
const headerName = z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$/);

const common = {
  /** namespace of the upstream's tools: `<name>__<tool>` is what mandates and policies see */
  name: z.string().regex(UPSTREAM_NAME),
  /** trusted: its results count as trusted provenance; untrusted (the default): only as untrusted */
  trusted: z.boolean().default(false),
  /** the prefix before `__` (default: the name) */
  tool_prefix: z.string().regex(UPSTREAM_NAME).optional(),
};

export const upstreamSchema = z.discriminatedUnion('transport', [
  z.strictObject({
    ...common,
    transport: z.literal('stdio'),
    command: z.string().min(1).max(4096),
    args: z.array(z.string().max(8192)).max(256).default([]),
    /** extra environment (values may be `secret:<name>`); the gateway's own environment is not inherited beyond PATH, HOME and the like */
    env: z.record(envName, valueRef).default({}),
    cwd: z.string().min(1).optional(),
  }),
  z.strictObject({
    ...common,
    transport: z.literal('http'),
    url: z.url(),
    /** request headers (values may be `secret:<name>`) */
    headers: z.record(headerName, valueRef).default({}),
  }),
]);

export const mcpConfigSchema = z
  .strictObject({
    /** the MCP servers behind the gateway */
    upstreams: z.array(upstreamSchema).max(64).default([]),
    /** file holding the 32-byte secrets key (base64 or hex); or env MANDATE_SECRETS_KEY */
    secrets_key_file: z.string().min(1).optional(),
    limits: z
      .strictObject({
        /** largest JSON-RPC message accepted from a client */
        max_message_bytes: z.number().int().min(1024).max(16 * 1024 * 1024).default(1024 * 1024),
        /** deepest JSON nesting in a client message */
        max_depth: z.number().int().min(4).max(128).default(32),
        /** concurrent MCP sessions (each holds its own upstream connections) */
        max_sessions: z.number().int().min(1).max(10_000).default(64),
        /** an upstream that does not answer in this time fails the request */
        upstream_timeout: durationSchema.prefault('30s'),
        /** how often a session checks its task is still active (and ends its leases if not) */
        task_check_interval: durationSchema.prefault('5s'),
        /** a session unused this long is closed */
        idle_timeout: durationSchema.prefault('30m'),
        /** tools, resources or prompts kept from one upstream's list */
        max_list_items: z.number().int().min(1).max(100_000).default(1000),
      })
      .prefault({}),
  })
  .prefault({});

export type McpConfig = z.output<typeof mcpConfigSchema>;
export type UpstreamConfig = z.output<typeof upstreamSchema>;
