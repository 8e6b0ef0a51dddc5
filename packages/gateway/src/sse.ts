/**
 * An incremental Server-Sent Events parser (the WHATWG event-stream grammar) over the bytes of
 * one HTTP response: fed chunks as they arrive, it calls back once per complete event. It holds
 * at most one event's worth of text, bounded by `maxEventBytes` (an event larger than that is an
 * error, never an unbounded buffer).
 */
import { StringDecoder } from 'node:string_decoder';

export interface SseEvent {
  /** the event's type (`message` when it named none) */
  readonly event: string;
  readonly data: string;
  /** the last event id seen on the stream so far (ids persist across events), if any */
  readonly id: string | undefined;
}

export interface SseCallbacks {
  event(e: SseEvent): void;
  /** the server's `retry:` field, in milliseconds */
  retry(ms: number): void;
  /** an event with an `id:` field arrived (the stream is resumable from it) */
  id?(id: string): void;
}

export class SseTooLarge extends Error {
  constructor(limit: number) {
    super(`an SSE event exceeds ${limit} bytes`);
  }
}

export class SseParser {
  private readonly decoder = new StringDecoder('utf8');
  private readonly cb: SseCallbacks;
  private readonly max: number;
  private buf = '';
  private data: string[] = [];
  private dataLen = 0;
  private type = '';
  private sawId = false;
  private first = true;
  lastEventId: string | undefined;

  constructor(cb: SseCallbacks, maxEventBytes: number) {
    this.cb = cb;
    this.max = maxEventBytes;
  }

  /** Feeds one chunk; throws SseTooLarge when an event outgrows the bound. */
  push(chunk: Buffer): void {
    let text = this.decoder.write(chunk);
    if (this.first && text.length > 0) {
      // a leading byte order mark is not part of the first field
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      this.first = false;
    }
    this.buf = this.buf.length === 0 ? text : this.buf + text;
    let pos = 0;
    const buf = this.buf;
    const n = buf.length;
    // the next CR, searched again only once passed (a stream of LF-only lines scans the chunk once)
    let cr = buf.indexOf('\r');
    while (pos < n) {
      const lf = buf.indexOf('\n', pos);
      if (cr >= 0 && cr < pos) cr = buf.indexOf('\r', pos);
      let end: number;
      let next: number;
      if (cr >= 0 && (lf < 0 || cr < lf)) {
        // a CR at the end of the chunk may be the first half of a CRLF: wait for the next byte
        if (cr === n - 1) break;
        end = cr;
        next = buf.charCodeAt(cr + 1) === 10 ? cr + 2 : cr + 1;
      } else if (lf >= 0) {
        end = lf;
        next = lf + 1;
      } else break;
      this.line(buf, pos, end);
      pos = next;
    }
    this.buf = pos === 0 ? buf : buf.slice(pos);
    if (this.buf.length + this.dataLen > this.max) throw new SseTooLarge(this.max);
  }

  private line(buf: string, start: number, end: number): void {
    if (start === end) return this.dispatch();
    if (buf.charCodeAt(start) === 58 /* : comment */) return;
    const colon = buf.indexOf(':', start);
    let field: string;
    let value: string;
    if (colon < 0 || colon > end) {
      field = buf.slice(start, end);
      value = '';
    } else {
      field = buf.slice(start, colon);
      const v = buf.charCodeAt(colon + 1) === 32 && colon + 1 < end ? colon + 2 : colon + 1;
      value = buf.slice(v, end);
    }
    switch (field) {
      case 'data':
        this.data.push(value);
        this.dataLen += value.length + 1;
        if (this.dataLen > this.max) throw new SseTooLarge(this.max);
        return;
      case 'event':
        this.type = value;
        return;
      case 'id':
        if (!value.includes('\0')) {
          this.lastEventId = value;
          this.sawId = true;
        }
        return;
      case 'retry':
        if (/^[0-9]+$/.test(value)) this.cb.retry(Number(value));
        return;
      default:
        return;
    }
  }

  private dispatch(): void {
    if (this.sawId && this.lastEventId !== undefined) this.cb.id?.(this.lastEventId);
    this.sawId = false;
    if (this.data.length === 0) {
      this.type = '';
      return;
    }
    const data = this.data.length === 1 ? (this.data[0] ?? '') : this.data.join('\n');
    const event = this.type === '' ? 'message' : this.type;
    this.data = [];
    this.dataLen = 0;
    this.type = '';
    // an empty data buffer dispatches nothing (a priming event's `data:`)
    if (data !== '') this.cb.event({ event, data, id: this.lastEventId });
  }
}
