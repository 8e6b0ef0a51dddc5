/**
 * Shadow mode on live traffic (policies.shadow_dir): the candidate set judges every call beside
 * the active one; divergences are counted and listed for viewers, and never change a decision.
 */
import { mkdtempSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { EXAMPLE_POLICIES, errorOf, mandate, startHarness, type DecisionBody, type Harness } from '../support.ts';

const root = mkdtempSync(join(tmpdir(), 'mandate-shadow-test-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** the example policies plus `extra` */
function candidate(name: string, extra: string): string {
  const dir = mkdtempSync(join(root, name + '-'));
  copyFileSync(join(EXAMPLE_POLICIES, 'tools.yaml'), join(dir, 'tools.yaml'));
  copyFileSync(join(EXAMPLE_POLICIES, 'org.cedar'), join(dir, 'org.cedar'));
  writeFileSync(join(dir, 'extra.cedar'), extra);
  return dir;
}

const DENY_SEARCH = `@id("cand.no-search") forbid (principal, action == Mandate::Action::"call_tool", resource) when { resource.name == "helpdesk.search_tickets" };`;
const PERMIT_READS_OUTSIDE = `@id("cand.noop") permit (principal, action == Mandate::Action::"call_tool", resource) when { resource.name == "fs.read_file" };`;
// an erroring forbid: the tag is missing on most calls, so evaluation fails
const ERRORING = `@id("cand.broken") forbid (principal, action == Mandate::Action::"call_tool", resource) when { context.time.epoch * 9223372036854775807 > 0 };`;

describe('shadow mode', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  async function start(shadowDir: string | undefined) {
    h = await startHarness({ config: { policies: { dir: EXAMPLE_POLICIES, ...(shadowDir ? { shadow_dir: shadowDir } : {}) } } });
    const agent = await h.registerAgent('shadowed');
    const task = await h.startTask(agent, mandate());
    const decide = async (tool: string, args: Record<string, unknown>) => (await h!.authorize(task.token, { tool, args })).json<DecisionBody>();
    return { h, decide };
  }

  async function calls(decide: (tool: string, args: Record<string, unknown>) => Promise<DecisionBody>) {
    return [
      (await decide('helpdesk.search_tickets', { query: 'refund' })).effect,
      (await decide('fs.read_file', { path: '/srv/kb/a.md' })).effect,
      (await decide('fs.read_file', { path: '/etc/passwd' })).effect,
      (await decide('shell.exec', { cmd: 'id' })).effect,
    ];
  }

  it('never changes a live decision, whatever the candidate says', async () => {
    const baseline = await calls((await start(undefined)).decide);
    await h!.close();
    h = undefined;
    for (const extra of [DENY_SEARCH, PERMIT_READS_OUTSIDE, ERRORING]) {
      const live = await calls((await start(candidate('c', extra))).decide);
      expect(live).toEqual(baseline);
      await h!.close();
      h = undefined;
    }
    expect(baseline).toEqual(['allow', 'allow', 'deny', 'deny']);
  });

  it('counts and lists each divergence for viewers', async () => {
    const { h, decide } = await start(candidate('deny-search', DENY_SEARCH));
    await calls(decide);
    await decide('helpdesk.search_tickets', { query: 'again' });
    const viewer = (await h.op('POST', '/v1/operators/keys', { name: 'v', role: 'viewer' })).json<{ secret?: string; key?: string }>();
    const key = viewer.secret ?? viewer.key ?? '';
    const res = await h.op('GET', '/v1/policies/shadow/divergences?limit=1', undefined, key);
    expect(res.statusCode).toBe(200);
    const body = res.json<{ enabled: boolean; evaluated: number; divergences_total: number; by_kind: Record<string, number>; divergences: { tool: string; active: { effect: string }; candidate: { effect: string; policy_ids: string[] } }[]; next: number | null }>();
    expect(body).toMatchObject({ enabled: true, divergences_total: 2, by_kind: { 'allow->deny': 2 } });
    // the mandate-refused call and the forbidden one are judged too: every policy-stage decision
    expect(body.evaluated).toBe(5);
    expect(body.divergences).toHaveLength(1);
    expect(body.divergences[0]).toMatchObject({ tool: 'helpdesk.search_tickets', active: { effect: 'allow' }, candidate: { effect: 'deny', policy_ids: ['cand.no-search'] } });
    const rest = (await h.op('GET', `/v1/policies/shadow/divergences?after=${String(body.next)}`)).json<{ divergences: unknown[]; next: number | null }>();
    expect(rest.divergences).toHaveLength(1);
    expect(rest.next).toBeNull();
  });

  it('records an erroring candidate as its deny, and reports shadow mode off when unconfigured', async () => {
    const { h, decide } = await start(candidate('broken', ERRORING));
    expect((await decide('helpdesk.search_tickets', { query: 'x' })).effect).toBe('allow');
    const body = (await h.op('GET', '/v1/policies/shadow/divergences')).json<{ divergences: { candidate: { effect: string; reasons: string[] } }[] }>();
    expect(body.divergences[0]?.candidate).toMatchObject({ effect: 'deny', reasons: ['POLICY_EVALUATION_ERROR'] });
    await h.close();
    const off = await start(undefined);
    const none = await off.h.op('GET', '/v1/policies/shadow/divergences');
    expect(none.json()).toMatchObject({ enabled: false, divergences_total: 0 });
    expect(errorOf(await off.h.inject({ method: 'GET', url: '/v1/policies/shadow/divergences' })).code).toBe('UNAUTHENTICATED');
    expect((await off.h.op('GET', '/v1/policies/shadow/divergences?limit=0')).statusCode).toBe(400);
  });
});
