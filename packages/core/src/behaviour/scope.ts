/**
 * What the detectors remember of one scope (a task, or an agent with every task it and its
 * delegates run), and the bounded keyed memory that holds the scopes.
 *
 * A call is admitted into its scopes in the same synchronous step that judges it (monitor.ts),
 * so the next call, however concurrent, is judged against a past that includes it. Everything
 * here is bounded by configuration; nothing walks a Map's deleted slots.
 */
import { z } from 'zod';
import type { CallEvent, ChainMark, PastCall, ScopeKind, ScopeView } from './types.ts';

/** A fixed-size ring; `at(0)` is the oldest item kept, `items()` copies them oldest first. */
export class Ring<T> {
  private readonly buf: (T | undefined)[];
  private start = 0;
  private count = 0;

  constructor(capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) throw new TypeError(`ring capacity must be a positive integer, got ${String(capacity)}`);
    this.buf = new Array<T | undefined>(capacity);
  }

  push(v: T): void {
    const cap = this.buf.length;
    if (this.count < cap) {
      this.buf[(this.start + this.count) % cap] = v;
      this.count += 1;
    } else {
      this.buf[this.start] = v;
      this.start = (this.start + 1) % cap;
    }
  }

  get size(): number {
    return this.count;
  }

  /** the i-th item kept, oldest first (undefined outside 0..size-1) */
  at(i: number): T | undefined {
    if (i < 0 || i >= this.count) return undefined;
    return this.buf[(this.start + i) % this.buf.length];
  }

  items(): T[] {
    const out: T[] = [];
    for (let i = 0; i < this.count; i++) out.push(this.buf[(this.start + i) % this.buf.length] as T);
    return out;
  }
}

/**
 * The calls a scope remembers, as compactly as the detectors allow: they read of a past call only
 * its admission time, its tool, whether it was denied and (retry) whether it had the same
 * arguments as the call being judged. Struct of arrays, per slot 20 bytes: the time (Float64),
 * then three words: the arguments' key (two words) and the tool's number in this ring's own table
 * with the denied flag in the top bit. The arrays grow by doubling up to the capacity, so a short
 * task holds little; the tool table holds only tools some kept call used (it is rebuilt from the
 * kept calls when it would pass the capacity), so everything is bounded by the capacity.
 *
 * The arguments' key is 64 bits of their hash: the first 16 hex digits of a `sha256:<hex>` hash
 * (what the engine records), any other string hashed to 64 bits (FNV-1a, two seeds). Retry only
 * asks whether two calls had equal keys; equal hashes always have equal keys, so a truncated key
 * can only count two different calls as the same one (a chance of about 2^-64 per pair, or a
 * crafted pair, which only makes the crafter's own retry signal come sooner): it never hides one.
 */
export class CallRing {
  private ts: Float64Array;
  /** per slot: args key high, args key low, tool number | denied << 31 */
  private words: Uint32Array;
  private start = 0;
  private count = 0;
  private readonly cap: number;
  private tools: string[] = [];
  /** the last key asked for (retry asks for the same call's key once per kept call) */
  private probeHash: string | undefined;
  private probeHi = 0;
  private probeLo = 0;

  constructor(capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) throw new TypeError(`ring capacity must be a positive integer, got ${String(capacity)}`);
    this.cap = capacity;
    const n = Math.min(capacity, 8);
    this.ts = new Float64Array(n);
    this.words = new Uint32Array(3 * n);
  }

  get size(): number {
    return this.count;
  }

  push(ts: number, tool: string, denied: boolean, argsHash: string): void {
    let slot: number;
    if (this.count < this.cap) {
      if (this.count === this.ts.length) this.grow();
      slot = (this.start + this.count) % this.ts.length;
      this.count += 1;
    } else {
      slot = this.start;
      this.start = (this.start + 1) % this.cap;
    }
    // the slot's old call has left: its tool may go from the table
    const id = this.toolId(tool, slot);
    this.ts[slot] = ts;
    argsKey(argsHash, this.words, 3 * slot);
    this.words[3 * slot + 2] = (id | (denied ? 0x8000_0000 : 0)) >>> 0;
  }

  /** the admission time of the i-th call kept, oldest first (i in 0..size-1) */
  tsAt(i: number): number {
    return this.ts[this.slot(i)] as number;
  }

  deniedAt(i: number): boolean {
    return ((this.words[3 * this.slot(i) + 2] as number) & 0x8000_0000) !== 0;
  }

  toolAt(i: number): string {
    return this.tools[(this.words[3 * this.slot(i) + 2] as number) & 0x7fff_ffff] as string;
  }

  /** whether the i-th call kept had this tool and these arguments (by their key) */
  sameCallAt(i: number, tool: string, argsHash: string): boolean {
    const s = 3 * this.slot(i);
    if (this.tools[(this.words[s + 2] as number) & 0x7fff_ffff] !== tool) return false;
    if (this.probeHash !== argsHash) {
      argsKey(argsHash, PROBE, 0);
      this.probeHash = argsHash;
      this.probeHi = PROBE[0] as number;
      this.probeLo = PROBE[1] as number;
    }
    return this.words[s] === this.probeHi && this.words[s + 1] === this.probeLo;
  }

  /** the kept calls' tools, oldest first */
  toolList(): string[] {
    const out = new Array<string>(this.count);
    for (let i = 0; i < this.count; i++) out[i] = this.toolAt(i);
    return out;
  }

  private slot(i: number): number {
    return (this.start + i) % this.ts.length;
  }

  private grow(): void {
    const len = Math.min(this.cap, this.ts.length * 2);
    const ts = new Float64Array(len);
    const words = new Uint32Array(3 * len);
    for (let i = 0; i < this.count; i++) {
      const from = this.slot(i);
      ts[i] = this.ts[from] as number;
      words.set(this.words.subarray(3 * from, 3 * from + 3), 3 * i);
    }
    this.ts = ts;
    this.words = words;
    this.start = 0;
  }

  /** the tool's number in the table; `free` is the slot about to be overwritten (its call is not kept any more) */
  private toolId(tool: string, free: number): number {
    const at = this.tools.indexOf(tool);
    if (at >= 0) return at;
    if (this.tools.length < this.cap) return this.tools.push(tool) - 1;
    // full: keep only the tools of the calls still kept (at most cap - 1 of them, the freed slot aside)
    const keep: string[] = [];
    const renumber = new Map<number, number>();
    for (let i = 0; i < this.count; i++) {
      const s = this.slot(i);
      if (s === free) continue;
      const w = this.words[3 * s + 2] as number;
      const old = w & 0x7fff_ffff;
      let id = renumber.get(old);
      if (id === undefined) {
        id = keep.push(this.tools[old] as string) - 1;
        renumber.set(old, id);
      }
      this.words[3 * s + 2] = ((w & 0x8000_0000) | id) >>> 0;
    }
    this.tools = keep;
    return this.tools.push(tool) - 1;
  }
}

const PROBE = new Uint32Array(2);
const SHA256_HEX = /^sha256:[0-9a-f]{16}/;

/** 64 bits of an arguments hash into out[at], out[at + 1] (see CallRing) */
function argsKey(hash: string, out: Uint32Array, at: number): void {
  if (SHA256_HEX.test(hash)) {
    out[at] = Number.parseInt(hash.slice(7, 15), 16);
    out[at + 1] = Number.parseInt(hash.slice(15, 23), 16);
    return;
  }
  let a = 0x811c9dc5;
  let b = 0x050c5d1f;
  for (let i = 0; i < hash.length; i++) {
    const c = hash.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x01000193) ^ (b >>> 15);
  }
  out[at] = a >>> 0;
  out[at + 1] = b >>> 0;
}

/**
 * Admission times in order, for exact sliding-window counts in amortised O(1): times that left
 * the window are dropped from the front as the window moves. It keeps at most `cap` times (a
 * detector only needs to know a count up to its highest threshold), growing as it fills.
 */
export class TimeWindow {
  private buf: Float64Array;
  private head = 0;
  private count = 0;
  private readonly cap: number;

  constructor(cap: number) {
    this.cap = Math.max(1, Math.floor(cap));
    this.buf = new Float64Array(Math.min(this.cap, 16));
  }

  push(ts: number): void {
    if (this.count === this.buf.length) {
      if (this.buf.length < this.cap) this.grow();
      else {
        // full at the cap: the oldest goes (the count stays at the cap, which is all anyone asks)
        this.head = (this.head + 1) % this.buf.length;
        this.count -= 1;
      }
    }
    this.buf[(this.head + this.count) % this.buf.length] = ts;
    this.count += 1;
  }

  /** times in (now - windowMs, now] and later (a clock that stepped back keeps them in) */
  countSince(now: number, windowMs: number): number {
    const len = this.buf.length;
    while (this.count > 0 && now - (this.buf[this.head] as number) >= windowMs) {
      this.head = (this.head + 1) % len;
      this.count -= 1;
    }
    return this.count;
  }

  private grow(): void {
    const next = new Float64Array(Math.min(this.cap, this.buf.length * 2));
    for (let i = 0; i < this.count; i++) next[i] = this.buf[(this.head + i) % this.buf.length] as number;
    this.buf = next;
    this.head = 0;
  }
}

/**
 * Calls per time bucket, what a node shares with the others for an agent scope (several nodes).
 * Buckets older than the horizon are dropped; at most horizon / bucketMs + 2 are kept.
 */
export class Buckets {
  /** [start, calls, denied] oldest first */
  readonly rows: [number, number, number][] = [];
  private readonly bucketMs: number;
  private readonly horizonMs: number;

  constructor(bucketMs: number, horizonMs: number) {
    this.bucketMs = bucketMs;
    this.horizonMs = horizonMs;
  }

  add(ts: number, denied: boolean): void {
    const start = ts - (ts % this.bucketMs);
    const last = this.rows[this.rows.length - 1];
    if (last !== undefined && last[0] === start) {
      last[1] += 1;
      if (denied) last[2] += 1;
    } else {
      this.rows.push([start, 1, denied ? 1 : 0]);
      this.trim(ts);
    }
  }

  trim(now: number): void {
    let drop = 0;
    while (drop < this.rows.length && (this.rows[drop] as [number, number, number])[0] + this.bucketMs <= now - this.horizonMs) drop += 1;
    if (drop > 0) this.rows.splice(0, drop);
  }
}

/** What other nodes shared about one agent scope (several nodes), merged over those nodes. */
export interface RemoteScope {
  /** [start, calls, denied], by start */
  readonly buckets: readonly (readonly [number, number, number])[];
  readonly bucketMs: number;
  /** `${rule}\u0000${step}` → the latest mark any other node holds */
  readonly marks: ReadonlyMap<string, ChainMark>;
}

/** the calls (or denied calls) other nodes shared in buckets that overlap (now - windowMs, now] */
function remoteCount(r: RemoteScope | undefined, now: number, windowMs: number, column: 1 | 2): number {
  if (r === undefined) return 0;
  let n = 0;
  for (const b of r.buckets) if (b[0] + r.bucketMs > now - windowMs) n += b[column];
  return n;
}

export class Scope implements ScopeView {
  readonly kind: ScopeKind;
  readonly id: string;
  private readonly ring: CallRing;
  private readonly times: TimeWindow;
  /** rule id → marks of its steps but the last (the last one raises the signal, it marks nothing) */
  private marks: Map<string, (ChainMark | undefined)[]> | undefined;
  /** several nodes: what this node shares of this scope, and what the others shared */
  buckets: Buckets | undefined;
  remote: RemoteScope | undefined;

  constructor(kind: ScopeKind, id: string, ringSize: number, rateCap: number) {
    this.kind = kind;
    this.id = id;
    this.ring = new CallRing(ringSize);
    this.times = new TimeWindow(rateCap);
  }

  get size(): number {
    return this.ring.size;
  }

  tsAt(i: number): number {
    return this.ring.tsAt(i);
  }

  deniedAt(i: number): boolean {
    return this.ring.deniedAt(i);
  }

  toolAt(i: number): string {
    return this.ring.toolAt(i);
  }

  sameCallAt(i: number, tool: string, argsHash: string): boolean {
    return this.ring.sameCallAt(i, tool, argsHash);
  }

  /** the kept calls as drift reads them (tools), oldest first: a copy */
  items(): PastCall[] {
    const out = new Array<PastCall>(this.ring.size);
    for (let i = 0; i < out.length; i++) out[i] = { ts: this.ring.tsAt(i), tool: this.ring.toolAt(i), denied: this.ring.deniedAt(i) };
    return out;
  }

  calls(now: number, windowMs: number): number {
    return this.times.countSince(now, windowMs) + remoteCount(this.remote, now, windowMs, 1);
  }

  remoteDenied(now: number, windowMs: number): number {
    return remoteCount(this.remote, now, windowMs, 2);
  }

  mark(ruleId: string, step: number, now: number): ChainMark | undefined {
    const local = this.marks?.get(ruleId)?.[step];
    const other = this.remote?.marks.get(ruleId + '\u0000' + String(step));
    const live = local !== undefined && local.until > now ? local : undefined;
    if (other === undefined || other.until <= now) return live;
    return live === undefined || other.until > live.until ? other : live;
  }

  setMark(ruleId: string, step: number, steps: number, mark: ChainMark): void {
    this.marks ??= new Map();
    let list = this.marks.get(ruleId);
    if (list === undefined) {
      list = new Array<ChainMark | undefined>(steps).fill(undefined);
      this.marks.set(ruleId, list);
    }
    list[step] = mark;
  }

  /** this node's live marks, for sharing: [rule, step, mark] */
  liveMarks(now: number): [string, number, ChainMark][] {
    const out: [string, number, ChainMark][] = [];
    if (this.marks === undefined) return out;
    for (const [rule, list] of this.marks) {
      for (let step = 0; step < list.length; step++) {
        const m = list[step];
        if (m !== undefined && m.until > now) out.push([rule, step, m]);
      }
    }
    return out;
  }

  /** the call counts in this scope from now on */
  admit(e: CallEvent): void {
    this.ring.push(e.ts, e.tool, e.denied, e.argsHash);
    this.times.push(e.ts);
    this.buckets?.add(e.ts, e.denied);
  }
}

/**
 * A bounded map whose eviction never walks a Map's deleted slots: a ring of the last `capacity`
 * touches. A key keeps a live slot in the ring; when a new touch takes the slot a key still
 * lives in, that key is evicted. A key re-takes a slot (is refreshed) when its slot has aged past
 * half the ring, so a key touched within the last capacity/2 touches is never evicted, a busy
 * key cannot flush the others (it takes at most one slot per capacity/2 touches), and at most
 * `capacity` keys are held.
 */
export class RingMap<V> {
  private readonly map = new Map<string, { v: V; n: number }>();
  private readonly ring: (string | undefined)[];
  private readonly capacity: number;
  private readonly half: number;
  private touches = 0;
  private readonly onEvict: ((key: string, v: V) => void) | undefined;

  constructor(capacity: number, onEvict?: (key: string, v: V) => void) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) throw new TypeError(`capacity must be a positive integer, got ${String(capacity)}`);
    this.capacity = capacity;
    this.half = Math.max(1, Math.floor(capacity / 2));
    this.ring = new Array<string | undefined>(capacity);
    this.onEvict = onEvict;
  }

  get size(): number {
    return this.map.size;
  }

  /** the value, refreshing the key when its slot has aged */
  get(key: string): V | undefined {
    const e = this.map.get(key);
    if (e === undefined) return undefined;
    if (this.touches - e.n > this.half) e.n = this.take(key);
    return e.v;
  }

  /** the value without refreshing the key */
  peek(key: string): V | undefined {
    return this.map.get(key)?.v;
  }

  set(key: string, v: V): void {
    const e = this.map.get(key);
    if (e !== undefined) {
      e.v = v;
      if (this.touches - e.n > this.half) e.n = this.take(key);
      return;
    }
    const n = this.take(key);
    this.map.set(key, { v, n });
  }

  getOrCreate(key: string, make: () => V): V {
    const v = this.get(key);
    if (v !== undefined) return v;
    const made = make();
    this.set(key, made);
    return made;
  }

  delete(key: string): V | undefined {
    const e = this.map.get(key);
    if (e === undefined) return undefined;
    this.map.delete(key);
    return e.v;
  }

  clear(): void {
    this.map.clear();
    this.ring.fill(undefined);
  }

  values(): IterableIterator<V> {
    const it = this.map.values();
    return (function* () {
      for (const e of it) yield e.v;
    })();
  }

  /** takes the next slot for `key`; evicts the key that still lived there */
  private take(key: string): number {
    const n = this.touches++;
    const slot = n % this.capacity;
    const old = this.ring[slot];
    if (old !== undefined && old !== key) {
      const e = this.map.get(old);
      if (e !== undefined && e.n === n - this.capacity) {
        this.map.delete(old);
        this.onEvict?.(old, e.v);
      }
    }
    this.ring[slot] = key;
    return n;
  }
}

/** Which scopes a detector judges (config): the task alone, the agent across its tasks, or both. */
export const detectorScopeSchema = z
  .strictObject({
    task: z.boolean().default(true).describe('judge the calls of each task on their own'),
    agent: z.boolean().default(true).describe("judge the calls of each agent together: all its tasks, and the tasks delegated from them"),
  })
  .describe('the scopes this detector judges; a call counts in its task and in its agent (and each delegating agent) when it is admitted');
export type DetectorScope = z.output<typeof detectorScopeSchema>;
