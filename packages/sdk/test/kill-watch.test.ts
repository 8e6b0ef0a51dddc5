/**
 * watchKills against a real Mandate server over real HTTP: a guarded function that runs long sees
 * its AbortSignal fire when its task, its agent or its parent task is killed; the watch comes back
 * after the server restarts; a watch that cannot be kept fails guarded calls closed.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, serve, type RunningServer } from '@mandate/server';
import { MandateClient, MandateHaltedError, type DpopKeyPair, type KillWatchState, type MandateTask } from '../src/index.ts';
import { EXAMPLE_POLICIES, startExampleServer, SUPPORT_MANDATE, type ExampleServer } from '../../../examples/support/mandate-server.ts';

const DELEGATING = { ...SUPPORT_MANDATE, delegation: { allowed: true, max_depth: 1, max_children: 2 } };

/** Waits for `ok` with a generous bound (the machine is busy). */
async function until(ok: () => boolean, what: string, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A tool that runs until its signal fires; tells what it saw. */
function longTool() {
  const seen: { started: boolean; reason: unknown } = { started: false, reason: undefined };
  const fn = (_a: { query: string }, signal?: AbortSignal) =>
    new Promise<string>((resolve, reject) => {
      seen.started = true;
      if (!signal) {
        reject(new Error('no signal was handed to the tool'));
        return;
      }
      signal.addEventListener('abort', () => {
        seen.reason = signal.reason;
        reject(signal.reason as Error);
      });
      // never finishes on its own within the test
      setTimeout(() => resolve('finished'), 600_000).unref();
    });
  return { fn, seen };
}

/** Starts a guarded long call; resolves with its promise once the function is running. */
async function startLongCall(task: MandateTask) {
  const { fn, seen } = longTool();
  const guarded = task.guard('helpdesk.search_tickets', fn, { passSignal: (signal, [a]) => [a, signal] });
  const call = guarded({ query: 'refund' }).then(
    () => ({ ok: true as const, error: undefined }),
    (e: unknown) => ({ ok: false as const, error: e }),
  );
  await until(() => seen.started, 'the guarded function to start');
  return { call, seen, guarded };
}

describe('watchKills against a running server', () => {
  let server: ExampleServer;
  beforeAll(async () => {
    server = await startExampleServer({ 'tasks.events.heartbeat': '200ms' });
  });
  afterAll(async () => server?.close());

  const client = (agentId?: string) => new MandateClient({ url: server.url, workloadToken: () => server.workloadToken(agentId), autoRenew: false, watchKills: { lostAfterMs: 60_000 } });

  it("aborts a guarded function's signal when its task is killed, and refuses the next call with HALTED", async () => {
    const task = await client().startTask({ mandate: SUPPORT_MANDATE });
    await until(() => task.killWatch?.state === 'live', 'the watch to be live');
    const { call, seen, guarded } = await startLongCall(task);
    await server.op('POST', '/v1/kill', { task: task.id, reason: 'runaway job' });
    const out = await call;
    expect(out.ok).toBe(false);
    expect(out.error).toBeInstanceOf(MandateHaltedError);
    expect(out.error).toMatchObject({ code: 'HALTED', reason: 'TASK_KILLED', detail: 'runaway job', taskId: task.id });
    expect(seen.reason).toBe(out.error);
    expect(task.killWatch?.signal.aborted).toBe(true);
    expect(task.killWatch?.state).toBe('ended');
    await expect(guarded({ query: 'again' })).rejects.toMatchObject({ code: 'HALTED', reason: 'TASK_KILLED' });
    // the halted call is on record as such
    const audit = await server.taskAudit(task.id);
    expect(audit.some((r) => r.kind === 'outcome' && r.data['is_error'] === true)).toBe(true);
  });

  it('aborts it when its agent is killed', async () => {
    const agent = await server.registerAgent('doomed');
    const task = await client(agent).startTask({ mandate: SUPPORT_MANDATE });
    await until(() => task.killWatch?.state === 'live', 'the watch to be live');
    const { call } = await startLongCall(task);
    await server.op('POST', '/v1/kill', { agent, reason: 'agent compromised' });
    expect(await call).toMatchObject({ ok: false, error: { code: 'HALTED', reason: 'TASK_KILLED', detail: 'agent compromised' } });
  });

  it("watches a key-bound task with a proof on each connect; the token alone is refused", async () => {
    const dpopKey = (await crypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify'])) as unknown as DpopKeyPair;
    const task = await new MandateClient({ url: server.url, workloadToken: () => server.workloadToken(), autoRenew: false, dpopKey, watchKills: { lostAfterMs: 60_000 } }).startTask({ mandate: SUPPORT_MANDATE });
    await until(() => task.killWatch?.state === 'live', 'the watch to be live');
    const bare = await fetch(`${server.url}/v1/tasks/${task.id}/events`, { headers: { authorization: `Bearer ${task.token}` } });
    expect([bare.status, ((await bare.json()) as { error: { code: string } }).error.code]).toEqual([401, 'DPOP_PROOF_MISSING']);
    const { call } = await startLongCall(task);
    await server.op('POST', '/v1/kill', { task: task.id, reason: 'key-bound kill' });
    expect(await call).toMatchObject({ ok: false, error: { code: 'HALTED', reason: 'TASK_KILLED', detail: 'key-bound kill' } });
  });

  it("aborts a delegated task's guarded function when its parent task is killed", async () => {
    const parent = await client().startTask({ mandate: DELEGATING });
    const childAgent = await server.registerAgent('child');
    const child = await parent.delegate({ workloadToken: await server.workloadToken(childAgent), mandate: { ...SUPPORT_MANDATE, tools: [{ name: 'helpdesk.search_tickets' }] } });
    child.watchKills({ lostAfterMs: 60_000 });
    await until(() => child.killWatch?.state === 'live', 'the watch to be live');
    const { call } = await startLongCall(child);
    await server.op('POST', '/v1/kill', { task: parent.id, reason: 'parent went rogue' });
    expect(await call).toMatchObject({ ok: false, error: { code: 'HALTED', reason: 'TASK_KILLED', detail: 'parent task killed' } });
    parent.close();
  });
});

/** A server on a data folder that outlives it, so it can be stopped and started again on the same port. */
async function restartable() {
  const dir = await mkdtemp(join(tmpdir(), 'mandate-sdk-watch-'));
  const settings = (port: number) =>
    loadConfig(undefined, {}, {
      environment: 'prod',
      data_dir: dir,
      'server.host': '127.0.0.1',
      'server.port': port,
      'policies.dir': EXAMPLE_POLICIES,
      'identity.dev_issuer.enabled': true,
      'identity.dev_issuer.trust_domain': 'examples.mandate.local',
      'log.level': 'silent',
      'tasks.events.heartbeat': '200ms',
    });
  let running: RunningServer | undefined = await serve(settings(0), { logger: false, writeAdminKeyFile: false });
  const admin = running.runtime.bootstrapAdminKey as string;
  const url = running.url;
  const port = Number(new URL(url).port);
  const op = async (method: 'GET' | 'POST', path: string, body?: unknown) => {
    const res = await fetch(`${url}${path}`, { method, headers: { authorization: `Bearer ${admin}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, body: body === undefined ? null : JSON.stringify(body) });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  };
  const agentId = 'spiffe://examples.mandate.local/agents/watched';
  await op('POST', '/v1/agents', { id: agentId, owner: 'team-support', type: 'support', ceiling: { tools: ['helpdesk.*'], data_classes: ['internal'], environments: ['prod'], max_ttl: '1h', max_calls: 200 } });
  const workloadToken = async () => ((await op('POST', '/v1/dev/workload-tokens', { spiffe_id: agentId })).json as { token: string }).token;
  return {
    url,
    op,
    workloadToken,
    async stop() {
      await running?.close();
      running = undefined;
    },
    async start() {
      running = await serve(settings(port), { logger: false, writeAdminKeyFile: false });
    },
    async close() {
      await running?.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

describe('watchKills across a server restart and an outage', () => {
  let srv: Awaited<ReturnType<typeof restartable>>;
  beforeAll(async () => {
    srv = await restartable();
  });
  afterAll(async () => srv?.close());

  it('reconnects after the server restarts, and a kill then still aborts the guarded function', async () => {
    const states: KillWatchState[] = [];
    const client = new MandateClient({ url: srv.url, workloadToken: srv.workloadToken, autoRenew: false, watchKills: { lostAfterMs: 120_000, baseDelayMs: 50, maxDelayMs: 500, onState: (s) => states.push(s) } });
    const task = await client.startTask({ mandate: { ...SUPPORT_MANDATE, tools: [{ name: 'helpdesk.search_tickets' }] } });
    await until(() => task.killWatch?.state === 'live', 'the watch to be live');
    const { call } = await startLongCall(task);
    await srv.stop();
    await until(() => task.killWatch?.state === 'reconnecting', 'the watch to notice the server went away');
    await srv.start();
    await until(() => task.killWatch?.state === 'live', 'the watch to be live again');
    expect(states).toEqual(['live', 'reconnecting', 'live']);
    await srv.op('POST', '/v1/kill', { task: task.id, reason: 'after the restart' });
    expect(await call).toMatchObject({ ok: false, error: { code: 'HALTED', reason: 'TASK_KILLED', detail: 'after the restart' } });
  });

  it('fails guarded calls closed with KILL_WATCH_LOST when the stream cannot be kept, and lets them through once it is back', async () => {
    const states: KillWatchState[] = [];
    const client = new MandateClient({ url: srv.url, workloadToken: srv.workloadToken, autoRenew: false, retry: { retries: 0 }, watchKills: { lostAfterMs: 1_000, baseDelayMs: 50, maxDelayMs: 200, onState: (s) => states.push(s) } });
    const task = await client.startTask({ mandate: { ...SUPPORT_MANDATE, tools: [{ name: 'helpdesk.search_tickets' }] } });
    await until(() => task.killWatch?.state === 'live', 'the watch to be live');
    const { call, seen, guarded } = await startLongCall(task);
    await srv.stop();
    const out = await call;
    expect(out).toMatchObject({ ok: false, error: { code: 'KILL_WATCH_LOST' } });
    expect(seen.reason).toBe(out.error);
    expect(states).toContain('lost');
    // refused before anything is asked of the server (which is down, and would say UNAVAILABLE)
    await expect(guarded({ query: 'while lost' })).rejects.toMatchObject({ code: 'KILL_WATCH_LOST' });
    await srv.start();
    await until(() => task.killWatch?.state === 'live', 'the watch to be back');
    const quick = task.guard('helpdesk.search_tickets', (a: { query: string }) => `found ${a.query}`);
    expect(await quick({ query: 'refund' })).toBe('found refund');
    task.close();
    await expect(quick({ query: 'closed' })).rejects.toMatchObject({ code: 'KILL_WATCH_LOST' });
  });
});
