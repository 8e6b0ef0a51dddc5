/**
 * Security review checks (issue 9): canary secrets never reach a log line or an audit record;
 * no CORS is granted to browsers; no dynamic code anywhere in the sources.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { READY_TIMEOUT_MS, startServe, type ServeProcess } from '../serve-process.ts';

const ROOT = join(import.meta.dirname, '..', '..', '..', '..');
const ADMIN = 'mk_' + 'S'.repeat(43);
const AGENT = 'spiffe://dev.mandate.local/agents/canary';
const CANARY = {
  password: 'canary-password-7f3a91',
  apiKey: 'canary-apikey-0c55e2',
  bearer: 'canary-bearer-b81d44',
  result: 'canary-result-4e2f10',
  header: 'canary-cookie-99a1c3',
};

describe('security review', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mandate-canary-'));
  let served: ServeProcess | undefined;
  let url = '';
  let log = '';
  const secrets: string[] = Object.values(CANARY);

  const req = async (method: string, path: string, bearer?: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(url + path, {
      method,
      headers: { ...(bearer ? { authorization: `Bearer ${bearer}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(5000),
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, json: (text ? JSON.parse(text) : {}) as Record<string, unknown> };
  };

  beforeAll(async () => {
    served = await startServe({
      args: ['--port', '0', '--data-dir', dir, '--policies', join(ROOT, 'examples', 'policies'), '--dev-issuer'],
      env: { ...process.env, MANDATE_BOOTSTRAP_ADMIN_KEY: ADMIN, MANDATE_ENVIRONMENT: 'prod', MANDATE_LOG_LEVEL: 'trace' },
      onOutput: (chunk) => (log += chunk),
    });
    url = served.url;
  }, READY_TIMEOUT_MS + 30_000);

  afterAll(() => {
    served?.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('never writes a secret to a log line or an audit record', async () => {
    secrets.push(ADMIN);
    const opKey = (await req('POST', '/v1/operators/keys', ADMIN, { name: 'bob', role: 'viewer' })).json['key'] as string;
    secrets.push(opKey);
    await req('POST', '/v1/agents', ADMIN, { id: AGENT, owner: 'team', type: 'support', ceiling: {} });
    const svid = (await req('POST', '/v1/dev/workload-tokens', ADMIN, { spiffe_id: AGENT })).json['token'] as string;
    secrets.push(svid);
    const started = await req('POST', '/v1/tasks', svid, {
      mandate: { purpose: 'canary test', environment: 'prod', ttl: '10m', tools: [{ name: 'helpdesk.search_tickets' }, { name: 'fs.read_file' }], data_classes: ['internal'] },
    });
    const token = started.json['token'] as string;
    secrets.push(token);
    // secrets in arguments under secret-looking names, in a garbage token, in a header, in a result
    const d = await req('POST', '/v1/authorize', token, { tool: 'helpdesk.search_tickets', args: { query: 'x', password: CANARY.password, api_key: CANARY.apiKey }, call_id: 'canary-1' }, { cookie: `session=${CANARY.header}` });
    expect(d.json['effect']).toBe('allow');
    await req('POST', '/v1/outcomes', token, { call_id: 'canary-1', result: { text: `a result holding ${CANARY.result}` } });
    await req('POST', '/v1/authorize', `${CANARY.bearer}.x.y`, { tool: 'helpdesk.search_tickets', args: {} });
    await req('POST', '/v1/authorize', token, { tool: 'fs.read_file', args: { path: '/etc/passwd', token: CANARY.apiKey } });
    await req('GET', '/v1/agents', CANARY.bearer);
    await req('POST', `/v1/tasks/${started.json['task'] && (started.json['task'] as { id: string }).id}/complete`, token, {});
    await req('POST', '/v1/authorize', token, { tool: 'helpdesk.search_tickets', args: {} });

    const audit = JSON.stringify((await req('GET', '/v1/audit?limit=10000', ADMIN)).json);
    expect(audit).toContain('canary-1');
    expect(log.length).toBeGreaterThan(1000);
    for (const s of secrets) {
      expect(log.includes(s), `a log line holds ${s.slice(0, 24)}…`).toBe(false);
      expect(audit.includes(s), `an audit record holds ${s.slice(0, 24)}…`).toBe(false);
    }
    // and neither do the checkpoint mirror files beside the database (key files hold keys by design, mode 0600)
    for (const f of readdirSync(dir)) {
      const p = join(dir, f);
      if (!statSync(p).isFile() || f.startsWith('mandate.db') || /\.(key|jwk|pem)$|keys?\.json$/.test(f)) continue;
      const text = readFileSync(p, 'utf8');
      for (const s of secrets) expect(text.includes(s), `${f} holds a secret`).toBe(false);
    }
  });

  it('grants no cross-origin access to browsers', async () => {
    const pre = await fetch(`${url}/v1/authorize`, { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' } });
    expect(pre.headers.get('access-control-allow-origin')).toBeNull();
    expect(pre.headers.get('access-control-allow-credentials')).toBeNull();
    const get = await req('GET', '/v1/agents', ADMIN, undefined, { origin: 'https://evil.example' });
    expect(get.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('has no dynamic code in any source file', () => {
    const offenders: string[] = [];
    const walk = (d: string) => {
      for (const f of readdirSync(d)) {
        if (f === 'node_modules' || f === 'dist' || f.startsWith('.')) continue;
        const p = join(d, f);
        if (statSync(p).isDirectory()) walk(p);
        else if (/\.(ts|tsx|js|mjs)$/.test(f) && !f.endsWith('.test.ts')) {
          const text = readFileSync(p, 'utf8');
          if (/\beval\s*\(|new\s+Function\s*\(|\bvm\.(runIn|compileFunction)|from 'node:vm'/.test(text)) offenders.push(p);
        }
      }
    };
    for (const d of ['packages', 'bench', 'examples']) walk(join(ROOT, d));
    expect(offenders).toEqual([]);
  });
});
