/**
 * The documented receiver (docs/kill-hooks.md) against a real server: a kill reaches it once; a
 * receiver that fails to act gets the delivery again; a replayed or forged request changes nothing.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KillHookEvent } from '@mandate/sdk';
import { createRuntime, parseConfig, type MandateRuntime } from '@mandate/server';
import { killHookReceiver } from './receiver.ts';

const SECRET = 'example-kill-hook-secret-0123456789';
const ROOT = join(import.meta.dirname, '..', '..');

describe('the example kill hook receiver', () => {
  const kills: KillHookEvent['kill'][] = [];
  const captured: { headers: Record<string, string>; body: string }[] = [];
  let failNext = true;
  const receiver = killHookReceiver(SECRET, async (kill) => {
    if (failNext) {
      failNext = false;
      throw new Error('the job queue is not answering');
    }
    kills.push(kill);
  });
  receiver.prependListener('request', (req) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    // what an eavesdropper could capture and send again: the signed headers and the body
    req.on('end', () => captured.push({ headers: Object.fromEntries(Object.entries(req.headers).filter((e): e is [string, string] => typeof e[1] === 'string' && e[0].startsWith('x-mandate-'))), body }));
  });
  let dir: string;
  let rt: MandateRuntime;

  beforeAll(async () => {
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
    dir = mkdtempSync(join(tmpdir(), 'mandate-example-kill-hooks-'));
    rt = await createRuntime(
      parseConfig({
        environment: 'prod',
        data_dir: dir,
        policies: { dir: join(ROOT, 'examples', 'policies') },
        log: { level: 'silent' },
        kill_hooks: [{ name: 'jobs', url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/`, secret_env: 'KILL_HOOK_SECRET', backoff_ms: 20, max_backoff_ms: 200 }],
      }),
      { writeAdminKeyFile: false, env: { KILL_HOOK_SECRET: SECRET } },
    );
  }, 60_000);

  afterAll(async () => {
    await rt?.close();
    receiver.closeAllConnections();
    await new Promise<void>((r) => receiver.close(() => r()));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('acts on a kill once, after its own failure, and ignores a replay and a forgery', async () => {
    await rt.kill.kill({ all: true }, { kind: 'operator', operatorId: 'op-example' }, 'incident 42');
    const until = Date.now() + 30_000;
    while (kills.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    expect(kills).toMatchObject([{ kind: 'emergency_stop', reason: 'incident 42', by: 'op-example' }]);
    // the first attempt failed inside the receiver and was retried: two requests, one delivery id
    expect(captured.map((c) => c.headers['x-mandate-delivery'])).toEqual([`${kills[0]?.id}.jobs`, `${kills[0]?.id}.jobs`]);
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/`;
    const last = captured.at(-1) as { headers: Record<string, string>; body: string };
    const replay = await fetch(url, { method: 'POST', headers: last.headers, body: last.body });
    expect(replay.status).toBe(204);
    const forged = await fetch(url, { method: 'POST', headers: { ...last.headers, 'x-mandate-delivery': 'kill_forged.jobs' }, body: last.body.replace(kills[0]?.id ?? '', 'kill_forged') });
    expect(forged.status).toBe(401);
    expect(kills).toHaveLength(1);
  });
});
