import { useState } from 'preact/hooks';
import type { Shared } from '../main.tsx';
import { ErrorNote, errorText } from '../ui.tsx';

/** What POST /v1/mandates/suggest answers (the parts this view shows). */
interface DenialCount {
  denied: number;
  budget: number;
  byReason: Record<string, number>;
}
interface DenialReport {
  tasks: number;
  calls: number;
  ceiling: DenialCount;
  template: DenialCount;
  cluster: DenialCount & { unmatchedTasks: number };
}
interface AgentSuggestion {
  agent: string;
  tasks: number;
  calls: number;
  ceiling: { tools?: string[]; data_classes?: string[]; max_calls?: number };
  clusters: { id: string; words: string[]; tasks: number }[];
  rules: { tool: string; arg: string; rule: string; seen: number; distinct: number; constrained: boolean }[];
  skipped: string[];
}
interface SuggestAnswer {
  agents: AgentSuggestion[];
  training?: DenialReport;
  evaluation?: DenialReport;
  yaml: string;
}

/** `datetime-local` input (local time) → ISO with offset, or undefined when empty */
function iso(local: string): string | undefined {
  if (local === '') return undefined;
  const t = new Date(local);
  return Number.isNaN(t.getTime()) ? undefined : t.toISOString();
}

function Report({ title, r }: { title: string; r: DenialReport }) {
  const pct = (n: number) => (r.calls === 0 ? '—' : `${((100 * n) / r.calls).toFixed(1)} %`);
  return (
    <tr>
      <th scope="row">{title}</th>
      <td>{r.tasks}</td>
      <td>{r.calls}</td>
      <td>{pct(r.ceiling.denied)}</td>
      <td>
        {pct(r.template.denied)} {r.template.budget > 0 ? `(${r.template.budget} for a budget)` : ''}
      </td>
      <td>{pct(r.cluster.denied)}</td>
    </tr>
  );
}

export function SuggestView({ shared }: { shared: Shared }) {
  const [since, setSince] = useState('');
  const [until, setUntil] = useState('');
  const [evaluateUntil, setEvaluateUntil] = useState('');
  const [agent, setAgent] = useState('');
  const [answer, setAnswer] = useState<SuggestAnswer>();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();

  const run = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const body = { source: 'audit', since: iso(since), until: iso(until), evaluate_until: iso(evaluateUntil), agent: agent.trim() === '' ? undefined : agent.trim() };
      setAnswer(await shared.api.post<SuggestAnswer>('/v1/mandates/suggest', JSON.parse(JSON.stringify(body))));
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <>
      <ErrorNote error={error} />
      <section aria-labelledby="suggest-h">
        <h2 id="suggest-h">Suggest ceilings and mandates</h2>
        <p>Learns, from the allowed calls in the audit log, the smallest ceiling and mandate template per agent that would have allowed them, and what they would deny of a later window.</p>
        <form onSubmit={(e) => void run(e)}>
          <label class="field">
            From
            <input type="datetime-local" value={since} onInput={(e) => setSince((e.target as HTMLInputElement).value)} />
          </label>
          <label class="field">
            Until
            <input type="datetime-local" value={until} onInput={(e) => setUntil((e.target as HTMLInputElement).value)} />
          </label>
          <label class="field">
            Judge a later window until
            <input type="datetime-local" value={evaluateUntil} onInput={(e) => setEvaluateUntil((e.target as HTMLInputElement).value)} />
          </label>
          <label class="field">
            Agent (optional)
            <input type="text" value={agent} placeholder="spiffe://…" onInput={(e) => setAgent((e.target as HTMLInputElement).value)} />
          </label>
          <div class="actions">
            <button type="submit" class="primary" disabled={busy}>
              Suggest
            </button>
          </div>
        </form>
      </section>
      {answer && (
        <section aria-labelledby="suggested-h">
          <h2 id="suggested-h">Suggested for {answer.agents.length} agent(s)</h2>
          <table>
            <thead>
              <tr>
                <th scope="col">Window</th>
                <th scope="col">Tasks</th>
                <th scope="col">Calls</th>
                <th scope="col">Denied by the ceiling</th>
                <th scope="col">by the template</th>
                <th scope="col">by the cluster templates</th>
              </tr>
            </thead>
            <tbody>
              {answer.training && <Report title="Learnt from" r={answer.training} />}
              {answer.evaluation && <Report title="Later window" r={answer.evaluation} />}
            </tbody>
          </table>
          {answer.agents.map((a) => (
            <details key={a.agent} open={answer.agents.length === 1}>
              <summary>
                <code>{a.agent}</code>: {a.tasks} task(s), {a.calls} call(s), {a.ceiling.tools?.length ?? 0} tool(s), {a.clusters.length} purpose cluster(s)
              </summary>
              <table>
                <thead>
                  <tr>
                    <th scope="col">Tool</th>
                    <th scope="col">Argument</th>
                    <th scope="col">Rule</th>
                    <th scope="col">Values seen (distinct)</th>
                  </tr>
                </thead>
                <tbody>
                  {a.rules.map((r) => (
                    <tr key={`${r.tool} ${r.arg}`} class={r.constrained ? '' : 'open'}>
                      <td>
                        <code>{r.tool}</code>
                      </td>
                      <td>
                        <code>{r.arg}</code>
                      </td>
                      <td>{r.constrained ? r.rule : `${r.rule} (left open)`}</td>
                      <td>
                        {r.seen} ({r.distinct})
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
              {a.skipped.length > 0 && (
                <ul>
                  {a.skipped.map((s) => (
                    <li key={s}>{s}</li>
                  ))}
                </ul>
              )}
            </details>
          ))}
          <details>
            <summary>YAML (ceilings, templates, reports)</summary>
            <pre class="yaml">{answer.yaml}</pre>
          </details>
        </section>
      )}
    </>
  );
}
