/**
 * Several nodes: what one node tells the others about its agents' calls, so an agent whose calls
 * are spread over nodes is judged on all of them. Each node counts its own admissions exactly in
 * memory; every `interval` it publishes, per agent scope that changed, its calls and denied calls
 * per time bucket and its live chain marks, and reads what every other node published. Nothing
 * of this is on a decision's path: a decision reads only memory.
 *
 * The error this leaves is bounded and one-sided in time: a call admitted on another node is
 * seen here once that node has published it and this node has read it (normally within two
 * intervals and two statement times; a node whose last successful exchange is older than its
 * `max_lag` denies every call). Remote buckets are counted whole when they overlap the window, so
 * at the window's old edge up to one bucket of another node's calls may be counted early.
 */
import type { ChainMark } from './types.ts';
import type { RemoteScope } from './scope.ts';

export interface SharedMark {
  readonly rule: string;
  readonly step: number;
  readonly until: number;
  readonly calls: readonly string[];
}

/** One agent scope as one node shares it. */
export interface SharedScope {
  readonly agentId: string;
  /** [bucket start (ms), calls, denied calls], oldest first */
  readonly buckets: readonly (readonly [number, number, number])[];
  readonly marks: readonly SharedMark[];
  /** after this (ms) the row says nothing any detector reads */
  readonly expiresAt: number;
}

/** Where nodes exchange their shared scopes (a store capability; PostgreSQL). */
export interface BehaviourShareStore {
  /** replaces this node's rows for these agents */
  publish(node: string, scopes: readonly SharedScope[]): Promise<void>;
  /** every other node's rows that have not expired at `now`, at most `limit` */
  read(node: string, now: number, limit: number): Promise<SharedScope[]>;
  /** drops expired rows; returns how many */
  prune(now: number): Promise<number>;
}

/** Sums what the other nodes shared, per agent: buckets added by start, the latest mark per step. */
export function mergeShared(rows: readonly SharedScope[], bucketMs: number): Map<string, RemoteScope> {
  const acc = new Map<string, { buckets: Map<number, [number, number, number]>; marks: Map<string, ChainMark> }>();
  for (const row of rows) {
    let a = acc.get(row.agentId);
    if (a === undefined) {
      a = { buckets: new Map(), marks: new Map() };
      acc.set(row.agentId, a);
    }
    for (const [start, calls, denied] of row.buckets) {
      const b = a.buckets.get(start);
      if (b === undefined) a.buckets.set(start, [start, calls, denied]);
      else {
        b[1] += calls;
        b[2] += denied;
      }
    }
    for (const m of row.marks) {
      const key = m.rule + '\u0000' + String(m.step);
      const cur = a.marks.get(key);
      if (cur === undefined || m.until > cur.until) a.marks.set(key, { until: m.until, calls: m.calls });
    }
  }
  const out = new Map<string, RemoteScope>();
  for (const [agentId, a] of acc) out.set(agentId, { bucketMs, buckets: [...a.buckets.values()].sort((x, y) => x[0] - y[0]), marks: a.marks });
  return out;
}
