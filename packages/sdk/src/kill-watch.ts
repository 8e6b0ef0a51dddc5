/**
 * A task's kill watch: one long-lived server-sent event stream (`GET /v1/tasks/:id/events`) that
 * hears the moment the task is killed, revoked, suspended, completed or expires, kept up with
 * reconnects (exponential backoff, full jitter) and a liveness check on the server's heartbeats.
 * Guarded calls take their AbortSignal from here; when the stream cannot be kept for
 * `lostAfterMs`, they fail closed (KILL_WATCH_LOST) until it is back.
 */
import { MandateHaltedError, MandateSdkError } from './errors.ts';
import { abortableSleep, type HttpClient } from './http.ts';

export interface KillWatchOptions {
  /** how long guarded calls go on without a live stream before they fail closed with KILL_WATCH_LOST (default 30 s) */
  readonly lostAfterMs?: number | undefined;
  /** reconnect backoff: retry n waits random() × min(maxDelayMs, baseDelayMs × 2ⁿ) (default 250 ms, 5 s) */
  readonly baseDelayMs?: number | undefined;
  readonly maxDelayMs?: number | undefined;
  /** told of every change of state, e.g. to log a lost watch */
  readonly onState?: ((state: KillWatchState, why: string) => void) | undefined;
}

/**
 * `connecting` (not live yet), `live`, `reconnecting` (the stream broke; calls go on until
 * `lostAfterMs`), `lost` (calls fail closed), `ended` (the task ended: every call is halted),
 * `closed` (stopped by the agent).
 */
export type KillWatchState = 'connecting' | 'live' | 'reconnecting' | 'lost' | 'ended' | 'closed';

/** The end of a task, as the stream tells it. */
export interface TaskEndNotice {
  readonly taskId: string;
  readonly state: string;
  /** TASK_KILLED, TASK_REVOKED, TASK_SUSPENDED, TASK_COMPLETED, TASK_EXPIRED */
  readonly code: string;
  /** the words given with it (an operator's kill reason) */
  readonly reason: string;
  readonly at: string;
}

export interface KillWatchDeps {
  readonly http: HttpClient;
  readonly taskId: string;
  /** the task's current token (renewed on the way when due) */
  readonly token: () => Promise<string>;
  readonly now: () => number;
  readonly random: () => number;
  readonly onError: (e: unknown) => void;
}

/** the longest event the stream may send; past it the stream is dropped and opened again */
const MAX_EVENT_CHARS = 16 * 1024;

export class KillWatch {
  private readonly d: KillWatchDeps;
  private readonly lostAfterMs: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly onState: KillWatchOptions['onState'];
  private readonly ended = new AbortController();
  private readonly stopped = new AbortController();
  private readonly calls = new Set<AbortController>();
  private current: AbortController | undefined;
  private stateNow: KillWatchState = 'connecting';
  /** when the stream last showed it was alive (or the watch started) */
  private aliveAt: number;
  /** a live stream silent this long is taken for dead (from the server's heartbeat) */
  private silentMs = 30_000;
  private readonly timer: ReturnType<typeof setInterval>;
  private endNotice: TaskEndNotice | undefined;
  private lostBecause = '';

  constructor(d: KillWatchDeps, opts: KillWatchOptions = {}) {
    this.d = d;
    this.lostAfterMs = opts.lostAfterMs ?? 30_000;
    this.baseDelayMs = opts.baseDelayMs ?? 250;
    this.maxDelayMs = opts.maxDelayMs ?? 5_000;
    if (!(this.lostAfterMs > 0) || !(this.baseDelayMs >= 0) || !(this.maxDelayMs >= this.baseDelayMs)) throw new TypeError('lostAfterMs must be positive, and 0 ≤ baseDelayMs ≤ maxDelayMs');
    this.onState = opts.onState;
    this.aliveAt = d.now();
    this.timer = setInterval(() => this.tick(), Math.max(50, Math.min(1_000, Math.floor(this.lostAfterMs / 4))));
    (this.timer as { unref?: () => void }).unref?.();
    void this.run();
  }

  /** aborts when the task ends (its reason is a MandateHaltedError), never for a lost stream */
  get signal(): AbortSignal {
    return this.ended.signal;
  }

  get state(): KillWatchState {
    return this.stateNow;
  }

  /** how the task ended, once it has */
  get end(): TaskEndNotice | undefined {
    return this.endNotice;
  }

  /** Throws what a new guarded call must be refused with now (HALTED, KILL_WATCH_LOST), if anything. */
  check(): void {
    if (this.endNotice) throw new MandateHaltedError(this.endNotice, 'the call before it started');
    if (this.stateNow === 'lost') throw this.lostError();
    if (this.stateNow === 'closed') throw new MandateSdkError('KILL_WATCH_LOST', `the kill watch of task ${this.d.taskId} was closed; guarded calls are refused`);
  }

  /**
   * The AbortSignal of one guarded call: it fires when the task ends or is suspended
   * (MandateHaltedError) or the watch is lost (KILL_WATCH_LOST). `release` when the call is done.
   */
  callSignal(): { readonly signal: AbortSignal; release(): void } {
    this.check();
    const c = new AbortController();
    this.calls.add(c);
    return { signal: c.signal, release: () => this.calls.delete(c) };
  }

  /** Stops watching (the task is done with); guarded calls are refused from now on. */
  close(): void {
    if (this.stateNow === 'closed') return;
    clearInterval(this.timer);
    this.stopped.abort();
    this.current?.abort();
    if (this.stateNow !== 'ended') this.setState('closed', 'closed by the agent');
  }

  private lostError(): MandateSdkError {
    return new MandateSdkError('KILL_WATCH_LOST', `no live kill watch for task ${this.d.taskId} for over ${this.lostAfterMs} ms (${this.lostBecause}); guarded calls fail closed until it is back`);
  }

  private setState(s: KillWatchState, why: string): void {
    if (this.stateNow === s) return;
    this.stateNow = s;
    try {
      this.onState?.(s, why);
    } catch (e) {
      this.d.onError(e);
    }
  }

  private haltCalls(reason: unknown): void {
    const calls = [...this.calls];
    this.calls.clear();
    for (const c of calls) c.abort(reason);
  }

  /** the task ended (killed, revoked, completed, expired): every call now and later is halted */
  private taskEnded(end: TaskEndNotice): void {
    if (this.endNotice) return;
    this.endNotice = end;
    clearInterval(this.timer);
    const halted = new MandateHaltedError(end);
    this.haltCalls(halted);
    this.ended.abort(halted);
    this.setState('ended', end.code);
    this.stopped.abort();
    this.current?.abort();
  }

  /** liveness: a silent stream is dropped; no live stream for lostAfterMs fails calls closed */
  private tick(): void {
    const quiet = this.d.now() - this.aliveAt;
    if (this.stateNow === 'live' && quiet > this.silentMs) {
      this.lostBecause = `no heartbeat for ${quiet} ms`;
      this.current?.abort();
    }
    if (this.stateNow !== 'live' && this.stateNow !== 'lost' && this.stateNow !== 'ended' && this.stateNow !== 'closed' && quiet > this.lostAfterMs) this.lose();
  }

  private lose(): void {
    this.setState('lost', this.lostBecause);
    this.haltCalls(this.lostError());
  }

  private async run(): Promise<void> {
    for (let attempt = 0; !this.stopped.signal.aborted; ) {
      const ctl = new AbortController();
      this.current = ctl;
      try {
        const res = await this.d.http.openStream({ path: `/v1/tasks/${encodeURIComponent(this.d.taskId)}/events`, token: await this.d.token(), signal: ctl.signal });
        if (await this.read(res, ctl)) attempt = 0;
        if (!this.lostBecause) this.lostBecause = 'the stream ended';
      } catch (e) {
        if (this.stopped.signal.aborted) return;
        this.lostBecause = e instanceof Error ? e.message.slice(0, 300) : String(e);
        // the server refused the stream (a token it no longer takes, an unknown task): no use waiting to fail closed
        const refused = e instanceof MandateSdkError && e.code !== 'UNAVAILABLE' && e.code !== 'ABORTED';
        if (refused && this.stateNow !== 'lost') this.lose();
        if (!refused && this.stateNow === 'connecting' && attempt === 0) this.d.onError(e);
      } finally {
        ctl.abort();
      }
      if (this.stopped.signal.aborted) return;
      if (this.stateNow === 'live') this.setState('reconnecting', this.lostBecause);
      const cap = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** Math.min(attempt, 30));
      attempt += 1;
      await abortableSleep(Math.floor(this.d.random() * cap), this.stopped.signal).catch(() => undefined);
    }
  }

  /** Reads one stream until it ends. True when it went live (its `ready` arrived). */
  private async read(res: Response, ctl: AbortController): Promise<boolean> {
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let buf = '';
    let live = false;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return live;
        if (live) this.aliveAt = this.d.now();
        buf += decoder.decode(value, { stream: true }).replace(/\r\n?/g, '\n');
        for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const went = this.onEvent(block);
          if (went === 'ready' && !live) {
            live = true;
            this.aliveAt = this.d.now();
            this.lostBecause = '';
            this.setState('live', 'stream open');
          }
          if (went === 'end') return live;
        }
        if (buf.length > MAX_EVENT_CHARS) throw new MandateSdkError('PROTOCOL_ERROR', `an event of the task stream is longer than ${MAX_EVENT_CHARS} characters`);
      }
    } catch (e) {
      if (ctl.signal.aborted || this.stopped.signal.aborted) return live;
      throw e instanceof MandateSdkError ? e : new MandateSdkError('UNAVAILABLE', `the task event stream broke off (${e instanceof Error ? e.message : String(e)})`, { cause: e });
    } finally {
      reader.cancel().catch(() => undefined);
    }
  }

  /** One event block; returns its type when it changes something here. */
  private onEvent(block: string): 'ready' | 'end' | undefined {
    let event = 'message';
    let data = '';
    for (const line of block.split('\n')) {
      if (line.startsWith('event:')) event = line.slice(6).trim();
      else if (line.startsWith('data:')) data += line.slice(5).trimStart();
    }
    if (event === 'ready') {
      const hb = Number((parseJson(data) as { heartbeat_ms?: unknown } | undefined)?.heartbeat_ms);
      // three heartbeats missed: the stream is dead, even if no socket error says so
      if (Number.isFinite(hb) && hb > 0) this.silentMs = Math.max(1_000, 3 * hb);
      return 'ready';
    }
    if (event !== 'end' && event !== 'suspended') return undefined;
    const d = parseJson(data) as Record<string, unknown> | undefined;
    const notice: TaskEndNotice = {
      taskId: this.d.taskId,
      state: typeof d?.['state'] === 'string' ? d['state'] : 'unknown',
      // an end the client cannot read is still an end
      code: typeof d?.['code'] === 'string' ? d['code'] : 'TASK_ENDED',
      reason: typeof d?.['reason'] === 'string' ? d['reason'].slice(0, 500) : '',
      at: typeof d?.['at'] === 'string' ? d['at'] : new Date(this.d.now()).toISOString(),
    };
    if (event === 'suspended') {
      // calls under way stop; new ones go to the server, which refuses them until the task is resumed
      this.haltCalls(new MandateHaltedError(notice));
      return undefined;
    }
    this.taskEnded(notice);
    return 'end';
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
