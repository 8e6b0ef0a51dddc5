/**
 * The gateway's Streamable HTTP client transport against a small node:http server that answers
 * each request as a test tells it: the edges of the spec (JSON and SSE answers, 202, 404 on a
 * session, 405 on GET, DELETE), bad answers, and keep-alive.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, describe, expect, it } from 'vitest';
import { NodeHttpClientTransport, type HttpClientOptions } from '../src/http-client.ts';

interface Seen {
  readonly method: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}
type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

interface Fixture {
  readonly url: URL;
  readonly seen: Seen[];
  /** TCP connections the server accepted */
  connections: number;
  /** requests whose connection closed before the server answered them in full */
  cutOff: number;
  handler: Handler;
  close(): Promise<void>;
}

const open: { f: Fixture; t: NodeHttpClientTransport }[] = [];

async function fixture(handler: Handler): Promise<Fixture> {
  const f = { seen: [] as Seen[], connections: 0, cutOff: 0, handler } as Fixture & { server: Server };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      f.seen.push({ method: req.method ?? '', headers: req.headers, body });
      res.on('close', () => {
        if (!res.writableFinished) f.cutOff += 1;
      });
      f.handler(req, res, body);
    });
  });
  server.on('connection', () => (f.connections += 1));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  Object.assign(f, {
    url: new URL(`http://127.0.0.1:${port}/mcp`),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
  return f;
}

async function connect(f: Fixture, o: HttpClientOptions = {}): Promise<{ t: NodeHttpClientTransport; got: JSONRPCMessage[]; errors: Error[] }> {
  const t = new NodeHttpClientTransport(f.url, o);
  const got: JSONRPCMessage[] = [];
  const errors: Error[] = [];
  t.onmessage = (m) => void got.push(m);
  t.onerror = (e) => void errors.push(e);
  await t.start();
  open.push({ f, t });
  return { t, got, errors };
}

const json = (res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}) => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(value));
};
const answer = (body: string, result: unknown) => ({ jsonrpc: '2.0', id: (JSON.parse(body) as { id: number }).id, result });
const request = (id: number, method = 'tools/call'): JSONRPCMessage => ({ jsonrpc: '2.0', id, method, params: {} });
const sse = (m: unknown, id?: string) => `${id !== undefined ? `id: ${id}\n` : ''}data: ${JSON.stringify(m)}\n\n`;
const waitFor = async (cond: () => boolean, what: string) => {
  const until = Date.now() + 20_000;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

afterEach(async () => {
  for (const { f, t } of open.splice(0)) {
    await t.close();
    await f.close();
  }
});

describe('the gateway\'s Streamable HTTP client transport', () => {
  it('posts a request, delivers a JSON answer, and sends the session id, protocol version and configured headers after', async () => {
    const f = await fixture((_req, res, body) => json(res, 200, answer(body, { ok: true }), { 'mcp-session-id': 'S-1' }));
    const { t, got } = await connect(f, { headers: { Authorization: 'Bearer upstream-secret' } });
    await t.send({ jsonrpc: '2.0', id: 1, method: 'initialize', params: {} });
    expect(got).toEqual([{ jsonrpc: '2.0', id: 1, result: { ok: true } }]);
    expect(t.sessionId).toBe('S-1');
    const first = f.seen[0];
    expect(first?.headers['accept']).toBe('application/json, text/event-stream');
    expect(first?.headers['content-type']).toBe('application/json');
    expect(first?.headers['authorization']).toBe('Bearer upstream-secret');
    expect(first?.headers['mcp-session-id']).toBeUndefined();
    t.setProtocolVersion('2025-06-18');
    await t.send(request(2));
    expect(f.seen[1]?.headers['mcp-session-id']).toBe('S-1');
    expect(f.seen[1]?.headers['mcp-protocol-version']).toBe('2025-06-18');
    expect(JSON.parse(f.seen[1]?.body ?? '')).toEqual(request(2));
  });

  it('reads an SSE answer as it arrives: a notification and a server → client request before the response', async () => {
    const f = await fixture((_req, res, body) => {
      const id = (JSON.parse(body) as { id: number }).id;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(': a comment\r\n');
      res.write(sse({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 1, progress: 1 } }, 'e1').replace(/\n/g, '\r\n'));
      // one event split across writes, with a multi-line data field
      const req = JSON.stringify({ jsonrpc: '2.0', id: 'srv-1', method: 'roots/list', params: {} }, null, 1);
      const text = `event: message\n${req.split('\n').map((l) => `data: ${l}`).join('\n')}\n\n`;
      res.write(text.slice(0, 17));
      setTimeout(() => {
        res.write(text.slice(17));
        res.write('event: other\ndata: {"ignored":true}\n\n');
        res.end(sse({ jsonrpc: '2.0', id, result: { done: true } }));
      }, 20);
    });
    const { t, got, errors } = await connect(f);
    await t.send(request(7));
    await waitFor(() => got.length === 3, 'three messages');
    expect(got).toEqual([
      { jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 1, progress: 1 } },
      { jsonrpc: '2.0', id: 'srv-1', method: 'roots/list', params: {} },
      { jsonrpc: '2.0', id: 7, result: { done: true } },
    ]);
    expect(errors).toEqual([]);
  });

  it('takes a 202 for a notification or a response', async () => {
    const f = await fixture((_req, res) => {
      res.writeHead(202);
      res.end();
    });
    const { t, got, errors } = await connect(f);
    await t.send({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 1, progress: 1 } });
    await t.send({ jsonrpc: '2.0', id: 'srv-1', result: { roots: [] } });
    expect(f.seen.map((s) => s.method)).toEqual(['POST', 'POST']);
    expect(got).toEqual([]);
    expect(errors).toEqual([]);
  });

  it('fails a request with the SDK\'s 404 error once the upstream has forgotten the session', async () => {
    let known = true;
    const f = await fixture((_req, res, body) => {
      if (known) json(res, 200, answer(body, {}), { 'mcp-session-id': 'S-9' });
      else json(res, 404, { jsonrpc: '2.0', id: null, error: { code: -32001, message: 'Session not found' } });
    });
    const { t, errors } = await connect(f);
    await t.send(request(1, 'initialize'));
    known = false;
    const err = await t.send(request(2)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StreamableHTTPError);
    expect((err as StreamableHTTPError).code).toBe(404);
    expect((err as Error).message).toContain('Session not found');
    expect(errors).toHaveLength(1);
    expect(f.seen[1]?.headers['mcp-session-id']).toBe('S-9');
  });

  it('opens the server\'s stream after notifications/initialized; a 405 means it has none', async () => {
    const f = await fixture((req, res) => {
      if (req.method === 'GET') {
        res.writeHead(405);
        res.end();
        return;
      }
      res.writeHead(202);
      res.end();
    });
    const { t, errors } = await connect(f);
    await t.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    await waitFor(() => f.seen.some((s) => s.method === 'GET'), 'the GET');
    expect(f.seen.find((s) => s.method === 'GET')?.headers['accept']).toBe('text/event-stream');
    await new Promise((r) => setTimeout(r, 50));
    expect(errors).toEqual([]);
    expect(f.seen.filter((s) => s.method === 'GET')).toHaveLength(1);
  });

  it('delivers the server\'s own messages from the GET stream and resumes it from the last event id when it ends', async () => {
    let gets = 0;
    const f = await fixture((req, res) => {
      if (req.method !== 'GET') {
        res.writeHead(202);
        res.end();
        return;
      }
      gets += 1;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      if (gets === 1) res.end(`retry: 10\n\n${sse({ jsonrpc: '2.0', method: 'notifications/tools/list_changed' }, 'g1')}`);
      else res.write(sse({ jsonrpc: '2.0', method: 'notifications/resources/list_changed' }, 'g2'));
    });
    const { t, got } = await connect(f);
    await t.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    await waitFor(() => got.length === 2, 'two notifications');
    expect(got.map((m) => ('method' in m ? m.method : ''))).toEqual(['notifications/tools/list_changed', 'notifications/resources/list_changed']);
    expect(f.seen.filter((s) => s.method === 'GET').map((s) => s.headers['last-event-id'])).toEqual([undefined, 'g1']);
  });

  it('resumes an answer whose stream ended after an event id with a GET from that id', async () => {
    const f = await fixture((req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      // the POST's stream: a priming event, then closed before the answer (polling, 2025-11-25)
      if (req.method === 'POST') res.end('id: p1\nretry: 10\ndata:\n\n');
      else res.end(sse({ jsonrpc: '2.0', id: 5, result: { late: true } }, 'p2'));
    });
    const { t, got, errors } = await connect(f);
    await t.send(request(5));
    await waitFor(() => got.length === 1, 'the resumed answer');
    expect(got).toEqual([{ jsonrpc: '2.0', id: 5, result: { late: true } }]);
    expect(f.seen.map((s) => [s.method, s.headers['last-event-id']])).toEqual([
      ['POST', undefined],
      ['GET', 'p1'],
    ]);
    expect(errors).toEqual([]);
  });

  it('turns malformed answers into transport errors, never crashes', async () => {
    let mode = 'json';
    const f = await fixture((_req, res, body) => {
      const id = (JSON.parse(body) as { id: number }).id;
      if (mode === 'json') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"jsonrpc": "2.0", "id": ');
      } else if (mode === 'type') {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end('<html></html>');
      } else if (mode === 'shape') {
        json(res, 200, { hello: 'world' });
      } else {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.end(`data: {not json\n\ndata: 42\n\n${sse({ jsonrpc: '2.0', id, result: {} })}`);
      }
    });
    const { t, got, errors } = await connect(f);
    await expect(t.send(request(1))).rejects.toThrow(/malformed JSON/);
    mode = 'type';
    await expect(t.send(request(2))).rejects.toThrow(/Unexpected content type: text\/html/);
    mode = 'shape';
    await expect(t.send(request(3))).rejects.toThrow(/not a JSON-RPC message/);
    mode = 'sse';
    errors.length = 0;
    await t.send(request(4));
    await waitFor(() => got.length === 1, 'the answer after the bad events');
    expect(got).toEqual([{ jsonrpc: '2.0', id: 4, result: {} }]);
    expect(errors.map((e) => e.message)).toEqual([expect.stringMatching(/malformed JSON/), expect.stringMatching(/not a JSON-RPC message/)]);
  });

  it('refuses an answer or an SSE event larger than the bound', async () => {
    let sseMode = false;
    const f = await fixture((_req, res, body) => {
      const big = { ...answer(body, { text: 'x'.repeat(4096) }) };
      if (sseMode) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.end(sse(big));
      } else json(res, 200, big);
    });
    const { t, got, errors } = await connect(f, { maxMessageBytes: 1024 });
    await expect(t.send(request(1))).rejects.toThrow(/exceeds 1024 bytes/);
    sseMode = true;
    errors.length = 0;
    await t.send(request(2));
    // the request fails at once (an error answer), not at its timeout
    await waitFor(() => got.length > 0, 'the error answer');
    expect(errors[0]?.message).toMatch(/exceeds 1024 bytes/);
    expect(got).toEqual([{ jsonrpc: '2.0', id: 2, error: { code: -32000, message: expect.stringMatching(/ended its SSE stream before answering the request \(.*exceeds 1024 bytes/) } }]);
  });

  it('does not follow a redirect', async () => {
    const f = await fixture((_req, res) => {
      res.writeHead(307, { location: 'http://elsewhere.example/mcp?token=abc' });
      res.end();
    });
    const { t } = await connect(f);
    const err = await t.send(request(1)).catch((e: unknown) => e as StreamableHTTPError);
    expect(err?.code).toBe(307);
    expect(err?.message).toContain('http://elsewhere.example/mcp not followed');
    expect(err?.message).not.toContain('token=abc');
    expect(f.seen).toHaveLength(1);
  });

  it('ends the session with a DELETE on terminate', async () => {
    const f = await fixture((req, res, body) => {
      if (req.method === 'DELETE') {
        res.writeHead(200);
        res.end();
      } else json(res, 200, answer(body, {}), { 'mcp-session-id': 'S-5' });
    });
    const { t } = await connect(f);
    await t.send(request(1, 'initialize'));
    await t.terminateSession();
    const del = f.seen.find((s) => s.method === 'DELETE');
    expect(del?.headers['mcp-session-id']).toBe('S-5');
    expect(t.sessionId).toBeUndefined();
    // nothing to end twice
    await t.terminateSession();
    expect(f.seen.filter((s) => s.method === 'DELETE')).toHaveLength(1);
  });

  it('ends the pending POST of a request the client cancelled', async () => {
    const f = await fixture((_req, res, body) => {
      const m = JSON.parse(body) as { method?: string };
      if (m.method === 'notifications/cancelled') {
        res.writeHead(202);
        res.end();
        return;
      }
      // a stream that would never answer
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(': working\n\n');
    });
    const { t, errors } = await connect(f);
    await t.send(request(3));
    expect(f.cutOff).toBe(0);
    await t.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 3, reason: 'stop' } });
    await waitFor(() => f.cutOff === 1, 'the POST to end');
    expect(errors).toEqual([]);
  });

  it('keeps one socket alive over many calls', async () => {
    const f = await fixture((_req, res, body) => {
      if (f.seen.length % 2 === 0) json(res, 200, answer(body, {}));
      else {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.end(sse(answer(body, {})));
      }
    });
    const { t, got } = await connect(f);
    for (let i = 1; i <= 50; i++) {
      await t.send(request(i));
      await waitFor(() => got.length === i, `answer ${i}`);
    }
    expect(f.connections).toBe(1);
  });
});
