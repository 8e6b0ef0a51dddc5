/**
 * Concurrent is sequential: a call counts for the detectors when it is admitted, so N calls sent
 * at once get the outcome of the same N calls sent one by one — the same allowed count, the same
 * signals, the same containment. Each case runs the calls one by one on one deployment and at
 * once (bursts, sustained workers, denied probes) on a fresh one, through the HTTP API.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Harness } from '../support.ts';
import { behaviourHarness, call, CEILING, eventually, triageMandate, type Decided } from './fixture.ts';

const harnesses: Harness[] = [];
afterEach(async () => {
  await Promise.all(harnesses.splice(0).map((h) => h.close()));
});

/** rate max 20 per window, high (over 40) suspends: one by one, 40 calls are allowed */
const BURST_RULE = { detectors: { rate: { max_per_window: 20 } }, containment: { rules: [{ detector: 'rate', severity: 'high', action: 'suspend' }] } };
/** retry high (10 denied in the window) kills the agent */
const PROBE_RULE = { containment: { rules: [{ detector: 'retry', severity: 'high', action: 'kill' }] } };

async function deployment(behaviour: Record<string, unknown>): Promise<Harness> {
  const h = await behaviourHarness(behaviour);
  harnesses.push(h);
  return h;
}

async function newTask(h: Harness): Promise<{ agent: string; id: string; token: string }> {
  const agent = await h.registerAgent('worker', CEILING);
  const t = await h.startTask(agent, triageMandate({ budgets: { calls: 1000 } }));
  return { agent, ...t };
}

/** what a call's outcome is, for comparing runs: the effect, each signal with its count, the containment */
function outcome(d: Decided): string {
  const signals = (d.signals ?? [])
    .map((s) => `${s.detector}:${s.severity}:${String(s.evidence['calls_in_window'] ?? s.evidence['denied_in_window'] ?? '')}`)
    .sort()
    .join(',');
  return `${d.effect} [${signals}] {${[...(d.containment ?? [])].sort().join(',')}}`;
}

const allowed = (ds: readonly Decided[]) => ds.filter((d) => d.effect === 'allow').length;

/** the reference: `n` calls one by one, each after the previous answered */
async function sequential(behaviour: Record<string, unknown>, n: number, tool: string, args: (i: number) => Record<string, unknown>, tickMs = 0): Promise<Decided[]> {
  const h = await deployment(behaviour);
  const t = await newTask(h);
  const out: Decided[] = [];
  for (let i = 0; i < n; i++) {
    out.push(await call(h, t.token, tool, args(i)));
    h.clock.advance(tickMs);
  }
  return out;
}

describe('concurrent calls are judged as if they came one by one', () => {
  // one reference run serves every burst size: call i's outcome depends only on the calls before it
  let reference: Decided[] | undefined;
  const ref = async () => (reference ??= await sequential(BURST_RULE, 200, 'kb.search', () => ({ query: 'refund' })));

  for (const n of [25, 50, 100, 200]) {
    it(`a burst of ${n} calls at once in one task allows exactly what ${n} calls one by one allow, with the same signals and containment`, { timeout: 120_000 }, async () => {
      const seq = (await ref()).slice(0, n);
      const h = await deployment(BURST_RULE);
      const t = await newTask(h);
      const burst = await Promise.all(Array.from({ length: n }, () => call(h, t.token, 'kb.search', { query: 'refund' })));
      expect(allowed(burst)).toBe(allowed(seq));
      expect(allowed(burst)).toBe(Math.min(n, 40));
      expect(burst.map(outcome).sort()).toEqual(seq.map(outcome).sort());
      if (n > 40) {
        await eventually('the task is suspended', async () => ((await h.op('GET', `/v1/tasks/${t.id}`)).json<{ state: string }>().state === 'suspended' ? true : undefined), 20_000);
        expect((await call(h, t.token, 'kb.search')).effect).toBe('deny');
      }
    });
  }

  for (const [workers, each] of [
    [4, 30],
    [16, 10],
    [64, 3],
  ] as const) {
    it(`${workers} workers calling without pause allow no more than the same calls one by one`, { timeout: 120_000 }, async () => {
      const total = workers * each;
      // the calls spread over 2 s of the clock, well inside the 10 s window
      const tick = Math.floor(2000 / total);
      const seq = await sequential(BURST_RULE, total, 'kb.search', () => ({ query: 'refund' }), tick);
      const h = await deployment(BURST_RULE);
      const t = await newTask(h);
      const got: Decided[] = [];
      await Promise.all(
        Array.from({ length: workers }, async () => {
          for (let i = 0; i < each; i++) {
            got.push(await call(h, t.token, 'kb.search', { query: 'refund' }));
            h.clock.advance(tick);
          }
        }),
      );
      expect(got).toHaveLength(total);
      expect(allowed(got)).toBe(allowed(seq));
      expect(allowed(got)).toBe(40);
      expect(got.map(outcome).sort()).toEqual(seq.map(outcome).sort());
    });
  }

  it('fifty denied probes at once raise the retry signal and kill the agent, as fifty one by one do', { timeout: 120_000 }, async () => {
    const probe = (i: number) => ({ cmd: `id ${i}` });
    const seq = await sequential(PROBE_RULE, 50, 'shell.exec', probe);
    expect(seq.some((d) => d.containment?.includes('kill'))).toBe(true);

    const h = await deployment(PROBE_RULE);
    const t = await newTask(h);
    const other = await h.startTask(t.agent, triageMandate());
    const probes = await Promise.all(Array.from({ length: 50 }, (_, i) => call(h, t.token, 'shell.exec', probe(i))));
    expect(probes.every((d) => d.effect === 'deny')).toBe(true);
    expect(probes.map(outcome).sort()).toEqual(seq.map(outcome).sort());
    // the tenth denial in the window is high: the kill is decided there, and carried out
    expect(probes.filter((d) => d.signals?.some((s) => s.detector === 'retry' && s.severity === 'high')).length).toBe(41);
    await eventually('the agent is disabled', async () => ((await h.op('GET', `/v1/agents/${encodeURIComponent(t.agent)}`)).json<{ status: string }>().status === 'disabled' ? true : undefined), 20_000);
    expect((await call(h, other.token, 'kb.search')).reasons).toEqual(['AGENT_DISABLED']);
  });
});
