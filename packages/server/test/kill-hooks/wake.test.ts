/**
 * A kill stored while the hook's loop is reading the outbox is not left for the next poll: the
 * wake is kept and the loop reads again at once.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openSqliteStore } from '@mandate/store-sqlite';
import type { KillOutbox } from '@mandate/core';
import { parseConfig } from '../../src/index.ts';
import { KillHooks } from '../../src/kill-hooks/hooks.ts';
import { randomIds, sha256Hasher, systemClock } from '../../src/node-ports.ts';
import { eventually, HOOK_SECRET, receiver } from './fixture.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('kill hook wake-up', () => {
  it('delivers a kill stored during a read of the outbox without waiting for the next poll', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mandate-kill-hooks-wake-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const store = openSqliteStore({ path: join(dir, 'm.db'), hasher: sha256Hasher });
    cleanups.push(() => store.close());
    const hook = await receiver(Date.now);
    cleanups.push(() => hook.close());
    hook.state.up = true;

    // the first read of the outbox answers what it found, but only once a kill has been stored after it
    let reads = 0;
    let release: () => void = () => undefined;
    const held = new Promise<void>((r) => (release = r));
    let reading: () => void = () => undefined;
    const firstRead = new Promise<void>((r) => (reading = r));
    const outbox: KillOutbox = {
      appendKillEvent: (e) => store.killOutbox.appendKillEvent(e),
      killEventHead: () => store.killOutbox.killEventHead(),
      openKillSink: (sink, now) => store.killOutbox.openKillSink(sink, now),
      async killEventsAfter(after, limit) {
        const found = await store.killOutbox.killEventsAfter(after, limit);
        if (++reads === 1) {
          reading();
          await held;
        }
        return found;
      },
    };
    const config = parseConfig({ kill_hooks: [{ name: 'slow-poll', url: hook.url, secret_env: 'S', poll_ms: 60_000 }] });
    const hooks = new KillHooks(config.kill_hooks, { store: { alertSinks: store.alertSinks, killOutbox: outbox }, clock: systemClock, ids: randomIds, owner: 'node-1', log: { warn: () => undefined }, env: { S: HOOK_SECRET } });
    cleanups.push(() => hooks.close());
    await hooks.start();
    await firstRead;
    await hooks.record('task', Date.now(), { target: { task: 't-1' }, killed_tasks: ['t-1'] });
    release();
    // the poll is a minute away: only the kept wake delivers it sooner
    await eventually('the kill is delivered', () => hook.accepted.length === 1, 20_000);
    expect(hook.accepted[0]?.kill).toMatchObject({ kind: 'task', target: { task: 't-1' } });
  }, 40_000);
});
