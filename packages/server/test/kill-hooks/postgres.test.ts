/**
 * Kill hooks on PostgreSQL: the outbox and the hooks' cursors live in the database, so a kill made
 * while the receiver is down is delivered once after the node restarts, and on two nodes a kill
 * made on either is delivered once. A fresh database of the shared PostgreSQL server.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
    writeFileSync(join(dir, 'kek.key'), randomBytes(32).toString('base64') + '\n', { mode: 0o600 });
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

  function nodeConfig(node: string, hooks?: Record<string, unknown>[]) {
    const url = new URL(PG_URL);
    url.pathname = `/${database}`;
    return parseConfig({
      environment: 'prod',
      data_dir: join(dir, node),
      // the nodes of a cluster share the audit keys and the key encryption key
      audit: { key_file: join(dir, 'audit-keys.json') },
      keys: { kek_file: join(dir, 'kek.key') },
      store: url.toString(),
      postgres: { schema: 'mandate' },
      policies: { dir: EXAMPLE_POLICIES },
      log: { level: 'silent' },
      kill_hooks: hooks ?? [
        { name: 'queue', url: hook.url, secret_env: 'HOOK_SECRET', ...FAST },
        { name: 'agents', url: agentsOnly.url, secret_env: 'HOOK_SECRET', kills: ['agent'], ...FAST },
      ],
    });
  }
  const env = { HOOK_SECRET };

  it('delivers a kill made while the receiver was down once, after the node restarts', async () => {
    const config = nodeConfig('a');
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

  it('on two nodes, delivers a kill made on either node once', async () => {
    const nodes = [await createRuntime(nodeConfig('a'), { writeAdminKeyFile: false, env }), await createRuntime(nodeConfig('b'), { writeAdminKeyFile: false, env })] as const;
    try {
      const before = hook.accepted.length;
      await nodes[0].kill.kill({ all: true }, { kind: 'operator', operatorId: 'op-a' }, 'from node a');
      await nodes[1].kill.kill({ all: true }, { kind: 'operator', operatorId: 'op-b' }, 'from node b');
      await eventually('both kills are delivered', () => hook.accepted.length === before + 2);
      const status = await eventually('the cursor reaches the head', async () => {
        const s = await nodes[1].killHooks.status();
        return s.hooks[0]?.behind === 0 && s;
      });
      // one node holds the hook's lease and delivers for both
      expect(status.hooks[0]?.lease).toEqual({ owner: expect.any(String), until: expect.any(String) });
      expect(nodes.filter((n) => n.killHooks.deliveries[0]?.stats.delivering)).toHaveLength(1);
    } finally {
      for (const n of nodes) await n.close();
    }
    expect(hook.accepted.slice(-2).map((e) => e.kill.reason)).toEqual(['from node a', 'from node b']);
    // each delivery once: no id accepted twice, and every later attempt was a replay at most
    const ids = hook.accepted.map((e) => e.delivery.id);
    expect(new Set(ids).size).toBe(ids.length);
  }, 120_000);

  it('pushes a kill made on a node without the lease to the node delivering the hook (change feed, not its poll)', async () => {
    const pushed = await receiver(Date.now);
    pushed.state.up = true;
    // a minute between polls: only the change feed can make the delivering node look sooner
    const hooks = [{ name: 'pushed', url: pushed.url, secret_env: 'HOOK_SECRET', ...FAST, poll_ms: 60_000 }];
    const a = await createRuntime(nodeConfig('a', hooks), { writeAdminKeyFile: false, env });
    try {
      // node a took the lease when it started, and idles until its next poll
      await eventually('node a holds the lease', () => a.killHooks.deliveries[0]?.stats.delivering === true);
      const b = await createRuntime(nodeConfig('b', hooks), { writeAdminKeyFile: false, env });
      try {
        expect(b.killHooks.deliveries[0]?.stats.delivering).toBe(false);
        await b.kill.kill({ all: true }, { kind: 'operator', operatorId: 'op-b' }, 'pushed from node b');
        // half the minute a poll would take: a busy machine has all of it, a poll none
        await eventually('node a delivers the kill', () => pushed.accepted.length === 1, 30_000);
        expect(pushed.accepted[0]?.kill).toMatchObject({ kind: 'emergency_stop', reason: 'pushed from node b' });
        expect(a.killHooks.deliveries[0]?.stats.delivered).toBe(1);
        expect(b.killHooks.deliveries[0]?.stats.attempts).toBe(0);
      } finally {
        await b.close();
      }
    } finally {
      await a.close();
      await pushed.close();
    }
    expect(pushed.attempts).toHaveLength(1);
  }, 120_000);

  it('on two nodes, delivers a kill made on the other node while the receiver was down once, after the delivering node restarts', async () => {
    const late = await receiver(Date.now);
    const hooks = [{ name: 'late', url: late.url, secret_env: 'HOOK_SECRET', ...FAST }];
    let a = await createRuntime(nodeConfig('a', hooks), { writeAdminKeyFile: false, env });
    const b = await createRuntime(nodeConfig('b', hooks), { writeAdminKeyFile: false, env });
    try {
      await eventually('node a holds the lease', () => a.killHooks.deliveries[0]?.stats.delivering === true);
      await b.kill.kill({ all: true }, { kind: 'operator', operatorId: 'op-b' }, 'while the receiver was down');
      await eventually('node a tried twice', () => late.attempts.length >= 2);
      // the delivering node stops (its lease goes with it) and starts again; the receiver comes back
      await a.close();
      a = await createRuntime(nodeConfig('a', hooks), { writeAdminKeyFile: false, env });
      late.state.up = true;
      await eventually('the kill is delivered', () => late.accepted.length === 1);
      await eventually('the cursor reaches the head', async () => (await b.killHooks.status()).hooks[0]?.behind === 0);
    } finally {
      await a.close();
      await b.close();
      await late.close();
    }
    expect(late.accepted[0]?.kill).toMatchObject({ kind: 'emergency_stop', reason: 'while the receiver was down' });
    expect(new Set(late.attempts.map((x) => x.deliveryId)).size).toBe(1);
    expect(late.attempts.filter((x) => x.outcome !== undefined).map((x) => x.outcome)).toEqual(['accepted']);
  }, 120_000);
});
