/**
 * The full relay against server-everything, over stdio and over Streamable HTTP (the gateway's
 * own HTTP client transport: SSE answers carrying server → client requests, the standalone GET
 * stream): progress (the client's token kept),
 * cancellation (forwarded upstream, and the client's HTTP request ended), logging, sampling and
 * elicitation (decided and audited as `<upstream>__sampling/createMessage` and
 * `<upstream>__elicitation/create`), roots, completions, resource templates, subscriptions, and
 * resources namespaced per upstream (two upstreams' same URI both reachable, read without a list).
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
  LoggingMessageNotificationSchema,
  ResourceUpdatedNotificationSchema,
  type LoggingMessageNotification,
} from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { startHttpEverything } from '../../../bench/lib/everything.ts';
import { allAuditRecords } from '../../server/test/support.ts';
import { rpcBody, SERVERS, startGatewayBed, textOf, type GatewayBed } from './support.ts';

const SLOW = new URL('./fixtures/slow-server.ts', import.meta.url).pathname;

describe.each(['stdio', 'http'] as const)('the full MCP relay (server-everything over %s)', (transport) => {
  let bed: GatewayBed;
  const logs: string[] = [];
  const push = (o: object, m: string) => logs.push(m + ' ' + JSON.stringify(o));
  const procs: ChildProcess[] = [];
  beforeAll(async () => {
    const everything = async (): Promise<Record<string, unknown>> => {
      if (transport === 'stdio') return { transport: 'stdio', command: process.execPath, args: [SERVERS.everything] };
      const web = await startHttpEverything();
      procs.push(web.proc);
      return { transport: 'http', url: web.url };
    };
    const [ev, ev2] = [await everything(), await everything()];
    bed = await startGatewayBed({
      log: { debug: push, info: push, warn: push, error: push },
      upstreams: () => [
        { name: 'ev', ...ev },
        { name: 'ev2', ...ev2, sharing: 'shared' },
        { name: 'slow', transport: 'stdio', command: process.execPath, args: [SLOW] },
      ],
    });
  }, 120_000);
  afterAll(async () => {
    await bed.close();
    for (const p of procs) p.kill();
  });

  /** An SDK client over Streamable HTTP that offers sampling, elicitation and roots. */
  async function richClient(token: string): Promise<{ client: Client; asked: string[] }> {
    const asked: string[] = [];
    const client = new Client({ name: 'rich', version: '1.0.0' }, { capabilities: { sampling: {}, elicitation: { form: {} }, roots: { listChanged: true } } });
    client.setRequestHandler(CreateMessageRequestSchema, async (r) => {
      asked.push(`sampling:${JSON.stringify(r.params.messages)}`);
      return { model: 'test-model', role: 'assistant', content: { type: 'text', text: 'the model says hi' } };
    });
    client.setRequestHandler(ElicitRequestSchema, async (r) => {
      asked.push(`elicitation:${r.params.message}`);
      return { action: 'decline' };
    });
    client.setRequestHandler(ListRootsRequestSchema, async () => {
      asked.push('roots');
      return { roots: [{ uri: 'file:///work/project-x', name: 'project-x' }] };
    });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${bed.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
    return { client, asked };
  }

  it('relays progress notifications with the client\'s own progress token', async () => {
    const t = await bed.task([{ name: 'ev__trigger-long-running-operation' }]);
    const { client } = await richClient(t.token);
    const seen: { progress: number; total?: number | undefined }[] = [];
    const r = await client.callTool({ name: 'ev__trigger-long-running-operation', arguments: { duration: 1, steps: 3 } }, undefined, { onprogress: (p) => seen.push(p) });
    expect(textOf(r)).toContain('Long running operation completed');
    expect(seen.map((p) => p.progress)).toEqual([1, 2, 3]);
    expect(seen[0]?.total).toBe(3);
    await client.close();
  });

  it('relays every progress notification, the last one too, when the upstream answers right after it', async () => {
    const t = await bed.task([{ name: 'slow__count' }]);
    const { client } = await richClient(t.token);
    for (let round = 0; round < 5; round++) {
      const seen: number[] = [];
      const r = await client.callTool({ name: 'slow__count', arguments: { n: 4 } }, undefined, { onprogress: (p) => seen.push(p.progress) });
      expect(textOf(r)).toBe('counted 4');
      expect(seen).toEqual([1, 2, 3, 4]);
    }
    await client.close();
  });

  it('forwards a cancellation upstream and ends the client\'s HTTP request', async () => {
    const t = await bed.task([{ name: 'slow__wait' }]);
    const { client } = await richClient(t.token);
    // the same session by hand: a raw POST whose stream must end once it is cancelled
    const init = await fetch(`${bed.url}/mcp`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }),
    });
    await rpcBody(init);
    const sid = init.headers.get('mcp-session-id') ?? '';
    const headers = { authorization: `Bearer ${t.token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' };
    await fetch(`${bed.url}/mcp`, { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) });
    const started = Date.now();
    const waiting = fetch(`${bed.url}/mcp`, { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'slow__wait', arguments: { seconds: 120 } } }) });
    // cancel once the upstream is working on it: its decision is in the audit chain, and the
    // upstream says it started (the decision is committed before the call is forwarded, and a
    // call cancelled before it is sent is never sent, so there would be nothing to cancel there)
    await expect.poll(async () => (await allAuditRecords(bed.h)).some((r) => r.task_id === t.id && r.kind === 'action'), { timeout: 20_000, interval: 50 }).toBe(true);
    await expect.poll(() => logs.some((l) => l.includes('waiting 120')), { timeout: 20_000, interval: 50 }).toBe(true);
    const cancel = await fetch(`${bed.url}/mcp`, { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 7, reason: 'user pressed stop' } }) });
    expect(cancel.status).toBe(202);
    const res = await waiting;
    await res.text(); // the stream ends (no answer, as the spec says), long before the 120 s
    expect(Date.now() - started).toBeLessThan(60_000);
    await expect.poll(() => logs.some((l) => l.includes('cancelled 120')), { timeout: 20_000, interval: 50 }).toBe(true);
    // the SDK client's own cancel: its promise ends, the session goes on
    const ac = new AbortController();
    const call = client.callTool({ name: 'slow__wait', arguments: { seconds: 90 } }, undefined, { signal: ac.signal });
    // aborted once the upstream is working on it (as above), not after a guessed delay
    await expect.poll(() => logs.some((l) => l.includes('waiting 90')), { timeout: 20_000, interval: 50 }).toBe(true);
    ac.abort('stop');
    await expect(call).rejects.toThrow();
    await expect.poll(() => logs.some((l) => l.includes('cancelled 90')), { timeout: 20_000, interval: 50 }).toBe(true);
    expect(textOf(await client.callTool({ name: 'slow__wait', arguments: { seconds: 0 } }))).toBe('waited 0');
    await client.close();
  });

  it('relays sampling only when the mandate grants it, decided and audited like a call', async () => {
    const allowed = await bed.task([{ name: 'ev__trigger-sampling-request' }, { name: 'ev__sampling/createMessage' }]);
    const a = await richClient(allowed.token);
    const r = await a.client.callTool({ name: 'ev__trigger-sampling-request', arguments: { prompt: 'say hi' } });
    expect(textOf(r)).toContain('the model says hi');
    expect(a.asked.some((x) => x.startsWith('sampling:') && x.includes('say hi'))).toBe(true);
    const all = await allAuditRecords(bed.h);
    const decision = all.find((x) => x.task_id === allowed.id && x.kind === 'decision' && x.data['tool'] === 'ev__sampling/createMessage');
    expect(decision?.data['effect']).toBe('allow');
    await expect.poll(async () => (await allAuditRecords(bed.h)).filter((x) => x.call_id === decision?.call_id).map((x) => x.kind), { timeout: 5000, interval: 20 }).toEqual(['decision', 'action', 'outcome']);
    await a.client.close();

    const denied = await bed.task([{ name: 'ev__trigger-sampling-request' }]);
    const d = await richClient(denied.token);
    const refused = await d.client.callTool({ name: 'ev__trigger-sampling-request', arguments: { prompt: 'say hi' } });
    expect(JSON.stringify(refused)).toContain('TOOL_NOT_IN_MANDATE');
    expect(d.asked.filter((x) => x.startsWith('sampling:'))).toEqual([]);
    const deny = (await allAuditRecords(bed.h)).find((x) => x.task_id === denied.id && x.kind === 'decision' && x.data['tool'] === 'ev__sampling/createMessage');
    expect(deny?.data['effect']).toBe('deny');
    await d.client.close();
  });

  it('relays elicitation only when the mandate grants it', async () => {
    const t = await bed.task([{ name: 'ev__trigger-elicitation-request' }, { name: 'ev__elicitation/create' }]);
    const { client, asked } = await richClient(t.token);
    const r = await client.callTool({ name: 'ev__trigger-elicitation-request', arguments: {} });
    expect(textOf(r)).toContain('declined');
    expect(asked.some((x) => x.startsWith('elicitation:'))).toBe(true);
    await client.close();
    const no = await bed.task([{ name: 'ev__trigger-elicitation-request' }]);
    const n = await richClient(no.token);
    expect(JSON.stringify(await n.client.callTool({ name: 'ev__trigger-elicitation-request', arguments: {} }))).toContain('TOOL_NOT_IN_MANDATE');
    expect(n.asked.filter((x) => x.startsWith('elicitation:'))).toEqual([]);
    await n.client.close();
  });

  it('relays the client\'s roots to its own upstream, and the upstream\'s log messages to the client', async () => {
    const t = await bed.task([{ name: 'ev__get-roots-list' }, { name: 'ev__toggle-simulated-logging' }]);
    const { client, asked } = await richClient(t.token);
    const messages: LoggingMessageNotification['params'][] = [];
    client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void messages.push(n.params));
    // a warm upstream was told "no roots" before this client came; once the session has
    // initialized it is told the roots changed and asks again, through the gateway, while the
    // client may already be calling: its answer catches up (roots are announced, not awaited)
    await expect.poll(async () => textOf(await client.callTool({ name: 'ev__get-roots-list', arguments: {} })), { timeout: 25_000, interval: 200 }).toContain('file:///work/project-x');
    expect(asked).toContain('roots');
    await client.setLoggingLevel('debug');
    await client.callTool({ name: 'ev__toggle-simulated-logging', arguments: {} });
    await expect.poll(() => messages.filter((m) => m.logger?.startsWith('ev') === true && String(m.data).includes('-level message')).length, { timeout: 25_000, interval: 100 }).toBeGreaterThan(0);
    await client.callTool({ name: 'ev__toggle-simulated-logging', arguments: {} });
    await client.close();
  });

  it('lists resource templates, reads and completes without a prior list, and keeps two upstreams\' same URI apart', async () => {
    const t = await bed.task([{ name: 'ev__resources/read' }, { name: 'ev2__resources/read' }, { name: 'ev__prompts/*' }]);
    const { client } = await richClient(t.token);
    // no list first: the namespaced URI names its upstream
    const read = await client.readResource({ uri: 'ev+demo://resource/dynamic/text/3' });
    expect(read.contents[0]?.uri).toBe('ev+demo://resource/dynamic/text/3');
    expect(JSON.stringify(read.contents[0])).toContain('3');
    const templates = (await client.listResourceTemplates()).resourceTemplates.map((x) => x.uriTemplate);
    expect(templates).toEqual(expect.arrayContaining(['ev+demo://resource/dynamic/text/{resourceId}', 'ev2+demo://resource/dynamic/text/{resourceId}']));
    const uris = (await client.listResources()).resources.map((x) => x.uri);
    const evOnes = uris.filter((u) => u.startsWith('ev+')).map((u) => u.slice(3));
    expect(evOnes.length).toBeGreaterThan(0);
    for (const u of evOnes) expect(uris).toContain(`ev2+${u}`);
    expect((await client.readResource({ uri: `ev2+${evOnes[0] ?? ''}` })).contents.length).toBeGreaterThan(0);
    // prompts: get without a list, completions through the namespaced reference
    const prompt = await client.getPrompt({ name: 'ev__args-prompt', arguments: { city: 'Lyon' } });
    expect(JSON.stringify(prompt.messages)).toContain('Lyon');
    const done = await client.complete({ ref: { type: 'ref/prompt', name: 'ev__completable-prompt' }, argument: { name: 'department', value: 'Eng' } });
    expect(done.completion.values).toContain('Engineering');
    const rid = await client.complete({ ref: { type: 'ref/resource', uri: 'ev+demo://resource/dynamic/text/{resourceId}' }, argument: { name: 'resourceId', value: '1' } });
    expect(Array.isArray(rid.completion.values)).toBe(true);
    // a prompt the mandate does not grant cannot be completed or fetched
    await expect(client.complete({ ref: { type: 'ref/prompt', name: 'ev2__completable-prompt' }, argument: { name: 'department', value: 'Eng' } })).rejects.toThrow(/unknown prompt/);
    await expect(client.getPrompt({ name: 'ev2__simple-prompt' })).rejects.toThrow(/TOOL_NOT_IN_MANDATE/);
    await client.close();
  });

  it('rewrites the resource links a tool returns into the gateway\'s namespace, where the client reads them', async () => {
    const t = await bed.task([{ name: 'ev__get-resource-links' }, { name: 'ev__resources/read' }]);
    const { client } = await richClient(t.token);
    const r = await client.callTool({ name: 'ev__get-resource-links', arguments: { count: 2 } });
    const links = (r.content as { type: string; uri?: string }[]).filter((c) => c.type === 'resource_link');
    expect(links.length).toBe(2);
    for (const l of links) expect(l.uri).toMatch(/^ev\+demo:\/\/resource\//);
    // the link as given is readable through the gateway
    const read = await client.readResource({ uri: links[0]?.uri ?? '' });
    expect(read.contents[0]?.uri).toBe(links[0]?.uri);
    await client.close();
  });

  it('relays resource subscriptions with the namespaced URI', async () => {
    const t = await bed.task([{ name: 'ev__resources/read' }, { name: 'ev__toggle-subscriber-updates' }]);
    const { client } = await richClient(t.token);
    const updated: string[] = [];
    client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void updated.push(n.params.uri));
    await client.subscribeResource({ uri: 'ev+demo://resource/dynamic/text/1' });
    await client.callTool({ name: 'ev__toggle-subscriber-updates', arguments: {} }).catch(() => undefined);
    await expect.poll(() => updated, { timeout: 25_000, interval: 100 }).toContain('ev+demo://resource/dynamic/text/1');
    await client.unsubscribeResource({ uri: 'ev+demo://resource/dynamic/text/1' });
    await client.close();
  });
});
