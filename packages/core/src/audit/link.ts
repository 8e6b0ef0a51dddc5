/**
 * Linking records into the hash chain: no dependency beyond canonical JSON, so the commit
 * thread of the SQLite store loads it without the rest of the core (`@mandate/core/chain-link`).
 */
import { canonicalJson, quoted } from '../json.ts';
import type { Hasher } from '../ports.ts';
import type { AuditDraft, AuditRecord } from './chain.ts';

export const GENESIS_HASH = '0'.repeat(64);

export function recordHash(r: Omit<AuditRecord, 'hash'>, hasher: Hasher): string {
  return hasher.sha256Hex(recordHashInput(r));
}

/**
 * The canonical JSON of a record without its hash, written field by field in canonical key
 * order (agentId, callId, data, kind, prevHash, seq, taskId, ts, txn; absent ones left out):
 * the same text as `canonicalJson` of those fields (a property test holds them equal), without
 * sorting the same nine keys for every record.
 */
export function recordHashInput(r: Omit<AuditRecord, 'hash'>): string {
  return hashInputWithData(r, canonicalJson(r.data));
}

/** `recordHashInput` with the canonical text of `data` given */
export function hashInputWithData(r: Omit<AuditRecord, 'hash' | 'data'>, dataText: string): string {
  let out = '{';
  if (r.agentId !== undefined) out += '"agentId":' + text(r.agentId) + ',';
  if (r.callId !== undefined) out += '"callId":' + text(r.callId) + ',';
  out += '"data":' + dataText;
  out += ',"kind":' + text(r.kind);
  out += ',"prevHash":' + text(r.prevHash);
  out += ',"seq":' + integer(r.seq);
  if (r.taskId !== undefined) out += ',"taskId":' + text(r.taskId);
  out += ',"ts":' + integer(r.ts);
  if (r.txn !== undefined) out += ',"txn":' + text(r.txn);
  return out + '}';
}

/**
 * a number field's canonical JSON (an integer's is its decimal digits). `toFixed(0)` writes the
 * same digits as `String(n)` for every safe integer, but `String(n)` of a number past 2^31 (every
 * `ts`) goes through V8's number-to-string cache, which lives in the old generation and keeps
 * each new string alive through young collections: a walk of 1M records promoted 28 MB of them
 * (5.7 MB with `toFixed`), old garbage that only a full collection frees.
 */
const integer = (n: number): string => (Number.isSafeInteger(n) ? n.toFixed(0) : canonicalJson(n));

/** a string field's canonical JSON (JSON.stringify's, as `canonicalJson` writes it): six a record */
const text = (v: string): string => (typeof v === 'string' ? quoted(v) : canonicalJson(v));

/** The chain's head: the last record's number and hash (absent: an empty log). */
export interface ChainHead {
  readonly seq: number;
  readonly hash: string;
}

/**
 * The one loop that links drafts after `head`: numbers each, hashes it over its data's
 * canonical text (`dataText`), and hands `each` its number, previous hash and hash, in order.
 * Returns the new head. `linkRecords` and the SQLite store's batch writer (which holds the data
 * as text already) both link through it.
 */
export function linkDrafts<D extends Omit<AuditDraft, 'data'>>(
  head: ChainHead | undefined,
  drafts: readonly D[],
  dataText: (d: D) => string,
  hasher: Hasher,
  each: (d: D, seq: number, prevHash: string, hash: string) => void,
): ChainHead | undefined {
  let seq = head?.seq ?? 0;
  let prevHash = head?.hash ?? GENESIS_HASH;
  for (const d of drafts) {
    seq += 1;
    const hash = hasher.sha256Hex(hashInputWithData({ kind: d.kind, ts: d.ts, callId: d.callId, taskId: d.taskId, agentId: d.agentId, txn: d.txn, seq, prevHash }, dataText(d)));
    each(d, seq, prevHash, hash);
    prevHash = hash;
  }
  return drafts.length === 0 ? head : { seq, hash: prevHash };
}

/**
 * Places drafts after `head` in the chain. Stores call this inside the transaction that holds
 * the head, so concurrent appenders (several nodes) can never fork the chain.
 */
export function linkRecords(head: ChainHead | undefined, drafts: readonly AuditDraft[], hasher: Hasher): AuditRecord[] {
  const out: AuditRecord[] = [];
  linkDrafts(head, drafts, (d) => canonicalJson(d.data), hasher, (d, seq, prevHash, hash) =>
    out.push({ kind: d.kind, ts: d.ts, callId: d.callId, taskId: d.taskId, agentId: d.agentId, txn: d.txn, data: d.data, seq, prevHash, hash }),
  );
  return out;
}
