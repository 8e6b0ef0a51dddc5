/**
 * Kill hooks: the kill switch writes each kill to the store's outbox (once it has taken effect
 * and is audited), and each hook delivers the outbox through its own cursor and lease — the
 * delivery loop the alert webhooks use. So a kill reaches every hook at least once, after a
 * receiver outage or a restart, and the kill itself never waits for a receiver. Each delivery
 * has a stable id (`<kill id>.<hook name>`), the same on every retry, so receivers dedupe.
 */
import type { Clock, IdGenerator, JsonObject, KillKind, KillOutbox, SequencedKillEvent, Store } from '@mandate/core';
import { SinkDelivery } from '../sink-delivery.ts';
import { killHookSignature, type WebhookLog } from '../webhook.ts';
import { hookWants, killHookSecret, type KillHookConfig } from './config.ts';

export interface KillHooksDeps {
  readonly store: Pick<Store, 'alertSinks' | 'killOutbox'>;
  readonly clock: Clock;
  readonly ids: IdGenerator;
  /** this node's name in the leases */
  readonly owner: string;
  readonly log: WebhookLog;
  /** where secret_env is read from */
  readonly env: Record<string, string | undefined>;
}

/** the sink a hook's cursor is kept under (beside the alert webhooks', whose names hold no colon) */
export function killSinkName(hook: string): string {
  return `kill-hook:${hook}`;
}

/** what a kill hook receiver gets: the body is signed with the delivery id and the timestamp */
export function killHookRequest(hook: string, secret: string, e: SequencedKillEvent, attempt: number, now: number) {
  const deliveryId = `${e.event.id}.${hook}`;
  const body = JSON.stringify({
    type: 'kill',
    delivery: { id: deliveryId, hook, attempt },
    kill: { id: e.event.id, kind: e.event.kind, at: new Date(e.event.ts).toISOString(), ...e.event.data },
  });
  const ts = Math.floor(now / 1000);
  return {
    body,
    headers: { 'idempotency-key': deliveryId, 'x-mandate-delivery': deliveryId, 'x-mandate-timestamp': String(ts), 'x-mandate-signature': killHookSignature(secret, ts, deliveryId, body) },
  };
}

export class KillHooks {
  private readonly outbox: KillOutbox;
  private readonly d: KillHooksDeps;
  readonly deliveries: readonly SinkDelivery<SequencedKillEvent>[];

  /** reads every hook's signing key (CONFIG_INVALID when one is missing or short); starts nothing */
  constructor(hooks: readonly KillHookConfig[], deps: KillHooksDeps) {
    this.d = deps;
    this.outbox = deps.store.killOutbox;
    const outbox = this.outbox;
    this.deliveries = hooks.map((h) => {
      const secret = killHookSecret(h, deps.env);
      return new SinkDelivery<SequencedKillEvent>(
        { sink: killSinkName(h.name), url: h.url, maxAttempts: h.max_attempts, backoffMs: h.backoff_ms, maxBackoffMs: h.max_backoff_ms, timeoutMs: h.timeout_ms, retentionMs: h.retention_ms, pollMs: h.poll_ms },
        {
          store: deps.store.alertSinks,
          clock: deps.clock,
          owner: deps.owner,
          log: deps.log,
          feed: {
            what: 'kill',
            open: (sink, now) => outbox.openKillSink(sink, now),
            after: (seq, limit) => outbox.killEventsAfter(seq, limit),
            place: (e) => ({ seq: e.seq, id: e.event.id, ts: e.event.ts }),
            owed: (e) => hookWants(h, e.event.kind),
            request: (e, attempt, now) => killHookRequest(h.name, secret, e, attempt, now),
          },
        },
      );
    });
  }

  async start(): Promise<void> {
    for (const d of this.deliveries) await d.start();
  }

  /**
   * The kill switch's outbox: stores the kill (durable before the kill answers), then wakes this
   * node's deliveries. Written whether or not hooks are configured here: another node may have some.
   */
  async record(kind: KillKind, ts: number, data: JsonObject): Promise<void> {
    await this.outbox.appendKillEvent({ id: this.d.ids.next('kill'), ts, kind, data });
    this.wake();
  }

  /**
   * A kill was stored (here, or on another node: the change feed says so): each hook this node
   * delivers reads the outbox now instead of at its next poll. A node without a hook's lease
   * only checks the lease, which is still held; the node that holds it hears the same change.
   */
  wake(): void {
    for (const d of this.deliveries) d.wake();
  }

  /** where each hook stands: its cursor against the outbox head, durable counters, this node's own */
  async status() {
    const [head, sinks] = await Promise.all([this.outbox.killEventHead(), this.d.store.alertSinks.listSinks()]);
    const now = this.d.clock.now();
    return {
      head,
      hooks: this.deliveries.map((d) => {
        const s = sinks.find((x) => x.sink === d.sink);
        return {
          name: d.sink,
          url: d.target,
          cursor: s?.cursor ?? null,
          /** kills stored after the cursor: owed to this hook, or passed over once it reads them */
          behind: s === undefined ? null : Math.max(0, head - s.cursor),
          delivered: s?.delivered ?? 0,
          dropped: s?.dropped ?? 0,
          last_error: s?.lastError ?? null,
          lease: s?.owner !== undefined && s.leaseUntil > now ? { owner: s.owner, until: new Date(s.leaseUntil).toISOString() } : null,
          this_node: { ...d.stats },
        };
      }),
    };
  }

  async close(): Promise<void> {
    await Promise.all(this.deliveries.map((d) => d.close()));
  }
}
