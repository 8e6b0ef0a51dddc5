import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Approval } from '@mandate/core';
import { approvalView } from './http/views.ts';

export interface WebhookLog {
  warn(obj: object, msg: string): void;
}

/**
 * Tells an approvers' channel about a new request: POST, JSON, 5 s timeout, fire and forget.
 * A slow or failing receiver never delays or changes a decision; failures are logged.
 */
export function webhookNotifier(url: string, log: WebhookLog): (a: Approval) => void {
  return (a) => {
    // the same shape as GET /v1/approvals/{id}
    const body = { type: 'approval.requested', approval: approvalView(a, a.createdAt) };
    fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(5000) })
      .then((res) => {
        if (!res.ok) log.warn({ status: res.status, approval: a.id }, 'approval webhook answered with an error');
      })
      .catch((e: unknown) => log.warn({ err: e, approval: a.id }, 'approval webhook failed'));
  };
}

/** The HMAC a signed delivery carries: hex HMAC-SHA256 over `${timestamp}.${body}`. */
export function webhookSignature(secret: string, timestamp: number, body: string): string {
  return 'sha256=' + createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
}

/** For receivers (and tests): whether a delivery's signature is the one `secret` makes, compared in constant time. */
export function verifyWebhookSignature(secret: string, timestamp: string, body: string, signature: string): boolean {
  const ts = Number(timestamp);
  if (!Number.isSafeInteger(ts)) return false;
  const want = Buffer.from(webhookSignature(secret, ts, body));
  const got = Buffer.from(signature);
  return want.length === got.length && timingSafeEqual(want, got);
}

export interface SignedWebhookOptions {
  readonly url: string;
  readonly secret: string;
  readonly maxAttempts: number;
  readonly backoffMs: number;
  readonly maxBackoffMs: number;
  readonly timeoutMs: number;
  readonly queueSize: number;
  /** seconds since the epoch, for the signature's timestamp */
  readonly now?: () => number;
}

export interface WebhookStats {
  delivered: number;
  failed: number;
  dropped: number;
  queued: number;
}

/**
 * Delivers JSON events to one receiver, signed with HMAC-SHA256 (x-mandate-signature over
 * x-mandate-timestamp + "." + body), one at a time and in order, retried with exponential
 * backoff on a network error, a timeout or a non-2xx answer. The queue is bounded: when it is
 * full the oldest event is dropped and counted. Never blocks or fails the caller.
 */
export class SignedWebhook {
  private readonly o: SignedWebhookOptions;
  private readonly log: WebhookLog;
  private readonly queue: string[] = [];
  private running = false;
  private closed = false;
  private wake: (() => void) | undefined;
  readonly stats: WebhookStats = { delivered: 0, failed: 0, dropped: 0, queued: 0 };

  constructor(opts: SignedWebhookOptions, log: WebhookLog) {
    this.o = opts;
    this.log = log;
  }

  send(event: object): void {
    if (this.closed) return;
    this.queue.push(JSON.stringify(event));
    while (this.queue.length > this.o.queueSize) {
      this.queue.shift();
      this.stats.dropped += 1;
    }
    this.stats.queued = this.queue.length;
    if (!this.running) void this.pump();
  }

  /** stops retrying and drops what is queued */
  close(): void {
    this.closed = true;
    this.stats.dropped += this.queue.length;
    this.queue.length = 0;
    this.wake?.();
  }

  private async pump(): Promise<void> {
    this.running = true;
    try {
      for (let body = this.queue.shift(); body !== undefined && !this.closed; body = this.queue.shift()) {
        this.stats.queued = this.queue.length;
        await this.deliver(body);
      }
    } finally {
      this.running = false;
    }
  }

  private async deliver(body: string): Promise<void> {
    let delay = this.o.backoffMs;
    for (let attempt = 1; attempt <= this.o.maxAttempts && !this.closed; attempt++) {
      const ts = Math.floor((this.o.now ?? (() => Date.now() / 1000))());
      try {
        const res = await fetch(this.o.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-mandate-timestamp': String(ts), 'x-mandate-signature': webhookSignature(this.o.secret, ts, body) },
          body,
          signal: AbortSignal.timeout(this.o.timeoutMs),
        });
        await res.body?.cancel().catch(() => undefined);
        if (res.ok) {
          this.stats.delivered += 1;
          return;
        }
        this.log.warn({ status: res.status, url: this.o.url, attempt }, 'alert webhook answered with an error');
      } catch (e) {
        this.log.warn({ err: e, url: this.o.url, attempt }, 'alert webhook failed');
      }
      if (attempt < this.o.maxAttempts) {
        await this.sleep(delay);
        delay = Math.min(delay * 2, this.o.maxBackoffMs);
      }
    }
    this.stats.failed += 1;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      t.unref();
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.wake = done;
    });
  }
}

/**
 * The HMAC a kill hook delivery carries: hex HMAC-SHA256 over `${timestamp}.${deliveryId}.${body}`,
 * so neither the delivery id a receiver dedupes on nor the time it checks can be swapped.
 */
export function killHookSignature(secret: string, timestamp: number, deliveryId: string, body: string): string {
  return 'sha256=' + createHmac('sha256', secret).update(`${timestamp}.${deliveryId}.${body}`).digest('hex');
}
