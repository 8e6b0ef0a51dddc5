import type { AuditDraft } from './audit/chain.ts';
import { MandateError } from './errors.ts';
import type { JsonObject } from './json.ts';
import { ceilingViolations } from './mandate/ceiling.ts';
import type { Mandate } from './mandate/schema.ts';
import type { Agent, Task } from './model.ts';

/** Fills in the ttl and holds it to the deployment's limits. */
export function normaliseMandate(m: Mandate, limits: { defaultTtlMs: number; maxTtlMs: number; maxLifetimeMs: number }): Mandate {
  const ttl = m.ttl ?? limits.defaultTtlMs;
  if (ttl <= 0 || ttl > limits.maxTtlMs || ttl > limits.maxLifetimeMs) {
    throw new MandateError('MANDATE_INVALID', `ttl must be between 1s and ${Math.min(limits.maxTtlMs, limits.maxLifetimeMs) / 1000}s`);
  }
  return { ...m, ttl };
}

/** The deployment's environment and the agent's ceiling bound every mandate. */
export function checkAdmissible(agent: Agent, m: Mandate, environment: string): void {
  if (m.environment !== environment) {
    throw new MandateError('ENVIRONMENT_MISMATCH', `mandate is for "${m.environment}" but this Mandate guards "${environment}"`);
  }
  const over = ceilingViolations(m, agent.ceiling);
  if (over.length > 0) throw new MandateError('MANDATE_EXCEEDS_CEILING', over.join('; '), { violations: over });
}

export function taskDraft(kind: AuditDraft['kind'], task: Task, ts: number, data: JsonObject): AuditDraft {
  return { kind, ts, taskId: task.id, agentId: task.agentId, txn: task.txn, data };
}
