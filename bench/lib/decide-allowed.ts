/**
 * Decides a fixture's call `total` times with `inFlight` decisions in flight at once, each
 * expected to allow: the steady load the profiling drivers measure. It imports no package, so a
 * driver can load another checkout's fixture (bench/lib/callgrind-decide.ts) and only that
 * checkout's code runs.
 */
export interface AllowingFixture<C> {
  readonly runtime: { readonly engine: { decide(call: C): Promise<{ readonly effect: string; readonly reasons: readonly string[] }> } };
  readonly call: C;
}

export async function decideAllowed<C>(fx: AllowingFixture<C>, total: number, inFlight: number): Promise<void> {
  let started = 0;
  const worker = async () => {
    while (started < total) {
      started++;
      const d = await fx.runtime.engine.decide(fx.call);
      if (d.effect !== 'allow') throw new Error(`expected allow, got ${d.effect} (${d.reasons.join(', ')})`);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
}
