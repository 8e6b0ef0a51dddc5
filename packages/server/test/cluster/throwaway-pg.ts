/**
 * A throw-away PostgreSQL for tests that stop or break the database: initdb into a temporary
 * folder, its own port on loopback, never the machine's shared server. PostgreSQL refuses to
 * run as root, so when the tests run as root the server runs as the `postgres` user.
 */
import { execFileSync } from 'node:child_process';
import { chownSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BIN = process.env['MANDATE_PG_BIN'] ?? '/usr/local/bin';

export interface ThrowawayPostgres {
  readonly url: string;
  readonly port: number;
  /** pg_ctl stop: `fast` ends sessions and checkpoints, `immediate` quits at once (crash recovery on start) */
  stop(mode?: 'fast' | 'immediate'): void;
  /** SIGKILLs the postmaster, as the kernel's OOM killer would, and waits until its children are gone too */
  kill(): Promise<void>;
  start(): void;
  destroy(): void;
}

/** fields 3 on of /proc/<pid>/stat (state, ppid…), or undefined when there is no such process */
function statOf(pid: number | string): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the command name (field 2) is in parentheses and may hold spaces
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** running: exists and is not a zombie waiting for a parent that does not reap it */
function alive(pid: number): boolean {
  const state = statOf(pid)?.[0];
  return state !== undefined && state !== 'Z' && state !== 'X';
}

/** the processes whose parent is `pid` */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(name)) continue;
    if (Number(statOf(name)?.[1]) === pid) out.push(Number(name));
  }
  return out;
}

/** a free TCP port on loopback, for servers a test starts */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function pgUid(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

export async function startThrowawayPostgres(): Promise<ThrowawayPostgres> {
  const dir = mkdtempSync(join(tmpdir(), 'mandate-pg-'));
  const owner = pgUid();
  if (owner) chownSync(dir, owner.uid, owner.gid);
  const run = (cmd: string, args: string[]) =>
    execFileSync(join(BIN, cmd), args, { stdio: 'pipe', timeout: 60_000, ...(owner ? { uid: owner.uid, gid: owner.gid } : {}) });
  const data = join(dir, 'data');
  run('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync']);
  const port = await freePort();
  const opts = `-p ${port} -k ${dir} -h 127.0.0.1 -c fsync=off -c max_connections=100`;
  const start = () => run('pg_ctl', ['-D', data, '-o', opts, '-l', join(dir, 'log'), '-w', '-t', '30', 'start']);
  const stop = (mode: 'fast' | 'immediate') => run('pg_ctl', ['-D', data, '-m', mode, '-w', '-t', '30', 'stop']);
  start();
  let running = true;
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    stop(mode = 'fast') {
      if (running) stop(mode);
      running = false;
    },
    async kill() {
      if (!running) return;
      const pid = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
      const children = childrenOf(pid);
      process.kill(pid, 'SIGKILL');
      running = false;
      // the backends notice their postmaster died and exit; a new one cannot start while they
      // still hold its shared memory, nor while the old one is still in the process table (a
      // zombie until init reaps it: PostgreSQL's lock file check sees it as running)
      const end = Date.now() + 30_000;
      while (statOf(pid) !== undefined || children.some(alive)) {
        if (Date.now() > end) throw new Error(`PostgreSQL's processes outlived their killed postmaster for 30 s`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    start() {
      if (!running) start();
      running = true;
    },
    destroy() {
      try {
        if (running) run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } catch {
        // already gone
      }
      running = false;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
