/**
 * Retry loops: calls the policy keeps denying. An agent that is refused and tries again, with
 * other arguments or other tools, is probing its limits.
 */
import { z } from 'zod';
import type { DetectorInput, Signal } from './types.ts';

export const retryConfigSchema = z.strictObject({
  enabled: z.boolean().default(true),
  window_ms: z.number().int().min(1000).max(86_400_000).default(60_000),
  /** denied calls in the window (this one included) that make a loop */
  max_denied: z.number().int().min(2).max(10_000).default(5),
  /** the same denied call (tool and argument hash) this many times is a loop on its own */
  max_same: z.number().int().min(2).max(10_000).default(3),
});
export type RetryConfig = z.output<typeof retryConfigSchema>;

export function detectRetry(input: DetectorInput, cfg: RetryConfig): Signal[] {
  if (!cfg.enabled || input.call.policyEffect !== 'deny') return [];
  let denied = 1;
  let same = 1;
  const tools = new Set<string>([input.call.tool]);
  for (let i = input.history.length - 1; i >= 0; i--) {
    const e = input.history[i];
    if (e === undefined || input.now - e.ts >= cfg.window_ms) break;
    if (e.policyEffect !== 'deny') continue;
    denied += 1;
    tools.add(e.tool);
    if (e.tool === input.call.tool && e.argsHash === input.call.argsHash) same += 1;
  }
  if (denied < cfg.max_denied && same < cfg.max_same) return [];
  const severity = denied >= 2 * cfg.max_denied ? 'high' : 'medium';
  return [
    {
      detector: 'retry',
      severity,
      confidence: Math.min(0.95, 0.6 + denied / (4 * cfg.max_denied)),
      evidence: { denied_in_window: denied, same_call: same, tools: [...tools].slice(0, 20), window_ms: cfg.window_ms },
    },
  ];
}
