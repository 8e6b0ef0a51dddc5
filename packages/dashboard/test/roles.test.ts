/**
 * The dashboard offers only what the signed-in key's role may do, as GET /v1/operators/me says:
 * a viewer sees agents, tasks and approvals but no kill, unkill, approve or reload button and no
 * operator keys; an approver may approve but not kill; an admin sees every action. Debian's
 * headless Chromium against a real `mandate serve`; the server still refuses what is hidden.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM_ARGS, ScriptedAgent, buildDashboard, call, requireChromium, startMandate, type Served } from './support.ts';

describe('the dashboard offers only what the key’s role may do', { timeout: 120_000 }, () => {
  let served: Served;
  let context: BrowserContext;
  let profile: string;
  let agent: ScriptedAgent;
  let approvalId: string;
  const keys: Record<string, string> = {};

  beforeAll(async () => {
    const executablePath = requireChromium();
    buildDashboard();
    served = await startMandate();
    agent = new ScriptedAgent(served.url, 'role-watched');
    await agent.register(served.admin);
    const held = await agent.act('mail.send', { to: 'customer@acme.example', body: 'Your refund is on its way' });
    expect(held.effect).toBe('approval_required');
    approvalId = String(held.approval_id);
    for (const role of ['viewer', 'approver'] as const) {
      const r = await call(served.url, served.admin, 'POST', '/v1/operators/keys', { name: `${role}-on-call`, role });
      expect(r.status).toBe(201);
      keys[role] = String(r.json['key']);
    }
    keys['admin'] = served.admin;
    profile = mkdtempSync(join(tmpdir(), 'mandate-chromium-roles-'));
    context = await chromium.launchPersistentContext(profile, { executablePath, headless: true, args: CHROMIUM_ARGS, viewport: { width: 1280, height: 860 } });
  }, 300_000);

  afterAll(async () => {
    await context?.close();
    await served?.stop();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  /** A fresh tab signed in with this role's key (the key lives in the tab's session storage). */
  async function signIn(role: string): Promise<Page> {
    const page = await context.newPage();
    page.setDefaultTimeout(30_000);
    await page.goto(`${served.url}/dashboard/`);
    await page.getByLabel('Operator API key').fill(keys[role] ?? '');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator(`.whoami[data-role="${role}"]`).waitFor();
    return page;
  }

  async function agentsView(page: Page): Promise<void> {
    await page.getByRole('link', { name: 'Agents & tasks' }).click();
    await page.locator(`tr[data-task-id="${agent.taskId}"]`).waitFor();
  }

  it('a viewer key sees the agent and its task but no kill, emergency stop, approve or reload button, and no operator keys', async () => {
    const page = await signIn('viewer');
    await agentsView(page);
    expect(await page.getByRole('button', { name: /Kill/ }).count()).toBe(0);
    expect(await page.getByRole('button', { name: 'Emergency stop' }).count()).toBe(0);
    expect(await page.getByRole('link', { name: 'Operator keys' }).count()).toBe(0);

    await page.getByRole('link', { name: 'Approvals' }).click();
    const card = page.locator(`article[data-approval-id="${approvalId}"]`);
    await card.waitFor();
    await expect.poll(() => card.textContent()).toContain('an approver decides it');
    expect(await card.getByRole('button').count()).toBe(0);

    await page.getByRole('link', { name: 'Policies' }).click();
    await page.getByRole('button', { name: 'Validate' }).first().waitFor();
    expect(await page.getByRole('button', { name: 'Reload policies' }).count()).toBe(0);

    // hidden is not all: the server refuses the viewer's kill as before
    const kill = await call(served.url, keys['viewer'] ?? '', 'POST', '/v1/kill', { agent: agent.id, reason: 'a viewer tries' });
    expect(kill.status).toBe(403);
    await page.close();
  });

  it('an approver key may approve and deny, but is offered no kill', async () => {
    const page = await signIn('approver');
    await page.getByRole('link', { name: 'Approvals' }).click();
    const card = page.locator(`article[data-approval-id="${approvalId}"]`);
    await card.getByRole('button', { name: 'Approve' }).waitFor();
    expect(await card.getByRole('button', { name: 'Deny' }).count()).toBe(1);
    await agentsView(page);
    expect(await page.getByRole('button', { name: /Kill/ }).count()).toBe(0);
    await page.close();
  });

  it('an admin key is offered every action', async () => {
    const page = await signIn('admin');
    await agentsView(page);
    await page.getByRole('button', { name: `Kill task ${agent.taskId}` }).waitFor();
    expect(await page.getByRole('button', { name: 'Emergency stop' }).count()).toBe(1);
    expect(await page.getByRole('link', { name: 'Operator keys' }).count()).toBe(1);
    await page.getByRole('link', { name: 'Policies' }).click();
    await page.getByRole('button', { name: 'Reload policies' }).waitFor();
    await page.close();
  });
});
