import type { Approval } from '@mandate/core';

export interface WebhookLog {
  warn(obj: object, msg: string): void;
}

/**
 * Tells an approvers' channel about a new request: POST, JSON, 5 s timeout, fire and forget.
 * A slow or failing receiver never delays or changes a decision; failures are logged.
 */
export function webhookNotifier(url: string, log: WebhookLog): (a: Approval) => void {
  return (a) => {
    const body = {
      type: 'approval.requested',
      approval: {
        id: a.id,
        task_id: a.taskId,
        agent_id: a.agentId,
        tool: a.tool,
        args: a.args,
        args_hash: a.argsHash,
        resource: a.resource ?? null,
        policy_ids: a.policyIds,
        expires_at: new Date(a.expiresAt).toISOString(),
      },
    };
    fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(5000) })
      .then((res) => {
        if (!res.ok) log.warn({ status: res.status, approval: a.id }, 'approval webhook answered with an error');
      })
      .catch((e: unknown) => log.warn({ err: e, approval: a.id }, 'approval webhook failed'));
  };
}
