import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { CliError, EXIT, requireOptions } from '../exit-codes.ts';
import { callApi, expectOk, serverTarget } from '../http-client.ts';
import type { CliIO } from '../io.ts';
import { agentHelp } from '../help.ts';

export async function agentCommand(args: string[], io: CliIO): Promise<number> {
  const [sub, ...rest] = args;
  const { values } = parseArgs({
    args: rest,
    strict: true,
    options: {
      id: { type: 'string' },
      owner: { type: 'string' },
      type: { type: 'string' },
      ceiling: { type: 'string' },
      json: { type: 'boolean' },
      url: { type: 'string' },
      'api-key': { type: 'string' },
      'data-dir': { type: 'string' },
    },
  });
  // name what is missing before asking for a key: a usage error is not an authentication problem
  if (sub === 'add') requireOptions(values, ['id', 'owner', 'type'], agentHelp);
  if (sub === 'disable' || sub === 'enable') requireOptions(values, ['id'], agentHelp);
  const { url, apiKey } = serverTarget(values, io);
  switch (sub) {
    case 'add': {
      if (!values.id || !values.owner || !values.type) throw new CliError(EXIT.USAGE, agentHelp);
      let ceiling: unknown = {};
      if (values.ceiling !== undefined) {
        try {
          ceiling = parseYaml(readFileSync(values.ceiling, 'utf8')) ?? {};
        } catch (e) {
          throw new CliError(EXIT.USAGE, `cannot read ceiling ${values.ceiling}: ${(e as Error).message}`);
        }
      }
      const r = expectOk(await callApi(url, apiKey, 'POST', '/v1/agents', { id: values.id, owner: values.owner, type: values.type, ceiling }), 'agent add');
      io.out(JSON.stringify(r, null, values.json ? undefined : 2));
      return EXIT.OK;
    }
    case 'list': {
      const r = expectOk(await callApi(url, apiKey, 'GET', '/v1/agents?limit=1000'), 'agent list') as { agents: { id: string; status: string; owner: string; type: string }[] };
      if (values.json) io.out(JSON.stringify(r));
      else for (const a of r.agents) io.out(`${a.status.padEnd(8)} ${a.id}  owner=${a.owner} type=${a.type}`);
      return EXIT.OK;
    }
    case 'disable':
    case 'enable': {
      if (!values.id) throw new CliError(EXIT.USAGE, agentHelp);
      const status = sub === 'disable' ? 'disabled' : 'active';
      expectOk(await callApi(url, apiKey, 'PATCH', `/v1/agents/${encodeURIComponent(values.id)}`, { status }), `agent ${sub}`);
      io.out(values.json ? JSON.stringify({ id: values.id, status }) : `${values.id}: ${status}`);
      return EXIT.OK;
    }
    default:
      throw new CliError(EXIT.USAGE, agentHelp);
  }
}
