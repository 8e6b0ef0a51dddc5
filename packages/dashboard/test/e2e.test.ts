/**
 * The operator dashboard end to end (issue 7): Debian's headless Chromium, driven by
 * playwright-core, against a real `mandate serve` serving the freshly built dashboard, while a
 * scripted agent calls tools over the public HTTP API. Takes a screenshot of every main view: into
 * docs/screenshots (what the README shows) with MANDATE_UPDATE_SCREENSHOTS=1 (`npm run screenshots`),
 * else into a temporary folder, so a test run leaves the checkout as it was.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM_ARGS, ROOT, ScriptedAgent, buildDashboard, call, requireChromium, startMandate, type Served } from './support.ts';

const SHOTS = process.env['MANDATE_UPDATE_SCREENSHOTS'] === '1' ? join(ROOT, 'docs', 'screenshots') : join(tmpdir(), `mandate-screenshots-${process.pid}`);
const MAIL = { to: 'customer@acme.example', body: 'Your refund is on its way' };

/**
 * Behaviour on, with containment: a purpose that only reads (drift) and a call that writes is
 * narrowed — the tool taken from the task — and raises an alert. Everything else only alerts.
 * The triage agent's calls fit its purpose ("e-mail customers"), so its scenarios are unchanged.
 */
const BEHAVIOUR = {
  behaviour: {
    enabled: true,
    containment: {
      rules: [
        { detector: 'drift', severity: 'medium', min_confidence: 0.8, action: 'narrow' },
        { detector: '*', severity: 'low', action: 'alert' },
      ],
    },
  },
};
const REPORTER = {
  purpose: "Summarise this week's refund tickets for the support lead.",
  tools: [{ name: 'helpdesk.search_tickets' }, { name: 'helpdesk.draft_reply' }],
};

// generous bounds: a busy machine is slow, and every wait ends as soon as its condition holds
describe('the operator dashboard in a real browser', { timeout: 120_000 }, () => {
  let served: Served;
  let context: BrowserContext;
  let page: Page;
  let profile: string;
  let agent: ScriptedAgent;
  let reporter: ScriptedAgent;
  const cspViolations: string[] = [];
  const pageErrors: string[] = [];

  beforeAll(async () => {
    const executablePath = requireChromium();
    buildDashboard();
    served = await startMandate(BEHAVIOUR);
    agent = new ScriptedAgent(served.url, 'support-triage');
    reporter = new ScriptedAgent(served.url, 'weekly-reporter', REPORTER);
    await Promise.all([agent.register(served.admin), reporter.register(served.admin)]);
    profile = mkdtempSync(join(tmpdir(), 'mandate-chromium-'));
    context = await chromium.launchPersistentContext(profile, { executablePath, headless: true, args: CHROMIUM_ARGS, viewport: { width: 1280, height: 860 } });
    page = context.pages()[0] ?? (await context.newPage());
    // waits end as soon as the page gets there; the bound is for a busy machine
    page.setDefaultTimeout(30_000);
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
    });
    page.on('pageerror', (e) => pageErrors.push(e.message));
    mkdirSync(SHOTS, { recursive: true });
  }, 300_000);

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

  it('shows a behavioural alert live, acknowledges it from the keyboard, and shows the containment', async () => {
    await page.getByRole('link', { name: 'Alerts' }).click();
    await page.getByRole('heading', { name: /^Open \(\d+\)$/ }).waitFor();
    const open = page.locator('article.alert.state-open', { hasText: 'helpdesk.draft_reply' });
    expect(await open.count()).toBe(0);

    // a read that fits the purpose, with its result reported; then a write the purpose never mentions
    const search = await reporter.act('helpdesk.search_tickets', { query: 'refund' });
    expect(search.effect).toBe('allow');
    await reporter.report(search.call_id, { tickets: [{ id: 'T-1', subject: 'refund' }] });
    const write = await reporter.act('helpdesk.draft_reply', { ticket: 'T-1', body: 'Refund approved.' });
    expect(write).toMatchObject({ effect: 'deny', policy_effect: 'allow', reasons: ['CONTAINMENT_NARROWED'] });

    // it arrives on the live stream: no reload, no navigation
    await open.waitFor();
    const text = (await open.textContent()) ?? '';
    expect(text).toContain('drift');
    expect(text).toContain('weekly-reporter');
    expect(text).toMatch(/policy\s*allow\s*→ final\s*deny/);
    expect(text).toContain('narrow');
    expect(text).toMatch(/confidence \d+%/);
    await open.locator('summary', { hasText: 'evidence' }).first().click();
    await expect.poll(() => open.locator('.json').first().textContent()).toContain('"class": "write"');
    const id = (await open.getAttribute('data-alert-id')) ?? '';
    expect(id).not.toBe('');

    // keyboard only: the note, Tab to the button, Enter
    await open.getByLabel('Note').focus();
    await page.keyboard.type('expected: reporter drafted a reply; tool narrowed');
    await shot('alerts');
    await page.keyboard.press('Tab');
    expect(await page.evaluate('document.activeElement?.textContent')).toBe('Acknowledge');
    await page.keyboard.press('Enter');
    const acked = page.locator(`article[data-alert-id="${id}"].state-acknowledged`);
    await acked.waitFor();
    expect(await acked.locator('.acked').textContent()).toContain('expected: reporter drafted a reply');

    const view = await call(served.url, served.admin, 'GET', `/v1/alerts/${encodeURIComponent(id)}`);
    expect(view.status).toBe(200);
    expect(view.json).toMatchObject({ state: 'acknowledged', ack_note: 'expected: reporter drafted a reply; tool narrowed', tool: 'helpdesk.draft_reply', actions: expect.arrayContaining(['narrow']) });
    expect(String(view.json['acked_by'])).not.toBe('');

    // the task's containment, in the tasks table and at the end of its timeline
    await page.getByRole('link', { name: 'Agents & tasks' }).click();
    await page.locator(`tr[data-task-id="${reporter.taskId}"] .containment-cell`, { hasText: 'narrowed: helpdesk.draft_reply' }).waitFor();
    // the contained call spent no budget: only the search counts
    expect(await page.locator(`tr[data-task-id="${reporter.taskId}"] td.num`).textContent()).toBe('1 / 20');
    await page.locator(`tr[data-task-id="${reporter.taskId}"] a`).click();
    await page.getByRole('heading', { name: '1. Intent' }).waitFor();
    const drafted = page.locator('ol.calls > li', { hasText: 'helpdesk.draft_reply' });
    await drafted.waitFor();
    // decision → signal → final action, in that order, then the operator's acknowledgement
    expect(await drafted.locator('.steps > li > strong').allTextContents()).toEqual(['decision', 'signal', 'final action', 'alert acknowledged']);
    expect(await drafted.locator('.step-signal').textContent()).toMatch(/medium\s*drift\s*confidence \d+%/);
    expect(await drafted.locator('.step-action').textContent()).toMatch(/blocked.*deny.*policy said allow.*containment narrow/s);
    const searched = page.locator('ol.calls > li', { hasText: 'helpdesk.search_tickets' });
    expect(await searched.locator('.steps > li > strong').allTextContents()).toEqual(['decision', 'final action', 'outcome']);
    expect(await page.locator('.containment-line').textContent()).toContain('narrowed: helpdesk.draft_reply');
    await shot('task-timeline-signals');
  });

  it('lifts the reporter’s narrowing from its task row, with a reason the server checks, and the lift is audited', async () => {
    await page.getByRole('link', { name: 'Agents & tasks' }).click();
    const cell = page.locator(`tr[data-task-id="${reporter.taskId}"] .containment-cell`);
    await cell.filter({ hasText: 'narrowed: helpdesk.draft_reply' }).waitFor();
    const button = page.getByRole('button', { name: `Lift containment of task ${reporter.taskId}` });
    await button.click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    // no reason: the form does not submit; too short: refused by the server, shown in the dialog
    await dialog.getByRole('button', { name: 'Lift' }).click();
    expect(await dialog.isVisible()).toBe(true);
    expect(await dialog.getByLabel('Reason').evaluate((el) => (el as unknown as { validity: { valueMissing: boolean } }).validity.valueMissing)).toBe(true);
    await dialog.getByLabel('Reason').fill('ok');
    await dialog.getByRole('button', { name: 'Lift' }).click();
    await expect.poll(() => dialog.getByRole('alert').textContent()).toContain('MALFORMED_REQUEST');
    await dialog.getByLabel('Reason').fill('reporter may draft replies this week (ticket OPS-12)');
    await shot('lift-dialog');
    await dialog.getByRole('button', { name: 'Lift' }).click();
    await dialog.waitFor({ state: 'hidden' });
    await cell.filter({ hasText: 'none' }).waitFor();
    expect(await button.count()).toBe(0);

    const task = await call(served.url, served.admin, 'GET', `/v1/tasks/${encodeURIComponent(reporter.taskId)}`);
    expect(task.json['containment']).toMatchObject({ narrowed_tools: [], restrictions: [] });
    const audit = await call(served.url, served.admin, 'GET', `/v1/tasks/${encodeURIComponent(reporter.taskId)}/audit`);
    const lifted = (audit.json['records'] as { kind: string; data: Record<string, unknown> }[]).find((r) => r.kind === 'containment.lifted');
    expect(lifted?.data).toMatchObject({ reason: 'reporter may draft replies this week (ticket OPS-12)', lifted: [expect.objectContaining({ action: 'narrow', tool: 'helpdesk.draft_reply' })] });
    // the search still works; the timeline shows the lift
    expect((await reporter.act('helpdesk.search_tickets', { query: 'after the lift' })).effect).toBe('allow');
    await page.locator(`tr[data-task-id="${reporter.taskId}"] a`).click();
    await page.getByRole('heading', { name: '1. Intent' }).waitFor();
    await expect.poll(async () => (await page.locator('main').textContent()) ?? '').toContain('narrow helpdesk.draft_reply lifted by');
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

  it('suggests ceilings and mandate templates from the audit log, with the rule behind each argument', async () => {
    await page.getByRole('link', { name: 'Suggest' }).click();
    await page.getByRole('button', { name: 'Suggest' }).click();
    await page.getByRole('heading', { name: /^Suggested for [1-9]/ }).waitFor();
    const learnt = page.locator('tr', { hasText: 'Learnt from' });
    // the training window: nothing denied by the ceiling or the template (budgets aside)
    expect(await learnt.locator('td').nth(2).textContent()).toBe('0.0 %');
    const triage = page.locator('details', { has: page.locator('summary', { hasText: 'support-triage' }) }).first();
    await triage.evaluate((d) => d.setAttribute('open', ''));
    await triage.locator('td', { hasText: 'helpdesk.search_tickets' }).first().waitFor();
    await shot('suggest');
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
