import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig, serve, type RunningServer } from '@mandate/server';
import { cli, EXAMPLE_POLICIES } from './support.ts';

describe('mandate approvals and kill against a running server', () => {
  let server: RunningServer;
  let dir: string;
  let admin: string;
  const agent = 'spiffe://cli.test/agents/mailer';

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mandate-cli-control-'));
    server = await serve(
      parseConfig({ environment: 'prod', data_dir: dir, server: { port: 0 }, policies: { dir: EXAMPLE_POLICIES }, identity: { dev_issuer: { enabled: true, trust_domain: 'cli.test' } }, log: { level: 'silent' } }),
      { writeAdminKeyFile: false, logger: false },
    );
    admin = server.runtime.bootstrapAdminKey as string;
  });
  afterAll(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  const as = (...a: string[]) => [...a, '--url', server.url, '--api-key', admin];

  it('lists a held call, approves it, and kills and releases the agent', async () => {
    expect((await cli(as('agent', 'add', '--id', agent, '--owner', 'team', '--type', 'support'))).code).toBe(0);
    const rt = server.runtime;
    const svid = await (rt.devIssuer as NonNullable<typeof rt.devIssuer>).mint(agent, { audience: 'mandate', ttlMs: 60_000 });
    const { token } = await rt.tasks.start(svid, { purpose: 'mail', environment: 'prod', tools: [{ name: 'mail.send' }], data_classes: ['internal'] });
    const held = await rt.engine.decide({ taskToken: token, tool: 'mail.send', args: { to: 'a@acme.example' } });
    expect(held.effect).toBe('approval_required');

    const listed = await cli(as('approvals', 'list', '--state', 'pending', '--json'));
    expect(listed.code).toBe(0);
    expect((JSON.parse(listed.out) as { id: string }[]).map((a) => a.id)).toEqual([held.approvalId]);
    expect((await cli(as('approvals', 'approve', held.approvalId as string))).code).toBe(2); // a reason is required
    const approved = await cli(as('approvals', 'approve', held.approvalId as string, '--reason', 'recipient checked'));
    expect(approved.code).toBe(0);
    expect(approved.out).toContain('approved');
    expect((await rt.engine.decide({ taskToken: token, tool: 'mail.send', args: { to: 'a@acme.example' } })).effect).toBe('allow');

    const killed = await cli(as('kill', '--agent', agent, '--reason', 'incident'));
    expect(killed.code).toBe(0);
    expect(JSON.parse(killed.out)).toMatchObject({ disabled_agent: agent, killed_tasks: [expect.any(String)] });
    expect((await rt.engine.decide({ taskToken: token, tool: 'mail.send', args: { to: 'a@acme.example' } })).effect).toBe('deny');
    expect((await cli(as('unkill', '--agent', agent, '--reason', 'cleared'))).code).toBe(0);
    expect((await rt.engine.decide({ taskToken: token, tool: 'mail.send', args: { to: 'a@acme.example' } })).reasons).toEqual(['TASK_KILLED']);
  });

  it('refuses ambiguous or incomplete kill commands as usage errors', async () => {
    expect((await cli(as('kill', '--reason', 'x'))).code).toBe(2);
    expect((await cli(as('kill', '--all', '--agent', agent, '--reason', 'x'))).code).toBe(2);
    expect((await cli(as('kill', '--all'))).code).toBe(2);
    expect((await cli(as('unkill', '--task', 't', '--reason', 'x'))).code).toBe(2);
    expect(server.runtime.kill.stopped()).toBe(false);
  });
});
