/**
 * Alert delivery on several nodes: each stored alert reaches the webhook once, not once per
 * node (a lease per webhook in the store), and when the delivering node stops another one takes
 * over from the same cursor. Two runtimes in this process over a throw-away PostgreSQL.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Alert } from '@mandate/core';
import { createRuntime, parseConfig, type MandateRuntime } from '../../src/index.ts';
import { policyDir } from '../behaviour/fixture.ts';
import { until } from './harness.ts';
import { startThrowawayPostgres, type ThrowawayPostgres } from './throwaway-pg.ts';

const N = 200;

function alert(id: string, ts: number): Alert {
  return {
    id, ts, taskId: 'task-x', agentId: 'spiffe://nodes.test/agents/x', callId: `call-${id}`, tool: 'http.post', severity: 'high', detectors: ['drift'],
    signals: [{ detector: 'drift', severity: 'high', confidence: 0.8, evidence: { class: 'export' } }], actions: [], policyEffect: 'allow', finalEffect: 'allow',
    state: 'open', ackedBy: undefined, ackedAt: undefined, ackNote: undefined,
  };
}

describe('alert delivery on two nodes', () => {
  let pg: ThrowawayPostgres;
  let dir: string;
  let server: Server;
  let url: string;
  const got: string[] = [];
  const nodes: MandateRuntime[] = [];

  beforeAll(async () => {
    pg = await startThrowawayPostgres();
    dir = mkdtempSync(join(tmpdir(), 'mandate-delivery-cluster-'));
    // the nodes share one key encryption key, as a real cluster must (keys.kek_file)
    writeFileSync(join(dir, 'kek.key'), randomBytes(32).toString('base64') + '\n', { mode: 0o600 });
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('utf8')));
      req.on('end', () => {
        got.push((JSON.parse(body) as { alert: { id: string } }).alert.id);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
    const policies = policyDir();
    for (const name of ['a', 'b']) {
      const config = parseConfig({
        environment: 'prod',
        data_dir: join(dir, name),
        store: pg.url,
        postgres: { schema: 'mandate' },
        policies: { dir: policies },
        audit: { key_file: join(dir, 'audit-keys.json') },
        keys: { kek_file: join(dir, 'kek.key') },
        log: { level: 'silent' },
        behaviour: { enabled: true, alerts: { webhooks: [{ name: 'soc', url, secret: 'a-webhook-secret-of-some-length', backoff_ms: 10, max_backoff_ms: 100, poll_ms: 50 }] } },
      });
      nodes.push(await createRuntime(config, { writeAdminKeyFile: false }));
    }
  }, 90_000);

  afterAll(async () => {
    for (const n of nodes) await n.close();
    server?.closeAllConnections();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    pg?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('delivers each alert once whichever node stored it, and the other node takes over when the first stops', async () => {
    const [a, b] = nodes as [MandateRuntime, MandateRuntime];
    for (let i = 0; i < N; i++) (i % 2 === 0 ? a : b).alerts.emit(alert(`alr_${String(i).padStart(4, '0')}`, Date.now()));
    await until(async () => new Set(got).size, (n) => n === N, 30_000);
    // a healthy receiver and a lease: no alert twice, none lost
    expect(got).toHaveLength(N);
    // the receiver has the last one a moment before its delivery is counted
    const status = await until(() => a.alerts.deliveryStatus(), (st) => st.webhooks[0]?.delivered === N, 10_000);
    expect(status.webhooks[0]).toMatchObject({ name: 'soc', delivered: N, dropped: 0, pending: 0 });
    expect(status.webhooks[0]?.lease).not.toBeNull();

    // the delivering node stops (and gives its lease up); the other one delivers what comes next
    const [gone, stays] = (await a.alerts.deliveryStatus()).webhooks[0]?.this_node.delivering === true ? [a, b] : [b, a];
    expect((await gone.alerts.deliveryStatus()).webhooks[0]?.this_node.delivering).toBe(true);
    await gone.close();
    nodes.splice(nodes.indexOf(gone), 1);
    for (let i = N; i < N + 20; i++) stays.alerts.emit(alert(`alr_${String(i).padStart(4, '0')}`, Date.now()));
    await until(async () => new Set(got).size, (n) => n === N + 20, 30_000);
    expect(got).toHaveLength(N + 20);
    const after = await until(() => stays.alerts.deliveryStatus(), (st) => st.webhooks[0]?.delivered === N + 20, 10_000);
    expect(after.webhooks[0]).toMatchObject({ delivered: N + 20, this_node: expect.objectContaining({ delivering: true }) });
  }, 120_000);
});
