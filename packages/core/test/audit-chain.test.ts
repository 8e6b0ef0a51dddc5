import fc from 'fast-check';
import { generateKeyPair, exportJWK } from 'jose';
import { describe, expect, it } from 'vitest';
import { canonicalJson, linkRecords, sealJson, signCheckpoint, storedRecordMatches, verifyAuditLog, type AuditRecord, type JsonObject, type StoredAuditRecord } from '../src/index.ts';
import { recordHashInput } from '../src/audit/chain.ts';
import { hasher } from './helpers.ts';

async function fixture(n = 10) {
  const drafts = Array.from({ length: n }, (_, i) => ({ kind: 'decision' as const, ts: 1000 + i, callId: `c${i}`, taskId: 't', data: { i } }));
  const records = linkRecords(undefined, drafts, hasher);
  const { publicKey, privateKey } = await generateKeyPair('EdDSA', { extractable: true });
  const kid = 'k1';
  const privateJwk = { ...(await exportJWK(privateKey)), kid } as JsonObject;
  const keys = new Map([[kid, { ...(await exportJWK(publicKey)), kid } as JsonObject]]);
  const last = records[records.length - 1] as AuditRecord;
  const cp = await signCheckpoint({ seq: last.seq, hash: last.hash }, 2000, { kid, privateJwk });
  return { records, keys, checkpoints: [cp], privateJwk };
}

const reader = (records: AuditRecord[]) => ({
  readRange: async (from: number, limit: number) => records.filter((r) => r.seq >= from).slice(0, limit),
});

describe('audit chain verification', () => {
  it('accepts an untouched log', async () => {
    const f = await fixture();
    const v = await verifyAuditLog(reader(f.records), f.checkpoints, f.keys, hasher, 3);
    expect(v).toMatchObject({ ok: true, records: 10, checkpointsVerified: 1 });
  });
  it('detects an edited record', async () => {
    const f = await fixture();
    const edited = f.records.map((r) => (r.seq === 4 ? { ...r, data: { i: 99 } } : r));
    expect((await verifyAuditLog(reader(edited), f.checkpoints, f.keys, hasher)).problem).toMatchObject({ code: 'HASH_MISMATCH', seq: 4 });
  });
  it('detects an edited record whose hash was recomputed', async () => {
    const f = await fixture();
    const edited = f.records.map((r) => (r.seq === 4 ? linkRecords({ seq: 3, hash: r.prevHash }, [{ ...r, data: { i: 99 } }], hasher)[0] as AuditRecord : r));
    expect((await verifyAuditLog(reader(edited), f.checkpoints, f.keys, hasher)).problem).toMatchObject({ code: 'PREV_HASH_MISMATCH', seq: 5 });
  });
  it('detects a deleted record', async () => {
    const f = await fixture();
    expect((await verifyAuditLog(reader(f.records.filter((r) => r.seq !== 6)), f.checkpoints, f.keys, hasher)).problem).toMatchObject({ code: 'SEQ_GAP', seq: 6 });
  });
  it('detects reordered records', async () => {
    const f = await fixture();
    const swapped = f.records.map((r) => (r.seq === 2 ? { ...(f.records[2] as AuditRecord), seq: 2 } : r.seq === 3 ? { ...(f.records[1] as AuditRecord), seq: 3 } : r));
    expect((await verifyAuditLog(reader(swapped), f.checkpoints, f.keys, hasher)).ok).toBe(false);
  });
  it('detects a cut tail through the signed checkpoint', async () => {
    const f = await fixture();
    const v = await verifyAuditLog(reader(f.records.slice(0, 7)), f.checkpoints, f.keys, hasher);
    expect(v.problem).toMatchObject({ code: 'TRUNCATED', seq: 8 });
  });
  it('detects a forged checkpoint', async () => {
    const f = await fixture();
    const forged = [{ ...(f.checkpoints[0] as (typeof f.checkpoints)[number]), seq: 5 }];
    expect((await verifyAuditLog(reader(f.records), forged, f.keys, hasher)).problem?.code).toBe('CHECKPOINT_SIGNATURE_INVALID');
  });
});

describe('the unanchored tail', () => {
  /** ten records and a checkpoint over the first `at` of them */
  async function tailFixture(at: number) {
    const f = await fixture();
    const r = f.records[at - 1] as AuditRecord;
    return { ...f, checkpoints: [await resign(f, r)] };
  }
  /** a checkpoint over `r`, signed with the fixture's key */
  async function resign(f: Awaited<ReturnType<typeof fixture>>, r: AuditRecord) {
    return signCheckpoint({ seq: r.seq, hash: r.hash }, 3000, { kid: 'k1', privateJwk: f.privateJwk });
  }

  it('calls a log whose newest record is covered by a checkpoint intact', async () => {
    const f = await fixture();
    expect(await verifyAuditLog(reader(f.records), f.checkpoints, f.keys, hasher)).toMatchObject({ ok: true, status: 'intact', anchoredSeq: 10 });
  });

  it('reports the records after the newest checkpoint as an unanchored tail: how many, from which, since when', async () => {
    const f = await tailFixture(6);
    const v = await verifyAuditLog(reader(f.records), f.checkpoints, f.keys, hasher);
    expect(v).toMatchObject({ ok: true, status: 'unanchored_tail', anchoredSeq: 6, records: 10 });
    expect(v.unanchored).toEqual({ records: 4, fromSeq: 7, toSeq: 10, sinceTs: 1006, untilTs: 1009 });
  });

  it('reports a tail cut after the newest checkpoint as unanchored, never as intact', async () => {
    const f = await tailFixture(6);
    const v = await verifyAuditLog(reader(f.records.slice(0, 8)), f.checkpoints, f.keys, hasher);
    expect(v.status).toBe('unanchored_tail');
    expect(v.unanchored).toMatchObject({ records: 2, fromSeq: 7, toSeq: 8 });
  });

  it('reports a whole log without a checkpoint as unanchored from its first record', async () => {
    const f = await fixture();
    const v = await verifyAuditLog(reader(f.records), [], f.keys, hasher);
    expect(v).toMatchObject({ ok: true, status: 'unanchored_tail', checkpointsVerified: 0, anchoredSeq: 0 });
    expect(v.unanchored).toMatchObject({ records: 10, fromSeq: 1, sinceTs: 1000 });
  });

  it('calls an empty log intact and a broken one broken', async () => {
    expect(await verifyAuditLog(reader([]), [], new Map(), hasher)).toMatchObject({ ok: true, status: 'intact', records: 0 });
    const f = await fixture();
    expect(await verifyAuditLog(reader(f.records.slice(0, 7)), f.checkpoints, f.keys, hasher)).toMatchObject({ ok: false, status: 'broken' });
  });
});

describe('record hash input', () => {
  it('is exactly the canonical JSON of the record without its hash, for any record', () => {
    // text of every kind: what JSON.stringify escapes (quotes, backslashes, controls, lone surrogates) or not
    const opt = fc.option(fc.oneof(fc.string({ unit: 'grapheme' }), fc.string({ unit: 'binary' }), fc.string({ unit: fc.constantFrom('"', '\\', '\u0000', '\u001f', '\u007f', '\u2028', 'a', '~') })), { nil: undefined });
    fc.assert(
      fc.property(
        fc.record({
          seq: fc.nat(),
          ts: fc.integer({ min: 0, max: 2 ** 50 }),
          kind: fc.constantFrom('decision' as const, 'action' as const, 'outcome' as const, 'task.started' as const),
          callId: opt,
          taskId: opt,
          agentId: opt,
          txn: opt,
          data: fc.dictionary(fc.string(), fc.jsonValue()),
          prevHash: fc.string({ minLength: 1, maxLength: 64 }),
        }),
        fc.boolean(),
        (r, sealed) => {
          const rec = { ...r, data: sealed ? sealJson(r.data as JsonObject) : (r.data as JsonObject) };
          const generic = canonicalJson({ seq: rec.seq, ts: rec.ts, kind: rec.kind, callId: rec.callId, taskId: rec.taskId, agentId: rec.agentId, txn: rec.txn, data: rec.data, prevHash: rec.prevHash });
          expect(recordHashInput(rec)).toBe(generic);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('a walk over records as stored (data as text)', () => {
  const stored = (records: AuditRecord[], text: (r: AuditRecord) => string = (r) => canonicalJson(r.data)): StoredAuditRecord[] =>
    records.map(({ data, ...rest }) => ({ ...rest, dataText: text({ ...rest, data }) }));
  const storedReader = (rows: StoredAuditRecord[]) => ({
    readStored: async (from: number, limit: number) => rows.filter((r) => r.seq >= from).slice(0, limit),
  });

  it('accepts an untouched log read as stored text, page by page', async () => {
    const f = await fixture();
    expect(await verifyAuditLog(storedReader(stored(f.records)), f.checkpoints, f.keys, hasher, 3)).toMatchObject({ ok: true, status: 'intact', records: 10, checkpointsVerified: 1 });
  });

  it('detects stored text edited to another value', async () => {
    const f = await fixture();
    const rows = stored(f.records, (r) => (r.seq === 4 ? '{"i":99}' : canonicalJson(r.data)));
    expect(await verifyAuditLog(storedReader(rows), f.checkpoints, f.keys, hasher, 3)).toMatchObject({ ok: false, problem: { code: 'HASH_MISMATCH', seq: 4 } });
  });

  it('reads stored text that is the same value written differently as that value (spaces, key order)', async () => {
    const f = await fixture();
    const rows = stored(f.records, (r) => (r.seq === 4 ? ' { "i" : 3 } ' : canonicalJson(r.data)));
    expect(await verifyAuditLog(storedReader(rows), f.checkpoints, f.keys, hasher)).toMatchObject({ ok: true, status: 'intact', records: 10 });
  });

  it('reports stored text that is not a JSON object as modified, even when its hash was computed over it', () => {
    const [r] = linkRecords(undefined, [{ kind: 'decision', ts: 1, data: {} }], hasher) as [AuditRecord];
    for (const bad of ['"x"', '[1]', 'null', '{"a":1', '{"a":1}}', '{"a":1} ']) {
      // a hash over the raw text in the data position, as a forger who can write rows would compute it
      const { data: _, ...rest } = r;
      const forged = { ...rest, dataText: bad };
      const input = recordHashInput({ ...rest, data: { PLACEHOLDER: true } }).replace('{"PLACEHOLDER":true}', bad);
      expect(storedRecordMatches({ ...forged, hash: hasher.sha256Hex(input) }, hasher)).toBe(false);
    }
  });

  it('gives the same verdict as the walk over parsed records, for any edit of one record', async () => {
    const f = await fixture(6);
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 6 }), fc.jsonValue(), async (seq, value) => {
        const edited = f.records.map((r) => (r.seq === seq ? { ...r, data: { v: value } as JsonObject } : r));
        const a = await verifyAuditLog(reader(edited), f.checkpoints, f.keys, hasher, 4);
        const b = await verifyAuditLog(storedReader(stored(edited)), f.checkpoints, f.keys, hasher, 4);
        expect(b).toEqual(a);
      }),
      { numRuns: 100 },
    );
  });
});
