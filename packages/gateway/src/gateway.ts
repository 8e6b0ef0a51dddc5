/**
 * The MCP gateway: sessions (each bound to one task token) toward clients over Streamable HTTP
 * (and, through `mandate mcp --stdio`, stdio), the pools of upstream connections they draw on,
 * and how sessions end: DELETE, idle, their task's end, a kill, their token's expiry, or a cap.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { checkBinding, describeError, tokenResource, isMandateError, MandateError, type AuditAppender, type Clock, type ControlStore, type DecisionEngine, type Hasher, type IdGenerator, type ProofResult, type TaskReader, type TaskTokens, type TaskTokenClaims } from '@mandate/core';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import type { McpConfig } from './config.ts';
import type { GatewayDeps, GatewayLog } from './deps.ts';
import { dpopChallenge, PROOF_EXTRA, type RequestAuth } from './dpop.ts';
import { HttpServerTransport } from './http-transport.ts';
import { checkParsed, jsonRpcError, type JsonRpcErrorMessage, type MessageLimits } from './limits.ts';
import { PinRegistry, type PinAlert } from './pins.ts';
import { SecretVault } from './secrets.ts';
import { UpstreamPool } from './pool.ts';
import { ENDING_REASONS, GatewaySession, requireActiveTask } from './session.ts';

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
  /**
   * The URL of the gateway's protected resource metadata (RFC 9728), named in the
   * `WWW-Authenticate` of every 401; from the configured public URL, never from a request.
   */
  readonly resourceMetadataUrl?: string | undefined;
  /** RFC 8707: this gateway's resource identifier (public URL + /mcp), and Mandate's own token audience */
  readonly resource?: { readonly id: string; readonly audience: string } | undefined;
  /** where the gateway hears that a task ended (server/task-ends.ts); without it only polling notices */
  readonly taskEnds?: TaskEndSource | undefined;
  /** start no upstream until a session asks (tests of config alone) */
  readonly lazy?: boolean | undefined;
}

/** A task end as the gateway hears it: the reason code and the words given with it. */
export interface TaskEndNotice {
  readonly taskId: string;
  readonly code: string;
  readonly detail: string;
}

/** Tells a watcher once when a task ends; returns the unwatch. */
export interface TaskEndSource {
  watch(taskId: string, onEnd: (e: TaskEndNotice) => void): () => void;
}

interface HttpSession {
  readonly session: GatewaySession;
  readonly transport: HttpServerTransport;
}

const SESSION_HEADER = 'mcp-session-id';
/**
 * How long a task's end waits for its halted calls to be answered (each is audited as halted
 * first) before its sessions close anyway: only a store that does not answer makes it this long.
 */
const HALT_ANSWER_BOUND_MS = 5_000;
/** how long a finished end of a task's sessions is remembered for a caller that comes second */
const ENDING_REMEMBERED_MS = 60_000;
/** how often open HTTP answers are looked at (unanswered requests get their SSE stream, quiet streams a keep-alive) */
const STREAM_TICK_MS = 5_000;

/** The HTTP status for a MandateError met while opening or resuming a session. */
function statusOf(code: string): number {
  if (code === 'TOKEN_TASK_MISMATCH') return 403;
  if (code === 'NOT_FOUND') return 404;
  if (code.startsWith('TOKEN_') || code === 'UNAUTHENTICATED') return 401;
  if (code === 'STORE_UNAVAILABLE' || code === 'NOT_READY' || code === 'RATE_LIMITED') return 503;
  return 403;
}

export class McpGateway {
  readonly pins: PinRegistry;
  readonly vault: SecretVault;
  readonly limits: MessageLimits;
  private readonly deps: GatewayDeps;
  private readonly pools: UpstreamPool[];
  private readonly http = new Map<string, HttpSession>();
  private readonly open = new Set<GatewaySession>();
  private readonly byTask = new Map<string, Set<GatewaySession>>();
  private readonly byAgent = new Map<string, Set<GatewaySession>>();
  private readonly sweep: NodeJS.Timeout;
  private readonly taskWatch: NodeJS.Timeout;
  private readonly streamTick: NodeJS.Timeout;
  private readonly challenge: string;
  private readonly resource: { readonly id: string; readonly audience: string } | undefined;
  private readonly taskEnds: TaskEndSource | undefined;
  /** one watch per task with sessions here */
  private readonly unwatch = new Map<string, () => void>();
  /**
   * tasks whose sessions are being ended, or were a moment ago: whoever comes second (the kill
   * route, polling) joins the first and learns how many sessions it closed
   */
  private readonly ending = new Map<string, { done: boolean; readonly closed: Promise<number> }>();
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
    this.challenge = o.resourceMetadataUrl !== undefined ? `Bearer realm="mandate", resource_metadata="${o.resourceMetadataUrl}"` : 'Bearer realm="mandate"';
    this.resource = o.resource;
    this.taskEnds = o.taskEnds;
    const linkOptions = { vault: this.vault, log: o.log, limits: o.config.limits, now: () => o.clock.now() };
    this.pools = o.config.upstreams.map((u) => new UpstreamPool(u, linkOptions));
    // warm start: shared connections and spares come up with the gateway, not with the first session
    if (o.lazy !== true) for (const p of this.pools) p.start();
    const idle = o.config.limits.idle_timeout;
    this.sweep = setInterval(() => this.sweepIdle(), Math.max(250, Math.min(5_000, Math.floor(idle / 4))));
    this.sweep.unref();
    this.taskWatch = setInterval(() => void this.checkTasks(), o.config.limits.task_check_interval);
    this.taskWatch.unref();
    this.streamTick = setInterval(() => {
      for (const e of this.http.values()) e.transport.tick();
    }, STREAM_TICK_MS);
    this.streamTick.unref();
  }

  get sessionCount(): number {
    return this.open.size;
  }

  /** Calls forwarded upstream and not answered yet, over every session. */
  get callsInFlight(): number {
    let n = 0;
    for (const s of this.open) n += s.callsInFlight;
    return n;
  }

  /** Open sessions of one task. */
  sessionsOf(taskId: string): number {
    return this.byTask.get(taskId)?.size ?? 0;
  }

  /** Upstream connections held now (spares, per-task and shared ones; per-session ones are the sessions'). */
  get pooledConnections(): number {
    return this.pools.reduce((n, p) => n + p.size, 0);
  }

  /** Resolves once every upstream's warm connections are ready (or `timeoutMs` passed): true if all are. */
  async warmed(timeoutMs: number): Promise<boolean> {
    return (await Promise.all(this.pools.map((p) => p.warmed(timeoutMs)))).every(Boolean);
  }

  /**
   * Opens a session for a task token on any transport (in-memory, stdio…). Throws MandateError
   * (the token's or the task's reason) when there is no valid token or no active task. A task
   * (or agent) at its own cap gives up its least recently used session, and a full gateway takes
   * one from the agent holding the most: one task can crowd out only itself, never another.
   */
  async openSession(token: string | undefined, transport: Transport, onSession?: (s: GatewaySession) => void): Promise<GatewaySession> {
    if (this.closed) throw new MandateError('NOT_READY', 'the gateway is closing');
    if (token === undefined || token === '') throw new MandateError('TOKEN_MISSING', 'a task token is required');
    // held (not idle) until connected: see GatewaySession.hold
    const session = await GatewaySession.open(this.deps, token, this.pools, {
      closed: (s, reason) => this.forget(s, reason),
      taskMayHaveEnded: (taskId) => void this.checkTask(taskId),
    });
    try {
      // the caps are checked and the session counted in one synchronous step, so sessions opened
      // at once are counted as if opened one by one (a closing session no longer counts)
      if (this.closed) throw new MandateError('NOT_READY', 'the gateway is closing');
      const evicted = [...this.evict(session.taskId, session.agentId)];
      const fairShare = this.liveCount() >= this.deps.config.limits.max_sessions ? this.evictLargest(session.agentId) : undefined;
      if (fairShare) evicted.push(fairShare);
      this.track(session);
      onSession?.(session);
      // the sessions it replaces go first (their processes may take seconds to end): it is held meanwhile
      await Promise.all(evicted);
      // closed meanwhile (its task ended, a newer session replaced it): no session, and the client hears why
      if (session.isClosed) throw session.closedError();
      await session.connect(transport);
      return session;
    } catch (e) {
      // a session that failed to open gives back what it took (its upstream connections)
      await session.close(isMandateError(e) && e.code === 'NOT_READY' ? 'the gateway is closing' : 'the session failed to open');
      throw e;
    } finally {
      session.opened();
    }
  }

  /**
   * The gateway is full: the agent holding the most sessions gives up its least recently used
   * one (the newcomer's own agent when it holds as many), so no task or agent can lock others
   * out by leaving sessions open; at worst they share `max_sessions` evenly.
   */
  private evictLargest(agentId: string): Promise<void> | undefined {
    const liveOf = (set: Set<GatewaySession> | undefined) => [...(set ?? [])].filter((s) => !s.isClosed);
    let victims = liveOf(this.byAgent.get(agentId));
    for (const [, set] of this.byAgent) {
      const live = liveOf(set);
      if (live.length > victims.length) victims = live;
    }
    const oldest = victims.sort((a, b) => a.lastUsed - b.lastUsed)[0];
    if (!oldest) return undefined;
    this.deps.log.warn({ sessions: this.open.size, agent: oldest.agentId, held: victims.length }, 'MCP gateway at max_sessions: the agent holding the most sessions gives up its oldest');
    return oldest.close('replaced: the gateway reached max_sessions and this agent held the most sessions');
  }

  private liveCount(): number {
    let n = 0;
    for (const s of this.open) if (!s.isClosed) n += 1;
    return n;
  }

  /**
   * Starts closing the least recently used sessions of this task and agent that one more would
   * put past their caps (synchronously: they stop counting at once). A task or agent at its own
   * cap gives up its own oldest session: it can only crowd itself out, never another task.
   */
  private *evict(taskId: string, agentId: string): Generator<Promise<void>> {
    const l = this.deps.config.limits;
    for (const [set, cap, what] of [
      [this.byTask.get(taskId), l.max_sessions_per_task, 'task'],
      [this.byAgent.get(agentId), l.max_sessions_per_agent, 'agent'],
    ] as const) {
      const live = [...(set ?? [])].filter((s) => !s.isClosed).sort((a, b) => a.lastUsed - b.lastUsed);
      for (const s of live.slice(0, Math.max(0, live.length - cap + 1))) yield s.close(`replaced: the ${what} reached its session cap`);
    }
  }

  private track(s: GatewaySession): void {
    this.open.add(s);
    const add = (m: Map<string, Set<GatewaySession>>, k: string) => {
      const set = m.get(k) ?? new Set<GatewaySession>();
      m.set(k, set);
      set.add(s);
    };
    add(this.byTask, s.taskId);
    add(this.byAgent, s.agentId);
    // a session of a task whose end was handled (a suspension lifted since): its next end is new
    if (this.ending.get(s.taskId)?.done === true) this.ending.delete(s.taskId);
    if (this.taskEnds && !this.unwatch.has(s.taskId)) this.unwatch.set(s.taskId, this.taskEnds.watch(s.taskId, (e) => this.taskEnded(e)));
  }

  private taskEnded(e: TaskEndNotice): void {
    this.unwatch.delete(e.taskId);
    this.endTask(e.taskId, e.code, e.detail).catch((err: unknown) => this.deps.log.error({ task: e.taskId, err: describeError(err) }, 'ending the sessions of an ended task failed'));
  }

  /**
   * The one way a task's sessions end because the task did (killed, revoked, completed,
   * expired…), whoever noticed first (the task-ends event, the kill route, polling): every call
   * in flight is halted now (cancelled upstream, its client answered with `code`), and once those
   * answers are out and `halt_grace` has passed, each session closes with its upstream
   * connections and their secret leases. Returns how many sessions it closed.
   */
  endTask(taskId: string, code: string, detail: string): Promise<number> {
    const known = this.ending.get(taskId);
    if (known) return known.closed;
    const entry = {
      done: false,
      closed: this.haltThenClose([...(this.byTask.get(taskId) ?? [])], code, detail, `task ended (${code})`).finally(() => {
        entry.done = true;
        setTimeout(() => {
          if (this.ending.get(taskId) === entry) this.ending.delete(taskId);
        }, ENDING_REMEMBERED_MS).unref();
      }),
    };
    this.ending.set(taskId, entry);
    return entry.closed;
  }

  private async haltThenClose(sessions: readonly GatewaySession[], code: string, detail: string, why: string): Promise<number> {
    let halted = 0;
    for (const s of sessions) halted += s.halt(code, detail);
    if (halted > 0) {
      this.deps.log.warn({ tasks: [...new Set(sessions.map((s) => s.taskId))].slice(0, 100), reason: code, halted }, 'calls in flight halted');
      const grace = this.deps.config.limits.halt_grace;
      await Promise.all([
        grace > 0 ? new Promise<void>((resolve) => setTimeout(resolve, grace).unref()) : undefined,
        ...sessions.map((s) => s.haltedAnswered(HALT_ANSWER_BOUND_MS)),
      ]);
    }
    await Promise.all(sessions.map((s) => s.close(why, { code, detail })));
    return sessions.length;
  }

  private forget(s: GatewaySession, _reason: string): void {
    this.open.delete(s);
    this.http.delete(s.id);
    const drop = (m: Map<string, Set<GatewaySession>>, k: string) => {
      const set = m.get(k);
      set?.delete(s);
      if (set?.size === 0) m.delete(k);
    };
    drop(this.byTask, s.taskId);
    drop(this.byAgent, s.agentId);
    if (!this.byTask.has(s.taskId)) {
      this.unwatch.get(s.taskId)?.();
      this.unwatch.delete(s.taskId);
    }
  }

  /** Ends the sessions of these tasks (they ended with `code`), as `endTask` does. Returns how many sessions it closed. */
  async endTasks(taskIds: readonly string[], code: string, detail: string): Promise<number> {
    const counts = await Promise.all([...new Set(taskIds)].map((id) => this.endTask(id, code, detail)));
    return counts.reduce((a, b) => a + b, 0);
  }

  /** Ends every session (an emergency stop): calls in flight are halted with EMERGENCY_STOP first. */
  async endAll(detail = 'emergency stop'): Promise<number> {
    return this.haltThenClose([...this.open], 'EMERGENCY_STOP', detail, 'emergency stop');
  }

  /** A secret changed: spare connections started with the old value are replaced. */
  async secretsChanged(): Promise<void> {
    await Promise.all(this.pools.map((p) => p.renewSpares('a secret changed')));
  }

  /** Is this task still active? If not, its sessions end (today polled every task_check_interval, and after a deny that says so). */
  async checkTask(taskId: string): Promise<void> {
    try {
      await requireActiveTask(this.deps, taskId);
    } catch (e) {
      if (isMandateError(e) && ENDING_REASONS.has(e.code)) await this.endTask(taskId, e.code, e.message);
    }
  }

  private async checkTasks(): Promise<void> {
    await Promise.all([...this.byTask.keys()].map((id) => this.checkTask(id)));
  }

  /**
   * Ends idle sessions and sessions whose token expired (and was not renewed); run every
   * `idle_timeout / 4` (at most 5 s). Idle means not held (not opening, no request in flight)
   * and none of that for `idle_timeout`, counted from the end of the last request or of the
   * open: a session opening slowly or waiting on a long call is in use. Returns how many it ends.
   */
  sweepIdle(): number {
    const now = this.deps.clock.now();
    const cutoff = now - this.deps.config.limits.idle_timeout;
    let ended = 0;
    for (const s of this.open) {
      if (s.isClosed) continue;
      if (!s.held && s.lastUsed < cutoff) void s.close('idle');
      else if (s.tokenExpiresAt <= now) void s.close('task token expired');
      else continue;
      ended += 1;
    }
    return ended;
  }

  /**
   * Streamable HTTP at /mcp. `body` is the already parsed and bounded POST body. The client's
   * task token comes as `Authorization: Bearer` on every request; the first one opens the session.
   * `proof` is the route's verification of the request's `DPoP` header (undefined: none came): a
   * key-bound token without a valid proof made with its key is refused (401, the DPOP_* reason),
   * and a failed proof is refused even with an unbound token; the verified proof goes with every
   * decision the request leads to. A request is answered with one JSON body, or with an SSE
   * stream once something must reach the client before its answer (progress, the upstream's own
   * requests): see http-transport.ts.
   */
  async handleHttp(req: IncomingMessage, res: ServerResponse, body: unknown, proof?: ProofResult): Promise<void> {
    const bad = body === undefined ? undefined : checkParsed(body, this.limits);
    if (bad) return send(res, 400, bad);
    let token: string | undefined;
    const authorization = req.headers.authorization;
    if (authorization !== undefined) {
      const m = /^Bearer ([^\s]+)$/i.exec(authorization);
      if (!m) return send(res, 401, jsonRpcError(null, -32001, 'Authorization must be "Bearer <task token>"', 'TOKEN_MALFORMED'), this.challenge);
      token = m[1];
    }
    if (token === undefined) return send(res, 401, jsonRpcError(null, -32001, 'a task token is required (Authorization: Bearer)', 'TOKEN_MISSING'), this.challenge);

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
    // audience (RFC 8707): a token requested for another resource is never accepted here
    if (claims && this.resource) {
      const bound = tokenResource(claims, this.resource.audience);
      if ((bound !== undefined && bound !== this.resource.id) || (bound === undefined && this.deps.config.require_resource_audience)) {
        const why = bound !== undefined ? 'this task token was requested for another resource' : `this gateway accepts only task tokens requested for it (start the task with "resource": "${this.resource.id}")`;
        return send(res, 401, jsonRpcError(null, -32001, `TOKEN_AUDIENCE_MISMATCH: ${why}`, 'TOKEN_AUDIENCE_MISMATCH'), `${this.challenge}, error="invalid_token"`);
      }
    }
    const unproven = checkBinding(jkt, proof);
    if (unproven) {
      const status = unproven.reason === 'LIMIT_EXCEEDED' ? 503 : 401;
      // a valid token without its key's proof is what a stolen token looks like: audit it
      if (claims) await this.auditUnproven(claims, unproven.reason, unproven.detail, req.method ?? 'POST');
      return send(res, status, jsonRpcError(null, -32001, `${unproven.reason}: ${unproven.detail}`, unproven.reason), status === 401 ? dpopChallenge(unproven.reason) : false);
    }
    const auth: AuthInfo = { token, clientId: claims?.sub ?? '', scopes: [], extra: { [PROOF_EXTRA]: { token, proof } satisfies RequestAuth } };

    const sid = req.headers[SESSION_HEADER];
    if (typeof sid === 'string') {
      const entry = this.http.get(sid);
      if (!entry) return send(res, 404, jsonRpcError(null, -32001, 'Session not found', 'NOT_FOUND'));
      try {
        await entry.session.presentToken(token);
      } catch (e) {
        return this.refuse(res, e);
      }
      entry.session.lastUsed = this.deps.clock.now();
      if (req.method === 'DELETE') {
        // the session's open requests are answered (SESSION_CLOSED) before its transport closes
        await entry.session.close('the client ended the session (DELETE)');
        res.writeHead(200).end();
        return;
      }
      return entry.transport.handleRequest(req, res, body, auth);
    }

    if (req.method !== 'POST' || !(isInitializeRequest(body) || (Array.isArray(body) && body.some((m) => isInitializeRequest(m))))) {
      return send(res, 400, jsonRpcError(null, -32000, 'Bad Request: no session; send initialize first', 'MALFORMED_REQUEST'));
    }
    let session: GatewaySession | undefined;
    const transport = new HttpServerTransport({ maxBytes: this.limits.maxBytes });
    // the open lasts until initialize is answered: held from the moment the session is counted
    let release: (() => void) | undefined;
    try {
      session = await this.openSession(token, transport, (s) => {
        release = s.hold();
        transport.sessionId = s.id;
        this.http.set(s.id, { session: s, transport });
      });
    } catch (e) {
      release?.();
      return this.refuse(res, e);
    }
    try {
      await transport.handleRequest(req, res, body, auth);
    } finally {
      release?.();
    }
    if (!transport.initialized) await session.close('initialize failed');
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
      const status = statusOf(e.code);
      return send(res, status, jsonRpcError(null, -32001, `${e.code}: ${e.message}`, e.code), status === 401 ? this.challenge : false);
    }
    this.deps.log.error({ err: describeError(e) }, 'MCP session failed to open');
    return send(res, 500, jsonRpcError(null, -32603, 'internal error', 'INTERNAL_ERROR'));
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweep);
    clearInterval(this.taskWatch);
    clearInterval(this.streamTick);
    await Promise.all([...this.open].map((s) => s.close('the gateway is closing')));
    await Promise.all(this.pools.map((p) => p.close()));
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

function send(res: ServerResponse, status: number, body: JsonRpcErrorMessage, challenge: string | false = false): void {
  if (res.headersSent) return;
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (challenge !== false) headers['www-authenticate'] = challenge;
  res.writeHead(status, headers).end(JSON.stringify(body));
}
