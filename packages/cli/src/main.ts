#!/usr/bin/env node
import { isMandateError } from '@mandate/core';
import { agentCommand, agentHelp } from './commands/agent.ts';
import { approvalsCommand, approvalsHelp } from './commands/approvals.ts';
import { killCommand, killHelp, unkillCommand } from './commands/kill.ts';
import { auditCommand, auditHelp } from './commands/audit.ts';
import { configCommand, configHelp } from './commands/config.ts';
import { demoCommand, demoHelp } from './commands/demo.ts';
import { policyCommand, policyHelp } from './commands/policy.ts';
import { replayCommand, replayHelp } from './commands/replay.ts';
import { serveCommand, serveHelp } from './commands/serve.ts';
import { mcpCommand, mcpHelp } from './commands/mcp.ts';
import { secretCommand, secretHelp } from './commands/secret.ts';
import { taskCommand, taskHelp } from './commands/task.ts';
import { CliError, EXIT } from './exit-codes.ts';
import { processIO, type CliIO } from './io.ts';

const COMMANDS: Record<string, { run: (args: string[], io: CliIO) => Promise<number>; help: string }> = {
  serve: { run: serveCommand, help: serveHelp },
  demo: { run: demoCommand, help: demoHelp },
  policy: { run: policyCommand, help: policyHelp },
  replay: { run: replayCommand, help: replayHelp },
  audit: { run: auditCommand, help: auditHelp },
  agent: { run: agentCommand, help: agentHelp },
  config: { run: configCommand, help: configHelp },
  approvals: { run: approvalsCommand, help: approvalsHelp },
  kill: { run: killCommand, help: killHelp },
  unkill: { run: unkillCommand, help: killHelp },
  task: { run: taskCommand, help: taskHelp },
  mcp: { run: mcpCommand, help: mcpHelp },
  secret: { run: secretCommand, help: secretHelp },
};

export const USAGE = `usage: mandate <command> [options]

${[...new Set(Object.values(COMMANDS).map((c) => c.help))].join('\n\n')}

exit codes: 0 ok, 1 check failed, 2 usage, 3 configuration, 4 server unavailable, 70 internal`;

/** Runs one CLI invocation and returns its exit code; never calls process.exit itself. */
export async function runCli(argv: string[], io: CliIO): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    io.out(USAGE);
    return name === undefined ? EXIT.USAGE : EXIT.OK;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    io.err(`unknown command "${name}"\n\n${USAGE}`);
    return EXIT.USAGE;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    io.out(cmd.help);
    return EXIT.OK;
  }
  try {
    return await cmd.run(rest, io);
  } catch (e) {
    if (e instanceof CliError) {
      io.err(e.message);
      return e.exitCode;
    }
    if (isMandateError(e)) {
      io.err(`${e.code}: ${e.message}`);
      return e.code === 'CONFIG_INVALID' ? EXIT.CONFIG : EXIT.FAILED;
    }
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) {
      io.err(`${(e as Error).message}\n\n${cmd.help}`);
      return EXIT.USAGE;
    }
    io.err(`internal error: ${(e as Error).stack ?? String(e)}`);
    return EXIT.INTERNAL;
  }
}

if (import.meta.main) {
  process.exitCode = await runCli(process.argv.slice(2), processIO);
}
