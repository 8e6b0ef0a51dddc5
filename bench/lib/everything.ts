/**
 * `@modelcontextprotocol/server-everything` as the upstream the gateway benchmarks forward to: its
 * entry point (for stdio), and the same server over Streamable HTTP in its own process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { freePort } from '../../packages/server/test/cluster/throwaway-pg.ts';
import { REPO_ROOT } from './stats.ts';

export const EVERYTHING = join(REPO_ROOT, 'node_modules', '@modelcontextprotocol', 'server-everything', 'dist', 'index.js');

/** server-everything over Streamable HTTP on a free port; resolves once it listens. */
export async function startHttpEverything(): Promise<{ url: string; proc: ChildProcess }> {
  const port = await freePort();
  const proc = spawn(process.execPath, [EVERYTHING, 'streamableHttp'], { env: { PATH: process.env['PATH'] ?? '', PORT: String(port) }, stdio: ['ignore', 'ignore', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server-everything (HTTP) did not start')), 60_000);
    proc.stderr?.on('data', (d: Buffer) => {
      if (d.toString().includes('listening on port')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return { url: `http://127.0.0.1:${port}/mcp`, proc };
}
