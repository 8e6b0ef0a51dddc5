/**
 * One MCP session, bound to one task: a low-level MCP `Server` toward the client whose handlers
 * translate, ask the core, and forward to the upstream connections the session holds (its own,
 * its task's, or shared ones: see pool.ts). Nothing here decides: `engine.decide` does, for
 * every call, read, prompt, and every sampling or elicitation an upstream asks for.
 */
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import type { RequestOptions } from '@modelcontextprotocol/sdk/shared/protocol.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import {
  CallToolRequestSchema,
  CallToolResultSchema,
  CompleteRequestSchema,
  CompleteResultSchema,
  ErrorCode,
  GetPromptRequestSchema,
  GetPromptResultSchema,
  ListPromptsRequestSchema,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListToolsRequestSchema,
  McpError,
  ReadResourceRequestSchema,
  ReadResourceResultSchema,
  RootsListChangedNotificationSchema,
  SetLevelRequestSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
  type CallToolResult,
  type LoggingLevel,
  type LoggingMessageNotification,
  type Prompt,
  type Resource,
  type ResourceTemplate,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js';
import type { z } from 'zod';
import { describeError, globMatch, isMandateError, isReasonCode, MandateError, TASK_STATE_REASON, type Decision, type JsonObject, type JsonValue, type Task, type TaskTokenClaims } from '@mandate/core';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import type { GatewayDeps } from './deps.ts';
import { PROOF_EXTRA, type RequestAuth } from './dpop.ts';
import { namespacedContent, namespacedTool, namespacedUri, promptTool, resourceTool, splitName, splitUri } from './names.ts';
import { toolHash } from './pins.ts';
import type { UpstreamPool } from './pool.ts';
import { decisionMeta, denialResult, denialText, relayUpstreamRequest } from './relay.ts';
import type { LinkUser, ListKind, UpstreamLink, UpstreamRequest } from './upstream.ts';

const TOOL_NAME = /^[A-Za-z0-9._:/@-]{1,200}$/;
const LEVELS: readonly LoggingLevel[] = ['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency'];

interface ToolEntry {
  readonly link: UpstreamLink;
  readonly tool: Tool;
  readonly hash: string;
  usable: boolean;
}

/** A client request forwarded to a link and not answered yet: where an upstream's own request belongs. */
interface Waiting {
  readonly id: string | number;
  readonly auth: RequestAuth | undefined;
}

/** What a request handler gets from the SDK. */
interface Extra {
  readonly signal: AbortSignal;
  readonly requestId: string | number;
  readonly authInfo?: AuthInfo | undefined;
  readonly _meta?: { progressToken?: string | number | undefined } | undefined;
  sendNotification(n: { method: 'notifications/progress'; params: { progressToken: string | number; progress: number; total?: number | undefined; message?: string | undefined } }): Promise<void>;
}

/** Why calls in flight were halted: the task end's reason code and words. */
interface Halt {
  readonly code: string;
  readonly detail: string;
  readonly at: number;
}

/** The JSON-RPC error code of a halted call (in the server-defined range; `data.reason` says why). */
export const HALTED_ERROR_CODE = -32003;

/** Task states and reasons after which the session (and its leases) end. */
export const ENDING_REASONS = new Set<string>(['TASK_COMPLETED', 'TASK_EXPIRED', 'TASK_REVOKED', 'TASK_KILLED', 'TASK_MAX_LIFETIME_REACHED', 'TASK_NOT_FOUND', 'AGENT_DISABLED', 'TOKEN_REVOKED']);

export interface SessionHooks {
  /** the session ended (its links are released): the gateway forgets it */
  closed(s: GatewaySession, reason: string): void;
  /** a decision said the task ended: the gateway checks it and ends its sessions */
  taskMayHaveEnded(taskId: string): void;
}

export class GatewaySession implements LinkUser {
  readonly id: string;
  readonly taskId: string;
  readonly agentId: string;
  readonly openedAt: number;
  server!: Server;
  private readonly d: GatewayDeps;
  private token: string;
  private claims: TaskTokenClaims;
  private readonly hooks: SessionHooks;
  private readonly links = new Map<string, { link: UpstreamLink; pool: UpstreamPool }>();
  private tools = new Map<string, ToolEntry>();
  private toolsFresh = false;
  private refreshing: Promise<void> | undefined;
  private readonly waiting = new Map<UpstreamLink, Waiting[]>();
  private readonly subscriptions = new Map<UpstreamLink, Set<string>>();
  private logLevel: LoggingLevel | undefined;
  private connected = false;
  /** the last outcome report: the next decision waits for it, so provenance is never behind */
  private pendingOutcome: Promise<unknown> = Promise.resolve();
  private closing: Promise<void> | undefined;
  /** why it closed (the first close's reason, and its task end's code if that was the cause) */
  private closedFor: { readonly reason: string; readonly code: string | undefined } | undefined;
  /** the client's requests not answered yet: a session holding one is never idle, and closing answers them */
  private readonly open = new Set<string | number>();
  /** other holds on the session (its open; a request the HTTP edge is handling): never idle while any is held */
  private holds = 0;
  /** the open's hold: taken at construction, given back by `opened()` */
  private readonly opening: () => void;
  /** aborted when the session closes: what it still forwards upstream is cancelled there */
  private readonly ended = new AbortController();
  /** sends on the client transport without the bookkeeping of `open` (set by connect) */
  private rawSend: Transport['send'] | undefined;
  /** each call forwarded and not answered yet: its halt, and the client's request id */
  private readonly inFlightCalls = new Map<AbortController, string | number>();
  /** client requests halted and not answered yet; told to `haltWaiters` when none is left */
  private readonly halting = new Set<string | number>();
  private haltWaiters: (() => void)[] = [];
  /** the task's end, once heard: a call decided before it and not yet forwarded is never forwarded */
  private endedWith: Halt | undefined;
  lastUsed: number;

  private constructor(d: GatewayDeps, id: string, token: string, claims: TaskTokenClaims, hooks: SessionHooks) {
    this.d = d;
    this.id = id;
    this.token = token;
    this.claims = claims;
    this.taskId = claims.task_id;
    this.agentId = claims.sub;
    this.hooks = hooks;
    this.openedAt = d.clock.now();
    this.lastUsed = this.openedAt;
    // held from the start: an open waits on upstreams and on the sessions it replaces, which can
    // take longer than idle_timeout on a slow machine; the gateway gives it back once connected
    this.opening = this.hold();
  }

  /**
   * Opens a session for a task token: no valid token or no active task, no session. It takes a
   * connection from every upstream's pool, all at once, and waits at most `connect_timeout` for
   * those not ready: it opens with what is ready, says what is not (the instructions, the log,
   * `_meta["mandate/upstreams"]` on every list), and tells the client when one comes up.
   */
  static async open(d: GatewayDeps, token: string, pools: readonly UpstreamPool[], hooks: SessionHooks): Promise<GatewaySession> {
    const claims = await d.tokens.verify(token);
    const task = await requireActiveTask(d, claims.task_id);
    const session = new GatewaySession(d, d.ids.next('mcps'), token, claims, hooks);
    // only the upstreams the mandate can reach: nothing starts (and no secret is decrypted) for the others
    for (const pool of pools) if (mayUse(task, pool.prefix)) session.links.set(pool.prefix, { link: pool.acquire(session), pool });
    await Promise.all([...session.links.values()].map(({ link }) => link.ready(d.config.limits.connect_timeout)));
    const missing = session.unavailable();
    session.server = session.makeServer(missing);
    d.log.info(
      { session: session.id, task: session.taskId, agent: session.agentId, upstreams: [...session.links.values()].filter((l) => l.link.isReady).map((l) => l.link.config.name), unavailable: missing, ms: d.clock.now() - session.openedAt },
      missing.length > 0 ? 'MCP session opened without some upstreams' : 'MCP session opened',
    );
    return session;
  }

  /** The upstreams this session lacks now, and why. */
  unavailable(): { name: string; state: string; error?: string }[] {
    const out: { name: string; state: string; error?: string }[] = [];
    for (const { link } of this.links.values()) {
      if (link.isReady) continue;
      out.push({ name: link.config.name, state: link.state, ...(link.lastError !== undefined ? { error: link.lastError.slice(0, 300) } : {}) });
    }
    return out;
  }

  private makeServer(missing: { name: string }[]): Server {
    const note = missing.length > 0 ? ` Not available when this session opened (their tools appear once they are): ${missing.map((m) => m.name).join(', ')}.` : '';
    const server = new Server(
      { name: 'mandate-gateway', version: '0.1.0' },
      {
        capabilities: { tools: { listChanged: true }, resources: { listChanged: true, subscribe: true }, prompts: { listChanged: true }, logging: {}, completions: {} },
        instructions: `Tools behind Mandate: every call is decided against your task mandate.${note}`,
      },
    );
    this.register(server);
    // a warm connection was told "no roots" before this client came: once it has initialized,
    // the upstreams of this session (or task) are told to ask again
    server.oninitialized = () => this.rootsChanged();
    // the client went away (DELETE, a closed pipe): the upstreams and their leases go too
    server.onclose = () => void this.close('client closed the session');
    return server;
  }

  async connect(transport: Transport): Promise<void> {
    await this.server.connect(transport);
    this.trackRequests(transport);
    this.connected = true;
  }

  /**
   * Knows which of the client's requests are open: from the moment one arrives until its answer
   * is sent (or the client cancels it, which gets no answer). Wraps the transport's callbacks
   * the SDK's Server installed, so every request counts, whatever its handler.
   */
  private trackRequests(transport: Transport): void {
    const received = transport.onmessage;
    const send = transport.send.bind(transport);
    this.rawSend = send;
    // shape checks by hand: the SDK's type guards run a zod parse per message, on the hot path
    transport.onmessage = (message, extra) => {
      const m = message as { id?: string | number; method?: string; params?: { requestId?: string | number } };
      if (m.method !== undefined && m.id !== undefined) this.open.add(m.id);
      else if (m.method === 'notifications/cancelled') this.settled(m.params?.requestId);
      received?.(message, extra);
    };
    transport.send = async (message, options) => {
      const m = message as { id?: string | number; method?: string };
      if (m.method === undefined && m.id !== undefined) this.settled(m.id);
      return send(message, options);
    };
  }

  private settled(id: string | number | undefined): void {
    if (id !== undefined && this.halting.delete(id) && this.halting.size === 0) this.haltsAnswered();
    if (id === undefined || !this.open.delete(id)) return;
    // a long request is use: idle counts from its answer
    this.lastUsed = this.d.clock.now();
  }

  /**
   * Holds the session in use until the returned release is called (once; later calls do
   * nothing): the idle sweep skips a held session, and idle counts from the last release.
   * Whoever holds releases in a `finally`, so no exit path (error, abort, halt, close) keeps a
   * session held; closing it (DELETE, kill, task end, caps, expiry) does not wait for holds.
   */
  hold(): () => void {
    this.holds += 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.holds -= 1;
      this.lastUsed = this.d.clock.now();
    };
  }

  /** The open is over (connected, or failed): from now on only requests hold the session. */
  opened(): void {
    this.opening();
  }

  /**
   * Whether the session is in use now: opening, a client request of it being handled (a
   * long-running call included), or held by the HTTP edge. The idle sweep never ends it then.
   */
  get held(): boolean {
    return this.holds > 0 || this.open.size > 0;
  }

  /**
   * Answers every request still open with a JSON-RPC error saying the session ended and why,
   * so a client never waits on a request nobody will answer. Before the transport closes.
   */
  async answerOpenRequests(reason: string, end?: Halt): Promise<void> {
    const send = this.rawSend;
    const ids = [...this.open];
    this.open.clear();
    this.halting.clear();
    this.haltsAnswered();
    if (!send) return;
    await Promise.all(
      ids.map((id) =>
        send(
          {
            jsonrpc: '2.0',
            id,
            // a request cut off by its task's end (decided, not yet forwarded) is told that end's reason
            error:
              end !== undefined
                ? { code: HALTED_ERROR_CODE, message: `${end.code}: Mandate ended this MCP session because its task ended${end.detail !== '' ? ` (${end.detail})` : ''}, before this request was answered`, data: { reason: end.code, halted: true } }
                : { code: ErrorCode.ConnectionClosed, message: `SESSION_CLOSED: Mandate ended this MCP session (${reason}) before this request was answered; open a new session to retry`, data: { reason: 'SESSION_CLOSED' } },
          },
          { relatedRequestId: id },
        ).catch(() => undefined),
      ),
    );
  }

  /**
   * A later request of the session, with its bearer token: a renewed token of the same task
   * replaces the old one; a token for another task is refused.
   */
  async presentToken(token: string): Promise<void> {
    if (token === this.token) return;
    const claims = await this.d.tokens.verify(token);
    if (claims.task_id !== this.taskId) throw new MandateError('TOKEN_TASK_MISMATCH', 'this session is bound to another task');
    this.token = token;
    this.claims = claims;
  }

  /** When the session's newest token expires (ms since the epoch). */
  get tokenExpiresAt(): number {
    return this.claims.exp * 1000;
  }

  // --- what the links tell the session (LinkUser)

  linkChanged(_link: UpstreamLink, what: ListKind): void {
    if (what === 'tools') this.toolsFresh = false;
    if (!this.connected || this.closing) return;
    const send = what === 'tools' ? this.server.sendToolListChanged() : what === 'resources' ? this.server.sendResourceListChanged() : this.server.sendPromptListChanged();
    send.catch(() => undefined);
  }

  subscribed(link: UpstreamLink, uri: string): boolean {
    return this.subscriptions.get(link)?.has(uri) === true;
  }

  resourceUpdated(link: UpstreamLink, uri: string): void {
    if (this.connected && !this.closing) this.server.sendResourceUpdated({ uri: namespacedUri(link.prefix, uri) }).catch(() => undefined);
  }

  upstreamLog(link: UpstreamLink, params: LoggingMessageNotification['params']): void {
    if (!this.connected || this.closing) return;
    if (this.logLevel !== undefined && LEVELS.indexOf(params.level) < LEVELS.indexOf(this.logLevel)) return;
    const logger = params.logger !== undefined ? `${link.prefix}/${params.logger}` : link.prefix;
    this.server.notification({ method: 'notifications/message', params: { level: params.level, logger, data: link.scrubber.scrub(params.data) as unknown } }).catch(() => undefined);
  }

  inFlight(link: UpstreamLink): string | number | undefined {
    return this.waiting.get(link)?.at(-1)?.id;
  }

  upstreamRequest(link: UpstreamLink, req: UpstreamRequest, signal: AbortSignal): Promise<Record<string, unknown>> {
    const w = this.waiting.get(link)?.at(-1);
    return relayUpstreamRequest(
      {
        server: this.server,
        timeoutMs: this.d.config.limits.upstream_timeout,
        decide: (tool, args) => this.decide(tool, args, w?.auth),
        report: (decision, result, isError) => this.report(link, decision, result, isError, 'untrusted'),
      },
      link,
      req,
      signal,
      w?.id,
    );
  }

  // --- the client's requests

  private async task(): Promise<Task> {
    const task = await requireActiveTask(this.d, this.taskId);
    this.lastUsed = this.d.clock.now();
    return task;
  }

  private linkFor(prefix: string | undefined): UpstreamLink | undefined {
    return prefix === undefined ? undefined : this.links.get(prefix)?.link;
  }

  /** `_meta` of every list: which upstreams this session lacks now (so a list is never silently partial). */
  private listMeta(): { _meta?: Record<string, unknown> } {
    const missing = this.unavailable();
    return missing.length > 0 ? { _meta: { 'mandate/upstreams': { unavailable: missing } } } : {};
  }

  /** Lists every ready upstream's tools, checks each against its pin. */
  private refreshTools(): Promise<void> {
    if (this.toolsFresh) return Promise.resolve();
    this.refreshing ??= (async () => {
      try {
        const next = new Map<string, ToolEntry>();
        const lists = await Promise.all(
          [...this.links.values()].map(async ({ link }) => {
            if (!link.isReady) return { link, tools: [] as Tool[] };
            try {
              return { link, tools: await link.listTools() };
            } catch (e) {
              this.d.log.warn({ session: this.id, upstream: link.config.name, err: link.scrubber.scrubText(describeError(e)) }, 'tools/list failed upstream');
              return { link, tools: [] as Tool[] };
            }
          }),
        );
        for (const { link, tools } of lists) {
          for (const tool of tools) {
            const name = namespacedTool(link.prefix, tool.name);
            if (!TOOL_NAME.test(name) || next.has(name)) {
              this.d.log.warn({ upstream: link.config.name, tool: tool.name.slice(0, 200) }, 'upstream tool left out: its name is not a valid mandate tool name');
              continue;
            }
            const hash = toolHash(this.d.hasher, tool);
            const usable = await this.d.pins.check(link.config.name, tool.name, hash, this.taskId);
            next.set(name, { link, tool, hash, usable });
          }
        }
        this.tools = next;
        this.toolsFresh = true;
      } finally {
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }

  private register(server: Server): void {
    server.setRequestHandler(ListToolsRequestSchema, async () => {
      const task = await this.task().catch(asMcpError);
      // every list asks the upstreams again, so a changed description is caught when it appears
      this.toolsFresh = false;
      await this.refreshTools();
      const tools: Tool[] = [];
      for (const [name, e] of this.tools) {
        if (!e.usable || !granted(task, name)) continue;
        tools.push(e.link.scrubber.scrub({ ...e.tool, name }));
      }
      return { tools, ...this.listMeta() };
    });

    server.setRequestHandler(CallToolRequestSchema, async (req, extra) => this.callTool(req.params.name, req.params.arguments ?? {}, requestAuth(extra), extra as Extra));

    server.setRequestHandler(ListResourcesRequestSchema, async () => {
      const task = await this.task().catch(asMcpError);
      const out: Resource[] = [];
      for (const { link } of this.links.values()) {
        if (!link.isReady || !granted(task, resourceTool(link.prefix))) continue;
        for (const r of await this.listed(link, 'resources/list', () => link.listResources())) {
          if (task.mandate.resources && !task.mandate.resources.some((g) => globMatch(g, r.uri))) continue;
          out.push(link.scrubber.scrub({ ...r, uri: namespacedUri(link.prefix, r.uri) }));
        }
      }
      return { resources: out, ...this.listMeta() };
    });

    server.setRequestHandler(ListResourceTemplatesRequestSchema, async () => {
      const task = await this.task().catch(asMcpError);
      const out: ResourceTemplate[] = [];
      for (const { link } of this.links.values()) {
        if (!link.isReady || !granted(task, resourceTool(link.prefix))) continue;
        for (const t of await this.listed(link, 'resources/templates/list', () => link.listResourceTemplates())) out.push(link.scrubber.scrub({ ...t, uriTemplate: namespacedUri(link.prefix, t.uriTemplate) }));
      }
      return { resourceTemplates: out, ...this.listMeta() };
    });

    server.setRequestHandler(ReadResourceRequestSchema, async (req, extra) => {
      const { link, uri } = this.resourceTarget(req.params.uri);
      await this.task().catch(asMcpError);
      const decision = await this.decide(resourceTool(link.prefix), { uri }, requestAuth(extra), uri);
      if (decision.effect !== 'allow') throw new McpError(ErrorCode.InvalidRequest, denialText(decision), decisionMeta(decision));
      const result = await this.forward(link, decision, extra as Extra, 'resources/read', { uri }, ReadResourceResultSchema);
      return { ...result, contents: result.contents.map((c) => ({ ...c, uri: namespacedUri(link.prefix, c.uri) })) };
    });

    server.setRequestHandler(SubscribeRequestSchema, async (req) => {
      const { link, uri } = this.resourceTarget(req.params.uri);
      await this.requireResourceGrant(link, uri);
      const mine = this.subscriptions.get(link) ?? new Set<string>();
      this.subscriptions.set(link, mine);
      mine.add(uri);
      await link.requireClient().subscribeResource({ uri }, { timeout: this.d.config.limits.upstream_timeout });
      return {};
    });

    server.setRequestHandler(UnsubscribeRequestSchema, async (req) => {
      const { link, uri } = this.resourceTarget(req.params.uri);
      this.subscriptions.get(link)?.delete(uri);
      // a shared connection's subscription stays while another session of it holds one
      if (![...link.users].some((u) => u.subscribed(link, uri)) && link.isReady) await link.requireClient().unsubscribeResource({ uri }, { timeout: this.d.config.limits.upstream_timeout });
      return {};
    });

    server.setRequestHandler(ListPromptsRequestSchema, async () => {
      const task = await this.task().catch(asMcpError);
      const out: Prompt[] = [];
      for (const { link } of this.links.values()) {
        if (!link.isReady) continue;
        for (const p of await this.listed(link, 'prompts/list', () => link.listPrompts())) {
          if (!TOOL_NAME.test(promptTool(link.prefix, p.name)) || !granted(task, promptTool(link.prefix, p.name))) continue;
          out.push(link.scrubber.scrub({ ...p, name: namespacedTool(link.prefix, p.name) }));
        }
      }
      return { prompts: out, ...this.listMeta() };
    });

    server.setRequestHandler(GetPromptRequestSchema, async (req, extra) => {
      const split = splitName(req.params.name);
      const link = this.linkFor(split?.prefix);
      if (!split || !link) throw new McpError(ErrorCode.InvalidParams, `unknown prompt ${req.params.name.slice(0, 200)}`);
      await this.task().catch(asMcpError);
      const decision = await this.decide(promptTool(link.prefix, split.name), (req.params.arguments ?? {}) as JsonObject, requestAuth(extra));
      if (decision.effect !== 'allow') throw new McpError(ErrorCode.InvalidRequest, denialText(decision), decisionMeta(decision));
      const prompt = await this.forward(link, decision, extra as Extra, 'prompts/get', { name: split.name, ...(req.params.arguments ? { arguments: req.params.arguments } : {}) }, GetPromptResultSchema);
      return { ...prompt, messages: prompt.messages.map((m) => ({ ...m, content: namespacedContent(link.prefix, [m.content])[0] ?? m.content })) };
    });

    server.setRequestHandler(CompleteRequestSchema, async (req, extra) => {
      const task = await this.task().catch(asMcpError);
      const ref = req.params.ref;
      let link: UpstreamLink | undefined;
      let upstreamRef: typeof ref;
      if (ref.type === 'ref/prompt') {
        const split = splitName(ref.name);
        link = this.linkFor(split?.prefix);
        if (!split || !link || !granted(task, promptTool(link.prefix, split.name))) throw new McpError(ErrorCode.InvalidParams, `unknown prompt ${ref.name.slice(0, 200)}`);
        upstreamRef = { ...ref, name: split.name };
      } else {
        const split = splitUri(ref.uri);
        link = this.linkFor(split?.prefix);
        if (!split || !link || !granted(task, resourceTool(link.prefix))) throw new McpError(ErrorCode.InvalidParams, `unknown resource ${ref.uri.slice(0, 200)}`);
        upstreamRef = { ...ref, uri: split.uri };
      }
      if (!link.isReady || !link.has('completions')) return { completion: { values: [] } };
      const r = await this.track(link, extra as Extra, () => link.requireClient().request({ method: 'completion/complete', params: { ...req.params, ref: upstreamRef } }, CompleteResultSchema, this.options(link, extra as Extra)));
      return link.scrubber.scrub(r);
    });

    server.setRequestHandler(SetLevelRequestSchema, async (req) => {
      this.logLevel = req.params.level;
      // only connections of this session or its task hear it: a shared one is everyone's
      await Promise.all(
        [...this.links.values()].map(async ({ link }) => {
          if (link.mode === 'shared' || !link.isReady || !link.has('logging')) return;
          await link.requireClient().setLoggingLevel(req.params.level, { timeout: this.d.config.limits.upstream_timeout }).catch((e: unknown) => this.d.log.warn({ session: this.id, upstream: link.config.name, err: describeError(e) }, 'logging/setLevel failed upstream'));
        }),
      );
      return {};
    });

    server.setNotificationHandler(RootsListChangedNotificationSchema, () => this.rootsChanged());
  }

  private rootsChanged(): void {
    for (const { link } of this.links.values()) if (link.isReady && link.mode !== 'shared') void link.client?.sendRootsListChanged().catch(() => undefined);
  }

  private async listed<T>(link: UpstreamLink, what: string, list: () => Promise<T[]>): Promise<T[]> {
    try {
      return await list();
    } catch (e) {
      this.d.log.warn({ session: this.id, upstream: link.config.name, err: link.scrubber.scrubText(describeError(e)) }, `${what} failed upstream`);
      return [];
    }
  }

  /** `<prefix>+<uri>` → its link and the upstream's URI. */
  private resourceTarget(wire: string): { link: UpstreamLink; uri: string } {
    const split = splitUri(wire);
    const link = this.linkFor(split?.prefix);
    if (!split || !link) throw new McpError(ErrorCode.InvalidParams, `unknown resource ${wire.slice(0, 200)} (resource URIs are <upstream>+<uri>)`);
    return { link, uri: split.uri };
  }

  private async requireResourceGrant(link: UpstreamLink, uri: string): Promise<void> {
    const task = await this.task().catch(asMcpError);
    if (!granted(task, resourceTool(link.prefix)) || (task.mandate.resources && !task.mandate.resources.some((g) => globMatch(g, uri)))) {
      throw new McpError(ErrorCode.InvalidRequest, `Mandate denied this subscription: RESOURCE_NOT_IN_MANDATE`, { reason: 'RESOURCE_NOT_IN_MANDATE' });
    }
  }

  /**
   * `auth`: the HTTP request's token and verified DPoP proof (absent on transports without
   * requests of their own); the decision is made for that token with that proof.
   */
  private async decide(tool: string, args: JsonObject, auth: RequestAuth | undefined, resource?: string): Promise<Decision> {
    this.lastUsed = this.d.clock.now();
    // provenance: the previous result's values must be recorded before this call is classified.
    // recordOutcome records them right after verifying the (cached) token, within microtasks,
    // and only then waits for its durable commit; one macrotask turn is therefore enough, and
    // this call's decision commit can share an fsync with that outcome's instead of queueing.
    await Promise.race([this.pendingOutcome, new Promise<void>((resolve) => setImmediate(resolve))]);
    const decision = await this.d.engine.decide({
      taskToken: auth?.token ?? this.token,
      tool,
      args,
      callId: this.d.ids.next('call'),
      ...(resource !== undefined ? { resource } : {}),
      ...(auth?.proof !== undefined ? { proof: auth.proof } : {}),
    });
    if (decision.effect !== 'allow' && decision.reasons.some((r) => ENDING_REASONS.has(r))) this.hooks.taskMayHaveEnded(this.taskId);
    return decision;
  }

  /** Request options toward a link: the timeout and the client's cancellation. */
  private options(_link: UpstreamLink, extra: Extra): RequestOptions {
    return { timeout: this.d.config.limits.upstream_timeout, signal: AbortSignal.any([extra.signal, this.ended.signal]) };
  }

  /**
   * Sends a request to a link, relaying its progress under the client's own progress token. The
   * gateway routes the upstream's progress by a token of its own (the SDK's progress handler is
   * dropped the moment the answer arrives, and a last notification that came in the same read
   * as the answer was lost with it); the answer waits until every progress notification is sent,
   * and the timeout restarts with each one.
   */
  private async send<S extends z.ZodType<object>>(link: UpstreamLink, extra: Extra, method: string, params: Record<string, unknown>, schema: S): Promise<z.output<S>> {
    const client = link.requireClient();
    const clientToken = extra._meta?.progressToken;
    if (clientToken === undefined) return client.request({ method, params }, schema, this.options(link, extra));
    const timeoutMs = this.d.config.limits.upstream_timeout;
    const timeout = new AbortController();
    let timer = setTimeout(() => timeout.abort(new McpError(ErrorCode.RequestTimeout, `upstream ${link.config.name} did not answer in ${timeoutMs} ms`)), timeoutMs);
    const token = `${this.id}/${this.d.ids.next('progress')}`;
    const sending: Promise<unknown>[] = [];
    link.progressRoutes.set(token, (p) => {
      clearTimeout(timer);
      timer = setTimeout(() => timeout.abort(new McpError(ErrorCode.RequestTimeout, `upstream ${link.config.name} did not answer in ${timeoutMs} ms`)), timeoutMs);
      const message = p.message !== undefined ? link.scrubber.scrubText(p.message) : undefined;
      sending.push(extra.sendNotification({ method: 'notifications/progress', params: { progressToken: clientToken, progress: p.progress, ...(p.total !== undefined ? { total: p.total } : {}), ...(message !== undefined ? { message } : {}) } }).catch(() => undefined));
    });
    try {
      // the SDK's own timer is the outer bound (a day); ours restarts with progress
      return await client.request({ method, params: { ...params, _meta: { progressToken: token } } }, schema, { timeout: 86_400_000, signal: AbortSignal.any([extra.signal, timeout.signal, this.ended.signal]) });
    } finally {
      clearTimeout(timer);
      // a notification dispatched just before the answer is still routed, then sent first
      await new Promise<void>((resolve) => setImmediate(resolve));
      link.progressRoutes.delete(token);
      await Promise.all(sending);
    }
  }

  /** Runs a request to a link, known as waiting on it (so an upstream's own request finds its session). */
  private async track<T>(link: UpstreamLink, extra: Extra, fn: () => Promise<T>): Promise<T> {
    const list = this.waiting.get(link) ?? [];
    this.waiting.set(link, list);
    const w: Waiting = { id: extra.requestId, auth: requestAuth(extra) };
    list.push(w);
    try {
      return await fn();
    } finally {
      const i = list.indexOf(w);
      if (i >= 0) list.splice(i, 1);
    }
  }

  /**
   * Forwards an allowed request, scrubs leased secrets from the answer, and reports the outcome
   * (digest audited, values recorded for provenance with the upstream's trust).
   */
  private async forward<S extends z.ZodType<object>>(link: UpstreamLink, decision: Decision, extra: Extra, method: string, params: Record<string, unknown>, schema: S): Promise<z.output<S>> {
    const trust = link.config.trusted ? 'trusted' : 'untrusted';
    // the task ended after this call was allowed (its decision was committed meanwhile): a
    // decision is only as current as the task it read, so the call stops here, unsent
    if (this.endedWith !== undefined) throw await this.halted(link, decision, method, this.endedWith, false);
    let result: z.output<S>;
    // the client's own cancellation, or the task's end (halt): either cancels the call upstream
    const halt = new AbortController();
    this.inFlightCalls.set(halt, extra.requestId);
    const ex: Extra = { ...extra, signal: AbortSignal.any([extra.signal, halt.signal]), sendNotification: (n) => extra.sendNotification(n) };
    try {
      result = link.scrubber.scrub(await this.track(link, extra, () => this.send(link, ex, method, params, schema)));
    } catch (e) {
      if (halt.signal.aborted) throw await this.halted(link, decision, method, halt.signal.reason as Halt, true);
      const message = link.scrubber.scrubText(describeError(e));
      this.report(link, decision, { error: message }, true, trust);
      if (e instanceof McpError && e.message.includes(`upstream ${link.config.name} is unavailable`)) throw e;
      throw new McpError(ErrorCode.InternalError, `upstream ${link.config.name} failed: ${message}`);
    } finally {
      this.inFlightCalls.delete(halt);
    }
    this.report(link, decision, result as JsonValue, (result as { isError?: unknown }).isError === true, trust);
    return result;
  }

  private report(_link: UpstreamLink, decision: Decision, result: JsonValue, isError: boolean, trust: 'trusted' | 'untrusted'): void {
    const p = this.d.engine
      .recordOutcome({ taskToken: this.token, callId: decision.callId, result, isError, trust })
      .catch((e: unknown) => this.d.log.warn({ session: this.id, callId: decision.callId, err: describeError(e) }, 'outcome report failed'));
    this.pendingOutcome = p;
  }

  async callTool(name: string, args: Record<string, unknown>, auth?: RequestAuth, extra?: Extra): Promise<CallToolResult> {
    await this.task().catch(asMcpError);
    await this.refreshTools();
    const entry = this.tools.get(name);
    if (!entry) {
      const link = this.linkFor(splitName(name)?.prefix);
      if (link && !link.isReady) link.requireClient();
      throw new McpError(ErrorCode.InvalidParams, `unknown tool ${name.slice(0, 200)}`);
    }
    if (!entry.usable) {
      const pin = await this.d.pins.get(entry.link.config.name, entry.tool.name);
      if (pin?.status === 'approved' && pin.hash === entry.hash) entry.usable = true;
      else return this.blockedByPin(name, args as JsonObject);
    }
    // an upstream that is down is said so before anything is decided or forwarded
    entry.link.requireClient();
    const decision = await this.decide(name, args as JsonObject, auth);
    if (decision.effect !== 'allow') return denialResult(decision);
    const ex: Extra = extra ?? { signal: new AbortController().signal, requestId: this.d.ids.next('req'), sendNotification: async () => undefined };
    const result = (await this.forward(entry.link, decision, ex, 'tools/call', { name: entry.tool.name, arguments: args }, CallToolResultSchema)) as CallToolResult;
    // resource links point into the gateway's namespace, where the client can read them
    return Array.isArray(result.content) ? { ...result, content: namespacedContent(entry.link.prefix, result.content) } : result;
  }

  /** A pinned tool whose description changed: refused and audited, never forwarded. */
  private async blockedByPin(name: string, args: JsonObject): Promise<CallToolResult> {
    const callId = this.d.ids.next('call');
    const ts = this.d.clock.now();
    const common = { ts, callId, taskId: this.taskId, agentId: this.claims.sub, txn: this.claims.txn };
    await this.d.audit.append([
      { kind: 'decision', ...common, data: { tool: name, resource: null, effect: 'deny', reasons: ['TOOL_DESCRIPTION_CHANGED'], policy_ids: ['mcp.pins'], args_keys: Object.keys(args).slice(0, 64) } },
      { kind: 'action', ...common, data: { final: 'blocked', effect: 'deny' } },
    ]);
    return {
      isError: true,
      content: [{ type: 'text', text: `Mandate blocked this call: TOOL_DESCRIPTION_CHANGED (the tool's description or input schema changed since it was pinned; an operator must approve it)` }],
      _meta: { 'mandate/decision': { call_id: callId, effect: 'deny', reasons: ['TOOL_DESCRIPTION_CHANGED'], policy_ids: ['mcp.pins'] } },
    };
  }

  /** calls forwarded and not answered yet */
  get callsInFlight(): number {
    return this.inFlightCalls.size;
  }

  /**
   * The task ended (killed, revoked, expired…): every call in flight is cancelled upstream now
   * (`notifications/cancelled` with the reason) and its client answered with the reason code.
   * Returns how many calls it halted. The session itself is closed by the caller.
   */
  halt(code: string, detail: string): number {
    const calls = [...this.inFlightCalls];
    this.inFlightCalls.clear();
    const reason: Halt = { code, detail: detail.slice(0, 500), at: this.d.clock.now() };
    this.endedWith ??= reason;
    for (const [c, requestId] of calls) {
      if (this.open.has(requestId)) this.halting.add(requestId);
      c.abort(reason);
    }
    return calls.length;
  }

  /**
   * Resolves once every call halted here has been answered to its client (its halt's reason,
   * audited first), or after `boundMs`: the session is closed only then, so a halted call's
   * client hears why it was halted, never just that the session closed.
   */
  haltedAnswered(boundMs: number): Promise<void> {
    if (this.halting.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, boundMs);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.haltWaiters.push(done);
    });
  }

  private haltsAnswered(): void {
    const waiters = this.haltWaiters;
    this.haltWaiters = [];
    for (const w of waiters) w();
  }

  /**
   * A halted call: its final action is audited as `halted`, and its client hears the reason.
   * `forwarded`: it had reached the upstream (which is told to cancel it), or was stopped before.
   */
  private async halted(link: UpstreamLink, decision: Decision, method: string, reason: Halt, forwarded: boolean): Promise<McpError> {
    try {
      await this.d.audit.append([
        {
          kind: 'action',
          ts: this.d.clock.now(),
          callId: decision.callId,
          taskId: this.taskId,
          agentId: this.agentId,
          txn: this.claims.txn,
          data: { final: 'halted', effect: 'allow', reason: reason.code, detail: reason.detail, upstream: link.config.name, method, forwarded, cancelled_upstream: forwarded },
        },
      ]);
    } catch (e) {
      this.d.log.warn({ session: this.id, callId: decision.callId, err: describeError(e) }, 'a halted call could not be audited');
    }
    this.d.log.info({ session: this.id, task: this.taskId, callId: decision.callId, upstream: link.config.name, reason: reason.code, forwarded }, forwarded ? 'call halted: its task ended' : 'call not forwarded: its task ended after it was allowed');
    const why = reason.detail !== '' ? ` (${reason.detail})` : '';
    const upstream = forwarded ? 'the upstream was told to cancel it' : 'it was not forwarded to the upstream';
    return new McpError(HALTED_ERROR_CODE, `${reason.code}: Mandate halted this call because its task ended${why}; ${upstream}`, { reason: reason.code, halted: true, call_id: decision.callId });
  }

  get isClosed(): boolean {
    return this.closing !== undefined;
  }

  /**
   * What an open cut short by this session's close answers: its task end's reason (a kill:
   * TASK_KILLED), else NOT_FOUND (a newer session replaced it), never a session that is gone.
   */
  closedError(): MandateError {
    const why = this.closedFor ?? { reason: 'closed', code: undefined };
    return new MandateError(why.code !== undefined && isReasonCode(why.code) ? why.code : 'NOT_FOUND', `the MCP session closed while it opened (${why.reason})`);
  }

  /**
   * Ends the session: the client side, and its hold on every upstream connection (a
   * per-session one is closed, its process killed and its HTTP session ended; a per-task one
   * with the task's last session). `reason` goes to the log.
   */
  close(reason: string, end?: { readonly code: string; readonly detail: string }): Promise<void> {
    this.closedFor ??= { reason, code: end?.code };
    const halt: Halt | undefined = end === undefined ? undefined : { code: end.code, detail: end.detail.slice(0, 500), at: this.d.clock.now() };
    if (halt !== undefined) this.endedWith ??= halt;
    this.closing ??= (async () => {
      // the client hears why its open requests end, before anything it waits on goes away
      await this.answerOpenRequests(reason, halt);
      this.ended.abort(new McpError(ErrorCode.ConnectionClosed, `the MCP session ended: ${reason}`));
      try {
        await this.server.close();
      } catch {
        // already closed by its transport
      }
      await this.pendingOutcome;
      await Promise.all([...this.links.values()].map(({ link, pool }) => pool.release(this, link, `session ${this.id} closed: ${reason}`)));
      this.d.log.info({ session: this.id, task: this.taskId, agent: this.agentId, reason, lived_ms: this.d.clock.now() - this.openedAt }, 'MCP session closed');
      this.hooks.closed(this, reason);
    })();
    return this.closing;
  }
}

/** The request's token and verified proof, put there by the gateway's HTTP edge. */
function requestAuth(extra: { authInfo?: AuthInfo | undefined }): RequestAuth | undefined {
  const a = extra.authInfo?.extra?.[PROOF_EXTRA] as RequestAuth | undefined;
  return a !== undefined && typeof a.token === 'string' ? a : undefined;
}

/**
 * Whether any grant of the mandate can name something of this upstream (`<prefix>__…`): the
 * literal part of each grant before its first `*` is compared; never false for a usable upstream.
 */
function mayUse(task: Task, prefix: string): boolean {
  const head = namespacedTool(prefix, '');
  return task.mandate.tools.some((g) => {
    const star = g.name.indexOf('*');
    const literal = star < 0 ? g.name : g.name.slice(0, star);
    return literal.startsWith(head) || (star >= 0 && head.startsWith(literal));
  });
}

function granted(task: Task, tool: string): boolean {
  return task.mandate.tools.some((g) => globMatch(g.name, tool));
}

/** The task's current state, or a MandateError whose code is the task-state reason. */
export async function requireActiveTask(d: Pick<GatewayDeps, 'tasks' | 'clock'>, taskId: string): Promise<Task> {
  let task: Task | undefined;
  try {
    task = await d.tasks.getTask(taskId);
  } catch (e) {
    throw new MandateError('STORE_UNAVAILABLE', describeError(e));
  }
  if (!task) throw new MandateError('TASK_NOT_FOUND', 'task not found');
  if (task.state !== 'active') throw new MandateError(TASK_STATE_REASON[task.state], `task is ${task.state}`);
  if (d.clock.now() >= task.expiresAt) throw new MandateError('TASK_EXPIRED', 'task expired');
  return task;
}

function asMcpError(e: unknown): never {
  if (isMandateError(e)) throw new McpError(ErrorCode.InvalidRequest, `${e.code}: ${e.message}`, { reason: e.code });
  throw new McpError(ErrorCode.InternalError, 'internal error');
}
