import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '@mandate/server';
import { mandate, startHarness, type Harness } from '../support.ts';

const ROOT = join(import.meta.dirname, '..', '..', '..', '..');
const TOKEN = 'scrape-token-0123456789abcdefghijklmnop';

/** `name{labels} value` lines of a Prometheus text exposition */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

/** every metric name docs/metrics.md lists in its table of Mandate's metrics */
function documentedNames(): string[] {
  const doc = readFileSync(join(ROOT, 'docs', 'metrics.md'), 'utf8');
  return [...doc.matchAll(/^\| `(mandate_[a-z_]+)` \|/gm)].map((m) => m[1] as string);
}

describe('GET /metrics', () => {
  let h: Harness;
  let base: string;
  let tokenDir: string;

  beforeAll(async () => {
    tokenDir = mkdtempSync(join(tmpdir(), 'mandate-metrics-token-'));
    const tokenFile = join(tokenDir, 'metrics.token');
    writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
    h = await startHarness({ config: { metrics: { enabled: true, token_file: tokenFile } } });
    base = await h.app.listen({ host: '127.0.0.1', port: 0 });
  });

  afterAll(async () => {
    await h.close();
    rmSync(tokenDir, { recursive: true, force: true });
  });

  const scrape = (authorization?: string) => fetch(`${base}/metrics`, authorization === undefined ? {} : { headers: { authorization } });

  it('refuses a scrape without the token, with an operator key, or with a wrong token', async () => {
    for (const auth of [undefined, `Bearer ${h.admin}`, `Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`]) {
      const res = await scrape(auth);
      expect(res.status, String(auth)).toBe(401);
      expect(res.headers.get('www-authenticate')).toContain('Bearer');
      const body = (await res.json()) as { error: { code: string } };
      expect(body.error.code).toBe('UNAUTHENTICATED');
    }
  });

  it('counts decisions by effect, their latency, audit commits, kills, live tasks and requests by route, under the documented names', async () => {
    const agent = await h.registerAgent('metrics');
    const task = await h.startTask(agent);
    const allowed = await h.authorize(task.token, { tool: 'helpdesk.search_tickets', args: { query: 'printer' } });
    expect(allowed.json<{ effect: string }>().effect).toBe('allow');
    const denied = await h.authorize(task.token, { tool: 'mail.send', args: { to: 'a@example.com' } });
    expect(denied.json<{ effect: string }>().effect).toBe('deny');
    // the same calls over the socket, so the request counter sees real HTTP too
    const overHttp = await fetch(`${base}/v1/authorize`, { method: 'POST', headers: { authorization: `Bearer ${task.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ tool: 'mail.send', args: {} }) });
    expect(overHttp.status).toBe(200);

    let res = await scrape(`Bearer ${TOKEN}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    let s = samples(await res.text());
    expect(s.get('mandate_decisions_total{effect="allow"}')).toBe(1);
    expect(s.get('mandate_decisions_total{effect="deny"}')).toBe(2);
    expect(s.get('mandate_decision_duration_seconds_count{effect="allow"}')).toBe(1);
    expect(s.get('mandate_decision_duration_seconds_count{effect="deny"}')).toBe(2);
    expect(s.get('mandate_audit_records_total{kind="decision"}')).toBeGreaterThanOrEqual(3);
    expect(s.get('mandate_audit_records_total{kind="task.started"}')).toBe(1);
    expect(s.get('mandate_audit_commit_duration_seconds_count{operation="decision"}')).toBeGreaterThanOrEqual(3);
    expect(s.get('mandate_tasks_live{state="active"}')).toBe(1);
    expect(s.get('mandate_store_up')).toBe(1);
    expect(s.get('mandate_change_feed_connected')).toBe(1);
    expect(s.get('mandate_gateway_sessions')).toBe(0);
    expect(s.get('mandate_policies_loaded')).toBeGreaterThan(0);
    expect(s.get('mandate_http_requests_total{method="POST",route="/v1/authorize",status="200"}')).toBe(3);
    expect(s.get('mandate_http_requests_total{method="POST",route="/v1/tasks",status="201"}')).toBe(1);
    // a denied call names its reasons; no id, tool or URL ever becomes a label
    expect([...s.keys()].some((k) => k.startsWith('mandate_decision_reasons_total{reason='))).toBe(true);
    const text = [...s.keys()].join('\n');
    for (const secretish of [task.id, agent, 'mail.send', 'helpdesk.search_tickets', 'printer']) expect(text).not.toContain(secretish);

    expect((await h.op('POST', '/v1/kill', { task: task.id, reason: 'metrics test' })).statusCode).toBe(200);
    res = await scrape(`Bearer ${TOKEN}`);
    s = samples(await res.text());
    expect(s.get('mandate_kills_total{target="task"}')).toBe(1);
    expect(s.get('mandate_tasks_live{state="active"}')).toBe(0);
    // the scrape before this one was counted too, by its template
    expect(s.get('mandate_http_requests_total{method="GET",route="/metrics",status="200"}')).toBeGreaterThanOrEqual(1);
    expect(s.get('mandate_http_requests_total{method="GET",route="/metrics",status="401"}')).toBe(4);
  });

  it('serves every name docs/metrics.md documents, and documents every mandate_ name it serves', async () => {
    const res = await scrape(`Bearer ${TOKEN}`);
    const text = await res.text();
    const served = new Set([...text.matchAll(/^# TYPE (mandate_[a-z_]+) /gm)].map((m) => m[1] as string));
    const documented = documentedNames();
    expect(documented.length).toBeGreaterThan(15);
    expect([...served].filter((n) => !documented.includes(n))).toEqual([]);
    expect(documented.filter((n) => !served.has(n))).toEqual([]);
    // the process metrics the docs name are there too
    expect(text).toMatch(/^process_cpu_seconds_total /m);
    expect(text).toMatch(/^nodejs_eventloop_lag_seconds /m);
  });
});

describe('metrics configuration', () => {
  it('is off by default: no /metrics route, and no registry counting decisions or requests', async () => {
    const h = await startHarness();
    try {
      expect((await h.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(404);
      // nothing is recorded for a scrape that cannot happen: a decision and a request still work
      expect(h.runtime.metrics).toBeUndefined();
      const task = await h.startTask(await h.registerAgent('metrics-off'), mandate());
      expect((await h.authorize(task.token, { tool: 'helpdesk.search_tickets', args: { query: 'printer' } })).json<{ effect: string }>().effect).toBe('allow');
    } finally {
      await h.close();
    }
  });

  it('refuses metrics.enabled without a token file', () => {
    expect(() => parseConfig({ metrics: { enabled: true } })).toThrow(/metrics\.token_file.*required/);
  });

  it('refuses to start with a token file that is missing or holds a short token', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mandate-metrics-bad-'));
    try {
      const short = join(dir, 'short.token');
      writeFileSync(short, 'too-short\n');
      for (const file of [short, join(dir, 'absent.token')]) {
        await expect(startHarness({ config: { metrics: { enabled: true, token_file: file } } })).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
