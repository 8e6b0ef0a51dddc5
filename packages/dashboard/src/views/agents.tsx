import { useEffect, useState } from 'preact/hooks';
import type { ComponentChildren } from 'preact';
import { allowed, q, type Agent, type AuditRecord, type Containment, type Task } from '../api.ts';
import type { Shared } from '../main.tsx';
import { ErrorNote, Id, When, agentName, errorText, time } from '../ui.tsx';

interface Budget {
  used: number;
  limit: number | undefined;
}

/** Behavioural containment of a task, as badges: restrictions accumulate until an admin lifts them. */
export function ContainmentBadges({ c }: { c: Containment | undefined }) {
  if (!c) return <span class="muted">—</span>;
  const parts: ComponentChildren[] = [];
  if (c.killed) parts.push(<span class="badge state-killed">killed</span>);
  if (c.suspended) parts.push(<span class="badge state-killed">suspended</span>);
  if (c.step_up) parts.push(<span class="badge state-pending">step-up</span>);
  if (c.narrowed_tools.length > 0) parts.push(<span class="badge state-pending">narrowed: {c.narrowed_tools.join(', ')}</span>);
  if (parts.length === 0) return <span class="muted">none</span>;
  return (
    <div class="containment">
      {parts.map((p, i) => (
        <span key={i}>{p} </span>
      ))}
      <details>
        <summary>{c.restrictions.length} restriction(s)</summary>
        <ul class="plain small">
          {c.restrictions.map((r, i) => (
            <li key={i}>
              {time(r.at)} <strong>{r.action}</strong>
              {r.tool ? <> <code>{r.tool}</code></> : null} by {r.detector}: {r.reason}
            </li>
          ))}
        </ul>
      </details>
    </div>
  );
}

/**
 * Allowed calls of a task, as its budget counts them: by each call's final action (containment
 * can turn a policy allow into a deny, which spends nothing), or its decision where no action
 * record exists.
 */
export function allowedCalls(records: readonly AuditRecord[]): number {
  const final = new Map<string, unknown>();
  for (const r of records) {
    if (r.call_id === null) continue;
    if (r.kind === 'action') final.set(r.call_id, r.data['effect']);
    else if (r.kind === 'decision' && !final.has(r.call_id)) final.set(r.call_id, r.data['effect']);
  }
  let n = 0;
  for (const e of final.values()) if (e === 'allow') n++;
  return n;
}

/** whether a task has behavioural restrictions an admin may lift (never a kill, never an ended task) */
function liftable(t: Task, c: Containment | undefined): boolean {
  if (c === undefined || (t.state !== 'active' && t.state !== 'suspended')) return false;
  return c.step_up || c.suspended || c.narrowed_tools.length > 0;
}

/** tasks whose budget use is recounted from their audit records on each refresh */
const MAX_BUDGET_LOOKUPS = 50;

/** Tasks in delegation-tree order: each parent followed by its children, with their depth. */
function treeOrder(tasks: readonly Task[]): { task: Task; level: number }[] {
  const byParent = new Map<string | null, Task[]>();
  const ids = new Set(tasks.map((t) => t.id));
  for (const t of tasks) {
    const parent = t.parent_id !== null && ids.has(t.parent_id) ? t.parent_id : null;
    byParent.set(parent, [...(byParent.get(parent) ?? []), t]);
  }
  const out: { task: Task; level: number }[] = [];
  const walk = (parent: string | null, level: number) => {
    for (const t of byParent.get(parent) ?? []) {
      out.push({ task: t, level });
      if (level < 16) walk(t.id, level + 1);
    }
  };
  walk(null, 0);
  return out;
}

export function AgentsView({ shared }: { shared: Shared }) {
  const { api } = shared;
  const [agents, setAgents] = useState<Agent[]>([]);
  const [tasks, setTasks] = useState<Task[]>([]);
  const [budgets, setBudgets] = useState<Record<string, Budget>>({});
  const [containment, setContainment] = useState<Record<string, Containment>>({});
  const [stopped, setStopped] = useState(false);
  const [error, setError] = useState<string>();
  const [refresh, setRefresh] = useState(0);

  useEffect(() => {
    let live = true;
    (async () => {
      try {
        const [a, t, k] = await Promise.all([
          api.get<{ agents: Agent[] }>('/v1/agents?limit=500'),
          api.get<{ tasks: Task[] }>('/v1/tasks?limit=500'),
          api.get<{ emergency_stop: boolean }>('/v1/kill'),
        ]);
        if (!live) return;
        setAgents(a.agents);
        setTasks(t.tasks);
        setStopped(k.emergency_stop);
        setError(undefined);
        const counted: Record<string, Budget> = {};
        const contained: Record<string, Containment> = {};
        for (const task of t.tasks.slice(0, MAX_BUDGET_LOOKUPS)) {
          const [r, one] = await Promise.all([api.get<{ records: AuditRecord[] }>(`/v1/audit?task_id=${q(task.id)}&limit=10000`), api.get<Task>(`/v1/tasks/${q(task.id)}`)]);
          counted[task.id] = { used: allowedCalls(r.records), limit: task.mandate.budgets?.calls };
          if (one.containment) contained[task.id] = one.containment;
        }
        if (live) {
          setBudgets(counted);
          setContainment(contained);
        }
      } catch (e) {
        if (live) setError(errorText(e));
      }
    })();
    return () => {
      live = false;
    };
  }, [api, shared.version, refresh]);

  const again = () => setRefresh((n) => n + 1);
  // only what this key's role may do is offered (the server refuses the rest anyway)
  const canKill = allowed(shared.me, 'kill');
  const canUnkill = allowed(shared.me, 'unkill');
  const canLift = allowed(shared.me, 'lift_containment');
  const kill = (title: string, target: Record<string, unknown>, what: string) =>
    shared.confirm({
      title,
      body: <p>{what}</p>,
      confirmLabel: 'Kill',
      reason: true,
      onConfirm: async (reason) => {
        await api.post('/v1/kill', { ...target, reason });
        again();
      },
    });

  const lift = (t: Task) =>
    shared.confirm({
      title: 'Lift this task\u2019s containment?',
      body: (
        <p>
          Step-up, narrowed tools and a suspension made by containment are lifted from {t.id}; a task containment suspended resumes. A kill, a policy deny or a budget is never lifted, and later signals may
          contain the task again. Your reason is recorded in the audit chain.
        </p>
      ),
      confirmLabel: 'Lift',
      reason: true,
      reasonMax: 500,
      onConfirm: async (reason) => {
        await api.post(`/v1/tasks/${q(t.id)}/containment/lift`, { reason });
        again();
      },
    });

  return (
    <>
      <ErrorNote error={error} />
      <section aria-labelledby="estop" class={stopped ? 'estop on' : 'estop'}>
        <h2 id="estop">Emergency stop</h2>
        <p>{stopped ? 'In force: every call and every new task is refused.' : 'Not in force.'}</p>
        {stopped ? canUnkill && (
          <button
            type="button"
            onClick={() =>
              shared.confirm({
                title: 'Lift the emergency stop?',
                body: <p>Calls will be decided by policy again. Killed tasks stay killed.</p>,
                confirmLabel: 'Lift stop',
                reason: true,
                onConfirm: async (reason) => {
                  await api.post('/v1/unkill', { all: true, reason });
                  again();
                },
              })
            }
          >
            Lift emergency stop
          </button>
        ) : canKill && (
          <button type="button" class="danger" onClick={() => kill('Stop everything?', { all: true }, 'Every live task of every agent is killed and every call is refused until the stop is lifted.')}>
            Emergency stop
          </button>
        )}
      </section>

      <section aria-labelledby="agents-h">
        <h2 id="agents-h">Agents</h2>
        <table>
          <thead>
            <tr>
              <th scope="col">Agent</th>
              <th scope="col">Owner</th>
              <th scope="col">Type</th>
              <th scope="col">Status</th>
              <th scope="col">Live tasks</th>
              <th scope="col">
                <span class="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {agents.map((a) => (
              <tr key={a.id} data-agent-id={a.id}>
                <th scope="row" title={a.id}>
                  {agentName(a.id)}
                  <div class="muted small">{a.id}</div>
                </th>
                <td>{a.owner}</td>
                <td>{a.type}</td>
                <td>
                  <span class={`badge status-${a.status}`}>{a.status}</span>
                </td>
                <td class="num">{tasks.filter((t) => t.agent_id === a.id && t.state === 'active').length}</td>
                <td>
                  {a.status === 'active' ? canKill && (
                    <button type="button" class="danger" aria-label={`Kill agent ${agentName(a.id)}`} onClick={() => kill(`Kill agent ${agentName(a.id)}?`, { agent: a.id }, `${a.id} is disabled, and its live tasks and their sub-tasks are killed. Its next call is denied.`)}>
                      Kill agent
                    </button>
                  ) : canUnkill && (
                    <button
                      type="button"
                      aria-label={`Re-enable agent ${agentName(a.id)}`}
                      onClick={() =>
                        shared.confirm({
                          title: `Re-enable ${agentName(a.id)}?`,
                          body: <p>The identity may start new tasks again. Killed tasks stay killed.</p>,
                          confirmLabel: 'Re-enable',
                          reason: true,
                          onConfirm: async (reason) => {
                            await api.post('/v1/unkill', { agent: a.id, reason });
                            again();
                          },
                        })
                      }
                    >
                      Re-enable
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>

      <section aria-labelledby="tasks-h">
        <h2 id="tasks-h">Tasks (delegation tree)</h2>
        <table class="tasks">
          <thead>
            <tr>
              <th scope="col">Task</th>
              <th scope="col">Agent</th>
              <th scope="col">State</th>
              <th scope="col">Mandate</th>
              <th scope="col">Budget used</th>
              <th scope="col">Containment</th>
              <th scope="col">Expires / ended</th>
              <th scope="col">
                <span class="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {treeOrder(tasks).map(({ task: t, level }) => {
              const b = budgets[t.id];
              return (
                <tr key={t.id} data-task-id={t.id} class={t.state === 'active' ? '' : 'ended'}>
                  <th scope="row" class={`level-${Math.min(level, 4)}`}>
                    {level > 0 && <span aria-label={`delegated, depth ${level}`}>↳ </span>}
                    <Id id={t.id} n={18} href={`#/timeline/${q(t.id)}`} />
                  </th>
                  <td title={t.agent_id}>{agentName(t.agent_id)}</td>
                  <td>
                    <span class={`badge state-${t.state}`}>{t.state}</span>
                  </td>
                  <td>
                    <div>{t.mandate.purpose}</div>
                    <div class="muted small">
                      tools: {t.mandate.tools.map((x) => x.name).join(', ')}; data: {t.mandate.data_classes.join(', ') || 'none'}
                    </div>
                  </td>
                  <td class="num">{b ? `${b.used}${b.limit !== undefined ? ` / ${b.limit}` : ''}` : '—'}</td>
                  <td class="containment-cell">
                    <ContainmentBadges c={containment[t.id]} />
                  </td>
                  <td>
                    <When iso={t.state === 'active' ? t.expires_at : t.ended_at} />
                  </td>
                  <td>
                    {canLift && liftable(t, containment[t.id]) && (
                      <button type="button" aria-label={`Lift containment of task ${t.id}`} onClick={() => lift(t)}>
                        Lift containment
                      </button>
                    )}
                    {canKill && t.state === 'active' && (
                      <button type="button" class="danger" aria-label={`Kill task ${t.id}`} onClick={() => kill('Kill this task?', { task: t.id }, `${t.id} and every task delegated from it are killed; their tokens stop working at the next call.`)}>
                        Kill task
                      </button>
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </section>
    </>
  );
}
