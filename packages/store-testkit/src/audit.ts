import { describe, expect, it } from 'vitest';
import { canonicalJson, GENESIS_HASH, recordHash, storedRecordMatches, verifyAuditLog, type AuditDraft, type AuditRecord } from '@mandate/core';
import { draft, sha256, T0, type GetStore } from './fixtures.ts';

/** asserts seq 1..N with no gap, each record linked to the one before and hashed correctly */
function expectIntactChain(records: readonly AuditRecord[]): void {
  let prev = GENESIS_HASH;
  records.forEach((r, i) => {
    expect(r.seq).toBe(i + 1);
    expect(r.prevHash).toBe(prev);
    expect(r.hash).toBe(recordHash(r, sha256));
    prev = r.hash;
  });
}

/** what a record must hold besides its chain fields: the draft, with absent fields undefined */
function expectRecordOf(r: AuditRecord | undefined, d: AuditDraft): void {
  expect(r).toMatchObject({ kind: d.kind, ts: d.ts, data: d.data });
  expect(r?.callId).toBe(d.callId);
  expect(r?.taskId).toBe(d.taskId);
  expect(r?.agentId).toBe(d.agentId);
  expect(r?.txn).toBe(d.txn);
}

function methodNames(o: object): string[] {
  const names = new Set<string>();
  for (let p: object | null = o; p !== null && p !== Object.prototype; p = Object.getPrototypeOf(p) as object | null) {
    for (const n of Object.getOwnPropertyNames(p)) names.add(n);
  }
  return [...names];
}

export function auditSuite(store: GetStore): void {
  describe('audit', () => {
    it('has no head and no records while empty', async () => {
      expect(await store().audit.head()).toBeUndefined();
      expect(await store().audit.readRange(1, 10)).toEqual([]);
    });

    it('starts the chain at seq 1, linked to the genesis hash', async () => {
      const [r] = await store().audit.append([draft(1)]);
      expect(r?.seq).toBe(1);
      expect(r?.prevHash).toBe(GENESIS_HASH);
      expect(r?.hash).toBe(recordHash(r as AuditRecord, sha256));
      expectRecordOf(r, draft(1));
    });

    it('keeps the records of one append in order and returns them as stored', async () => {
      const drafts = [draft(1), draft(2, { kind: 'signal' }), draft(3, { kind: 'action' })];
      const records = await store().audit.append(drafts);
      expect(records.map((r) => r.seq)).toEqual([1, 2, 3]);
      drafts.forEach((d, i) => expectRecordOf(records[i], d));
      expect(await store().audit.readRange(1, 10)).toEqual(records);
      expectIntactChain(records);
    });

    it('stores records whose optional fields are absent', async () => {
      const d: AuditDraft = { kind: 'key.rotated', ts: T0, data: { kid: 'k2' } };
      const [r] = await store().audit.append([d]);
      expectRecordOf(r, d);
      const [read] = await store().audit.readRange(1, 1);
      expectRecordOf(read, d);
      expect(read?.hash).toBe(recordHash(read as AuditRecord, sha256));
    });

    it('resolves an empty append with no records and writes nothing', async () => {
      expect(await store().audit.append([])).toEqual([]);
      expect(await store().audit.head()).toBeUndefined();
    });

    it('continues the chain across appends made one after another', async () => {
      for (let i = 1; i <= 5; i++) await store().audit.append([draft(i)]);
      const all = await store().audit.readRange(1, 100);
      expect(all).toHaveLength(5);
      expectIntactChain(all);
    });

    it('links concurrent batches into one contiguous chain, each batch kept together and in order', async () => {
      const batches = Array.from({ length: 20 }, (_, b) => Array.from({ length: 1 + (b % 5) }, (_, i) => draft(b * 10 + i, { callId: `call-${b}` })));
      const results = await Promise.all(batches.map((batch) => store().audit.append(batch)));
      const total = batches.reduce((n, b) => n + b.length, 0);
      const all = await store().audit.readRange(1, 1000);
      expect(all).toHaveLength(total);
      expectIntactChain(all);
      results.forEach((records, b) => {
        const batch = batches[b] as AuditDraft[];
        expect(records).toHaveLength(batch.length);
        records.forEach((r, i) => {
          expectRecordOf(r, batch[i] as AuditDraft);
          if (i > 0) expect(r.seq).toBe((records[i - 1] as AuditRecord).seq + 1);
          expect(all[r.seq - 1]).toEqual(r);
        });
      });
      const verdict = await verifyAuditLog(store().audit, [], new Map(), sha256, 7);
      expect(verdict).toMatchObject({ ok: true, records: total });
    });

    it('fails only the append whose draft cannot be stored, not the others committed with it', async () => {
      const bad = draft(2, { data: { amount: Number.NaN } });
      const [good, failed, later] = await Promise.allSettled([
        store().audit.append([draft(1)]),
        store().audit.append([bad]),
        store().audit.append([draft(3)]),
      ]);
      expect(good.status).toBe('fulfilled');
      expect(failed.status).toBe('rejected');
      expect(later.status).toBe('fulfilled');
      const all = await store().audit.readRange(1, 10);
      expect(all.map((r) => r.ts)).toEqual([T0 + 1, T0 + 3]);
      expectIntactChain(all);
    });

    it('reports the last record as the head', async () => {
      await store().audit.append([draft(1), draft(2)]);
      const second = await store().audit.append([draft(3), draft(4), draft(5)]);
      await store().audit.append([draft(6)]);
      const head = await store().audit.head();
      expect(head?.seq).toBe(6);
      expect(second.map((r) => r.seq)).toEqual([3, 4, 5]);
      expect(head).toEqual((await store().audit.readRange(6, 1))[0]);
    });

    it('pages through the log with readRange', async () => {
      await store().audit.append(Array.from({ length: 25 }, (_, i) => draft(i + 1)));
      const p1 = await store().audit.readRange(1, 10);
      const p2 = await store().audit.readRange(11, 10);
      const p3 = await store().audit.readRange(21, 10);
      expect(p1.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      expect(p2.map((r) => r.seq)).toEqual([11, 12, 13, 14, 15, 16, 17, 18, 19, 20]);
      expect(p3.map((r) => r.seq)).toEqual([21, 22, 23, 24, 25]);
      expect(await store().audit.readRange(26, 10)).toEqual([]);
      expect((await store().audit.readRange(0, 2)).map((r) => r.seq)).toEqual([1, 2]);
      expect((await store().audit.readRange(24, 0))).toEqual([]);
      expectIntactChain([...p1, ...p2, ...p3]);
    });

    it('reads records as stored (data as its canonical text) page by page, the same records as readRange', async () => {
      await store().audit.append(Array.from({ length: 25 }, (_, i) => draft(i + 1, i % 2 === 0 ? { txn: undefined, agentId: undefined } : {})));
      const all = await store().audit.readRange(1, 100);
      const pages = [...(await store().audit.readStored(1, 10)), ...(await store().audit.readStored(11, 10)), ...(await store().audit.readStored(21, 10))];
      expect(pages).toEqual(all.map(({ data, ...rest }) => ({ ...rest, dataText: canonicalJson(data) })));
      expect(await store().audit.readStored(26, 10)).toEqual([]);
      expect(await store().audit.readStored(3, 0)).toEqual([]);
      expect(pages.every((r) => storedRecordMatches(r, sha256))).toBe(true);
    });

    it('reads the records of one task in order, up to the limit', async () => {
      await store().audit.append([
        draft(1, { taskId: 'task-a', callId: 'call-a1' }),
        draft(2, { taskId: 'task-b', callId: 'call-b1' }),
        draft(3, { taskId: 'task-a', callId: 'call-a2' }),
        draft(4, { taskId: undefined, callId: undefined, kind: 'key.rotated' }),
        draft(5, { taskId: 'task-a', callId: 'call-a2', kind: 'outcome' }),
      ]);
      expect((await store().audit.readByTask('task-a', 10)).map((r) => r.seq)).toEqual([1, 3, 5]);
      expect((await store().audit.readByTask('task-a', 2)).map((r) => r.seq)).toEqual([1, 3]);
      expect((await store().audit.readByTask('task-b', 10)).map((r) => r.seq)).toEqual([2]);
      expect(await store().audit.readByTask('task-none', 10)).toEqual([]);
      expect((await store().audit.readByTask('task-a', 10))[0]).toEqual((await store().audit.readRange(1, 1))[0]);
    });

    it("never mixes into a task's records another task's call whose id equals that task's id", async () => {
      // call ids are chosen by agents: task-b's agent names its call after task-a
      await store().audit.append([
        draft(1, { taskId: 'task-a', callId: 'call-1' }),
        draft(2, { taskId: 'task-b', callId: 'task-a' }),
        draft(3, { taskId: 'task-b', callId: 'call-1' }),
      ]);
      expect((await store().audit.readByTask('task-a', 10)).map((r) => r.seq)).toEqual([1]);
      expect((await store().audit.readByTask('call-1', 10)).map((r) => r.seq)).toEqual([]);
    });

    it('offers no way to change or delete a record', () => {
      const names = methodNames(store().audit);
      expect(names.filter((n) => /update|delete|remove|truncate|clear|put|set|replace|edit/i.test(n))).toEqual([]);
    });
  });
}
