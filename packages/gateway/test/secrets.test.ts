/**
 * Secrets brokered, never exposed (THREATS NHI2/NHI7): an upstream credential is stored
 * encrypted, injected into the upstream's process for one session, and never reaches the client
 * (results, errors, lists), the audit chain or the logs — even from an upstream that prints its
 * whole environment. Killing the task ends the session and the process holding the lease.
 */
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { restartEnv } from '@mandate/server';
import { allAuditRecords } from '../../server/test/support.ts';
import { SERVERS, startGatewayBed, textOf, type GatewayBed } from './support.ts';

const FIXTURE = new URL('./fixtures/mutable-server.ts', import.meta.url).pathname;
const CANARY = `canary-${randomBytes(12).toString('hex')}`;

describe('secrets brokered by the gateway', () => {
  let bed: GatewayBed;
  const logs: string[] = [];
  const log = {
    debug: (o: object, m: string) => logs.push(JSON.stringify(o) + m),
    info: (o: object, m: string) => logs.push(JSON.stringify(o) + m),
    warn: (o: object, m: string) => logs.push(JSON.stringify(o) + m),
    error: (o: object, m: string) => logs.push(JSON.stringify(o) + m),
  };
  // what `mandate serve` adds to its own environment when it starts again with its heap settings
  const added = Object.keys(restartEnv({}));
  const saved = added.map((k) => [k, process.env[k]] as const);
  beforeAll(async () => {
    Object.assign(process.env, restartEnv({}));
    bed = await startGatewayBed({
      log,
      upstreams: (work) => [
        { name: 'ev', transport: 'stdio', command: process.execPath, args: [SERVERS.everything], env: { UPSTREAM_API_KEY: 'secret:canary', PLAIN: 'visible' } },
        { name: 'mut', transport: 'stdio', command: process.execPath, args: [FIXTURE, join(work, 'desc.txt')], env: { FIXTURE_TOKEN: 'secret:canary' } },
      ],
    });
    await writeFile(join(bed.work, 'desc.txt'), 'Look up a word.');
  });
  afterAll(async () => {
    await bed.close();
    for (const [k, v] of saved) if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  });

  it('stores the value encrypted and shows only names', async () => {
    const put = await bed.h.op('PUT', '/v1/secrets/canary', { value: CANARY });
    expect(put.statusCode).toBe(200);
    expect(put.body).not.toContain(CANARY);
    expect((await bed.h.op('GET', '/v1/secrets')).json()).toEqual({ secrets: [{ name: 'canary', updated_at: expect.any(String) }] });
    expect((await bed.h.op('PUT', '/v1/secrets/bad name', { value: 'x'.repeat(10) })).statusCode).toBe(400);
    expect((await bed.h.op('PUT', '/v1/secrets/short', { value: 'abc' })).statusCode).toBe(400);
    const db = await readFile(join(bed.h.dir, 'mandate.db'));
    expect(db.includes(Buffer.from(CANARY))).toBe(false);
  });

  it('NHI2/NHI7 secret leakage: injects the secret upstream and never lets it reach the client, the audit or the logs', async () => {
    const t = await bed.task([{ name: 'ev__get-env' }, { name: 'mut__lookup' }]);
    const client = await bed.http(t.token);
    const env = await client.callTool({ name: 'ev__get-env', arguments: {} });
    const text = textOf(env);
    // the upstream had it (the variable is there, scrubbed), the client never sees it
    expect(text).toContain('UPSTREAM_API_KEY');
    expect(text).toContain('"PLAIN": "visible"');
    expect(text).toContain('[secret withheld by mandate]');
    // the gateway's own malloc settings stay with it: an upstream gets only its config's env and PATH, HOME and the like
    expect(added.length).toBeGreaterThan(0);
    for (const k of added) expect(text).not.toContain(k);
    expect(JSON.stringify(env)).not.toContain(CANARY);
    expect(JSON.stringify(await client.listTools())).not.toContain(CANARY);
    await client.callTool({ name: 'mut__lookup', arguments: { word: 'x' } });
    await client.close();

    expect(JSON.stringify(await allAuditRecords(bed.h))).not.toContain(CANARY);
    // the fixture printed its token to stderr: logged, scrubbed
    expect(logs.some((l) => l.includes('starting with token [secret withheld by mandate]'))).toBe(true);
    expect(logs.join('\n')).not.toContain(CANARY);
  });

  it('ends the session and its upstream processes when the task is killed', async () => {
    const t = await bed.task([{ name: 'ev__echo' }]);
    const client = await bed.http(t.token);
    expect(textOf(await client.callTool({ name: 'ev__echo', arguments: { message: 'hi' } }))).toContain('hi');
    const before = bed.h.runtime.mcp.sessionCount;
    const kill = await bed.h.op('POST', '/v1/kill', { task: t.id, reason: 'test' });
    expect(kill.json()).toMatchObject({ killed_tasks: [t.id], revoked_leases: 1 });
    expect(bed.h.runtime.mcp.sessionCount).toBe(before - 1);
    await expect(client.callTool({ name: 'ev__echo', arguments: { message: 'again' } })).rejects.toThrow();
    // a new session for the killed task is refused
    await expect(bed.http(t.token)).rejects.toThrow(/TASK_KILLED|403/);
  });
});
