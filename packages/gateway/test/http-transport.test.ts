/**
 * The gateway's Streamable HTTP server transport at its protocol edges, in front of the SDK's own
 * `Server` on a plain node:http server: what a client sees for a batch, notifications, a refused
 * Accept, protocol version or session header, a second GET stream, a body too large, malformed
 * JSON, a request with a progress token, a cancelled request.
 */
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { CallToolRequestSchema, JSONRPCMessageSchema, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HttpServerTransport, isJsonRpcMessage } from '../src/http-transport.ts';

const SID = 'mcps-test-1';
const VERSION = '2025-06-18';
const INIT = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: VERSION, capabilities: {}, clientInfo: { name: 'raw', version: '1' } } };

interface Bed {
  url: string;
  transport: HttpServerTransport;
  server: Server;
  http: HttpServer;
  /** releases the `wait` tool's calls */
  release: () => void;
}

async function startBed(maxBytes = 4096): Promise<Bed> {
  const transport = new HttpServerTransport({ maxBytes, sessionId: SID });
  const server = new Server({ name: 't', version: '1' }, { capabilities: { tools: { listChanged: true } } });
  let release: () => void = () => undefined;
  let released = new Promise<void>((r) => (release = r));
  server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: [] }));
  server.setRequestHandler(CallToolRequestSchema, async (req, extra) => {
    if (req.params.name === 'wait') {
      await Promise.race([released, new Promise((resolve) => extra.signal.addEventListener('abort', resolve, { once: true }))]);
      return { content: [{ type: 'text', text: 'waited' }] };
    }
    const token = req.params._meta?.progressToken;
    if (token !== undefined) for (const progress of [1, 2]) await extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress, total: 2 } });
    return { content: [{ type: 'text', text: `echo ${String(req.params.arguments?.['m'])}` }] };
  });
  await server.connect(transport);
  const http = createServer((req, res) => void transport.handleRequest(req, res));
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const bed: Bed = {
    url: `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`,
    transport,
    server,
    http,
    release: () => {
      release();
      released = new Promise<void>((r) => (release = r));
    },
  };
  return bed;
}

const HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
const SESSION = { ...HEADERS, 'mcp-session-id': SID, 'mcp-protocol-version': VERSION };

function post(bed: Bed, body: unknown, headers: Record<string, string> = SESSION, signal?: AbortSignal): Promise<Response> {
  return fetch(bed.url, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body), ...(signal ? { signal } : {}) });
}

/** The SSE events of a stream's text, each message parsed. */
function events(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('data: '))
    .map((l) => JSON.parse(l.slice(6)) as Record<string, unknown>);
}

describe('the Streamable HTTP server transport', () => {
  let bed: Bed;
  beforeEach(async () => {
    bed = await startBed();
    const init = await post(bed, INIT, HEADERS);
    expect(init.status).toBe(200);
    await init.text();
    expect((await post(bed, { jsonrpc: '2.0', method: 'notifications/initialized' })).status).toBe(202);
  });
  afterEach(async () => {
    bed.release();
    await bed.server.close();
    await new Promise<void>((resolve) => bed.http.close(() => resolve()));
  });

  it('answers initialize with one JSON body that names the session', async () => {
    const other = await startBed();
    try {
      const res = await post(other, INIT, HEADERS);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/json');
      expect(res.headers.get('mcp-session-id')).toBe(SID);
      expect(await res.json()).toMatchObject({ jsonrpc: '2.0', id: 1, result: { protocolVersion: VERSION, serverInfo: { name: 't' } } });
      expect(other.transport.initialized).toBe(true);
      // a second initialize on the session is refused
      const again = await post(other, { ...INIT, id: 2 }, SESSION);
      expect(again.status).toBe(400);
      expect(await again.json()).toMatchObject({ error: { code: -32600 } });
    } finally {
      await other.server.close();
      await new Promise<void>((resolve) => other.http.close(() => resolve()));
    }
  });

  it('answers a request with JSON when nothing comes before its answer, and keeps nothing once answered', async () => {
    const res = await post(bed, { jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'echo', arguments: { m: 'hi' } } });
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(res.headers.get('mcp-session-id')).toBe(SID);
    expect(await res.json()).toEqual({ jsonrpc: '2.0', id: 5, result: { content: [{ type: 'text', text: 'echo hi' }] } });
    expect(bed.transport.pending).toBe(0);
  });

  it('answers a batch of requests with every answer, and a batch of notifications with 202', async () => {
    const res = await post(bed, [
      { jsonrpc: '2.0', id: 'a', method: 'tools/list' },
      { jsonrpc: '2.0', method: 'notifications/roots/list_changed' },
      { jsonrpc: '2.0', id: 'b', method: 'tools/call', params: { name: 'echo', arguments: { m: 'two' } } },
    ]);
    expect(res.status).toBe(200);
    const answers = (await res.json()) as { id: string }[];
    expect(answers.map((a) => a.id).sort()).toEqual(['a', 'b']);
    expect(answers.find((a) => a.id === 'b')).toMatchObject({ result: { content: [{ text: 'echo two' }] } });
    const notes = await post(bed, [
      { jsonrpc: '2.0', method: 'notifications/roots/list_changed' },
      { jsonrpc: '2.0', method: 'notifications/roots/list_changed' },
    ]);
    expect(notes.status).toBe(202);
    expect(await notes.text()).toBe('');
    expect(bed.transport.pending).toBe(0);
  });

  it('streams the answer (SSE) when the request carries a progress token: progress first, then the answer', async () => {
    const res = await post(bed, { jsonrpc: '2.0', id: 6, method: 'tools/call', params: { name: 'echo', arguments: { m: 'p' }, _meta: { progressToken: 'tok' } } });
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const got = events(await res.text());
    expect(got.map((m) => m['method'] ?? m['id'])).toEqual(['notifications/progress', 'notifications/progress', 6]);
    expect(got[1]).toMatchObject({ params: { progressToken: 'tok', progress: 2, total: 2 } });
    expect(bed.transport.pending).toBe(0);
  });

  it('refuses a client that does not accept both JSON and SSE (406), on POST and on GET', async () => {
    const res = await post(bed, { jsonrpc: '2.0', id: 7, method: 'tools/list' }, { ...SESSION, accept: 'application/json' });
    expect(res.status).toBe(406);
    expect(await res.json()).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32000 } });
    const get = await fetch(bed.url, { headers: { 'mcp-session-id': SID, accept: 'application/json' } });
    expect(get.status).toBe(406);
  });

  it('refuses an unsupported MCP-Protocol-Version (400) and takes a supported one', async () => {
    const res = await post(bed, { jsonrpc: '2.0', id: 8, method: 'tools/list' }, { ...SESSION, 'mcp-protocol-version': '1999-01-01' });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain('Unsupported protocol version: 1999-01-01');
    expect((await post(bed, { jsonrpc: '2.0', id: 9, method: 'tools/list' }, { ...SESSION, 'mcp-protocol-version': '2025-03-26' })).status).toBe(200);
  });

  it('refuses a request without the session header (400) or with another session (404)', async () => {
    const missing = await post(bed, { jsonrpc: '2.0', id: 10, method: 'tools/list' }, { ...HEADERS, 'mcp-protocol-version': VERSION });
    expect(missing.status).toBe(400);
    const other = await post(bed, { jsonrpc: '2.0', id: 11, method: 'tools/list' }, { ...SESSION, 'mcp-session-id': 'mcps-someone-else' });
    expect(other.status).toBe(404);
    expect(await other.json()).toMatchObject({ error: { code: -32001, message: 'Session not found' } });
  });

  it('opens one standalone SSE stream (GET) per session: a second is refused (409) until the first ends', async () => {
    const first = new AbortController();
    const get = () => fetch(bed.url, { headers: { 'mcp-session-id': SID, 'mcp-protocol-version': VERSION, accept: 'text/event-stream' }, signal: first.signal });
    const a = await get();
    expect(a.status).toBe(200);
    expect(a.headers.get('content-type')).toBe('text/event-stream');
    const b = await fetch(bed.url, { headers: { 'mcp-session-id': SID, accept: 'text/event-stream' } });
    expect(b.status).toBe(409);
    // a message about no request goes there
    await bed.server.sendToolListChanged();
    const reader = (a.body as ReadableStream<Uint8Array>).getReader();
    const { value } = await reader.read();
    expect(new TextDecoder().decode(value)).toContain('"method":"notifications/tools/list_changed"');
    first.abort();
    await expect.poll(async () => {
      const c = await fetch(bed.url, { headers: { 'mcp-session-id': SID, accept: 'text/event-stream' }, signal: AbortSignal.timeout(5_000) }).catch(() => undefined);
      const status = c?.status;
      await c?.body?.cancel();
      return status;
    }, { timeout: 10_000, interval: 20 }).toBe(200);
  });

  it('holds messages about no request until the client opens its standalone stream, a bounded number for a bounded time', async () => {
    const stream = async (): Promise<{ next: (until: string) => Promise<Record<string, unknown>[]>; close: () => void }> => {
      const ac = new AbortController();
      const res = await fetch(bed.url, { headers: { 'mcp-session-id': SID, 'mcp-protocol-version': VERSION, accept: 'text/event-stream' }, signal: ac.signal });
      expect(res.status).toBe(200);
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      let text = '';
      return {
        // reads until a message with this method has come, and returns every message so far
        next: async (until) => {
          while (!events(text).some((m) => m['method'] === until)) {
            const { value, done } = await reader.read();
            if (done) throw new Error(`the stream ended before ${until}`);
            text += new TextDecoder().decode(value);
          }
          return events(text);
        },
        close: () => ac.abort(),
      };
    };
    const note = (method: string, i: number) => bed.transport.send({ jsonrpc: '2.0', method, params: { i } });
    // sent before the client's stream is open (an upstream's question right after initialize)
    for (let i = 0; i < 70; i++) await note('notifications/early', i);
    const first = await stream();
    await note('notifications/marker', 0);
    const got = await first.next('notifications/marker');
    // the newest 64, in order, then what came after the stream opened
    expect(got.map((m) => (m['params'] as { i: number }).i)).toEqual([...Array.from({ length: 64 }, (_, k) => k + 6), 0]);
    expect(got.at(-1)?.['method']).toBe('notifications/marker');
    first.close();
    await expect.poll(() => bed.transport.streamOpen, { timeout: 10_000, interval: 20 }).toBe(false);
    // one held past its time is dropped
    await note('notifications/stale', 1);
    bed.transport.tick();
    await note('notifications/fresh', 2);
    bed.transport.tick();
    const second = await stream();
    await note('notifications/marker', 3);
    expect((await second.next('notifications/marker')).map((m) => m['method'])).toEqual(['notifications/fresh', 'notifications/marker']);
    second.close();
  });

  it('refuses a body larger than its limit (413) and malformed JSON or JSON-RPC (-32700), and goes on', async () => {
    const big = await post(bed, { jsonrpc: '2.0', id: 12, method: 'tools/call', params: { name: 'echo', arguments: { m: 'x'.repeat(5000) } } });
    expect(big.status).toBe(413);
    expect(await big.json()).toMatchObject({ error: { code: -32000 } });
    const garbage = await post(bed, '{"jsonrpc": "2.0", "id": 13, "method": ');
    expect(garbage.status).toBe(400);
    expect(await garbage.json()).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32700 } });
    for (const bad of [{ hello: 'world' }, { jsonrpc: '2.0', id: 14, method: 'tools/list', extra: 1 }, { jsonrpc: '2.0', id: 15, method: 'tools/list', params: { _meta: 'no' } }, [{ jsonrpc: '1.0', id: 16, method: 'x' }]]) {
      const res = await post(bed, bad);
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ error: { code: -32700 } });
    }
    const tooMany = await post(bed, Array.from({ length: 101 }, () => ({ jsonrpc: '2.0', method: 'n' })));
    expect(tooMany.status).toBe(400);
    const ok = await post(bed, { jsonrpc: '2.0', id: 17, method: 'tools/call', params: { name: 'echo', arguments: { m: 'still here' } } });
    expect(await ok.json()).toMatchObject({ id: 17, result: { content: [{ text: 'echo still here' }] } });
  });

  it('ends a cancelled request\'s answer without one, and refuses a second request under a waiting id', async () => {
    const waiting = post(bed, { jsonrpc: '2.0', id: 20, method: 'tools/call', params: { name: 'wait', arguments: {} } });
    await expect.poll(() => bed.transport.pending, { timeout: 10_000, interval: 5 }).toBe(1);
    const twice = await post(bed, { jsonrpc: '2.0', id: 20, method: 'tools/list' });
    expect(twice.status).toBe(400);
    expect(await twice.json()).toMatchObject({ error: { code: -32600 } });
    expect((await post(bed, { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 20, reason: 'stop' } })).status).toBe(202);
    const res = await waiting;
    expect(res.status).toBe(200);
    expect(events(await res.text())).toEqual([]);
    expect(bed.transport.pending).toBe(0);
  });

  it('starts the stream of a request that waits, and keeps a quiet stream alive', async () => {
    const waiting = post(bed, { jsonrpc: '2.0', id: 21, method: 'tools/call', params: { name: 'wait', arguments: {} } });
    await expect.poll(() => bed.transport.pending, { timeout: 10_000, interval: 5 }).toBe(1);
    bed.transport.tick();
    bed.transport.tick();
    // the headers are out before the answer
    const res = await waiting;
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    for (let i = 0; i < 3; i++) bed.transport.tick();
    bed.release();
    const text = await res.text();
    expect(text).toContain(': keepalive');
    expect(events(text)).toMatchObject([{ id: 21, result: { content: [{ text: 'waited' }] } }]);
  });

  it('streams a batch whose answer waits: the answers already given go first', async () => {
    const waiting = post(bed, [
      { jsonrpc: '2.0', id: 'quick', method: 'tools/call', params: { name: 'echo', arguments: { m: 'q' } } },
      { jsonrpc: '2.0', id: 'slow', method: 'tools/call', params: { name: 'wait', arguments: {} } },
    ]);
    // the quick one is answered (collected for the batch's body), the slow one waits
    await expect.poll(() => bed.transport.pending, { timeout: 10_000, interval: 5 }).toBe(1);
    bed.transport.tick();
    bed.transport.tick();
    const res = await waiting;
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    bed.release();
    expect(events(await res.text()).map((m) => m['id'])).toEqual(['quick', 'slow']);
    expect(bed.transport.pending).toBe(0);
  });

  it('serves the SDK client end to end, progress included', async () => {
    const other = await startBed();
    const client = new Client({ name: 'c', version: '1' });
    try {
      await client.connect(new StreamableHTTPClientTransport(new URL(other.url)));
      const seen: number[] = [];
      const r = await client.callTool({ name: 'echo', arguments: { m: 'sdk' } }, undefined, { onprogress: (p) => seen.push(p.progress) });
      expect(r).toMatchObject({ content: [{ text: 'echo sdk' }] });
      expect(seen).toEqual([1, 2]);
      expect(await client.listTools()).toEqual({ tools: [] });
    } finally {
      await client.close();
      await other.server.close();
      await new Promise<void>((resolve) => other.http.close(() => resolve()));
    }
  });
});

describe('the JSON-RPC shape check', () => {
  it('takes what the SDK schema takes and refuses what it refuses', () => {
    for (const ok of [
      { jsonrpc: '2.0', id: 1, method: 'x' },
      { jsonrpc: '2.0', id: 'a', method: 'x', params: { _meta: { progressToken: 3 } } },
      { jsonrpc: '2.0', method: 'notifications/x' },
      { jsonrpc: '2.0', id: 2, result: {} },
      { jsonrpc: '2.0', id: 2, error: { code: -1, message: 'no' } },
      { jsonrpc: '2.0', error: { code: -1, message: 'no', data: 1 } },
    ]) {
      expect(isJsonRpcMessage(ok), JSON.stringify(ok)).toBe(true);
      expect(JSONRPCMessageSchema.safeParse(ok).success, JSON.stringify(ok)).toBe(true);
    }
    for (const bad of [
      null,
      [],
      { jsonrpc: '2.0', id: 1.5, method: 'x' },
      { jsonrpc: '2.0', id: null, method: 'x' },
      { jsonrpc: '2.0', id: 1, method: 'x', params: [] },
      { jsonrpc: '2.0', id: 1, method: 'x', params: { _meta: { progressToken: {} } } },
      { jsonrpc: '2.0', id: 1, result: [] },
      { jsonrpc: '2.0', id: 1, result: {}, extra: true },
      { jsonrpc: '2.0', id: 1, error: { code: 'x', message: 'no' } },
      { jsonrpc: '2.0', id: 1 },
    ]) {
      expect(isJsonRpcMessage(bad), JSON.stringify(bad)).toBe(false);
      expect(JSONRPCMessageSchema.safeParse(bad).success, JSON.stringify(bad)).toBe(false);
    }
  });
});
