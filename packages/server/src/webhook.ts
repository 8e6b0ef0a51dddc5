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
