/**
 * The MCP gateway example, as CI runs it: Mandate started from examples/mcp-gateway/mandate.yaml
 * (two real servers from npm behind it), a task started for an agent, and the example host
 * launching the gateway from examples/mcp-gateway/mcp.json — the `{"mcpServers": …}` shape MCP
 * hosts use — with only the server URL and token file pointed at this run.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, serve, type RunningServer } from '@mandate/server';
import { MANDATE, runHost, SCRIPT } from './host.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const AGENT = 'spiffe://dev.mandate.local/agents/support-bot';

describe('examples/mcp-gateway', () => {
  let server: RunningServer;
  let dir: string;
  beforeAll(async () => {
    process.chdir(ROOT);
    dir = mkdtempSync(join(tmpdir(), 'mandate-mcp-example-'));
    const config = loadConfig(join(ROOT, 'examples/mcp-gateway/mandate.yaml'), {}, { data_dir: dir, 'server.port': 0, 'log.level': 'silent' });
    // the memory file goes to this run's folder, not the example's
    const mem = config.mcp.upstreams.find((u) => u.name === 'mem');
    if (mem?.transport === 'stdio') mem.env['MEMORY_FILE_PATH'] = join(dir, 'memory.jsonl');
    server = await serve(config, { logger: false, writeAdminKeyFile: false });
  });
  afterAll(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs the host configuration through the gateway with the decisions the mandate gives', { timeout: 60_000 }, async () => {
    const admin = server.runtime.bootstrapAdminKey as string;
    const reg = await fetch(`${server.url}/v1/agents`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ id: AGENT, owner: 'team-support', type: 'support', ceiling: { tools: ['fs__*', 'mem__*'], environments: ['dev'] } }),
    });
    expect(reg.status).toBe(201);
    const svid = await (server.runtime.devIssuer as NonNullable<typeof server.runtime.devIssuer>).mint(AGENT, { audience: 'mandate', ttlMs: 600_000 });
    const task = await fetch(`${server.url}/v1/tasks`, { method: 'POST', headers: { authorization: `Bearer ${svid}`, 'content-type': 'application/json' }, body: JSON.stringify({ mandate: MANDATE }) });
    expect(task.status).toBe(201);
    const tokenFile = join(dir, 'task.token');
    writeFileSync(tokenFile, ((await task.json()) as { token: string }).token, { mode: 0o600 });

    const hostConfig = JSON.parse(readFileSync(join(ROOT, 'examples/mcp-gateway/mcp.json'), 'utf8')) as { mcpServers: { mandate: { env: Record<string, string> } } };
    hostConfig.mcpServers.mandate.env['MANDATE_URL'] = server.url;
    hostConfig.mcpServers.mandate.env['MANDATE_TASK_TOKEN_FILE'] = tokenFile;
    const file = join(dir, 'mcp.json');
    writeFileSync(file, JSON.stringify(hostConfig));

    const lines: string[] = [];
    const r = await runHost(file, (l) => lines.push(l));
    expect(lines.filter((l) => l.startsWith('FAIL'))).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.tools).toEqual(['fs__read_text_file', 'mem__create_entities', 'mem__search_nodes']);
    expect(lines).toHaveLength(1 + SCRIPT.length);
  });
});
