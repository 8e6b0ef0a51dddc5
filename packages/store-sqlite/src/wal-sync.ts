import { closeSync, fdatasync, fstatSync, openSync, statSync } from 'node:fs';
import { MandateError, describeError } from '@mandate/core/errors';

type Fdatasync = (fd: number, done: (err: Error | null) => void) => void;

/**
 * Durability `full` for group commits without holding the event loop: a batch commits with
 * SQLite's `synchronous = NORMAL` (its WAL frames reach the OS, not yet the disk), and its
 * callers are answered only once an `fdatasync` of the WAL, run on libuv's thread pool and
 * started after that commit, has finished. What SQLite's `FULL` does inside COMMIT, done beside
 * the loop: meanwhile it decides and commits other calls. A crash before the sync loses only
 * commits nobody was told about; the WAL's checksums drop a torn tail on recovery.
 *
 * Syncs are coalesced: at most one runs, and every commit made while it runs waits for the
 * one next after it (which covers them all). A small batch while no sync is under way commits
 * with SQLite's own sync instead (audit.ts): one commit alone is answered sooner that way, and
 * at low load the loop has nothing else to do meanwhile.
 *
 * A failed sync poisons the store's audit for good (every later wait fails, so every later
 * allow is denied): after an I/O error the kernel may have dropped the dirty pages, and a retry
 * that "succeeds" proves nothing.
 */
export class WalSync {
  private readonly walPath: string;
  private readonly fdatasync: Fdatasync;
  private fd: number | undefined;
  private ino: number | undefined;
  private failure: MandateError | undefined;
  /** commits written so far (counted by `wrote`) */
  private written = 0;
  /** commits known to be on the disk */
  private synced = 0;
  private running: { readonly upTo: number; readonly done: Promise<void> } | undefined;
  private next: Promise<void> | undefined;

  constructor(dbPath: string, sync: Fdatasync = fdatasync) {
    this.walPath = dbPath + '-wal';
    this.fdatasync = sync;
  }

  /** commits counted so far (`wrote`) */
  commits(): number {
    return this.written;
  }

  /** Counts a commit just written to the WAL; returns its number for `durable`. */
  wrote(): number {
    this.written += 1;
    return this.written;
  }

  /** why every commit is refused, once a sync failed (until restart) */
  failed(): MandateError | undefined {
    return this.failure;
  }

  /** No sync is under way or waiting: a commit may sync inline without overtaking one. */
  idle(): boolean {
    return this.running === undefined && this.next === undefined && this.failure === undefined;
  }

  /** A commit just synced the WAL itself (SQLite's `FULL`): every commit written so far is on the disk. */
  syncedInline(): void {
    this.synced = this.written;
  }

  /** Resolves once commit `upTo` (default: every commit written so far) is on the disk. */
  durable(upTo: number = this.written): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (upTo <= this.synced) return Promise.resolve();
    const r = this.running;
    if (r === undefined) return this.start();
    if (r.upTo >= upTo) return r.done;
    // the running sync began before this commit: the next one covers it, and everyone else's
    this.next ??= r.done.then(() => {
      this.next = undefined;
      return this.durable();
    });
    return this.next;
  }

  /** after the database is closed (the descriptor is kept open until then: see `current`) */
  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  private start(): Promise<void> {
    const upTo = this.written;
    let fd: number;
    try {
      fd = this.current();
    } catch (e) {
      return Promise.reject(this.poison(e));
    }
    let settle: (err: Error | null) => void = () => undefined;
    const done = new Promise<void>((resolve, reject) => {
      settle = (err) => {
        this.running = undefined;
        if (err) {
          reject(this.poison(err));
        } else {
          this.synced = Math.max(this.synced, upTo);
          resolve();
        }
      };
    });
    // marked running before the sync starts: a synchronous one (the commit thread's) ends it at once
    this.running = { upTo, done };
    this.fdatasync(fd, settle);
    return done;
  }

  /**
   * The WAL's descriptor, opened once and kept: closing any descriptor of a file drops the
   * process's POSIX locks on it. Reopened only if the WAL was replaced by another file.
   */
  private current(): number {
    const ino = statSync(this.walPath).ino;
    if (this.fd !== undefined && ino === this.ino) return this.fd;
    const fd = openSync(this.walPath, 'r+');
    const old = this.fd;
    this.fd = fd;
    this.ino = fstatSync(fd).ino;
    // a replaced WAL's old descriptor points at an unlinked file: nothing else holds locks on it
    if (old !== undefined) closeSync(old);
    return fd;
  }

  private poison(e: unknown): MandateError {
    this.failure ??= new MandateError('AUDIT_UNAVAILABLE', `the audit log could not be made durable (${describeError(e)}); refusing every commit until restart`);
    return this.failure;
  }
}

/**
 * `cap` (a store capability on the event loop's connection) with each call that committed on
 * that connection answered only once the WAL is synced past its commit, off the event loop: the
 * connection commits with SQLite's `synchronous = NORMAL` (index.ts), so a write never holds the
 * loop for the disk, and concurrent writes share one sync. A call that committed nothing (a
 * read) is answered as before, with nothing added.
 *
 * Relies on what every SQLite capability does: its SQL runs in the synchronous part of the call
 * (node:sqlite is synchronous), so the commits counted while the call returns are its own.
 * Refused with STORE_UNAVAILABLE when the sync fails (and every later write, as `durable` is).
 */
export function durableWrites<T extends object>(cap: T, sync: WalSync): T {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(cap)) {
    if (typeof value !== 'function') {
      out[name] = value;
      continue;
    }
    const fn = value as (...args: unknown[]) => unknown;
    out[name] = (...args: unknown[]): unknown => {
      const before = sync.commits();
      const result = fn.apply(cap, args);
      if (sync.commits() === before) return result;
      // the sync starts now, whatever the call's promise does meanwhile
      const synced = sync.durable(sync.commits()).catch((e: unknown) => {
        throw new MandateError('STORE_UNAVAILABLE', `the write was not made durable: ${describeError(e)}`);
      });
      // handled below, whichever way the call settles
      synced.catch(() => undefined);
      return Promise.resolve(result).then(
        (r) => synced.then(() => r),
        (e: unknown) =>
          synced.then(() => {
            throw e;
          }),
      );
    };
  }
  return out as T;
}
