/**
 * The seed rule against the full engine: for random organisation policies, random call
 * histories and random containment maps (so random signal sets and actions), the final action
 * recorded for every call is never more permissive than the policy decision recorded for it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseCeiling, permissiveness, type Effect } from '@mandate/core';
import { createRuntime, parseConfig } from '@mandate/server';
import { ManualClock, TRUST_DOMAIN } from '../support.ts';
import { CEILING, policyDir, triageMandate } from './fixture.ts';

const TOOLS = ['kb.search', 'helpdesk.get_ticket', 'helpdesk.export_tickets', 'vault.read_secret', 'http.post', 'shell.exec'] as const;
const CATEGORIES = ['read', 'external_sink', 'exec'];

/** per category: permitted, forbidden, or held for a step-up */
const policyArb = fc.record({ read: fc.constantFrom('permit', 'forbid', 'step_up'), external_sink: fc.constantFrom('permit', 'forbid', 'step_up'), exec: fc.constantFrom('permit', 'forbid', 'step_up') });

function policyText(p: Record<string, string>): string {
  const out = ['@id("start")\npermit (principal, action == Mandate::Action::"start_task", resource);'];
  for (const c of CATEGORIES) {
    const when = `when { resource.category == "${c}" }`;
    if (p[c] === 'permit') out.push(`@id("p.${c}")\npermit (principal, action == Mandate::Action::"call_tool", resource) ${when};`);
    else if (p[c] === 'step_up') out.push(`@id("p.${c}")\npermit (principal, action == Mandate::Action::"call_tool", resource) ${when};\n@id("s.${c}")\n@step_up("")\nforbid (principal, action == Mandate::Action::"call_tool", resource) ${when};`);
  }
  return out.join('\n');
}

const ruleArb = fc.record({
  detector: fc.constantFrom('*', 'drift', 'chains', 'rate', 'novelty', 'retry'),
  severity: fc.constantFrom('low', 'medium', 'high'),
  min_confidence: fc.double({ min: 0, max: 1, noNaN: true }),
  action: fc.constantFrom('alert', 'step_up', 'narrow', 'suspend'),
});
const callArb = fc.record({ tool: fc.constantFrom(...TOOLS), gapMs: fc.integer({ min: 0, max: 3000 }), arg: fc.constantFrom('a', 'b', 'https://x.example') });

describe('the full engine never widens a policy decision', () => {
  it('records, for every call, a final action no more permissive than the policy decision', { timeout: 240_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(policyArb, fc.array(ruleArb, { maxLength: 4 }), fc.array(callArb, { minLength: 1, maxLength: 25 }), async (policy, rules, calls) => {
        const dir = mkdtempSync(join(tmpdir(), 'mandate-behaviour-prop-'));
        const pdir = policyDir(policyText(policy));
        const clock = new ManualClock();
        const rt = await createRuntime(
          parseConfig({
            environment: 'prod',
            data_dir: dir,
            policies: { dir: pdir },
            identity: { dev_issuer: { enabled: true, trust_domain: TRUST_DOMAIN } },
            audit: { durability: 'normal' },
            behaviour: { enabled: true, containment: { rules }, detectors: { novelty: { min_observations: 3 }, rate: { max_per_window: 4, min_calls: 3 }, retry: { max_denied: 2 } } },
          }),
          { writeAdminKeyFile: false, clock },
        );
        try {
          const agentId = `spiffe://${TRUST_DOMAIN}/agents/prop`;
          await rt.agents.createAgent({ id: agentId, owner: 'o', type: 'support', status: 'active', ceiling: parseCeiling(CEILING), createdAt: clock.now(), updatedAt: clock.now() });
          const svid = await (rt.devIssuer as NonNullable<typeof rt.devIssuer>).mint(agentId, { audience: 'mandate', ttlMs: 600_000 });
          const { token, task } = await rt.tasks.start(svid, triageMandate());
          for (const c of calls) {
            clock.advance(c.gapMs);
            const d = await rt.engine.decide({ taskToken: token, tool: c.tool, resource: 'ticket:T-1', args: { q: c.arg, url: c.arg } });
            expect(permissiveness(d.effect)).toBeLessThanOrEqual(permissiveness((d.policyEffect ?? d.effect) as Effect));
          }
          const records = await rt.store.audit.readByTask(task.id, 10_000);
          const byCall = new Map<string, { decision?: Effect; action?: Effect; signals: number }>();
          for (const r of records) {
            if (r.callId === undefined) continue;
            const e = byCall.get(r.callId) ?? { signals: 0 };
            if (r.kind === 'decision') e.decision = r.data['effect'] as Effect;
            if (r.kind === 'action') e.action = r.data['effect'] as Effect;
            if (r.kind === 'signal') e.signals += 1;
            byCall.set(r.callId, e);
          }
          expect(byCall.size).toBe(calls.length);
          for (const e of byCall.values()) {
            expect(e.decision).toBeDefined();
            expect(e.action).toBeDefined();
            expect(permissiveness(e.action as Effect)).toBeLessThanOrEqual(permissiveness(e.decision as Effect));
          }
        } finally {
          await rt.close();
          rmSync(dir, { recursive: true, force: true });
          rmSync(pdir, { recursive: true, force: true });
        }
      }),
      { numRuns: 25 },
    );
  });
});
