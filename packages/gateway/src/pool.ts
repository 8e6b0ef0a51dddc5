/**
 * The connections to one upstream, by its sharing mode: one per session, one per task, or one
 * for everyone (config `sharing`). Spare connections (`warm`) are started ahead of demand, so a
 * session opens without waiting for a process to start; a shared connection starts with the
 * gateway. What a pool holds is bounded: spares + one per session or task + the shared one.
 */
import type { UpstreamConfig } from './config.ts';
import { UpstreamLink, type LinkOptions, type LinkUser } from './upstream.ts';

export class UpstreamPool {
  readonly config: UpstreamConfig;
  readonly prefix: string;
  private readonly o: LinkOptions;
  private readonly spares: UpstreamLink[] = [];
  private readonly byTask = new Map<string, UpstreamLink>();
  private shared: UpstreamLink | undefined;
  private closed = false;

  constructor(config: UpstreamConfig, o: LinkOptions) {
    this.config = config;
    this.prefix = config.tool_prefix ?? config.name;
    this.o = o;
  }

  /** Warm start: the shared connection, or the spares. */
  start(): void {
    if (this.config.sharing === 'shared') this.sharedLink();
    else this.replenish();
  }

  private newLink(): UpstreamLink {
    const link = new UpstreamLink(this.config, this.o);
    link.start();
    return link;
  }

  private sharedLink(): UpstreamLink {
    if (!this.shared || this.shared.state === 'closed') this.shared = this.newLink();
    return this.shared;
  }

  private replenish(): void {
    if (this.closed) return;
    while (this.spares.length < this.config.warm) this.spares.push(this.newLink());
  }

  /** A ready spare if there is one, else the one that started first, else a new connection. */
  private takeSpare(): UpstreamLink {
    const i = this.spares.findIndex((l) => l.isReady);
    const [link] = this.spares.splice(i >= 0 ? i : 0, 1);
    this.replenish();
    return link ?? this.newLink();
  }

  /** The connection this session uses (it may still be starting: see `link.ready`). */
  acquire(user: LinkUser): UpstreamLink {
    let link: UpstreamLink;
    if (this.config.sharing === 'shared') {
      link = this.sharedLink();
    } else if (this.config.sharing === 'per_task') {
      const held = this.byTask.get(user.taskId);
      link = held && held.state !== 'closed' ? held : this.takeSpare();
      this.byTask.set(user.taskId, link);
    } else {
      link = this.takeSpare();
    }
    link.users.add(user);
    return link;
  }

  /** The session is done with its connection: a per-session one ends, a per-task one with the task's last session. */
  async release(user: LinkUser, link: UpstreamLink, reason: string): Promise<void> {
    link.users.delete(user);
    if (this.config.sharing === 'shared') return;
    if (this.config.sharing === 'per_task') {
      if (link.users.size > 0) return;
      if (this.byTask.get(user.taskId) === link) this.byTask.delete(user.taskId);
    }
    await link.close(reason);
  }

  /** Spares decrypted the secrets they were started with: after a secret changes, start them anew. */
  async renewSpares(reason: string): Promise<void> {
    const old = this.spares.splice(0);
    this.replenish();
    await Promise.all(old.map((l) => l.close(reason)));
  }

  /** Resolves once the warm connections are ready (or `timeoutMs` passed): true if all are. */
  async warmed(timeoutMs: number): Promise<boolean> {
    const links = this.config.sharing === 'shared' ? [this.sharedLink()] : [...this.spares];
    return (await Promise.all(links.map((l) => l.ready(timeoutMs)))).every(Boolean);
  }

  /** Connections this pool holds now (spares included). */
  get size(): number {
    const taskLinks = new Set(this.byTask.values());
    return this.spares.length + taskLinks.size + (this.shared && this.shared.state !== 'closed' ? 1 : 0);
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.spares.splice(0), ...this.byTask.values(), ...(this.shared ? [this.shared] : [])];
    this.byTask.clear();
    await Promise.all(all.map((l) => l.close('the gateway is closing')));
  }
}
