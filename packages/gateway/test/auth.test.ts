/**
 * The gateway as an OAuth 2.1 protected resource (RFC 9728, the MCP authorization spec): an
 * unauthenticated request gets the pointer to its metadata, the metadata names Mandate's task
 * start and comes from the configured public URL (never the request's Host), and tokens can be
 * bound to this gateway (RFC 8707 `resource`): one bound elsewhere is refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GATEWAY_CEILING, SERVERS, startGatewayBed, textOf, type GatewayBed } from './support.ts';

const PUBLIC = 'https://mandate.example.com';
const RESOURCE = `${PUBLIC}/mcp`;

describe('MCP authorization discovery', () => {
  let bed: GatewayBed;
  beforeAll(async () => {
    bed = await startGatewayBed({
      serverConfig: { server: { public_url: PUBLIC } },
      upstreams: () => [{ name: 'ev', transport: 'stdio', command: process.execPath, args: [SERVERS.everything], sharing: 'shared' }],
    });
  });
  afterAll(async () => bed.close());

  async function startWith(resource: string | undefined) {
    const agent = await bed.h.registerAgent('mcp-aud', GATEWAY_CEILING);
    const svid = await bed.h.workloadToken(agent);
    const mandate = { purpose: 'Echo things.', environment: 'prod', ttl: '15m', tools: [{ name: 'ev__echo' }], data_classes: ['internal'], budgets: { calls: 200 } };
    return bed.h.inject({ method: 'POST', url: '/v1/tasks', headers: { authorization: `Bearer ${svid}` }, payload: { mandate, ...(resource !== undefined ? { resource } : {}) } });
  }

  it('answers an unauthenticated request with 401 and the RFC 9728 pointer, from the configured URL, whatever the Host', async () => {
    const res = await fetch(`${bed.url}/mcp`, {
      method: 'POST',
      headers: { host: 'evil.example', 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'anon', version: '1' } } }),
    });
    expect(res.status).toBe(401);
    const challenge = res.headers.get('www-authenticate') ?? '';
    expect(challenge).toMatch(/^Bearer /);
    expect(challenge).toContain(`resource_metadata="${PUBLIC}/.well-known/oauth-protected-resource/mcp"`);
    expect(challenge).not.toContain('evil.example');
    expect(((await res.json()) as { error: { data: { reason: string } } }).error.data.reason).toBe('TOKEN_MISSING');

    for (const path of ['/.well-known/oauth-protected-resource/mcp', '/.well-known/oauth-protected-resource']) {
      const meta = await bed.h.inject({ method: 'GET', url: path, headers: { host: 'evil.example' } });
      expect(meta.statusCode).toBe(200);
      expect(meta.body).not.toContain('evil.example');
      expect(meta.json()).toMatchObject({ resource: RESOURCE, bearer_methods_supported: ['header'], mandate_task_start_endpoint: `${PUBLIC}/v1/tasks` });
      // Mandate is no OAuth authorization server: a client must not start an OAuth flow here
      expect(meta.json()).not.toHaveProperty('authorization_servers');
    }
  });

  it('binds a task token to this gateway when the task start names it (RFC 8707), and refuses another resource', async () => {
    const bound = await startWith(RESOURCE);
    expect(bound.statusCode).toBe(201);
    const token = bound.json<{ token: string }>().token;
    const claims = await bed.h.runtime.tokens.verify(token);
    expect(claims.aud).toEqual(['mandate', RESOURCE]);
    const client = await bed.http(token);
    expect(textOf(await client.callTool({ name: 'ev__echo', arguments: { message: 'bound' } }))).toBe('Echo: bound');
    // a renewal keeps the binding
    const renewed = await bed.h.inject({ method: 'POST', url: `/v1/tasks/${claims.task_id}/renew`, headers: { authorization: `Bearer ${token}` }, payload: {} });
    expect(renewed.statusCode).toBe(200);
    expect((await bed.h.runtime.tokens.verify(renewed.json<{ token: string }>().token)).aud).toEqual(['mandate', RESOURCE]);

    const elsewhere = await startWith('https://other.example.com/mcp');
    expect(elsewhere.statusCode).toBe(400);
    expect(elsewhere.body).toContain('invalid_target');

    // a token minted for another resource (as another deployment's gateway would hold) is refused here
    const id = bound.json<{ task: { id: string } }>().task.id;
    const task = await bed.h.runtime.taskState.getTask(id);
    if (!task) throw new Error('no task');
    const other = await bed.h.runtime.tokens.mint({ agentId: task.agentId, taskId: task.id, mandateHash: task.mandateHash, txn: task.txn, expiresAt: task.expiresAt, resource: 'https://other.example.com/mcp' });
    const res = await fetch(`${bed.url}/mcp`, {
      method: 'POST',
      headers: { authorization: `Bearer ${other.token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } } }),
    });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { data: { reason: string } } }).error.data.reason).toBe('TOKEN_AUDIENCE_MISMATCH');
  });
});

describe('a gateway that accepts only tokens requested for it', () => {
  let bed: GatewayBed;
  beforeAll(async () => {
    bed = await startGatewayBed({ serverConfig: { server: { public_url: PUBLIC } }, upstreams: () => [], config: { require_resource_audience: true } });
  });
  afterAll(async () => bed.close());

  it('refuses a task token that names no resource', async () => {
    const t = await bed.task([{ name: 'ev__echo' }]);
    await expect(bed.http(t.token)).rejects.toThrow(/401|TOKEN_AUDIENCE_MISMATCH/);
  });
});
