/**
 * One managed connection to one upstream MCP server: a stdio child process (spawned with the
 * decrypted env: for a per-session or per-task connection the secret lease lives exactly as long
 * as the process) or a Streamable HTTP client (with the decrypted headers). It restarts itself
 * with backoff when the process exits or stops answering pings, and tells the sessions using it
 * when its tools come or go. Its pool decides who uses it (config `sharing`).
 */
import type { ChildProcess } from 'node:child_process';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ErrorCode,
  ListRootsRequestSchema,
  LoggingMessageNotificationSchema,
  McpError,
  ProgressNotificationSchema,
  PromptListChangedNotificationSchema,
  ResourceListChangedNotificationSchema,
  ResourceUpdatedNotificationSchema,
  ToolListChangedNotificationSchema,
  type ClientCapabilities,
  type LoggingMessageNotification,
  type Progress,
  type Prompt,
  type Resource,
  type ResourceTemplate,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js';
import { describeError, isMandateError } from '@mandate/core';
import type { McpLimits, SharingMode, UpstreamConfig } from './config.ts';
import type { GatewayLog } from './deps.ts';
import { NodeHttpClientTransport } from './http-client.ts';
import { SecretScrubber, type SecretVault } from './secrets.ts';

export type LinkState = 'starting' | 'ready' | 'down' | 'closed';
export type ListKind = 'tools' | 'resources' | 'prompts';
/** server → client requests an upstream may send through the gateway */
export type UpstreamRequest = { method: 'sampling/createMessage' | 'elicitation/create' | 'roots/list'; params: Record<string, unknown> };

/** A session using a link, as the link sees it. */
export interface LinkUser {
  readonly id: string;
  readonly taskId: string;
  readonly lastUsed: number;
  /** the link's tools, resources or prompts may have changed (it came up, went down, or said so) */
  linkChanged(link: UpstreamLink, what: ListKind): void;
  /** a resource of this link the session subscribed to changed (`uri` as the upstream names it) */
  resourceUpdated(link: UpstreamLink, uri: string): void;
  /** whether the session subscribed to this upstream URI */
  subscribed(link: UpstreamLink, uri: string): boolean;
  upstreamLog(link: UpstreamLink, params: LoggingMessageNotification['params']): void;
  /** a server → client request the upstream sent: decided, relayed to the client, answered */
  upstreamRequest(link: UpstreamLink, req: UpstreamRequest, signal: AbortSignal): Promise<Record<string, unknown>>;
  /** the most recent client request of the session now waiting on this link, if any */
  inFlight(link: UpstreamLink): string | number | undefined;
}

export interface LinkOptions {
  readonly vault: SecretVault;
  readonly log: GatewayLog;
  readonly limits: McpLimits;
  readonly now: () => number;
}

const CLIENT_INFO = { name: 'mandate-gateway', version: '0.1.0' };
/** bytes of an upstream's stderr kept per line in the log */
const STDERR_LINE = 2000;
/** what the gateway may relay for a connection of one session or one task; a shared one gets none */
const RELAY_CAPABILITIES: ClientCapabilities = { sampling: {}, elicitation: { form: {}, url: {} }, roots: { listChanged: true } };
/** a DELETE to end an HTTP upstream's session waits this long at most */
const TERMINATE_TIMEOUT_MS = 2000;

let serial = 0;

export class UpstreamLink {
  readonly config: UpstreamConfig;
  readonly prefix: string;
  readonly mode: SharingMode;
  /** `<name>#<n>`: tells this connection apart in the log */
  readonly id: string;
  readonly users = new Set<LinkUser>();
  /** the gateway's own progress tokens of requests waiting on this connection → where their progress goes */
  readonly progressRoutes = new Map<string, (p: Progress) => void>();
  client: Client | undefined;
  /** scrubs this connection's leased secrets from what it sends back */
  scrubber = new SecretScrubber([]);
  state: LinkState = 'starting';
  /** why it is down, for the sessions that lack it */
  lastError: string | undefined;
  private readonly o: LinkOptions;
  private connecting: Promise<boolean> | undefined;
  private failures = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private healthTimer: NodeJS.Timeout | undefined;
  private generation = 0;
  private httpTransport: NodeHttpClientTransport | undefined;
  /** the client of a connection still starting: a close ends it (and its process) at once */
  private starting: Client | undefined;

  constructor(config: UpstreamConfig, o: LinkOptions) {
    this.config = config;
    this.prefix = config.tool_prefix ?? config.name;
    this.mode = config.sharing;
    this.o = o;
    serial += 1;
    this.id = `${config.name}#${serial}`;
  }

  /** (read through a call: the state changes across awaits) */
  private wasClosed(): boolean {
    return this.state === 'closed';
  }

  get isReady(): boolean {
    return this.state === 'ready' && this.client !== undefined;
  }

  /** Starts connecting (once; a restart is scheduled by the link itself). */
  start(): void {
    this.connecting ??= this.connect();
  }

  /** Resolves true once ready, false once it failed or `timeoutMs` passed (it keeps trying). */
  async ready(timeoutMs: number): Promise<boolean> {
    if (this.isReady) return true;
    if (this.state === 'closed') return false;
    // a connection that is down waits for its backoff: a session opening does not hurry it
    if (this.state === 'starting') this.start();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
      timer.unref();
    });
    try {
      return await Promise.race([this.connecting ?? Promise.resolve(this.isReady), late]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async connect(): Promise<boolean> {
    const gen = ++this.generation;
    const started = this.o.now();
    this.state = 'starting';
    const client = new Client(CLIENT_INFO, { capabilities: this.mode === 'shared' ? {} : RELAY_CAPABILITIES });
    this.starting = client;
    let pid: number | undefined;
    try {
      if (this.config.transport === 'stdio') {
        const env = await this.o.vault.resolve(this.config.env);
        this.scrubber = new SecretScrubber(env.secrets);
        const transport = new StdioClientTransport({
          command: this.config.command,
          args: this.config.args,
          env: env.values,
          ...(this.config.cwd !== undefined ? { cwd: this.config.cwd } : {}),
          // never inherited: an upstream printing its environment must not reach our logs unscrubbed
          stderr: 'pipe',
        });
        this.pipeStderr(transport);
        this.wire(client, gen);
        await client.connect(transport, { timeout: this.o.limits.upstream_timeout });
        pid = transport.pid ?? undefined;
        const proc = (transport as unknown as { _process?: ChildProcess })._process;
        proc?.once('exit', (code, signal) => {
          if (gen === this.generation && this.state !== 'closed') this.o.log.warn({ upstream: this.config.name, link: this.id, pid, code, signal }, 'upstream process exited');
        });
      } else {
        const headers = await this.o.vault.resolve(this.config.headers);
        this.scrubber = new SecretScrubber(headers.secrets);
        const transport = new NodeHttpClientTransport(new URL(this.config.url), { headers: headers.values });
        this.httpTransport = transport;
        this.wire(client, gen);
        await client.connect(transport, { timeout: this.o.limits.upstream_timeout });
      }
    } catch (e) {
      if (this.starting === client) this.starting = undefined;
      await client.close().catch(() => undefined);
      if (gen !== this.generation || this.wasClosed()) return false;
      this.lastError = this.scrubber.scrubText(isMandateError(e) ? `${e.code}: ${e.message}` : describeError(e));
      this.state = 'down';
      this.connecting = undefined;
      this.o.log.warn({ upstream: this.config.name, link: this.id, err: this.lastError, failures: this.failures + 1 }, 'upstream failed to start');
      this.scheduleRestart();
      return false;
    }
    if (this.starting === client) this.starting = undefined;
    if (gen !== this.generation || this.wasClosed()) {
      await client.close().catch(() => undefined);
      return false;
    }
    this.client = client;
    this.state = 'ready';
    this.lastError = undefined;
    this.connecting = undefined;
    this.o.log.info({ upstream: this.config.name, link: this.id, sharing: this.mode, ...(pid !== undefined ? { pid } : {}), ms: this.o.now() - started, restarts: this.failures }, 'upstream started');
    this.startHealth(gen);
    // a restart after a good run starts the backoff over; a crash loop keeps doubling it
    const failuresAtStart = this.failures;
    setTimeout(() => {
      if (gen === this.generation && this.state === 'ready' && this.failures === failuresAtStart) this.failures = 0;
    }, this.o.limits.restart_max_backoff * 2).unref();
    this.changed('tools', 'resources', 'prompts');
    // sessions already waiting for it: it asks them for their roots again
    if (this.mode !== 'shared' && this.users.size > 0) void client.sendRootsListChanged().catch(() => undefined);
    return true;
  }

  /** Notification and request handlers of one connection attempt (`gen`). */
  private wire(client: Client, gen: number): void {
    client.onclose = () => {
      if (gen === this.generation) this.lost('the connection closed');
    };
    client.setNotificationHandler(ProgressNotificationSchema, (n) => this.progressRoutes.get(String(n.params.progressToken))?.(n.params));
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => this.changed('tools'));
    client.setNotificationHandler(ResourceListChangedNotificationSchema, () => this.changed('resources'));
    client.setNotificationHandler(PromptListChangedNotificationSchema, () => this.changed('prompts'));
    client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
      for (const u of this.users) if (u.subscribed(this, n.params.uri)) u.resourceUpdated(this, n.params.uri);
    });
    client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
      // a shared upstream's log lines could tell one session about another: kept in our log only
      if (this.mode === 'shared') return this.o.log.debug?.({ upstream: this.config.name, level: n.params.level, data: this.scrubber.scrub(n.params.data) as unknown }, 'upstream log message');
      for (const u of this.users) u.upstreamLog(this, n.params);
    });
    if (this.mode === 'shared') return;
    client.setRequestHandler(CreateMessageRequestSchema, (r, extra) => this.relay({ method: 'sampling/createMessage', params: r.params }, extra.signal));
    client.setRequestHandler(ElicitRequestSchema, (r, extra) => this.relay({ method: 'elicitation/create', params: r.params }, extra.signal));
    client.setRequestHandler(ListRootsRequestSchema, async (r, extra) => {
      // a warm connection asks before any session holds it: no roots yet (it is told when they come)
      if (this.users.size === 0) return { roots: [] };
      return this.relay({ method: 'roots/list', params: r.params ?? {} }, extra.signal);
    });
  }

  /**
   * The session a server → client request belongs to: the one whose request is waiting on this
   * connection (the most recently used if several; one task's sessions alone share a link that
   * can ask), else the most recently used.
   */
  private relay(req: UpstreamRequest, signal: AbortSignal): Promise<Record<string, unknown>> {
    let best: LinkUser | undefined;
    let bestWaiting = false;
    for (const u of this.users) {
      const waiting = u.inFlight(this) !== undefined;
      if (best === undefined || (waiting && !bestWaiting) || (waiting === bestWaiting && u.lastUsed > best.lastUsed)) {
        best = u;
        bestWaiting = waiting;
      }
    }
    if (!best) throw new McpError(ErrorCode.InvalidRequest, 'no MCP client session is attached to this upstream connection');
    return best.upstreamRequest(this, req, signal);
  }

  private changed(...kinds: ListKind[]): void {
    const caps = this.client?.getServerCapabilities();
    for (const k of kinds) {
      if (this.state === 'ready' && caps !== undefined && caps[k] === undefined) continue;
      for (const u of this.users) u.linkChanged(this, k);
    }
  }

  private lost(why: string): void {
    // while starting, the failed attempt reports itself (and schedules the restart)
    if (this.state !== 'ready') return;
    this.lastError = why;
    this.state = 'down';
    this.client = undefined;
    this.connecting = undefined;
    this.stopHealth();
    this.o.log.warn({ upstream: this.config.name, link: this.id, reason: why, users: this.users.size }, 'upstream connection lost: restarting it');
    // its tools vanish until it is back: clients are told both times
    for (const u of this.users) for (const k of ['tools', 'resources', 'prompts'] as const) u.linkChanged(this, k);
    this.scheduleRestart();
  }

  private scheduleRestart(): void {
    if (this.state === 'closed' || this.restartTimer) return;
    const delay = Math.min(this.o.limits.restart_max_backoff, this.o.limits.restart_backoff * 2 ** Math.min(this.failures, 20));
    this.failures += 1;
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.state === 'closed') return;
      this.connecting ??= this.connect();
    }, delay);
    this.restartTimer.unref();
  }

  private startHealth(gen: number): void {
    this.stopHealth();
    this.healthTimer = setInterval(() => {
      const client = this.client;
      if (gen !== this.generation || !client || this.state !== 'ready') return;
      client.ping({ timeout: this.o.limits.connect_timeout }).catch((e: unknown) => {
        if (gen !== this.generation || this.state !== 'ready') return;
        this.o.log.warn({ upstream: this.config.name, link: this.id, err: this.scrubber.scrubText(describeError(e)) }, 'upstream did not answer a health check');
        this.lost('it did not answer a health check');
        void client.close().catch(() => undefined);
      });
    }, this.o.limits.health_interval);
    this.healthTimer.unref();
  }

  private stopHealth(): void {
    if (this.healthTimer) clearInterval(this.healthTimer);
    this.healthTimer = undefined;
  }

  private pipeStderr(transport: StdioClientTransport): void {
    const stderr = transport.stderr;
    if (!stderr) return;
    let buf = '';
    stderr.on('data', (chunk: Buffer) => {
      buf += chunk.toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.trim() !== '') this.o.log.debug?.({ upstream: this.config.name, link: this.id, stderr: this.scrubber.scrubText(line.slice(0, STDERR_LINE)) }, 'upstream stderr');
      }
      if (buf.length > 64 * 1024) buf = '';
    });
  }

  private async pages<T>(fetchPage: (cursor: string | undefined) => Promise<{ items: T[]; nextCursor?: string | undefined }>): Promise<T[]> {
    const out: T[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 100; page++) {
      const r = await fetchPage(cursor);
      out.push(...r.items);
      if (out.length >= this.o.limits.max_list_items) return out.slice(0, this.o.limits.max_list_items);
      if (r.nextCursor === undefined) break;
      cursor = r.nextCursor;
    }
    return out;
  }

  /** The connected client; throws (an MCP error naming why) while the upstream is not ready. */
  requireClient(): Client {
    if (this.client && this.state === 'ready') return this.client;
    throw new McpError(ErrorCode.InternalError, `upstream ${this.config.name} is unavailable${this.lastError !== undefined ? `: ${this.lastError}` : ' (starting)'}`);
  }

  has(kind: 'tools' | 'resources' | 'prompts' | 'completions' | 'logging'): boolean {
    return this.client?.getServerCapabilities()?.[kind] !== undefined;
  }

  async listTools(): Promise<Tool[]> {
    if (!this.has('tools')) return [];
    const c = this.requireClient();
    return this.pages(async (cursor) => {
      const r = await c.listTools(cursor === undefined ? {} : { cursor }, { timeout: this.o.limits.upstream_timeout });
      return { items: r.tools, nextCursor: r.nextCursor };
    });
  }

  async listResources(): Promise<Resource[]> {
    if (!this.has('resources')) return [];
    const c = this.requireClient();
    return this.pages(async (cursor) => {
      const r = await c.listResources(cursor === undefined ? {} : { cursor }, { timeout: this.o.limits.upstream_timeout });
      return { items: r.resources, nextCursor: r.nextCursor };
    });
  }

  async listResourceTemplates(): Promise<ResourceTemplate[]> {
    if (!this.has('resources')) return [];
    const c = this.requireClient();
    return this.pages(async (cursor) => {
      const r = await c.listResourceTemplates(cursor === undefined ? {} : { cursor }, { timeout: this.o.limits.upstream_timeout });
      return { items: r.resourceTemplates, nextCursor: r.nextCursor };
    });
  }

  async listPrompts(): Promise<Prompt[]> {
    if (!this.has('prompts')) return [];
    const c = this.requireClient();
    return this.pages(async (cursor) => {
      const r = await c.listPrompts(cursor === undefined ? {} : { cursor }, { timeout: this.o.limits.upstream_timeout });
      return { items: r.prompts, nextCursor: r.nextCursor };
    });
  }

  /** Ends the connection for good: an HTTP upstream's session is ended (DELETE), a process killed. */
  async close(reason: string): Promise<void> {
    if (this.state === 'closed') return;
    const wasUp = this.state === 'ready';
    this.state = 'closed';
    this.generation += 1;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    this.stopHealth();
    const client = this.client;
    this.client = undefined;
    // a connection still starting (an upstream that never answers initialize) is ended now, not
    // when its start times out: its process would outlive the gateway that closed it
    const starting = this.starting;
    this.starting = undefined;
    if (starting) await starting.close().catch(() => undefined);
    if (wasUp && this.httpTransport) {
      const t = this.httpTransport;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([t.terminateSession().catch(() => undefined), new Promise<void>((resolve) => (timer = setTimeout(resolve, TERMINATE_TIMEOUT_MS)))]);
      clearTimeout(timer);
    }
    try {
      await client?.close();
    } catch (e) {
      this.o.log.warn({ upstream: this.config.name, link: this.id, err: describeError(e) }, 'closing an upstream failed');
    }
    this.o.log.info({ upstream: this.config.name, link: this.id, reason }, 'upstream connection closed');
  }
}
