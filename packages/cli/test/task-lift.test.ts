import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig, serve, type RunningServer } from '@mandate/server';
import { cli, EXAMPLE_POLICIES } from './support.ts';

describe('mandate task lift against a running server', () => {
  let server: RunningServer;
  let dir: string;
  let admin: string;
  const agent = 'spiffe://cli.test/agents/reporter';

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mandate-cli-lift-'));
    server = await serve(
      parseConfig({
        environment: 'prod',
        data_dir: dir,
        server: { port: 0 },
        policies: { dir: EXAMPLE_POLICIES },
        identity: { dev_issuer: { enabled: true, trust_domain: 'cli.test' } },
        log: { level: 'silent' },
        // a write the purpose never declares narrows the tool away
        behaviour: { enabled: true, containment: { rules: [{ detector: 'drift', severity: 'medium', action: 'narrow' }] } },
      }),
      { writeAdminKeyFile: false, logger: false },
    );
    admin = server.runtime.bootstrapAdminKey as string;
  });
  afterAll(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  const as = (...a: string[]) => [...a, '--url', server.url, '--api-key', admin];

  it('lifts a narrowing with a reason, prints what it lifted, and exits 1 when nothing is left to lift', async () => {
    expect((await cli(as('agent', 'add', '--id', agent, '--owner', 'team', '--type', 'support'))).code).toBe(0);
    const rt = server.runtime;
    const svid = await (rt.devIssuer as NonNullable<typeof rt.devIssuer>).mint(agent, { audience: 'mandate', ttlMs: 60_000 });
    const { task, token } = await rt.tasks.start(svid, { purpose: "Summarise this week's refund tickets.", environment: 'prod', tools: [{ name: 'helpdesk.search_tickets' }, { name: 'helpdesk.draft_reply' }], data_classes: ['internal'] });
    const draft = await rt.engine.decide({ taskToken: token, tool: 'helpdesk.draft_reply', args: { ticket: 'T-1', body: 'ok' } });
    expect(draft.reasons).toEqual(['CONTAINMENT_NARROWED']);
    await expect.poll(async () => (await rt.store.containment.listRestrictions(task.id)).length).toBe(1);

    expect((await cli(as('task', 'lift', task.id))).code).toBe(2); // a reason is required
    expect((await cli(as('task', 'lift', '--reason', 'no task named'))).code).toBe(2);
    expect((await cli(as('task', 'unlift', task.id, '--reason', 'x'))).code).toBe(2);
    const short = await cli(as('task', 'lift', task.id, '--reason', 'x'));
    expect(short.code).toBe(1);
    expect(short.err).toContain('MALFORMED_REQUEST');

    const lifted = await cli(as('task', 'lift', task.id, '--reason', 'the reporter may draft replies this week'));
    expect(lifted.code).toBe(0);
    expect(lifted.out).toContain('lifted narrow helpdesk.draft_reply');
    expect(lifted.out).toContain('task is active');
    expect(await rt.store.containment.listRestrictions(task.id)).toEqual([]);
    const records = await rt.store.audit.readByTask(task.id, 100);
    expect(records.find((r) => r.kind === 'containment.lifted')?.data).toMatchObject({ reason: 'the reporter may draft replies this week' });

    const again = await cli(as('task', 'lift', task.id, '--reason', 'once more'));
    expect(again.code).toBe(1);
    expect(again.err).toContain('CONFLICT');
    expect((await cli(as('task', 'lift', 'task_unknown', '--reason', 'who is this'))).err).toContain('NOT_FOUND');
  });

  it('exits 4 when the server cannot be reached', async () => {
    const r = await cli(['task', 'lift', 'task_x', '--reason', 'unreachable', '--url', 'http://127.0.0.1:9', '--api-key', admin]);
    expect(r.code).toBe(4);
  });
});
