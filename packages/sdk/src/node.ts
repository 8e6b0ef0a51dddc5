/**
 * Node-only helpers, kept out of the main entry so that it runs on edge runtimes too.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import type { MandateTask } from './task.ts';

/**
 * Reads the workload token from a file at each use: SPIRE's helper (and Kubernetes projected
 * service-account tokens) rewrite the file as the token rotates.
 */
export function workloadTokenFromFile(path: string): () => Promise<string> {
  return async () => {
    const text = (await readFile(path, 'utf8')).trim();
    if (text === '') throw new TypeError(`workload token file ${path} is empty`);
    return text;
  };
}

async function writeAtomically(path: string, text: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, text, { mode: 0o600 });
  await rename(tmp, path);
}

/**
 * Keeps a file holding the task's current token (mode 0600, replaced atomically at each
 * renewal), for an enforcement point that reads its token from a file, such as
 * `mandate mcp --stdio` with `MANDATE_TASK_TOKEN_FILE`. Resolves once the first token is
 * written; the returned function stops updating the file.
 */
export async function keepTaskTokenFile(task: MandateTask, path: string, onError: (e: unknown) => void = () => undefined): Promise<() => void> {
  await writeAtomically(path, `${task.token}\n`);
  let chain = Promise.resolve();
  return task.onTokenChange((token) => {
    chain = chain.then(() => writeAtomically(path, `${token}\n`)).catch(onError);
  });
}
