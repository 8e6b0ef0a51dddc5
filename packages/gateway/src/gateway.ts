/**
 * The MCP gateway: sessions (each bound to one task token) toward clients over Streamable HTTP
 * (and, through `mandate mcp --stdio`, stdio), each with its own upstream connections.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { checkBinding, describeError, isMandateError, MandateError, type AuditAppender, type Clock, type ControlStore, type DecisionEngine, type Hasher, type IdGenerator, type ProofResult, type TaskReader, type TaskTokens, type TaskTokenClaims } from '@mandate/core';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import type { McpConfig } from './config.ts';
import type { GatewayDeps, GatewayLog } from './deps.ts';
import { dpopChallenge, PROOF_EXTRA, type RequestAuth } from './dpop.ts';
import { checkParsed, jsonRpcError, type JsonRpcErrorMessage, type MessageLimits } from './limits.ts';
import { PinRegistry, type PinAlert } from './pins.ts';
import { SecretVault } from './secrets.ts';
import { GatewaySession } from './session.ts';

export interface McpGatewayOptions {
  readonly config: McpConfig;
  readonly engine: Pick<DecisionEngine, 'decide' | 'recordOutcome'>;
  readonly tokens: Pick<TaskTokens, 'verify'>;
  readonly tasks: Pick<TaskReader, 'getTask'>;
  readonly audit: AuditAppender;
  /** where pins and encrypted secrets live (`mcp.pin.*`, `secret.*`) */
  readonly controls: ControlStore;
  /** the 32-byte secrets key; without it `secret:` references cannot be resolved */
  readonly secretsKey: Buffer | undefined;
  readonly clock: Clock;
  readonly ids: IdGenerator;
  readonly hasher: Hasher;
  readonly log: GatewayLog;
  /** called when a pinned tool changes (the behaviour subsystem wires its alerts here) */
  readonly onAlert?: ((alert: PinAlert) => void) | undefined;
}

interface HttpSession {
  readonly session: GatewaySession;
  readonly transport: StreamableHTTPServerTransport;
}

const SESSION_HEADER = 'mcp-session-id';

/** The HTTP status for a MandateError met while opening or resuming a session. */
function statusOf(code: string): number {
  if (code === 'TOKEN_TASK_MISMATCH') return 403;
  if (code.startsWith('TOKEN_') || code === 'UNAUTHENTICATED') return 401;
  if (code === 'STORE_UNAVAILABLE' || code === 'NOT_READY') return 503;
  return 403;
}

export class McpGateway {
  readonly pins: PinRegistry;
  readonly vault: SecretVault;
  readonly limits: MessageLimits;
  private readonly deps: GatewayDeps;
  private readonly http = new Map<string, HttpSession>();
  private readonly open = new Set<GatewaySession>();
  private readonly sweep: NodeJS.Timeout;
  private closed = false;

  constructor(o: McpGatewayOptions) {
    const prefixes = new Set<string>();
    for (const u of o.config.upstreams) {
      const p = u.tool_prefix ?? u.name;
      if (prefixes.has(p)) throw new MandateError('CONFIG_INVALID', `two MCP upstreams share the tool prefix "${p}"`);
      prefixes.add(p);
    }
    this.pins = new PinRegistry({ controls: o.controls, hasher: o.hasher, audit: o.audit, clock: o.clock, log: o.log, onAlert: o.onAlert });
    this.vault = new SecretVault(o.controls, o.secretsKey);
    this.limits = { maxBytes: o.config.limits.max_message_bytes, maxDepth: o.config.limits.max_depth };
    this.deps = { config: o.config, engine: o.engine, tokens: o.tokens, tasks: o.tasks, audit: o.audit, pins: this.pins, vault: this.vault, clock: o.clock, ids: o.ids, hasher: o.hasher, log: o.log };
    this.sweep = setInterval(() => this.closeIdle(), Math.min(60_000, o.config.limits.idle_timeout));
    this.sweep.unref();
  }

  get sessionCount(): number {
    return this.open.size;
  }

  /**
   * Opens a session for a task token on any transport (in-memory, stdio…). Throws MandateError
   * (the token's or the task's reason) when there is no valid token or no active task.
   */
  async openSession(token: string | undefined, transport: Transport): Promise<GatewaySession> {
    if (this.closed) throw new MandateError('NOT_READY', 'the gateway is closing');
    if (token === undefined || token === '') throw new MandateError('TOKEN_MISSING', 'a task token is required');
    if (this.open.size >= this.deps.config.limits.max_sessions) throw new MandateError('RATE_LIMITED', 'too many MCP sessions are open');
    const session = await GatewaySession.open(this.deps, token, (s) => {
      this.open.delete(s);
      this.http.delete(s.id);
    });
    this.open.add(session);
    await session.connect(transport);
    return session;
  }

  /**
   * Streamable HTTP at /mcp. `body` is the already parsed and bounded POST body. The client's
   * task token comes as `Authorization: Bearer` on every request; the first one opens the session.
   * `proof` is the route's verification of the request's `DPoP` header (undefined: none came): a
   * key-bound token without a valid proof made with its key is refused (401, the DPOP_* reason),
   * and a failed proof is refused even with an unbound token; the verified proof goes with every
   * decision the request leads to.
   */
  async handleHttp(req: IncomingMessage, res: ServerResponse, body: unknown, proof?: ProofResult): Promise<void> {
    const bad = body === undefined ? undefined : checkParsed(body, this.limits);
    if (bad) return send(res, 400, bad);
    let token: string | undefined;
    const authorization = req.headers.authorization;
    if (authorization !== undefined) {
      const m = /^Bearer ([^\s]+)$/i.exec(authorization);
      if (!m) return send(res, 401, jsonRpcError(null, -32001, 'Authorization must be "Bearer <task token>"', 'TOKEN_MALFORMED'), true);
      token = m[1];
    }
    if (token === undefined) return send(res, 401, jsonRpcError(null, -32001, 'a task token is required (Authorization: Bearer)', 'TOKEN_MISSING'), true);

    // proof of possession, before a session is looked up or opened: nothing runs for a stolen token
    let claims: TaskTokenClaims | undefined;
    let jkt: string | undefined;
    try {
      claims = await this.deps.tokens.verify(token);
      jkt = claims.cnf?.jkt;
    } catch {
      // an invalid (e.g. expired) token is refused below with its own reason (session open,
      // presentToken, decide); if it names a key, its proof is still required here, so that a
      // session's own token never works without the key, even after it stopped being valid
      claims = undefined;
      jkt = unverifiedJkt(token);
    }
    const unproven = checkBinding(jkt, proof);
    if (unproven) {
      const status = unproven.reason === 'LIMIT_EXCEEDED' ? 503 : 401;
      // a valid token without its key's proof is what a stolen token looks like: audit it
      if (claims) await this.auditUnproven(claims, unproven.reason, unproven.detail, req.method ?? 'POST');
      return send(res, status, jsonRpcError(null, -32001, `${unproven.reason}: ${unproven.detail}`, unproven.reason), status === 401 ? dpopChallenge(unproven.reason) : false);
    }
    const auth: AuthInfo = { token, clientId: claims?.sub ?? '', scopes: [], extra: { [PROOF_EXTRA]: { token, proof } satisfies RequestAuth } };
    (req as IncomingMessage & { auth?: AuthInfo }).auth = auth;

    const sid = req.headers[SESSION_HEADER];
    if (typeof sid === 'string') {
      const entry = this.http.get(sid);
      if (!entry) return send(res, 404, jsonRpcError(null, -32001, 'Session not found', 'NOT_FOUND'));
      try {
        await entry.session.presentToken(token);
      } catch (e) {
        return this.refuse(res, e);
      }
      try {
        return await entry.transport.handleRequest(req, res, body);
      } finally {
        releaseAnsweredStreams(entry.transport);
      }
    }

    if (req.method !== 'POST' || !(isInitializeRequest(body) || (Array.isArray(body) && body.some((m) => isInitializeRequest(m))))) {
      return send(res, 400, jsonRpcError(null, -32000, 'Bad Request: no session; send initialize first', 'MALFORMED_REQUEST'));
    }
    let session: GatewaySession | undefined;
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => session?.id ?? this.deps.ids.next('mcps'),
      enableJsonResponse: true,
      maxRequestBodySize: this.limits.maxBytes,
    });
    try {
      session = await this.openSession(token, transport);
    } catch (e) {
      return this.refuse(res, e);
    }
    this.http.set(session.id, { session, transport });
    await transport.handleRequest(req, res, body);
    releaseAnsweredStreams(transport);
    if (transport.sessionId === undefined) await session.close();
  }

  /** The refusal of a request whose valid task token came without its key's proof (never throws). */
  private async auditUnproven(claims: TaskTokenClaims, reason: string, detail: string, method: string): Promise<void> {
    const callId = this.deps.ids.next('call');
    const common = { ts: this.deps.clock.now(), callId, taskId: claims.task_id, agentId: claims.sub, txn: claims.txn };
    try {
      await this.deps.audit.append([
        { kind: 'decision', ...common, data: { tool: 'mcp', resource: null, method, effect: 'deny', reasons: [reason], policy_ids: ['mcp.dpop'], details: [detail.slice(0, 200)] } },
        { kind: 'action', ...common, data: { final: 'blocked', effect: 'deny' } },
      ]);
    } catch (e) {
      this.deps.log.warn({ err: describeError(e) }, 'an MCP proof refusal could not be audited');
    }
  }

  private refuse(res: ServerResponse, e: unknown): void {
    if (isMandateError(e)) {
      const status = e.code === 'RATE_LIMITED' ? 503 : statusOf(e.code);
      return send(res, status, jsonRpcError(null, -32001, `${e.code}: ${e.message}`, e.code), status === 401);
    }
    this.deps.log.error({ err: describeError(e) }, 'MCP session failed to open');
    return send(res, 500, jsonRpcError(null, -32603, 'internal error', 'INTERNAL_ERROR'));
  }

  /**
   * Closes the sessions of these tasks (they ended): their upstream processes and secret leases
   * go with them. Returns how many sessions it closed.
   */
  async endTasks(taskIds: readonly string[]): Promise<number> {
    const ids = new Set(taskIds);
    const ending = [...this.open].filter((s) => ids.has(s.taskId));
    await Promise.all(ending.map((s) => s.close()));
    return ending.length;
  }

  /** Closes every session (an emergency stop). */
  async endAll(): Promise<number> {
    const all = [...this.open];
    await Promise.all(all.map((s) => s.close()));
    return all.length;
  }

  private closeIdle(): void {
    const cutoff = this.deps.clock.now() - this.deps.config.limits.idle_timeout;
    for (const s of this.open) if (s.lastUsed < cutoff) void s.close();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweep);
    await Promise.all([...this.open].map((s) => s.close()));
  }
}

/** `cnf.jkt` as an unverified token claims it (only ever used to demand more, never to trust). */
function unverifiedJkt(token: string): string | undefined {
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { cnf?: { jkt?: unknown } } | null;
    const jkt = payload?.cnf?.jkt;
    return typeof jkt === 'string' ? jkt : undefined;
  } catch {
    return undefined;
  }
}

function send(res: ServerResponse, status: number, body: JsonRpcErrorMessage, challenge: boolean | string = false): void {
  if (res.headersSent) return;
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (challenge !== false) headers['www-authenticate'] = challenge === true ? 'Bearer realm="mandate"' : challenge;
  res.writeHead(status, headers).end(JSON.stringify(body));
}

/**
 * The SDK's Streamable HTTP server transport (1.x, through 1.32.2 at least) in JSON-response mode
 * keeps one `_streamMapping` entry per answered POST for the session's lifetime, holding the
 * answered request's Response (modelcontextprotocol/typescript-sdk#2559): about 6 KB a call, found
 * by `npm run soak`. After each request, drop the JSON entries none of whose requests is still
 * waiting (no `_requestToStreamMapping` entry points at them). Only the JSON-mode entries
 * (`resolveJson`) are touched, and only if the internals look as expected.
 */
export function releaseAnsweredStreams(transport: StreamableHTTPServerTransport): number {
  const inner = (transport as unknown as { _webStandardTransport?: { _streamMapping?: unknown; _requestToStreamMapping?: unknown } })._webStandardTransport;
  const streams = inner?._streamMapping;
  const waiting = inner?._requestToStreamMapping;
  if (!(streams instanceof Map) || !(waiting instanceof Map)) return 0;
  const live = new Set<unknown>(waiting.values());
  let released = 0;
  for (const [streamId, stream] of streams) {
    if (live.has(streamId) || typeof (stream as { resolveJson?: unknown } | undefined)?.resolveJson !== 'function') continue;
    streams.delete(streamId);
    released += 1;
  }
  return released;
}
