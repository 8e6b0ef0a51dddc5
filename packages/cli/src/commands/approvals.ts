import { parseArgs } from 'node:util';
import { CliError, EXIT, requireOptions, requirePositional } from '../exit-codes.ts';
import { callApi, expectOk, serverTarget } from '../http-client.ts';
import type { CliIO } from '../io.ts';
import { approvalsHelp } from '../help.ts';

interface ApprovalRow {
  id: string;
  state: string;
  task_id: string;
  agent_id: string;
  tool: string;
  args: unknown;
  expires_at: string;
}

export async function approvalsCommand(args: string[], io: CliIO): Promise<number> {
  const [sub, ...rest] = args;
  const { values, positionals } = parseArgs({
    args: rest,
    strict: true,
    allowPositionals: true,
    options: { state: { type: 'string' }, task: { type: 'string' }, reason: { type: 'string' }, json: { type: 'boolean' }, url: { type: 'string' }, 'api-key': { type: 'string' }, 'data-dir': { type: 'string' } },
  });
  // name what is missing before asking for a key: a usage error is not an authentication problem
  if (sub === 'approve' || sub === 'deny') {
    requirePositional(positionals, 'the approval ID', approvalsHelp);
    requireOptions(values, ['reason'], approvalsHelp);
  }
  if (sub === 'list' && positionals.length > 0) throw new CliError(EXIT.USAGE, `approvals list takes no argument (got ${JSON.stringify(positionals[0])})\n\n${approvalsHelp}`);
  if (sub !== 'list' && sub !== 'approve' && sub !== 'deny') throw new CliError(EXIT.USAGE, sub === undefined || sub.startsWith('-') ? `missing the sub-command (list, approve or deny)\n\n${approvalsHelp}` : `unknown sub-command "${sub}"\n\n${approvalsHelp}`);
  const { url, apiKey } = serverTarget(values, io);
  if (sub === 'list') {
    const q = new URLSearchParams({ limit: '1000' });
    if (values.state) q.set('state', values.state);
    if (values.task) q.set('task_id', values.task);
    const r = expectOk(await callApi(url, apiKey, 'GET', `/v1/approvals?${q.toString()}`), 'approvals list') as { approvals: ApprovalRow[] };
    if (values.json) io.out(JSON.stringify(r.approvals));
    else for (const a of r.approvals) io.out(`${a.id}  ${a.state.padEnd(9)} ${a.tool}  task ${a.task_id}  agent ${a.agent_id}  expires ${a.expires_at}  args ${JSON.stringify(a.args)}`);
    return EXIT.OK;
  }
  if (sub === 'approve' || sub === 'deny') {
    const id = requirePositional(positionals, 'the approval ID', approvalsHelp);
    const r = expectOk(await callApi(url, apiKey, 'POST', `/v1/approvals/${encodeURIComponent(id)}/${sub}`, { reason: values.reason as string }), `approvals ${sub}`) as ApprovalRow;
    io.out(values.json ? JSON.stringify(r) : `${r.id}: ${r.state}`);
    return EXIT.OK;
  }
  throw new CliError(EXIT.USAGE, approvalsHelp);
}
