/**
 * Durable alert delivery to one webhook: the stored alerts, in store order, through the sink
 * delivery loop (sink-delivery.ts) that the kill hooks share. The alert id is the idempotency key.
 */
import type { Alert, AlertSinkStore, Clock, SequencedAlert } from '@mandate/core';
import { SinkDelivery, type SinkDeliveryOptions } from '../sink-delivery.ts';
import { webhookSignature, type WebhookLog } from '../webhook.ts';

export interface AlertDeliveryOptions extends SinkDeliveryOptions {
  readonly secret: string;
}

export interface AlertDeliveryDeps {
  readonly store: AlertSinkStore;
  readonly clock: Clock;
  /** this node's name in the lease */
  readonly owner: string;
  readonly log: WebhookLog;
  /** the alert as the receiver gets it (its API view) */
  readonly view: (a: Alert) => object;
}

export class AlertDelivery extends SinkDelivery<SequencedAlert> {
  constructor(opts: AlertDeliveryOptions, deps: AlertDeliveryDeps) {
    super(opts, {
      store: deps.store,
      clock: deps.clock,
      owner: deps.owner,
      log: deps.log,
      feed: {
        what: 'alert',
        open: (sink, now) => deps.store.openSink(sink, now),
        after: (seq, limit) => deps.store.alertsAfter(seq, limit),
        place: (e) => ({ seq: e.seq, id: e.alert.id, ts: e.alert.ts }),
        request: (e, attempt, now) => {
          const body = JSON.stringify({ type: 'alert', delivery: { id: e.alert.id, seq: e.seq, sink: opts.sink, attempt }, alert: deps.view(e.alert) });
          const ts = Math.floor(now / 1000);
          return {
            body,
            headers: { 'idempotency-key': e.alert.id, 'x-mandate-alert-seq': String(e.seq), 'x-mandate-timestamp': String(ts), 'x-mandate-signature': webhookSignature(opts.secret, ts, body) },
          };
        },
      },
    });
  }
}
