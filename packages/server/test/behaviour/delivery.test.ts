/**
 * Alerts are not lost quietly: webhook delivery is driven from the stored alerts, so a receiver
 * that was down gets every alert after it recovers, in order, even across a server restart;
 * what is dropped (past retention, or refused by the receiver) is logged with its ids and counted.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Alert } from '@mandate/core';
import { createRuntime, parseConfig, type MandateRuntime } from '../../src/index.ts';
import { verifyWebhookSignature } from '../../src/webhook.ts';
import { EXAMPLE_POLICIES, ManualClock, startHarness, TRUST_DOMAIN, type Harness } from '../support.ts';
import { behaviourHarness, call, CEILING, eventually, policyDir, triageMandate } from './fixture.ts';

const SECRET = 'a-webhook-secret-of-some-length';
const N = 300;
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Got {
  id: string;
  seq: number;
  key: string;
  verified: boolean;
}

/** A receiver that is down (drops every connection, or answers `downStatus`) until `up` is set. */
async function receiver(opts: { downStatus?: number } = {}) {
  const got: Got[] = [];
  const state = { up: false, refused: 0, answer: 204 };
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      if (!state.up) {
        state.refused += 1;
        if (opts.downStatus === undefined) req.socket.destroy();
        else res.writeHead(opts.downStatus).end();
        return;
      }
      const parsed = JSON.parse(body) as { type: string; delivery: { id: string; seq: number }; alert: { id: string } };
      got.push({
        id: parsed.alert.id,
        seq: Number(req.headers['x-mandate-alert-seq']),
        key: String(req.headers['idempotency-key']),
        verified: verifyWebhookSignature(SECRET, String(req.headers['x-mandate-timestamp']), body, String(req.headers['x-mandate-signature'])),
      });
      res.writeHead(state.answer).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanups.push(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook?token=t0p`, got, state };
}

const HOOK = { secret: SECRET, backoff_ms: 10, max_backoff_ms: 100, timeout_ms: 1000, poll_ms: 50 };

function alertAt(i: number, ts: number): Alert {
  return {
    id: `alr_test_${String(i).padStart(4, '0')}`,
    ts,
    taskId: 'task-x',
    agentId: `spiffe://${TRUST_DOMAIN}/agents/x`,
    callId: `call-${i}`,
    tool: 'http.post',
    severity: 'high',
    detectors: ['drift'],
    signals: [{ detector: 'drift', severity: 'high', confidence: 0.8, evidence: { class: 'export' } }],
    actions: [],
    policyEffect: 'allow',
    finalEffect: 'allow',
    state: 'open',
    ackedBy: undefined,
    ackedAt: undefined,
    ackNote: undefined,
  };
}

interface Status {
  head: number;
  webhooks: { name: string; url: string; cursor: number; pending: number; delivered: number; dropped: number; last_error: string | null; lease: { owner: string } | null }[];
}

/** every id once, in store order (a retry may repeat one: at least once, deduped by the id) */
function distinctInOrder(got: readonly Got[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  let lastSeq = 0;
  for (const g of got) {
    expect(g.seq, `alert ${g.id} arrived out of order`).toBeGreaterThanOrEqual(lastSeq);
    lastSeq = g.seq;
    if (!seen.has(g.id)) out.push(g.id);
    seen.add(g.id);
  }
  return out;
}

describe('durable alert delivery', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it(`delivers every one of ${N} alerts raised while the receiver was down, in order, once it is back`, async () => {
    const hook = await receiver();
    h = await behaviourHarness({ alerts: { webhooks: [{ url: hook.url, ...HOOK }] } });
    const agent = await h.registerAgent('triage', CEILING);
    const t = await h.startTask(agent, triageMandate({ budgets: { calls: N + 10 } }));
    const calls: string[] = [];
    for (let i = 0; i < N; i++) {
      // an export from a triage task: drift, an alert each; every decision answers while the receiver is down
      const d = await call(h, t.token, 'http.post', { url: `https://x.example/${i}` });
      expect(d.signals?.length).toBeGreaterThan(0);
      calls.push(d.call_id);
    }
    const stored = await eventually('every alert is stored', async () => {
      const list = (await (h as Harness).op('GET', `/v1/alerts?task_id=${t.id}&limit=1000`)).json<{ alerts: { id: string; call_id: string }[] }>().alerts;
      return list.length === N ? list : undefined;
    }, 30_000);
    // the order they were raised in: their calls' (the listing orders by time, and alerts of one
    // millisecond by id, which is random within it)
    const ids = calls.map((c) => stored.filter((a) => a.call_id === c).map((a) => a.id));
    expect(ids.every((x) => x.length === 1)).toBe(true);
    await eventually('the receiver refused some attempts', async () => hook.state.refused >= 3, 10_000);
    const down = (await h.op('GET', '/v1/alerts/delivery')).json<Status>();
    expect(down.webhooks[0]).toMatchObject({ delivered: 0, dropped: 0, pending: N, url: hook.url.replace('?token=t0p', '') });
    expect(down.webhooks[0]?.last_error).toEqual(expect.any(String));

    hook.state.up = true;
    await eventually('every alert is delivered', async () => new Set(hook.got.map((g) => g.id)).size === N, 60_000);
    expect(distinctInOrder(hook.got)).toEqual(ids.flat());
    expect(hook.got.every((g) => g.verified && g.key === g.id)).toBe(true);
    const after = await eventually('the counters settle', async () => {
      const s = (await (h as Harness).op('GET', '/v1/alerts/delivery')).json<Status>();
      return s.webhooks[0]?.pending === 0 ? s : undefined;
    });
    expect(after.webhooks[0]).toMatchObject({ delivered: N, dropped: 0, pending: 0, cursor: after.head, last_error: null });
    // operators only
    const viewer = (await h.op('POST', '/v1/operators/keys', { name: 'vic', role: 'viewer' })).json<{ key: string }>().key;
    expect((await h.op('GET', '/v1/alerts/delivery', undefined, viewer)).statusCode).toBe(403);
  }, 120_000);

  it('delivers every alert after a server restart between the outage and the recovery', async () => {
    const hook = await receiver({ downStatus: 503 });
    const dir = mkdtempSync(join(tmpdir(), 'mandate-delivery-restart-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const config = parseConfig({
      environment: 'prod',
      data_dir: dir,
      policies: { dir: EXAMPLE_POLICIES },
      log: { level: 'silent' },
      behaviour: { enabled: true, alerts: { webhooks: [{ url: hook.url, name: 'soc', ...HOOK }] } },
    });
    const clock = new ManualClock();
    const first: MandateRuntime = await createRuntime(config, { writeAdminKeyFile: false, clock });
    let firstClosed = false;
    cleanups.push(async () => {
      if (!firstClosed) await first.close();
    });
    for (let i = 0; i < N; i++) first.alerts.emit(alertAt(i, clock.now()));
    await eventually('every alert is stored', async () => first.alerts.stats.stored === N, 30_000);
    await eventually('the receiver refused some attempts', async () => hook.state.refused >= 3, 10_000);
    await first.close();
    firstClosed = true;
    expect(hook.got).toEqual([]);

    const second = await createRuntime(config, { writeAdminKeyFile: false, clock });
    cleanups.push(() => second.close());
    hook.state.up = true;
    await eventually('every alert is delivered after the restart', async () => new Set(hook.got.map((g) => g.id)).size === N, 60_000);
    expect(distinctInOrder(hook.got)).toEqual(Array.from({ length: N }, (_, i) => alertAt(i, 0).id));
    const s = await eventually('the counters settle', async () => {
      const st = await second.alerts.deliveryStatus();
      return st.webhooks[0]?.pending === 0 ? st : undefined;
    });
    expect(s.webhooks[0]).toMatchObject({ name: 'soc', delivered: N, dropped: 0 });
  }, 120_000);

  it('drops what is older than the retention period, logging every id and counting them, and delivers the rest', async () => {
    const hook = await receiver();
    const warnings: { obj: Record<string, unknown>; msg: string }[] = [];
    const log = { info: () => undefined, error: () => undefined, warn: (obj: object, msg: string) => warnings.push({ obj: obj as Record<string, unknown>, msg }) };
    const clock = new ManualClock();
    h = await startHarness({ clock, log, config: { policies: { dir: policyDir() }, behaviour: { enabled: true, alerts: { webhooks: [{ url: hook.url, ...HOOK, retention_ms: 60_000 }] } } } });
    const rt = h.runtime;
    for (let i = 0; i < 150; i++) rt.alerts.emit(alertAt(i, clock.now()));
    await eventually('stored', async () => rt.alerts.stats.stored === 150, 30_000);
    await eventually('the receiver refused some attempts', async () => hook.state.refused >= 1, 10_000);
    clock.advance(61_000);
    for (let i = 150; i < 160; i++) rt.alerts.emit(alertAt(i, clock.now()));
    await eventually('the old ones are dropped', async () => (await rt.alerts.deliveryStatus()).webhooks[0]?.dropped === 150, 60_000);
    hook.state.up = true;
    await eventually('the fresh ones are delivered', async () => new Set(hook.got.map((g) => g.id)).size === 10, 60_000);
    expect(distinctInOrder(hook.got)).toEqual(Array.from({ length: 10 }, (_, i) => alertAt(150 + i, 0).id));
    const dropped = warnings.filter((w) => w.msg === 'alert webhook: alerts dropped undelivered').flatMap((w) => w.obj['alerts'] as string[]);
    expect(new Set(dropped)).toEqual(new Set(Array.from({ length: 150 }, (_, i) => alertAt(i, 0).id)));
    // the receiver has the last one a moment before its delivery is counted
    await eventually('the deliveries are counted', async () => (await rt.alerts.deliveryStatus()).webhooks[0]?.delivered === 10);
    expect((await rt.alerts.deliveryStatus()).webhooks[0]).toMatchObject({ delivered: 10, dropped: 150 });
  }, 120_000);

  it('drops an alert the receiver keeps refusing (4xx) after max_attempts, and goes on with the next', async () => {
    const hook = await receiver();
    hook.state.up = true;
    hook.state.answer = 400;
    h = await behaviourHarness({ alerts: { webhooks: [{ url: hook.url, ...HOOK, max_attempts: 2 }] } });
    h.runtime.alerts.emit(alertAt(1, h.clock.now()));
    await eventually('dropped after two refusals', async () => (await (h as Harness).runtime.alerts.deliveryStatus()).webhooks[0]?.dropped === 1, 10_000);
    expect(hook.got.map((g) => g.id)).toEqual([alertAt(1, 0).id, alertAt(1, 0).id]);
    hook.state.answer = 204;
    h.runtime.alerts.emit(alertAt(2, h.clock.now()));
    await eventually('the next one is delivered', async () => hook.got.some((g) => g.id === alertAt(2, 0).id), 10_000);
    await eventually('the delivery is counted', async () => (await (h as Harness).runtime.alerts.deliveryStatus()).webhooks[0]?.delivered === 1);
    expect((await h.runtime.alerts.deliveryStatus()).webhooks[0]).toMatchObject({ delivered: 1, dropped: 1, last_error: null });
  });
});
