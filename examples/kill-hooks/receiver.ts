/**
 * A kill hook receiver: verifies each delivery, acts on each kill once, and tells Mandate it is
 * handled. Replace `onKill` with what your system does (cancel CI jobs, drain a queue, revoke
 * cloud credentials).
 *
 *   KILL_HOOK_SECRET=… node examples/kill-hooks/receiver.ts   # listens on 127.0.0.1:8787
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { MemorySeenDeliveries, verifyKillHook, type KillHookEvent } from '@mandate/sdk';

type OnKill = (kill: KillHookEvent['kill']) => Promise<void>;

export function killHookReceiver(secret: string, onKill: OnKill): Server {
  // one process: ids in memory; several replicas: a store they share (a unique key in your database)
  const seen = new MemorySeenDeliveries();

  /** the HTTP status to answer one delivery with */
  async function handle(headers: IncomingHttpHeaders, body: Buffer): Promise<number> {
    const v = await verifyKillHook({ secret, headers, body, seen });
    // handled before (Mandate retried, or someone replayed it): say so, do nothing again
    if (!v.ok) return v.code === 'KILL_HOOK_REPLAYED' ? 204 : 401;
    try {
      await onKill(v.event.kill);
      return 204;
    } catch {
      // not handled: forget it, so that Mandate's retry of this delivery is acted on
      seen.forget(v.deliveryId);
      return 500;
    }
  }

  return createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    // the raw body, as received: the signature covers its exact bytes
    req.on('end', () => void handle(req.headers, Buffer.concat(chunks)).then((status) => res.writeHead(status).end()));
  });
}

if (import.meta.main) {
  const secret = process.env['KILL_HOOK_SECRET'];
  if (secret === undefined || secret.length < 16) throw new Error('set KILL_HOOK_SECRET (at least 16 characters)');
  killHookReceiver(secret, async (kill) => {
    process.stdout.write(`kill ${kill.id}: ${kill.kind} ${JSON.stringify(kill.target)}, tasks ${kill.killed_tasks.join(', ')}\n`);
  }).listen(8787, '127.0.0.1');
}
