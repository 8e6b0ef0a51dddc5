/** Builders for realistic call traces, so each detector test reads like the story it tells. */
import { behaviourCoreConfigSchema, BehaviourHistory, purposeWords, type CallEvent, type DetectorInput, type Effect, type TaskProfile } from '../../src/index.ts';
import { markChains, stepHits, type ChainsConfig } from '../../src/behaviour/chains.ts';
import { TaskHistory } from '../../src/behaviour/history.ts';
import { Scope } from '../../src/behaviour/scope.ts';

export const T0 = Date.UTC(2026, 10, 2, 10, 0, 0);
export const config = () => behaviourCoreConfigSchema.parse({});

/** the organisation's catalogue, as tools.yaml would classify these tools */
export const CATALOG: Record<string, { category: string; risk: string; dataClasses: string[] }> = {
  'helpdesk.search_tickets': { category: 'read', risk: 'low', dataClasses: ['internal'] },
  'helpdesk.get_ticket': { category: 'read', risk: 'medium', dataClasses: ['internal', 'customer-pii'] },
  'helpdesk.draft_reply': { category: 'write', risk: 'medium', dataClasses: ['internal'] },
  'helpdesk.export_tickets': { category: 'read', risk: 'medium', dataClasses: ['customer-pii'] },
  'helpdesk.delete_ticket': { category: 'write', risk: 'high', dataClasses: ['internal'] },
  'vault.read_secret': { category: 'read', risk: 'high', dataClasses: ['secret'] },
  'http.post': { category: 'external_sink', risk: 'high', dataClasses: [] },
  'mail.send': { category: 'external_sink', risk: 'high', dataClasses: ['internal'] },
  'kb.search': { category: 'read', risk: 'low', dataClasses: ['internal'] },
  'shell.exec': { category: 'exec', risk: 'critical', dataClasses: [] },
  'payments.transfer': { category: 'payment', risk: 'high', dataClasses: ['financial'] },
  'billing.charge_card': { category: 'payment', risk: 'high', dataClasses: ['financial'] },
  'fs.delete_file': { category: 'destructive', risk: 'high', dataClasses: ['internal'] },
  'crm.update_contact': { category: 'write', risk: 'medium', dataClasses: ['customer-pii'] },
};

let seq = 0;
export function call(tool: string, at: number, over: Partial<CallEvent> = {}): CallEvent {
  seq += 1;
  const c = CATALOG[tool] ?? { category: 'unknown', risk: 'unknown', dataClasses: [] };
  return {
    ts: at,
    callId: `call-${seq}`,
    tool,
    category: c.category,
    risk: c.risk,
    dataClasses: c.dataClasses,
    resourceKind: 'ticket',
    argShape: `${tool}(query:string)`,
    untrustedArgs: [],
    policyEffect: 'allow' as Effect,
    argsHash: `sha256:${tool}`,
    ...over,
    denied: over.denied ?? over.policyEffect === 'deny',
  };
}

/** a scope that admitted `calls` one by one, as the monitor does (chain marks by `chains`) */
export function scopeOf(kind: 'task' | 'agent', id: string, calls: readonly CallEvent[], chains: ChainsConfig = config().detectors.chains): Scope {
  const s = kind === 'task' ? new TaskHistory(id, 256, 10_000) : new Scope('agent', id, 256, 10_000);
  for (const c of calls) {
    s.admit(c);
    markChains(s, chains.rules, c, stepHits(chains.rules, c), c.ts);
  }
  return s;
}

export function profile(purpose: string, over: Partial<TaskProfile> = {}): TaskProfile {
  return {
    taskId: 'task-1',
    agentId: 'spiffe://acme.test/agents/triage',
    agentType: 'support',
    purpose,
    purposeWords: purposeWords(purpose),
    declaredTools: new Set(Object.keys(CATALOG)),
    startedAt: T0,
    declaredCalls: 200,
    declaredScale: undefined,
    ...over,
  };
}

/**
 * The input for the last call of `calls`, the others being its history: the task's scope (and,
 * with `agentCalls`, the agent's, holding those calls and the task's), chain marks made by `chains`.
 */
export function input(purpose: string, calls: CallEvent[], over: Partial<DetectorInput> = {}, chains: ChainsConfig = config().detectors.chains, agentCalls?: CallEvent[]): DetectorInput {
  const last = calls[calls.length - 1];
  if (last === undefined) throw new Error('a trace needs at least one call');
  const history = calls.slice(0, -1);
  const scopes = [scopeOf('task', 'task-1', history, chains)];
  if (agentCalls !== undefined) scopes.push(scopeOf('agent', 'spiffe://acme.test/agents/triage', [...agentCalls, ...history].sort((a, b) => a.ts - b.ts), chains));
  return {
    now: last.ts,
    task: profile(purpose),
    history,
    scopes,
    call: last,
    baseline: new BehaviourHistory().baseline('support'),
    volume: { records: 0, bytes: 0, results: 0 },
    ...over,
  };
}

export const TRIAGE = 'Triage new support tickets for ACME: search and read them, and summarise each for the on-call team.';
