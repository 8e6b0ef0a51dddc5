import { render } from 'preact';
import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { allowed, Api, HISTORY_RECORDS, decisionsFromAudit, forgetKey, mergeDecisions, storedKey, storeKey, type AuditRecord, type Decision, type Me } from './api.ts';
import { openStream, type StreamEvent, type StreamStatus } from './stream.ts';
import { ConfirmDialog, ErrorNote, errorText, type ConfirmRequest } from './ui.tsx';
import { LiveView } from './views/live.tsx';
import { AgentsView } from './views/agents.tsx';
import { ApprovalsView } from './views/approvals.tsx';
import { AlertsView } from './views/alerts.tsx';
import { TimelineView } from './views/timeline.tsx';
import { PoliciesView } from './views/policies.tsx';
import { ChartsView } from './views/charts.tsx';
import { SuggestView } from './views/suggest.tsx';
import { OperatorsView } from './views/operators.tsx';

/** live decisions kept in memory: bounded, oldest dropped first */
export const MAX_DECISIONS = 1000;

const ROUTES = [
  { id: 'live', label: 'Live decisions' },
  { id: 'agents', label: 'Agents & tasks' },
  { id: 'approvals', label: 'Approvals' },
  { id: 'alerts', label: 'Alerts' },
  { id: 'timeline', label: 'Task timeline' },
  { id: 'policies', label: 'Policies' },
  { id: 'suggest', label: 'Suggest' },
  { id: 'charts', label: 'Charts' },
  { id: 'operators', label: 'Operator keys' },
] as const;

function readRoute(): { view: string; arg: string | undefined } {
  const [view = 'live', arg] = location.hash.replace(/^#\/?/, '').split('/');
  return { view: ROUTES.some((r) => r.id === view) ? view : 'live', arg: arg === undefined || arg === '' ? undefined : decodeURIComponent(arg) };
}

export interface Shared {
  readonly api: Api;
  /** recent decisions from the audit log, then every one the stream brings, newest first */
  readonly decisions: readonly Decision[];
  /** how many of `decisions` came from the audit log at sign-in (undefined while loading) */
  readonly fromHistory: number | undefined;
  readonly historyError: string | undefined;
  /** changes whenever an approval, task, kill or alert event arrives: views refresh on it */
  readonly version: number;
  readonly alerts: readonly Record<string, unknown>[];
  /** the signed-in key and what its role may do (undefined until the server said): actions it may not take are not shown */
  readonly me: Me | undefined;
  confirm(r: ConfirmRequest): void;
  go(hash: string): void;
}

function Login({ onKey }: { onKey: (k: string) => void }) {
  const [key, setKey] = useState('');
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      await new Api(key.trim()).get('/v1/kill');
      storeKey(key.trim());
      onKey(key.trim());
    } catch (err) {
      setError(`Sign-in failed: ${errorText(err)}`);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main id="main" class="login">
      <h1>Mandate operator dashboard</h1>
      <form onSubmit={submit} aria-describedby="login-help">
        <label class="field">
          Operator API key
          <input type="password" name="key" autocomplete="off" required value={key} onInput={(e) => setKey((e.target as HTMLInputElement).value)} />
        </label>
        <p id="login-help" class="muted">
          The key is kept in this tab's session storage only and sent in the Authorization header.
        </p>
        <ErrorNote error={error} />
        <button type="submit" disabled={busy || key.trim() === ''}>
          Sign in
        </button>
      </form>
    </main>
  );
}

function Shell({ api, onLogout }: { api: Api; onLogout: () => void }) {
  const [route, setRoute] = useState(readRoute);
  const [status, setStatus] = useState<StreamStatus>('connecting');
  const [decisions, setDecisions] = useState<Decision[]>([]);
  const [fromHistory, setFromHistory] = useState<number>();
  const [historyError, setHistoryError] = useState<string>();
  const [alerts, setAlerts] = useState<Record<string, unknown>[]>([]);
  const [version, setVersion] = useState(0);
  const [confirm, setConfirm] = useState<ConfirmRequest>();
  const [me, setMe] = useState<Me>();
  const [meError, setMeError] = useState<string>();
  const heading = useRef<HTMLHeadingElement>(null);

  // who this key is and what its role may do: the views offer only those actions
  useEffect(() => {
    let live = true;
    api.get<Me>('/v1/operators/me').then(
      (m) => live && setMe(m),
      (e: unknown) => live && setMeError(`This key's role could not be read, so no action is offered: ${errorText(e)}`),
    );
    return () => {
      live = false;
    };
  }, [api]);

  useEffect(() => {
    const on = () => {
      setRoute(readRoute());
      // move focus to the new view's heading, as a page load would
      queueMicrotask(() => heading.current?.focus());
    };
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);

  useEffect(
    () =>
      openStream(api.key, {
        onStatus: (s) => {
          setStatus(s);
          if (s === 'unauthorized') onLogout();
        },
        onEvent: (e: StreamEvent) => {
          if (e.type === 'decision') setDecisions((d) => [e.data as unknown as Decision, ...d].slice(0, MAX_DECISIONS));
          else {
            if (e.type === 'alert') setAlerts((a) => [e.data, ...a].slice(0, 200));
            setVersion((v) => v + 1);
          }
        },
      }),
    [api],
  );

  // decisions made before this tab signed in: the newest audit records (the stream only brings new ones)
  useEffect(() => {
    let live = true;
    api.get<{ records: AuditRecord[] }>(`/v1/audit?tail=true&limit=${HISTORY_RECORDS}`).then(
      (r) => {
        if (!live) return;
        const history = decisionsFromAudit(r.records);
        setDecisions((d) => mergeDecisions(d, history, MAX_DECISIONS));
        setFromHistory(history.length);
        setHistoryError(undefined);
      },
      (e: unknown) => live && setHistoryError(`Recent decisions could not be read from the audit log: ${errorText(e)}`),
    );
    return () => {
      live = false;
    };
  }, [api]);

  const go = useCallback((hash: string) => {
    location.hash = hash;
  }, []);
  const shared: Shared = { api, decisions, fromHistory, historyError, version, alerts, me, confirm: setConfirm, go };
  const current = ROUTES.find((r) => r.id === route.view) ?? ROUTES[0];

  return (
    <>
      <a class="skip" href="#main" onClick={(e) => { e.preventDefault(); heading.current?.focus(); }}>
        Skip to content
      </a>
      <header class="top">
        <span class="brand">Mandate</span>
        <nav aria-label="Views">
          <ul>
            {ROUTES.filter((r) => r.id !== 'operators' || allowed(me, 'manage_keys')).map((r) => (
              <li key={r.id}>
                <a href={`#/${r.id}`} aria-current={r.id === route.view ? 'page' : undefined}>
                  {r.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <span class={`stream stream-${status}`} role="status" aria-live="polite">
          Stream: {status}
        </span>
        {me && (
          <span class="whoami" data-role={me.role} title={me.id}>
            {me.name} ({me.role})
          </span>
        )}
        <button type="button" onClick={onLogout}>
          Sign out
        </button>
      </header>
      <main id="main">
        <h1 ref={heading} tabIndex={-1}>
          {current.label}
        </h1>
        <ErrorNote error={meError} />
        {route.view === 'live' && <LiveView shared={shared} />}
        {route.view === 'agents' && <AgentsView shared={shared} />}
        {route.view === 'approvals' && <ApprovalsView shared={shared} />}
        {route.view === 'alerts' && <AlertsView shared={shared} />}
        {route.view === 'timeline' && <TimelineView shared={shared} taskId={route.arg} />}
        {route.view === 'policies' && <PoliciesView shared={shared} />}
        {route.view === 'suggest' && <SuggestView shared={shared} />}
        {route.view === 'charts' && <ChartsView shared={shared} />}
        {route.view === 'operators' && <OperatorsView shared={shared} />}
      </main>
      <ConfirmDialog request={confirm} onClose={() => setConfirm(undefined)} />
    </>
  );
}

function App() {
  const [key, setKey] = useState(storedKey);
  const api = useMemo(() => (key === null ? undefined : new Api(key)), [key]);
  const logout = useCallback(() => {
    forgetKey();
    setKey(null);
  }, []);
  if (api === undefined) return <Login onKey={setKey} />;
  return <Shell api={api} onLogout={logout} />;
}

const root = document.getElementById('app');
if (root) render(<App />, root);
