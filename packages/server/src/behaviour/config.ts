/**
 * The `behaviour` section: the core's detector and containment config, plus what only a server
 * has: alert webhooks, the live stream's bounds, and the optional judge endpoint.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { behaviourCoreConfigSchema } from '@mandate/core';

const DAY = 86_400_000;

const webhookSchema = z.strictObject({
  /** the webhook's name in the store: its delivery cursor and counters are kept under it */
  name: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,64}$/)
    .optional()
    .describe('the name its delivery cursor and counters are kept under in the store (default: derived from the URL, so a new URL starts afresh)'),
  url: z.url().describe('where alerts are POSTed (JSON, signed)'),
  secret: z.string().min(16).max(1024).describe('HMAC-SHA256 key: each delivery carries x-mandate-signature: sha256=<hex of HMAC(timestamp + "." + body)>'),
  max_attempts: z.number().int().min(1).max(20).default(5).describe('attempts for an alert the receiver rejects (a 4xx other than 408, 425, 429), then it is dropped; an unreachable receiver is retried until retention_ms'),
  backoff_ms: z.number().int().min(10).max(600_000).default(500).describe('first retry delay; doubled after each failure, up to max_backoff_ms'),
  max_backoff_ms: z.number().int().min(10).max(3_600_000).default(30_000).describe('the longest delay between retries'),
  timeout_ms: z.number().int().min(100).max(60_000).default(5_000).describe('a delivery not answered within this fails and is retried'),
  queue_size: z.number().int().min(1).max(1_000_000).default(1_000).describe('acknowledgement events waiting for delivery (best effort); past it the oldest is dropped (and counted)'),
  retention_ms: z
    .number()
    .int()
    .min(60_000)
    .max(90 * DAY)
    .default(7 * DAY)
    .describe('how long a stored alert is still owed to this webhook: one older and still undelivered is dropped, logged with its id and counted'),
  poll_ms: z.number().int().min(50).max(60_000).default(1_000).describe('how often an idle node looks for alerts other nodes stored, and for a free delivery lease'),
});
export type AlertWebhookConfig = z.output<typeof webhookSchema>;

/** The webhook's sink name: its own, or one derived from its URL. */
export function sinkName(w: { name?: string | undefined; url: string }): string {
  return w.name ?? `url-${createHash('sha256').update(w.url).digest('hex').slice(0, 16)}`;
}

export const behaviourConfigSchema = z
  .strictObject({
    enabled: z.boolean().default(false).describe('run the detectors on every decided call (off: policy alone decides, nothing is recorded)'),
    ...behaviourCoreConfigSchema.shape,
    alerts: z
      .strictObject({
        webhooks: z
          .array(webhookSchema)
          .max(20)
          .default([])
          .refine((hooks) => new Set(hooks.map(sinkName)).size === hooks.length, 'two webhooks share a name (or a URL): each needs its own').describe('receivers every alert is delivered to, at least once, in order, from the store'),
        stream_max_subscribers: z.number().int().min(1).max(10_000).default(100).describe('live stream (GET /v1/alerts/stream): subscribers at once, and events queued per subscriber before it is dropped'),
        stream_queue: z.number().int().min(1).max(100_000).default(256).describe('events queued for one live-stream subscriber; past it the subscriber is dropped'),
        store_queue: z.number().int().min(1).max(1_000_000).default(10_000).describe('alerts waiting to be stored; past it new ones are dropped (and counted)'),
      })
      .prefault({}).describe('where alerts go: webhooks, the live stream, the store'),
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
        url: z.url().optional().describe('the judge endpoint, asked {purpose, call} after each allowed call; unset: no judge'),
        timeout_ms: z.number().int().min(10).max(60_000).default(2_000).describe('a judge answer later than this is ignored'),
        token: z.string().min(1).max(4096).optional().describe('sent as Authorization: Bearer <token> when set'),
      })
      .prefault({}).describe('an HTTP endpoint asked {purpose, call} after each allowed call; it answers {score: 0..1}'),
  })
  .prefault({});
export type BehaviourConfig = z.output<typeof behaviourConfigSchema>;
