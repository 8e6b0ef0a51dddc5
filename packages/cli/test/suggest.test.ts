import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { buildHttpApp, createRuntime, parseConfig } from '@mandate/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../src/exit-codes.ts';
import { cli, EXAMPLE_POLICIES } from './support.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mandate-cli-suggest-'));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

const trace = (i: number, steps: { tool: string; args: Record<string, unknown> }[]) => ({ id: `m/ops/${i}`, suite: 'ops', purpose: i % 2 ? 'Page the on-call engineer about the outage' : 'Read the runbook', steps: steps.map((s) => ({ ...s, result: 'ok', error: null })) });

describe('mandate suggest', () => {
  it('writes ceiling and mandate files from traces that policy validate accepts, and judges a later window', async () => {
    const train = Array.from({ length: 10 }, (_, i) =>
      trace(i, [
        { tool: 'fs.read_file', args: { path: `/srv/runbooks/${i % 3}.md` } },
        ...(i % 2 ? [{ tool: 'mail.send', args: { to: 'oncall@acme.example', subject: `page ${i}` } }] : []),
      ]),
    );
    const later = [trace(20, [{ tool: 'fs.read_file', args: { path: '/etc/shadow' } }, { tool: 'shell.exec', args: { cmd: 'id' } }])];
    await writeFile(join(dir, 'train.jsonl'), train.map((t) => JSON.stringify(t)).join('\n'));
    await writeFile(join(dir, 'later.jsonl'), later.map((t) => JSON.stringify(t)).join('\n'));
    const out = join(dir, 'files');
    const r = await cli(['suggest', '--traces', join(dir, 'train.jsonl'), '--evaluate-traces', join(dir, 'later.jsonl'), '--policies', EXAMPLE_POLICIES, '--out-dir', out]);
    expect(r.code, r.err).toBe(EXIT.OK);
    const doc = parse(r.out) as { agents: { agent: string; ceiling: { tools: string[]; data_classes: string[] } }[]; training: { template: { denied: number } }; evaluation: { calls: number; template: { denied: number }; ceiling: { denied: number } } };
    expect(doc.agents[0]).toMatchObject({ agent: 'ops', ceiling: { tools: ['fs.read_file', 'mail.send'], data_classes: ['internal'] } });
    expect(doc.training.template.denied).toBe(0);
    expect(doc.evaluation).toMatchObject({ calls: 2, template: { denied: 2 }, ceiling: { denied: 1 } });
    expect(r.err).toMatch(/later window: 1 task\(s\), 2 call\(s\); denied by the ceiling 1 \(50\.00 %\)/);

    const files = (await readdir(out)).sort();
    expect(files).toEqual(['ops.c1.mandate.yaml', 'ops.c2.mandate.yaml', 'ops.ceiling.yaml', 'ops.mandate.yaml']);
    const v = await cli(['policy', 'validate', EXAMPLE_POLICIES, '--ceiling', join(out, 'ops.ceiling.yaml'), ...files.filter((f) => f.includes('mandate')).flatMap((f) => ['--mandate', join(out, f)])]);
    expect(v.code, v.err).toBe(EXIT.OK);
    expect(v.out).toMatch(/ok: 1 ceiling\(s\), 3 mandate\(s\), every mandate within every ceiling/);
  });

  it('policy validate refuses an invalid mandate and one beyond the ceiling', async () => {
    await writeFile(join(dir, 'c.yaml'), 'tools: [fs.read_file]\nmax_calls: 5\n');
    await writeFile(join(dir, 'bad.yaml'), 'purpose: x\nenvironment: prod\ntools: []\n');
    await writeFile(join(dir, 'wide.yaml'), 'purpose: x\nenvironment: prod\ntools: [{ name: mail.send }]\nbudgets: { calls: 5 }\n');
    const r = await cli(['policy', 'validate', '--ceiling', join(dir, 'c.yaml'), '--mandate', join(dir, 'bad.yaml'), '--mandate', join(dir, 'wide.yaml')]);
    expect(r.code).toBe(EXIT.FAILED);
    expect(r.err).toMatch(/bad\.yaml: mandate: MANDATE_INVALID/);
    expect(r.err).toMatch(/wide\.yaml: beyond the ceiling .*c\.yaml: tool "mail\.send" is beyond the agent's ceiling/);
  });

  it('reads the audit log of a data folder inside a window', async () => {
    const data = join(dir, 'data');
    const runtime = await createRuntime(parseConfig({ environment: 'prod', data_dir: data, policies: { dir: EXAMPLE_POLICIES }, identity: { dev_issuer: { enabled: true, trust_domain: 'test.local' } }, log: { level: 'silent' } }), { writeAdminKeyFile: false });
    const app = buildHttpApp(runtime, { logger: false });
    const agent = 'spiffe://test.local/agents/suggested';
    try {
      const admin = `Bearer ${runtime.bootstrapAdminKey ?? ''}`;
      expect((await app.inject({ method: 'POST', url: '/v1/agents', headers: { authorization: admin }, payload: { id: agent, owner: 'team', type: 'support' } })).statusCode).toBe(201);
      const svid = await runtime.devIssuer?.mint(agent, { audience: 'mandate', ttlMs: 300_000 });
      const start = await app.inject({ method: 'POST', url: '/v1/tasks', headers: { authorization: `Bearer ${svid ?? ''}` }, payload: { mandate: { purpose: 'search tickets', environment: 'prod', tools: [{ name: 'helpdesk.search_tickets' }], data_classes: ['internal'], budgets: { calls: 100 } } } });
      const { token } = start.json<{ token: string }>();
      for (let i = 0; i < 3; i++) await app.inject({ method: 'POST', url: '/v1/authorize', headers: { authorization: `Bearer ${token}` }, payload: { tool: 'helpdesk.search_tickets', args: { status: 'open', page: i + 1 } } });
    } finally {
      await app.close();
      await runtime.close();
    }
    const r = await cli(['suggest', '--data-dir', data, '--since', '1h', '--agent', agent]);
    expect(r.code, r.err).toBe(EXIT.OK);
    const doc = parse(r.out) as { agents: { mandate: { tools: unknown[]; budgets: unknown } }[] };
    expect(doc.agents[0]?.mandate.tools).toEqual([{ name: 'helpdesk.search_tickets', args: { page: { range: { min: 1, max: 3 } }, status: { one_of: ['open'] } } }]);
    expect(doc.agents[0]?.mandate.budgets).toEqual({ calls: 3, per_tool: { 'helpdesk.search_tickets': 3 } });
    // a window with nothing in it: exit 1, said why
    const none = await cli(['suggest', '--data-dir', data, '--until', '2000-01-01T00:00:00Z']);
    expect(none.code).toBe(EXIT.FAILED);
    expect(none.err).toMatch(/no allowed call was observed/);
  });

  it('exits 2 on bad usage', async () => {
    for (const argv of [
      ['suggest', '--traces', join(dir, 'train.jsonl'), '--since', '1h'],
      ['suggest', '--data-dir', join(dir, 'nowhere')],
      ['suggest', '--data-dir', join(dir, 'data'), '--since', 'last tuesday'],
      ['suggest', '--traces', join(dir, 'train.jsonl'), '--budget-percentile', '0'],
      ['suggest', '--traces', join(dir, 'train.jsonl'), '--data-dir', dir],
    ]) {
      const r = await cli(argv);
      expect(r.code, argv.join(' ')).toBe(EXIT.USAGE);
    }
  });
});
