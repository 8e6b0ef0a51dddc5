import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildHttpApp } from '../../src/http/app.ts';
import { startHarness, type Harness } from '../support.ts';

describe('the access log', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(() => h.close());

  it('writes one line per request, naming the request and its outcome', async () => {
    const lines: string[] = [];
    const app = buildHttpApp(h.runtime, { logger: { level: 'info', stream: { write: (l) => void lines.push(l) } } });
    try {
      expect((await app.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': 'log-test-1' } })).statusCode).toBe(200);
      expect((await app.inject({ method: 'GET', url: '/v1/agents', headers: { 'x-request-id': 'log-test-2' } })).statusCode).toBe(401);
      const entries = lines.map((l) => JSON.parse(l) as { reqId?: string; msg: string; req?: { method: string; url: string }; res?: { statusCode: number }; responseTime?: number });
      const ok = entries.filter((e) => e.reqId === 'log-test-1');
      expect(ok).toHaveLength(1);
      expect(ok[0]).toMatchObject({ msg: 'request completed', req: { method: 'GET', url: '/healthz' }, res: { statusCode: 200 } });
      expect(typeof ok[0]?.responseTime).toBe('number');
      const denied = entries.filter((e) => e.reqId === 'log-test-2');
      expect(denied.at(-1)).toMatchObject({ msg: 'request completed', req: { method: 'GET', url: '/v1/agents' }, res: { statusCode: 401 } });
      expect(entries.some((e) => e.msg === 'incoming request')).toBe(false);
    } finally {
      await app.close();
    }
  });
});
