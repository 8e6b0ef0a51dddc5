import { globCovers } from '../glob.ts';
import type { Ceiling, Mandate } from './schema.ts';

/**
 * Lists every way `m` asks for more than the agent's ceiling allows. Empty means within.
 * Tool patterns are compared by glob containment, so `helpdesk.*` in a mandate needs
 * `helpdesk.*` (or wider) in the ceiling, not just one helpdesk tool.
 */
export function ceilingViolations(m: Mandate, c: Ceiling): string[] {
  const out: string[] = [];
  if (c.tools) {
    for (const t of m.tools) if (!c.tools.some((p) => globCovers(p, t.name))) out.push(`tool "${t.name}" is beyond the agent's ceiling`);
  }
  if (c.data_classes) {
    for (const d of m.data_classes) if (!c.data_classes.includes(d)) out.push(`data class "${d}" is beyond the agent's ceiling`);
  }
  if (c.environments && !c.environments.includes(m.environment)) out.push(`environment "${m.environment}" is beyond the agent's ceiling`);
  if (c.max_ttl !== undefined && (m.ttl ?? Number.POSITIVE_INFINITY) > c.max_ttl) out.push(`ttl exceeds the agent's ceiling of ${c.max_ttl / 1000}s`);
  if (c.max_calls !== undefined && (m.budgets?.calls ?? Number.POSITIVE_INFINITY) > c.max_calls) {
    out.push(`call budget must be declared and at most ${c.max_calls}`);
  }
  if (m.delegation?.allowed) {
    const depth = m.delegation.max_depth ?? 1;
    if (c.max_delegation_depth !== undefined && depth > c.max_delegation_depth) out.push(`delegation depth ${depth} exceeds the agent's ceiling of ${c.max_delegation_depth}`);
  }
  return out;
}
