import { createHash } from 'node:crypto';
import type { Clock, Hasher, IdGenerator } from '../src/index.ts';

export const hasher: Hasher = { sha256Hex: (s) => createHash('sha256').update(s).digest('hex') };

/** A clock that only moves when told to. */
export class FrozenClock implements Clock {
  private t: number;
  constructor(start = Date.parse('2026-11-23T10:00:00Z')) {
    this.t = start;
  }
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
  set(ms: number): void {
    this.t = ms;
  }
}

export class SequentialIds implements IdGenerator {
  private n = 0;
  next(prefix: string): string {
    this.n += 1;
    return `${prefix}_${String(this.n).padStart(6, '0')}`;
  }
}
