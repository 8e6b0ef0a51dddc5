/**
 * Byte-identity A/B of the audit chain: the same scripted calls (allowed, refused by the mandate,
 * redacted arguments, a step-up, unknown tools, behavioural signals) decided by CHECKOUT's
 * runtime with a fixed clock and fixed ids; prints every decision and every audit row (its
 * data's canonical text, previous hash and hash). Two checkouts whose outputs differ by a byte
 * write different audit records:
 *
 *   node bench/lib/audit-ab.ts [CHECKOUT] [RATE]
 *   node bench/lib/audit-ab.ts /path/to/base > a.txt; node bench/lib/audit-ab.ts . > b.txt; cmp a.txt b.txt
 *
 * RATE (default 5) is the rate detector's ceiling, low so that signals and containment appear.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
const dir = resolve(process.argv[2] ?? '.');
const fxm = await import(pathToFileURL(`${dir}/bench/lib/decision-fixture.ts`).href);
const server = await import(pathToFileURL(`${dir}/packages/server/src/index.ts`).href);
const core = await import(pathToFileURL(`${dir}/packages/core/src/index.ts`).href);
const tmp = mkdtempSync(join(tmpdir(), 'equiv-'));
const policyDir = join(tmp, 'policies');
fxm.writePolicyDir(policyDir);
let t = Date.UTC(2026, 10, 2, 10, 0, 0);
const clock = { now: () => t };
let n = 0;
const ids = { next: (p: string) => `${p}_${String(++n).padStart(6, '0')}` };
const config = server.parseConfig({
  environment: 'prod', data_dir: join(tmp, 'data'),
  identity: { dev_issuer: { enabled: true, trust_domain: fxm.TRUST_DOMAIN } },
  audit: { durability: 'full', commit_thread: false }, tokens: { ttl: '1h' },
  behaviour: { enabled: true, detectors: { rate: { max_per_window: Number(process.argv[3] ?? 5) } } },
  policies: { dir: policyDir, cross_check_fraction: 0 },
});
const rt = await server.createRuntime(config, { writeAdminKeyFile: false, clock, ids });
try {
  const agent = { id: fxm.AGENT_ID, owner: 'team-support', type: 'support', status: 'active', ceiling: core.parseCeiling({}), createdAt: t, updatedAt: t };
  await rt.agents.createAgent(agent);
  const wl = await rt.devIssuer.mint(fxm.AGENT_ID, { audience: config.identity.audience, ttlMs: 60_000 });
  const { token } = await rt.tasks.start(wl, { ...fxm.BENCH_MANDATE, tools: [...fxm.BENCH_MANDATE.tools, { name: 'helpdesk.close_ticket' }] });
  const calls = [
    { tool: fxm.BENCH_TOOL, resource: fxm.BENCH_RESOURCE, args: fxm.BENCH_ARGS },
    { tool: fxm.BENCH_TOOL, resource: fxm.BENCH_RESOURCE, args: { ...fxm.BENCH_ARGS, ticket_id: '1042 OR 1=1' } },
    { tool: fxm.BENCH_TOOL, resource: fxm.BENCH_RESOURCE, args: { ...fxm.BENCH_ARGS, body: 'key: -----BEGIN PRIVATE KEY----- abc' } },
    { tool: fxm.BENCH_TOOL, resource: fxm.BENCH_RESOURCE, args: { ...fxm.BENCH_ARGS, api_key: 'sk_live_0123456789abcdefghijklmnop', nested: { z: 1, a: [true, null, 2.5, 'x\u2028y'] } } },
    { tool: 'helpdesk.close_ticket', resource: fxm.BENCH_RESOURCE, args: { ticket_id: 'T-1' } },
    { tool: 'mail.send', resource: undefined, args: { to: 'a@b.example' } },
    { tool: 'kb.search', args: { query: 'export failure', zeta: 1, alpha: { b: 2, a: 1 } } },
    { tool: 'bad tool name', args: {} },
  ];
  for (let round = 0; round < 3; round++) {
    for (const c of calls) {
      t += 1000;
      const d = await rt.engine.decide({ taskToken: token, ...c, callId: `c-${round}-${c.tool}` });
      console.log('DECISION', JSON.stringify({ ...d, auditSeq: d.auditSeq }));
    }
  }
  for (const r of await rt.store.audit.readRange(1, 1000)) console.log('ROW', r.seq, r.kind, core.canonicalJson(r.data), r.prevHash, r.hash);
} finally {
  await rt.close();
  rmSync(tmp, { recursive: true, force: true });
}
