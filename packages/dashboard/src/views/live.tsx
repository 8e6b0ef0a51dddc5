import { useState } from 'preact/hooks';
import type { Decision } from '../api.ts';
import type { Shared } from '../main.tsx';
import { EffectBadge, ErrorNote, Id, When, agentName } from '../ui.tsx';

const EFFECTS = ['all', 'allow', 'deny', 'approval_required'] as const;

export function LiveView({ shared }: { shared: Shared }) {
  const [paused, setPaused] = useState<readonly Decision[] | undefined>();
  const [effect, setEffect] = useState<(typeof EFFECTS)[number]>('all');
  const [text, setText] = useState('');
  const source = paused ?? shared.decisions;
  const needle = text.trim().toLowerCase();
  const rows = source.filter(
    (d) =>
      (effect === 'all' || d.effect === effect) &&
      (needle === '' || [d.agent_id, d.task_id, d.tool, d.call_id, ...d.reasons].some((v) => v?.toLowerCase().includes(needle))),
  );
  const waiting = paused ? shared.decisions.length - paused.length : 0;

  return (
    <section aria-labelledby="live-filters">
      <h2 id="live-filters" class="visually-hidden">
        Filters
      </h2>
      <ErrorNote error={shared.historyError} />
      <div class="toolbar">
        <label class="field inline">
          Outcome
          <select value={effect} onChange={(e) => setEffect((e.target as HTMLSelectElement).value as (typeof EFFECTS)[number])}>
            {EFFECTS.map((x) => (
              <option key={x} value={x}>
                {x === 'approval_required' ? 'needs approval' : x}
              </option>
            ))}
          </select>
        </label>
        <label class="field inline">
          Agent, task, tool or reason contains
          <input type="search" value={text} onInput={(e) => setText((e.target as HTMLInputElement).value)} />
        </label>
        <button type="button" aria-pressed={paused !== undefined} onClick={() => setPaused(paused ? undefined : shared.decisions)}>
          {paused ? 'Resume' : 'Pause'}
        </button>
        <span class="muted" role="status">
          {paused
            ? `Paused; ${Math.max(0, waiting)} new decision(s) waiting`
            : shared.fromHistory === undefined
              ? `${shared.decisions.length} decision(s); reading recent ones from the audit log…`
              : `${shared.decisions.length} decision(s), the newest first, ${shared.fromHistory} read from the audit log at sign-in`}
        </span>
      </div>
      <table class="decisions">
        <caption class="visually-hidden">Live decisions, newest first</caption>
        <thead>
          <tr>
            <th scope="col">Time</th>
            <th scope="col">Agent</th>
            <th scope="col">Task</th>
            <th scope="col">Tool</th>
            <th scope="col">Decision</th>
            <th scope="col">Reason</th>
            <th scope="col">Latency</th>
          </tr>
        </thead>
        <tbody>
          {rows.length === 0 && (
            <tr>
              <td colSpan={7} class="muted">
                No decisions yet. They appear here as agents call tools.
              </td>
            </tr>
          )}
          {rows.map((d) => (
            <tr key={d.call_id + d.ts} class={`row-${d.effect}`} data-call-id={d.call_id}>
              <td>
                <When iso={d.ts} />
              </td>
              <td title={d.agent_id ?? ''}>{agentName(d.agent_id)}</td>
              <td>{d.task_id ? <Id id={d.task_id} href={`#/timeline/${encodeURIComponent(d.task_id)}`} /> : '—'}</td>
              <td>
                <code>{d.tool ?? '—'}</code>
              </td>
              <td>
                <EffectBadge effect={d.effect} />
              </td>
              <td>{d.reasons.length > 0 ? d.reasons.join(', ') : d.policy_ids.join(', ')}</td>
              <td class="num">{d.latency_ms === undefined ? '—' : `${d.latency_ms.toFixed(2)} ms`}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
