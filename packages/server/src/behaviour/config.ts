/**
 * The `behaviour` section: the core's detector and containment config, plus what only a server
 * has: alert webhooks, the live stream's bounds, and the optional judge endpoint.
 */
import { z } from 'zod';
import { behaviourCoreConfigSchema } from '@mandate/core';

const webhookSchema = z.strictObject({
  url: z.url(),
  /** HMAC-SHA256 key: each delivery carries x-mandate-signature: sha256=<hex of HMAC(timestamp + "." + body)> */
  secret: z.string().min(16).max(1024),
  /** attempts per alert (the first included), with exponential backoff between them */
  max_attempts: z.number().int().min(1).max(20).default(5),
  /** first retry delay; doubled after each failure, up to max_backoff_ms */
  backoff_ms: z.number().int().min(10).max(600_000).default(500),
  max_backoff_ms: z.number().int().min(10).max(3_600_000).default(30_000),
  timeout_ms: z.number().int().min(100).max(60_000).default(5_000),
  /** alerts waiting for delivery; past it the oldest is dropped (and counted) */
  queue_size: z.number().int().min(1).max(1_000_000).default(1_000),
});
export type AlertWebhookConfig = z.output<typeof webhookSchema>;

export const behaviourConfigSchema = z
  .strictObject({
    /** run the detectors on every decided call (off: policy alone decides, nothing is recorded) */
    enabled: z.boolean().default(false),
    ...behaviourCoreConfigSchema.shape,
    alerts: z
      .strictObject({
        webhooks: z.array(webhookSchema).max(20).default([]),
        /** live stream (GET /v1/alerts/stream): subscribers at once, and events queued per subscriber before it is dropped */
        stream_max_subscribers: z.number().int().min(1).max(10_000).default(100),
        stream_queue: z.number().int().min(1).max(100_000).default(256),
        /** alerts waiting to be stored; past it new ones are dropped (and counted) */
        store_queue: z.number().int().min(1).max(1_000_000).default(10_000),
      })
      .prefault({}),
    share: z
      .strictObject({
        interval_ms: z.number().int().min(50).max(60_000).default(500).describe('how often a node publishes the agents whose counts or chain marks changed, and reads what the other nodes published'),
        bucket_ms: z.number().int().min(100).max(60_000).default(1_000).describe("the time buckets a node counts each agent's calls in for the others; another node's bucket that overlaps a window is counted whole"),
        max_lag_ms: z.number().int().min(1_000).max(600_000).default(10_000).describe('a node whose last successful exchange is older than this denies every call (STORE_UNAVAILABLE) until the next one succeeds'),
        max_scopes: z.number().int().min(100).max(1_000_000).default(100_000).describe('rows (node, agent) read per exchange at most'),
      })
      .refine((s) => s.max_lag_ms >= 2 * s.interval_ms, { message: 'max_lag_ms must be at least twice interval_ms' })
      .prefault({})
      .describe('several nodes (PostgreSQL) only: how nodes share per-agent call counts and chain marks, so an agent whose calls are spread over nodes is judged on all of them (docs/behaviour.md)'),
    /** an HTTP endpoint asked {purpose, call} after each allowed call; it answers {score: 0..1} */
    judge: z
      .strictObject({
        url: z.url().optional(),
        timeout_ms: z.number().int().min(10).max(60_000).default(2_000),
        /** sent as Authorization: Bearer <token> when set */
        token: z.string().min(1).max(4096).optional(),
      })
      .prefault({}),
  })
  .prefault({});
export type BehaviourConfig = z.output<typeof behaviourConfigSchema>;
