import { describe, expect, it } from 'vitest';
import { GroupCommit } from '../src/index.ts';

/** A timer the test fires by hand: what was asked, and whether it is still armed. */
function manualTimer() {
  const armed: { fn: () => void; ms: number; cancelled: boolean }[] = [];
  return {
    armed,
    later: (fn: () => void, ms: number) => {
      const t = { fn, ms, cancelled: false };
      armed.push(t);
      return () => {
        t.cancelled = true;
      };
    },
    live: () => armed.filter((t) => !t.cancelled),
    fire() {
      const t = armed.find((x) => !x.cancelled);
      if (!t) throw new Error('no armed timer');
      t.cancelled = true;
      t.fn();
    },
  };
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));
const schedule = (fn: () => void) => void setImmediate(fn);

/** a writer that records each batch and answers each entry with its own value */
function recorder(fail?: () => boolean) {
  const batches: string[][] = [];
  const write = (entries: readonly string[]) => {
    if (fail?.()) throw new Error('disk gone');
    batches.push([...entries]);
    return entries.map((e) => `ok:${e}`);
  };
  return { batches, write };
}

describe('group commit', () => {
  it('commits the entries of one turn in one batch, in submission order', async () => {
    const w = recorder();
    const g = new GroupCommit(w.write, schedule);
    const r = await Promise.all([g.submit('a'), g.submit('b'), g.submit('c')]);
    expect(r).toEqual(['ok:a', 'ok:b', 'ok:c']);
    expect(w.batches).toEqual([['a', 'b', 'c']]);
  });

  it('splits a long queue into batches of at most maxBatch, in order', async () => {
    const w = recorder();
    const g = new GroupCommit(w.write, schedule, { maxBatch: 2 });
    await Promise.all(['a', 'b', 'c', 'd', 'e'].map((e) => g.submit(e)));
    expect(w.batches).toEqual([['a', 'b'], ['c', 'd'], ['e']]);
  });
});

describe('group commit: lazy entries', () => {
  it('does not commit a lone lazy entry before its delay, and commits it when the delay passes', async () => {
    const w = recorder();
    const t = manualTimer();
    const g = new GroupCommit(w.write, schedule, { lazyDelayMs: 7, later: t.later });
    let settled = false;
    const p = g.submit('outcome', { lazy: true }).then((r) => {
      settled = true;
      return r;
    });
    await turn();
    await turn();
    expect(w.batches).toEqual([]);
    expect(settled).toBe(false);
    expect(g.pending).toBe(1);
    expect(t.live().map((x) => x.ms)).toEqual([7]);
    t.fire();
    expect(await p).toBe('ok:outcome');
    expect(w.batches).toEqual([['outcome']]);
  });

  it('commits a lone lazy entry within the delay with a real timer', async () => {
    const w = recorder();
    const g = new GroupCommit(w.write, schedule, {
      lazyDelayMs: 5,
      later: (fn, ms) => {
        const h = setTimeout(fn, ms);
        return () => clearTimeout(h);
      },
    });
    const start = performance.now();
    expect(await g.submit('outcome', { lazy: true })).toBe('ok:outcome');
    const took = performance.now() - start;
    expect(took).toBeGreaterThanOrEqual(4);
    expect(took).toBeLessThan(500);
  });

  it('commits pending lazy entries in the same transaction as the next urgent one, in submission order', async () => {
    const w = recorder();
    const t = manualTimer();
    const g = new GroupCommit(w.write, schedule, { later: t.later });
    const first = g.submit('outcome-1', { lazy: true });
    await turn();
    const second = g.submit('outcome-2', { lazy: true });
    await turn();
    expect(w.batches).toEqual([]);
    const decision = g.submit('decision-3');
    const after = g.submit('outcome-3', { lazy: true });
    expect(await Promise.all([first, second, decision, after])).toEqual(['ok:outcome-1', 'ok:outcome-2', 'ok:decision-3', 'ok:outcome-3']);
    expect(w.batches).toEqual([['outcome-1', 'outcome-2', 'decision-3', 'outcome-3']]);
    // one timer for both lazy entries, cancelled once they rode along
    expect(t.armed).toHaveLength(1);
    expect(t.live()).toEqual([]);
  });

  it('keeps a lazy entry that arrives during a commit for the next one, with a timer', async () => {
    const batches: string[][] = [];
    let release: (() => void) | undefined;
    const write = async (entries: readonly string[]) => {
      batches.push([...entries]);
      if (batches.length === 1) await new Promise<void>((resolve) => (release = resolve));
      return entries.map((e) => `ok:${e}`);
    };
    const t = manualTimer();
    const g = new GroupCommit(write, schedule, { later: t.later });
    const decision = g.submit('decision-1');
    await turn();
    expect(batches).toEqual([['decision-1']]);
    const outcome = g.submit('outcome-1', { lazy: true });
    (release as () => void)();
    expect(await decision).toBe('ok:decision-1');
    await turn();
    expect(batches).toEqual([['decision-1']]);
    expect(t.live()).toHaveLength(1);
    const next = g.submit('decision-2');
    expect(await Promise.all([outcome, next])).toEqual(['ok:outcome-1', 'ok:decision-2']);
    expect(batches).toEqual([['decision-1'], ['outcome-1', 'decision-2']]);
  });

  it('commits lazy entries at once when asked (drain), without waiting for the delay', async () => {
    const w = recorder();
    const t = manualTimer();
    const g = new GroupCommit(w.write, schedule, { later: t.later });
    const p = Promise.all([g.submit('a', { lazy: true }), g.submit('b', { lazy: true })]);
    g.commitPending();
    expect(await p).toEqual(['ok:a', 'ok:b']);
    expect(w.batches).toEqual([['a', 'b']]);
    expect(t.live()).toEqual([]);
  });

  it('rejects lazy entries whose transaction failed, with the urgent entry that carried them', async () => {
    let failing = true;
    const w = recorder(() => failing);
    const t = manualTimer();
    const g = new GroupCommit(w.write, schedule, { later: t.later });
    const lazy = g.submit('outcome', { lazy: true });
    const urgent = g.submit('decision');
    await expect(lazy).rejects.toThrow('disk gone');
    await expect(urgent).rejects.toThrow('disk gone');
    const alone = g.submit('outcome-2', { lazy: true });
    t.fire();
    await expect(alone).rejects.toThrow('disk gone');
    failing = false;
    expect(await g.submit('decision-2')).toBe('ok:decision-2');
    expect(w.batches).toEqual([['decision-2']]);
  });

  it('commits a lazy entry like any other when no timer is given', async () => {
    const w = recorder();
    const g = new GroupCommit(w.write, schedule);
    expect(await g.submit('outcome', { lazy: true })).toBe('ok:outcome');
    expect(w.batches).toEqual([['outcome']]);
  });

  it('refuses a nonsensical batch size or delay', () => {
    const w = recorder();
    expect(() => new GroupCommit(w.write, schedule, { maxBatch: 0 })).toThrow(TypeError);
    expect(() => new GroupCommit(w.write, schedule, { lazyDelayMs: -1 })).toThrow(TypeError);
  });
});
