/**
 * External anchors (audit.anchors): every signed checkpoint reaches a file outside the data
 * folder and webhook receivers, retried from the node's own checkpoint record until delivered,
 * without ever holding up a decision; the API checks the chain against the anchor file.
 */
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { DatabaseSync } from 'node:sqlite';
import { createRuntime, parseConfig, type MandateConfigInput, type MandateRuntime } from '@mandate/server';
import type { Checkpoint } from '@mandate/core';
import { afterAll, describe, expect, it } from 'vitest';
import { verifyWebhookSignature } from '../../src/webhook.ts';
import { startHarness, WIDE_CEILING } from '../support.ts';

const SECRET = 'anchor-secret-0123456789';
const roots: string[] = [];
afterAll(async () => {
  for (const r of roots) await rm(r, { recursive: true, force: true });
});

async function tempRoot(): Promise<string> {
  const r = await mkdtemp(join(tmpdir(), 'mandate-anchors-'));
  roots.push(r);
  return r;
}

async function eventually(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting until ${what}`);
}

function runtimeOf(dataDir: string, audit: MandateConfigInput['audit']): Promise<MandateRuntime> {
  return createRuntime(parseConfig({ environment: 'prod', data_dir: dataDir, log: { level: 'silent' }, audit }), { writeAdminKeyFile: false });
}

const draft = (tag: string) => [{ kind: 'decision' as const, ts: Date.now(), callId: tag, data: { effect: 'deny' } }];

/** A receiver that answers with `status()` and keeps what it was sent. */
async function receiver(status: () => number): Promise<{ url: string; got: { body: string; req: IncomingMessage }[]; server: Server }> {
  const got: { body: string; req: IncomingMessage }[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      got.push({ body, req });
      res.writeHead(status()).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/anchors`, got, server };
}

describe('the anchor file', () => {
  it('refuses an anchor file inside the data folder, or in a folder that does not exist (CONFIG_INVALID)', async () => {
    const root = await tempRoot();
    const data = join(root, 'data');
    mkdirSync(join(data, 'sub'), { recursive: true });
    await expect(runtimeOf(data, { anchors: { file: join(data, 'anchors.jsonl') } })).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    await expect(runtimeOf(data, { anchors: { file: join(data, 'sub', '..', 'sub', 'a.jsonl') } })).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    await expect(runtimeOf(data, { anchors: { file: join(root, 'missing', 'a.jsonl') } })).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });

  it('receives every checkpoint, and at start-up those a run signed while the file was unreachable', async () => {
    const root = await tempRoot();
    const data = join(root, 'data');
    const outside = join(root, 'outside');
    mkdirSync(outside);
    const file = join(outside, 'anchors.jsonl');
    const rt = await runtimeOf(data, { anchors: { file, backoff: '20ms', max_backoff: '100ms' } });
    await rt.audit.append(draft('a'));
    await rt.audit.checkpointNow();
    await eventually(() => readLines(file).length === 1, 'the first checkpoint is anchored');
    // the anchor's folder goes away: checkpoints are still signed, and kept for later
    rmSync(outside, { recursive: true });
    await rt.audit.append(draft('b'));
    await rt.audit.checkpointNow();
    const missed = (await rt.store.checkpoints.listCheckpoints()).at(-1) as Checkpoint;
    await rt.close();
    mkdirSync(outside);
    const again = await runtimeOf(data, { anchors: { file } });
    try {
      await eventually(() => readLines(file).some((c) => c.seq === missed.seq && c.signature === missed.signature), 'the missed checkpoint is anchored after the restart');
    } finally {
      await again.close();
    }
  });

  it('lets GET /v1/audit/verify detect a log cut back to an older checkpoint', async () => {
    const root = await tempRoot();
    const file = join(root, 'anchors.jsonl');
    const h = await startHarness({ config: { audit: { anchors: { file } } } });
    try {
      const agent = await h.registerAgent('anchored', WIDE_CEILING);
      const task = await h.startTask(agent);
      await h.runtime.audit.checkpointNow();
      const older = (await h.runtime.store.audit.head())?.seq ?? 0;
      expect((await h.authorize(task.token, { tool: 'helpdesk.search_tickets', args: {} })).statusCode).toBe(200);
      await h.runtime.audit.checkpointNow();
      await eventually(() => readLines(file).length === 2, 'both checkpoints are anchored');
      expect((await h.op('GET', '/v1/audit/verify')).json()).toMatchObject({ ok: true, status: 'intact', anchors: { source: file, checkpoints: 2, records_after: 0 } });
      // whoever can write the database removes the newest checkpoint and what it covered
      const db = new DatabaseSync(join(h.dir, 'mandate.db'));
      db.prepare('DELETE FROM checkpoints WHERE seq > ?').run(older);
      db.prepare('DELETE FROM audit_log WHERE seq > ?').run(older);
      db.close();
      rmSync(join(h.dir, 'audit-checkpoints.jsonl'));
      const v = (await h.op('GET', '/v1/audit/verify')).json<{ ok: boolean; problem: { code: string; message: string } }>();
      expect(v).toMatchObject({ ok: false, status: 'broken', problem: { code: 'TRUNCATED', seq: older + 1 } });
      expect(v.problem.message).toContain('cut back');
    } finally {
      await h.close();
    }
  });
});

function readLines(file: string): Checkpoint[] {
  try {
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Checkpoint);
  } catch {
    return [];
  }
}

describe('anchor webhooks', () => {
  it('POSTs each checkpoint, signed, retrying a failing receiver until it answers 2xx', async () => {
    const root = await tempRoot();
    let failures = 2;
    const r = await receiver(() => (failures-- > 0 ? 503 : 204));
    const rt = await runtimeOf(join(root, 'data'), { anchors: { webhooks: [{ url: r.url, secret: SECRET }], backoff: '20ms', max_backoff: '100ms' } });
    try {
      await rt.audit.append(draft('a'));
      await rt.audit.checkpointNow();
      const cp = (await rt.store.checkpoints.listCheckpoints()).at(-1) as Checkpoint;
      await eventually(() => rt.anchors.status()[0]?.anchoredSeq === cp.seq, 'the receiver took the checkpoint');
      expect(r.got).toHaveLength(3);
      const last = r.got[2] as { body: string; req: IncomingMessage };
      expect(JSON.parse(last.body)).toEqual({ type: 'audit.checkpoint', checkpoint: { seq: cp.seq, headHash: cp.headHash, ts: cp.ts, kid: cp.kid, signature: cp.signature } });
      expect(verifyWebhookSignature(SECRET, String(last.req.headers['x-mandate-timestamp']), last.body, String(last.req.headers['x-mandate-signature']))).toBe(true);
      expect(rt.anchors.status()[0]).toMatchObject({ pending: 0, delivered: 1, lastError: undefined });
    } finally {
      await rt.close();
      r.server.close();
    }
  });

  it('never holds up a decision: a receiver that never answers leaves appends and checkpoints as fast', async () => {
    const root = await tempRoot();
    const hang = createServer(() => undefined);
    await new Promise<void>((res) => hang.listen(0, '127.0.0.1', res));
    const url = `http://127.0.0.1:${(hang.address() as AddressInfo).port}/`;
    const rt = await runtimeOf(join(root, 'data'), { anchors: { webhooks: [{ url, secret: SECRET, timeout: '30s' }] } });
    try {
      await rt.audit.append(draft('a'));
      await rt.audit.checkpointNow();
      // the receiver holds the first delivery for 30 s: appends and checkpoints go on meanwhile
      for (let i = 0; i < 5; i++) {
        await rt.audit.append(draft(`b${i}`));
        await rt.audit.checkpointNow();
      }
      expect((await rt.store.checkpoints.listCheckpoints()).length).toBe(6);
      expect(rt.anchors.status()[0]).toMatchObject({ anchoredSeq: 0, delivered: 0 });
    } finally {
      hang.closeAllConnections();
      hang.close();
      await rt.close();
    }
  });

  it('delivers after a restart what a receiver missed, from the node record, and not again what it took', async () => {
    const root = await tempRoot();
    const data = join(root, 'data');
    let up = false;
    const r = await receiver(() => (up ? 200 : 500));
    const anchors = { webhooks: [{ url: r.url, secret: SECRET, timeout: '2s' }], backoff: '20ms', max_backoff: '50ms' };
    const first = await runtimeOf(data, { anchors });
    await first.audit.append(draft('a'));
    await first.audit.checkpointNow();
    const missed = (await first.store.checkpoints.listCheckpoints()).at(-1) as Checkpoint;
    await eventually(() => r.got.length >= 2, 'the receiver refused it at least twice');
    await first.close();
    up = true;
    const before = r.got.length;
    const second = await runtimeOf(data, { anchors });
    await eventually(() => second.anchors.status()[0]?.anchoredSeq === missed.seq, 'the missed checkpoint is delivered');
    const delivered = r.got.slice(before).map((g) => (JSON.parse(g.body) as { checkpoint: Checkpoint }).checkpoint.seq);
    expect(delivered).toContain(missed.seq);
    await second.close();
    // a third run finds the receiver's cursor and sends nothing again
    const count = r.got.length;
    const third = await runtimeOf(data, { anchors });
    await third.close();
    expect(r.got.length).toBe(count);
    r.server.close();
  });
});
