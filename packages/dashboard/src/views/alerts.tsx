import { useEffect, useState } from 'preact/hooks';
import { allowed, ApiError, isAlert, mergeAlerts, q, type Alert, type Signal } from '../api.ts';
import type { Shared } from '../main.tsx';
import { EffectBadge, ErrorNote, Id, Json, When, agentName, errorText, short, time } from '../ui.tsx';

/** acknowledged alerts kept on screen under the open ones */
const MAX_ACKED_SHOWN = 50;

const RANK: Record<string, number> = { low: 0, medium: 1, high: 2, critical: 3 };

function SignalItem({ s }: { s: Signal }) {
  return (
    <li class="signal">
      <span class={`badge severity-${s.severity}`}>{s.severity}</span> <strong>{s.detector}</strong>{' '}
      <span class="muted">confidence {Math.round(s.confidence * 100)}%</span>
      <details>
        <summary>evidence</summary>
        <Json value={s.evidence} />
      </details>
    </li>
  );
}

function AlertCard({ shared, alert: a, onDone }: { shared: Shared; alert: Alert; onDone: (updated: Alert) => void }) {
  const [note, setNote] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  const open = a.state === 'open';
  const contained = a.policy_effect !== a.final_effect;

  const ack = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const body = note.trim() === '' ? {} : { note: note.trim() };
      onDone(await shared.api.post<Alert>(`/v1/alerts/${q(a.id)}/ack`, body));
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };

  const headId = `alert-${a.id}-h`;
  return (
    <article class={`card alert state-${a.state} severity-edge-${a.severity}`} data-alert-id={a.id} aria-labelledby={headId}>
      <h3 id={headId}>
        <span class={`badge severity-${a.severity}`}>{a.severity}</span> {a.detectors.join(', ')} on <code>{a.tool}</code>{' '}
        {open ? <span class="badge state-pending">open</span> : <span class="badge state-completed">acknowledged</span>}
      </h3>
      <dl class="facts">
        <dt>When</dt>
        <dd>
          <When iso={a.ts} />
        </dd>
        <dt>Agent</dt>
        <dd title={a.agent_id}>{agentName(a.agent_id)}</dd>
        <dt>Task</dt>
        <dd>
          <a href={`#/timeline/${q(a.task_id)}`} aria-label={`Timeline of task ${a.task_id}`} title={a.task_id}>
            {short(a.task_id, 24)}
          </a>{' '}
          <span class="muted small">
            call <Id id={a.call_id} n={18} />
          </span>
        </dd>
        <dt>Decision</dt>
        <dd class="effects">
          policy <EffectBadge effect={a.policy_effect} /> → final <EffectBadge effect={a.final_effect} />
          {contained && <span class="muted small"> (containment made it stricter)</span>}
        </dd>
        <dt>Actions taken</dt>
        <dd>{a.actions.length === 0 ? 'none' : a.actions.map((x) => <span key={x} class={`badge action-${x}`}>{x.replace('_', '-')}</span>)}</dd>
      </dl>
      <h4>Signals ({a.signals.length})</h4>
      <ul class="plain signals">
        {a.signals.map((s, i) => (
          <SignalItem key={i} s={s} />
        ))}
      </ul>
      {open && !allowed(shared.me, 'acknowledge_alert') ? (
        <p class="muted">Open: an approver acknowledges it (this key's role, {shared.me?.role ?? 'unknown'}, cannot).</p>
      ) : open ? (
        <form class="decide" onSubmit={ack}>
          <label class="field">
            Note
            <input name="note" value={note} maxLength={1000} placeholder="optional" onInput={(e) => setNote((e.target as HTMLInputElement).value)} />
          </label>
          <ErrorNote error={error} />
          <div class="actions">
            <button type="submit" class="primary" disabled={busy} aria-label={`Acknowledge alert on ${a.tool}`}>
              Acknowledge
            </button>
          </div>
        </form>
      ) : (
        <p class="acked muted">
          Acknowledged by {a.acked_by ?? 'an operator'} at {time(a.acked_at)}
          {a.ack_note ? `: “${a.ack_note}”` : ''}
        </p>
      )}
    </article>
  );
}

export function AlertsView({ shared }: { shared: Shared }) {
  const [alerts, setAlerts] = useState<Alert[]>();
  const [unavailable, setUnavailable] = useState(false);
  const [error, setError] = useState<string>();
  const [minSeverity, setMinSeverity] = useState('low');
  const [said, setSaid] = useState('');

  useEffect(() => {
    let live = true;
    shared.api
      .get<{ alerts: Alert[] }>('/v1/alerts?limit=200')
      .then((r) => {
        if (!live) return;
        setAlerts(r.alerts.filter(isAlert));
        setUnavailable(false);
        setError(undefined);
      })
      .catch((e: unknown) => {
        if (!live) return;
        // a server without the behaviour routes has no such endpoint
        if (e instanceof ApiError && e.status === 404) setUnavailable(true);
        else setError(errorText(e));
      });
    return () => {
      live = false;
    };
  }, [shared.api, shared.version]);

  if (unavailable) {
    return (
      <section class="card" aria-labelledby="no-alerts">
        <h2 id="no-alerts">Alerts are not available on this server</h2>
        <p>
          This Mandate server has no behaviour detection endpoint (<code>GET /v1/alerts</code> answered 404). Policy decisions, approvals and kills work as usual.
        </p>
      </section>
    );
  }

  const all = mergeAlerts(alerts ?? [], shared.alerts).filter((a) => (RANK[a.severity] ?? 0) >= (RANK[minSeverity] ?? 0));
  const open = all.filter((a) => a.state === 'open');
  const acked = all.filter((a) => a.state === 'acknowledged').slice(0, MAX_ACKED_SHOWN);
  const replace = (updated: Alert) => {
    setAlerts((list) => mergeAlerts(list ?? [], [updated as unknown as Record<string, unknown>]));
    setSaid(`Alert on ${updated.tool} acknowledged.`);
  };

  return (
    <>
      <ErrorNote error={error} />
      <p class="visually-hidden" aria-live="polite">
        {said}
      </p>
      <div class="toolbar">
        <label class="field inline">
          Minimum severity
          <select value={minSeverity} onChange={(e) => setMinSeverity((e.target as HTMLSelectElement).value)}>
            <option value="low">low</option>
            <option value="medium">medium</option>
            <option value="high">high</option>
            <option value="critical">critical</option>
          </select>
        </label>
        <p class="muted small">Behavioural signals never allow anything: containment only makes a decision stricter. New alerts arrive live.</p>
      </div>
      <section aria-labelledby="open-alerts-h">
        <h2 id="open-alerts-h">Open ({open.length})</h2>
        {alerts !== undefined && open.length === 0 && <p class="muted">No open alerts.</p>}
        {open.map((a) => (
          <AlertCard key={a.id} shared={shared} alert={a} onDone={replace} />
        ))}
      </section>
      <section aria-labelledby="acked-alerts-h">
        <h2 id="acked-alerts-h">Acknowledged</h2>
        {acked.length === 0 && <p class="muted">None yet.</p>}
        {acked.map((a) => (
          <AlertCard key={a.id} shared={shared} alert={a} onDone={replace} />
        ))}
      </section>
    </>
  );
}
