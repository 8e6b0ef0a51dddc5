import { closeSync, fdatasync, fstatSync, openSync, statSync } from 'node:fs';
import { MandateError, describeError } from '@mandate/core';

/**
 * Durability `full` for group commits without holding the event loop: the batch commits with
 * SQLite's `synchronous = NORMAL` (its WAL frames reach the OS, not yet the disk) and then the
 * WAL file is `fdatasync`ed on libuv's thread pool; the batch's callers are answered only after
 * that. What SQLite's `FULL` does inside COMMIT (sync the WAL after the commit's frames), done
 * beside the loop, which meanwhile decides other calls. A crash before the sync loses only
 * commits nobody was told about; the WAL's checksums drop a torn tail on recovery.
 *
 * A failed sync poisons the store's audit for good (every later batch fails, so every later
 * allow is denied): after an I/O error the kernel may have dropped the dirty pages, and a retry
 * that "succeeds" proves nothing.
 */
export class WalSync {
  private readonly walPath: string;
  private fd: number | undefined;
  private ino: number | undefined;
  private failure: MandateError | undefined;

  constructor(dbPath: string) {
    this.walPath = dbPath + '-wal';
  }

  /** Resolves once everything written to the WAL so far is on the disk. */
  sync(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    let fd: number;
    try {
      fd = this.current();
    } catch (e) {
      return Promise.reject(this.poison(e));
    }
    return new Promise((resolve, reject) => {
      fdatasync(fd, (err) => {
        if (err) reject(this.poison(err));
        else resolve();
      });
    });
  }

  /** after the database is closed (the descriptor is kept open until then: see `current`) */
  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
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
