/**
 * A full collection on demand, for benchmarks that read the heap: without --expose-gc the
 * benchmark runs itself again with it (same arguments) and this process exits with its status.
 */
import { spawnSync } from 'node:child_process';

export function exposedGc(): () => void {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (exposed !== undefined) return exposed;
  const again = spawnSync(process.execPath, ['--expose-gc', ...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit' });
  process.exit(again.status ?? 1);
}
