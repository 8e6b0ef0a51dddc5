import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { TextDraft } from '../src/audit-batch.ts';
import { decodeBudgets, decodeEntries, encodeBudgets, encodeEntries, type WireEntry } from '../src/commit-protocol.ts';

/** The flat messages between the event loop and the commit thread (commit-protocol.ts). */
const text = fc.string({ maxLength: 40, unit: 'binary' });
const draft: fc.Arbitrary<TextDraft> = fc.record(
  {
    kind: fc.constantFrom('decision', 'signal', 'action', 'outcome') as fc.Arbitrary<TextDraft['kind']>,
    ts: fc.integer({ min: 0, max: 2 ** 45 }),
    callId: text,
    taskId: text,
    agentId: text,
    txn: text,
    dataText: text,
  },
  { requiredKeys: ['kind', 'ts', 'dataText'] },
);
const drafts = fc.array(draft, { maxLength: 4 });
const entry: fc.Arbitrary<WireEntry> = fc.oneof(
  fc.record({ drafts }),
  fc.record({
    drafts,
    budget: fc.record({
      taskId: text,
      tool: text,
      limits: fc.record({ calls: fc.nat(), toolCalls: fc.nat() }, { requiredKeys: [] }),
      variants: fc.record({ calls: drafts, tool: drafts }, { requiredKeys: [] }),
    }),
  }),
);

describe('commit thread messages', () => {
  it('reads back every batch of entries exactly as written (absent fields stay absent)', () => {
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 8 }), (entries) => {
        // a structured clone drops keys whose value is undefined only if they were never set: compare as the thread sees them
        const expected = entries.map((e) => ({
          drafts: e.drafts.map((d) => ({ kind: d.kind, ts: d.ts, callId: d.callId, taskId: d.taskId, agentId: d.agentId, txn: d.txn, dataText: d.dataText })),
          ...(e.budget
            ? {
                budget: {
                  ...e.budget,
                  variants: Object.fromEntries(Object.entries(e.budget.variants).map(([k, v]) => [k, v.map((d) => ({ kind: d.kind, ts: d.ts, callId: d.callId, taskId: d.taskId, agentId: d.agentId, txn: d.txn, dataText: d.dataText }))])),
                },
              }
            : {}),
        }));
        expect(decodeEntries(structuredClone(encodeEntries(entries)))).toStrictEqual(structuredClone(expected));
      }),
    );
  });

  it('refuses a batch that is cut short or carries extra fields', () => {
    const flat = encodeEntries([{ drafts: [{ kind: 'decision', ts: 1, callId: 'c', dataText: '{}' }] }]);
    expect(() => decodeEntries(flat.slice(0, -1))).toThrow(TypeError);
    expect(() => decodeEntries([...flat, 'x'])).toThrow(TypeError);
    expect(() => decodeEntries([1, 1, 'decision', null, null, null, null, null, '{}', null])).toThrow(TypeError);
  });

  it('reads back every budget outcome', () => {
    const outcome = fc.option(
      fc.oneof(
        fc.record({ ok: fc.constant(true), usage: fc.record({ calls: fc.nat(), toolCalls: fc.nat() }) }),
        fc.record({ ok: fc.constant(false), usage: fc.record({ calls: fc.nat(), toolCalls: fc.nat() }), exhausted: fc.constantFrom('calls' as const, 'tool' as const) }),
      ),
      { nil: undefined },
    );
    fc.assert(
      fc.property(fc.array(outcome, { maxLength: 8 }), (budgets) => {
        expect(decodeBudgets(encodeBudgets(budgets), budgets.length)).toStrictEqual(structuredClone(budgets));
      }),
    );
  });
});
