/**
 * Issue 13 at the MCP gateway: a key-bound task token (`cnf.jkt`) over Streamable HTTP is
 * useless without a fresh DPoP proof on every request, made with the task's key for that
 * request (method, the URL of /mcp, the token's hash). The SDK's real MCP client signs each
 * request through its `fetch` hook; refused requests answer 401 with the DPOP_* reason.
 */
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { LATEST_PROTOCOL_VERSION } from '@modelcontextprotocol/sdk/types.js';
import { createProof, jwkThumbprint, type ProofKey } from '@mandate/core';
import { dpopFetch } from '@mandate/gateway';
import { exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allAuditRecords, decodeJwt, ManualClock } from '../../server/test/support.ts';
import { CLI, decisionOf, GATEWAY_CEILING, rpcBody, SERVERS, startGatewayBed, textOf, type GatewayBed } from './support.ts';

const evOnly = () => [{ name: 'ev', transport: 'stdio', command: process.execPath, args: [SERVERS.everything] }];
const sha256 = { sha256Hex: (s: string) => createHash('sha256').update(s, 'utf8').digest('hex') };

type Key = ProofKey & { jkt: string; privateJwk: Record<string, unknown> };
async function newKey(alg: 'EdDSA' | 'ES256' = 'EdDSA'): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  return { privateKey, publicJwk, alg, jkt: await jwkThumbprint(publicJwk), privateJwk: (await exportJWK(privateKey)) as Record<string, unknown> };
}

let seq = 0;
function proofFor(bed: GatewayBed, key: ProofKey, o: { method: string; htu: string; token: string; nonce?: string }): Promise<string> {
  return createProof({ key, method: o.method, htu: o.htu, accessToken: o.token, now: bed.h.clock.now(), jti: `t-${++seq}-${Math.random()}`, hasher: sha256, ...(o.nonce !== undefined ? { nonce: o.nonce } : {}) });
}

/** Starts a task bound to `key`: the task start carries a proof over the workload token. */
async function startBound(bed: GatewayBed, key: ProofKey, name: string): Promise<{ id: string; token: string }> {
  const agent = await bed.h.registerAgent(name, GATEWAY_CEILING);
  const svid = await bed.h.workloadToken(agent);
  const m = { purpose: 'Echo things.', environment: 'prod', ttl: '15m', tools: [{ name: 'ev__echo' }], data_classes: ['internal'], budgets: { calls: 100 } };
  const first = await fetch(`${bed.url}/v1/tasks`, {
    method: 'POST',
    headers: { authorization: `Bearer ${svid}`, 'content-type': 'application/json', dpop: await proofFor(bed, key, { method: 'POST', htu: `${bed.url}/v1/tasks`, token: svid }) },
    body: JSON.stringify({ mandate: m }),
  });
  let res = first;
  const nonce = first.headers.get('dpop-nonce');
  if (first.status === 401 && nonce !== null) {
    res = await fetch(`${bed.url}/v1/tasks`, {
      method: 'POST',
      headers: { authorization: `Bearer ${svid}`, 'content-type': 'application/json', dpop: await proofFor(bed, key, { method: 'POST', htu: `${bed.url}/v1/tasks`, token: svid, nonce }) },
      body: JSON.stringify({ mandate: m }),
    });
  }
  const body = (await res.json()) as { task: { id: string }; token: string };
  expect(res.status, JSON.stringify(body)).toBe(201);
  expect(decodeJwt(body.token).payload['cnf']).toEqual({ jkt: (key as Key).jkt });
  return { id: body.task.id, token: body.token };
}

async function mcpClient(bed: GatewayBed, f: typeof fetch): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const client = new Client({ name: 'dpop-test', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(`${bed.url}/mcp`), { fetch: f });
  await client.connect(transport);
  return { client, transport };
}

/** One raw tools/call on an open session, with whatever DPoP header (or none) the test gives. */
async function rawCall(bed: GatewayBed, sessionId: string, token: string, dpop: string | undefined): Promise<Response> {
  return fetch(`${bed.url}/mcp`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${token}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-session-id': sessionId,
      'mcp-protocol-version': LATEST_PROTOCOL_VERSION,
      ...(dpop !== undefined ? { dpop } : {}),
    },
    body: JSON.stringify({ jsonrpc: '2.0', id: ++seq, method: 'tools/call', params: { name: 'ev__echo', arguments: { message: 'raw' } } }),
  });
}

async function reasonOf(res: Response): Promise<string | undefined> {
  const body = (await res.json()) as { error?: { data?: { reason?: string } } };
  return body.error?.data?.reason;
}

describe('MCP gateway: key-bound task tokens (DPoP) over Streamable HTTP', () => {
  let bed: GatewayBed;
  const clients: Client[] = [];
  beforeAll(async () => {
    bed = await startGatewayBed({ upstreams: evOnly, clock: new ManualClock(Date.now()) });
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await bed.close();
  });

  it('allows calls when every request carries a fresh proof made with the task key (the proof reaches the decision)', async () => {
    const key = await newKey();
    const t = await startBound(bed, key, 'dpop-mcp-ok');
    const { client } = await mcpClient(bed, dpopFetch({ key, token: () => t.token, now: () => bed.h.clock.now() }));
    clients.push(client);
    expect((await client.listTools()).tools.map((x) => x.name)).toEqual(['ev__echo']);
    const r = await client.callTool({ name: 'ev__echo', arguments: { message: 'bound' } });
    expect(r.isError).not.toBe(true);
    expect(textOf(r)).toContain('bound');
    // a second call, a second proof: both allowed (the decision saw a verified proof each time,
    // else the key-bound token would have been denied DPOP_PROOF_MISSING by decide())
    const r2 = await client.callTool({ name: 'ev__echo', arguments: { message: 'again' } });
    expect(textOf(r2)).toContain('again');
    const decisions = (await allAuditRecords(bed.h)).filter((a) => a.kind === 'decision' && a.task_id === t.id);
    expect(decisions.map((d) => (d.data as { effect: string }).effect)).toEqual(['allow', 'allow']);
  });

  it('sends a distinct proof on every request (POST, GET and DELETE all signed)', async () => {
    const key = await newKey('ES256');
    const t = await startBound(bed, key, 'dpop-mcp-each');
    const sent: { method: string; proof: string | null }[] = [];
    const f = dpopFetch({
      key,
      token: () => t.token,
      now: () => bed.h.clock.now(),
      fetch: async (input, init) => {
        sent.push({ method: init?.method ?? 'GET', proof: new Headers(init?.headers).get('dpop') });
        return fetch(input, init);
      },
    });
    const { client, transport } = await mcpClient(bed, f);
    await client.callTool({ name: 'ev__echo', arguments: { message: 'x' } });
    const sid = transport.sessionId ?? '';
    await transport.terminateSession();
    await client.close();
    expect(sent.length).toBeGreaterThanOrEqual(4);
    expect(sent.every((s) => typeof s.proof === 'string' && s.proof.length > 0)).toBe(true);
    expect(new Set(sent.map((s) => s.proof)).size).toBe(sent.length);
    expect(sent.some((s) => s.method === 'DELETE')).toBe(true);
    // the DELETE was accepted (it carried a valid proof), so the session is gone
    const after = await rawCall(bed, sid, t.token, await proofFor(bed, key, { method: 'POST', htu: `${bed.url}/mcp`, token: t.token }));
    expect(after.status).toBe(404);
  });

  it('refuses a stolen token used with another key: no session opens, and no call on the owner session (DPOP_KEY_MISMATCH)', async () => {
    const key = await newKey();
    const thief = await newKey('ES256');
    const t = await startBound(bed, key, 'dpop-mcp-stolen');
    await expect(mcpClient(bed, dpopFetch({ key: thief, token: () => t.token, now: () => bed.h.clock.now() }))).rejects.toThrow(/DPOP_KEY_MISMATCH/);

    const { client, transport } = await mcpClient(bed, dpopFetch({ key, token: () => t.token, now: () => bed.h.clock.now() }));
    clients.push(client);
    const before = (await allAuditRecords(bed.h)).length;
    const res = await rawCall(bed, transport.sessionId ?? '', t.token, await proofFor(bed, thief, { method: 'POST', htu: `${bed.url}/mcp`, token: t.token }));
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^DPoP error="invalid_dpop_proof"/);
    expect(await reasonOf(res)).toBe('DPOP_KEY_MISMATCH');
    // nothing was forwarded: the only decision recorded is the refusal itself, with its reason
    const decisions = (await allAuditRecords(bed.h)).slice(before).filter((a) => a.kind === 'decision');
    expect(decisions).toHaveLength(1);
    expect(JSON.stringify(decisions[0])).toContain('DPOP_KEY_MISMATCH');
    expect(JSON.stringify(decisions[0])).toContain('mcp.dpop');
  });

  it('refuses the bound token without a proof (DPOP_PROOF_MISSING), at session open and within a session', async () => {
    const key = await newKey();
    const t = await startBound(bed, key, 'dpop-mcp-missing');
    const bearerOnly: typeof fetch = (input, init) => {
      const headers = new Headers(init?.headers);
      headers.set('authorization', `Bearer ${t.token}`);
      return fetch(input, { ...init, headers });
    };
    await expect(mcpClient(bed, bearerOnly)).rejects.toThrow(/DPOP_PROOF_MISSING/);

    const { client, transport } = await mcpClient(bed, dpopFetch({ key, token: () => t.token, now: () => bed.h.clock.now() }));
    clients.push(client);
    const res = await rawCall(bed, transport.sessionId ?? '', t.token, undefined);
    expect(res.status).toBe(401);
    expect(await reasonOf(res)).toBe('DPOP_PROOF_MISSING');
  });

  it('refuses a replayed proof (DPOP_PROOF_REPLAYED) and a proof made for another request (DPOP_WRONG_TARGET)', async () => {
    const key = await newKey();
    const t = await startBound(bed, key, 'dpop-mcp-replay');
    const { client, transport } = await mcpClient(bed, dpopFetch({ key, token: () => t.token, now: () => bed.h.clock.now() }));
    clients.push(client);
    const sid = transport.sessionId ?? '';
    const p = await proofFor(bed, key, { method: 'POST', htu: `${bed.url}/mcp`, token: t.token });
    const first = await rawCall(bed, sid, t.token, p);
    expect(first.status).toBe(200);
    expect(textOf((await rpcBody(first))['result'])).toContain('raw');
    const again = await rawCall(bed, sid, t.token, p);
    expect(again.status).toBe(401);
    expect(await reasonOf(again)).toBe('DPOP_PROOF_REPLAYED');

    const elsewhere = await rawCall(bed, sid, t.token, await proofFor(bed, key, { method: 'POST', htu: `${bed.url}/v1/authorize`, token: t.token }));
    expect(await reasonOf(elsewhere)).toBe('DPOP_WRONG_TARGET');
    const wrongMethod = await rawCall(bed, sid, t.token, await proofFor(bed, key, { method: 'GET', htu: `${bed.url}/mcp`, token: t.token }));
    expect(await reasonOf(wrongMethod)).toBe('DPOP_WRONG_TARGET');
    // a proof over another token (ath) does not pass either
    const otherToken = await rawCall(bed, sid, t.token, await proofFor(bed, key, { method: 'POST', htu: `${bed.url}/mcp`, token: t.token + 'x' }));
    expect(await reasonOf(otherToken)).toBe('DPOP_PROOF_INVALID');
  });

  it('relays over stdio with MANDATE_DPOP_KEY_FILE: every forwarded request signed; without the key, refused', async () => {
    const key = await newKey();
    // the relay signs with the real time: bring the bed's clock up to it (a slow run is minutes in)
    if (Date.now() > bed.h.clock.now()) bed.h.clock.advance(Date.now() - bed.h.clock.now());
    const t = await startBound(bed, key, 'dpop-mcp-stdio');
    const keyFile = join(bed.work, 'dpop-key.json');
    await writeFile(keyFile, JSON.stringify(key.privateJwk), { mode: 0o600 });
    const env = { PATH: process.env['PATH'] ?? '', MANDATE_URL: bed.url, MANDATE_TASK_TOKEN: t.token };
    const client = new Client({ name: 'host', version: '1.0.0' });
    await client.connect(new StdioClientTransport({ command: process.execPath, args: [CLI, 'mcp', '--stdio'], env: { ...env, MANDATE_DPOP_KEY_FILE: keyFile }, stderr: 'pipe' }));
    try {
      const r = await client.callTool({ name: 'ev__echo', arguments: { message: 'via stdio' } });
      expect(textOf(r)).toContain('via stdio');
      expect(decisionOf(r)).toBeUndefined();
    } finally {
      await client.close();
    }

    // the same token through the relay without the key: the initialize is refused with the reason
    const child = spawn(process.execPath, [CLI, 'mcp', '--stdio'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const line = await new Promise<string>((resolve) => {
      child.stdout.setEncoding('utf8');
      let buf = '';
      child.stdout.on('data', (c: string) => {
        buf += c;
        if (buf.includes('\n')) resolve(buf.slice(0, buf.indexOf('\n')));
      });
      child.stdin.write(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: LATEST_PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: 'x', version: '1' } } }) + '\n');
    });
    child.kill();
    expect(JSON.parse(line)).toMatchObject({ id: 1, error: { data: { reason: 'DPOP_PROOF_MISSING' } } });
  });

  // last in this bed: it moves the server's clock past the token's lifetime
  it("still demands the key for a session's own token once it expired (no tool list, no call without a proof)", async () => {
    const key = await newKey();
    const t = await startBound(bed, key, 'dpop-mcp-expired');
    const { client, transport } = await mcpClient(bed, dpopFetch({ key, token: () => t.token, now: () => bed.h.clock.now() }));
    clients.push(client);
    bed.h.clock.advance(6 * 60_000);
    const res = await rawCall(bed, transport.sessionId ?? '', t.token, undefined);
    expect(res.status).toBe(401);
    expect(await reasonOf(res)).toBe('DPOP_PROOF_MISSING');
    // with the key, the expired token gets its own reason from the decision
    const r = await client.callTool({ name: 'ev__echo', arguments: { message: 'late' } });
    expect(decisionOf(r)).toMatchObject({ effect: 'deny', reasons: ['TOKEN_EXPIRED'] });
  });
});

describe('MCP gateway: DPoP with server nonces', () => {
  let bed: GatewayBed;
  beforeAll(async () => {
    bed = await startGatewayBed({ upstreams: evOnly, clock: new ManualClock(Date.now()), serverConfig: { tokens: { dpop: { nonce: true } } } });
  });
  afterAll(async () => bed.close());

  it('answers a use_dpop_nonce challenge once with the DPoP-Nonce and then works', async () => {
    const key = await newKey();
    const t = await startBound(bed, key, 'dpop-mcp-nonce');
    const statuses: number[] = [];
    const f = dpopFetch({
      key,
      token: () => t.token,
      now: () => bed.h.clock.now(),
      fetch: async (input, init) => {
        const res = await fetch(input, init);
        statuses.push(res.status);
        return res;
      },
    });
    const { client } = await mcpClient(bed, f);
    try {
      const r = await client.callTool({ name: 'ev__echo', arguments: { message: 'nonced' } });
      expect(textOf(r)).toContain('nonced');
      // the first request met the challenge, every later one carried the nonce
      expect(statuses[0]).toBe(401);
      expect(statuses.slice(1).filter((s) => s === 401)).toEqual([]);
    } finally {
      await client.close();
    }
    // a proof without the nonce is refused with the challenge
    const raw = await fetch(`${bed.url}/mcp`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', dpop: await proofFor(bed, key, { method: 'POST', htu: `${bed.url}/mcp`, token: t.token }) },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: LATEST_PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: 'x', version: '1' } } }),
    });
    expect(raw.status).toBe(401);
    expect(raw.headers.get('www-authenticate')).toMatch(/error="use_dpop_nonce"/);
    expect(raw.headers.get('dpop-nonce')).toMatch(/^[A-Za-z0-9_-]{16,}$/);
    expect(await reasonOf(raw)).toBe('DPOP_NONCE_REQUIRED');
  });
});
