/**
 * GET /openapi.json: the API reference generated from the route schemas. It is the file committed
 * as docs/openapi.json (`npm run -s docs` writes it), valid OpenAPI 3.1, and names every route the
 * server registers with every optional part on (development issuer, AuthZEN, metrics), and no other.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import { API_ROUTES, registeredRoutes, UNDOCUMENTED_ROUTES } from '@mandate/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAuthzen, writeDomain, type AuthzenHarness } from '../authzen/fixture.ts';

const ROOT = resolve(import.meta.dirname, '..', '..', '..', '..');
const METRICS_TOKEN = 'scrape-token-0123456789abcdefghijklmnop';

let h: AuthzenHarness;
let tokenDir: string;

beforeAll(async () => {
  tokenDir = mkdtempSync(join(tmpdir(), 'mandate-openapi-'));
  const tokenFile = join(tokenDir, 'metrics.token');
  writeFileSync(tokenFile, `${METRICS_TOKEN}\n`, { mode: 0o600 });
  h = await startAuthzen(writeDomain(), { config: { metrics: { enabled: true, token_file: tokenFile } } });
});

afterAll(async () => {
  await h?.close();
  h?.fixture.cleanup();
  rmSync(tokenDir, { recursive: true, force: true });
});

type Doc = { openapi: string; paths: Record<string, Record<string, { security: unknown[]; parameters?: { name: string; in: string }[]; requestBody?: unknown; responses: Record<string, unknown> }>> };

async function served(): Promise<{ text: string; doc: Doc }> {
  const res = await h.inject({ method: 'GET', url: '/openapi.json' });
  expect(res.statusCode).toBe(200);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  return { text: res.body, doc: JSON.parse(res.body) as Doc };
}

describe('GET /openapi.json', () => {
  it('is served without a credential and is the committed docs/openapi.json, byte for byte', async () => {
    const { text } = await served();
    expect(text, 'docs/openapi.json is stale: run npm run -s docs').toBe(readFileSync(join(ROOT, 'docs', 'openapi.json'), 'utf8'));
  });

  it('is a valid OpenAPI 3.1 document', async () => {
    const { doc } = await served();
    expect(doc.openapi).toMatch(/^3\.1\./);
    const v = new Validator();
    const r = await v.validate(doc as unknown as Record<string, unknown>);
    expect(r.errors ?? []).toEqual([]);
    expect(r.valid).toBe(true);
    expect(v.version).toBe('3.1');
  });

  it('names every registered route (the dashboard pages aside) and only those', async () => {
    const { doc } = await served();
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`)).sort();
    const registered = registeredRoutes(h.app).filter((r) => !UNDOCUMENTED_ROUTES.test(r.split(' ')[1] ?? ''));
    expect(registered.length).toBeGreaterThan(60);
    expect(documented).toEqual(registered);
    expect(Object.keys(API_ROUTES).sort()).toEqual(registered);
  });

  it('declares each path parameter, a security requirement, and the error envelope with its stable codes', async () => {
    const { doc } = await served();
    for (const [path, ops] of Object.entries(doc.paths)) {
      const names = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
      for (const [method, op] of Object.entries(ops)) {
        const where = `${method.toUpperCase()} ${path}`;
        expect(op.parameters?.filter((p) => p.in === 'path').map((p) => p.name) ?? [], where).toEqual(names);
        expect(Array.isArray(op.security), where).toBe(true);
        expect(op.responses['400'], where).toEqual({ $ref: '#/components/responses/E400' });
      }
    }
    const start = doc.paths['/v1/tasks']?.['post'];
    expect(start?.security).toEqual([{ workloadToken: [] }, { workloadToken: [], dpop: [] }]);
    expect(start?.requestBody).toMatchObject({ content: { 'application/json': { schema: { type: 'object', additionalProperties: false, properties: { mandate: {}, resource: { type: 'string', maxLength: 2048 } } } } } });
    expect(doc.paths['/v1/kill']?.['post']?.security).toEqual([{ operatorKey: ['admin'] }]);
    expect(doc.paths['/healthz']?.['get']?.security).toEqual([]);
    const e401 = JSON.stringify((doc as unknown as { components: { responses: Record<string, unknown> } }).components.responses['E401']);
    for (const code of ['TOKEN_MISSING', 'TOKEN_EXPIRED', 'DPOP_PROOF_INVALID', 'UNAUTHENTICATED']) expect(e401).toContain(`"${code}"`);
  });

  it('a documented query schema is the one the route enforces', async () => {
    const { doc } = await served();
    const limit = doc.paths['/v1/tasks']?.['get']?.parameters?.find((p) => p.name === 'limit') as { schema: { maximum: number } } | undefined;
    expect(limit?.schema.maximum).toBe(1000);
    expect((await h.op('GET', '/v1/tasks?limit=1000')).statusCode).toBe(200);
    const over = await h.op('GET', '/v1/tasks?limit=1001');
    expect(over.statusCode).toBe(400);
    expect(over.json<{ error: { code: string } }>().error.code).toBe('MALFORMED_REQUEST');
  });
});
