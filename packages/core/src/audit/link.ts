/**
 * Linking records into the hash chain: no dependency beyond canonical JSON, so the commit
 * thread of the SQLite store loads it without the rest of the core (`@mandate/core/chain-link`).
 */
import { canonicalJson } from '../json.ts';
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
  let out = '{';
  if (r.agentId !== undefined) out += '"agentId":' + canonicalJson(r.agentId) + ',';
  if (r.callId !== undefined) out += '"callId":' + canonicalJson(r.callId) + ',';
  out += '"data":' + canonicalJson(r.data);
  out += ',"kind":' + canonicalJson(r.kind);
  out += ',"prevHash":' + canonicalJson(r.prevHash);
  out += ',"seq":' + canonicalJson(r.seq);
  if (r.taskId !== undefined) out += ',"taskId":' + canonicalJson(r.taskId);
  out += ',"ts":' + canonicalJson(r.ts);
  if (r.txn !== undefined) out += ',"txn":' + canonicalJson(r.txn);
  return out + '}';
}

/**
 * Places drafts after `head` in the chain. Stores call this inside the transaction that holds
 * the head, so concurrent appenders (several nodes) can never fork the chain.
 */
export function linkRecords(head: { seq: number; hash: string } | undefined, drafts: readonly AuditDraft[], hasher: Hasher): AuditRecord[] {
  let seq = head?.seq ?? 0;
  let prevHash = head?.hash ?? GENESIS_HASH;
  const out: AuditRecord[] = [];
  for (const d of drafts) {
    seq += 1;
    const base = {
      kind: d.kind,
      ts: d.ts,
      callId: d.callId,
      taskId: d.taskId,
      agentId: d.agentId,
      txn: d.txn,
      data: d.data,
      seq,
      prevHash,
    };
    const hash = recordHash(base, hasher);
    out.push({ ...base, hash });
    prevHash = hash;
  }
  return out;
}
