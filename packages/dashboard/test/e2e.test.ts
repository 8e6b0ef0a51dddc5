/**
 * The operator dashboard end to end (issue 7): Debian's headless Chromium, driven by
 * playwright-core, against a real `mandate serve` serving the freshly built dashboard, while a
 * scripted agent calls tools over the public HTTP API. Writes docs/screenshots/*.png.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM_ARGS, ROOT, ScriptedAgent, buildDashboard, call, requireChromium, startMandate, type Served } from './support.ts';

const SHOTS = join(ROOT, 'docs', 'screenshots');
const MAIL = { to: 'customer@acme.example', body: 'Your refund is on its way' };

describe('the operator dashboard in a real browser', () => {
  let served: Served;
  let context: BrowserContext;
  let page: Page;
  let profile: string;
  let agent: ScriptedAgent;
  const cspViolations: string[] = [];
  const pageErrors: string[] = [];

  beforeAll(async () => {
    const executablePath = requireChromium();
    buildDashboard();
    served = await startMandate();
    agent = new ScriptedAgent(served.url, 'support-triage');
    await agent.register(served.admin);
    profile = mkdtempSync(join(tmpdir(), 'mandate-chromium-'));
    context = await chromium.launchPersistentContext(profile, { executablePath, headless: true, args: CHROMIUM_ARGS, viewport: { width: 1280, height: 860 } });
    page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(8000);
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
    });
    page.on('pageerror', (e) => pageErrors.push(e.message));
    mkdirSync(SHOTS, { recursive: true });
  }, 45_000);

  afterAll(async () => {
    await context?.close();
    await served?.stop();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  const shot = (name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });

  it('serves the page with its security headers and signs in with an operator key kept out of the URL', async () => {
    const res = await page.goto(`${served.url}/dashboard/`);
    expect(res?.status()).toBe(200);
    const h = res?.headers() ?? {};
    expect(h['content-security-policy']).toContain("default-src 'self'");
    expect(h['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(h['x-content-type-options']).toBe('nosniff');
    expect(h['referrer-policy']).toBe('no-referrer');

    const wrong = page.getByLabel('Operator API key');
    await wrong.fill('mk_not-a-real-key-at-all-000000000000000000000');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toMatch(/Sign-in failed/);
    await shot('login');

    await page.getByLabel('Operator API key').fill(served.admin);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('navigation', { name: 'Views' }).waitFor();
    await expect.poll(() => page.getByRole('status').first().textContent()).toContain('live');
    expect(page.url()).not.toContain(served.admin);
    expect(await page.evaluate(() => sessionStorage.getItem('mandate.operatorKey'))).toBe(served.admin);
    expect(await page.evaluate(() => localStorage.length)).toBe(0);
  });

  it('shows a live decision as the agent calls a tool', async () => {
    await agent.act('helpdesk.search_tickets', { query: 'refund' });
    const row = page.locator('table.decisions tbody tr', { hasText: 'helpdesk.search_tickets' });
    await row.first().waitFor();
    expect(await row.first().textContent()).toContain('allow');
    await agent.act('fs.read_file', { path: '/srv/kb/../../etc/shadow' });
    const denied = page.locator('table.decisions tbody tr', { hasText: 'ARG_CONSTRAINT_FAILED' });
    await denied.first().waitFor();
    expect(await denied.first().textContent()).toContain('deny');
    expect(await denied.first().textContent()).toContain('support-triage');

    // filter and pause are controls an operator reaches by keyboard
    await page.getByLabel('Outcome').selectOption('deny');
    expect(await page.locator('table.decisions tbody tr', { hasText: 'helpdesk.search_tickets' }).count()).toBe(0);
    await page.getByLabel('Outcome').selectOption('all');
    await page.getByRole('button', { name: 'Pause' }).press('Enter');
    await agent.act('helpdesk.search_tickets', { query: 'while paused' });
    await expect.poll(() => page.getByText(/1 new decision\(s\) waiting/).count()).toBe(1);
    await page.getByRole('button', { name: 'Resume' }).click();
    await shot('live-decisions');
  });

  it('holds a step-up call, approves it in the queue, and the agent’s retried call succeeds', async () => {
    const held = await agent.act('mail.send', MAIL);
    expect(held.effect).toBe('approval_required');
    await page.getByRole('link', { name: 'Approvals' }).click();
    const card = page.locator(`article[data-approval-id="${held.approval_id}"]`);
    await card.waitFor();
    await expect.poll(() => card.textContent()).toContain('Triage refund tickets');
    expect(await card.textContent()).toContain('customer@acme.example');
    await expect.poll(() => card.locator('.history li').count()).toBeGreaterThan(0);
    await shot('approvals');
    await card.getByLabel('Reason').fill('recipient is the ticket owner');
    await card.getByRole('button', { name: 'Approve' }).click();
    await page.locator(`article[data-approval-id="${held.approval_id}"].state-approved`).waitFor();

    const retried = await agent.act('mail.send', MAIL);
    expect(retried.effect).toBe('allow');
    expect(retried.approval_id).toBe(held.approval_id);
  });

  it('kills the agent after a confirmation dialog, and its next call fails', async () => {
    await page.getByRole('link', { name: 'Agents & tasks' }).click();
    const kill = page.getByRole('button', { name: 'Kill agent support-triage' });
    await kill.click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    // focus is in the dialog, on Cancel; Escape closes it without killing anything
    expect(await page.evaluate('document.activeElement?.textContent')).toBe('Cancel');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    expect((await agent.act('helpdesk.search_tickets', { query: 'still alive' })).effect).toBe('allow');

    await kill.click();
    await dialog.getByLabel('Reason').fill('runaway mail loop');
    await shot('kill-dialog');
    await dialog.getByRole('button', { name: 'Kill' }).click();
    await dialog.waitFor({ state: 'hidden' });
    await page.locator(`tr[data-agent-id="${agent.id}"]`, { hasText: 'disabled' }).waitFor();

    const after = await agent.act('helpdesk.search_tickets', { query: 'after the kill' });
    expect(after.effect).toBe('deny');
    expect(after.reasons).toContain('AGENT_DISABLED');
    await page.locator(`tr[data-task-id="${agent.taskId}"]`, { hasText: 'killed' }).waitFor();
    await shot('agents-tasks');
  });

  it('opens the task timeline from intent to outcome with the audit chain verified', async () => {
    await page.locator(`tr[data-task-id="${agent.taskId}"] a`).click();
    await page.getByRole('heading', { name: '1. Intent' }).waitFor();
    expect(page.url()).toContain(`#/timeline/${agent.taskId}`);
    await expect.poll(() => page.locator('.verify').textContent()).toMatch(/Audit chain verified/);
    const calls = page.locator('ol.calls > li');
    await expect.poll(() => calls.count()).toBeGreaterThanOrEqual(6);
    const text = (await page.locator('main').textContent()) ?? '';
    expect(text).toContain('Triage refund tickets');
    expect(text).toMatch(/approval.*approved by/s);
    expect(text).toContain('final action');
    expect(await page.locator('#outcome-h + p').textContent()).toContain('killed');
    await shot('task-timeline');
  });

  it('shows alerts gracefully when the server has no alerts endpoint', async () => {
    await page.getByRole('link', { name: 'Alerts' }).click();
    const status = (await call(served.url, served.admin, 'GET', '/v1/alerts')).status;
    if (status === 404) {
      await page.getByRole('heading', { name: 'Alerts are not available on this server' }).waitFor();
    } else {
      await page.locator('main table').waitFor();
    }
    await shot('alerts');
  });

  it('validates a draft policy set and shows the calls it would change in shadow mode', async () => {
    await page.getByRole('link', { name: 'Policies' }).click();
    const draft = page.getByLabel('Draft policies (Cedar)');
    await expect.poll(() => draft.inputValue()).toContain('org.call.within-task-environment');
    const text = await draft.inputValue();
    await draft.fill(`${text}\n\n@id("draft.no-helpdesk-search")\nforbid (principal, action == Mandate::Action::"call_tool", resource) when { resource.name == "helpdesk.search_tickets" };`);
    await page.getByRole('button', { name: 'Validate' }).click();
    await page.getByText(/^Valid:/).waitFor();
    await page.getByRole('button', { name: 'Run in shadow mode' }).click();
    const diverged = page.locator('tr.shadow-diverged', { hasText: 'helpdesk.search_tickets' });
    await diverged.first().waitFor();
    expect(await diverged.first().textContent()).toContain('draft.no-helpdesk-search');
    await shot('policies-shadow');
  });

  it('draws the charts, and the page ran no blocked inline code', async () => {
    await page.getByRole('link', { name: 'Charts' }).click();
    await page.getByRole('img', { name: /Decisions over time/ }).waitFor();
    expect(await page.locator('svg[role="img"] rect.fill-deny').count()).toBeGreaterThan(0);
    await page.getByRole('img', { name: /Latency percentiles: p50/ }).waitFor();
    await shot('charts');
    expect(cspViolations).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
});
