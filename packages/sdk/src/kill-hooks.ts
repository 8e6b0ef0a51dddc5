/**
 * For receivers of Mandate's kill hooks: checks that a delivery was signed with the hook's key,
 * is recent, and has not been seen before. WebCrypto only, so it runs wherever `crypto.subtle`
 * does (Node, Deno, Bun, edge runtimes).
 *
 * A delivery carries `x-mandate-delivery` (its id: the same on every retry of one kill to one
 * hook), `x-mandate-timestamp` (seconds since the epoch, when this attempt was signed) and
 * `x-mandate-signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<delivery id>.<body>">`.
 */

/** Remembers delivery ids; `remember` answers false for an id it already holds. */
export interface SeenDeliveries {
  remember(id: string, now: number): boolean | Promise<boolean>;
  /** lets an id go again: the receiver failed to act on it, so Mandate's retry must be let in */
  forget?(id: string): void | Promise<void>;
}

export interface MemorySeenDeliveriesOptions {
  /** how long an id is remembered; keep it longer than the hook's retention_ms (default 8 days) */
  readonly ttlMs?: number;
  /** ids held at most; past it the oldest is forgotten first (default 100 000) */
  readonly max?: number;
}

/**
 * Delivery ids in memory, for one process. Mandate retries a delivery until it lands, for as
 * long as the hook's retention_ms: an id forgotten earlier (a restart, `max` reached) lets a
 * retry through again; keep the ids in a shared store (a unique key in your database) to dedupe
 * across restarts and replicas.
 */
export class MemorySeenDeliveries implements SeenDeliveries {
  private readonly ttlMs: number;
  private readonly max: number;
  /** id → when it may be forgotten; insertion order is expiry order (one ttl for all) */
  private readonly ids = new Map<string, number>();

  constructor(opts: MemorySeenDeliveriesOptions = {}) {
    this.ttlMs = opts.ttlMs ?? 8 * 86_400_000;
    this.max = opts.max ?? 100_000;
    if (!(this.ttlMs > 0) || !Number.isSafeInteger(this.max) || this.max < 1) throw new TypeError('ttlMs must be positive and max a positive integer');
  }

  remember(id: string, now: number): boolean {
    for (const [old, until] of this.ids) {
      if (until > now) break;
      this.ids.delete(old);
    }
    if (this.ids.has(id)) return false;
    for (const old of this.ids.keys()) {
      if (this.ids.size < this.max) break;
      this.ids.delete(old);
    }
    this.ids.set(id, now + this.ttlMs);
    return true;
  }

  forget(id: string): void {
    this.ids.delete(id);
  }

  get size(): number {
    return this.ids.size;
  }
}

export type KillHookRefusal = 'KILL_HOOK_MALFORMED' | 'KILL_HOOK_BAD_SIGNATURE' | 'KILL_HOOK_STALE' | 'KILL_HOOK_REPLAYED';

/** The kill as the hook's body carries it. */
export interface KillHookEvent {
  readonly type: 'kill';
  readonly delivery: { readonly id: string; readonly hook: string; readonly attempt: number };
  readonly kill: {
    readonly id: string;
    readonly kind: 'agent' | 'task' | 'emergency_stop';
    readonly at: string;
    readonly target: { readonly agent: string } | { readonly task: string } | { readonly all: true };
    readonly reason: string;
    readonly by: string;
    readonly disabled_agent: string | null;
    readonly killed_tasks: readonly string[];
    readonly emergency_stop: boolean;
    readonly audit_seq: number | null;
  };
}

export type KillHookVerification =
  | { readonly ok: true; readonly deliveryId: string; readonly event: KillHookEvent }
  /** `deliveryId` is set for a replay: answer it 2xx (the kill was handled), act on nothing */
  | { readonly ok: false; readonly code: KillHookRefusal; readonly message: string; readonly deliveryId?: string };

/** Headers as a fetch `Request` has them, or as node:http's `req.headers`. */
export type HookHeaders = { get(name: string): string | null } | Readonly<Record<string, string | readonly string[] | undefined>>;

export interface VerifyKillHookOptions {
  /** the hook's signing key (its secret_file or secret_env) */
  readonly secret: string;
  readonly headers: HookHeaders;
  /** the raw body, exactly as received (not re-serialised JSON) */
  readonly body: string | Uint8Array;
  /** delivery ids already handled; a delivery is remembered only once its signature is good */
  readonly seen: SeenDeliveries;
  /** how far the signed time may be from now, either way (default 300 s) */
  readonly toleranceSec?: number;
  /** milliseconds since the epoch (default Date.now) */
  readonly now?: () => number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });
const DELIVERY_ID = /^[A-Za-z0-9._:-]{1,200}$/;
const SIGNATURE = /^sha256=([0-9a-f]{64})$/;

function header(h: HookHeaders, name: string): string | undefined {
  if (typeof h.get === 'function') return (h as { get(name: string): string | null }).get(name) ?? undefined;
  const record = h as Readonly<Record<string, string | readonly string[] | undefined>>;
  // node:http lower-cases header names; a framework's plain object may not
  const v = record[name] ?? Object.entries(record).find(([k]) => k.toLowerCase() === name)?.[1];
  return typeof v === 'string' ? v : undefined;
}

function refuse(code: KillHookRefusal, message: string, deliveryId?: string): KillHookVerification {
  return deliveryId === undefined ? { ok: false, code, message } : { ok: false, code, message, deliveryId };
}

/**
 * Verifies one kill hook delivery: the headers are well formed, the timestamp is within the
 * window, the signature over timestamp, delivery id and body is the hook key's, and the delivery
 * id is new. Never throws for a bad delivery: the answer says why (a stable code).
 */
export async function verifyKillHook(o: VerifyKillHookOptions): Promise<KillHookVerification> {
  const tolerance = o.toleranceSec ?? 300;
  if (o.secret.length < 16) throw new TypeError('the kill hook secret must be at least 16 characters');
  const deliveryId = header(o.headers, 'x-mandate-delivery');
  const timestamp = header(o.headers, 'x-mandate-timestamp');
  const signature = header(o.headers, 'x-mandate-signature');
  if (deliveryId === undefined || !DELIVERY_ID.test(deliveryId)) return refuse('KILL_HOOK_MALFORMED', 'x-mandate-delivery is missing or malformed');
  if (timestamp === undefined || !/^[0-9]{1,12}$/.test(timestamp)) return refuse('KILL_HOOK_MALFORMED', 'x-mandate-timestamp is missing or not whole seconds');
  const sig = signature === undefined ? null : SIGNATURE.exec(signature);
  if (!sig?.[1]) return refuse('KILL_HOOK_MALFORMED', 'x-mandate-signature is missing or not sha256=<64 hex digits>');
  const now = (o.now ?? Date.now)();
  const skew = Math.abs(now / 1000 - Number(timestamp));
  if (skew > tolerance) return refuse('KILL_HOOK_STALE', `signed ${Math.round(skew)} s from now; at most ${tolerance} s is accepted`);
  const body = typeof o.body === 'string' ? encoder.encode(o.body) : o.body;
  const prefix = encoder.encode(`${timestamp}.${deliveryId}.`);
  const signed = new Uint8Array(prefix.length + body.length);
  signed.set(prefix);
  signed.set(body, prefix.length);
  const key = await crypto.subtle.importKey('raw', encoder.encode(o.secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']);
  const mac = new Uint8Array(sig[1].match(/../g)?.map((x) => parseInt(x, 16)) ?? []);
  // WebCrypto compares in constant time
  if (!(await crypto.subtle.verify('HMAC', key, mac, signed))) return refuse('KILL_HOOK_BAD_SIGNATURE', 'the signature is not the one this secret makes for this timestamp, delivery id and body');
  let event: KillHookEvent;
  try {
    event = JSON.parse(decoder.decode(body)) as KillHookEvent;
  } catch {
    return refuse('KILL_HOOK_MALFORMED', 'the body is not JSON');
  }
  if (event?.type !== 'kill' || event.delivery?.id !== deliveryId) return refuse('KILL_HOOK_MALFORMED', 'the body is not a kill for this delivery id');
  if (!(await o.seen.remember(deliveryId, now))) return refuse('KILL_HOOK_REPLAYED', 'this delivery id was handled already', deliveryId);
  return { ok: true, deliveryId, event };
}
