/**
 * A full collection on demand, for benchmarks that read the heap: without --expose-gc the
 * benchmark runs itself again with it (same arguments) and this process exits with its status.
 */
import { spawnSync } from 'node:child_process';

/**
 * Runs this script again in a child with `flags` added to Node's own (and `env`, if given), and
 * exits this process with the child's status: for settings a process can only be started with.
 */
export function runSelfAgainWith(flags: readonly string[], env: NodeJS.ProcessEnv = process.env): never {
  const again = spawnSync(process.execPath, [...process.execArgv, ...flags, ...process.argv.slice(1)], { stdio: 'inherit', env });
  process.exit(again.status ?? 1);
}

export function exposedGc(): () => void {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (exposed !== undefined) return exposed;
  return runSelfAgainWith(['--expose-gc']);
}
