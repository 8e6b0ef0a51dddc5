import { CompactSign, compactVerify, importJWK, type JWK } from 'jose';
import { canonicalJson, type JsonObject } from '../json.ts';
import type { Hasher } from '../ports.ts';
import { GENESIS_HASH, hashInputWithData, recordHash } from './link.ts';
import { isJsonObjectText } from './object-text.ts';

export type AuditKind =
  | 'agent.created'
  | 'agent.updated'
  | 'task.started'
  | 'task.start_denied'
  | 'task.renewed'
  | 'task.completed'
  | 'task.revoked'
  | 'task.expired'
  | 'task.killed'
  | 'task.suspended'
  | 'task.resumed'
  | 'containment.lifted'
  | 'alert.acknowledged'
  | 'task.heartbeat'
  | 'decision'
  | 'signal'
  | 'action'
  | 'outcome'
  | 'key.rotated'
  | 'task.delegated'
  | 'approval.requested'
  | 'approval.approved'
  | 'approval.denied'
  | 'approval.used'
  | 'approval.expired'
  | 'approval.cancelled'
  | 'kill'
  | 'unkill'
  | 'operator.key_created'
  | 'operator.key_revoked'
  | 'secret.set'
  | 'secret.deleted'
  | 'policy.reloaded'
  | 'policy.reload_refused';

/** A record before it is placed in the chain. */
export interface AuditDraft {
  readonly kind: AuditKind;
  /** milliseconds since the epoch */
  readonly ts: number;
  readonly callId?: string | undefined;
  readonly taskId?: string | undefined;
  readonly agentId?: string | undefined;
  readonly txn?: string | undefined;
  readonly data: JsonObject;
}

/** A record in the chain: `hash` covers every other field, including `prevHash`. */
export interface AuditRecord extends AuditDraft {
  readonly seq: number;
  readonly prevHash: string;
  readonly hash: string;
}

/** A signed statement "the log had `seq` records and its head hash was `headHash`". */
export interface Checkpoint {
  readonly seq: number;
  readonly headHash: string;
  readonly ts: number;
  readonly kid: string;
  /** compact JWS (EdDSA) over the canonical JSON of {seq, headHash, ts} */
  readonly signature: string;
}

export { GENESIS_HASH, linkRecords, recordHash, recordHashInput } from './link.ts';

/**
 * A record as a store keeps it, for walking the chain: `data` is the stored text, not parsed
 * into a value (the stores write `canonicalJson(data)`).
 */
export interface StoredAuditRecord extends Omit<AuditRecord, 'data'> {
  readonly dataText: string;
}

/**
 * Whether a stored record matches its hash. The stored text is hashed as it is when it is a
 * JSON object (`{` … `}`, checked by reading it: `isJsonObjectText`): such a text is where the
 * hash input fixes it (a JSON value ends where its grammar says, and every other field is an
 * escaped string or a number), so a match means the text is exactly the one that was hashed.
 * Otherwise, the record's data is canonicalised from the parsed value, as `recordHash` does;
 * text that is not a JSON object is hashed as `{"unreadable_data": text}`, which never matches
 * a hash the stores wrote. Only that second path parses the text (see object-text.ts for why
 * the first one must not).
 */
export function storedRecordMatches(r: StoredAuditRecord, hasher: Hasher): boolean {
  const text = r.dataText;
  if (isJsonObjectText(text) && hasher.sha256Hex(hashInputWithData(r, text)) === r.hash) return true;
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    data = undefined;
  }
  const object = data !== null && typeof data === 'object' && !Array.isArray(data);
  const value = object ? data : { unreadable_data: text };
  return hasher.sha256Hex(hashInputWithData(r, canonicalJson(value))) === r.hash;
}

export async function signCheckpoint(
  head: { seq: number; hash: string },
  ts: number,
  key: { kid: string; privateJwk: JsonObject },
): Promise<Checkpoint> {
  const payload = canonicalJson({ seq: head.seq, headHash: head.hash, ts });
  const priv = await importJWK(key.privateJwk as JWK, 'EdDSA');
  const signature = await new CompactSign(new TextEncoder().encode(payload))
    .setProtectedHeader({ alg: 'EdDSA', kid: key.kid, typ: 'mandate-checkpoint' })
    .sign(priv);
  return { seq: head.seq, headHash: head.hash, ts, kid: key.kid, signature };
}

export async function verifyCheckpointSignature(cp: Checkpoint, publicKeys: ReadonlyMap<string, JsonObject>): Promise<boolean> {
  const jwk = publicKeys.get(cp.kid);
  if (jwk === undefined) return false;
  try {
    const key = await importJWK(jwk as JWK, 'EdDSA');
    const { payload, protectedHeader } = await compactVerify(cp.signature, key, { algorithms: ['EdDSA'] });
    if (protectedHeader.kid !== cp.kid) return false;
    const expected = canonicalJson({ seq: cp.seq, headHash: cp.headHash, ts: cp.ts });
    return new TextDecoder().decode(payload) === expected;
  } catch {
    return false;
  }
}

export type ChainProblem =
  | 'SEQ_GAP'
  | 'PREV_HASH_MISMATCH'
  | 'HASH_MISMATCH'
  | 'CHECKPOINT_SIGNATURE_INVALID'
  | 'CHECKPOINT_MISMATCH'
  | 'TRUNCATED'
  /** only when the verifier was asked to require it: records after the newest checkpoint */
  | 'UNANCHORED_TAIL';

/**
 * What a walk of the log found:
 * - `intact`: every record links, and the newest record is covered by a signed checkpoint;
 * - `unanchored_tail`: every record links, but the newest records come after the newest signed
 *   checkpoint: nothing signed says they exist, so deleting or rewriting them (and only them)
 *   would not be detected. `unanchored` says how many and since when. A running server always
 *   has such a tail, bounded by `audit.checkpoint_every` and `audit.checkpoint_interval`;
 * - `broken`: a link, a hash or a checkpoint does not hold (`problem`).
 */
export type ChainStatus = 'intact' | 'unanchored_tail' | 'broken';

/** The records after the newest verified checkpoint. */
export interface UnanchoredTail {
  readonly records: number;
  readonly fromSeq: number;
  readonly toSeq: number;
  /** `ts` of the oldest of them (ms since the epoch) */
  readonly sinceTs: number;
  /** `ts` of the newest of them */
  readonly untilTs: number;
}

export interface ChainVerdict {
  /** no tampering found (also true with an unanchored tail: see `status`) */
  readonly ok: boolean;
  readonly status: ChainStatus;
  readonly records: number;
  readonly checkpointsVerified: number;
  /** the seq the newest verified checkpoint covers (0: none) */
  readonly anchoredSeq: number;
  readonly headHash: string;
  /** present when `status` is unanchored_tail */
  readonly unanchored?: UnanchoredTail;
  /** the first broken link, when not ok */
  readonly problem?: { code: ChainProblem; seq: number; message: string };
}

/**
 * Walks the chain record by record (feed them in ascending order) and then checks the signed
 * checkpoints: an edit breaks a hash, a deletion or reorder breaks seq/prevHash, and a cut
 * that reaches into a signed checkpoint leaves it pointing past the end. Records after the
 * newest checkpoint are reported as an unanchored tail: the chain alone cannot tell whether
 * some of them were cut.
 */
export class ChainVerifier {
  private expectedSeq = 1;
  private prevHash = GENESIS_HASH;
  private lastTs = 0;
  private problem: ChainVerdict['problem'];
  private readonly hashesAt = new Map<number, string>();
  /** ts of the record after each checkpoint (and of the first record): where a tail begins */
  private readonly tsAfter = new Map<number, number>();

  private readonly hasher: Hasher;
  private readonly checkpointSeqs: ReadonlySet<number>;

  constructor(hasher: Hasher, checkpointSeqs: ReadonlySet<number>) {
    this.hasher = hasher;
    this.checkpointSeqs = checkpointSeqs;
  }

  /** returns false once a problem was found (stop feeding) */
  feed(r: AuditRecord): boolean {
    return this.check(r, () => recordHash(r, this.hasher) === r.hash);
  }

  /** `feed` for a record as stored (its data as text): returns false once a problem was found */
  feedStored(r: StoredAuditRecord): boolean {
    return this.check(r, () => storedRecordMatches(r, this.hasher));
  }

  private check(r: Omit<AuditRecord, 'data'>, hashMatches: () => boolean): boolean {
    if (this.problem) return false;
    if (r.seq !== this.expectedSeq) {
      this.problem = {
        code: 'SEQ_GAP',
        seq: this.expectedSeq,
        message: `expected record ${this.expectedSeq}, found ${r.seq}: a record was deleted or reordered`,
      };
      return false;
    }
    if (r.prevHash !== this.prevHash) {
      this.problem = { code: 'PREV_HASH_MISMATCH', seq: r.seq, message: `record ${r.seq} does not link to record ${r.seq - 1}` };
      return false;
    }
    if (!hashMatches()) {
      this.problem = { code: 'HASH_MISMATCH', seq: r.seq, message: `record ${r.seq} was modified: its content does not match its hash` };
      return false;
    }
    if (this.checkpointSeqs.has(r.seq)) this.hashesAt.set(r.seq, r.hash);
    if (r.seq === 1 || this.checkpointSeqs.has(r.seq - 1)) this.tsAfter.set(r.seq - 1, r.ts);
    this.prevHash = r.hash;
    this.lastTs = r.ts;
    this.expectedSeq += 1;
    return true;
  }

  async finish(checkpoints: readonly Checkpoint[], publicKeys: ReadonlyMap<string, JsonObject>): Promise<ChainVerdict> {
    const records = this.expectedSeq - 1;
    const base = { records, headHash: this.prevHash };
    const broken = (verified: number, anchoredSeq: number, problem: NonNullable<ChainVerdict['problem']>): ChainVerdict => ({
      ok: false,
      status: 'broken',
      checkpointsVerified: verified,
      anchoredSeq,
      ...base,
      problem,
    });
    if (this.problem) return broken(0, 0, this.problem);
    let verified = 0;
    let anchoredSeq = 0;
    for (const cp of [...checkpoints].sort((a, b) => a.seq - b.seq)) {
      if (!(await verifyCheckpointSignature(cp, publicKeys))) {
        return broken(verified, anchoredSeq, { code: 'CHECKPOINT_SIGNATURE_INVALID', seq: cp.seq, message: `checkpoint at record ${cp.seq} has an invalid signature` });
      }
      if (cp.seq > records) {
        return broken(verified, anchoredSeq, {
          code: 'TRUNCATED',
          seq: records + 1,
          message: `a signed checkpoint covers ${cp.seq} records but the log ends at ${records}: the tail was cut`,
        });
      }
      if (this.hashesAt.get(cp.seq) !== cp.headHash) {
        return broken(verified, anchoredSeq, { code: 'CHECKPOINT_MISMATCH', seq: cp.seq, message: `record ${cp.seq} differs from the signed checkpoint` });
      }
      verified += 1;
      anchoredSeq = cp.seq;
    }
    if (anchoredSeq === records) return { ok: true, status: 'intact', checkpointsVerified: verified, anchoredSeq, ...base };
    const unanchored: UnanchoredTail = {
      records: records - anchoredSeq,
      fromSeq: anchoredSeq + 1,
      toSeq: records,
      sinceTs: this.tsAfter.get(anchoredSeq) ?? this.lastTs,
      untilTs: this.lastTs,
    };
    return { ok: true, status: 'unanchored_tail', checkpointsVerified: verified, anchoredSeq, ...base, unanchored };
  }
}

/** Records for a walk of the chain: as stored (`readStored`, the quicker) or as domain records. */
export type ChainSource =
  | { readStored(fromSeq: number, limit: number): Promise<StoredAuditRecord[]> }
  | { readRange(fromSeq: number, limit: number): Promise<AuditRecord[]> };

/** records read at once by `verifyAuditLog` (`mandate audit verify`, /v1/audit/verify) */
export const AUDIT_WALK_PAGE_SIZE = 256;

/**
 * Verifies a whole log held by a reader, page by page: memory stays flat in the log's size (two
 * pages, and one hash per checkpoint). The next page is read while this one is checked (a
 * round trip to a database server overlaps the hashing); pages are small so that their records
 * die young in the garbage collector instead of filling the old generation.
 */
export async function verifyAuditLog(
  reader: ChainSource,
  checkpoints: readonly Checkpoint[],
  publicKeys: ReadonlyMap<string, JsonObject>,
  hasher: Hasher,
  pageSize = AUDIT_WALK_PAGE_SIZE,
): Promise<ChainVerdict> {
  const verifier = new ChainVerifier(hasher, new Set(checkpoints.map((c) => c.seq)));
  const read = (from: number): Promise<readonly (AuditRecord | StoredAuditRecord)[]> =>
    'readStored' in reader ? reader.readStored(from, pageSize) : reader.readRange(from, pageSize);
  let next: Promise<readonly (AuditRecord | StoredAuditRecord)[]> | undefined = read(1);
  while (next !== undefined) {
    const page: readonly (AuditRecord | StoredAuditRecord)[] = await next;
    next = page.length === pageSize ? read((page[page.length - 1] as AuditRecord).seq + 1) : undefined;
    let ok = true;
    for (const r of page) {
      if (!('dataText' in r ? verifier.feedStored(r) : verifier.feed(r))) {
        ok = false;
        break;
      }
    }
    if (!ok) {
      // the page read ahead is not needed; its failure is not this verdict's
      await next?.catch(() => undefined);
      break;
    }
  }
  return verifier.finish(checkpoints, publicKeys);
}
