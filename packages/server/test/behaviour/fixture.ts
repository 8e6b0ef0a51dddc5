/** A deployment for the behaviour tests: a small catalogue, simple policies, detectors on. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MandateConfigInput } from '@mandate/server';
import { allAuditRecords, startHarness, type AuditRecordBody, type Harness } from '../support.ts';

export const TOOLS = `tools:
  - { name: kb.search, category: read, risk: low, data_classes: [internal], output_trust: trusted }
  - { name: helpdesk.get_ticket, category: read, risk: medium, data_classes: [internal], output_trust: untrusted }
  - { name: helpdesk.export_tickets, category: read, risk: medium, data_classes: [internal], output_trust: trusted }
  - { name: vault.read_secret, category: read, risk: high, data_classes: [secret], output_trust: trusted }
  - { name: http.post, category: external_sink, risk: high, data_classes: [], output_trust: untrusted }
  - { name: shell.exec, category: exec, risk: critical, data_classes: [], output_trust: untrusted }
`;

export const POLICIES = `
@id("org.start")
permit (principal, action == Mandate::Action::"start_task", resource) when { resource.ttl_seconds <= 3600 };

@id("org.call.in-env")
permit (principal, action == Mandate::Action::"call_tool", resource) when { context.environment == context.task.environment };

@id("org.call.no-exec")
forbid (principal, action == Mandate::Action::"call_tool", resource) when { resource.category == "exec" };
`;

export const CEILING = { tools: ['kb.*', 'helpdesk.*', 'vault.*', 'http.*', 'shell.*'], data_classes: ['internal', 'secret'], environments: ['prod'], max_ttl: '1h', max_calls: 1000 };

export const TRIAGE = 'Triage new support tickets: search and read them, and summarise each for the on-call team.';

export function triageMandate(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    purpose: TRIAGE,
    environment: 'prod',
    ttl: '30m',
    tools: [{ name: 'kb.search' }, { name: 'helpdesk.get_ticket' }, { name: 'helpdesk.export_tickets' }, { name: 'vault.read_secret' }, { name: 'http.post' }, { name: 'shell.exec' }],
    data_classes: ['internal', 'secret'],
    budgets: { calls: 500 },
    ...over,
  };
}

export function policyDir(policies = POLICIES): string {
  const dir = mkdtempSync(join(tmpdir(), 'mandate-behaviour-policies-'));
  writeFileSync(join(dir, 'org.cedar'), policies);
  writeFileSync(join(dir, 'tools.yaml'), TOOLS);
  return dir;
}

export async function behaviourHarness(behaviour: Record<string, unknown>, extra: Partial<MandateConfigInput> = {}): Promise<Harness> {
  return startHarness({ config: { policies: { dir: policyDir() }, behaviour: { enabled: true, ...behaviour } as MandateConfigInput['behaviour'], ...extra } });
}

export interface Decided {
  call_id: string;
  effect: string;
  final: string;
  reasons: string[];
  policy_ids: string[];
  policy_effect?: string;
  signals?: { detector: string; severity: string; confidence: number; evidence: Record<string, unknown> }[];
  containment?: string[];
  approval_id: string | null;
}

export async function call(h: Harness, token: string, tool: string, args: Record<string, unknown> = { query: 'refund' }): Promise<Decided> {
  const res = await h.authorize(token, { tool, args, resource: 'ticket:T-1' });
  if (res.statusCode !== 200) throw new Error(`authorize answered ${res.statusCode}: ${res.body}`);
  return res.json<Decided>();
}

export async function recordsOfCall(h: Harness, callId: string): Promise<AuditRecordBody[]> {
  return (await allAuditRecords(h)).filter((r) => r.call_id === callId && ['decision', 'signal', 'action'].includes(r.kind));
}

/** polls until `check` holds (async effects: stored alerts, suspensions, kills) */
export async function eventually<T>(what: string, check: () => Promise<T | undefined | false>, ms = 3000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > until) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
