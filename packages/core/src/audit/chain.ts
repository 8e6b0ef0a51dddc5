import { CompactSign, compactVerify, importJWK, type JWK } from 'jose';
import { canonicalJson, type JsonObject } from '../json.ts';
import type { Hasher } from '../ports.ts';
import { GENESIS_HASH, recordHash } from './link.ts';

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
    const h = recordHash(r, this.hasher);
    if (h !== r.hash) {
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

/** Verifies a whole log held by a reader, page by page. */
export async function verifyAuditLog(
  reader: { readRange(fromSeq: number, limit: number): Promise<AuditRecord[]> },
  checkpoints: readonly Checkpoint[],
  publicKeys: ReadonlyMap<string, JsonObject>,
  hasher: Hasher,
  pageSize = 1000,
): Promise<ChainVerdict> {
  const verifier = new ChainVerifier(hasher, new Set(checkpoints.map((c) => c.seq)));
  let from = 1;
  for (;;) {
    const page = await reader.readRange(from, pageSize);
    if (page.length === 0) break;
    let ok = true;
    for (const r of page) {
      if (!verifier.feed(r)) {
        ok = false;
        break;
      }
    }
    if (!ok) break;
    from = (page[page.length - 1] as AuditRecord).seq + 1;
    if (page.length < pageSize) break;
  }
  return verifier.finish(checkpoints, publicKeys);
}
