/**
 * Several nodes: the exchange that lets every node judge an agent on the calls all nodes admitted
 * (core behaviour/share.ts says what is shared and the error it leaves). Every `interval_ms` this
 * node publishes the agent scopes that changed and reads what the others published. Nothing here
 * is on a decision's path; a node whose last successful exchange is older than `max_lag_ms` is not
 * fresh, and a node that is not fresh denies every call (STORE_UNAVAILABLE).
 */
import type { BehaviourMonitor, BehaviourShareStore, Clock, SharedScope } from '@mandate/core';

export interface BehaviourSharingOptions {
  readonly node: string;
  readonly monitor: BehaviourMonitor;
  readonly store: BehaviourShareStore;
  readonly clock: Clock;
  readonly intervalMs: number;
  readonly maxLagMs: number;
  /** rows read per exchange at most */
  readonly maxScopes: number;
  readonly log: { warn(obj: object, msg: string): void };
}

export interface BehaviourSharingStatus {
  readonly node: string;
  /** successful exchanges since start */
  readonly rounds: number;
  readonly failures: number;
  /** when the last successful exchange ended (clock ms), if any */
  readonly lastOkAt: number | undefined;
  readonly fresh: boolean;
}

/** exchanges between prunes of expired rows */
const PRUNE_EVERY = 20;

export class BehaviourSharing {
  private readonly o: BehaviourSharingOptions;
  private timer: ReturnType<typeof setInterval> | undefined;
  private running: Promise<void> | undefined;
  private rounds = 0;
  private failures = 0;
  private lastOkAt: number | undefined;
  /** rows taken from the monitor that no publish has stored yet (a failed round keeps them) */
  private unsent = new Map<string, SharedScope>();
  private closed = false;

  constructor(o: BehaviourSharingOptions) {
    this.o = o;
  }

  /** one exchange now (awaited), then one every interval */
  async start(): Promise<void> {
    await this.round();
    this.timer = setInterval(() => void this.round(), this.o.intervalMs);
    this.timer.unref();
  }

  fresh(): boolean {
    return this.lastOkAt !== undefined && this.o.clock.now() - this.lastOkAt <= this.o.maxLagMs;
  }

  status(): BehaviourSharingStatus {
    return { node: this.o.node, rounds: this.rounds, failures: this.failures, lastOkAt: this.lastOkAt, fresh: this.fresh() };
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    await this.running;
  }

  /** publish what changed here, read what the others published; one at a time */
  round(): Promise<void> {
    if (this.running !== undefined || this.closed) return this.running ?? Promise.resolve();
    this.running = this.exchange().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async exchange(): Promise<void> {
    const { monitor, store, clock, node } = this.o;
    const now = clock.now();
    for (const s of monitor.shareOut(now)) this.unsent.set(s.agentId, s);
    try {
      const rows = [...this.unsent.values()];
      await store.publish(node, rows);
      this.unsent = new Map();
      const remote = await store.read(node, now, this.o.maxScopes);
      if (remote.length >= this.o.maxScopes) this.o.log.warn({ rows: remote.length, max: this.o.maxScopes }, 'behaviour sharing: other nodes shared more agents than behaviour.share.max_scopes; some are judged on this node alone');
      monitor.shareIn(remote);
      this.rounds += 1;
      this.lastOkAt = clock.now();
      if (this.rounds % PRUNE_EVERY === 0) await store.prune(now);
    } catch (e) {
      this.failures += 1;
      this.o.log.warn({ err: e, failures: this.failures }, 'behaviour sharing: exchange with the other nodes failed');
    }
  }
}
