/**
 * The gateway over Streamable HTTP, with real MCP servers from npm behind it and the SDK's real
 * client in front: the filtered list, decided calls, results as a direct connection gives them,
 * and the audit trail from decision to outcome.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allAuditRecords } from '../../server/test/support.ts';
import { decisionOf, direct, SERVERS, startGatewayBed, textOf, type GatewayBed } from './support.ts';

describe('MCP gateway over Streamable HTTP', () => {
  let bed: GatewayBed;
  beforeAll(async () => {
    bed = await startGatewayBed();
  });
  afterAll(async () => bed.close());

  const grants = () => [
    { name: 'fs__read_text_file', args: { path: { prefix: bed.files + '/' } } },
    { name: 'fs__list_directory', args: { path: { prefix: bed.files } } },
    { name: 'mem__*' },
    { name: 'ev__echo' },
    { name: 'ev__get-sum' },
    { name: 'nowhere__tool' },
  ];

  it('lists exactly the mandate tools the upstreams have', async () => {
    const t = await bed.task(grants());
    const client = await bed.http(t.token);
    const names = (await client.listTools()).tools.map((x) => x.name).sort();
    const memTools = (await (await direct([SERVERS.memory], { MEMORY_FILE_PATH: join(bed.work, 'm2.jsonl') })).listTools()).tools.map((x) => `mem__${x.name}`);
    expect(names).toEqual(['ev__echo', 'ev__get-sum', 'fs__list_directory', 'fs__read_text_file', ...memTools].sort());
  });

  it('returns the same result as a direct connection for an allowed call', async () => {
    const t = await bed.task(grants());
    const client = await bed.http(t.token);
    const path = join(bed.files, 'notes', 'hello.txt');
    const via = await client.callTool({ name: 'fs__read_text_file', arguments: { path } });
    const ref = await direct([SERVERS.filesystem, bed.files]);
    const straight = await ref.callTool({ name: 'read_text_file', arguments: { path } });
    await ref.close();
    expect(via).toEqual(straight);
    expect(textOf(via)).toContain('hello from the allowed folder');

    const sum = await client.callTool({ name: 'ev__get-sum', arguments: { a: 2, b: 40 } });
    const ev = await direct([SERVERS.everything]);
    expect(sum).toEqual(await ev.callTool({ name: 'get-sum', arguments: { a: 2, b: 40 } }));
    await ev.close();
  });

  it('denies a path outside the allowed prefix, with the reason, without forwarding', async () => {
    const t = await bed.task(grants());
    const client = await bed.http(t.token);
    for (const path of [join(bed.work, 'outside.txt'), `${bed.files}/../outside.txt`]) {
      const r = await client.callTool({ name: 'fs__read_text_file', arguments: { path } });
      expect(r.isError).toBe(true);
      expect(decisionOf(r)).toMatchObject({ effect: 'deny', reasons: ['ARG_CONSTRAINT_FAILED'] });
      expect(textOf(r)).not.toContain('not for the agent');
    }
  });

  it('refuses a tool outside the mandate, even one the upstream has', async () => {
    const t = await bed.task(grants());
    const client = await bed.http(t.token);
    const r = await client.callTool({ name: 'fs__write_file', arguments: { path: join(bed.files, 'x.txt'), content: 'pwned' } });
    expect(r.isError).toBe(true);
    expect(decisionOf(r)).toMatchObject({ effect: 'deny', reasons: ['TOOL_NOT_IN_MANDATE'] });
    await expect(client.callTool({ name: 'nowhere__tool', arguments: {} })).rejects.toThrow(/unknown tool/);
  });

  it('audits decision, action and the outcome digest for a forwarded call', async () => {
    const t = await bed.task(grants());
    const client = await bed.http(t.token);
    await client.callTool({ name: 'mem__create_entities', arguments: { entities: [{ name: 'ticket-17', entityType: 'ticket', observations: ['opened'] }] } });
    const graph = await client.callTool({ name: 'mem__read_graph', arguments: {} });
    expect(textOf(graph)).toContain('ticket-17');
    await client.close();
    // the outcome record is committed after the answer, sharing the next commit (at most a few ms later)
    const kindsByCall = async () => {
      const calls = new Map<string, string[]>();
      for (const r of (await allAuditRecords(bed.h)).filter((x) => x.task_id === t.id)) if (r.call_id) calls.set(r.call_id, [...(calls.get(r.call_id) ?? []), r.kind]);
      return [...calls.values()];
    };
    await expect.poll(kindsByCall, { timeout: 2000, interval: 5 }).toEqual([
      ['decision', 'action', 'outcome'],
      ['decision', 'action', 'outcome'],
    ]);
    const records = (await allAuditRecords(bed.h)).filter((r) => r.task_id === t.id);
    const outcome = records.find((r) => r.kind === 'outcome');
    expect(outcome?.data).toMatchObject({ tool: 'mem__create_entities', trust: 'untrusted', is_error: false });
    expect(String(outcome?.data['result_digest'])).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect((await bed.h.verifyAudit()).ok).toBe(true);
  });

  it('gives no session, and no tools, without a valid task token', async () => {
    await expect(bed.http(undefined)).rejects.toThrow(/401|TOKEN_MISSING/);
    await expect(bed.http('not-a-token')).rejects.toThrow(/401|TOKEN_/);
  });

  it('keeps nothing per answered call in the session transport', async () => {
    const t = await bed.task(grants());
    const client = await bed.http(t.token);
    const sessions = (bed.h.runtime.mcp as unknown as { http: Map<string, { session: { taskId: string }; transport: { pending: number } }> }).http;
    const mine = [...sessions.values()].find((e) => e.session.taskId === t.id);
    expect(mine).toBeDefined();
    const transport = (mine as NonNullable<typeof mine>).transport;
    // concurrent calls: each waits in the transport until it is answered, then is forgotten
    const calls = Promise.all(Array.from({ length: 25 }, (_, i) => client.callTool({ name: i % 5 === 0 ? 'fs__write_file' : 'ev__echo', arguments: i % 5 === 0 ? { path: '/x', content: 'y' } : { message: `m${i}` } })));
    await expect.poll(() => transport.pending, { timeout: 10_000, interval: 1 }).toBeGreaterThan(0);
    const results = await calls;
    expect(results.filter((r) => r.isError === true)).toHaveLength(5);
    expect(textOf(results[1] as Parameters<typeof textOf>[0])).toBe('Echo: m1');
    await client.listTools();
    expect(transport.pending).toBe(0);
  });
});
