/**
 * The MCP Inspector's CLI (npm @modelcontextprotocol/inspector, run offline from node_modules,
 * with its default timeouts) lists and calls tools through the gateway over both transports:
 * Streamable HTTP with the task token as a header, and stdio by launching `mandate mcp --stdio`.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, ROOT, SERVERS, startGatewayBed, type GatewayBed } from './support.ts';

const run = promisify(execFile);
const INSPECTOR = join(ROOT, 'node_modules', '@modelcontextprotocol', 'inspector', 'clients', 'launcher', 'build', 'index.js');

describe('the MCP Inspector CLI through the gateway', () => {
  let bed: GatewayBed;
  let home: string;
  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), 'mandate-inspector-'));
    bed = await startGatewayBed({ upstreams: () => [{ name: 'ev', transport: 'stdio', command: process.execPath, args: [SERVERS.everything] }] });
  });
  afterAll(async () => {
    await bed.close();
    await rm(home, { recursive: true, force: true });
  });

  // its own home (its catalog and OAuth state live there), nothing from the network
  const inspector = (args: string[]) =>
    run(process.execPath, [INSPECTOR, '--cli', ...args], { cwd: home, env: { PATH: process.env['PATH'] ?? '', HOME: home, NO_UPDATE_NOTIFIER: '1' }, timeout: 60_000, maxBuffer: 8 * 1024 * 1024 });

  it('lists and calls over Streamable HTTP', { timeout: 90_000 }, async () => {
    const t = await bed.task([{ name: 'ev__echo' }]);
    const common = [`${bed.url}/mcp`, '--transport', 'http', '--header', `Authorization: Bearer ${t.token}`];
    const list = await inspector([...common, '--method', 'tools/list']);
    expect(JSON.parse(list.stdout)).toMatchObject({ tools: [{ name: 'ev__echo' }] });
    const call = await inspector([...common, '--method', 'tools/call', '--tool-name', 'ev__echo', '--tool-arg', 'message=from the inspector']);
    expect(call.stdout).toContain('Echo: from the inspector');
  });

  it('lists and calls over stdio, launching mandate mcp --stdio', { timeout: 90_000 }, async () => {
    const t = await bed.task([{ name: 'ev__echo' }]);
    const common = ['-e', `MANDATE_URL=${bed.url}`, '-e', `MANDATE_TASK_TOKEN=${t.token}`];
    const list = await inspector([...common, '--method', 'tools/list', '--', process.execPath, CLI, 'mcp', '--stdio']);
    expect(JSON.parse(list.stdout)).toMatchObject({ tools: [{ name: 'ev__echo' }] });
    const call = await inspector([...common, '--method', 'tools/call', '--tool-name', 'ev__echo', '--tool-arg', 'message=over stdio', '--', process.execPath, CLI, 'mcp', '--stdio']);
    expect(call.stdout).toContain('Echo: over stdio');
  });

  it('is told that authentication is required without a token, and exits', { timeout: 90_000 }, async () => {
    const res = await inspector([`${bed.url}/mcp`, '--transport', 'http', '--method', 'tools/list']).catch((e: { stdout?: string; stderr?: string; code?: number }) => e);
    expect('code' in res && res.code !== 0).toBe(true);
    expect(`${res.stdout ?? ''}${res.stderr ?? ''}`).toMatch(/auth_required|401|TOKEN_MISSING/);
  });
});
