/**
 * The write lock between the store's two writing connections in one process: the event loop's
 * and the commit thread's (commit-worker.ts). SQLite lets one connection write at a time; one
 * that finds the lock held (SQLITE_BUSY) is retried by SQLite's busy handler, which sleeps 1 ms,
 * then 2, 5, 10 ms… between attempts. On the event loop that sleep holds every request of the
 * node, while the transaction it waits for (a commit thread's batch) lasts a fraction of it.
 *
 * Here each connection says when it let the lock go: a counter per connection in memory both
 * threads share, bumped (and its waiters woken) after each of its transactions and each write
 * outside one. A connection that finds the lock held waits for the other's counter to move and
 * tries again at once, so a write that met a batch waits for that batch's transaction and no
 * longer. A writer that says nothing (another process: a CLI command on the same file) is
 * polled every `pollMs`. Past `timeoutMs` the write fails as a locked store does
 * (STORE_UNAVAILABLE, sql.ts).
 *
 * SQLite's own busy handler is off on both connections (`busy_timeout = 0`): the retry is here.
 * A statement that found the lock held did nothing, so trying it again is safe; only statements
 * outside a transaction and BEGIN IMMEDIATE are retried (inside an IMMEDIATE transaction the lock
 * is already held).
 */
import { isBusy } from './sql.ts';

/** which connection a side is: the event loop's (counter 0) or the commit thread's (counter 1) */
export type WriteSide = 'loop' | 'thread';

/** how often a wait looks again when nothing wakes it (a writer of another process) */
const WRITE_LOCK_POLL_MS = 1;

/** the shared memory of one pair of connections: made once, handed to the thread (workerData) */
export function writeTurnsMemory(): SharedArrayBuffer {
  return new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT);
}

export interface WriteTurnsStats {
  /** statements that found the lock held and were tried again */
  readonly retried: number;
  /** waits ended by the other connection letting the lock go */
  readonly woken: number;
  /** waits that ran out their poll interval instead */
  readonly polled: number;
}

export class WriteTurns {
  private readonly counters: Int32Array;
  private readonly mine: number;
  private readonly theirs: number;
  private readonly timeoutMs: number;
  private readonly pollMs: number;
  private retried = 0;
  private woken = 0;
  private polled = 0;

  constructor(memory: SharedArrayBuffer, side: WriteSide, options: { readonly timeoutMs: number; readonly pollMs?: number }) {
    if (!(memory instanceof SharedArrayBuffer) || memory.byteLength < 2 * Int32Array.BYTES_PER_ELEMENT) throw new TypeError('write turns need the shared memory of writeTurnsMemory()');
    if (!(Number.isFinite(options.timeoutMs) && options.timeoutMs >= 0)) throw new RangeError(`timeoutMs must be a non-negative number (got ${String(options.timeoutMs)})`);
    const pollMs = options.pollMs ?? WRITE_LOCK_POLL_MS;
    if (!(Number.isFinite(pollMs) && pollMs > 0)) throw new RangeError(`pollMs must be a positive number (got ${String(pollMs)})`);
    this.counters = new Int32Array(memory, 0, 2);
    this.mine = side === 'loop' ? 0 : 1;
    this.theirs = 1 - this.mine;
    this.timeoutMs = options.timeoutMs;
    this.pollMs = pollMs;
  }

  /** after this side's transaction ended or a write outside one ran: wakes the other side's waits */
  released(): void {
    Atomics.add(this.counters, this.mine, 1);
    Atomics.notify(this.counters, this.mine);
  }

  /**
   * `attempt` again while it finds the lock held, each time the other side lets it go (or a poll
   * interval passed), until the timeout; then the last BUSY error is thrown. Any other error is
   * thrown as it is. `first` is the error the first attempt threw.
   */
  retry<T>(first: unknown, attempt: () => T): T {
    if (!isBusy(first)) throw first;
    const deadline = performance.now() + this.timeoutMs;
    let last = first;
    for (;;) {
      const left = deadline - performance.now();
      if (left <= 0) throw last;
      // read before the next attempt: a release between the attempt and the wait is not missed
      const seen = Atomics.load(this.counters, this.theirs);
      this.retried++;
      try {
        return attempt();
      } catch (error) {
        if (!isBusy(error)) throw error;
        last = error;
      }
      const outcome = Atomics.wait(this.counters, this.theirs, seen, Math.min(this.pollMs, Math.max(0, deadline - performance.now())));
      if (outcome === 'timed-out') this.polled++;
      else this.woken++;
    }
  }

  stats(): WriteTurnsStats {
    return { retried: this.retried, woken: this.woken, polled: this.polled };
  }
}
