/**
 * A kill reaches calls already under way: a long-running upstream call is cancelled upstream
 * (the fixture hears `notifications/cancelled`), its client is answered at once with the kill's
 * reason, and the call's final action is audited as `halted`, when its agent, its task or its
 * parent task is killed. Nothing here polls: the task-check backstop is set to an hour.
 */
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HALTED_ERROR_CODE } from '../src/index.ts';
import { GATEWAY_CEILING, startGatewayBed, type GatewayBed } from './support.ts';

const SLOW = new URL('./fixtures/slow-server.ts', import.meta.url).pathname;

function recorder() {
  const lines: { msg: string; o: Record<string, unknown> }[] = [];
  const push = (o: object, msg: string) => void lines.push({ msg, o: o as Record<string, unknown> });
  return { lines, log: { debug: push, info: push, warn: push, error: push } };
}

async function until(ok: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('a kill halts MCP calls in flight', () => {
  let bed: GatewayBed;
  const rec = recorder();
  beforeAll(async () => {
    bed = await startGatewayBed({
      log: rec.log,
      upstreams: () => [{ name: 'slow', transport: 'stdio', command: process.execPath, args: [SLOW], sharing: 'per_session', warm: 1 }],
      config: { limits: { task_check_interval: '1h', halt_grace: '100ms' } },
    });
  }, 120_000);
  afterAll(async () => bed.close());

  /** starts a 10-minute call, waits until it is upstream, kills, and returns what the client got */
  async function killDuring(token: string, kill: () => Promise<void>): Promise<McpError> {
    const client = await bed.http(token);
    const cancelledBefore = rec.lines.filter((l) => String(l.o['line'] ?? l.msg).includes('cancelled 600')).length;
    const startedBefore = rec.lines.filter((l) => JSON.stringify(l).includes('waiting 600')).length;
    const call = client.callTool({ name: 'slow__wait', arguments: { seconds: 600 } }, undefined, { timeout: 120_000 }).then(
      () => new Error('the call was answered'),
      (e: unknown) => e,
    );
    // the upstream has the call (its stderr says so), not merely the gateway
    await until(() => rec.lines.filter((l) => JSON.stringify(l).includes('waiting 600')).length > startedBefore, 'the call to reach the upstream');
    await kill();
    const err = await call;
    // the upstream heard the cancellation (its stderr line reaches the gateway's debug log)
    await until(() => rec.lines.filter((l) => JSON.stringify(l).includes('cancelled 600')).length > cancelledBefore, 'the upstream to hear the cancellation');
    expect(err).toBeInstanceOf(McpError);
    return err as McpError;
  }

  async function haltedRecords(taskId: string) {
    const res = await bed.h.op('GET', `/v1/audit?task_id=${encodeURIComponent(taskId)}&limit=100`);
    const body = res.json<{ records: { kind: string; data: Record<string, unknown> }[] }>();
    return body.records.filter((r) => r.kind === 'action' && r.data['final'] === 'halted');
  }

  it('cancels the call upstream and answers the client with TASK_KILLED when its task is killed', async () => {
    const t = await bed.task([{ name: 'slow__*' }]);
    const err = await killDuring(t.token, async () => {
      expect((await bed.h.op('POST', '/v1/kill', { task: t.id, reason: 'runaway job' })).statusCode).toBe(200);
    });
    expect(err.code).toBe(HALTED_ERROR_CODE);
    expect(err.data).toMatchObject({ reason: 'TASK_KILLED', halted: true });
    expect(err.message).toContain('runaway job');
    const halted = await haltedRecords(t.id);
    expect(halted).toHaveLength(1);
    expect(halted[0]?.data).toMatchObject({ reason: 'TASK_KILLED', upstream: 'slow', method: 'tools/call' });
  });

  it('halts the call when its agent is killed', async () => {
    const t = await bed.task([{ name: 'slow__*' }]);
    const err = await killDuring(t.token, async () => {
      expect((await bed.h.op('POST', '/v1/kill', { agent: t.agent, reason: 'compromised agent' })).statusCode).toBe(200);
    });
    expect(err.data).toMatchObject({ reason: 'TASK_KILLED', halted: true });
    expect(await haltedRecords(t.id)).toHaveLength(1);
  });

  it("halts a sub-agent's call when its parent task is killed", async () => {
    const parent = await bed.task([{ name: 'slow__*' }], { delegation: { allowed: true, max_depth: 2, max_children: 5 } });
    const childAgent = await bed.h.registerAgent('mcp-kill-child', GATEWAY_CEILING);
    const svid = await bed.h.workloadToken(childAgent);
    const res = await bed.h.inject({
      method: 'POST',
      url: `/v1/tasks/${parent.id}/delegate`,
      headers: { authorization: `Bearer ${parent.token}` },
      payload: { workload_token: svid, mandate: { purpose: 'Work with the notes folder.', environment: 'prod', ttl: '10m', tools: [{ name: 'slow__wait' }], data_classes: ['internal'], budgets: { calls: 10 } } },
    });
    expect(res.statusCode, res.body).toBe(201);
    const child = res.json<{ task: { id: string }; token: string }>();
    const err = await killDuring(child.token, async () => {
      expect((await bed.h.op('POST', '/v1/kill', { task: parent.id, reason: 'parent stopped' })).statusCode).toBe(200);
    });
    expect(err.data).toMatchObject({ reason: 'TASK_KILLED', halted: true });
    expect(await haltedRecords(child.task.id)).toHaveLength(1);
  });

  it('halts the call when the task is revoked, with TASK_REVOKED, and a later call is refused', async () => {
    const t = await bed.task([{ name: 'slow__*' }]);
    const client: Client = await bed.http(t.token);
    const startedBefore = rec.lines.filter((l) => JSON.stringify(l).includes('waiting 600')).length;
    const call = client.callTool({ name: 'slow__wait', arguments: { seconds: 600 } }, undefined, { timeout: 120_000 }).catch((e: unknown) => e);
    await until(() => rec.lines.filter((l) => JSON.stringify(l).includes('waiting 600')).length > startedBefore, 'the call to reach the upstream');
    await bed.h.runtime.tasks.revoke(t.id, { kind: 'operator', operatorId: 'test' }, 'no longer needed');
    const err = (await call) as McpError;
    expect(err.data).toMatchObject({ reason: 'TASK_REVOKED', halted: true });
  });
});

describe('a halted call is answered with its reason even when its session ends at once', () => {
  let bed: GatewayBed;
  const rec = recorder();
  beforeAll(async () => {
    // no grace: the sessions close in the same turn as the halt, so the answer must not wait for anything
    bed = await startGatewayBed({
      log: rec.log,
      upstreams: () => [{ name: 'slow', transport: 'stdio', command: process.execPath, args: [SLOW], sharing: 'per_session', warm: 1 }],
      config: { limits: { task_check_interval: '1h', halt_grace: '0s' } },
    });
  }, 120_000);
  afterAll(async () => bed.close());

  it('answers TASK_KILLED, not SESSION_CLOSED, and audits the call as halted', async () => {
    const t = await bed.task([{ name: 'slow__*' }]);
    const client = await bed.http(t.token);
    const started = () => rec.lines.filter((l) => JSON.stringify(l).includes('waiting 600')).length;
    const call = client.callTool({ name: 'slow__wait', arguments: { seconds: 600 } }, undefined, { timeout: 120_000 }).catch((e: unknown) => e);
    await until(() => started() > 0, 'the call to reach the upstream');
    expect((await bed.h.op('POST', '/v1/kill', { task: t.id, reason: 'no grace' })).statusCode).toBe(200);
    const err = (await call) as McpError;
    expect(err).toBeInstanceOf(McpError);
    expect(err.code).toBe(HALTED_ERROR_CODE);
    expect(err.data).toMatchObject({ reason: 'TASK_KILLED', halted: true });
    await until(() => bed.h.runtime.mcp.sessionCount === 0, 'the session to close');
    const res = await bed.h.op('GET', `/v1/audit?task_id=${encodeURIComponent(t.id)}&limit=100`);
    const records = res.json<{ records: { kind: string; data: Record<string, unknown> }[] }>().records;
    expect(records.filter((r) => r.kind === 'action' && r.data['final'] === 'halted')).toHaveLength(1);
  });
});

describe('a call whose task ends between its decision and its forward', () => {
  let bed: GatewayBed;
  const rec = recorder();
  beforeAll(async () => {
    // a shared upstream outlives the session, so what reached it is still heard after the session ends
    bed = await startGatewayBed({
      log: rec.log,
      upstreams: () => [{ name: 'slow', transport: 'stdio', command: process.execPath, args: [SLOW], sharing: 'shared' }],
      config: { limits: { task_check_interval: '1h', halt_grace: '0s' } },
    });
  }, 120_000);
  afterAll(async () => bed.close());

  it('is never forwarded: its client hears TASK_KILLED and the call is audited as halted, not sent', async () => {
    const t = await bed.task([{ name: 'slow__*' }]);
    const client = await bed.http(t.token);
    const engine = bed.h.runtime.engine;
    const decide = engine.decide.bind(engine);
    // the kill lands after the call was allowed (its decision is committed) and before the
    // gateway forwards it: the decision returns only once the task's end has been told
    engine.decide = async (req) => {
      const d = await decide(req);
      if (req.tool !== 'slow__wait') return d;
      const told = new Promise<void>((resolve) => bed.h.runtime.taskEnds.watch(t.id, () => resolve()));
      const killed = bed.h.runtime.kill.kill({ task: t.id }, { kind: 'operator', operatorId: 'test' }, 'between decision and forward');
      await told;
      void killed.catch(() => undefined);
      return d;
    };
    try {
      const err = await client.callTool({ name: 'slow__wait', arguments: { seconds: 601 } }, undefined, { timeout: 60_000 }).then(
        () => new Error('the call was answered'),
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(McpError);
      expect((err as McpError).data).toMatchObject({ reason: 'TASK_KILLED', halted: true });
      // give a forwarded call every chance to show up upstream before saying it never did
      await new Promise((r) => setTimeout(r, 500));
      expect(rec.lines.filter((l) => JSON.stringify(l).includes('waiting 601'))).toEqual([]);
      const res = await bed.h.op('GET', `/v1/audit?task_id=${encodeURIComponent(t.id)}&limit=100`);
      const records = res.json<{ records: { kind: string; data: Record<string, unknown> }[] }>().records;
      const halted = records.filter((r) => r.kind === 'action' && r.data['final'] === 'halted');
      expect(halted).toHaveLength(1);
      expect(halted[0]?.data).toMatchObject({ reason: 'TASK_KILLED', forwarded: false });
    } finally {
      delete (engine as { decide?: unknown }).decide;
    }
  });
});
