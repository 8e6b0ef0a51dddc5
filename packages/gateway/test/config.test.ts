/**
 * The gateway's configuration: a shared upstream cannot take secrets (its connection outlives
 * every task, so a secret in it would be a standing credential no task end or kill revokes).
 */
import { describe, expect, it } from 'vitest';
import { mcpConfigSchema } from '@mandate/gateway';

describe('gateway configuration', () => {
  it('refuses a shared upstream with a secret: value in its environment or headers', () => {
    const stdio = mcpConfigSchema.safeParse({ upstreams: [{ name: 'gh', transport: 'stdio', command: 'node', sharing: 'shared', env: { GITHUB_TOKEN: 'secret:gh-token' } }] });
    expect(stdio.success).toBe(false);
    expect(JSON.stringify(stdio.error?.issues)).toContain('cannot take secret: values');
    const http = mcpConfigSchema.safeParse({ upstreams: [{ name: 'crm', transport: 'http', url: 'https://crm.example/mcp', sharing: 'shared', headers: { authorization: 'secret:crm' } }] });
    expect(http.success).toBe(false);
  });

  it('takes secrets for per-task and per-session upstreams, and plain values for shared ones', () => {
    for (const sharing of ['per_task', 'per_session'] as const) {
      expect(mcpConfigSchema.safeParse({ upstreams: [{ name: 'gh', transport: 'stdio', command: 'node', sharing, env: { GITHUB_TOKEN: 'secret:gh-token' } }] }).success).toBe(true);
    }
    const shared = mcpConfigSchema.parse({ upstreams: [{ name: 'docs', transport: 'stdio', command: 'node', sharing: 'shared', env: { LANG: 'C' } }] });
    expect(shared.upstreams[0]?.sharing).toBe('shared');
  });

  it('defaults to per-session connections, one warm spare, and idle sessions closed after minutes', () => {
    const c = mcpConfigSchema.parse({ upstreams: [{ name: 'fs', transport: 'stdio', command: 'node' }] });
    expect(c.upstreams[0]).toMatchObject({ sharing: 'per_session', warm: 1 });
    expect(c.limits).toMatchObject({ idle_timeout: 300_000, max_sessions_per_task: 4, max_sessions_per_agent: 16, connect_timeout: 3000 });
    expect(mcpConfigSchema.safeParse({ upstreams: [{ name: 'a', transport: 'stdio', command: 'x' }, { name: 'b', tool_prefix: 'a', transport: 'stdio', command: 'x' }] }).success).toBe(false);
  });
});
