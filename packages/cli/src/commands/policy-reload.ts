import { parseArgs } from 'node:util';
import { EXIT } from '../exit-codes.ts';
import { callApi, expectOk, serverTarget } from '../http-client.ts';
import type { CliIO } from '../io.ts';

/** `mandate policy reload`: POST /v1/policies/reload on the running server. */
export async function policyReloadCommand(args: string[], io: CliIO): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: { 'allow-empty': { type: 'boolean' }, json: { type: 'boolean' }, url: { type: 'string' }, 'api-key': { type: 'string' }, 'data-dir': { type: 'string' } },
  });
  const { url, apiKey } = serverTarget(values, io);
  const r = expectOk(await callApi(url, apiKey, 'POST', '/v1/policies/reload', values['allow-empty'] === true ? { allow_empty: true } : {}), 'policy reload') as {
    version: string;
    previous_version: string;
    policies: number;
    suspended_tasks: string[];
  };
  if (values.json) io.out(JSON.stringify(r));
  else io.out(`reloaded: ${r.policies} policies, version ${r.version} (was ${r.previous_version}); ${r.suspended_tasks.length} live task(s) suspended`);
  return EXIT.OK;
}
