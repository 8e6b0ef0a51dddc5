import { createDecisionFixture } from './lib/decision-fixture.ts';
const dur = (process.env.DUR ?? 'full') as 'full' | 'normal';
const conc = Number(process.env.CONC ?? 32);
const fx = await createDecisionFixture({ durability: dur });
const rt = fx.runtime;
if (process.env.CKPT) (rt.store as any).unsafeDatabase().exec("PRAGMA wal_autocheckpoint = " + process.env.CKPT);
const N = Number(process.env.N ?? 60000);
for (let i = 0; i < 2000; i++) await rt.engine.decide(fx.call);
let done = 0; const t0 = performance.now(); const c0 = process.cpuUsage();
const lat: number[] = [];
await Promise.all(Array.from({ length: conc }, async () => {
  while (done < N) { done++; const s = performance.now(); const d = await rt.engine.decide(fx.call); lat.push(performance.now() - s); if (d.effect !== 'allow') throw new Error(d.reasons.join()); }
}));
const el = performance.now() - t0; const cpu = process.cpuUsage(c0);
lat.sort((a, b) => a - b);
console.log(`${dur} c${conc}: ${Math.round(N / el * 1000)}/s p50 ${lat[lat.length >> 1]!.toFixed(3)} p99 ${lat[Math.floor(lat.length * 0.99)]!.toFixed(3)} cpu/decision ${((cpu.user + cpu.system) / N).toFixed(1)}us`);
await fx.close();
