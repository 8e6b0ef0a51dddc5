/**
 * How sessions and upstream connections live and die: a crashed upstream restarts and clients
 * are told (list_changed) both ways; one task cannot take another's sessions; sessions end on
 * idle and on token expiry, with their per-session processes, but never while they open or have a
 * request in flight; an upstream that is missing or
 * never answers does not hold a session open, and the session says what it lacks; an HTTP
 * upstream's session is ended (DELETE) with the gateway's.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../server/test/cluster/throwaway-pg.ts';
import { allAuditRecords } from '../../server/test/support.ts';
import { SERVERS, startGatewayBed, textOf, type GatewayBed } from './support.ts';

const SLOW = new URL('./fixtures/slow-server.ts', import.meta.url).pathname;

function recorder() {
  const lines: { msg: string; o: Record<string, unknown> }[] = [];
  const push = (o: object, msg: string) => void lines.push({ msg, o: o as Record<string, unknown> });
  return { lines, log: { debug: push, info: push, warn: push, error: push } };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function openClient(url: string, token: string): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const client = new Client({ name: 'lifecycle', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(`${url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${token}` } } });
  await client.connect(transport);
  return { client, transport };
}

describe('upstream and session lifecycle', () => {
  let bed: GatewayBed;
  const rec = recorder();
  beforeAll(async () => {
    bed = await startGatewayBed({
      log: rec.log,
      upstreams: () => [
        { name: 'slow', transport: 'stdio', command: process.execPath, args: [SLOW], sharing: 'shared' },
        { name: 'ev', transport: 'stdio', command: process.execPath, args: [SERVERS.everything], sharing: 'per_session', warm: 1 },
      ],
      config: { limits: { max_sessions: 6, max_sessions_per_task: 2, max_sessions_per_agent: 3, restart_backoff: '100ms', idle_timeout: '4m' } },
    });
  });
  afterAll(async () => bed.close());

  it('restarts a crashed upstream and tells the client its tools went and came back', async () => {
    const t = await bed.task([{ name: 'slow__*' }]);
    const { client, transport } = await openClient(bed.url, t.token);
    let changes = 0;
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => void (changes += 1));
    expect((await client.listTools()).tools.map((x) => x.name).sort()).toEqual(['slow__count', 'slow__crash', 'slow__wait']);
    await expect(client.callTool({ name: 'slow__crash', arguments: {} })).rejects.toThrow();
    await expect.poll(() => changes, { timeout: 20_000, interval: 50 }).toBeGreaterThanOrEqual(2);
    expect(rec.lines.some((l) => l.msg === 'upstream process exited' && l.o['upstream'] === 'slow' && l.o['code'] === 3)).toBe(true);
    expect(rec.lines.some((l) => l.msg === 'upstream started' && l.o['upstream'] === 'slow' && Number(l.o['restarts']) >= 1)).toBe(true);
    await expect.poll(async () => (await client.listTools()).tools.length, { timeout: 20_000, interval: 100 }).toBe(3);
    expect(textOf(await client.callTool({ name: 'slow__wait', arguments: { seconds: 0 } }))).toBe('waited 0');
    await transport.terminateSession();
    await client.close();
  });

  it('one task cannot exhaust another\'s sessions: a task past its cap gives up its own oldest', { timeout: 120_000 }, async () => {
    // a shared upstream: no process per session, the caps alone are tested
    const greedy = await bed.task([{ name: 'slow__wait' }]);
    const opened: { client: Client; transport: StreamableHTTPClientTransport }[] = [];
    // more sessions than the gateway holds in all, never closed (as the Inspector leaves them)
    for (let i = 0; i < 7; i++) opened.push(await openClient(bed.url, greedy.token));
    const mcp = bed.h.runtime.mcp;
    expect(mcp.sessionsOf(greedy.id)).toBe(2);
    // the newest still works; the oldest was closed for it
    expect(textOf(await (opened.at(-1) as (typeof opened)[number]).client.callTool({ name: 'slow__wait', arguments: { seconds: 0 } }))).toBe('waited 0');
    await expect((opened[0] as (typeof opened)[number]).client.callTool({ name: 'slow__wait', arguments: { seconds: 0 } })).rejects.toThrow();
    expect(rec.lines.some((l) => l.msg === 'MCP session closed' && String(l.o['reason']).includes('session cap'))).toBe(true);
    // another task opens as many as its own cap allows
    const other = await bed.task([{ name: 'slow__wait' }]);
    const mine = await openClient(bed.url, other.token);
    expect(textOf(await mine.client.callTool({ name: 'slow__wait', arguments: { seconds: 0 } }))).toBe('waited 0');
    expect(mcp.sessionsOf(other.id)).toBe(1);
    // opened at once, counted as if one by one
    const burst = await bed.task([{ name: 'slow__wait' }]);
    const many = await Promise.allSettled(Array.from({ length: 5 }, () => openClient(bed.url, burst.token)));
    // a session replaced before its client finished the handshake fails that handshake (404)
    expect(many.filter((r) => r.status === 'fulfilled').length).toBeGreaterThanOrEqual(2);
    expect(mcp.sessionsOf(burst.id)).toBe(2);
    for (const r of many) if (r.status === 'fulfilled') opened.push(r.value);
    await Promise.all([...opened, mine].map((o) => o.transport.terminateSession().catch(() => undefined)));
    await expect.poll(() => mcp.sessionsOf(greedy.id) + mcp.sessionsOf(other.id), { timeout: 10_000, interval: 50 }).toBe(0);
  });

  it('ends an idle session with its own upstream process, and one whose token expired', { timeout: 90_000 }, async () => {
    const mcp = bed.h.runtime.mcp;
    const t = await bed.task([{ name: 'ev__echo' }]);
    const before = rec.lines.length;
    const { client } = await openClient(bed.url, t.token);
    await client.callTool({ name: 'ev__echo', arguments: { message: 'x' } });
    const session = rec.lines.slice(before).find((l) => l.msg === 'MCP session opened');
    expect(session).toBeDefined();
    // its per-session connection: a pid started for it (a spare taken at open)
    const pids = rec.lines.filter((l) => l.msg === 'upstream started' && l.o['upstream'] === 'ev').map((l) => Number(l.o['pid']));
    bed.h.clock.advance(4 * 60_000 + 1000);
    await expect.poll(() => mcp.sessionsOf(t.id), { timeout: 15_000, interval: 50 }).toBe(0);
    expect(rec.lines.some((l) => l.msg === 'MCP session closed' && l.o['session'] === session?.o['session'] && l.o['reason'] === 'idle')).toBe(true);
    // what is left of ev: the warm spare alone
    await expect.poll(() => pids.filter(alive).length, { timeout: 10_000, interval: 100 }).toBeLessThanOrEqual(1);

    const u = await bed.task([{ name: 'ev__echo' }]);
    const second = await openClient(bed.url, u.token);
    bed.h.clock.advance(3 * 60_000);
    await second.client.callTool({ name: 'ev__echo', arguments: { message: 'still here' } });
    bed.h.clock.advance(2 * 60_000 + 1000); // past the task token's 5 minutes, not idle
    await expect.poll(() => mcp.sessionsOf(u.id), { timeout: 15_000, interval: 50 }).toBe(0);
    expect(rec.lines.some((l) => l.msg === 'MCP session closed' && l.o['task'] === u.id && l.o['reason'] === 'task token expired')).toBe(true);
  });
});

describe('sessions with a request in flight', () => {
  let bed: GatewayBed;
  const rec = recorder();
  beforeAll(async () => {
    bed = await startGatewayBed({
      log: rec.log,
      upstreams: () => [{ name: 'slow', transport: 'stdio', command: process.execPath, args: [SLOW], sharing: 'shared' }],
      config: { limits: { idle_timeout: '1m' } },
    });
  });
  afterAll(async () => bed.close());

  type Outcome = { ok: true; text: string } | { ok: false; message: string };
  /** Starts a call to slow__wait; returns once the upstream is working on it (its decision is audited). */
  async function waitCall(client: Client, taskId: string, seconds: number): Promise<{ call: Promise<Outcome> }> {
    const call = client.callTool({ name: 'slow__wait', arguments: { seconds } }, undefined, { timeout: 300_000 }).then(
      (r): Outcome => ({ ok: true, text: textOf(r) }),
      (e: unknown): Outcome => ({ ok: false, message: e instanceof Error ? e.message : String(e) }),
    );
    await expect.poll(async () => (await allAuditRecords(bed.h)).filter((r) => r.task_id === taskId && r.kind === 'decision').length, { timeout: 30_000, interval: 50 }).toBeGreaterThan(0);
    return { call };
  }

  /** The call's outcome, or "unanswered" after `ms`. */
  function within<T>(p: Promise<T>, ms: number): Promise<T | 'unanswered'> {
    return Promise.race([p, new Promise<'unanswered'>((resolve) => setTimeout(() => resolve('unanswered'), ms).unref())]);
  }

  it('is not idle while a request is in flight, however long it runs; idle counts from its answer', { timeout: 120_000 }, async () => {
    const mcp = bed.h.runtime.mcp;
    const t = await bed.task([{ name: 'slow__wait' }]);
    const { client } = await openClient(bed.url, t.token);
    const { call } = await waitCall(client, t.id, 15);
    // the call has run past the idle timeout (the manual clock; the token lives 5 minutes): the sweep leaves its session alone
    bed.h.clock.advance(90_000);
    expect(mcp.sweepIdle()).toBe(0);
    expect(await call).toEqual({ ok: true, text: 'waited 15' });
    expect(mcp.sessionsOf(t.id)).toBe(1);
    expect(mcp.sweepIdle()).toBe(0);
    // idle from the answer on: past the timeout again, it ends
    bed.h.clock.advance(61_000);
    expect(mcp.sweepIdle()).toBe(1);
    await expect.poll(() => mcp.sessionsOf(t.id), { timeout: 15_000, interval: 50 }).toBe(0);
  });

  it('answers a request in flight with SESSION_CLOSED when its client ends the session (DELETE)', { timeout: 120_000 }, async () => {
    const t = await bed.task([{ name: 'slow__wait' }]);
    const { client, transport } = await openClient(bed.url, t.token);
    const { call } = await waitCall(client, t.id, 120);
    await transport.terminateSession();
    expect(await within(call, 30_000)).toMatchObject({ ok: false, message: expect.stringMatching(/SESSION_CLOSED: Mandate ended this MCP session \(the client ended the session \(DELETE\)\)/) as unknown });
    // and the upstream was told to stop working on it
    await expect.poll(() => rec.lines.some((l) => l.msg === 'upstream stderr' && String(l.o['stderr']).includes('cancelled 120')), { timeout: 15_000, interval: 50 }).toBe(true);
    expect(bed.h.runtime.mcp.sessionsOf(t.id)).toBe(0);
  });

  it('answers a request in flight when its task is killed: halted with TASK_KILLED, before its session closes', { timeout: 120_000 }, async () => {
    const t = await bed.task([{ name: 'slow__wait' }]);
    const { client } = await openClient(bed.url, t.token);
    const { call } = await waitCall(client, t.id, 121);
    // forwarded upstream, not only decided
    await expect.poll(() => bed.h.runtime.mcp.callsInFlight, { timeout: 30_000, interval: 20 }).toBeGreaterThan(0);
    const kill = await bed.h.op('POST', '/v1/kill', { task: t.id, reason: 'test' });
    expect(kill.statusCode).toBe(200);
    const answer = await within(call, 30_000);
    expect(answer).toMatchObject({ ok: false, message: expect.stringMatching(/TASK_KILLED: Mandate halted this call/) as unknown });
    expect(JSON.stringify(answer)).not.toContain('SESSION_CLOSED');
    expect(bed.h.runtime.mcp.sessionsOf(t.id)).toBe(0);
  });
});

describe('sessions held while they open or answer', () => {
  let bed: GatewayBed;
  const rec = recorder();
  beforeAll(async () => {
    bed = await startGatewayBed({
      log: rec.log,
      // a process per session, slow to go when closed (about 4 s: it ignores EOF and SIGTERM)
      upstreams: () => [{ name: 'slow', transport: 'stdio', command: process.execPath, args: [SLOW], env: { SLOW_LINGER: '1' }, sharing: 'per_session', warm: 1 }],
      config: { limits: { idle_timeout: '2s', max_sessions_per_task: 1 } },
    });
  });
  afterAll(async () => bed.close());

  /** The pid of the upstream process that printed this stderr line (its link's start is logged with its pid). */
  function pidOf(stderr: string): number | undefined {
    const link = rec.lines.find((l) => l.msg === 'upstream stderr' && l.o['stderr'] === stderr)?.o['link'];
    const started = rec.lines.find((l) => l.msg === 'upstream started' && l.o['link'] === link);
    return started === undefined ? undefined : Number(started.o['pid']);
  }

  it('does not reclaim a session while it opens, however long its open takes', { timeout: 120_000 }, async () => {
    const mcp = bed.h.runtime.mcp;
    const t = await bed.task([{ name: 'slow__wait' }]);
    await openClient(bed.url, t.token);
    // the task is at its cap: the next session replaces the first, and its open waits until the
    // first's process is gone (seconds, with this upstream)
    const second = openClient(bed.url, t.token).then(
      (c) => ({ ok: true as const, ...c }),
      (e: unknown) => ({ ok: false as const, message: e instanceof Error ? e.message : String(e) }),
    );
    // both counted: the first still closing, the second opening
    await expect.poll(() => mcp.sessionsOf(t.id), { timeout: 60_000, interval: 5 }).toBe(2);
    // the open has lasted longer than idle_timeout (the manual clock): the sweep leaves it alone
    bed.h.clock.advance(5_000);
    expect(mcp.sweepIdle()).toBe(0);
    const opened = await second;
    if (!opened.ok) expect.fail(`the session failed to open: ${opened.message}`);
    expect(textOf(await opened.client.callTool({ name: 'slow__wait', arguments: { seconds: 0 } }))).toBe('waited 0');
    expect(mcp.sessionsOf(t.id)).toBe(1);
    expect(rec.lines.some((l) => l.msg === 'MCP session closed' && l.o['task'] === t.id && l.o['reason'] === 'idle')).toBe(false);
    // nothing left for the next test's sweep
    await opened.transport.terminateSession();
    await expect.poll(() => mcp.sessionsOf(t.id), { timeout: 30_000, interval: 20 }).toBe(0);
  });

  it('a kill still closes a session while it opens: its client hears TASK_KILLED, and nothing is left', { timeout: 120_000 }, async () => {
    const mcp = bed.h.runtime.mcp;
    const t = await bed.task([{ name: 'slow__wait' }]);
    await openClient(bed.url, t.token);
    const second = openClient(bed.url, t.token).then(
      () => 'opened',
      (e: unknown) => (e instanceof Error ? e.message : String(e)),
    );
    // the second is opening (held), waiting for the first to close
    await expect.poll(() => mcp.sessionsOf(t.id), { timeout: 60_000, interval: 5 }).toBe(2);
    expect((await bed.h.op('POST', '/v1/kill', { task: t.id, reason: 'test' })).statusCode).toBe(200);
    expect(await second).toMatch(/TASK_KILLED/);
    await expect.poll(() => mcp.sessionsOf(t.id), { timeout: 30_000, interval: 20 }).toBe(0);
  });

  it('keeps a session through a call longer than idle_timeout; once idle past it, ends it with its upstream process', { timeout: 120_000 }, async () => {
    const mcp = bed.h.runtime.mcp;
    const t = await bed.task([{ name: 'slow__wait' }]);
    const { client } = await openClient(bed.url, t.token);
    const call = client.callTool({ name: 'slow__wait', arguments: { seconds: 3 } }, undefined, { timeout: 300_000 });
    // the upstream is working on it
    await expect.poll(() => pidOf('waiting 3'), { timeout: 60_000, interval: 20 }).toBeGreaterThan(0);
    const pid = pidOf('waiting 3') as number;
    // it runs past idle_timeout (the manual clock): its session stays
    bed.h.clock.advance(5_000);
    expect(mcp.sweepIdle()).toBe(0);
    expect(textOf(await call)).toBe('waited 3');
    // still usable, and used: the clock counts from this answer
    expect(textOf(await client.callTool({ name: 'slow__wait', arguments: { seconds: 0 } }))).toBe('waited 0');
    expect(mcp.sessionsOf(t.id)).toBe(1);
    expect(mcp.sweepIdle()).toBe(0);
    // idle past the timeout: reclaimed, with its own upstream process
    bed.h.clock.advance(2_001);
    await expect.poll(() => mcp.sessionsOf(t.id), { timeout: 30_000, interval: 20 }).toBe(0);
    expect(rec.lines.some((l) => l.msg === 'MCP session closed' && l.o['task'] === t.id && l.o['reason'] === 'idle')).toBe(true);
    await expect.poll(() => alive(pid), { timeout: 60_000, interval: 100 }).toBe(false);
  });
  it('gives its hold back however a request ends: after a failed and a cancelled call, the idle session is reclaimed', { timeout: 120_000 }, async () => {
    const mcp = bed.h.runtime.mcp;
    const t = await bed.task([{ name: 'slow__*' }]);
    const { client } = await openClient(bed.url, t.token);
    // cancelled by the client once the upstream works on it
    const abort = new AbortController();
    const cancelled = client.callTool({ name: 'slow__wait', arguments: { seconds: 117 } }, undefined, { signal: abort.signal, timeout: 300_000 });
    await expect.poll(() => pidOf('waiting 117'), { timeout: 60_000, interval: 20 }).toBeGreaterThan(0);
    abort.abort();
    await expect(cancelled).rejects.toThrow();
    await expect.poll(() => rec.lines.some((l) => l.msg === 'upstream stderr' && l.o['stderr'] === 'cancelled 117'), { timeout: 30_000, interval: 20 }).toBe(true);
    // fails: its upstream process exits mid-call
    await expect(client.callTool({ name: 'slow__crash', arguments: {} })).rejects.toThrow();
    expect(mcp.sessionsOf(t.id)).toBe(1);
    bed.h.clock.advance(2_001);
    await expect.poll(() => mcp.sessionsOf(t.id), { timeout: 30_000, interval: 20 }).toBe(0);
    expect(rec.lines.some((l) => l.msg === 'MCP session closed' && l.o['task'] === t.id && l.o['reason'] === 'idle')).toBe(true);
  });
});

describe('a full gateway', () => {
  let bed: GatewayBed;
  const rec = recorder();
  beforeAll(async () => {
    bed = await startGatewayBed({
      log: rec.log,
      upstreams: () => [{ name: 'slow', transport: 'stdio', command: process.execPath, args: [SLOW], sharing: 'shared' }],
      // the task's and agent's own caps do not stop it filling the gateway: only fair share does
      config: { limits: { max_sessions: 4, max_sessions_per_task: 4, max_sessions_per_agent: 4 } },
    });
  });
  afterAll(async () => bed.close());

  it('one task holding every session does not lock out another: its oldest gives way', { timeout: 120_000 }, async () => {
    const greedy = await bed.task([{ name: 'slow__wait' }]);
    const held: Client[] = [];
    for (let i = 0; i < 4; i++) held.push((await openClient(bed.url, greedy.token)).client);
    const other = await bed.task([{ name: 'slow__wait' }]);
    const { client } = await openClient(bed.url, other.token);
    expect(textOf(await client.callTool({ name: 'slow__wait', arguments: { seconds: 0 } }))).toBe('waited 0');
    expect(bed.h.runtime.mcp.sessionsOf(greedy.id)).toBe(3);
    await expect((held[0] as Client).callTool({ name: 'slow__wait', arguments: { seconds: 0 } })).rejects.toThrow();
    expect(rec.lines.some((l) => l.msg === 'MCP session closed' && String(l.o['reason']).includes('held the most sessions'))).toBe(true);
  });
});

describe('upstreams that are missing, hang, or speak HTTP', () => {
  let bed: GatewayBed;
  let bedClosed = false;
  let web: ChildProcess;
  let webOut = '';
  const rec = recorder();
  const mutPids = join(mkdtempSync(join(tmpdir(), 'mandate-mut-')), 'pids');
  beforeAll(async () => {
    const port = await freePort();
    web = spawn(process.execPath, [SERVERS.everything, 'streamableHttp'], { env: { PATH: process.env['PATH'] ?? '', PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
    web.stdout?.on('data', (d: Buffer) => (webOut += d.toString()));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('server-everything did not start')), 20_000);
      web.stderr?.on('data', (d: Buffer) => {
        if (d.toString().includes('listening on port')) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    bed = await startGatewayBed({
      log: rec.log,
      upstreams: () => [
        { name: 'web', transport: 'http', url: `http://127.0.0.1:${port}/mcp`, warm: 1 },
        { name: 'nowhere', transport: 'stdio', command: '/nonexistent/mcp-server', warm: 0 },
        // a process that never answers initialize (it notes its pid, to be found after the gateway closes)
        { name: 'mut', transport: 'stdio', command: process.execPath, args: ['-e', `require('node:fs').appendFileSync(${JSON.stringify(mutPids)}, process.pid + '\\n'); setInterval(() => {}, 1e6)`], warm: 0 },
      ],
      config: { limits: { connect_timeout: '1s', restart_max_backoff: '2s' } },
    });
  });
  afterAll(async () => {
    if (!bedClosed) await bed.close();
    web.kill();
    rmSync(dirname(mutPids), { recursive: true, force: true });
  });

  it('opens without an upstream that is missing or never answers, within the connect timeout, and says so', async () => {
    const t = await bed.task([{ name: 'web__echo' }, { name: 'nowhere__*' }, { name: 'mut__*' }]);
    const started = Date.now();
    const { client } = await openClient(bed.url, t.token);
    // bounded by connect_timeout (1 s) plus a busy machine's slack, never the 30 s upstream timeout
    expect(Date.now() - started).toBeLessThan(20_000);
    const list = await client.listTools();
    expect(list.tools.map((x) => x.name)).toEqual(['web__echo']);
    const unavailable = (list._meta?.['mandate/upstreams'] as { unavailable: { name: string; error?: string }[] } | undefined)?.unavailable ?? [];
    expect(unavailable.map((u) => u.name).sort()).toEqual(['mut', 'nowhere']);
    expect(unavailable.find((u) => u.name === 'nowhere')?.error).toMatch(/ENOENT/);
    expect(client.getInstructions()).toMatch(/nowhere/);
    await expect(client.callTool({ name: 'nowhere__anything', arguments: {} })).rejects.toThrow(/upstream nowhere is unavailable/);
    expect(rec.lines.some((l) => l.msg === 'upstream failed to start' && l.o['upstream'] === 'nowhere' && String(l.o['err']).includes('ENOENT'))).toBe(true);
    expect(rec.lines.some((l) => l.msg === 'MCP session opened without some upstreams')).toBe(true);
    await client.close();
  });

  it('ends the HTTP upstream\'s session (DELETE) with the gateway session', async () => {
    const t = await bed.task([{ name: 'web__echo' }]);
    const { client, transport } = await openClient(bed.url, t.token);
    // its connection may be a spare still starting on a busy machine: its tools come when it is up
    await expect.poll(async () => (await client.listTools()).tools.length, { timeout: 30_000, interval: 200 }).toBe(1);
    expect(textOf(await client.callTool({ name: 'web__echo', arguments: { message: 'hi' } }))).toBe('Echo: hi');
    const ended = (webOut.match(/Received session termination request/g) ?? []).length;
    await transport.terminateSession();
    await expect.poll(() => (webOut.match(/Received session termination request/g) ?? []).length, { timeout: 10_000, interval: 50 }).toBe(ended + 1);
    await client.close();
  });

  it('ends an upstream that never answered when the gateway closes: its process does not outlive it', { timeout: 60_000 }, async () => {
    const pids = readFileSync(mutPids, 'utf8').split('\n').filter((l) => l !== '').map(Number);
    expect(pids.length).toBeGreaterThan(0);
    bedClosed = true;
    await bed.close();
    const alive = (pid: number): boolean => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    // its start would time out only after upstream_timeout (30 s): the close ends it instead
    await expect.poll(() => pids.filter(alive), { timeout: 20_000, interval: 100 }).toEqual([]);
  });
});
