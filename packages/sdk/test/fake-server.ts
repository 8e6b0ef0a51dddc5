/**
 * A scriptable, hostile HTTP server for the SDK's failure tests: it answers whatever the test
 * tells it to (500s, garbage, half a body, silence), on a real socket, and records every request.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface SeenRequest {
  readonly method: string;
  readonly path: string;
  readonly authorization: string | undefined;
  readonly body: unknown;
}

export type Handler = (req: SeenRequest, res: ServerResponse, raw: IncomingMessage) => void | Promise<void>;

export interface FakeServer {
  readonly url: string;
  readonly port: number;
  readonly requests: SeenRequest[];
  handle(h: Handler): void;
  close(): Promise<void>;
}

export function json(res: ServerResponse, status: number, body: unknown): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** A JWT-shaped string; the fake server never verifies it. */
export function fakeJwt(label: string): string {
  return `eyJhbGciOiJFZERTQSJ9.${Buffer.from(JSON.stringify({ label })).toString('base64url')}.c2ln`;
}

export function issued(taskId: string, token: string, expiresAtMs: number): unknown {
  return { task: { id: taskId, agent_id: 'spiffe://t.local/a', mandate_hash: 'sha256:x', expires_at: new Date(expiresAtMs + 600_000).toISOString() }, token, token_expires_at: new Date(expiresAtMs).toISOString() };
}

export function decision(effect: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { call_id: 'call_1', effect, final: effect === 'allow' ? 'allowed' : 'blocked', reasons: [], policy_ids: [], policy_version: 'sha256:p', task_id: 'task_1', agent_id: 'spiffe://t.local/a', details: {}, audit_seq: 1, approval_id: null, ...extra };
}

export async function startFakeServer(port = 0): Promise<FakeServer> {
  const requests: SeenRequest[] = [];
  let handler: Handler = (_req, res) => json(res, 404, { error: { code: 'NOT_FOUND', message: 'no handler', requestId: 'r' } });
  const sockets = new Set<Socket>();
  const server: Server = createServer((raw, res) => {
    const chunks: Buffer[] = [];
    raw.on('data', (c: Buffer) => chunks.push(c));
    raw.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown;
      try {
        body = text === '' ? undefined : JSON.parse(text);
      } catch {
        body = text;
      }
      const seen = { method: raw.method ?? '', path: raw.url ?? '', authorization: raw.headers.authorization, body };
      requests.push(seen);
      Promise.resolve(handler(seen, res, raw)).catch(() => res.destroy());
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const actual = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${actual}`,
    port: actual,
    requests,
    handle(h) {
      handler = h;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}
