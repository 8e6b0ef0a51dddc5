/**
 * The server side of MCP's Streamable HTTP transport (spec 2025-03-26 and 2025-06-18), written
 * directly on node:http's IncomingMessage/ServerResponse, for one session. It replaces the SDK's
 * `StreamableHTTPServerTransport`, which turns every request into a web Request and back through
 * hono's node adapter (9 % of the gateway's main thread per allowed call); the SDK's `Server`
 * and `Protocol` above it are unchanged. It answers as that transport does: 202 for a POST of
 * notifications and responses only, 406, 415, 400 for an unsupported `MCP-Protocol-Version`,
 * 404/400 for the session header, 409 for a second GET stream, 413, -32700. One difference:
 * a request is answered with `application/json` when nothing has to reach the client before its
 * answer, and with an SSE stream when something does (a progress token in the request, a
 * progress notification, a log message, a sampling or elicitation request related to it), or
 * when it is still unanswered after a few seconds (so a client's headers timeout never fires).
 * Nothing is kept for a request once it is answered.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isJsonContentType } from '@modelcontextprotocol/sdk/shared/mediaType.js';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import type { Transport, TransportSendOptions } from '@modelcontextprotocol/sdk/shared/transport.js';
import { SUPPORTED_PROTOCOL_VERSIONS, type JSONRPCMessage, type MessageExtraInfo, type RequestId } from '@modelcontextprotocol/sdk/types.js';

/** As the SDK's transport: at most this many messages in one batch. */
export const MAX_BATCH = 100;
/** ticks (`tick()`, every few seconds) a request may wait unanswered before its SSE stream starts */
const PROMOTE_TICKS = 2;
/** ticks an SSE stream may stay silent before a keep-alive comment is written on it */
const KEEPALIVE_TICKS = 3;
/**
 * Messages about no request, sent while the client has no standalone stream open, held for it:
 * at most this many (the oldest dropped first), for at most `HOLD_TICKS` ticks. A client opens
 * its stream right after initializing, and an upstream's question (its roots, asked again once
 * the session initialized) can come before: dropped, the upstream waited for an answer that
 * never came. A client that never opens one loses them, as before.
 */
const MAX_HELD = 64;
const HOLD_TICKS = 2;

/** One POST with requests: its response, and its requests not answered yet. */
interface Exchange {
  readonly res: ServerResponse;
  /** requests of this POST still waiting for their answer */
  waiting: number;
  /** the answer is an SSE stream (headers sent), not one JSON body */
  sse: boolean;
  /** a batch answered as JSON: the answers so far */
  answers: JSONRPCMessage[] | undefined;
  /** ticks since the POST came, or since the stream last carried something */
  ticks: number;
}

/** A refusal before any message is handled, as the SDK's transport words it. */
function refuse(res: ServerResponse, status: number, code: number, message: string, headers?: Record<string, string>): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null }));
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isId = (v: unknown): v is RequestId => typeof v === 'string' || Number.isInteger(v);

/** `_meta` as the SDK's schema takes it: absent, or an object whose progress token and related task are well formed. */
function metaOk(meta: unknown): boolean {
  if (meta === undefined) return true;
  if (!isObject(meta)) return false;
  const token = meta['progressToken'];
  if (token !== undefined && !isId(token)) return false;
  const related = meta['io.modelcontextprotocol/related-task'];
  return related === undefined || (isObject(related) && typeof related['taskId'] === 'string');
}

/**
 * Whether a value is one JSON-RPC message as the SDK's `JSONRPCMessageSchema` accepts it (a
 * request, notification, result or error; no other top-level key), checked by hand: the zod
 * parse costs more than the rest of the transport, and the Protocol parses each message again.
 * A message the Protocol would not recognise must be refused here, or its request would hang.
 */
export function isJsonRpcMessage(v: unknown): v is JSONRPCMessage {
  if (!isObject(v) || v['jsonrpc'] !== '2.0') return false;
  let keys = 0;
  for (const k in v) if (Object.hasOwn(v, k)) keys += 1;
  const id = v['id'];
  if (typeof v['method'] === 'string') {
    const params = v['params'];
    if (params !== undefined && (!isObject(params) || !metaOk(params['_meta']))) return false;
    return keys === 2 + ('id' in v ? 1 : 0) + ('params' in v ? 1 : 0) && (id === undefined ? !('id' in v) : isId(id));
  }
  if ('result' in v) return keys === 3 && isId(id) && isObject(v['result']) && metaOk(v['result']['_meta']);
  const error = v['error'];
  if (!isObject(error) || !Number.isInteger(error['code']) || typeof error['message'] !== 'string') return false;
  return keys === 2 + ('id' in v ? 1 : 0) && (id === undefined ? !('id' in v) : isId(id));
}

export class HttpServerTransport implements Transport {
  /** the session's id, set by whoever opens the session before the initialize request is handled */
  sessionId: string | undefined;
  onclose?: (() => void) | undefined;
  onerror?: ((error: Error) => void) | undefined;
  onmessage?: (<T extends JSONRPCMessage>(message: T, extra?: MessageExtraInfo) => void) | undefined;
  private readonly maxBytes: number;
  /** each request waiting for its answer → the POST that carried it (removed when answered) */
  private readonly exchanges = new Map<RequestId, Exchange>();
  /** the client's standalone SSE stream (GET), at most one */
  private standalone: Exchange | undefined;
  /** messages about no request waiting for the standalone stream, with the ticks they waited */
  private held: { readonly message: JSONRPCMessage; ticks: number }[] = [];
  private initializedFlag = false;
  private closed = false;
  private jsonHeaders: Record<string, string> = { 'content-type': 'application/json' };
  private sseHeaders: Record<string, string> = SSE_HEADERS;

  constructor(options: { readonly maxBytes: number; readonly sessionId?: string | undefined }) {
    this.maxBytes = options.maxBytes;
    this.sessionId = options.sessionId;
  }

  /** Whether an initialize request was accepted (and handed to the server). */
  get initialized(): boolean {
    return this.initializedFlag;
  }

  /** Whether the client's standalone SSE stream (GET) is open. */
  get streamOpen(): boolean {
    return this.standalone !== undefined;
  }

  /** Requests waiting for their answer (nothing else is kept per request). */
  get pending(): number {
    return this.exchanges.size;
  }

  async start(): Promise<void> {
    // connections come with requests: nothing to start
  }

  /**
   * Handles one HTTP request of the session. `body`: the POST body already parsed (and bounded) by
   * the caller, or undefined to have it read here within `maxBytes`. `authInfo` is handed to
   * every message's handler. Resolves once the request is dispatched (its answer comes later).
   */
  async handleRequest(req: IncomingMessage, res: ServerResponse, body?: unknown, authInfo?: AuthInfo): Promise<void> {
    if (this.closed) return refuse(res, 404, -32001, 'Session not found');
    if (req.method === 'POST') return this.post(req, res, body, authInfo);
    if (req.method === 'GET') return this.get(req, res);
    return refuse(res, 405, -32000, 'Method not allowed.', { allow: 'GET, POST, DELETE' });
  }

  private async post(req: IncomingMessage, res: ServerResponse, body: unknown, authInfo: AuthInfo | undefined): Promise<void> {
    const accept = req.headers.accept;
    if (accept === undefined || !accept.includes('application/json') || !accept.includes('text/event-stream')) {
      return this.refuseWith(res, 406, -32000, 'Not Acceptable: Client must accept both application/json and text/event-stream');
    }
    const ct = req.headers['content-type'];
    if (ct !== 'application/json' && !isJsonContentType(ct)) return this.refuseWith(res, 415, -32000, 'Unsupported Media Type: Content-Type must be application/json');
    let raw = body;
    if (raw === undefined) {
      const text = await readBody(req, this.maxBytes);
      if (text === undefined) {
        res.setHeader('connection', 'close');
        return this.refuseWith(res, 413, -32000, `Payload Too Large: Request body must not exceed ${this.maxBytes} bytes`);
      }
      try {
        raw = JSON.parse(text) as unknown;
      } catch {
        return this.refuseWith(res, 400, -32700, 'Parse error: Invalid JSON');
      }
      if (this.closed) return refuse(res, 404, -32001, 'Session not found');
    }
    const batch = Array.isArray(raw);
    const messages = (batch ? raw : [raw]) as unknown[];
    if (messages.length > MAX_BATCH) return this.refuseWith(res, 400, -32600, `Invalid Request: Batch must not exceed ${MAX_BATCH} messages`);
    let requests = 0;
    let initialize = false;
    let streamNow = false;
    // a batch's own ids (a single message cannot repeat itself)
    const ids = batch ? new Set<RequestId>() : undefined;
    for (const m of messages) {
      if (!isJsonRpcMessage(m)) return this.refuseWith(res, 400, -32700, 'Parse error: Invalid JSON-RPC message');
      if (!('method' in m) || !('id' in m)) continue;
      requests += 1;
      if (m.method === 'initialize') initialize = true;
      // two requests waiting under one id could never both be answered
      if (this.exchanges.has(m.id) || ids?.has(m.id) === true) return this.refuseWith(res, 400, -32600, `Invalid Request: request id ${JSON.stringify(m.id).slice(0, 100)} is already waiting for its answer`);
      ids?.add(m.id);
      // the client asked for progress: it gets a stream from the start
      if ((m.params?._meta as { progressToken?: unknown } | undefined)?.progressToken !== undefined) streamNow = true;
    }
    if (initialize) {
      if (this.initializedFlag) return this.refuseWith(res, 400, -32600, 'Invalid Request: Server already initialized');
      if (messages.length > 1) return this.refuseWith(res, 400, -32600, 'Invalid Request: Only one initialization request is allowed');
      this.initializedFlag = true;
      if (this.sessionId !== undefined) this.sessionHeaders(this.sessionId);
    } else {
      const refusal = this.sessionRefusal(req);
      if (refusal) return this.refuseWith(res, refusal[0], refusal[1], refusal[2]);
    }
    const requestInfo = { headers: req.headers };
    const extra: MessageExtraInfo = authInfo === undefined ? { requestInfo } : { requestInfo, authInfo };
    if (requests === 0) {
      res.writeHead(202).end();
      for (const m of messages) this.dispatch(m as JSONRPCMessage, extra);
      return;
    }
    const ex: Exchange = { res, waiting: requests, sse: false, answers: batch ? [] : undefined, ticks: 0 };
    if (streamNow) this.startStream(ex);
    for (const m of messages) if ('method' in (m as object) && 'id' in (m as object)) this.exchanges.set((m as { id: RequestId }).id, ex);
    for (const m of messages) this.dispatch(m as JSONRPCMessage, extra);
  }

  private dispatch(m: JSONRPCMessage, extra: MessageExtraInfo): void {
    this.onmessage?.(m, extra);
    // a cancelled request gets no answer from the Protocol (which aborts its handler in a later
    // microtask): once that has happened, its HTTP answer ends without one
    if ((m as { method?: string }).method === 'notifications/cancelled') {
      const id = (m as { params?: { requestId?: unknown } }).params?.requestId;
      if (isId(id) && this.exchanges.has(id)) setImmediate(() => this.endRequest(id));
    }
  }

  private get(req: IncomingMessage, res: ServerResponse): void {
    if (!req.headers.accept?.includes('text/event-stream')) return this.refuseWith(res, 406, -32000, 'Not Acceptable: Client must accept text/event-stream');
    const refusal = this.sessionRefusal(req);
    if (refusal) return this.refuseWith(res, refusal[0], refusal[1], refusal[2]);
    if (this.standalone !== undefined) return this.refuseWith(res, 409, -32000, 'Conflict: Only one SSE stream is allowed per session');
    const stream: Exchange = { res, waiting: 0, sse: false, answers: undefined, ticks: 0 };
    this.startStream(stream);
    this.standalone = stream;
    const held = this.held;
    this.held = [];
    for (const h of held) this.write(stream, h.message);
    res.once('close', () => {
      if (this.standalone === stream) this.standalone = undefined;
    });
  }

  /** The session header and protocol version of a request after initialize, checked as the SDK does. */
  private sessionRefusal(req: IncomingMessage): [number, number, string] | undefined {
    if (this.sessionId !== undefined) {
      if (!this.initializedFlag) return [400, -32000, 'Bad Request: Server not initialized'];
      const sid = req.headers['mcp-session-id'];
      if (sid === undefined || sid === '') return [400, -32000, 'Bad Request: Mcp-Session-Id header is required'];
      if (sid !== this.sessionId) return [404, -32001, 'Session not found'];
    }
    const version = req.headers['mcp-protocol-version'];
    if (typeof version === 'string' && !SUPPORTED_PROTOCOL_VERSIONS.includes(version)) {
      return [400, -32000, `Bad Request: Unsupported protocol version: ${version} (supported versions: ${SUPPORTED_PROTOCOL_VERSIONS.join(', ')})`];
    }
    return undefined;
  }

  private refuseWith(res: ServerResponse, status: number, code: number, message: string): void {
    this.onerror?.(new Error(message));
    refuse(res, status, code, message);
  }

  private sessionHeaders(sessionId: string): void {
    this.jsonHeaders = { 'content-type': 'application/json', 'mcp-session-id': sessionId };
    this.sseHeaders = { ...SSE_HEADERS, 'mcp-session-id': sessionId };
  }

  private startStream(ex: Exchange): void {
    ex.sse = true;
    ex.ticks = 0;
    if (!ex.res.headersSent) ex.res.writeHead(200, this.sseHeaders).flushHeaders();
    // a batch's answers collected for one JSON body go first
    const answers = ex.answers;
    ex.answers = undefined;
    if (answers !== undefined) for (const a of answers) this.write(ex, a);
  }

  private write(ex: Exchange, message: JSONRPCMessage): void {
    ex.ticks = 0;
    if (!ex.res.destroyed && !ex.res.writableEnded) ex.res.write(`event: message\ndata: ${JSON.stringify(message)}\n\n`);
  }

  /** One request of `ex` is done (answered or cancelled): the HTTP answer ends with the last. */
  private done(ex: Exchange): void {
    ex.waiting -= 1;
    if (ex.waiting > 0 || ex.res.destroyed) return;
    if (ex.sse) {
      ex.res.end();
    } else if (ex.answers !== undefined && ex.answers.length > 0) {
      ex.res.writeHead(200, this.jsonHeaders).end(JSON.stringify(ex.answers));
    } else {
      // every request of it was cancelled: an empty stream, as the SDK's transport ends it
      ex.res.writeHead(200, this.sseHeaders).end();
    }
  }

  async send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    const m = message as { id?: RequestId; method?: string };
    if (m.method === undefined) {
      // an answer: written on its request's POST, then forgotten
      const id = m.id;
      const ex = id === undefined ? undefined : this.exchanges.get(id);
      if (ex === undefined || id === undefined) throw new Error(`No connection established for request ID: ${String(id)}`);
      this.exchanges.delete(id);
      if (ex.sse) {
        this.write(ex, message);
      } else if (ex.answers !== undefined) {
        ex.answers.push(message);
      } else {
        ex.waiting = 0;
        if (!ex.res.destroyed) ex.res.writeHead(200, this.jsonHeaders).end(JSON.stringify(message));
        return;
      }
      return this.done(ex);
    }
    const related = options?.relatedRequestId;
    if (related === undefined) {
      // not about any request: the standalone stream, or held for it a little while (MAX_HELD)
      if (this.standalone !== undefined) this.write(this.standalone, message);
      else if (!this.closed) {
        if (this.held.length >= MAX_HELD) this.held.shift();
        this.held.push({ message, ticks: 0 });
      }
      return;
    }
    const ex = this.exchanges.get(related);
    if (ex === undefined) throw new Error(`No connection established for request ID: ${String(related)}`);
    if (!ex.sse) this.startStream(ex);
    this.write(ex, message);
  }

  /** Ends a request's part of its HTTP answer without an answer (it was cancelled). */
  endRequest(id: RequestId): void {
    const ex = this.exchanges.get(id);
    if (ex === undefined) return;
    this.exchanges.delete(id);
    this.done(ex);
  }

  /**
   * Called every few seconds: a request unanswered for `PROMOTE_TICKS` ticks starts its SSE
   * stream (headers out, so no client gives up waiting for them), and a stream silent for
   * `KEEPALIVE_TICKS` ticks gets a keep-alive comment (as the SDK's 15 s keep-alive does), and
   * messages held `HOLD_TICKS` ticks for a standalone stream that did not come are dropped.
   */
  tick(): void {
    for (const h of this.held) h.ticks += 1;
    // oldest first: those past their time are at the front
    while ((this.held[0]?.ticks ?? 0) >= HOLD_TICKS) this.held.shift();
    const seen = new Set<Exchange>();
    if (this.standalone !== undefined) seen.add(this.standalone);
    for (const ex of this.exchanges.values()) seen.add(ex);
    for (const ex of seen) {
      ex.ticks += 1;
      if (!ex.sse) {
        if (ex.ticks >= PROMOTE_TICKS) this.startStream(ex);
      } else if (ex.ticks >= KEEPALIVE_TICKS) {
        ex.ticks = 0;
        if (!ex.res.destroyed && !ex.res.writableEnded) ex.res.write(': keepalive\n\n');
      }
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const open = new Set(this.exchanges.values());
    this.exchanges.clear();
    if (this.standalone !== undefined) open.add(this.standalone);
    this.standalone = undefined;
    this.held = [];
    for (const ex of open) {
      if (ex.res.writableEnded) continue;
      if (!ex.res.headersSent) ex.res.writeHead(200, this.sseHeaders);
      ex.res.end();
    }
    this.onclose?.();
  }
}

const SSE_HEADERS: Record<string, string> = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache, no-transform', connection: 'keep-alive', 'x-accel-buffering': 'no' };

/**
 * A request's body as text, or undefined when it is (or says it is) larger than `maxBytes`: the
 * rest is then drained unread (the refusal closes the connection), never buffered.
 */
function readBody(req: IncomingMessage, maxBytes: number): Promise<string | undefined> {
  if (Number(req.headers['content-length']) > maxBytes) {
    req.resume();
    return Promise.resolve(undefined);
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      if (received <= maxBytes) return void chunks.push(chunk);
      req.off('data', onData).off('end', onEnd).off('error', reject);
      req.resume();
      resolve(undefined);
    };
    const onEnd = () => resolve(Buffer.concat(chunks).toString('utf8'));
    req.on('data', onData).once('end', onEnd).once('error', reject);
  });
}
