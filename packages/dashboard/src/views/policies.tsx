import { useEffect, useState } from 'preact/hooks';
import type { PolicyView, ShadowReport } from '../api.ts';
import type { Shared } from '../main.tsx';
import { ReloadPolicies } from './reload.tsx';
import { EffectBadge, ErrorNote, errorText, short, time } from '../ui.tsx';

export function PoliciesView({ shared }: { shared: Shared }) {
  const [set, setSet] = useState<PolicyView>();
  const [draft, setDraft] = useState('');
  const [validation, setValidation] = useState<{ ok: boolean; version?: string; policies?: number; problems: { message: string }[] }>();
  const [shadow, setShadow] = useState<ShadowReport>();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();

  const [loaded, setLoaded] = useState(0);
  useEffect(() => {
    shared.api.get<PolicyView>('/v1/policies').then(
      (p) => {
        setSet(p);
        setError(undefined);
        setDraft((d) => (d === '' ? p.policies.map((x) => x.text).join('\n\n') : d));
      },
      (e: unknown) => setError(errorText(e)),
    );
  }, [shared.api, loaded]);

  const body = () => ({ policies: [{ source: 'draft.cedar', text: draft }], tools: { tools: set?.tools ?? [] } });
  // a result speaks of the draft it was run on: an edit clears it, so no stale verdict stays on screen
  const edit = (text: string) => {
    setDraft(text);
    setValidation(undefined);
    setShadow(undefined);
  };
  const run = async (what: 'validate' | 'shadow') => {
    setBusy(true);
    setError(undefined);
    // each run replaces what the last one said, success or failure
    if (what === 'validate') setValidation(undefined);
    else setShadow(undefined);
    try {
      if (what === 'validate') setValidation(await shared.api.post('/v1/policies/validate', body()));
      else setShadow(await shared.api.post<ShadowReport>('/v1/policies/shadow', { ...body(), limit: 2000 }));
    } catch (e) {
      setError(errorText(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <>
      <ErrorNote error={error} />
      <section aria-labelledby="loaded-h">
        <h2 id="loaded-h">Loaded policy set</h2>
        <p>
          Version <code class="version">{set?.version ?? '…'}</code>, {set?.policies.length ?? 0} policies
        </p>
        <table>
          <thead>
            <tr>
              <th scope="col">Policy</th>
              <th scope="col">Effect</th>
              <th scope="col">Source</th>
            </tr>
          </thead>
          <tbody>
            {set?.policies.map((p) => (
              <tr key={p.id}>
                <th scope="row">
                  <code>{p.id}</code>
                </th>
                <td>{p.step_up ? `${p.effect} (step-up)` : p.effect}</td>
                <td>{p.source}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
      <ReloadPolicies shared={shared} onReloaded={() => setLoaded((n) => n + 1)} />
      <section aria-labelledby="draft-h">
        <h2 id="draft-h">Draft</h2>
        <label class="field">
          Draft policies (Cedar)
          <textarea rows={14} spellcheck={false} value={draft} onInput={(e) => edit((e.target as HTMLTextAreaElement).value)} />
        </label>
        <div class="actions">
          <button type="button" disabled={busy} onClick={() => void run('validate')}>
            Validate
          </button>
          <button type="button" class="primary" disabled={busy} onClick={() => void run('shadow')}>
            Run in shadow mode
          </button>
        </div>
        {validation && (
          <div role="status" class={validation.ok ? 'ok' : 'error'}>
            {validation.ok ? `Valid: ${validation.policies ?? 0} policies, version ${short(validation.version, 24)}` : 'Invalid:'}
            <ul>
              {validation.problems.map((p, i) => (
                <li key={i}>{p.message}</li>
              ))}
            </ul>
          </div>
        )}
      </section>
      {shadow && (
        <section aria-labelledby="shadow-h">
          <h2 id="shadow-h">Shadow evaluation</h2>
          {!shadow.ok ? (
            <div class="error" role="alert">
              The draft is invalid:
              <ul>
                {shadow.problems?.map((p, i) => (
                  <li key={i}>{p.message}</li>
                ))}
              </ul>
            </div>
          ) : (
            <>
              <p role="status">
                {shadow.examined} recent decisions examined: <strong>{shadow.counts?.diverged ?? 0} would change</strong>, {shadow.counts?.same ?? 0} unchanged, {shadow.counts?.not_evaluated ?? 0} decided before policy,{' '}
                {shadow.counts?.unreconstructable ?? 0} could not be rebuilt.
              </p>
              <table class="shadow">
                <thead>
                  <tr>
                    <th scope="col">Time</th>
                    <th scope="col">Tool</th>
                    <th scope="col">Recorded</th>
                    <th scope="col">Draft</th>
                    <th scope="col">Status</th>
                    <th scope="col">Why</th>
                  </tr>
                </thead>
                <tbody>
                  {shadow.records?.map((r) => (
                    <tr key={r.seq} class={`shadow-${r.status}`}>
                      <td>{time(r.ts)}</td>
                      <td>
                        <code>{r.tool ?? '—'}</code>
                      </td>
                      <td>
                        <EffectBadge effect={r.recorded.effect} /> {r.recorded.reasons.join(', ')}
                      </td>
                      <td>{r.draft ? <><EffectBadge effect={r.draft.outcome} /> {r.draft.reason} {r.draft.policy_ids.join(', ')}</> : '—'}</td>
                      <td>{r.status.replace('_', ' ')}</td>
                      <td class="small">{r.note ?? ''}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
              <details>
                <summary>Assumptions</summary>
                <ul>
                  {shadow.assumptions?.map((a) => (
                    <li key={a}>{a}</li>
                  ))}
                </ul>
              </details>
            </>
          )}
        </section>
      )}
    </>
  );
}
