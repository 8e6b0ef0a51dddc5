import { createDpopProof, type DpopKeyPair } from './dpop.ts';
import { MandateApiError, MandateSdkError } from './errors.ts';

/** Exponential backoff with full jitter: attempt n waits random() × min(max, base × 2ⁿ). */
export interface RetryOptions {
  /** retries after the first attempt (0 turns retrying off) */
  readonly retries: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryOptions = { retries: 3, baseDelayMs: 100, maxDelayMs: 2_000 };

/**
 * How safe a request is to send twice. `read`: any network error, timeout, 429 or 5xx is
 * retried. `write` (an authorization spends budget, a renewal revokes the old token): retried
 * only when the connection was refused, so the server never saw the first attempt.
 */
export type RequestKind = 'read' | 'write';

export interface HttpOptions {
  readonly baseUrl: string;
  readonly fetch?: typeof fetch | undefined;
  /** per attempt, including reading the body */
  readonly timeoutMs?: number | undefined;
  readonly retry?: Partial<RetryOptions> | undefined;
  /** injected for tests; default Math.random and a timer */
  readonly random?: (() => number) | undefined;
  readonly sleep?: ((ms: number, signal?: AbortSignal) => Promise<void>) | undefined;
  /** largest response body read, in bytes */
  readonly maxResponseBytes?: number | undefined;
  /** sign every request that carries a token with a fresh DPoP proof made with this key */
  readonly dpopKey?: DpopKeyPair | undefined;
  /** the clock of the proofs' `iat` (default Date.now) */
  readonly now?: (() => number) | undefined;
}

export interface HttpRequest {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly kind: RequestKind;
  readonly token?: string | undefined;
  readonly body?: unknown;
  readonly signal?: AbortSignal | undefined;
}

export interface HttpResponse {
  readonly status: number;
  readonly json: unknown;
}

const NOT_CONNECTED = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);
const RETRY_STATUS = new Set([429, 500, 502, 503, 504]);

export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(aborted(signal));
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(aborted(signal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function aborted(signal: AbortSignal | undefined): MandateSdkError {
  return new MandateSdkError('ABORTED', 'the caller aborted the request', { cause: signal?.reason });
}

/** The error code of a failed fetch, where the runtime gives one (undici puts it on `cause`). */
function networkCode(e: unknown): string | undefined {
  for (let cur: unknown = e, depth = 0; cur !== null && typeof cur === 'object' && depth < 4; depth += 1) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

class TooLarge extends Error {}

/** Reads the body, but no more than `max` bytes: a hostile server cannot make the agent buffer gigabytes. */
async function readBounded(res: Response, max: number): Promise<string> {
  if (res.body === null) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      await reader.cancel().catch(() => undefined);
      throw new TooLarge();
    }
    chunks.push(value);
  }
  const all = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.byteLength;
  }
  return new TextDecoder().decode(all);
}

/** Whether the server refused the request for want of its current DPoP nonce. */
function askedForNonce(r: HttpResponse | Failure): boolean {
  if ('json' in r) {
    const d = r.json as { effect?: unknown; reasons?: unknown } | null;
    return d !== null && typeof d === 'object' && d.effect === 'deny' && Array.isArray(d.reasons) && d.reasons.includes('DPOP_NONCE_REQUIRED');
  }
  return r.error instanceof MandateApiError && r.error.serverCode === 'DPOP_NONCE_REQUIRED';
}

interface Failure {
  readonly error: MandateSdkError;
  readonly retryable: boolean;
}

/**
 * A tiny JSON-over-HTTP client on `fetch` alone (Node, Deno, Bun, edge runtimes). Every
 * failure is a thrown {@link MandateSdkError}; nothing here ever turns an error into an answer.
 */
export class HttpClient {
  private readonly baseUrl: string;
  private readonly fetchFn: typeof fetch;
  private readonly timeoutMs: number;
  private readonly retry: RetryOptions;
  private readonly random: () => number;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  private readonly maxResponseBytes: number;
  private readonly dpopKey: DpopKeyPair | undefined;
  private readonly now: () => number;
  /** the last `DPoP-Nonce` the server gave (RFC 9449 §8) */
  private dpopNonce: string | undefined;

  constructor(opts: HttpOptions) {
    let url: URL;
    try {
      url = new URL(opts.baseUrl);
    } catch {
      throw new TypeError(`baseUrl is not a URL: ${opts.baseUrl}`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError('baseUrl must be http: or https:');
    this.baseUrl = url.href.replace(/\/+$/, '');
    const f = opts.fetch ?? globalThis.fetch;
    if (typeof f !== 'function') throw new TypeError('no fetch in this runtime: pass options.fetch');
    this.fetchFn = f;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.retry = { ...DEFAULT_RETRY, ...opts.retry };
    if (!(this.timeoutMs > 0)) throw new TypeError('timeoutMs must be positive');
    if (!(this.retry.retries >= 0 && this.retry.baseDelayMs >= 0 && this.retry.maxDelayMs >= 0)) throw new TypeError('retry options must be non-negative');
    this.random = opts.random ?? Math.random;
    this.sleep = opts.sleep ?? abortableSleep;
    this.maxResponseBytes = opts.maxResponseBytes ?? 4 * 1024 * 1024;
    this.dpopKey = opts.dpopKey;
    this.now = opts.now ?? Date.now;
  }

  /** The delay before retry number `attempt` (0-based): full jitter over an exponential cap. */
  backoffMs(attempt: number): number {
    const cap = Math.min(this.retry.maxDelayMs, this.retry.baseDelayMs * 2 ** attempt);
    return Math.floor(this.random() * cap);
  }

  /** Sends the request; resolves only with a 2xx and a JSON body, otherwise throws. */
  async send(req: HttpRequest): Promise<HttpResponse> {
    let nonceRetried = false;
    for (let attempt = 0; ; attempt += 1) {
      if (req.signal?.aborted) throw aborted(req.signal);
      const nonceBefore = this.dpopNonce;
      const r = await this.once(req);
      // a DPoP nonce challenge (an error, or a decision denied for it): once more, with the nonce
      if (this.dpopKey !== undefined && req.token !== undefined && !nonceRetried && this.dpopNonce !== undefined && this.dpopNonce !== nonceBefore && askedForNonce(r)) {
        nonceRetried = true;
        attempt -= 1;
        continue;
      }
      if ('json' in r) return r;
      if (!r.retryable || attempt >= this.retry.retries || r.error.code === 'ABORTED') throw r.error;
      await this.sleep(this.backoffMs(attempt), req.signal);
    }
  }

  private async once(req: HttpRequest): Promise<HttpResponse | Failure> {
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, this.timeoutMs);
    const onAbort = () => controller.abort();
    req.signal?.addEventListener('abort', onAbort, { once: true });
    let res: Response;
    try {
      const made = await this.headersFor(req, 'application/json');
      if ('error' in made) return made;
      const headers = made.headers;
      try {
        res = await this.fetchFn(`${this.baseUrl}${req.path}`, {
          method: req.method,
          headers,
          body: req.body === undefined ? null : JSON.stringify(req.body),
          signal: controller.signal,
          redirect: 'error',
        });
      } catch (e) {
        if (req.signal?.aborted) return { error: aborted(req.signal), retryable: false };
        if (timedOut) return { error: new MandateSdkError('UNAVAILABLE', `no answer from Mandate within ${this.timeoutMs} ms (${req.method} ${req.path})`, { cause: e }), retryable: req.kind === 'read' };
        const code = networkCode(e);
        const notConnected = code !== undefined && NOT_CONNECTED.has(code);
        return {
          error: new MandateSdkError('UNAVAILABLE', `cannot reach Mandate at ${this.baseUrl} (${code ?? (e as Error).message})`, { cause: e }),
          retryable: req.kind === 'read' || notConnected,
        };
      }
      const nonce = res.headers.get('dpop-nonce');
      if (nonce !== null && nonce !== '' && nonce.length <= 256) this.dpopNonce = nonce;
      let text: string;
      try {
        text = await readBounded(res, this.maxResponseBytes);
      } catch (e) {
        if (e instanceof TooLarge) return { error: new MandateSdkError('PROTOCOL_ERROR', `Mandate's answer is larger than ${this.maxResponseBytes} bytes`), retryable: false };
        if (req.signal?.aborted) return { error: aborted(req.signal), retryable: false };
        const why = timedOut ? `timed out after ${this.timeoutMs} ms` : (e as Error).message;
        return { error: new MandateSdkError('UNAVAILABLE', `Mandate's answer broke off (${why})`, { cause: e }), retryable: req.kind === 'read' };
      }
      return this.interpret(req, res, text);
    } finally {
      clearTimeout(timer);
      req.signal?.removeEventListener('abort', onAbort);
    }
  }

  /** The request's headers: its token, and a fresh DPoP proof over it when the client holds a key. */
  private async headersFor(req: HttpRequest, accept: string): Promise<{ readonly headers: Record<string, string> } | Failure> {
    const headers: Record<string, string> = { accept };
    if (req.token !== undefined) headers['authorization'] = `Bearer ${req.token}`;
    if (req.body !== undefined) headers['content-type'] = 'application/json';
    if (this.dpopKey !== undefined && req.token !== undefined) {
      try {
        headers['dpop'] = await createDpopProof(this.dpopKey, { method: req.method, url: `${this.baseUrl}${req.path}`, accessToken: req.token, nonce: this.dpopNonce, now: this.now() });
      } catch (e) {
        // never send a key-bound request unsigned: that would only be denied, or leak the token's use
        return { error: new MandateSdkError('DPOP_KEY_INVALID', `cannot make a DPoP proof: ${(e as Error).message}`, { cause: e }), retryable: false };
      }
    }
    return { headers };
  }

  /**
   * Opens a server-sent event stream (a GET): resolves with the response once its headers say
   * 200 `text/event-stream`, the body left to the caller to read. A refusal throws as `send`
   * does; nothing is retried (the caller reconnects). Only the wait for the headers times out:
   * the stream lives until the server ends it or `signal` fires.
   */
  async openStream(req: { readonly path: string; readonly token: string; readonly signal: AbortSignal }): Promise<Response> {
    const r: HttpRequest = { method: 'GET', path: req.path, kind: 'read', token: req.token, signal: req.signal };
    if (req.signal.aborted) throw aborted(req.signal);
    const made = await this.headersFor(r, 'text/event-stream');
    if ('error' in made) throw made.error;
    const headers = made.headers;
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, this.timeoutMs);
    const onAbort = () => controller.abort();
    req.signal.addEventListener('abort', onAbort, { once: true });
    let res: Response;
    try {
      res = await this.fetchFn(`${this.baseUrl}${req.path}`, { method: 'GET', headers, signal: controller.signal, redirect: 'error' });
    } catch (e) {
      req.signal.removeEventListener('abort', onAbort);
      if (req.signal.aborted) throw aborted(req.signal);
      if (timedOut) throw new MandateSdkError('UNAVAILABLE', `no answer from Mandate within ${this.timeoutMs} ms (GET ${req.path})`, { cause: e });
      throw new MandateSdkError('UNAVAILABLE', `cannot reach Mandate at ${this.baseUrl} (${networkCode(e) ?? (e as Error).message})`, { cause: e });
    } finally {
      clearTimeout(timer);
    }
    const nonce = res.headers.get('dpop-nonce');
    if (nonce !== null && nonce !== '' && nonce.length <= 256) this.dpopNonce = nonce;
    if (res.ok && (res.headers.get('content-type') ?? '').startsWith('text/event-stream') && res.body !== null) return res;
    let text = '';
    try {
      text = await readBounded(res, 64 * 1024);
    } catch {
      // the status says enough
    } finally {
      req.signal.removeEventListener('abort', onAbort);
    }
    const r2 = this.interpret(r, res, text);
    throw 'error' in r2 ? r2.error : new MandateSdkError('PROTOCOL_ERROR', `Mandate answered GET ${req.path} with ${res.headers.get('content-type') ?? 'no content type'}, not an event stream`);
  }

  private interpret(req: HttpRequest, res: Response, text: string): HttpResponse | Failure {
    const retryableStatus = req.kind === 'read' && RETRY_STATUS.has(res.status);
    let json: unknown;
    let parsed = false;
    try {
      json = JSON.parse(text);
      parsed = true;
    } catch {
      // handled below: a success must be JSON, an error may be a bare proxy page
    }
    if (res.status >= 200 && res.status < 300) {
      if (!parsed) return { error: new MandateSdkError('PROTOCOL_ERROR', `Mandate answered ${res.status} with a body that is not JSON (${req.method} ${req.path})`), retryable: false };
      return { status: res.status, json };
    }
    const env = parsed ? (json as { error?: { code?: unknown; message?: unknown; requestId?: unknown } } | null)?.error : undefined;
    const code = typeof env?.code === 'string' ? env.code : `HTTP_${res.status}`;
    const message = typeof env?.message === 'string' ? env.message.slice(0, 500) : (res.statusText || 'no error envelope');
    const requestId = typeof env?.requestId === 'string' ? env.requestId : (res.headers.get('x-request-id') ?? undefined);
    return { error: new MandateApiError(res.status, code, message, requestId), retryable: retryableStatus };
  }
}
