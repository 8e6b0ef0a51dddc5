/** A kill hook receiver for tests: verifies each delivery as a real receiver would (the SDK). */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MemorySeenDeliveries, verifyKillHook, type KillHookEvent, type KillHookRefusal } from '@mandate/sdk';

export const HOOK_SECRET = 'kill-hook-secret-0123456789abcdef';
/** fast retries, so an outage and recovery fit in a test */
export const FAST = { backoff_ms: 10, max_backoff_ms: 100, timeout_ms: 2_000, poll_ms: 50 };

export interface Attempt {
  readonly deliveryId: string | undefined;
  readonly body: string;
  readonly headers: Record<string, string>;
  /** undefined while the receiver was down */
  readonly outcome: 'accepted' | KillHookRefusal | undefined;
}

export interface Receiver {
  readonly url: string;
  /** every request, in arrival order */
  readonly attempts: Attempt[];
  /** deliveries accepted once (verified, not seen before) */
  readonly accepted: KillHookEvent[];
  readonly state: { up: boolean };
  close(): Promise<void>;
}

/**
 * Down (it drops every connection, or answers `downStatus`) until `state.up`; then it verifies
 * each delivery, acts on a new one once, answers a replay 200 and anything else 401.
 */
export async function receiver(now: () => number, opts: { downStatus?: number; secret?: string } = {}): Promise<Receiver> {
  const seen = new MemorySeenDeliveries();
  const attempts: Attempt[] = [];
  const accepted: KillHookEvent[] = [];
  const state = { up: false };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const headers = Object.fromEntries(Object.entries(req.headers).filter((e): e is [string, string] => typeof e[1] === 'string'));
      const deliveryId = headers['x-mandate-delivery'];
      if (!state.up) {
        attempts.push({ deliveryId, body, headers, outcome: undefined });
        if (opts.downStatus === undefined) req.socket.destroy();
        else res.writeHead(opts.downStatus).end();
        return;
      }
      void verifyKillHook({ secret: opts.secret ?? HOOK_SECRET, headers: req.headers, body, seen, now }).then((v) => {
        attempts.push({ deliveryId, body, headers, outcome: v.ok ? 'accepted' : v.code });
        if (v.ok) accepted.push(v.event);
        res.writeHead(v.ok || v.code === 'KILL_HOOK_REPLAYED' ? 200 : 401).end();
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/kill-hook`,
    attempts,
    accepted,
    state,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** polls until `check` gives a value, or fails after `ms` naming `what` */
export async function eventually<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, ms = 30_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > until) throw new Error(`timed out after ${ms} ms waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
