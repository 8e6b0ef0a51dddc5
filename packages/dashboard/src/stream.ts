/**
 * Reads `GET /v1/events` with fetch and a ReadableStream: EventSource cannot send an
 * Authorization header, and the key must never go into a URL. Reconnects with a growing delay.
 */

export interface StreamEvent {
  readonly type: string;
  readonly data: Record<string, unknown>;
}

export type StreamStatus = 'connecting' | 'live' | 'reconnecting' | 'unauthorized';

export interface StreamHandlers {
  onEvent(e: StreamEvent): void;
  onStatus(s: StreamStatus): void;
}

/** Parses SSE text into events; returns what is left of an incomplete block. */
export function parseSse(buffer: string, emit: (e: StreamEvent) => void): string {
  let rest = buffer.replace(/\r\n/g, '\n');
  let i: number;
  while ((i = rest.indexOf('\n\n')) !== -1) {
    const block = rest.slice(0, i);
    rest = rest.slice(i + 2);
    let type = 'message';
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon === -1 ? line : line.slice(0, colon);
      const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') type = value;
      else if (field === 'data') data.push(value);
    }
    if (data.length === 0) continue;
    try {
      const parsed: unknown = JSON.parse(data.join('\n'));
      if (parsed !== null && typeof parsed === 'object') emit({ type, data: parsed as Record<string, unknown> });
    } catch {
      // a malformed frame is skipped, never rendered as markup
    }
  }
  return rest;
}

/** Opens the stream; the returned function closes it. */
export function openStream(key: string, handlers: StreamHandlers): () => void {
  let stopped = false;
  let ctl: AbortController | undefined;
  let delay = 500;

  const run = async () => {
    while (!stopped) {
      ctl = new AbortController();
      try {
        const res = await fetch('/v1/events', { headers: { authorization: `Bearer ${key}`, accept: 'text/event-stream' }, cache: 'no-store', credentials: 'omit', signal: ctl.signal });
        if (res.status === 401 || res.status === 403) {
          handlers.onStatus('unauthorized');
          return;
        }
        if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf = parseSse(buf + value, (e) => {
            if (e.type === 'ready') {
              delay = 500;
              handlers.onStatus('live');
            } else if (e.type === 'unauthorized') {
              stopped = true;
              handlers.onStatus('unauthorized');
            } else {
              handlers.onEvent(e);
            }
          });
          if (buf.length > 1_000_000) throw new Error('event frame too large');
        }
      } catch {
        // network error or abort: reconnect below unless stopped
      }
      if (stopped) return;
      handlers.onStatus('reconnecting');
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 10_000);
    }
  };
  handlers.onStatus('connecting');
  void run();
  return () => {
    stopped = true;
    ctl?.abort();
  };
}
