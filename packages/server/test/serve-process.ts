/**
 * `mandate serve` as a child process, for the tests and benchmarks that need the real CLI: start
 * it, and wait until it is ready, that is until GET /readyz answers 200. The wait has a long
 * overall bound (a loaded machine has taken many seconds to start it, and a fixed 10 or 20 s guess
 * failed there) and ends at once, with the process's output, if the process exits first.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '..', '..', '..');
/** the `mandate` command (bin/mandate.js: compile cache on) */
export const CLI = join(ROOT, 'packages', 'cli', 'bin', 'mandate.js');
/** how long a start may take before the wait gives up; a test hook waiting on it needs more */
export const READY_TIMEOUT_MS = 120_000;

export interface ServeProcess {
  readonly child: ChildProcess;
  /** base URL, from the "mandate listening on" line */
  readonly url: string;
  /** what the process wrote so far (stdout and stderr, the last 1 MiB) */
  output(): string;
  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`; resolves with the exit code */
  stop(graceMs?: number): Promise<number | null>;
}

export interface ServeOptions {
  /** arguments after `serve` */
  readonly args: readonly string[];
  readonly env?: Record<string, string | undefined>;
  readonly readyTimeoutMs?: number;
  /** every chunk of output, as it comes (the process's log) */
  readonly onOutput?: (chunk: string) => void;
}

const KEEP = 1024 * 1024;

/** Starts `mandate serve <args>` and resolves once it is ready; rejects (and kills it) if it exits or never gets there. */
export async function startServe(opts: ServeOptions): Promise<ServeProcess> {
  const child = spawn(process.execPath, [CLI, 'serve', ...opts.args], { env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const take = (b: Buffer) => {
    const text = b.toString();
    out = (out + text).slice(-KEEP);
    opts.onOutput?.(text);
  };
  child.stdout?.on('data', take);
  child.stderr?.on('data', take);
  const stop = async (graceMs = 10_000): Promise<number | null> => {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    const code = await exited;
    clearTimeout(timer);
    return code;
  };
  try {
    const url = await waitReady(child, () => out, opts.readyTimeoutMs ?? READY_TIMEOUT_MS);
    return { child, url, output: () => out, stop };
  } catch (e) {
    child.kill('SIGKILL');
    throw e;
  }
}

/**
 * Waits for the "mandate listening on <url>" line, then polls `<url>/readyz` until it answers 200.
 * Rejects as soon as the process exits, or once `timeoutMs` has passed.
 */
export async function waitReady(child: ChildProcess, output: () => string, timeoutMs: number = READY_TIMEOUT_MS, pollMs = 25): Promise<string> {
  const started = performance.now();
  let exited: string | undefined;
  const onExit = (code: number | null, signal: NodeJS.Signals | null) => (exited = `mandate serve exited (${signal ?? `code ${String(code)}`}) before it was ready`);
  if (child.exitCode !== null || child.signalCode !== null) onExit(child.exitCode, child.signalCode);
  child.once('exit', onExit);
  try {
    let url: string | undefined;
    for (;;) {
      if (exited !== undefined) throw new Error(`${exited}:\n${output()}`);
      const waited = performance.now() - started;
      if (waited > timeoutMs) throw new Error(`mandate serve was not ready after ${Math.round(waited / 1000)} s${url === undefined ? ' (no "listening" line)' : ` (${url}/readyz never answered 200)`}:\n${output()}`);
      url ??= /mandate listening on (http:\/\/\S+)/.exec(output())?.[1];
      if (url !== undefined) {
        const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(10_000) }).catch(() => undefined);
        if (res !== undefined) {
          await res.body?.cancel();
          if (res.status === 200) return url;
        }
      }
      await new Promise((r) => setTimeout(r, pollMs));
    }
  } finally {
    child.off('exit', onExit);
  }
}
