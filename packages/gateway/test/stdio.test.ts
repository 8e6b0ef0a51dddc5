/**
 * The gateway over stdio: `mandate mcp --stdio`, launched as an MCP host launches a server,
 * driven by the SDK's real stdio client, relaying to the running server's /mcp.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, decisionOf, direct, SERVERS, startGatewayBed, textOf, type GatewayBed } from './support.ts';

describe('MCP gateway over stdio (mandate mcp --stdio)', () => {
  let bed: GatewayBed;
  beforeAll(async () => {
    bed = await startGatewayBed();
  });
  afterAll(async () => bed.close());

  const grants = () => [{ name: 'fs__read_text_file', args: { path: { prefix: bed.files + '/' } } }, { name: 'ev__echo' }];
  const env = (token?: string) => ({ PATH: process.env['PATH'] ?? '', MANDATE_URL: bed.url, ...(token !== undefined ? { MANDATE_TASK_TOKEN: token } : {}) });

  it('serves the filtered tools and decided calls to the SDK stdio client', async () => {
    const t = await bed.task(grants());
    const client = new Client({ name: 'host', version: '1.0.0' });
    await client.connect(new StdioClientTransport({ command: process.execPath, args: [CLI, 'mcp', '--stdio'], env: env(t.token), stderr: 'pipe' }));
    try {
      expect((await client.listTools()).tools.map((x) => x.name).sort()).toEqual(['ev__echo', 'fs__read_text_file']);
      const path = join(bed.files, 'notes', 'hello.txt');
      const via = await client.callTool({ name: 'fs__read_text_file', arguments: { path } });
      const ref = await direct([SERVERS.filesystem, bed.files]);
      expect(via).toEqual(await ref.callTool({ name: 'read_text_file', arguments: { path } }));
      await ref.close();
      const out = await client.callTool({ name: 'fs__read_text_file', arguments: { path: join(bed.work, 'outside.txt') } });
      expect(decisionOf(out)).toMatchObject({ effect: 'deny', reasons: ['ARG_CONSTRAINT_FAILED'] });
      const other = await client.callTool({ name: 'ev__get-env', arguments: {} });
      expect(decisionOf(other)).toMatchObject({ effect: 'deny', reasons: ['TOOL_NOT_IN_MANDATE'] });
    } finally {
      await client.close();
    }
  });

  it('refuses to start without a task token', async () => {
    const child = spawn(process.execPath, [CLI, 'mcp', '--stdio'], { env: env(), stdio: ['pipe', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).toBe(2);
    expect(err).toContain('TOKEN_MISSING');
  });

  it('answers a malformed line with a JSON-RPC error and keeps the session', async () => {
    const t = await bed.task(grants());
    const child = spawn(process.execPath, [CLI, 'mcp', '--stdio'], { env: env(t.token), stdio: ['pipe', 'pipe', 'pipe'] });
    const lines = createInterface({ input: child.stdout });
    const replies: Record<string, unknown>[] = [];
    const waiters: (() => void)[] = [];
    lines.on('line', (l) => {
      replies.push(JSON.parse(l) as Record<string, unknown>);
      waiters.shift()?.();
    });
    const next = () => new Promise<Record<string, unknown>>((resolve) => {
      const take = () => resolve(replies.shift() as Record<string, unknown>);
      if (replies.length > 0) take();
      else waiters.push(take);
    });
    const send = (s: string) => child.stdin.write(s + '\n');
    try {
      send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }));
      expect(await next()).toMatchObject({ id: 1, result: { serverInfo: { name: 'mandate-gateway' } } });
      send(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
      send('{"jsonrpc":"2.0","id":2,"method":');
      expect(await next()).toMatchObject({ id: null, error: { code: -32700 } });
      let deep: unknown = 1;
      for (let i = 0; i < 50; i++) deep = [deep];
      send(JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'ev__echo', arguments: { message: deep } } }));
      expect(await next()).toMatchObject({ id: 3, error: { code: -32600, data: { reason: 'LIMIT_EXCEEDED' } } });
      send(JSON.stringify({ jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 'ev__echo', arguments: { message: 'alive' } } }));
      const ok = await next();
      expect(textOf(ok['result'])).toBe('Echo: alive');
    } finally {
      child.stdin.end();
      await new Promise((resolve) => child.on('exit', resolve));
    }
  });
});
