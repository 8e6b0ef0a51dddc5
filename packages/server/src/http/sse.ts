import type { ServerResponse } from 'node:http';
import type { FastifyReply } from 'fastify';

/** One server-sent event: `event: <type>` and its data as one JSON line (plus an id when given). */
export function sseFrame(event: string, data: unknown, id?: string | number): string {
  return `${id !== undefined ? `id: ${id}\n` : ''}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** the comment line a stream sends while it has nothing to say */
export const SSE_HEARTBEAT = ': heartbeat\n\n';

/**
 * Takes the response over from Fastify (after the route's checks, so every refusal before this is
 * an ordinary JSON error) and opens a server-sent event stream with `first` as its first bytes.
 */
export function openSse(reply: FastifyReply, first: string): ServerResponse {
  reply.hijack();
  const raw = reply.raw;
  raw.writeHead(200, {
    ...(reply.getHeaders() as Record<string, string>),
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  raw.write(first);
  return raw;
}

/** Ends the stream with a last event, unless it is already gone. */
export function endSse(raw: ServerResponse, event: string, data: unknown): void {
  if (!raw.writableEnded && !raw.destroyed) raw.end(sseFrame(event, data));
}
