/**
 * One report of an audit walk for the CLI (`audit verify`) and the API (/v1/audit/verify): the
 * chain against every signed checkpoint known (the store's, the data folder's copy, and those of
 * an anchor file), the unanchored tail (how many records no checkpoint covers, since when), and
 * how far the external anchors reach.
 */
import { verifyAuditLog, type ChainSource, type ChainVerdict, type Checkpoint, type Hasher, type JsonObject } from '@mandate/core';
import { mergeCheckpoints } from './audit-files.ts';

export interface AuditVerifyInput {
  readonly reader: ChainSource;
  /** the store's checkpoints and the data folder's copy */
  readonly checkpoints: readonly Checkpoint[];
  /** checkpoints read from an anchor file (outside the data folder), and where from */
  readonly anchors?: { readonly source: string; readonly checkpoints: readonly Checkpoint[] } | undefined;
  readonly publicKeys: ReadonlyMap<string, JsonObject>;
  readonly hasher: Hasher;
  /** a non-empty log must be covered by at least one checkpoint */
  readonly requireCheckpoint?: boolean;
  /** every record must be covered by a checkpoint (a log whose server stopped cleanly) */
  readonly requireAnchored?: boolean;
}

/** The wire shape (snake_case), the same from the CLI's --json and from the API. */
export interface AuditReport {
  ok: boolean;
  status: ChainVerdict['status'];
  records: number;
  checkpoints_verified: number;
  /** the seq the newest verified checkpoint covers (0: none) */
  anchored_seq: number;
  head_hash: string;
  /** records after the newest checkpoint: nothing signed says they exist */
  unanchored: { records: number; from_seq: number; to_seq: number; since: string; until: string } | null;
  /** what the anchor file holds, when one was given */
  anchors: { source: string; checkpoints: number; newest_seq: number; newest_at: string | null; records_after: number } | null;
  problem: { code: string; seq: number; message: string } | null;
  warning: string | null;
}

const iso = (ms: number): string => new Date(ms).toISOString();

export async function verifyAudit(input: AuditVerifyInput): Promise<AuditReport> {
  const anchored = input.anchors?.checkpoints ?? [];
  let v: ChainVerdict = await verifyAuditLog(input.reader, mergeCheckpoints(input.checkpoints, anchored), input.publicKeys, input.hasher);
  if (v.problem?.code === 'TRUNCATED' && anchored.some((a) => a.seq > v.records) && !input.checkpoints.some((c) => c.seq > v.records)) {
    // only the copy kept outside names the lost records: the newest checkpoint went with them
    const newest = Math.max(...anchored.map((a) => a.seq));
    v = { ...v, problem: { ...v.problem, message: `an anchored checkpoint covers ${newest} records but the log ends at ${v.records}: the log was cut back to an older checkpoint (the newer checkpoints were deleted with the records after them)` } };
  }
  if (v.ok && input.requireCheckpoint === true && v.records > 0 && v.checkpointsVerified === 0) {
    v = { ...v, ok: false, status: 'broken', problem: { code: 'TRUNCATED', seq: 1, message: 'no signed checkpoint verifies: a cut tail or a rewritten log cannot be excluded' } };
  } else if (v.ok && input.requireAnchored === true && v.unanchored !== undefined) {
    const t = v.unanchored;
    v = { ...v, ok: false, problem: { code: 'UNANCHORED_TAIL', seq: t.fromSeq, message: `${t.records} record(s) after the newest signed checkpoint (${t.fromSeq}..${t.toSeq}, since ${iso(t.sinceTs)}) are not covered by one` } };
  }
  const t = v.unanchored;
  let warning: string | null = null;
  if (v.problem === undefined && t !== undefined) {
    warning =
      v.checkpointsVerified === 0
        ? 'no signed checkpoint yet, so a cut tail could not be detected'
        : `the last ${t.records} record(s) (${t.fromSeq}..${t.toSeq}, since ${iso(t.sinceTs)}) come after the newest signed checkpoint: deleting or rewriting them would not be detected`;
  }
  let anchors: AuditReport['anchors'] = null;
  if (input.anchors !== undefined) {
    const newest = anchored.reduce<Checkpoint | undefined>((m, c) => (m === undefined || c.seq > m.seq ? c : m), undefined);
    anchors = {
      source: input.anchors.source,
      checkpoints: anchored.length,
      newest_seq: newest?.seq ?? 0,
      newest_at: newest === undefined ? null : iso(newest.ts),
      records_after: Math.max(0, v.records - (newest?.seq ?? 0)),
    };
  }
  return {
    ok: v.ok,
    status: v.status,
    records: v.records,
    checkpoints_verified: v.checkpointsVerified,
    anchored_seq: v.anchoredSeq,
    head_hash: v.headHash,
    unanchored: t === undefined ? null : { records: t.records, from_seq: t.fromSeq, to_seq: t.toSeq, since: iso(t.sinceTs), until: iso(t.untilTs) },
    anchors,
    problem: v.problem ?? null,
    warning,
  };
}
