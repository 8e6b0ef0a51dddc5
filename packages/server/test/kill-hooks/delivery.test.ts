/**
 * Kill hooks: a kill is written to the store's outbox and delivered to every hook that asked for
 * its kind, signed, at least once, with a stable delivery id — after the receiver was down, and
 * after the composed server restarted on the same data folder. Receivers verify with the SDK.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createRuntime, parseConfig, type MandateRuntime } from '../../src/index.ts';
import type { MandateConfigInput } from '../../src/config.ts';
import { EXAMPLE_POLICIES, ManualClock, startHarness, type Harness } from '../support.ts';
import { eventually, FAST, HOOK_SECRET, receiver, type Receiver } from './fixture.ts';

const ENV = 'MANDATE_TEST_KILL_HOOK_SECRET';
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function hookReceiver(clock: ManualClock, opts: { downStatus?: number } = {}): Promise<Receiver> {
  const r = await receiver(() => clock.now(), opts);
  cleanups.push(() => r.close());
  return r;
}

async function harness(clock: ManualClock, hooks: Record<string, unknown>[]): Promise<Harness> {
  process.env[ENV] = HOOK_SECRET;
  const h = await startHarness({ clock, config: { kill_hooks: hooks.map((k) => ({ secret_env: ENV, ...FAST, ...k })) as MandateConfigInput['kill_hooks'] } });
  cleanups.push(() => h.close());
  return h;
}

async function kill(h: Harness, body: Record<string, unknown>): Promise<void> {
  const res = await h.op('POST', '/v1/kill', { reason: 'test kill', ...body });
  expect(res.statusCode, res.body).toBe(200);
}

describe('kill hooks', () => {
  it('delivers a kill once after the receiver was down, with the same signed delivery id on every attempt', async () => {
    const clock = new ManualClock();
    const hook = await hookReceiver(clock, { downStatus: 503 });
    const h = await harness(clock, [{ name: 'ci', url: hook.url }]);
    const agent = await h.registerAgent('builder');
    const t1 = await h.startTask(agent);
    const t2 = await h.startTask(agent);
    await kill(h, { agent });
    // the kill answered at once; its hook keeps failing while the receiver is down
    await eventually('the receiver refused three attempts', () => hook.attempts.length >= 3);
    expect(hook.accepted).toEqual([]);
    hook.state.up = true;
    const [event] = await eventually('the kill is delivered', () => hook.accepted.length === 1 && hook.accepted);
    expect(event).toMatchObject({ type: 'kill', delivery: { hook: 'ci' }, kill: { kind: 'agent', target: { agent }, reason: 'test kill', disabled_agent: agent, emergency_stop: false } });
    expect([...(event?.kill.killed_tasks ?? [])].sort()).toEqual([t1.id, t2.id].sort());
    expect(event?.delivery.id).toBe(`${event?.kill.id}.ci`);
    // every attempt, failed or not, carried the one delivery id a receiver dedupes on
    expect(new Set(hook.attempts.map((a) => a.deliveryId))).toEqual(new Set([event?.delivery.id]));
    expect(hook.attempts.map((a) => a.headers['idempotency-key'])).toEqual(hook.attempts.map((a) => a.deliveryId));
    // once delivered it is not sent again: the next kill is the next (and only other) delivery
    const t3 = await h.startTask(await h.registerAgent('other'));
    await kill(h, { task: t3.id });
    await eventually('the second kill is delivered', () => hook.accepted.length === 2);
    const status = await eventually('the cursor reaches the head', async () => {
      const res = await h.op('GET', '/v1/kill-hooks');
      expect(res.statusCode, res.body).toBe(200);
      const s = res.json<{ head: number; hooks: { cursor: number; behind: number }[] }>();
      return s.hooks[0]?.behind === 0 && s;
    });
    expect(status).toMatchObject({ head: 2, hooks: [{ name: 'kill-hook:ci', url: hook.url, cursor: 2, delivered: 2, dropped: 0, last_error: null, lease: { owner: expect.any(String) } }] });
    expect(hook.attempts.filter((a) => a.outcome !== undefined).map((a) => a.outcome)).toEqual(['accepted', 'accepted']);
  }, 60_000);

  it('tells each hook only of the kills it asked for: agent, task, emergency stop, or any', async () => {
    const clock = new ManualClock();
    const hooks = { agents: await hookReceiver(clock), tasks: await hookReceiver(clock), stops: await hookReceiver(clock), all: await hookReceiver(clock), two: await hookReceiver(clock) };
    for (const r of Object.values(hooks)) r.state.up = true;
    const h = await harness(clock, [
      { name: 'agents', url: hooks.agents.url, kills: ['agent'] },
      { name: 'tasks', url: hooks.tasks.url, kills: ['task'] },
      { name: 'stops', url: hooks.stops.url, kills: ['emergency_stop'] },
      { name: 'all', url: hooks.all.url },
      { name: 'two', url: hooks.two.url, kills: ['task', 'emergency_stop'] },
    ]);
    const agent = await h.registerAgent('worker');
    const parent = await h.startTask(agent);
    await kill(h, { task: parent.id });
    await kill(h, { agent });
    await kill(h, { all: true });
    await eventually('every hook has read every kill', async () => {
      const s = await h.runtime.killHooks.status();
      return s.head === 3 && s.hooks.every((x) => x.cursor === 3);
    });
    const kinds = (r: Receiver) => r.accepted.map((e) => e.kill.kind);
    expect(kinds(hooks.agents)).toEqual(['agent']);
    expect(kinds(hooks.tasks)).toEqual(['task']);
    expect(kinds(hooks.stops)).toEqual(['emergency_stop']);
    expect(kinds(hooks.all)).toEqual(['task', 'agent', 'emergency_stop']);
    expect(kinds(hooks.two)).toEqual(['task', 'emergency_stop']);
    expect(hooks.tasks.accepted[0]?.kill).toMatchObject({ target: { task: parent.id }, killed_tasks: [parent.id] });
    expect(hooks.stops.accepted[0]?.kill).toMatchObject({ target: { all: true }, emergency_stop: true });
    // one kill, two hooks: two deliveries, each with its own id
    expect(hooks.all.accepted[0]?.kill.id).toBe(hooks.tasks.accepted[0]?.kill.id);
    expect(hooks.all.accepted[0]?.delivery.id).not.toBe(hooks.tasks.accepted[0]?.delivery.id);
  }, 60_000);

  it('delivers a kill made before a restart once the restarted server and the receiver are back', async () => {
    const clock = new ManualClock();
    const hook = await hookReceiver(clock);
    const dir = mkdtempSync(join(tmpdir(), 'mandate-kill-hooks-restart-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const secretFile = join(dir, 'hook.secret');
    writeFileSync(secretFile, HOOK_SECRET + '\n', { mode: 0o600 });
    const config = parseConfig({
      environment: 'prod',
      data_dir: join(dir, 'data'),
      policies: { dir: EXAMPLE_POLICIES },
      log: { level: 'silent' },
      kill_hooks: [{ name: 'queue', url: hook.url, secret_file: secretFile, ...FAST }],
    });
    const first: MandateRuntime = await createRuntime(config, { writeAdminKeyFile: false, clock });
    let firstClosed = false;
    cleanups.push(async () => {
      if (!firstClosed) await first.close();
    });
    await first.kill.kill({ all: true }, { kind: 'operator', operatorId: 'op-test' }, 'stop everything');
    await eventually('the receiver dropped two attempts', () => hook.attempts.length >= 2);
    await first.close();
    firstClosed = true;
    expect(hook.accepted).toEqual([]);

    const second = await createRuntime(config, { writeAdminKeyFile: false, clock });
    cleanups.push(() => second.close());
    hook.state.up = true;
    await eventually('the kill is delivered after the restart', () => hook.accepted.length === 1);
    await eventually('the cursor reaches the head', async () => {
      const s = await second.killHooks.status();
      return s.hooks[0]?.cursor === s.head && s.head === 1;
    });
    expect(hook.accepted[0]?.kill).toMatchObject({ kind: 'emergency_stop', reason: 'stop everything', by: 'op-test' });
    expect(new Set(hook.attempts.map((a) => a.deliveryId)).size).toBe(1);
  }, 90_000);

  it('refuses to start when a hook has no signing key, or one shorter than 16 characters, naming the hook', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mandate-kill-hooks-config-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'short.secret'), 'too-short\n');
    const base = { environment: 'prod', data_dir: join(dir, 'data'), policies: { dir: EXAMPLE_POLICIES }, log: { level: 'silent' } };
    const hook = { name: 'soc', url: 'http://127.0.0.1:9/x' };
    await expect(createRuntime(parseConfig({ ...base, kill_hooks: [{ ...hook, secret_file: join(dir, 'short.secret') }] }), { writeAdminKeyFile: false, env: {} })).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringMatching(/kill hook soc: .* is 9 characters; it must be 16 to 1024/),
    });
    await expect(createRuntime(parseConfig({ ...base, kill_hooks: [{ ...hook, secret_env: 'NOPE' }] }), { writeAdminKeyFile: false, env: {} })).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('secret_env NOPE is not set') });
    expect(() => parseConfig({ ...base, kill_hooks: [{ ...hook, secret_env: 'A', secret_file: '/x' }] })).toThrow(/exactly one of secret_file or secret_env/);
    expect(() => parseConfig({ ...base, kill_hooks: [{ ...hook, secret_env: 'A' }, { ...hook, secret_env: 'B' }] })).toThrow(/share a name/);
    expect(() => parseConfig({ ...base, kill_hooks: [{ ...hook, secret_env: 'A', kills: ['agents'] }] })).toThrow();
  });
});
