import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CliError, EXIT } from './exit-codes.ts';
import type { CliIO } from './io.ts';

/** Where the CLI finds the server and its operator key: flags, then env, then the data folder. */
export function serverTarget(values: { url?: string | undefined; 'api-key'?: string | undefined; 'data-dir'?: string | undefined }, io: CliIO): { url: string; apiKey: string } {
  const url = values.url ?? io.env['MANDATE_URL'] ?? 'http://127.0.0.1:8787';
  let apiKey = values['api-key'] ?? io.env['MANDATE_API_KEY'];
  if (apiKey === undefined) {
    const file = join(values['data-dir'] ?? io.env['MANDATE_DATA_DIR'] ?? './.mandate', 'admin.key');
    try {
      apiKey = readFileSync(file, 'utf8').trim();
    } catch {
      throw new CliError(EXIT.USAGE, `no operator API key: pass --api-key, set MANDATE_API_KEY, or run where ${file} exists`);
    }
  }
  return { url: url.replace(/\/$/, ''), apiKey };
}

export async function callApi(url: string, bearer: string | undefined, method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  let res: Response;
  try {
    res = await fetch(url + path, {
      method,
      headers: { ...(bearer ? { authorization: `Bearer ${bearer}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(15_000),
    });
  } catch (e) {
    throw new CliError(EXIT.UNAVAILABLE, `cannot reach Mandate at ${url}: ${(e as Error).message}`);
  }
  const text = await res.text();
  let json: unknown = undefined;
  try {
    json = text === '' ? undefined : JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, json };
}

/** Fails with the server's error envelope when the status is not 2xx. */
export function expectOk(r: { status: number; json: unknown }, what: string): unknown {
  if (r.status >= 200 && r.status < 300) return r.json;
  const e = (r.json as { error?: { code?: string; message?: string } } | undefined)?.error;
  throw new CliError(r.status >= 500 ? EXIT.UNAVAILABLE : EXIT.FAILED, `${what} failed: ${e?.code ?? r.status} ${e?.message ?? ''}`.trim());
}
