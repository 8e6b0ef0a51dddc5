import { useEffect, useState } from 'preact/hooks';
import { ApiError, q, type Alert } from '../api.ts';
import type { Shared } from '../main.tsx';
import { ErrorNote, Json, agentName, errorText, short, time } from '../ui.tsx';

export function AlertsView({ shared }: { shared: Shared }) {
  const [alerts, setAlerts] = useState<Alert[]>();
  const [unavailable, setUnavailable] = useState(false);
  const [error, setError] = useState<string>();
  const [refresh, setRefresh] = useState(0);

  useEffect(() => {
    let live = true;
    shared.api
      .get<{ alerts: Alert[] }>('/v1/alerts?limit=200')
      .then((r) => {
        if (!live) return;
        setAlerts(r.alerts);
        setUnavailable(false);
        setError(undefined);
      })
      .catch((e: unknown) => {
        if (!live) return;
        // the behaviour detectors ship separately: a server without them has no such endpoint
        if (e instanceof ApiError && e.status === 404) setUnavailable(true);
        else setError(errorText(e));
      });
    return () => {
      live = false;
    };
  }, [shared.api, shared.version, refresh]);

  const ack = async (id: string) => {
    try {
      await shared.api.post(`/v1/alerts/${q(id)}/ack`, {});
      setRefresh((n) => n + 1);
    } catch (e) {
      setError(errorText(e));
    }
  };

  if (unavailable) {
    return (
      <section class="card" aria-labelledby="no-alerts">
        <h2 id="no-alerts">Alerts are not available on this server</h2>
        <p>
          This Mandate server has no behaviour detection endpoint (<code>GET /v1/alerts</code> answered 404). Policy decisions, approvals and kills work as usual.
        </p>
        {shared.alerts.length > 0 && <p>{shared.alerts.length} alert event(s) arrived on the live stream meanwhile.</p>}
      </section>
    );
  }
  return (
    <>
      <ErrorNote error={error} />
      <table>
        <caption class="visually-hidden">Behaviour alerts, newest first</caption>
        <thead>
          <tr>
            <th scope="col">Time</th>
            <th scope="col">Severity</th>
            <th scope="col">Detector</th>
            <th scope="col">Agent</th>
            <th scope="col">Task</th>
            <th scope="col">Confidence</th>
            <th scope="col">Action</th>
            <th scope="col">Evidence</th>
            <th scope="col">
              <span class="visually-hidden">Acknowledge</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {alerts?.length === 0 && (
            <tr>
              <td colSpan={9} class="muted">
                No alerts.
              </td>
            </tr>
          )}
          {alerts?.map((a) => (
            <tr key={a.id} class={a.acknowledged ? 'ended' : ''}>
              <td>{time(a.ts)}</td>
              <td>
                <span class={`badge severity-${a.severity}`}>{a.severity}</span>
              </td>
              <td>{a.detector}</td>
              <td>{agentName(a.agent_id)}</td>
              <td>{a.task_id ? <a href={`#/timeline/${q(a.task_id)}`}>{short(a.task_id)}</a> : '—'}</td>
              <td class="num">{Math.round(a.confidence * 100)}%</td>
              <td>{a.action}</td>
              <td>
                <details>
                  <summary>evidence</summary>
                  <Json value={a.evidence} />
                </details>
              </td>
              <td>
                {a.acknowledged ? (
                  'acknowledged'
                ) : (
                  <button type="button" onClick={() => void ack(a.id)}>
                    Acknowledge
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}
