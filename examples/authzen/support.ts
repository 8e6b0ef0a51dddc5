/**
 * Starts Mandate exactly as examples/authzen/mandate.yaml configures it (on a temp data folder),
 * and sends AuthZEN requests the way the interop PEPs do: the API key as the Authorization header.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildHttpApp, createRuntime, loadConfig } from '@mandate/server';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CONFIG = fileURLToPath(new URL('./mandate.yaml', import.meta.url));

/** the interop scenarios' users: the identity provider's subject (PID) of each */
export const PID = {
  rick: 'CiRmZDA2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs',
  morty: 'CiRmZDE2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs',
  summer: 'CiRmZDI2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs',
  beth: 'CiRmZDM2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs',
  jerry: 'CiRmZDQ2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs',
} as const;
export type User = keyof typeof PID;

export const EMAIL: Record<User, string> = {
  rick: 'rick@the-citadel.com',
  morty: 'morty@the-citadel.com',
  summer: 'summer@the-smiths.com',
  beth: 'beth@the-smiths.com',
  jerry: 'jerry@the-smiths.com',
};

export interface Example {
  /** POST a body to an AuthZEN endpoint; answers the parsed JSON body and the status */
  post(path: string, body: unknown): Promise<{ status: number; body: { decision?: boolean; evaluations?: { decision: boolean }[] } }>;
  close(): Promise<void>;
}

export async function startExample(): Promise<Example> {
  // the config names its files relative to the repository root, as `npm start` runs there
  process.chdir(ROOT);
  const data = mkdtempSync(join(tmpdir(), 'mandate-authzen-example-'));
  const config = loadConfig(CONFIG, {}, { data_dir: data, 'log.level': 'silent' });
  const runtime = await createRuntime(config, { writeAdminKeyFile: false });
  const app = buildHttpApp(runtime);
  const key = runtime.bootstrapAdminKey ?? '';
  return {
    async post(path, body) {
      const res = await app.inject({ method: 'POST', url: path, headers: { authorization: key, 'content-type': 'application/json' }, payload: JSON.stringify(body) });
      return { status: res.statusCode, body: res.json() };
    },
    async close() {
      try {
        await app.close();
        await runtime.close();
      } finally {
        rmSync(data, { recursive: true, force: true });
      }
    },
  };
}
