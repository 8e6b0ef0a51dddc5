#!/usr/bin/env node
import { isMandateError } from '@mandate/core';
import { CliError, EXIT } from './exit-codes.ts';
import { processIO, type CliIO } from './io.ts';

interface Command {
  readonly run: (args: string[], io: CliIO) => Promise<number>;
  readonly help: string;
}

// each command is loaded when it runs: `mandate mcp --stdio`, which an MCP host launches and
// waits for, loads the relay alone, not the server, the policy engine and the stores
const COMMANDS: Record<string, () => Promise<Command>> = {
  serve: async () => import('./commands/serve.ts').then((m) => ({ run: m.serveCommand, help: m.serveHelp })),
  demo: async () => import('./commands/demo.ts').then((m) => ({ run: m.demoCommand, help: m.demoHelp })),
  policy: async () => import('./commands/policy.ts').then((m) => ({ run: m.policyCommand, help: m.policyHelp })),
  replay: async () => import('./commands/replay.ts').then((m) => ({ run: m.replayCommand, help: m.replayHelp })),
  audit: async () => import('./commands/audit.ts').then((m) => ({ run: m.auditCommand, help: m.auditHelp })),
  agent: async () => import('./commands/agent.ts').then((m) => ({ run: m.agentCommand, help: m.agentHelp })),
  config: async () => import('./commands/config.ts').then((m) => ({ run: m.configCommand, help: m.configHelp })),
  approvals: async () => import('./commands/approvals.ts').then((m) => ({ run: m.approvalsCommand, help: m.approvalsHelp })),
  kill: async () => import('./commands/kill.ts').then((m) => ({ run: m.killCommand, help: m.killHelp })),
  unkill: async () => import('./commands/kill.ts').then((m) => ({ run: m.unkillCommand, help: m.killHelp })),
  mcp: async () => import('./commands/mcp.ts').then((m) => ({ run: m.mcpCommand, help: m.mcpHelp })),
  secret: async () => import('./commands/secret.ts').then((m) => ({ run: m.secretCommand, help: m.secretHelp })),
};

/** The usage text: every command's help (loads them all). */
export async function usage(): Promise<string> {
  const helps = await Promise.all(Object.values(COMMANDS).map(async (load) => (await load()).help));
  return `usage: mandate <command> [options]

${[...new Set(helps)].join('\n\n')}

exit codes: 0 ok, 1 check failed, 2 usage, 3 configuration, 4 server unavailable, 70 internal`;
}

/** Runs one CLI invocation and returns its exit code; never calls process.exit itself. */
export async function runCli(argv: string[], io: CliIO): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    io.out(await usage());
    return name === undefined ? EXIT.USAGE : EXIT.OK;
  }
  const load = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!load) {
    io.err(`unknown command "${name}"\n\n${await usage()}`);
    return EXIT.USAGE;
  }
  const cmd = await load();
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
