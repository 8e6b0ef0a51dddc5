import { parseArgs } from 'node:util';
import { CliError, EXIT, requireOneOf } from '../exit-codes.ts';
import { callApi, expectOk, serverTarget } from '../http-client.ts';
import type { CliIO } from '../io.ts';
import { secretHelp } from '../help.ts';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

/** The server answers, but it was started without a key to encrypt secrets with: its configuration, not its availability. */
function noSecretsKey(r: { status: number; json: unknown }, url: string): CliError | undefined {
  const e = (r.json as { error?: { code?: unknown; details?: { missing?: unknown } } } | undefined)?.error;
  if (r.status !== 503 || e?.code !== 'NOT_READY' || e.details?.missing !== 'secrets_key') return undefined;
  return new CliError(
    EXIT.CONFIG,
    `SECRETS_KEY_MISSING: the server at ${url} is running but was started without a secrets key, so it cannot store secrets: set mcp.secrets_key_file in its configuration (or MANDATE_SECRETS_KEY in its environment) and restart it`,
  );
}

export async function secretCommand(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: { 'from-env': { type: 'string' }, stdin: { type: 'boolean' }, json: { type: 'boolean' }, url: { type: 'string' }, 'api-key': { type: 'string' }, 'data-dir': { type: 'string' } },
  });
  const [verb, name, ...extra] = positionals;
  // name what is missing before asking for a key: a usage error is not an authentication problem
  if (verb !== 'list' && verb !== 'set' && verb !== 'delete') throw new CliError(EXIT.USAGE, verb === undefined ? `missing the sub-command (set, list or delete)\n\n${secretHelp}` : `unknown sub-command "${verb}"\n\n${secretHelp}`);
  if (verb === 'list' && name !== undefined) throw new CliError(EXIT.USAGE, `secret list takes no argument (got ${JSON.stringify(name)})\n\n${secretHelp}`);
  if (verb !== 'list' && name === undefined) throw new CliError(EXIT.USAGE, `missing the secret NAME\n\n${secretHelp}`);
  if (extra.length > 0) throw new CliError(EXIT.USAGE, `one secret NAME only (also got ${extra.map((e) => JSON.stringify(e)).join(', ')})\n\n${secretHelp}`);
  if (verb === 'set') requireOneOf(values, ['from-env', 'stdin'], secretHelp);
  const { url, apiKey } = serverTarget(values, io);
  if (verb === 'list') {
    const r = expectOk(await callApi(url, apiKey, 'GET', '/v1/secrets'), 'secret list') as { secrets: { name: string; updated_at: string }[] };
    if (values.json) io.out(JSON.stringify(r));
    else if (r.secrets.length === 0) io.err('no secret is set');
    else for (const s of r.secrets) io.out(`${s.name}  updated ${s.updated_at}`);
    return EXIT.OK;
  }
  const secret = name as string;
  if (verb === 'delete') {
    const r = await callApi(url, apiKey, 'DELETE', `/v1/secrets/${encodeURIComponent(secret)}`);
    const missingKey = noSecretsKey(r, url);
    if (missingKey) throw missingKey;
    expectOk(r, 'secret delete');
    if (values.json) io.out(JSON.stringify({ name: secret, deleted: true }));
    else io.out(`deleted ${secret}`);
    return EXIT.OK;
  }
  const value = values['from-env'] !== undefined ? io.env[values['from-env']] : await readStdin();
  if (value === undefined || value === '') throw new CliError(EXIT.USAGE, values['from-env'] !== undefined ? `the secret value is empty: ${values['from-env']} is not set in the environment` : 'the secret value is empty: nothing came on stdin');
  const r = await callApi(url, apiKey, 'PUT', `/v1/secrets/${encodeURIComponent(secret)}`, { value });
  const missingKey = noSecretsKey(r, url);
  if (missingKey) throw missingKey;
  const set = expectOk(r, 'secret set') as { name: string; updated_at: string };
  if (values.json) io.out(JSON.stringify(set));
  else io.out(`set ${set.name} (updated ${set.updated_at}); upstreams refer to it as "secret:${set.name}"`);
  return EXIT.OK;
}
