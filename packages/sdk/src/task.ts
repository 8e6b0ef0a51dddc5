import { MandateApprovalRequiredError, MandateDeniedError, MandateHaltedError, MandateSdkError, MandateApiError } from './errors.ts';
import { abortableSleep, type HttpClient } from './http.ts';
import { KillWatch, type KillWatchOptions } from './kill-watch.ts';
import { parseDecision, parseIssued, type Decision, type IssuedTask } from './wire.ts';
import { resolveWorkloadToken, type WorkloadTokenSource } from './workload.ts';

/** How a guarded call waits when Mandate holds it for a human. */
export interface ApprovalWait {
  /** how long to wait for the approval; 0 fails at once with MandateApprovalRequiredError */
  readonly timeoutMs: number;
  /** how often to ask again (each ask is the same call, so an approval is spent by the ask that sees it) */
  readonly pollIntervalMs: number;
  /** told once per approval request, e.g. to tell a human where to look */
  readonly onPending?: ((pending: { readonly approvalId: string; readonly tool: string; readonly callId: string }) => void) | undefined;
}

/** What every task of one client shares. */
export interface TaskRuntime {
  readonly http: HttpClient;
  readonly now: () => number;
  readonly sleep: ((ms: number, signal?: AbortSignal) => Promise<void>) | undefined;
  readonly approval: ApprovalWait;
  readonly renewBeforeMs: number;
  readonly autoRenew: boolean;
  /** `supported` is learnt from the first report: a 404 means this server has no outcome endpoint */
  readonly outcomes: { readonly enabled: boolean; supported: boolean | undefined };
  readonly onError: (error: unknown) => void;
  readonly random: () => number;
  /** start a kill watch for every task (client option `watchKills`) */
  readonly watchKills: KillWatchOptions | undefined;
}

export interface ToolCall {
  readonly tool: string;
  readonly args?: Record<string, unknown> | undefined;
  /** the target, `type:id` (e.g. `ticket:T-1042`) */
  readonly resource?: string | undefined;
  readonly callId?: string | undefined;
}

export interface CallOptions {
  readonly signal?: AbortSignal | undefined;
  readonly approval?: Partial<ApprovalWait> | undefined;
}

export interface GuardOptions<A extends unknown[]> {
  /** the call's arguments as Mandate sees them (default: the first argument if it is an object, else `{input: first}`) */
  readonly args?: ((...a: A) => Record<string, unknown>) | undefined;
  /** the call's target, `type:id` */
  readonly resource?: ((...a: A) => string | undefined) | undefined;
  readonly approval?: Partial<ApprovalWait> | undefined;
  readonly signal?: ((...a: A) => AbortSignal | undefined) | undefined;
  /**
   * Where the call's AbortSignal goes in the function's arguments: given the call's arguments,
   * returns those to call the function with. The signal fires when the caller's own signal does and, with a kill watch, when
   * the task is killed, revoked, suspended, completed or expires (reason: MandateHaltedError) or
   * the watch is lost (KILL_WATCH_LOST). E.g. `(signal, [a]) => [a, signal]`.
   */
  readonly passSignal?: ((signal: AbortSignal, args: NoInfer<A>) => readonly unknown[]) | undefined;
}

const TERMINAL_TOKEN_REASONS = new Set(['TOKEN_REVOKED', 'TOKEN_EXPIRED']);

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && (Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null);
}

function defaultArgs(a: unknown[]): Record<string, unknown> {
  const first = a[0];
  if (isPlainObject(first)) return first;
  return first === undefined ? {} : { input: first };
}

/** The result as JSON the server can take, or undefined when it has no JSON form (a stream, a cycle). */
function asJson(value: unknown): unknown {
  if (value === undefined) return null;
  if (typeof value === 'object' && value !== null && (Symbol.asyncIterator in value || (Symbol.iterator in value && !Array.isArray(value)))) return undefined;
  try {
    const text = JSON.stringify(value);
    return text === undefined ? undefined : (JSON.parse(text) as unknown);
  } catch {
    return undefined;
  }
}

/** What a halted call is reported as (its outcome): why it was cut off. */
function haltedOutcome(e: unknown): Record<string, unknown> {
  if (e instanceof MandateHaltedError) return { halted: true, code: e.code, reason: e.reason };
  return { halted: true, code: e instanceof MandateSdkError ? e.code : 'HALTED' };
}

/** `p`, or the signal's reason the moment it fires first. */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e as Error);
      },
    );
  });
}

/**
 * One task under one mandate: holds the task token, renews it before it expires, and asks
 * Mandate before every tool call. A guarded tool runs only on an explicit `allow`.
 */
export class MandateTask {
  readonly id: string;
  readonly agentId: string | undefined;
  readonly mandateHash: string | undefined;
  private readonly rt: TaskRuntime;
  private current: IssuedTask;
  /** when the current token arrived (the client's clock) */
  private issuedAt: number;
  private renewing: Promise<void> | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private ended = false;
  private watch: KillWatch | undefined;
  private readonly listeners = new Set<(token: string, expiresAt: number) => void>();

  constructor(rt: TaskRuntime, issued: IssuedTask) {
    this.rt = rt;
    this.current = issued;
    this.issuedAt = rt.now();
    this.id = issued.taskId;
    this.agentId = issued.agentId;
    this.mandateHash = issued.mandateHash;
    this.schedule();
    if (rt.watchKills !== undefined) this.watchKills(rt.watchKills);
  }

  /**
   * Subscribes to this task's end (`GET /v1/tasks/:id/events`, server-sent events, reconnected
   * with backoff): from now on each guarded call's AbortSignal fires the moment the task is
   * killed (its own kill, its agent's, an ancestor task's), revoked, suspended, completed or
   * expires, and the call is cut off with MandateHaltedError (HALTED); once the stream has been
   * away for `lostAfterMs`, guarded calls fail closed with KILL_WATCH_LOST until it is back.
   * One watch per task: a second call returns the first.
   */
  watchKills(opts: KillWatchOptions = {}): KillWatch {
    this.watch ??= new KillWatch({ http: this.rt.http, taskId: this.id, token: () => this.freshToken(), now: this.rt.now, random: this.rt.random, onError: this.rt.onError }, opts);
    return this.watch;
  }

  /** the task's kill watch, once started */
  get killWatch(): KillWatch | undefined {
    return this.watch;
  }

  /** the current task token (it changes at each renewal) */
  get token(): string {
    return this.current.token;
  }

  /** when the current token expires, in milliseconds since the epoch */
  get tokenExpiresAt(): number {
    return this.current.tokenExpiresAt;
  }

  /** how long before expiry to renew: the configured lead, at most half the token's remaining life at issue */
  private renewLeadMs(): number {
    return Math.min(this.rt.renewBeforeMs, Math.max(0, (this.current.tokenExpiresAt - this.issuedAt) / 2));
  }

  private needsRenewal(): boolean {
    return this.rt.now() >= this.current.tokenExpiresAt - this.renewLeadMs();
  }

  private schedule(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.rt.autoRenew || this.ended) return;
    const delay = Math.max(1_000, this.current.tokenExpiresAt - this.renewLeadMs() - this.rt.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.renew().catch((e: unknown) => {
        this.rt.onError(e);
        // an outage may pass: try again while the token lives (a call also renews on its way);
        // a refusal (the task ended, its hard end reached) will not
        const transient = e instanceof MandateSdkError && e.code === 'UNAVAILABLE';
        if (transient && !this.ended && this.rt.now() < this.current.tokenExpiresAt) this.schedule();
      });
    }, delay);
    // a background renewal must never keep a process alive (Node; a no-op elsewhere)
    (this.timer as { unref?: () => void }).unref?.();
  }

  /**
   * Calls `listener` with every new token (after each renewal), e.g. to hand it to another
   * enforcement point such as `mandate mcp --stdio`. Returns a function that stops it.
   */
  onTokenChange(listener: (token: string, expiresAt: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Trades the current token for a fresh one (`POST /v1/tasks/:id/renew`); the old one is
   * revoked. Concurrent callers share one renewal. It takes no AbortSignal: a renewal given up
   * half-way could leave the old token revoked and the new one unseen.
   */
  renew(): Promise<void> {
    this.renewing ??= (async () => {
      try {
        const res = await this.rt.http.send({ method: 'POST', path: `/v1/tasks/${encodeURIComponent(this.id)}/renew`, kind: 'write', token: this.current.token, body: {} });
        const next = parseIssued(res.json);
        if (next.taskId !== this.id) throw new MandateSdkError('PROTOCOL_ERROR', `renewal answered for task ${next.taskId}, not ${this.id}`);
        this.current = next;
        this.issuedAt = this.rt.now();
        this.schedule();
        for (const listener of this.listeners) {
          try {
            listener(next.token, next.tokenExpiresAt);
          } catch (e) {
            this.rt.onError(e);
          }
        }
      } finally {
        this.renewing = undefined;
      }
    })();
    return this.renewing;
  }

  private async freshToken(): Promise<string> {
    if (this.renewing) await this.renewing;
    if (this.needsRenewal()) await this.renew();
    return this.current.token;
  }

  /**
   * Asks Mandate about one call (`POST /v1/authorize`). A deny or a hold is a returned
   * decision here; an error is thrown. {@link check} and {@link guard} turn them into errors.
   */
  async authorize(call: ToolCall, opts: { readonly signal?: AbortSignal | undefined } = {}): Promise<Decision> {
    if (typeof call.tool !== 'string' || call.tool === '') throw new TypeError('call.tool must be a tool name');
    const body = { tool: call.tool, args: call.args ?? {}, ...(call.resource !== undefined ? { resource: call.resource } : {}), ...(call.callId !== undefined ? { call_id: call.callId } : {}), task_id: this.id };
    const ask = async (token: string) => {
      const res = await this.rt.http.send({ method: 'POST', path: '/v1/authorize', kind: 'write', token, body, signal: opts.signal });
      const d = parseDecision(res.json);
      if (d.taskId !== undefined && d.taskId !== this.id) throw new MandateSdkError('PROTOCOL_ERROR', `the decision is for task ${d.taskId}, not ${this.id}`);
      return d;
    };
    const used = await this.freshToken();
    const d = await ask(used);
    // our own renewal revoked the token under a call in flight: ask once more with the new one
    if (d.effect === 'deny' && d.reasons.some((r) => TERMINAL_TOKEN_REASONS.has(r)) && this.current.token !== used) {
      return ask(await this.freshToken());
    }
    return d;
  }

  /**
   * Authorizes a call and resolves only with an `allow`. A deny throws
   * {@link MandateDeniedError}; a hold waits for a human's approval (asking again, which spends
   * the approval) and throws {@link MandateApprovalRequiredError} when the wait runs out.
   */
  async check(call: ToolCall, opts: CallOptions = {}): Promise<Decision> {
    const wait = { ...this.rt.approval, ...opts.approval };
    const started = this.rt.now();
    const sleep = this.rt.sleep ?? abortableSleep;
    const announced = new Set<string>();
    for (;;) {
      const d = await this.authorize(call, { signal: opts.signal });
      switch (d.effect) {
        case 'allow':
          return d;
        case 'deny':
          throw new MandateDeniedError({ tool: call.tool, callId: d.callId, reasons: d.reasons, policyIds: d.policyIds });
        case 'approval_required': {
          const approvalId = d.approvalId as string;
          if (!announced.has(approvalId)) {
            announced.add(approvalId);
            try {
              wait.onPending?.({ approvalId, tool: call.tool, callId: d.callId });
            } catch (e) {
              this.rt.onError(e);
            }
          }
          const waited = this.rt.now() - started;
          if (waited + wait.pollIntervalMs > wait.timeoutMs) {
            throw new MandateApprovalRequiredError({ tool: call.tool, callId: d.callId, reasons: d.reasons, policyIds: d.policyIds, approvalId }, waited);
          }
          await sleep(wait.pollIntervalMs, opts.signal);
        }
      }
    }
  }

  /**
   * Wraps a tool function so that every invocation is authorized first. The function runs only
   * after an `allow`; a deny, a hold that runs out, or any error throws and the function does
   * not run.
   */
  guard<A extends unknown[], R>(tool: string, fn: (...a: A) => R | Promise<R>, opts: GuardOptions<A> = {}): (...a: A) => Promise<Awaited<R>> {
    if (typeof fn !== 'function') throw new TypeError('guard needs a function');
    return async (...a: A): Promise<Awaited<R>> => {
      // a task known to have ended, or a watch lost: refused before anything is asked
      this.watch?.check();
      const args = opts.args ? opts.args(...a) : defaultArgs(a);
      const callerSignal = opts.signal?.(...a);
      const decision = await this.check({ tool, args, resource: opts.resource?.(...a) }, { signal: callerSignal, approval: opts.approval });
      let halt: ReturnType<KillWatch['callSignal']> | undefined;
      try {
        halt = this.watch?.callSignal();
      } catch (e) {
        await this.reportOutcome(decision.callId, haltedOutcome(e), true);
        throw e;
      }
      const signals = [halt?.signal, callerSignal].filter((x) => x !== undefined);
      const signal = signals.length > 1 ? AbortSignal.any(signals) : signals[0];
      let result: Awaited<R>;
      try {
        // what passSignal returns is the function's own arguments (their type is the caller's to keep right)
        const callArgs = signal !== undefined && opts.passSignal ? (opts.passSignal(signal, a) as A) : a;
        const call = Promise.resolve().then(() => fn(...callArgs));
        // a halt answers the caller at once, whether or not the function heeds its signal
        result = await (halt ? untilAborted(call, halt.signal) : call);
      } catch (e) {
        if (halt?.signal.aborted === true && e === halt.signal.reason) {
          await this.reportOutcome(decision.callId, haltedOutcome(e), true);
          throw e;
        }
        await this.reportOutcome(decision.callId, e instanceof Error ? `${e.name}: ${e.message}` : String(e), true);
        throw e;
      } finally {
        halt?.release();
      }
      await this.reportOutcome(decision.callId, result);
      return result;
    };
  }

  /**
   * Reports what an allowed call returned (`POST /v1/outcomes`): Mandate audits it by digest and
   * remembers its values, so a later call whose argument came only from an untrusted tool's
   * output is seen as such (provenance). Learns from a "no route" 404 that a server predates
   * the endpoint. Never throws: the call has already happened. True when the server took it.
   */
  async reportOutcome(callId: string, result: unknown, isError = false): Promise<boolean> {
    const o = this.rt.outcomes;
    if (!o.enabled || o.supported === false) return false;
    const json = asJson(result);
    if (json === undefined) {
      this.rt.onError(new TypeError(`the result of call ${callId} has no JSON form; its outcome was not reported`));
      return false;
    }
    try {
      const body = { call_id: callId, result: json, ...(isError ? { is_error: true } : {}) };
      await this.rt.http.send({ method: 'POST', path: '/v1/outcomes', kind: 'write', token: await this.freshToken(), body });
      o.supported = true;
      return true;
    } catch (e) {
      if (e instanceof MandateApiError && e.status === 404 && e.serverCode === 'NOT_FOUND' && /no route/i.test(e.message)) o.supported = false;
      else this.rt.onError(e);
      return false;
    }
  }

  /**
   * Hands a narrower mandate to a sub-agent (`POST /v1/tasks/:id/delegate`). The child's
   * workload token proves who the sub-agent is; the returned task is the child's.
   */
  async delegate(opts: { readonly workloadToken: WorkloadTokenSource; readonly mandate: Record<string, unknown>; readonly signal?: AbortSignal | undefined }): Promise<MandateTask> {
    const workload = await resolveWorkloadToken(opts.workloadToken);
    const token = await this.freshToken();
    const res = await this.rt.http.send({ method: 'POST', path: `/v1/tasks/${encodeURIComponent(this.id)}/delegate`, kind: 'write', token, body: { workload_token: workload, mandate: opts.mandate }, signal: opts.signal });
    return new MandateTask(this.rt, parseIssued(res.json));
  }

  /** Ends the task (`POST /v1/tasks/:id/complete`): its tokens, and its children's, stop working. */
  async complete(signal?: AbortSignal): Promise<void> {
    const token = await this.freshToken();
    await this.rt.http.send({ method: 'POST', path: `/v1/tasks/${encodeURIComponent(this.id)}/complete`, kind: 'write', token, body: {}, signal });
    this.close();
  }

  /** Stops background renewal (and the kill watch) without ending the task on the server. */
  close(): void {
    this.ended = true;
    this.watch?.close();
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
