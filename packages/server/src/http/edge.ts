/**
 * The connection edge: how long a client may take to send a request, how long an idle connection
 * stays open, and how many connections one client address may hold. Without these, a thousand
 * clients sending a body one byte at a time (or not at all) held a thousand descriptors forever.
 */
import { BlockList, isIP } from 'node:net';
import type { Socket } from 'node:net';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { MandateError } from '@mandate/core';
import type { MandateConfig } from '../config.ts';

type ServerConfig = MandateConfig['server'];

/** Fastify's options for the timeouts (Node's http server enforces them). */
export function timeoutOptions(server: ServerConfig): { requestTimeout: number; keepAliveTimeout: number; http: { headersTimeout: number; requestTimeout: number; connectionsCheckingInterval: number } } {
  return {
    requestTimeout: server.request_timeout,
    keepAliveTimeout: server.idle_timeout,
    http: {
      headersTimeout: server.headers_timeout,
      requestTimeout: server.request_timeout,
      // Node checks the header and request timeouts on this period (default 30 s, which would let a
      // 10 s timeout run to 40 s); a tenth of the shorter one, between 100 ms and 1 s
      connectionsCheckingInterval: Math.min(1000, Math.max(100, Math.floor(server.headers_timeout / 10))),
    },
  };
}

/** An IPv4-mapped IPv6 address is the IPv4 client it maps: one client, one count. */
function clientKey(address: string | undefined): string {
  if (address === undefined) return 'unknown';
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

/** Whether an address is one of the trusted proxies; undefined when none is configured. */
export function trustedProxies(list: readonly string[]): ((address: string) => boolean) | undefined {
  if (list.length === 0) return undefined;
  const block = new BlockList();
  for (const entry of list) {
    const [address = '', prefix] = entry.split('/');
    const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
    if (prefix === undefined) block.addAddress(address, family);
    else block.addSubnet(address, Number(prefix), family);
  }
  return (address) => {
    const family = isIP(address);
    return family !== 0 && block.check(address, family === 6 ? 'ipv6' : 'ipv4');
  };
}

interface EdgeLog {
  warn(obj: object, msg: string): void;
}

/**
 * Bounds what one client address may hold open. Connections from a socket peer that is not a
 * trusted proxy are counted as they open and closed at once past the bound (before a byte is
 * read). A trusted proxy's connections carry many clients: they are not counted; instead each
 * forwarded client's requests in progress are, and past the bound answered 429 RATE_LIMITED.
 */
export function boundConnections(app: FastifyInstance, max: number, isTrusted: ((address: string) => boolean) | undefined, log: EdgeLog): void {
  const open = new Map<string, number>();
  let refused = 0;
  let lastWarned = Number.NEGATIVE_INFINITY;
  const warn = (client: string, what: string) => {
    refused += 1;
    // at most one line per 10 s: a flood of refusals must not become a flood of log lines
    const now = performance.now();
    if (now - lastWarned < 10_000) return;
    lastWarned = now;
    log.warn({ client, limit: max, refused }, `${what} refused: server.max_connections_per_ip reached`);
    refused = 0;
  };

  app.server.on('connection', (socket: Socket) => {
    const peer = socket.remoteAddress;
    if (peer !== undefined && isTrusted?.(peer) === true) return;
    const key = clientKey(peer);
    const n = open.get(key) ?? 0;
    if (n >= max) {
      warn(key, 'connection');
      socket.destroy();
      return;
    }
    open.set(key, n + 1);
    socket.once('close', () => {
      const left = (open.get(key) ?? 1) - 1;
      if (left <= 0) open.delete(key);
      else open.set(key, left);
    });
  });

  if (!isTrusted) return;
  const inFlight = new Map<string, number>();
  app.addHook('onRequest', (req: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => {
    const peer = req.socket.remoteAddress;
    if (peer === undefined || !isTrusted(peer)) {
      done();
      return;
    }
    // req.ip: the client named by X-Forwarded-For, read through the trusted hops only
    const key = clientKey(req.ip);
    const n = inFlight.get(key) ?? 0;
    if (n >= max) {
      warn(key, 'request');
      done(new MandateError('RATE_LIMITED', `more than ${max} requests in progress from ${key}`));
      return;
    }
    inFlight.set(key, n + 1);
    reply.raw.once('close', () => {
      const left = (inFlight.get(key) ?? 1) - 1;
      if (left <= 0) inFlight.delete(key);
      else inFlight.set(key, left);
    });
    done();
  });
}
