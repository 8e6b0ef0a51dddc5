import { useState } from 'preact/hooks';
import { allowed } from '../api.ts';
import type { Shared } from '../main.tsx';
import { ErrorNote, Id, errorText } from '../ui.tsx';

/** `POST /v1/policies/reload`'s answer */
export interface ReloadResult {
  version: string;
  previous_version: string;
  policies: number;
  suspended_tasks: string[];
  shadow_version?: string;
}

/**
 * Re-reads the server's policy folder (admin role). The server refuses an empty set unless
 * "allow empty" is ticked, keeps the running set on any problem, and audits every attempt; tasks
 * the new set no longer allows are suspended, and listed here.
 */
export function ReloadPolicies({ shared, onReloaded }: { shared: Shared; onReloaded: () => void }) {
  const [allowEmpty, setAllowEmpty] = useState(false);
  const [result, setResult] = useState<ReloadResult>();
  const [error, setError] = useState<string>();

  const reload = () =>
    shared.confirm({
      title: 'Reload the policy set?',
      body: (
        <p>
          The server re-reads its policy folder and puts the new set in force for every call from now on.
          {allowEmpty ? ' An empty folder is accepted: every call will be denied.' : ' An empty or invalid folder is refused and the running set stays.'}
        </p>
      ),
      confirmLabel: 'Reload',
      onConfirm: async () => {
        setResult(undefined);
        setError(undefined);
        try {
          setResult(await shared.api.post<ReloadResult>('/v1/policies/reload', allowEmpty ? { allow_empty: true } : {}));
          onReloaded();
        } catch (e) {
          setError(`Reload refused; the running set stays in force. ${errorText(e)}`);
        }
      },
    });

  // a key whose role cannot reload is not offered the button
  if (!allowed(shared.me, 'reload_policies')) return null;
  return (
    <section aria-labelledby="reload-h">
      <h2 id="reload-h">Reload from the policy folder</h2>
      <p class="muted small">Needs the admin role. Every attempt, refused or not, is recorded in the audit log.</p>
      <div class="toolbar">
        <label class="field inline">
          <span>
            <input type="checkbox" checked={allowEmpty} onChange={(e) => setAllowEmpty((e.target as HTMLInputElement).checked)} /> Allow an empty set (denies every call)
          </span>
        </label>
        <button type="button" class="primary" onClick={reload}>
          Reload policies
        </button>
      </div>
      <ErrorNote error={error} />
      {result && (
        <div role="status" class="card reload-result">
          <p class="ok">
            Reloaded: {result.policies} {result.policies === 1 ? 'policy' : 'policies'}, version <code class="version">{result.version}</code>
            {result.version === result.previous_version ? ' (unchanged)' : <> (was <code class="version">{result.previous_version}</code>)</>}
          </p>
          {result.suspended_tasks.length > 0 ? (
            <>
              <p>{result.suspended_tasks.length} task(s) the new set no longer allows were suspended:</p>
              <ul class="plain">
                {result.suspended_tasks.map((t) => (
                  <li key={t}>
                    <Id id={t} n={24} href={`#/timeline/${encodeURIComponent(t)}`} />
                  </li>
                ))}
              </ul>
            </>
          ) : (
            <p>No task was suspended.</p>
          )}
        </div>
      )}
    </section>
  );
}
