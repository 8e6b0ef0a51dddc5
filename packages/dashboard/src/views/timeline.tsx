import { useEffect, useState } from 'preact/hooks';
import { q, type AuditRecord, type Task, type Verdict } from '../api.ts';
import type { Shared } from '../main.tsx';
import { EffectBadge, ErrorNote, Json, agentName, errorText, time } from '../ui.tsx';
import { ContainmentBadges } from './agents.tsx';

interface Call {
  callId: string;
  records: AuditRecord[];
}

const END = new Set(['task.completed', 'task.killed', 'task.revoked', 'task.expired']);
/** what happened to the task between calls: suspensions, lifts, resumptions */
const CONTROL = new Set(['task.suspended', 'task.resumed', 'containment.lifted']);

/** within one call: the policy decision, its signals, the final action, then what followed */
const ORDER: Record<string, number> = { decision: 0, signal: 1, action: 2 };
function byPhase(a: AuditRecord, b: AuditRecord): number {
  return (ORDER[a.kind] ?? 3) - (ORDER[b.kind] ?? 3) || a.seq - b.seq;
}

function Step({ r }: { r: AuditRecord }) {
  const d = r.data;
  if (r.kind === 'decision') return <span>policy <EffectBadge effect={String(d['effect'])} /> · args {JSON.stringify(d['args'])} · policies {(d['policy_ids'] as string[] | undefined)?.join(', ') || '—'}</span>;
  if (r.kind === 'signal') {
    const sev = String(d['severity']);
    return (
      <span class="signal">
        <span class={`badge severity-${sev}`}>{sev}</span> <strong>{String(d['detector'])}</strong> <span class="muted">confidence {Math.round(Number(d['confidence']) * 100)}%</span>
        <details>
          <summary>evidence</summary>
          <Json value={d['evidence']} />
        </details>
      </span>
    );
  }
  if (r.kind === 'action') {
    const containment = (d['containment'] as string[] | undefined) ?? [];
    const policy = d['policy_effect'] === undefined ? undefined : String(d['policy_effect']);
    return (
      <span>
        {String(d['final'])} <EffectBadge effect={String(d['effect'])} />
        {policy !== undefined && policy !== d['effect'] && <span class="muted"> (policy said {policy})</span>}
        {containment.length > 0 && <span> · containment {containment.join(', ')}</span>}
        {(d['reasons'] as string[] | undefined)?.length ? <span class="muted"> · {(d['reasons'] as string[]).join(', ')}</span> : null}
      </span>
    );
  }
  if (r.kind === 'outcome') {
    return (
      <span>
        result {d['is_error'] === true ? <span class="badge effect-deny">error</span> : <span class="badge effect-allow">ok</span>} · output {String(d['trust'])} <code class="muted small">{String(d['result_digest']).slice(0, 20)}…</code>
      </span>
    );
  }
  if (r.kind === 'alert.acknowledged') return <span>by {String(d['by'])}{d['note'] ? `: “${String(d['note'])}”` : ''} <a href="#/alerts">alerts</a></span>;
  if (r.kind === 'containment.lifted') {
    const lifted = (d['lifted'] as { action?: unknown; tool?: unknown }[] | undefined) ?? [];
    return (
      <span>
        {lifted.map((x) => `${String(x.action)}${x.tool ? ` ${String(x.tool)}` : ''}`).join(', ') || 'suspension'} lifted by {String(d['by'])}: “{String(d['reason'])}”
      </span>
    );
  }
  if (r.kind.startsWith('approval.')) return <span>{r.kind.slice(9)}{d['by'] ? ` by ${String(d['by'])}` : ''}{d['reason'] ? `: ${String(d['reason'])}` : ''}</span>;
  return null;
}

function phaseOf(r: AuditRecord): string {
  if (r.kind === 'decision') return 'decision';
  if (r.kind === 'signal') return 'signal';
  if (r.kind === 'action') return 'final action';
  if (r.kind === 'outcome') return 'outcome';
  if (r.kind === 'alert.acknowledged') return 'alert acknowledged';
  if (r.kind === 'containment.lifted') return 'containment lifted';
  if (r.kind.startsWith('approval.')) return 'approval';
  return r.kind;
}

function Picker({ shared }: { shared: Shared }) {
  const [tasks, setTasks] = useState<Task[]>([]);
  const [id, setId] = useState('');
  useEffect(() => {
    shared.api.get<{ tasks: Task[] }>('/v1/tasks?limit=100').then((r) => setTasks(r.tasks), () => undefined);
  }, [shared.api]);
  return (
    <form
      class="toolbar"
      onSubmit={(e) => {
        e.preventDefault();
        if (id.trim()) shared.go(`#/timeline/${q(id.trim())}`);
      }}
    >
      <label class="field inline">
        Task id
        <input list="task-ids" value={id} onInput={(e) => setId((e.target as HTMLInputElement).value)} />
        <datalist id="task-ids">
          {tasks.map((t) => (
            <option key={t.id} value={t.id}>
              {agentName(t.agent_id)}: {t.mandate.purpose}
            </option>
          ))}
        </datalist>
      </label>
      <button type="submit">Open timeline</button>
      <ul class="plain">
        {tasks.slice(0, 20).map((t) => (
          <li key={t.id}>
            <a href={`#/timeline/${q(t.id)}`}>{t.id}</a> — {agentName(t.agent_id)}, {t.state}: {t.mandate.purpose}
          </li>
        ))}
      </ul>
    </form>
  );
}

export function TimelineView({ shared, taskId }: { shared: Shared; taskId: string | undefined }) {
  const [task, setTask] = useState<Task>();
  const [records, setRecords] = useState<AuditRecord[]>([]);
  const [verdict, setVerdict] = useState<Verdict>();
  const [error, setError] = useState<string>();

  useEffect(() => {
    if (!taskId) return;
    let live = true;
    Promise.all([
      shared.api.get<Task>(`/v1/tasks/${q(taskId)}`),
      shared.api.get<{ records: AuditRecord[] }>(`/v1/audit?task_id=${q(taskId)}&limit=10000`),
      shared.api.get<Verdict>('/v1/audit/verify'),
    ]).then(
      ([t, a, v]) => {
        if (!live) return;
        setTask(t);
        setRecords(a.records);
        setVerdict(v);
        setError(undefined);
      },
      (e: unknown) => live && setError(errorText(e)),
    );
    return () => {
      live = false;
    };
  }, [shared.api, taskId, shared.version]);

  if (!taskId) return <Picker shared={shared} />;

  const intent = records.filter((r) => r.kind === 'task.started' || r.kind === 'task.delegated' || r.kind === 'task.renewed');
  const calls: Call[] = [];
  for (const r of records) {
    if (r.call_id === null) continue;
    let c = calls.find((x) => x.callId === r.call_id);
    if (!c) calls.push((c = { callId: r.call_id, records: [] }));
    c.records.push(r);
  }
  const end = records.filter((r) => END.has(r.kind));
  const control = records.filter((r) => CONTROL.has(r.kind));

  return (
    <>
      <ErrorNote error={error} />
      {verdict && (
        <p class={`verify ${verdict.ok ? 'ok' : 'broken'}`} role="status">
          Audit chain {verdict.ok ? 'verified' : 'BROKEN'}: {verdict.records} records, {verdict.checkpoints_verified} signed checkpoint(s)
          {verdict.ok && verdict.unanchored ? `; the last ${verdict.unanchored.records} (since ${verdict.unanchored.since}) not yet covered by a checkpoint` : null}
          {verdict.problem ? <Json value={verdict.problem} /> : null}
        </p>
      )}
      {task && (
        <section aria-labelledby="intent-h" class="phase">
          <h2 id="intent-h">1. Intent</h2>
          <p>
            <strong>{agentName(task.agent_id)}</strong> declared: “{task.mandate.purpose}”
          </p>
          <p class="muted small">
            {task.id} · environment {task.mandate.environment} · tools {task.mandate.tools.map((t) => t.name).join(', ')} · data {task.mandate.data_classes.join(', ') || 'none'}
            {task.parent_id ? ` · delegated from ${task.parent_id}` : ''}
          </p>
          <ul class="plain">
            {intent.map((r) => (
              <li key={r.seq}>
                {time(r.ts)} {r.kind} <span class="muted">#{r.seq}</span>
              </li>
            ))}
          </ul>
        </section>
      )}
      <section aria-labelledby="calls-h" class="phase">
        <h2 id="calls-h">2. Calls, decisions, signals and final actions ({calls.length})</h2>
        <ol class="calls">
          {calls.map((c) => {
            const d = c.records.find((r) => r.kind === 'decision');
            const act = c.records.find((r) => r.kind === 'action');
            const final = act ?? d;
            const signals = c.records.filter((r) => r.kind === 'signal').length;
            return (
              <li key={c.callId} data-call-id={c.callId}>
                <div class="call-head">
                  <code>{d ? String(d.data['tool']) : c.callId}</code> {final && <EffectBadge effect={String(final.data['effect'])} />}{' '}
                  {signals > 0 && <span class="badge severity-medium">{signals} signal(s)</span>}{' '}
                  <span class="muted">{((final?.data['reasons'] ?? d?.data['reasons']) as string[] | undefined)?.join(', ')}</span>
                </div>
                <ul class="plain steps">
                  {[...c.records].sort(byPhase).map((r) => (
                    <li key={r.seq} class={`step step-${r.kind.replace('.', '-')}`}>
                      <span class="muted">
                        {time(r.ts)} #{r.seq}
                      </span>{' '}
                      <strong>{phaseOf(r)}</strong> <Step r={r} />
                    </li>
                  ))}
                </ul>
              </li>
            );
          })}
        </ol>
      </section>
      <section aria-labelledby="outcome-h" class="phase">
        <h2 id="outcome-h">3. Outcome</h2>
        {end.length === 0 ? (
          <p>{task ? `The task is ${task.state}.` : '…'}</p>
        ) : (
          end.map((r) => (
            <p key={r.seq}>
              {time(r.ts)} <strong>{r.kind.replace('task.', '')}</strong> {r.data['reason'] ? `— ${String(r.data['reason'])}` : ''} <span class="muted">#{r.seq}</span>
            </p>
          ))
        )}
        {control.length > 0 && (
          <ul class="plain control-steps">
            {control.map((r) => (
              <li key={r.seq}>
                {time(r.ts)} <strong>{phaseOf(r)}</strong> {r.kind === 'containment.lifted' ? <Step r={r} /> : r.data['reason'] ? `— ${String(r.data['reason'])}` : ''} <span class="muted">#{r.seq}</span>
              </li>
            ))}
          </ul>
        )}
        {task?.containment && (
          <div class="containment-line">
            Containment: <ContainmentBadges c={task.containment} />
          </div>
        )}
      </section>
    </>
  );
}
