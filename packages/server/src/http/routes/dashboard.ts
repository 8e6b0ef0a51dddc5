import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { envelope } from '../errors.ts';

/**
 * The operator dashboard's built files: the copy packed into the installed server package
 * (dashboard/ at its root, put there by scripts/pack.ts), else where `npm run build:dashboard`
 * writes it in the repository (packages/dashboard/dist).
 */
export const DASHBOARD_DIST = [new URL('../../../dashboard/', import.meta.url), new URL('../../../../dashboard/dist/', import.meta.url)]
  .map((u) => fileURLToPath(u))
  .find((p) => existsSync(join(p, 'index.html'))) ?? fileURLToPath(new URL('../../../../dashboard/dist/', import.meta.url));

/**
 * Headers on every dashboard response: scripts, styles and connections from this origin only,
 * no inline script, never framed, no referrer leaving the page.
 */
export const DASHBOARD_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=()',
};

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};
const MAX_TOTAL_BYTES = 20 * 1024 * 1024;

interface Asset {
  readonly body: Buffer;
  readonly type: string;
}

/** Reads the built files into memory once: only what the build wrote can ever be served. */
function loadAssets(dir: string): Map<string, Asset> | undefined {
  if (!existsSync(join(dir, 'index.html'))) return undefined;
  const out = new Map<string, Asset>();
  let total = 0;
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const full = join(d, name);
      const st = statSync(full);
      if (st.isDirectory()) walk(full);
      else if (st.isFile() && TYPES[extname(name)] !== undefined) {
        total += st.size;
        if (total > MAX_TOTAL_BYTES) throw new Error(`the dashboard build in ${dir} is over ${MAX_TOTAL_BYTES} bytes`);
        out.set(relative(dir, full).split(sep).join('/'), { body: readFileSync(full), type: TYPES[extname(name)] as string });
      }
    }
  };
  walk(dir);
  return out;
}

/**
 * The operator dashboard under /dashboard/: static files from its build, with strict headers.
 * It is a client of the public API like any other and gets no privilege from being served here.
 */
export function dashboardRoutes(app: FastifyInstance, dir: string = DASHBOARD_DIST): void {
  let assets: Map<string, Asset> | undefined;
  const get = () => (assets ??= loadAssets(dir));

  const send = (reply: FastifyReply, path: string) => {
    reply.headers(DASHBOARD_HEADERS);
    const files = get();
    if (!files) {
      return reply
        .code(503)
        .type('text/plain; charset=utf-8')
        .send('The dashboard is not built. Run `npm run build:dashboard` and restart `mandate serve`.\n');
    }
    const asset = files.get(path);
    if (!asset) return reply.code(404).send(envelope('NOT_FOUND', 'no such dashboard file', reply.request.id));
    // hashed file names never change content; the page itself is always fetched fresh
    if (path.startsWith('assets/')) reply.header('cache-control', 'public, max-age=31536000, immutable');
    return reply.code(200).type(asset.type).send(asset.body);
  };

  app.get('/dashboard', async (_req, reply) => reply.headers(DASHBOARD_HEADERS).redirect('/dashboard/', 308));
  app.get('/dashboard/', async (_req, reply) => send(reply, 'index.html'));
  app.get<{ Params: { '*': string } }>('/dashboard/*', async (req, reply) => {
    const path = req.params['*'];
    // the client routes by #hash, so any other path is a missing file, never the index
    if (!/^[A-Za-z0-9._/-]{1,300}$/.test(path) || path.split('/').some((p) => p === '' || p === '.' || p === '..')) {
      reply.headers(DASHBOARD_HEADERS);
      return reply.code(404).send(envelope('NOT_FOUND', 'no such dashboard file', req.id));
    }
    return send(reply, path);
  });
}
