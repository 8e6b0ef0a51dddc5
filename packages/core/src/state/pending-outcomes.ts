/** An allowed call awaiting its outcome report: what recording that outcome needs of the call. */
export interface PendingCall<S> {
  readonly tool: string;
  /** the call read a source the task's purpose names */
  readonly namedSource: boolean;
  /** the shared entries it reached, if any (rare: held apart) */
  readonly shared: S | undefined;
}

/**
 * The allowed calls awaiting their outcome report, at most `max`, the oldest forgotten first.
 *
 * A call is keyed by its task and its call id together: call ids are chosen by agents, so two
 * tasks may both say `call-1`, and one task's call must neither hide nor take another's outcome.
 * A call id never holds a space (decide.ts, CALL_ID), so the last space splits the key into the
 * two unambiguously.
 *
 * The calls sit in a ring of `max` slots, in the order allowed: the key maps to the call's number
 * (a small integer, no object of its own), the number to its slot, and the slot holds the tool
 * (a string the catalogue already holds) and a flag; the few calls that reached shared entries
 * keep those apart. ~110 B a call against ~290 B when each call was an object with its task id
 * (bench/cache-memory.ts, docs/operations.md: memory). The ring, not the Map's own order, finds
 * the oldest: finding a Map's first key after many deletions at its front walks every deleted
 * slot, which grew to an eighth of a decision's cost.
 */
export class PendingOutcomes<S> {
  readonly max: number;
  /** key → the call's number (its slot is the number modulo `max`) */
  private readonly byKey = new Map<string, number>();
  private readonly keys: (string | undefined)[] = [];
  private readonly tools: (string | undefined)[] = [];
  private readonly named: Uint8Array;
  /** slot → the shared entries reached, for the calls that reached any */
  private readonly shared = new Map<number, S>();
  private count = 0;

  constructor(max: number) {
    if (!Number.isSafeInteger(max) || max < 1) throw new TypeError(`pending outcomes: max must be a positive integer, got ${max}`);
    this.max = max;
    this.named = new Uint8Array(max);
  }

  /** the calls remembered now */
  get size(): number {
    return this.byKey.size;
  }

  /** Remembers an allowed call; the same call allowed again is remembered once, as the newer. */
  remember(taskId: string, callId: string, call: PendingCall<S>): void {
    const key = pendingKey(taskId, callId);
    const n = this.count++;
    const slot = n % this.max;
    const evicted = this.keys[slot];
    // the call that held this slot, unless its outcome came or it was allowed again since
    if (evicted !== undefined && this.byKey.get(evicted) === n - this.max) this.byKey.delete(evicted);
    this.keys[slot] = key;
    this.tools[slot] = call.tool;
    this.named[slot] = call.namedSource ? 1 : 0;
    if (call.shared !== undefined) this.shared.set(slot, call.shared);
    else this.shared.delete(slot);
    this.byKey.set(key, n);
  }

  /** The call awaiting its outcome, forgotten as it is returned (an outcome is recorded once). */
  take(taskId: string, callId: string): PendingCall<S> | undefined {
    const key = pendingKey(taskId, callId);
    const n = this.byKey.get(key);
    if (n === undefined) return undefined;
    this.byKey.delete(key);
    const slot = n % this.max;
    const call: PendingCall<S> = { tool: this.tools[slot] as string, namedSource: this.named[slot] === 1, shared: this.shared.get(slot) };
    // the slot holds nothing once taken: its strings are not kept until it is reused
    this.keys[slot] = undefined;
    this.tools[slot] = undefined;
    this.shared.delete(slot);
    return call;
  }
}

/**
 * One flat string: joined, not concatenated. A concatenation is a tree of its parts that V8 keeps
 * (hashing it for the Map does not flatten it), so a key held the call id's own string and two
 * nodes besides its text: ~25 B more a call, more when the call id was itself concatenated.
 */
function pendingKey(taskId: string, callId: string): string {
  return [taskId, callId].join(' ');
}
