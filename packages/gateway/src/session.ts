/**
 * One MCP session, bound to one task: a low-level MCP `Server` toward the client whose handlers
 * translate, ask the core, and forward to the session's own upstream connections. Nothing here
 * decides: `engine.decide` does, for every call, with the arguments.
 */
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import {
  CallToolRequestSchema,
  CallToolResultSchema,
  ErrorCode,
  GetPromptRequestSchema,
  GetPromptResultSchema,
  ListPromptsRequestSchema,
  ListResourcesRequestSchema,
  ListToolsRequestSchema,
  McpError,
  ReadResourceRequestSchema,
  ReadResourceResultSchema,
  type CallToolResult,
  type Prompt,
  type Resource,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js';
import { describeError, globMatch, isMandateError, MandateError, TASK_STATE_REASON, type Decision, type JsonObject, type JsonValue, type Task, type TaskTokenClaims } from '@mandate/core';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import type { GatewayDeps } from './deps.ts';
import { PROOF_EXTRA, type RequestAuth } from './dpop.ts';
import { toolHash } from './pins.ts';
import { Upstream } from './upstream.ts';

const TOOL_NAME = /^[A-Za-z0-9._:/@-]{1,200}$/;
/** the separator between an upstream's prefix and its tool's name */
export const NAMESPACE_SEPARATOR = '__';

export function namespacedTool(prefix: string, tool: string): string {
  return `${prefix}${NAMESPACE_SEPARATOR}${tool}`;
}
/** The name a mandate grants to read an upstream's resources (the resource is the URI). */
export function resourceTool(prefix: string): string {
  return `${prefix}${NAMESPACE_SEPARATOR}resources/read`;
}
/** The name a mandate grants to get one of an upstream's prompts. */
export function promptTool(prefix: string, prompt: string): string {
  return `${prefix}${NAMESPACE_SEPARATOR}prompts/${prompt}`;
}

interface ToolEntry {
  readonly upstream: Upstream;
  readonly tool: Tool;
  readonly hash: string;
  usable: boolean;
}

/** Task states and reasons after which the session (and its leases) end. */
const ENDING_REASONS = new Set<string>(['TASK_COMPLETED', 'TASK_EXPIRED', 'TASK_REVOKED', 'TASK_KILLED', 'TASK_MAX_LIFETIME_REACHED', 'TASK_NOT_FOUND', 'AGENT_DISABLED', 'TOKEN_REVOKED']);

export class GatewaySession {
  readonly id: string;
  readonly taskId: string;
  readonly server: Server;
  private readonly d: GatewayDeps;
  private token: string;
  private claims: TaskTokenClaims;
  private readonly upstreams: Upstream[];
  private tools = new Map<string, ToolEntry>();
  private toolsFresh = false;
  private refreshing: Promise<void> | undefined;
  private readonly resources = new Map<string, Upstream>();
  private readonly prompts = new Map<string, { upstream: Upstream; prompt: Prompt }>();
  /** the last outcome report: the next decision waits for it, so provenance is never behind */
  private pendingOutcome: Promise<unknown> = Promise.resolve();
  private watch: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;
  lastUsed: number;
  private readonly onClosed: (s: GatewaySession) => void;

  private constructor(d: GatewayDeps, id: string, token: string, claims: TaskTokenClaims, upstreams: Upstream[], onClosed: (s: GatewaySession) => void) {
    this.d = d;
    this.id = id;
    this.token = token;
    this.claims = claims;
    this.taskId = claims.task_id;
    this.upstreams = upstreams;
    this.onClosed = onClosed;
    this.lastUsed = d.clock.now();
    this.server = new Server(
      { name: 'mandate-gateway', version: '0.1.0' },
      { capabilities: { tools: { listChanged: true }, resources: {}, prompts: {} }, instructions: 'Tools behind Mandate: every call is decided against your task mandate.' },
    );
    this.register();
    // the client went away (DELETE, a closed pipe): the upstreams and their leases go too
    this.server.onclose = () => void this.close();
  }

  /**
   * Opens a session for a task token: no valid token or no active task, no session. Each
   * upstream is connected for this session alone (a stdio upstream holding secrets is a process
   * of its own: the lease); an upstream that cannot be reached is left out and logged.
   */
  static async open(d: GatewayDeps, token: string, onClosed: (s: GatewaySession) => void): Promise<GatewaySession> {
    const claims = await d.tokens.verify(token);
    await requireActiveTask(d, claims.task_id);
    const id = d.ids.next('mcps');
    const holder: { session?: GatewaySession } = {};
    const connected = await Promise.all(
      d.config.upstreams.map(async (cfg) => {
        try {
          return await Upstream.connect(cfg, d.vault, {
            timeoutMs: d.config.limits.upstream_timeout,
            maxItems: d.config.limits.max_list_items,
            log: d.log,
            onToolsChanged: () => holder.session?.toolsChanged(),
          });
        } catch (e) {
          d.log.warn({ upstream: cfg.name, session: id, err: isMandateError(e) ? `${e.code}: ${e.message}` : describeError(e) }, 'upstream unavailable for this session');
          return undefined;
        }
      }),
    );
    const session = new GatewaySession(d, id, token, claims, connected.filter((u): u is Upstream => u !== undefined), onClosed);
    holder.session = session;
    session.startWatch();
    return session;
  }

  async connect(transport: Transport): Promise<void> {
    await this.server.connect(transport);
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

  get agentId(): string {
    return this.claims.sub;
  }

  private startWatch(): void {
    this.watch = setInterval(() => {
      void this.checkTask();
    }, this.d.config.limits.task_check_interval);
    this.watch.unref();
  }

  /** Ends the session (and kills its upstream processes) once its task is no longer active. */
  async checkTask(): Promise<void> {
    try {
      await requireActiveTask(this.d, this.taskId);
    } catch (e) {
      if (isMandateError(e) && ENDING_REASONS.has(e.code)) {
        this.d.log.info({ session: this.id, task: this.taskId, reason: e.code }, 'task ended: closing the MCP session and its upstream leases');
        await this.close();
      }
    }
  }

  toolsChanged(): void {
    this.toolsFresh = false;
    this.server.sendToolListChanged().catch(() => undefined);
  }

  private async task(): Promise<Task> {
    const task = await requireActiveTask(this.d, this.taskId);
    this.lastUsed = this.d.clock.now();
    return task;
  }

  /** Lists every upstream's tools, checks each against its pin. */
  private refreshTools(): Promise<void> {
    if (this.toolsFresh) return Promise.resolve();
    this.refreshing ??= (async () => {
      try {
        const next = new Map<string, ToolEntry>();
        for (const up of this.upstreams) {
          if (up.isClosed) continue;
          let listed: Tool[];
          try {
            listed = await up.listTools();
          } catch (e) {
            this.d.log.warn({ upstream: up.config.name, err: describeError(e) }, 'tools/list failed upstream');
            continue;
          }
          for (const tool of listed) {
            const name = namespacedTool(up.prefix, tool.name);
            if (!TOOL_NAME.test(name) || next.has(name)) {
              this.d.log.warn({ upstream: up.config.name, tool: tool.name.slice(0, 200) }, 'upstream tool left out: its name is not a valid mandate tool name');
              continue;
            }
            const hash = toolHash(this.d.hasher, tool);
            const usable = await this.d.pins.check(up.config.name, tool.name, hash, this.taskId);
            next.set(name, { upstream: up, tool, hash, usable });
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

  private register(): void {
    this.server.setRequestHandler(ListToolsRequestSchema, async () => {
      const task = await this.task().catch(asMcpError);
      // every list asks the upstreams again, so a changed description is caught when it appears
      this.toolsFresh = false;
      await this.refreshTools();
      const tools: Tool[] = [];
      for (const [name, e] of this.tools) {
        if (!e.usable || !granted(task, name)) continue;
        tools.push(e.upstream.scrubber.scrub({ ...e.tool, name }));
      }
      return { tools };
    });

    this.server.setRequestHandler(CallToolRequestSchema, async (req, extra) => this.callTool(req.params.name, req.params.arguments ?? {}, requestAuth(extra)));

    this.server.setRequestHandler(ListResourcesRequestSchema, async () => {
      const task = await this.task().catch(asMcpError);
      const out: Resource[] = [];
      for (const up of this.upstreams) {
        if (up.isClosed || !granted(task, resourceTool(up.prefix))) continue;
        let listed: Resource[];
        try {
          listed = await up.listResources();
        } catch (e) {
          this.d.log.warn({ upstream: up.config.name, err: describeError(e) }, 'resources/list failed upstream');
          continue;
        }
        for (const r of listed) {
          if (task.mandate.resources && !task.mandate.resources.some((g) => globMatch(g, r.uri))) continue;
          if (!this.resources.has(r.uri)) this.resources.set(r.uri, up);
          if (this.resources.get(r.uri) === up) out.push(up.scrubber.scrub(r));
        }
      }
      return { resources: out };
    });

    this.server.setRequestHandler(ReadResourceRequestSchema, async (req, extra) => {
      const up = this.resources.get(req.params.uri);
      if (!up) throw new McpError(ErrorCode.InvalidParams, `unknown resource ${req.params.uri.slice(0, 200)} (list resources first)`);
      const decision = await this.decide(resourceTool(up.prefix), { uri: req.params.uri }, requestAuth(extra), req.params.uri);
      if (decision.effect !== 'allow') throw new McpError(ErrorCode.InvalidRequest, denialText(decision), decisionMeta(decision));
      return this.forward(up, decision, () => up.client.request({ method: 'resources/read', params: req.params }, ReadResourceResultSchema, { timeout: this.d.config.limits.upstream_timeout }));
    });

    this.server.setRequestHandler(ListPromptsRequestSchema, async () => {
      const task = await this.task().catch(asMcpError);
      const out: Prompt[] = [];
      for (const up of this.upstreams) {
        if (up.isClosed) continue;
        let listed: Prompt[];
        try {
          listed = await up.listPrompts();
        } catch (e) {
          this.d.log.warn({ upstream: up.config.name, err: describeError(e) }, 'prompts/list failed upstream');
          continue;
        }
        for (const p of listed) {
          const name = namespacedTool(up.prefix, p.name);
          if (!TOOL_NAME.test(promptTool(up.prefix, p.name)) || !granted(task, promptTool(up.prefix, p.name))) continue;
          this.prompts.set(name, { upstream: up, prompt: p });
          out.push(up.scrubber.scrub({ ...p, name }));
        }
      }
      return { prompts: out };
    });

    this.server.setRequestHandler(GetPromptRequestSchema, async (req, extra) => {
      const entry = this.prompts.get(req.params.name);
      if (!entry) throw new McpError(ErrorCode.InvalidParams, `unknown prompt ${req.params.name.slice(0, 200)} (list prompts first)`);
      const { upstream: up, prompt } = entry;
      const decision = await this.decide(promptTool(up.prefix, prompt.name), (req.params.arguments ?? {}) as JsonObject, requestAuth(extra));
      if (decision.effect !== 'allow') throw new McpError(ErrorCode.InvalidRequest, denialText(decision), decisionMeta(decision));
      return this.forward(up, decision, () =>
        up.client.request({ method: 'prompts/get', params: { ...req.params, name: prompt.name } }, GetPromptResultSchema, { timeout: this.d.config.limits.upstream_timeout }),
      );
    });
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
    if (decision.effect !== 'allow' && decision.reasons.some((r) => ENDING_REASONS.has(r))) void this.checkTask();
    return decision;
  }

  /**
   * Forwards an allowed request, scrubs leased secrets from the answer, and reports the outcome
   * (digest audited, values recorded for provenance with the upstream's trust).
   */
  private async forward<T extends object>(up: Upstream, decision: Decision, send: () => Promise<T>): Promise<T> {
    let result: T;
    try {
      result = up.scrubber.scrub(await send());
    } catch (e) {
      const message = up.scrubber.scrubText(describeError(e));
      this.report(up, decision, { error: message }, true);
      throw new McpError(ErrorCode.InternalError, `upstream ${up.config.name} failed: ${message}`);
    }
    this.report(up, decision, result as JsonValue, (result as { isError?: unknown }).isError === true);
    return result;
  }

  private report(up: Upstream, decision: Decision, result: JsonValue, isError: boolean): void {
    const p = this.d.engine
      .recordOutcome({ taskToken: this.token, callId: decision.callId, result, isError, trust: up.config.trusted ? 'trusted' : 'untrusted' })
      .catch((e: unknown) => this.d.log.warn({ session: this.id, callId: decision.callId, err: describeError(e) }, 'outcome report failed'));
    this.pendingOutcome = p;
  }

  async callTool(name: string, args: Record<string, unknown>, auth?: RequestAuth): Promise<CallToolResult> {
    await this.task().catch(asMcpError);
    await this.refreshTools();
    const entry = this.tools.get(name);
    if (!entry) throw new McpError(ErrorCode.InvalidParams, `unknown tool ${name.slice(0, 200)}`);
    if (!entry.usable) {
      const pin = await this.d.pins.get(entry.upstream.config.name, entry.tool.name);
      if (pin?.status === 'approved' && pin.hash === entry.hash) entry.usable = true;
      else return this.blockedByPin(name, args as JsonObject);
    }
    const decision = await this.decide(name, args as JsonObject, auth);
    if (decision.effect !== 'allow') return denialResult(decision);
    const up = entry.upstream;
    return this.forward(up, decision, () =>
      up.client.request({ method: 'tools/call', params: { name: entry.tool.name, arguments: args } }, CallToolResultSchema, { timeout: this.d.config.limits.upstream_timeout }),
    ) as Promise<CallToolResult>;
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

  /** Closes the client side and every upstream connection (stdio processes are killed). */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.watch) clearInterval(this.watch);
      await this.pendingOutcome;
      await Promise.all(this.upstreams.map((u) => u.close()));
      try {
        await this.server.close();
      } catch {
        // already closed by its transport
      }
      this.onClosed(this);
    })();
    return this.closing;
  }
}

/** The request's token and verified proof, put there by the gateway's HTTP edge. */
function requestAuth(extra: { authInfo?: AuthInfo | undefined }): RequestAuth | undefined {
  const a = extra.authInfo?.extra?.[PROOF_EXTRA] as RequestAuth | undefined;
  return a !== undefined && typeof a.token === 'string' ? a : undefined;
}

function granted(task: Task, tool: string): boolean {
  return task.mandate.tools.some((g) => globMatch(g.name, tool));
}

/** The task's current state, or a MandateError whose code is the task-state reason. */
export async function requireActiveTask(d: GatewayDeps, taskId: string): Promise<Task> {
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

function decisionMeta(d: Decision): { 'mandate/decision': JsonObject } {
  return {
    'mandate/decision': {
      call_id: d.callId,
      effect: d.effect,
      reasons: [...d.reasons],
      policy_ids: [...d.policyIds],
      ...(d.approvalId !== undefined ? { approval_id: d.approvalId } : {}),
    },
  };
}

function denialText(d: Decision): string {
  const head = d.effect === 'approval_required' ? 'Mandate holds this call for approval' : 'Mandate denied this call';
  const tail = d.effect === 'approval_required' && d.approvalId !== undefined ? ` (approval ${d.approvalId}: once an approver allows it, repeat the same call)` : '';
  return `${head}: ${d.reasons.join(', ')}${d.details.length > 0 ? ` (${d.details.join('; ')})` : ''}${tail}`;
}

/** A deny or a held call, as a tool result the model can read: never a hang, never a forward. */
function denialResult(d: Decision): CallToolResult {
  return { isError: true, content: [{ type: 'text', text: denialText(d) }], _meta: decisionMeta(d) };
}
