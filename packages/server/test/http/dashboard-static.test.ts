/**
 * The dashboard's static files under /dashboard/ (issue 7): only what the build wrote, with a
 * strict CSP (no inline script), never framed, no referrer, no sniffing.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dashboardRoutes } from '../../src/http/routes/dashboard.ts';

describe('the dashboard route', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mandate-dash-'));
  const app = Fastify();
  const missing = Fastify();

  beforeAll(() => {
    mkdirSync(join(dir, 'assets'));
    writeFileSync(join(dir, 'index.html'), '<!doctype html><script type="module" src="/dashboard/assets/app-1.js"></script>');
    writeFileSync(join(dir, 'assets', 'app-1.js'), 'console.log(1)');
    writeFileSync(join(dir, 'assets', 'notes.exe'), 'MZ');
    writeFileSync(join(tmpdir(), 'outside.js'), 'nope');
    dashboardRoutes(app, dir);
    dashboardRoutes(missing, join(dir, 'nothing-here'));
  });
  afterAll(async () => {
    await app.close();
    await missing.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the page with the security headers', async () => {
    const res = await app.inject({ method: 'GET', url: '/dashboard/' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    const csp = String(res.headers['content-security-policy']);
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).toContain("frame-ancestors 'none'");
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['referrer-policy']).toBe('no-referrer');
    expect(res.headers['x-frame-options']).toBe('DENY');
  });

  it('redirects /dashboard to /dashboard/', async () => {
    const res = await app.inject({ method: 'GET', url: '/dashboard' });
    expect(res.statusCode).toBe(308);
    expect(res.headers.location).toBe('/dashboard/');
  });

  it('serves built assets with their type, and nothing else', async () => {
    const js = await app.inject({ method: 'GET', url: '/dashboard/assets/app-1.js' });
    expect(js.statusCode).toBe(200);
    expect(js.headers['content-type']).toMatch(/^text\/javascript/);
    expect(js.headers['content-security-policy']).toBeDefined();
    for (const url of ['/dashboard/assets/notes.exe', '/dashboard/../outside.js', '/dashboard/assets/%2e%2e/%2e%2e/outside.js', '/dashboard/assets//app-1.js', '/dashboard/nope.html']) {
      const res = await app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(404);
    }
  });

  it('says how to build it when it is not built', async () => {
    const res = await missing.inject({ method: 'GET', url: '/dashboard/' });
    expect(res.statusCode).toBe(503);
    expect(res.body).toMatch(/npm run build:dashboard/);
    expect(res.headers['content-security-policy']).toBeDefined();
  });
});
