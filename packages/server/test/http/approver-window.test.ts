import { describe, expect, it } from 'vitest';
import { ApproverWindow } from '../../src/http/routes/approvals.ts';

const MINUTE = 60_000;

describe('the per-approver decision window', () => {
  it('refuses an approver past the limit within the window, and admits them once it passed', () => {
    const w = new ApproverWindow(2, 10 * MINUTE);
    w.take('op_a', 0);
    w.take('op_a', MINUTE);
    expect(() => w.take('op_a', 2 * MINUTE)).toThrow(expect.objectContaining({ code: 'RATE_LIMITED' }));
    // others are counted apart
    w.take('op_b', 2 * MINUTE);
    // the first decision left the window: one slot again
    w.take('op_a', 10 * MINUTE);
    expect(() => w.take('op_a', 10 * MINUTE + 1)).toThrow(expect.objectContaining({ code: 'RATE_LIMITED' }));
  });

  it('forgets approvers whose last decision left the window', () => {
    const w = new ApproverWindow(5, 10 * MINUTE);
    for (let i = 0; i < 1000; i++) w.take(`op_${i}`, i);
    expect(w.size).toBe(1000);
    // a window later, one decision sweeps away everyone idle since
    w.take('op_late', 10 * MINUTE + 1000);
    expect(w.size).toBe(1);
    // an approver still inside the window is kept, with their count
    const k = new ApproverWindow(1, 10 * MINUTE);
    k.take('op_busy', 0);
    k.take('op_other', 10 * MINUTE - 1);
    k.take('op_x', 10 * MINUTE);
    expect(k.size).toBe(2);
    expect(() => k.take('op_other', 10 * MINUTE + 1)).toThrow(expect.objectContaining({ code: 'RATE_LIMITED' }));
  });
});
