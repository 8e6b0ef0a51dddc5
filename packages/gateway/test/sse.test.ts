/** The incremental SSE parser on the stream grammar's corners, fed byte by byte and whole. */
import { describe, expect, it } from 'vitest';
import { SseParser, type SseEvent } from '../src/sse.ts';

function parse(text: string, split: 'whole' | 'bytes', max = 1 << 20): { events: SseEvent[]; retries: number[]; ids: string[] } {
  const events: SseEvent[] = [];
  const retries: number[] = [];
  const ids: string[] = [];
  const p = new SseParser({ event: (e) => void events.push(e), retry: (ms) => void retries.push(ms), id: (id) => void ids.push(id) }, max);
  const bytes = Buffer.from(text, 'utf8');
  if (split === 'whole') p.push(bytes);
  else for (let i = 0; i < bytes.length; i++) p.push(bytes.subarray(i, i + 1));
  return { events, retries, ids };
}

describe.each(['whole', 'bytes'] as const)('the SSE parser (%s)', (split) => {
  it('reads LF, CRLF and CR line endings, a leading BOM, comments and multi-line data', () => {
    const { events } = parse('\uFEFFdata: a\r\n: comment\rdata:b\r\n\r\nevent: ping\ndata: {"é":1}\n\ndata\n\n', split);
    // the last event's data is empty: it dispatches nothing
    expect(events).toEqual([
      { event: 'message', data: 'a\nb', id: undefined },
      { event: 'ping', data: '{"é":1}', id: undefined },
    ]);
  });

  it('keeps the last event id across events, ignores an id with NUL, and reads retry', () => {
    const { events, retries, ids } = parse('id: 1\ndata: x\n\ndata: y\n\nid: a\0b\nretry: 250\nretry: soon\ndata: z\n\n', split);
    expect(events.map((e) => [e.data, e.id])).toEqual([
      ['x', '1'],
      ['y', '1'],
      ['z', '1'],
    ]);
    expect(ids).toEqual(['1']);
    expect(retries).toEqual([250]);
  });

  it('refuses an event larger than its bound', () => {
    expect(() => parse(`data: ${'x'.repeat(2000)}\n\n`, split, 1024)).toThrow(/exceeds 1024 bytes/);
    expect(() => parse(`data: ${'x'.repeat(2000)}`, split, 1024)).toThrow(/exceeds 1024 bytes/);
  });
});
