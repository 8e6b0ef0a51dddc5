/**
 * Node-only helpers, kept out of the main entry so that it runs on edge runtimes too.
 */
import { readFile } from 'node:fs/promises';

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
