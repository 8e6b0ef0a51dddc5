/**
 * The connection edge over real sockets: slow clients (headers or body dripped, or never sent) are
 * answered 408 and disconnected after the configured timeouts, idle kept-alive connections are
 * closed, and one client address cannot hold more than server.max_connections_per_ip connections
 * while other clients are still served. X-Forwarded-For is believed only from a trusted proxy.
 */
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '@mandate/server';
import { startHarness, type Harness } from '../support.ts';

/** what a raw client saw: everything the server wrote, and how long until the server closed it */
interface Seen {
  readonly text: string;
  readonly closedAfterMs: number;
}

/**
 * Opens a raw connection (from `localAddress`), runs `script` on it and resolves when the server
 * closes it, or with `closedAfterMs: Infinity` once `waitMs` passed with it still open.
 */
function rawClient(port: number, script: (s: Socket) => void, opts: { waitMs: number; localAddress?: string }): { socket: Socket; seen: Promise<Seen> } {
  const socket = connect({ port, host: '127.0.0.1', ...(opts.localAddress !== undefined ? { localAddress: opts.localAddress } : {}) });
  const seen = new Promise<Seen>((resolve) => {
    const t0 = performance.now();
    let text = '';
    let drip: ReturnType<typeof setInterval> | undefined;
    const timer = setTimeout(() => {
      resolve({ text, closedAfterMs: Number.POSITIVE_INFINITY });
      socket.destroy();
    }, opts.waitMs);
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      if (drip) clearInterval(drip);
      resolve({ text, closedAfterMs: performance.now() - t0 });
    });
    socket.on('connect', () => {
      script(socket);
      // a script may return a dripping interval through the socket
      drip = (socket as Socket & { drip?: ReturnType<typeof setInterval> }).drip;
    });
  });
  return { socket, seen };
}

/** writes `chunk` every `everyMs` until the socket closes */
function dripping(chunk: string, everyMs: number): (s: Socket) => void {
  return (s) => {
    (s as Socket & { drip?: ReturnType<typeof setInterval> }).drip = setInterval(() => {
      if (s.writable) s.write(chunk);
    }, everyMs);
  };
}

/** a GET over a fresh connection from `localAddress`; the status, or the error's code */
function get(port: number, path: string, opts: { localAddress?: string; headers?: Record<string, string> } = {}): Promise<number | string> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false, headers: opts.headers ?? {}, ...(opts.localAddress !== undefined ? { localAddress: opts.localAddress } : {}) }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    req.setTimeout(30_000, () => req.destroy(new Error('client timeout')));
    req.end();
  });
}

function getWithBody(port: number, path: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function listen(h: Harness): Promise<number> {
  await h.app.listen({ host: '127.0.0.1', port: 0 });
  const addr = h.app.server.address();
  if (addr === null || typeof addr !== 'object') throw new Error('not listening');
  return addr.port;
}

/** polls `fn` until it returns true, up to `ms` */
async function eventually(fn: () => Promise<boolean>, ms = 20_000): Promise<boolean> {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    if (await fn()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

const PARTIAL_BODY = 'POST /v1/authorize HTTP/1.1\r\nHost: a\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"tool":';

describe('timeouts', () => {
  it('has header, body and idle timeouts by default, enforced by the listening server', async () => {
    const config = parseConfig({});
    expect(config.server).toMatchObject({ headers_timeout: 10_000, request_timeout: 30_000, idle_timeout: 72_000, max_connections_per_ip: 256, trusted_proxies: [] });
    const h = await startHarness();
    try {
      expect(h.app.server.headersTimeout).toBe(10_000);
      expect(h.app.server.requestTimeout).toBe(30_000);
      expect(h.app.server.keepAliveTimeout).toBe(72_000);
    } finally {
      await h.close();
    }
  });

  it('refuses timeouts out of range, and a header timeout longer than the request timeout', () => {
    expect(() => parseConfig({ server: { request_timeout: '0s' } })).toThrow(/request_timeout.*between 100ms and 1h/);
    expect(() => parseConfig({ server: { headers_timeout: '20s', request_timeout: '10s' } })).toThrow(/headers_timeout.*must not exceed request_timeout/);
    expect(() => parseConfig({ server: { trusted_proxies: ['10.0.0.0/33'] } })).toThrow(/trusted_proxies.*CIDR/);
    expect(() => parseConfig({ server: { trusted_proxies: ['proxy.example'] } })).toThrow(/trusted_proxies/);
    expect(parseConfig({ server: { trusted_proxies: ['10.0.0.0/8', '192.0.2.1', 'fd00::/8'] } }).server.trusted_proxies).toHaveLength(3);
  });

  describe('with short timeouts', () => {
    let h: Harness;
    let port: number;
    beforeAll(async () => {
      // a bound far above what these tests open: here the timeouts alone must close the clients
      h = await startHarness({ config: { server: { headers_timeout: '500ms', request_timeout: '1s', idle_timeout: '1s', max_connections_per_ip: 5000 } } });
      port = await listen(h);
    });
    afterAll(async () => h.close());

    it.each([
      ['sends nothing', (): void => undefined, 500],
      ['sends half its headers', (s: Socket) => s.write('POST /v1/authorize HTTP/1.1\r\nHost: a\r\n'), 500],
      ['drips its headers', (s: Socket) => {
        s.write('POST /v1/authorize HTTP/1.1\r\n');
        dripping('X-Slow: 1\r\n', 100)(s);
      }, 500],
      ['sends half its body', (s: Socket) => s.write(PARTIAL_BODY), 1000],
      ['drips its body', (s: Socket) => {
        s.write(PARTIAL_BODY);
        dripping(' ', 100)(s);
      }, 1000],
    ])('answers a client that %s with 408 and disconnects it after the timeout', async (_what, script, timeoutMs) => {
      const slow = rawClient(port, script as (s: Socket) => void, { waitMs: 30_000 });
      // others are served meanwhile
      expect(await get(port, '/healthz')).toBe(200);
      const seen = await slow.seen;
      expect(seen.closedAfterMs).toBeLessThan(30_000);
      expect(seen.closedAfterMs).toBeGreaterThanOrEqual(timeoutMs * 0.8);
      expect(seen.text).toMatch(/^HTTP\/1\.1 408 /);
    });

    it('closes a kept-alive connection that stays idle', async () => {
      const idle = rawClient(port, (s) => s.write('GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n'), { waitMs: 30_000 });
      const seen = await idle.seen;
      expect(seen.text).toMatch(/^HTTP\/1\.1 200 /);
      expect(seen.closedAfterMs).toBeGreaterThanOrEqual(800);
      expect(seen.closedAfterMs).toBeLessThan(30_000);
    });

    it('closes a thousand slow clients, none left holding a descriptor', async () => {
      const clients = Array.from({ length: 1000 }, (_, i) => rawClient(port, (s) => s.write(i % 2 === 0 ? PARTIAL_BODY : 'POST /v1/authorize HTTP/1.1\r\n'), { waitMs: 60_000 }));
      const seen = await Promise.all(clients.map((c) => c.seen));
      expect(seen.filter((s) => s.closedAfterMs === Number.POSITIVE_INFINITY)).toHaveLength(0);
      expect(seen.filter((s) => !s.text.startsWith('HTTP/1.1 408 '))).toHaveLength(0);
      expect(await eventually(async () => (await new Promise<number>((r) => h.app.server.getConnections((_e, n) => r(n)))) === 0)).toBe(true);
    }, 120_000);
  });
});

describe('connections per client address', () => {
  let h: Harness;
  let port: number;
  beforeAll(async () => {
    h = await startHarness({ config: { server: { max_connections_per_ip: 3 } } });
    port = await listen(h);
  });
  afterAll(async () => h.close());

  it('refuses connections past the bound while another address is served, and serves the first again once one closes', async () => {
    const held = Array.from({ length: 3 }, () => rawClient(port, (s) => s.write(PARTIAL_BODY), { waitMs: 60_000 }));
    await Promise.all(held.map((c) => new Promise((r) => c.socket.once('connect', r))));
    // the fourth from the same address is closed at once, before it is read
    const fourth = rawClient(port, (s) => s.write('GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n'), { waitMs: 20_000 });
    const seen = await fourth.seen;
    expect(seen.closedAfterMs).toBeLessThan(20_000);
    expect(seen.text).toBe('');
    expect(await get(port, '/healthz')).not.toBe(200);
    // another address is served
    expect(await get(port, '/healthz', { localAddress: '127.0.0.2' })).toBe(200);
    // X-Forwarded-For is not believed without a trusted proxy
    expect(await get(port, '/healthz', { headers: { 'x-forwarded-for': '203.0.113.9' } })).not.toBe(200);
    // one closes: the address is served again
    held[0]?.socket.destroy();
    expect(await eventually(async () => (await get(port, '/healthz')) === 200)).toBe(true);
    for (const c of held) c.socket.destroy();
  });
});

describe('behind a trusted proxy', () => {
  let h: Harness;
  let port: number;
  beforeAll(async () => {
    h = await startHarness({ config: { server: { max_connections_per_ip: 2, trusted_proxies: ['127.0.0.1'] } } });
    port = await listen(h);
  });
  afterAll(async () => h.close());

  it('bounds requests in progress per forwarded client instead of the proxy\'s connections', async () => {
    const slow = (client: string) => rawClient(port, (s) => s.write(PARTIAL_BODY.replace('Host: a\r\n', `Host: a\r\nX-Forwarded-For: ${client}\r\n`)), { waitMs: 60_000 });
    const held = [slow('203.0.113.7'), slow('203.0.113.7')];
    await Promise.all(held.map((c) => new Promise((r) => c.socket.once('connect', r))));
    // the proxy itself may open more connections than the bound; the client behind it may not send more requests
    let refusal = '';
    const refusedInTime = await eventually(async () => {
      const r = await getWithBody(port, '/healthz', { 'x-forwarded-for': '203.0.113.7' });
      refusal = r.body;
      return r.status === 429;
    }, 10_000);
    expect(refusedInTime).toBe(true);
    expect(JSON.parse(refusal)).toMatchObject({ error: { code: 'RATE_LIMITED' } });
    expect(await get(port, '/healthz', { headers: { 'x-forwarded-for': '203.0.113.8' } })).toBe(200);
    expect(await get(port, '/healthz', { headers: { 'x-forwarded-for': '198.51.100.1, 203.0.113.8' } })).toBe(200);
    // an address that is not a trusted proxy is counted by its socket, whatever it forwards
    expect(await get(port, '/healthz', { localAddress: '127.0.0.2', headers: { 'x-forwarded-for': '203.0.113.7' } })).toBe(200);
    held[0]?.socket.destroy();
    expect(await eventually(async () => (await get(port, '/healthz', { headers: { 'x-forwarded-for': '203.0.113.7' } })) === 200)).toBe(true);
    for (const c of held) c.socket.destroy();
  });
});
