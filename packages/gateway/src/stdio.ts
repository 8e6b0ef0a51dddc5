/**
 * The stdio side of the gateway: `mandate mcp --stdio`, launched by an MCP host the way it
 * launches any server, relays each JSON-RPC message between its stdin/stdout and a running
 * Mandate's Streamable HTTP endpoint (/mcp), presenting the task token on every request. The
 * gateway itself (decisions, upstreams, secrets, audit) runs in that one server, so one process
 * writes the audit chain; this side only bounds and relays.
 *
 * The task token comes from MANDATE_TASK_TOKEN, or from the file MANDATE_TASK_TOKEN_FILE names
 * (read again on every request, so the agent's runtime can renew it there). With `dpop` (the CLI
 * reads the key from MANDATE_DPOP_KEY_FILE), every forwarded request carries a fresh DPoP proof.
 */
import { readFileSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { isInitializeRequest, isJSONRPCRequest, type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { MandateError, type ProofKey } from '@mandate/core';
import { dpopFetch } from './dpop.ts';
import { jsonRpcError, parseMessage, type JsonRpcErrorMessage, type MessageLimits } from './limits.ts';

export interface StdioRelayOptions {
  /** the server's base URL (http://127.0.0.1:8787); /mcp is appended */
  readonly url: string;
  readonly token: () => string;
  readonly stdin: Readable;
  readonly stdout: Writable;
  readonly limits: MessageLimits;
  readonly log: (line: string) => void;
  /** sign each request with this key (a key-bound task token); `htu` is the public URL of /mcp */
  readonly dpop?: { readonly key: ProofKey; readonly htu?: string | undefined } | undefined;
}

/** The task token source named by the environment; throws TOKEN_MISSING without one. */
export function tokenSource(env: Record<string, string | undefined>): () => string {
  const file = env['MANDATE_TASK_TOKEN_FILE'];
  if (file !== undefined && file !== '') {
    return () => {
      let t: string;
      try {
        t = readFileSync(file, 'utf8').trim();
      } catch (e) {
        throw new MandateError('TOKEN_MISSING', `cannot read MANDATE_TASK_TOKEN_FILE: ${(e as Error).message}`);
      }
      if (t === '') throw new MandateError('TOKEN_MISSING', 'MANDATE_TASK_TOKEN_FILE is empty');
      return t;
    };
  }
  const token = env['MANDATE_TASK_TOKEN'];
  if (token === undefined || token === '') throw new MandateError('TOKEN_MISSING', 'set MANDATE_TASK_TOKEN (or MANDATE_TASK_TOKEN_FILE) to the task token');
  return () => token;
}

/** Relays until stdin ends or the server closes the session. Resolves when done. */
export async function runStdioRelay(o: StdioRelayOptions): Promise<void> {
  const write = (m: JSONRPCMessage | JsonRpcErrorMessage) => o.stdout.write(JSON.stringify(m) + '\n');
  const bearer: typeof fetch = (input, init) => {
    const headers = new Headers(init?.headers);
    headers.set('authorization', `Bearer ${o.token()}`);
    return fetch(input, { ...init, headers });
  };
  const up = new StreamableHTTPClientTransport(new URL('/mcp', o.url), {
    fetch: o.dpop !== undefined ? dpopFetch({ key: o.dpop.key, token: o.token, htu: o.dpop.htu }) : bearer,
  });
  const pendingInit = new Set<string | number>();
  up.onmessage = (m) => {
    // after initialize, every request carries the negotiated protocol version
    if ('id' in m && m.id !== undefined && pendingInit.has(m.id) && 'result' in m) {
      pendingInit.delete(m.id);
      const v = (m.result as { protocolVersion?: unknown }).protocolVersion;
      if (typeof v === 'string') up.setProtocolVersion(v);
    }
    write(m);
  };
  up.onerror = (e) => o.log(`mandate mcp: ${e.message}`);
  await up.start();

  const forward = async (m: JSONRPCMessage) => {
    if (isInitializeRequest(m) && isJSONRPCRequest(m)) pendingInit.add(m.id);
    try {
      await up.send(m);
    } catch (e) {
      if (!isJSONRPCRequest(m)) return;
      write(refusal(m.id, e));
    }
  };

  await new Promise<void>((resolve) => {
    let buf = '';
    let discarding = false;
    o.stdin.setEncoding('utf8');
    o.stdin.on('data', (chunk: string) => {
      buf += chunk;
      for (;;) {
        const nl = buf.indexOf('\n');
        if (nl < 0) break;
        const line = buf.slice(0, nl).replace(/\r$/, '');
        buf = buf.slice(nl + 1);
        if (discarding) {
          discarding = false;
          continue;
        }
        if (line.trim() === '') continue;
        const r = parseMessage(line, o.limits);
        if ('error' in r) write(r.error);
        else void forward(r.message);
      }
      // a line longer than the limit is dropped up to its end, and answered once
      if (buf.length > o.limits.maxBytes && !discarding) {
        write(jsonRpcError(null, -32600, `Invalid Request: message larger than ${o.limits.maxBytes} bytes`, 'LIMIT_EXCEEDED'));
        buf = '';
        discarding = true;
      } else if (discarding) {
        buf = '';
      }
    });
    o.stdin.on('end', () => resolve());
    o.stdin.on('close', () => resolve());
    up.onclose = () => resolve();
  });
  try {
    await up.terminateSession();
  } catch {
    // the server may have ended the session already
  }
  await up.close();
}

/** The JSON-RPC error for a request the server refused or could not be reached for. */
function refusal(id: string | number, e: unknown): JsonRpcErrorMessage {
  if (e instanceof MandateError) return jsonRpcError(id, -32001, `${e.code}: ${e.message}`, e.code);
  if (e instanceof StreamableHTTPError) {
    // the server's JSON-RPC error body is in the message; keep its reason code when there is one
    const reason = /"reason":"([A-Z_]+)"/.exec(e.message)?.[1];
    return jsonRpcError(id, -32001, e.message.slice(0, 1000), reason ?? (e.code === 401 ? 'TOKEN_MISSING' : 'INTERNAL_ERROR'));
  }
  return jsonRpcError(id, -32603, `Mandate is unreachable: ${(e as Error).message}`, 'STORE_UNAVAILABLE');
}
