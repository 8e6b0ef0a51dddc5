import { MandateError } from '@mandate/core';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { MandateRuntime } from '../../compose.ts';
import { EVENT_TYPES, type DropReason, type EventType, type MandateEvent } from '../../events.ts';
import { bearer, requireOperator } from '../auth.ts';
import { parseBody } from '../validate.ts';
import { endSse, openSse, SSE_HEARTBEAT, sseFrame } from '../sse.ts';

export const querySchema = z.strictObject({ types: z.string().max(200).optional() });

/** A comment line every so often keeps proxies from closing an idle stream, and re-checks the key. */
export const HEARTBEAT_MS = 15_000;
const WRITE_BATCH = 32;

function parseTypes(text: string | undefined): Set<EventType> | undefined {
  if (text === undefined || text === '') return undefined;
  const out = new Set<EventType>();
  for (const t of text.split(',')) {
    if (!(EVENT_TYPES as readonly string[]).includes(t)) throw new MandateError('MALFORMED_REQUEST', `unknown event type "${t}" (known: ${EVENT_TYPES.join(', ')})`);
    out.add(t as EventType);
  }
  return out;
}

function frame(e: MandateEvent): string {
  return sseFrame(e.type, e.data, e.id);
}

/**
 * GET /v1/events: server-sent events for operators. Authenticated by the Authorization header
 * only (a key in a URL ends up in logs and history), so browsers read it with fetch, not
 * EventSource. The key is checked again at every heartbeat: a revoked key's stream ends.
 */
export function eventRoutes(app: FastifyInstance, rt: MandateRuntime): void {
  app.get('/v1/events', async (req, reply) => {
    await requireOperator(rt, req, 'viewer');
    const key = bearer(req);
    const q = parseBody(querySchema, req.query, 'query');
    const types = parseTypes(q.types);
    const raw = reply.raw;
    let waitingForDrain = false;
    let heartbeat: ReturnType<typeof setInterval> | undefined;

    const finish = (event: string, data: object) => {
      if (heartbeat) clearInterval(heartbeat);
      heartbeat = undefined;
      endSse(raw, event, data);
    };
    const pump = () => {
      waitingForDrain = false;
      while (!sub.closed && sub.pending > 0) {
        // a few frames per write: what waits in memory is the bounded queue, not one huge write
        const text = sub.take(WRITE_BATCH).map(frame).join('');
        // the socket's buffer is full: stop reading the queue; if it then overflows, the bus drops us
        if (!raw.write(text)) {
          waitingForDrain = true;
          raw.once('drain', pump);
          return;
        }
      }
    };
    const sub = rt.events.subscribe({
      types,
      onReady: () => {
        if (!waitingForDrain) pump();
      },
      onDrop: (reason: DropReason) => {
        req.log.warn({ reason }, 'event stream dropped');
        finish('dropped', { reason, message: reason === 'slow' ? 'the stream fell too far behind; reconnect' : 'the server is stopping' });
      },
    });

    openSse(reply, `retry: 3000\n${sseFrame('ready', { types: types ? [...types] : [...EVENT_TYPES] })}`);

    heartbeat = setInterval(() => {
      rt.operators.require(key, 'viewer').then(
        () => {
          if (!waitingForDrain && !raw.writableEnded) raw.write(SSE_HEARTBEAT);
        },
        () => {
          sub.close();
          finish('unauthorized', { message: 'the operator key is no longer valid' });
        },
      );
    }, HEARTBEAT_MS);
    heartbeat.unref();

    raw.on('close', () => {
      if (heartbeat) clearInterval(heartbeat);
      sub.close();
    });
  });
}
