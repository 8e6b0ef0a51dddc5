/**
 * Kill hooks on PostgreSQL: the outbox and the hooks' cursors live in the database, so a kill made
 * while the receiver is down is delivered once after the node restarts. One node, on a fresh
 * database of the shared PostgreSQL server.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, PG_URL } from '../../../store-postgres/test/support.ts';
import { createRuntime, parseConfig, type MandateRuntime } from '../../src/index.ts';
import { EXAMPLE_POLICIES } from '../support.ts';
import { eventually, FAST, HOOK_SECRET, receiver, type Receiver } from './fixture.ts';

describe('kill hooks on PostgreSQL', () => {
  const database = `mandate_kill_hooks_${randomBytes(5).toString('hex')}`;
  let dir: string;
  let hook: Receiver;
  let agentsOnly: Receiver;

  beforeAll(async () => {
    await admin((c) => c.query(`CREATE DATABASE ${database}`));
    dir = mkdtempSync(join(tmpdir(), 'mandate-kill-hooks-pg-'));
    hook = await receiver(Date.now);
    agentsOnly = await receiver(Date.now);
    agentsOnly.state.up = true;
  }, 60_000);

  afterAll(async () => {
    await hook?.close();
    await agentsOnly?.close();
    await admin((c) => c.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`));
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('delivers a kill made while the receiver was down once, after the node restarts', async () => {
    const url = new URL(PG_URL);
    url.pathname = `/${database}`;
    const config = parseConfig({
      environment: 'prod',
      data_dir: dir,
      store: url.toString(),
      postgres: { schema: 'mandate' },
      policies: { dir: EXAMPLE_POLICIES },
      log: { level: 'silent' },
      kill_hooks: [
        { name: 'queue', url: hook.url, secret_env: 'HOOK_SECRET', ...FAST },
        { name: 'agents', url: agentsOnly.url, secret_env: 'HOOK_SECRET', kills: ['agent'], ...FAST },
      ],
    });
    const env = { HOOK_SECRET };
    const first: MandateRuntime = await createRuntime(config, { writeAdminKeyFile: false, env });
    try {
      await first.kill.kill({ all: true }, { kind: 'operator', operatorId: 'op-pg' }, 'stop on postgres');
      await eventually('the receiver dropped two attempts', () => hook.attempts.length >= 2);
    } finally {
      await first.close();
    }
    expect(hook.accepted).toEqual([]);

    const second = await createRuntime(config, { writeAdminKeyFile: false, env });
    try {
      hook.state.up = true;
      await eventually('the kill is delivered after the restart', () => hook.accepted.length === 1);
      const status = await eventually('both cursors reach the head', async () => {
        const s = await second.killHooks.status();
        return s.head === 1 && s.hooks.every((h) => h.cursor === 1) && s;
      });
      expect(status.hooks.map((h) => [h.name, h.delivered])).toEqual([['kill-hook:queue', 1], ['kill-hook:agents', 0]]);
    } finally {
      await second.close();
    }
    expect(hook.accepted[0]?.kill).toMatchObject({ kind: 'emergency_stop', reason: 'stop on postgres', by: 'op-pg', emergency_stop: true });
    expect(new Set(hook.attempts.map((a) => a.deliveryId)).size).toBe(1);
    expect(hook.attempts.filter((a) => a.outcome !== undefined).map((a) => a.outcome)).toEqual(['accepted']);
    // a hook that asked only for agent kills was told nothing
    expect(agentsOnly.attempts).toEqual([]);
  }, 120_000);
});
