/**
 * Retry loops: calls that keep being denied, by the policy or by containment. An agent that is
 * refused and tries again, with other arguments, other tools or from other tasks, is probing its
 * limits. Judged per task and per agent (all its tasks and delegates).
 */
import { z } from 'zod';
import { detectorScopeSchema } from './scope.ts';
import type { DetectorInput, ScopeView, Signal } from './types.ts';

export const retryConfigSchema = z.strictObject({
  enabled: z.boolean().default(true).describe('run the retry detector: an agent probing with denied calls'),
  window_ms: z.number().int().min(1000).max(86_400_000).default(60_000).describe('the window denied calls are counted in (ms)'),
  max_denied: z.number().int().min(2).max(10_000).default(5).describe('denied calls in the window (this one included) that make a loop'),
  max_same: z.number().int().min(2).max(10_000).default(3).describe('the same denied call (tool and argument hash) this many times is a loop on its own'),
  scope: detectorScopeSchema.prefault({}),
});
export type RetryConfig = z.output<typeof retryConfigSchema>;

interface Loop {
  readonly scope: ScopeView;
  readonly denied: number;
  readonly same: number;
  readonly tools: ReadonlySet<string>;
}

/** denied calls of one scope in the window, this one included */
function loopIn(scope: ScopeView, input: DetectorInput, cfg: RetryConfig): Loop {
  const { call, now } = input;
  let denied = 1;
  let same = 1;
  const tools = new Set<string>([call.tool]);
  for (let i = scope.size - 1; i >= 0; i--) {
    const e = scope.at(i);
    if (e === undefined || now - e.ts >= cfg.window_ms) break;
    if (!e.denied) continue;
    denied += 1;
    if (tools.size < 20) tools.add(e.tool);
    if (e.tool === call.tool && e.argsHash === call.argsHash) same += 1;
  }
  // other nodes share how many of this scope's calls they denied (not which)
  denied += scope.remoteDenied(now, cfg.window_ms);
  return { scope, denied, same, tools };
}

export function detectRetry(input: DetectorInput, cfg: RetryConfig): Signal[] {
  if (!cfg.enabled || !input.call.denied) return [];
  let worst: Loop | undefined;
  let worstScore = 0;
  for (const scope of input.scopes) {
    if (!cfg.scope[scope.kind]) continue;
    const l = loopIn(scope, input, cfg);
    const score = Math.max(l.denied / cfg.max_denied, l.same / cfg.max_same);
    if (worst === undefined || score > worstScore) {
      worst = l;
      worstScore = score;
    }
  }
  if (worst === undefined || (worst.denied < cfg.max_denied && worst.same < cfg.max_same)) return [];
  const { denied, same, scope } = worst;
  return [
    {
      detector: 'retry',
      severity: denied >= 2 * cfg.max_denied ? 'high' : 'medium',
      confidence: Math.min(0.95, 0.6 + denied / (4 * cfg.max_denied)),
      evidence: { denied_in_window: denied, same_call: same, tools: [...worst.tools], window_ms: cfg.window_ms, scope: scope.kind, ...(scope.kind === 'agent' ? { agent_id: scope.id } : {}) },
    },
  ];
}
