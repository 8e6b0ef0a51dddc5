/**
 * The dashboard on a phone-sized screen (400 px), in a zone far from UTC, signed in after the
 * agent already worked: decisions from before sign-in, full ids on hover and on the clipboard,
 * dates with their zone, no sideways page scroll, and the admin screens for a policy reload and
 * for operator keys. Debian's Chromium through playwright-core against a real `mandate serve`.
 */
import { cpSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM_ARGS, ROOT, ScriptedAgent, buildDashboard, call, requireChromium, startMandate, type Served } from './support.ts';

const SHOTS = process.env['MANDATE_UPDATE_SCREENSHOTS'] === '1' ? join(ROOT, 'docs', 'screenshots') : join(tmpdir(), `mandate-screenshots-${process.pid}`);
const ZONE = 'Asia/Kolkata';
const EXTRA_POLICY = `@id("extra.no-exec-anywhere")
forbid (principal, action == Mandate::Action::"call_tool", resource)
when { resource.category == "exec" };
`;

/** what the dashboard should print for an instant: local date and time in ZONE, then the zone */
function inZone(iso: string): string {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-US', { timeZone: ZONE, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23', timeZoneName: 'short' })
      .formatToParts(new Date(iso))
      .map((p) => [p.type, p.value]),
  );
  return `${parts['year']}-${parts['month']}-${parts['day']} ${parts['hour']}:${parts['minute']}:${parts['second']} ${parts['timeZoneName']}`;
}

describe('the dashboard at 400 px with history, ids, dates and the admin screens', { timeout: 120_000 }, () => {
  let served: Served;
  let context: BrowserContext;
  let page: Page;
  let profile: string;
  let policies: string;
  let agent: ScriptedAgent;
  const pageErrors: string[] = [];
  const pending = new Set<unknown>();
  const isStream = (url: string) => new URL(url).pathname === '/v1/events';
  /**
   * The view has fetched what it shows: no request but the event stream in flight for 300 ms
   * (Playwright's 'networkidle' never comes while the stream is open).
   */
  const settled = async () => {
    let quietSince = Date.now();
    await expect
      .poll(() => {
        if (pending.size > 0) quietSince = Date.now();
        return Date.now() - quietSince >= 300;
      }, { timeout: 30_000, interval: 50 })
      .toBe(true);
  };

  beforeAll(async () => {
    const executablePath = requireChromium();
    buildDashboard();
    policies = mkdtempSync(join(tmpdir(), 'mandate-e2e-policies-'));
    cpSync(join(ROOT, 'examples/policies'), policies, { recursive: true });
    served = await startMandate(undefined, policies);
    agent = new ScriptedAgent(served.url, 'support-triage');
    await agent.register(served.admin);
    profile = mkdtempSync(join(tmpdir(), 'mandate-chromium-'));
    context = await chromium.launchPersistentContext(profile, { executablePath, headless: true, args: CHROMIUM_ARGS, viewport: { width: 400, height: 800 }, timezoneId: ZONE, locale: 'en-US' });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: served.url });
    page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(30_000);
    page.on('pageerror', (e) => pageErrors.push(e.message));
    // requests in flight besides the live event stream, which stays open for the page's life
    page.on('request', (r) => void (isStream(r.url()) || pending.add(r)));
    page.on('requestfinished', (r) => void pending.delete(r));
    page.on('requestfailed', (r) => void pending.delete(r));
    mkdirSync(SHOTS, { recursive: true });
  }, 300_000);

  afterAll(async () => {
    await context?.close();
    await served?.stop();
    if (profile) rmSync(profile, { recursive: true, force: true });
    if (policies) rmSync(policies, { recursive: true, force: true });
  });

  /** how far the page scrolls sideways (0 when everything fits the viewport), and what sticks out */
  const overflow = () =>
    // a string, evaluated in the page: this file is type-checked without the DOM's types
    page.evaluate<{ px: number; out: string[] }>(`(() => {
      const width = document.documentElement.clientWidth;
      const out = [...document.querySelectorAll('body *')]
        .filter((el) => el.getBoundingClientRect().right > width + 0.5 && !el.parentElement?.closest('table'))
        .map((el) => el.tagName.toLowerCase() + '.' + el.className + ' ' + Math.round(el.getBoundingClientRect().right) + ' ' + getComputedStyle(el).display)
        .slice(0, 5);
      return { px: document.documentElement.scrollWidth - width, out };
    })()`);
  const FITS = { px: 0, out: [] };
  const shot = (name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });

  it('shows decisions made before sign-in, read from the audit log', async () => {
    expect((await agent.act('helpdesk.search_tickets', { query: 'refund' })).effect).toBe('allow');
    expect((await agent.act('fs.read_file', { path: '/srv/kb/../../etc/shadow' })).reasons).toContain('ARG_CONSTRAINT_FAILED');

    await page.goto(`${served.url}/dashboard/`);
    await page.getByLabel('Operator API key').fill(served.admin);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('navigation', { name: 'Views' }).waitFor();

    const denied = page.locator('table.decisions tbody tr', { hasText: 'ARG_CONSTRAINT_FAILED' });
    await denied.first().waitFor();
    expect(await denied.first().textContent()).toContain('deny');
    expect(await page.locator('table.decisions tbody tr', { hasText: 'helpdesk.search_tickets' }).count()).toBe(1);
    await expect.poll(() => page.getByText(/2 read from the audit log at sign-in/).count()).toBe(1);

    // a new call arrives on the stream and is listed above the history, once
    await agent.act('helpdesk.search_tickets', { query: 'after sign-in' });
    await expect.poll(() => page.locator('table.decisions tbody tr', { hasText: 'helpdesk.search_tickets' }).count()).toBe(2);
    expect(await page.locator('table.decisions tbody tr').count()).toBe(3);
    await shot('narrow-live-decisions');
  });

  it('gives the full task id on hover and on the clipboard, and dates with their zone', async () => {
    const row = page.locator('table.decisions tbody tr').first();
    const id = row.locator('.id');
    expect(await id.getAttribute('data-id')).toBe(agent.taskId);
    expect(await id.locator('a').getAttribute('title')).toBe(agent.taskId);
    // what is shown differs from every other task's start: the elided middle keeps the tail
    const shown = (await id.locator('code').textContent()) ?? '';
    expect(shown).toContain('…');
    expect(agent.taskId.endsWith(shown.split('…')[1] ?? 'x')).toBe(true);
    await id.getByRole('button', { name: `Copy ${agent.taskId}` }).click();
    await expect.poll(() => page.evaluate<string>('navigator.clipboard.readText()')).toBe(agent.taskId);

    const when = row.locator('time');
    const iso = (await when.getAttribute('datetime')) ?? '';
    expect(Number.isNaN(Date.parse(iso))).toBe(false);
    expect(await when.getAttribute('title')).toBe(iso);
    expect(await when.textContent()).toBe(inZone(iso));
    expect(await when.textContent()).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} GMT\+5:30$/);
  });

  it('fits 400 px: tables scroll in their own box, the page never sideways', async () => {
    expect(await overflow()).toEqual(FITS);
    for (const view of ['Agents & tasks', 'Approvals', 'Alerts', 'Policies', 'Suggest', 'Charts', 'Operator keys']) {
      await page.getByRole('link', { name: view, exact: true }).click();
      await page.getByRole('heading', { level: 1, name: view }).waitFor();
      await settled();
      expect({ view, ...(await overflow()) }).toEqual({ view, ...FITS });
    }
    await page.goto(`${served.url}/dashboard/#/timeline/${encodeURIComponent(agent.taskId)}`);
    await page.getByRole('heading', { name: '1. Intent' }).waitFor();
    expect(await overflow()).toEqual(FITS);
    // the tasks table is wider than the screen and scrolls inside itself
    await page.getByRole('link', { name: 'Agents & tasks', exact: true }).click();
    const tasks = page.locator('table.tasks');
    await tasks.locator(`tr[data-task-id="${agent.taskId}"]`).waitFor();
    expect(await tasks.evaluate((t) => t.scrollWidth > t.clientWidth && (globalThis as unknown as { getComputedStyle(e: unknown): { overflowX: string } }).getComputedStyle(t).overflowX === 'auto')).toBe(true);
  });

  it('clears a draft’s stale verdict once a later run succeeds', async () => {
    await page.getByRole('link', { name: 'Policies', exact: true }).click();
    const draft = page.getByLabel('Draft policies (Cedar)');
    await expect.poll(() => draft.inputValue()).toContain('org.start.bounded-tasks');
    const good = await draft.inputValue();
    await draft.fill('permit (principal, action, resource');
    await page.getByRole('button', { name: 'Run in shadow mode' }).click();
    await expect.poll(() => page.getByText('The draft is invalid').count()).toBe(1);
    await page.getByRole('button', { name: 'Validate' }).click();
    await expect.poll(() => page.locator('#draft-h ~ div.error[role="status"]').textContent()).toMatch(/^Invalid:/);

    await draft.fill(good);
    expect(await page.getByText('The draft is invalid').count()).toBe(0);
    await page.getByRole('button', { name: 'Validate' }).click();
    await expect.poll(() => page.getByText(/^Valid: \d+ policies/).count()).toBe(1);
    await page.getByRole('button', { name: 'Run in shadow mode' }).click();
    await expect.poll(() => page.getByText(/recent decisions examined/).count()).toBe(1);
    expect(await page.locator('#draft-h ~ div[role="status"]').textContent()).toMatch(/^Valid:/);
    expect(await page.getByText('The draft is invalid').count()).toBe(0);
  });

  it('reloads the policy folder: refuses an empty one, then puts the new set in force and clears the error', async () => {
    const reload = async () => {
      await page.getByRole('button', { name: 'Reload policies' }).click();
      const dialog = page.getByRole('dialog');
      await dialog.getByRole('button', { name: 'Reload' }).click();
      await dialog.waitFor({ state: 'hidden' });
    };
    const before = await call(served.url, served.admin, 'GET', '/v1/policies');
    const version = String(before.json['version']);
    const count = (before.json['policies'] as unknown[]).length;

    renameSync(join(policies, 'org.cedar'), join(policies, 'org.cedar.off'));
    await reload();
    await expect.poll(() => page.locator('#reload-h ~ .error').textContent()).toMatch(/Reload refused.*POLICY_INVALID/);

    renameSync(join(policies, 'org.cedar.off'), join(policies, 'org.cedar'));
    writeFileSync(join(policies, 'extra.cedar'), EXTRA_POLICY);
    await reload();
    const result = page.locator('.reload-result');
    await result.waitFor();
    expect(await result.textContent()).toContain(`Reloaded: ${count + 1} policies`);
    expect(await result.textContent()).toContain(`(was ${version})`);
    expect(await result.textContent()).toContain('No task was suspended.');
    expect(await page.locator('#reload-h ~ .error').count()).toBe(0);
    // the loaded set above shows the new policy, and the server agrees
    await page.locator('table code', { hasText: 'extra.no-exec-anywhere' }).waitFor();
    const after = await call(served.url, served.admin, 'GET', '/v1/policies');
    expect(after.json['version']).not.toBe(version);
    expect(await result.locator('code').first().textContent()).toBe(after.json['version']);
    await result.scrollIntoViewIfNeeded();
    await shot('narrow-policy-reload');
    expect(await overflow()).toEqual(FITS);
  });

  it('creates an operator key, shows its secret once with a copy button, and revokes it', async () => {
    await page.getByRole('link', { name: 'Operator keys', exact: true }).click();
    await page.locator('table.operator-keys tbody tr').first().waitFor();
    await page.getByLabel('Name').fill('night-shift');
    await page.getByLabel('Role').selectOption('viewer');
    await page.getByRole('button', { name: 'Create key' }).click();
    const created = page.locator('.created-key');
    await created.waitFor();
    expect(await created.textContent()).toContain('Created viewer key “night-shift”');
    const secret = (await created.locator('.id').getAttribute('data-id')) ?? '';
    await created.getByRole('button', { name: /^Copy / }).click();
    await expect.poll(() => page.evaluate<string>('navigator.clipboard.readText()')).toBe(secret);
    expect((await call(served.url, secret, 'GET', '/v1/kill')).status).toBe(200);

    const row = page.locator('table.operator-keys tbody tr', { hasText: 'night-shift' });
    await row.waitFor();
    expect(await row.textContent()).toContain('active');
    await shot('narrow-operator-keys');
    expect(await overflow()).toEqual(FITS);
    await page.getByRole('button', { name: 'Revoke key night-shift' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByRole('button', { name: 'Revoke' }).click();
    await dialog.waitFor({ state: 'hidden' });
    await page.locator('table.operator-keys tbody tr', { hasText: 'night-shift' }).filter({ hasText: 'revoked' }).waitFor();
    expect((await call(served.url, secret, 'GET', '/v1/kill')).status).toBe(401);
    // the server recorded both acts
    const audit = await call(served.url, served.admin, 'GET', '/v1/audit?tail=true&limit=50');
    const kinds = (audit.json['records'] as { kind: string }[]).map((r) => r.kind);
    expect(kinds).toEqual(expect.arrayContaining(['operator.key_created', 'operator.key_revoked', 'policy.reloaded', 'policy.reload_refused']));
    expect(pageErrors).toEqual([]);
  });
});
