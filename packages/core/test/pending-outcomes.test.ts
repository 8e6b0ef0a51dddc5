/**
 * The allowed calls awaiting their outcome: keyed by task and call id, at most `max`, the oldest
 * forgotten first, each taken once; checked against a plain model over random sequences.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PendingOutcomes } from '@mandate/core';

const call = (tool: string, namedSource = false, shared?: string) => ({ tool, namedSource, shared });

describe('pending outcomes', () => {
  it('returns an allowed call once, with its tool, flag and shared reach', () => {
    const p = new PendingOutcomes<string>(4);
    p.remember('task-1', 'c1', call('kb.search', true, 'wiki'));
    p.remember('task-1', 'c2', call('mail.send'));
    expect(p.take('task-1', 'c1')).toEqual({ tool: 'kb.search', namedSource: true, shared: 'wiki' });
    expect(p.take('task-1', 'c1')).toBeUndefined();
    expect(p.take('task-1', 'c2')).toEqual({ tool: 'mail.send', namedSource: false, shared: undefined });
    expect(p.size).toBe(0);
  });

  it("keys a call by its task: another task's same call id neither hides nor takes it", () => {
    const p = new PendingOutcomes<string>(4);
    p.remember('task-1', 'c1', call('a'));
    p.remember('task-2', 'c1', call('b'));
    expect(p.take('task-2', 'c1')?.tool).toBe('b');
    expect(p.take('task-2', 'c1')).toBeUndefined();
    // a call id never holds a space, so no other task and call id spell the same key
    expect(p.take('task-1 c1', '')).toBeUndefined();
    expect(p.take('task-1', 'c1')?.tool).toBe('a');
  });

  it('holds at most max calls, forgetting the oldest first', () => {
    const p = new PendingOutcomes<string>(3);
    for (let i = 1; i <= 5; i++) p.remember('t', `c${i}`, call(`tool-${i}`));
    expect(p.size).toBe(3);
    expect(p.take('t', 'c1')).toBeUndefined();
    expect(p.take('t', 'c2')).toBeUndefined();
    expect(p.take('t', 'c3')?.tool).toBe('tool-3');
    expect(p.take('t', 'c5')?.tool).toBe('tool-5');
  });

  it('counts a call allowed again as the newest: its older place does not forget it', () => {
    const p = new PendingOutcomes<string>(3);
    p.remember('t', 'c1', call('old', false, 'kept-apart'));
    p.remember('t', 'c2', call('x'));
    p.remember('t', 'c1', call('new'));
    p.remember('t', 'c3', call('y')); // takes c1's first slot
    p.remember('t', 'c4', call('z')); // takes c2's
    expect(p.take('t', 'c2')).toBeUndefined();
    expect(p.take('t', 'c1')).toEqual({ tool: 'new', namedSource: false, shared: undefined });
  });

  it('refuses a bound that is not a positive integer', () => {
    for (const max of [0, -1, 1.5, Number.NaN]) expect(() => new PendingOutcomes(max)).toThrow(TypeError);
  });

  it('answers like a model that keeps the last max calls allowed, whatever the order of calls and outcomes', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('allow' as const), task: fc.constantFrom('t1', 't2', 't 1'), id: fc.constantFrom('1', '2', '3', 'c'), tool: fc.constantFrom('a', 'b'), named: fc.boolean() }),
      fc.record({ kind: fc.constant('take' as const), task: fc.constantFrom('t1', 't2', 't 1', 't1 1'), id: fc.constantFrom('1', '2', '3', 'c', '') }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.array(op, { maxLength: 60 }), (max, ops) => {
        const p = new PendingOutcomes<number>(max);
        // the model: every allow in order, an entry live while among the last max allows and not taken or allowed again since
        const allows: { task: string; id: string; tool: string; named: boolean; at: number; live: boolean }[] = [];
        ops.forEach((o, at) => {
          if (o.kind === 'allow') {
            for (const a of allows) if (a.task === o.task && a.id === o.id) a.live = false;
            allows.push({ task: o.task, id: o.id, tool: o.tool, named: o.named, at, live: true });
            p.remember(o.task, o.id, { tool: o.tool, namedSource: o.named, shared: o.named ? at : undefined });
          } else {
            const recent = allows.slice(-max);
            const hit = recent.find((a) => a.live && a.task === o.task && a.id === o.id);
            if (hit) hit.live = false;
            expect(p.take(o.task, o.id)).toEqual(hit ? { tool: hit.tool, namedSource: hit.named, shared: hit.named ? hit.at : undefined } : undefined);
          }
          expect(p.size).toBe(allows.slice(-max).filter((a) => a.live).length);
        });
      }),
    );
  });
});
