/**
 * Upstreams over Streamable HTTP (server-everything in its HTTP mode), bounded client messages
 * (a malformed or oversized message gets a JSON-RPC error and the session goes on), and
 * provenance: what an untrusted upstream returned is seen as such in a later call's arguments.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { MandateError } from '@mandate/core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { freePort } from '../../server/test/cluster/throwaway-pg.ts';
import { decisionOf, rpcBody, SERVERS, startGatewayBed, textOf, type GatewayBed } from './support.ts';

async function startHttpEverything(): Promise<{ url: string; proc: ChildProcess }> {
  const port = await freePort();
  const proc = spawn(process.execPath, [SERVERS.everything, 'streamableHttp'], { env: { PATH: process.env['PATH'] ?? '', PORT: String(port) }, stdio: ['ignore', 'ignore', 'pipe'] });
  // a long bound for a busy machine; the wait ends when the server says it listens, or exits
  await new Promise<void>((resolve, reject) => {
    let said = '';
    const timer = setTimeout(() => reject(new Error(`server-everything did not start in 120 s: ${said}`)), 120_000);
    proc.stderr?.on('data', (d: Buffer) => {
      said += d.toString();
      if (said.includes('listening on port')) {
        clearTimeout(timer);
        resolve();
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server-everything exited ${code}: ${said}`));
    });
  });
  return { url: `http://127.0.0.1:${port}/mcp`, proc };
}

describe('gateway transports and bounds', () => {
  let bed: GatewayBed;
  let upstream: { url: string; proc: ChildProcess };
  beforeAll(async () => {
    upstream = await startHttpEverything();
    bed = await startGatewayBed({
      upstreams: () => [{ name: 'web', transport: 'http', url: upstream.url, headers: { 'x-plain': 'one' } }],
      config: { limits: { max_message_bytes: 64 * 1024, max_depth: 12 } },
    });
  }, 180_000);
  afterAll(async () => {
    await bed.close();
    upstream.proc.kill();
  });

  it('forwards to an upstream over Streamable HTTP, namespaced and decided', async () => {
    const t = await bed.task([{ name: 'web__echo' }, { name: 'web__get-sum' }]);
    const client = await bed.http(t.token);
    expect((await client.listTools()).tools.map((x) => x.name).sort()).toEqual(['web__echo', 'web__get-sum']);
    expect(textOf(await client.callTool({ name: 'web__echo', arguments: { message: 'over http' } }))).toBe('Echo: over http');
    const denied = await client.callTool({ name: 'web__get-env', arguments: {} });
    expect(decisionOf(denied)).toMatchObject({ effect: 'deny', reasons: ['TOOL_NOT_IN_MANDATE'] });
  });

  it('answers a malformed, oversized or too deeply nested message with a JSON-RPC error, and the session goes on', async () => {
    const t = await bed.task([{ name: 'web__echo' }]);
    const client = await bed.http(t.token);
    // the session the SDK client opened, reused by hand
    const init = await fetch(`${bed.url}/mcp`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }),
    });
    expect(init.status).toBe(200);
    const sid = init.headers.get('mcp-session-id') ?? '';
    const post = (body: string) =>
      fetch(`${bed.url}/mcp`, {
        method: 'POST',
        headers: { authorization: `Bearer ${t.token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' },
        body,
      });
    const garbage = await post('{"jsonrpc": "2.0", "id": 7, "method": ');
    expect(garbage.status).toBe(400);
    expect(await rpcBody(garbage)).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32700 } });
    let deep: unknown = 'x';
    for (let i = 0; i < 40; i++) deep = { d: deep };
    const nested = await post(JSON.stringify({ jsonrpc: '2.0', id: 8, method: 'tools/call', params: { name: 'web__echo', arguments: { message: deep } } }));
    expect(await rpcBody(nested)).toMatchObject({ id: 8, error: { code: -32600, data: { reason: 'LIMIT_EXCEEDED' } } });
    const big = await post(JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'web__echo', arguments: { message: 'x'.repeat(70 * 1024) } } }));
    expect(big.status).toBe(413);
    expect(await rpcBody(big)).toMatchObject({ error: { code: -32600, data: { reason: 'LIMIT_EXCEEDED' } } });
    const notRpc = await post(JSON.stringify({ hello: 'world' }));
    expect(notRpc.status).toBe(400);
    // the same session still answers
    await post(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
    const ok = await post(JSON.stringify({ jsonrpc: '2.0', id: 10, method: 'tools/call', params: { name: 'web__echo', arguments: { message: 'still here' } } }));
    expect(await rpcBody(ok)).toMatchObject({ id: 10, result: { content: [{ type: 'text', text: 'Echo: still here' }] } });
    // an argument past the decision limits is a deny with the reason, not a crash
    const wide = await client.callTool({ name: 'web__echo', arguments: Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`k${i}`, i])) });
    expect(decisionOf(wide)).toMatchObject({ effect: 'deny', reasons: ['LIMIT_EXCEEDED'] });
  });

  it("answers a fault of its own as a JSON-RPC internal error (500), never as the client's malformed request", async () => {
    const t = await bed.task([{ name: 'web__echo' }]);
    const rt = bed.h.runtime;
    const init = () =>
      fetch(`${bed.url}/mcp`, {
        method: 'POST',
        headers: { authorization: `Bearer ${t.token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }),
      });
    // a fault before the gateway takes the request over
    const before = vi.spyOn(rt.tracing, 'request').mockImplementationOnce(() => {
      throw new TypeError("Cannot read properties of undefined (reading 'secret internals')");
    });
    const a = await init();
    before.mockRestore();
    expect(a.status).toBe(500);
    const aBody = await rpcBody(a);
    expect(aBody).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32603, data: { reason: 'INTERNAL_ERROR' } } });
    expect(JSON.stringify(aBody)).not.toContain('secret internals');
    // a fault once the gateway has taken it over
    const after = vi.spyOn(rt.mcp, 'handleHttp').mockRejectedValueOnce(new TypeError('boom inside'));
    const b = await init();
    after.mockRestore();
    expect(b.status).toBe(500);
    expect(await rpcBody(b)).toMatchObject({ error: { code: -32603, data: { reason: 'INTERNAL_ERROR' } } });
    // a store that is away is the service's state, told as such
    const away = vi.spyOn(rt.tracing, 'request').mockImplementationOnce(() => {
      throw new MandateError('STORE_UNAVAILABLE', 'the store is away');
    });
    const c = await init();
    away.mockRestore();
    expect(c.status).toBe(503);
    expect(await rpcBody(c)).toMatchObject({ error: { code: -32603, data: { reason: 'STORE_UNAVAILABLE' } } });
    // and the next request is served as usual
    expect((await init()).status).toBe(200);
  });

  it('refuses a session request with another task token', async () => {
    const a = await bed.task([{ name: 'web__echo' }]);
    const b = await bed.task([{ name: 'web__echo' }]);
    const init = await fetch(`${bed.url}/mcp`, {
      method: 'POST',
      headers: { authorization: `Bearer ${a.token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }),
    });
    const sid = init.headers.get('mcp-session-id') ?? '';
    const hijack = await fetch(`${bed.url}/mcp`, {
      method: 'POST',
      headers: { authorization: `Bearer ${b.token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }),
    });
    expect(hijack.status).toBe(403);
    expect(await rpcBody(hijack)).toMatchObject({ error: { data: { reason: 'TOKEN_TASK_MISMATCH' } } });
  });
});
