import { useEffect, useState } from 'preact/hooks';
import { allowed, q, type Approval, type AuditRecord, type Task } from '../api.ts';
import type { Shared } from '../main.tsx';
import { EffectBadge, ErrorNote, Json, agentName, errorText, time } from '../ui.tsx';

interface Context {
  purpose: string | undefined;
  history: AuditRecord[];
}

function ApprovalCard({ shared, approval: a, onDone }: { shared: Shared; approval: Approval; onDone: () => void }) {
  const [ctx, setCtx] = useState<Context>();
  const [reason, setReason] = useState('');
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const pending = a.state === 'pending';

  useEffect(() => {
    let live = true;
    Promise.all([shared.api.get<Task>(`/v1/tasks/${q(a.task_id)}`).catch(() => undefined), shared.api.get<{ records: AuditRecord[] }>(`/v1/audit?task_id=${q(a.task_id)}&limit=1000`).catch(() => ({ records: [] }))]).then(
      ([task, audit]) => {
        if (!live) return;
        // the calls that led to this request, up to and including it
        const upTo = audit.records.findIndex((r) => r.kind === 'approval.requested' && r.data['approval_id'] === a.id);
        const history = (upTo === -1 ? audit.records : audit.records.slice(0, upTo + 1)).filter((r) => r.kind === 'decision').slice(-10);
        setCtx({ purpose: task?.mandate.purpose, history });
      },
    );
    return () => {
      live = false;
    };
  }, [a.id]);

  const decide = async (verdict: 'approve' | 'deny') => {
    if (reason.trim() === '') {
      setError('Give a reason: it is recorded in the audit log.');
      return;
    }
    setBusy(true);
    setError(undefined);
    try {
      await shared.api.post(`/v1/approvals/${q(a.id)}/${verdict}`, { reason: reason.trim() });
      onDone();
    } catch (e) {
      setError(errorText(e));
    } finally {
      setBusy(false);
    }
  };

  const id = `apr-${a.id}`;
  return (
    <article class={`card approval state-${a.state}`} aria-labelledby={`${id}-h`} data-approval-id={a.id} aria-disabled={!pending}>
      <h3 id={`${id}-h`}>
        <code>{a.tool}</code> by {agentName(a.agent_id)} <span class={`badge state-${a.state}`}>{a.state}</span>
      </h3>
      <dl class="facts">
        <dt>Purpose</dt>
        <dd>{ctx?.purpose ?? '…'}</dd>
        <dt>Task</dt>
        <dd>
          <a href={`#/timeline/${q(a.task_id)}`}>{a.task_id}</a>
        </dd>
        <dt>Resource</dt>
        <dd>{a.resource ?? '—'}</dd>
        <dt>Asked</dt>
        <dd>
          {time(a.created_at)}, expires {time(a.expires_at)}
        </dd>
        <dt>Policies</dt>
        <dd>{a.policy_ids.join(', ')}</dd>
      </dl>
      <h4>Arguments (redacted)</h4>
      <Json value={a.args} />
      <h4>Calls leading to it</h4>
      <ol class="history">
        {ctx?.history.map((r) => (
          <li key={r.seq}>
            {time(r.ts)} <code>{String(r.data['tool'])}</code> <EffectBadge effect={String(r.data['effect'])} /> {(r.data['reasons'] as string[] | undefined)?.join(', ')}
          </li>
        ))}
      </ol>
      {pending && !allowed(shared.me, 'approve') && !allowed(shared.me, 'deny') ? (
        <p class="muted">Pending: an approver decides it (this key's role, {shared.me?.role ?? 'unknown'}, cannot).</p>
      ) : pending ? (
        <div class="decide">
          <label class="field">
            Reason
            <input value={reason} maxLength={1000} onInput={(e) => setReason((e.target as HTMLInputElement).value)} />
          </label>
          <ErrorNote error={error} />
          <div class="actions">
            {allowed(shared.me, 'approve') && (
              <button type="button" class="primary" disabled={busy} onClick={() => void decide('approve')}>
                Approve
              </button>
            )}
            {allowed(shared.me, 'deny') && (
              <button type="button" class="danger" disabled={busy} onClick={() => void decide('deny')}>
                Deny
              </button>
            )}
          </div>
        </div>
      ) : (
        <p class="muted">
          {a.state === 'expired' ? 'Expired: no longer usable; the agent must ask again.' : `${a.state}${a.decided_by ? ` by ${a.decided_by}` : ''}${a.reason ? `: ${a.reason}` : ''}`}
        </p>
      )}
    </article>
  );
}

export function ApprovalsView({ shared }: { shared: Shared }) {
  const [list, setList] = useState<Approval[]>([]);
  const [error, setError] = useState<string>();
  const [refresh, setRefresh] = useState(0);

  useEffect(() => {
    let live = true;
    shared.api
      .get<{ approvals: Approval[] }>('/v1/approvals?limit=200')
      .then((r) => {
        if (!live) return;
        setList(r.approvals);
        setError(undefined);
      })
      .catch((e: unknown) => live && setError(errorText(e)));
    return () => {
      live = false;
    };
  }, [shared.api, shared.version, refresh]);

  const pending = list.filter((a) => a.state === 'pending');
  const rest = list.filter((a) => a.state !== 'pending').slice(0, 30);
  return (
    <>
      <ErrorNote error={error} />
      <section aria-labelledby="pending-h">
        <h2 id="pending-h">Pending ({pending.length})</h2>
        {pending.length === 0 && <p class="muted">No call is waiting for a human.</p>}
        {pending.map((a) => (
          <ApprovalCard key={a.id} shared={shared} approval={a} onDone={() => setRefresh((n) => n + 1)} />
        ))}
      </section>
      <section aria-labelledby="recent-h">
        <h2 id="recent-h">Recent</h2>
        {rest.map((a) => (
          <ApprovalCard key={a.id} shared={shared} approval={a} onDone={() => setRefresh((n) => n + 1)} />
        ))}
        {rest.length === 0 && <p class="muted">None yet.</p>}
      </section>
      <p class="muted small">Approvals are single use and bound to the exact call (task, tool and argument hash).</p>
    </>
  );
}
