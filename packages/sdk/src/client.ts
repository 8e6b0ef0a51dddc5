import type { DpopKeyPair } from './dpop.ts';
import { HttpClient, type RetryOptions } from './http.ts';
import type { KillWatchOptions } from './kill-watch.ts';
import { MandateTask, type ApprovalWait, type TaskRuntime } from './task.ts';
import { parseIssued } from './wire.ts';
import { resolveWorkloadToken, type WorkloadTokenSource } from './workload.ts';

export interface MandateClientOptions {
  /** the Mandate server, e.g. `https://mandate.internal:8787` */
  readonly url: string;
  /** the agent's workload token: a string, or a function asked at each task start */
  readonly workloadToken?: WorkloadTokenSource | undefined;
  /** per HTTP attempt (default 10 s) */
  readonly timeoutMs?: number | undefined;
  /** backoff for retryable failures (default 3 retries, 100 ms base, 2 s cap, full jitter) */
  readonly retry?: Partial<RetryOptions> | undefined;
  /** how a guarded call waits for a human's approval (default: up to 2 minutes, polling every 2 s) */
  readonly approval?: Partial<ApprovalWait> | undefined;
  /** renew a task token this long before it expires (default 60 s, at most half its lifetime) */
  readonly renewBeforeMs?: number | undefined;
  /** renew in the background even while no call is made (default true; the timer never keeps a process alive) */
  readonly autoRenew?: boolean | undefined;
  /** report each guarded call's result (`POST /v1/outcomes`, for provenance and audit) to servers that take it (default true) */
  readonly reportOutcomes?: boolean | undefined;
  /**
   * Binds the agent's tasks to this key (RFC 9449 DPoP): an Ed25519 or ECDSA P-256 CryptoKeyPair
   * (the private half may be non-extractable). The task start sends a proof, so the task token
   * is issued bound to the key (`cnf.jkt`); every later request with the token (authorize,
   * outcomes, renew, complete, delegate) sends a fresh proof over its method and URL. A stolen
   * token is then useless without the key. `url` must be the server's public URL.
   */
  readonly dpopKey?: DpopKeyPair | undefined;
  /**
   * Watch every task of this client for its end (`task.watchKills`): `true` for the defaults,
   * or the options (`lostAfterMs`, the reconnect backoff, `onState`). Off by default.
   */
  readonly watchKills?: boolean | KillWatchOptions | undefined;
  /** told of failures that do not reach a caller: a background renewal, an outcome report */
  readonly onError?: ((error: unknown) => void) | undefined;
  /** injected for tests */
  readonly fetch?: typeof fetch | undefined;
  readonly now?: (() => number) | undefined;
  readonly random?: (() => number) | undefined;
  readonly sleep?: ((ms: number, signal?: AbortSignal) => Promise<void>) | undefined;
}

export interface StartTaskOptions {
  /** the declared mandate: purpose, tools, data classes, budgets… (see docs/concepts.md) */
  readonly mandate: Record<string, unknown>;
  /** overrides the client's workload token source for this task */
  readonly workloadToken?: WorkloadTokenSource | undefined;
  readonly signal?: AbortSignal | undefined;
}

export const DEFAULT_APPROVAL_WAIT: ApprovalWait = { timeoutMs: 120_000, pollIntervalMs: 2_000 };

/**
 * The agent's handle on Mandate: starts tasks under a declared mandate. Runs wherever `fetch`
 * does (Node, Deno, Bun, edge runtimes).
 */
export class MandateClient {
  private readonly rt: TaskRuntime;
  private readonly workloadToken: WorkloadTokenSource | undefined;

  constructor(opts: MandateClientOptions) {
    const http = new HttpClient({ baseUrl: opts.url, fetch: opts.fetch, timeoutMs: opts.timeoutMs, retry: opts.retry, random: opts.random, sleep: opts.sleep, dpopKey: opts.dpopKey });
    const approval = { ...DEFAULT_APPROVAL_WAIT, ...opts.approval };
    if (!(approval.timeoutMs >= 0) || !(approval.pollIntervalMs > 0)) throw new TypeError('approval.timeoutMs must be ≥ 0 and approval.pollIntervalMs > 0');
    this.rt = {
      http,
      now: opts.now ?? Date.now,
      sleep: opts.sleep,
      approval,
      renewBeforeMs: opts.renewBeforeMs ?? 60_000,
      autoRenew: opts.autoRenew ?? true,
      outcomes: { enabled: opts.reportOutcomes ?? true, supported: undefined },
      onError: opts.onError ?? (() => undefined),
      random: opts.random ?? Math.random,
      watchKills: opts.watchKills === true ? {} : opts.watchKills === false ? undefined : opts.watchKills,
    };
    this.workloadToken = opts.workloadToken;
  }

  /** Declares a mandate and receives a task token (`POST /v1/tasks`). */
  async startTask(opts: StartTaskOptions): Promise<MandateTask> {
    const source = opts.workloadToken ?? this.workloadToken;
    if (source === undefined) throw new TypeError('no workload token: pass workloadToken to the client or to startTask');
    const workload = await resolveWorkloadToken(source);
    const res = await this.rt.http.send({ method: 'POST', path: '/v1/tasks', kind: 'write', token: workload, body: { mandate: opts.mandate }, signal: opts.signal });
    return new MandateTask(this.rt, parseIssued(res.json));
  }

  /** A task whose token was obtained elsewhere (e.g. handed to a sub-agent by its parent). */
  resumeTask(task: { readonly taskId: string; readonly token: string; readonly tokenExpiresAt: number }): MandateTask {
    return new MandateTask(this.rt, { agentId: undefined, mandateHash: undefined, taskExpiresAt: undefined, ...task });
  }
}
