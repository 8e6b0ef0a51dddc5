/**
 * Where alerts go: stored (listed and acknowledged over the API), then delivered to the signed
 * webhooks — durably, from the store (delivery.ts) — and to the live stream's subscribers.
 * Everything here runs off the decision's path: `emit` only queues, and a slow store, receiver
 * or subscriber never delays a decision.
 */
import type { ServerResponse } from 'node:http';
import { MandateError, type Alert, type AlertSink, type AlertSinkStore, type AlertStore, type AuditAppender, type Clock, type OperatorKey } from '@mandate/core';
import { alertView } from '../http/views.ts';
import type { SignedWebhook, WebhookLog } from '../webhook.ts';
import type { AlertDelivery } from './delivery.ts';

export interface AlertHubOptions {
  readonly store: AlertStore;
  readonly audit: AuditAppender;
  readonly clock: Clock;
  /** acknowledgements, to each webhook (best effort: a bounded queue, retried) */
  readonly webhooks: readonly SignedWebhook[];
  /** alerts, to each webhook: durable, from the store */
  readonly deliveries: readonly AlertDelivery[];
  readonly sinks: AlertSinkStore;
  readonly storeQueue: number;
  readonly maxSubscribers: number;
  readonly subscriberQueue: number;
  readonly log: WebhookLog;
  /** every stored or acknowledged alert, as its API view (the dashboard's live event bus) */
  readonly onPublish?: ((event: 'alert' | 'alert.acknowledged', view: ReturnType<typeof alertView>) => void) | undefined;
}

/**
 * One live-stream subscriber (server-sent events). Events wait in a bounded queue while the
 * connection applies back-pressure; a subscriber that falls that far behind is dropped.
 */
export class StreamSubscriber {
  private readonly raw: ServerResponse;
  private readonly max: number;
  private readonly onEnd: (s: StreamSubscriber) => void;
  private readonly queue: string[] = [];
  private blocked = false;
  private ended = false;
  /** why it ended: closed by the client, dropped for being slow, or the server closing */
  endReason: 'closed' | 'slow' | 'shutdown' | undefined;

  constructor(raw: ServerResponse, max: number, onEnd: (s: StreamSubscriber) => void) {
    this.raw = raw;
    this.max = max;
    this.onEnd = onEnd;
    raw.on('close', () => this.end('closed'));
  }

  /** queues an event; false when the subscriber is gone (or was just dropped) */
  push(event: string, data: object, id?: string): boolean {
    if (this.ended) return false;
    const frame = `${id !== undefined ? `id: ${id}\n` : ''}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    if (this.blocked) {
      if (this.queue.length >= this.max) {
        this.end('slow');
        return false;
      }
      this.queue.push(frame);
      return true;
    }
    this.write(frame);
    return true;
  }

  comment(text: string): void {
    if (!this.ended && !this.blocked) this.write(`: ${text}\n\n`);
  }

  end(reason: 'closed' | 'slow' | 'shutdown'): void {
    if (this.ended) return;
    this.ended = true;
    this.endReason = reason;
    this.queue.length = 0;
    if (reason === 'slow') this.raw.destroy();
    else this.raw.end();
    this.onEnd(this);
  }

  private write(frame: string): void {
    if (!this.raw.write(frame)) {
      this.blocked = true;
      this.raw.once('drain', () => this.flush());
    }
  }

  private flush(): void {
    this.blocked = false;
    while (!this.ended && !this.blocked) {
      const next = this.queue.shift();
      if (next === undefined) break;
      this.write(next);
    }
  }
}

export class AlertHub implements AlertSink {
  private readonly o: AlertHubOptions;
  private readonly subscribers = new Set<StreamSubscriber>();
  private pending = 0;
  private keepalive: NodeJS.Timeout | undefined;
  readonly stats = { stored: 0, dropped: 0, storeFailed: 0, slowSubscribersDropped: 0 };

  constructor(opts: AlertHubOptions) {
    this.o = opts;
  }

  /** From the behaviour monitor: store, then deliver. Never throws, never waits. */
  emit(alert: Alert): void {
    if (this.pending >= this.o.storeQueue) {
      this.stats.dropped += 1;
      this.o.log.warn({ alert: alert.id, task: alert.taskId }, 'alert queue full: alert dropped (its signals are in the audit log)');
      return;
    }
    this.pending += 1;
    this.o.store
      .createAlert(alert)
      .then(() => {
        this.stats.stored += 1;
        this.publish('alert', alert);
      })
      .catch((e: unknown) => {
        this.stats.storeFailed += 1;
        this.o.log.warn({ err: e, alert: alert.id }, 'alert could not be stored');
      })
      .finally(() => {
        this.pending -= 1;
      });
  }

  /** An operator acknowledges an open alert (audited). */
  async ack(id: string, operator: OperatorKey, note: string | undefined): Promise<Alert> {
    const now = this.o.clock.now();
    const { changed, alert } = await this.o.store.ackAlert(id, operator.id, now, note);
    if (!alert) throw new MandateError('NOT_FOUND', 'alert not found');
    if (!changed) throw new MandateError('CONFLICT', `alert is already ${alert.state}`);
    await this.o.audit.append([
      { kind: 'alert.acknowledged', ts: now, taskId: alert.taskId, agentId: alert.agentId, callId: alert.callId, data: { alert_id: alert.id, by: operator.id, ...(note !== undefined ? { note } : {}) } },
    ]);
    this.publish('alert.acknowledged', alert);
    return alert;
  }

  /** Adds a live-stream subscriber on an open response; refuses when there are too many. */
  subscribe(raw: ServerResponse): StreamSubscriber {
    if (this.subscribers.size >= this.o.maxSubscribers) throw new MandateError('RATE_LIMITED', `at most ${this.o.maxSubscribers} alert stream subscribers at once`);
    const sub = new StreamSubscriber(raw, this.o.subscriberQueue, (s) => {
      this.subscribers.delete(s);
      if (s.endReason === 'slow') {
        this.stats.slowSubscribersDropped += 1;
        this.o.log.warn({}, 'a slow alert stream subscriber was dropped');
      }
    });
    this.subscribers.add(sub);
    if (this.keepalive === undefined) {
      this.keepalive = setInterval(() => {
        for (const s of this.subscribers) s.comment('keepalive');
      }, 15_000);
      this.keepalive.unref();
    }
    return sub;
  }

  get subscriberCount(): number {
    return this.subscribers.size;
  }

  /** ends every live-stream subscriber (the HTTP server is closing) */
  closeStreams(): void {
    if (this.keepalive !== undefined) clearInterval(this.keepalive);
    this.keepalive = undefined;
    for (const s of [...this.subscribers]) s.end('shutdown');
  }

  /**
   * Where every webhook's delivery stands (durable counters from the store, this node's own
   * beside them) and what never reached the store: for operators, GET /v1/alerts/delivery.
   */
  async deliveryStatus() {
    const [head, sinks] = await Promise.all([this.o.sinks.alertHead(), this.o.sinks.listSinks()]);
    const now = this.o.clock.now();
    return {
      head,
      alerts: { stored: this.stats.stored, dropped_queue_full: this.stats.dropped, store_failed: this.stats.storeFailed },
      webhooks: this.o.deliveries.map((d) => {
        const s = sinks.find((x) => x.sink === d.sink);
        const ack = this.o.webhooks[this.o.deliveries.indexOf(d)];
        return {
          name: d.sink,
          url: d.target,
          cursor: s?.cursor ?? null,
          pending: s === undefined ? null : Math.max(0, head - s.cursor),
          delivered: s?.delivered ?? 0,
          dropped: s?.dropped ?? 0,
          last_error: s?.lastError ?? null,
          lease: s?.owner !== undefined && s.leaseUntil > now ? { owner: s.owner, until: new Date(s.leaseUntil).toISOString() } : null,
          this_node: { ...d.stats, acknowledgements: ack ? { ...ack.stats } : null },
        };
      }),
    };
  }

  /** stops the streams and the webhooks; the deliveries give their leases up */
  async close(): Promise<void> {
    this.closeStreams();
    for (const w of this.o.webhooks) w.close();
    await Promise.all(this.o.deliveries.map((d) => d.close()));
  }

  private publish(event: 'alert' | 'alert.acknowledged', alert: Alert): void {
    const view = alertView(alert);
    // a stored alert is owed to every webhook: the deliveries read it from the store
    if (event === 'alert') for (const d of this.o.deliveries) d.wake();
    else for (const w of this.o.webhooks) w.send({ type: event, alert: view });
    for (const s of [...this.subscribers]) s.push(event, view, alert.id);
    this.o.onPublish?.(event, view);
  }
}
