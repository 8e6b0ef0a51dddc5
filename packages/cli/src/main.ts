#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { enableCompileCache } from 'node:module';
import { CliError, EXIT } from './exit-codes.ts';
import { agentHelp, approvalsHelp, auditHelp, backupHelp, configHelp, demoHelp, keysHelp, killHelp, mcpHelp, policyHelp, replayHelp, restoreHelp, secretHelp, serveHelp, suggestHelp, taskHelp } from './help.ts';
import { processIO, type CliIO } from './io.ts';

type Run = (args: string[], io: CliIO) => Promise<number>;

/**
 * A command's module is imported only when that command runs: `mandate --help` loaded every
 * command and through them the server, Cedar, the stores and the MCP SDK (1.2-1.5 s on an idle
 * machine) to print text.
 */
const COMMANDS: Record<string, { run: Run; help: string }> = {
  serve: { run: async (a, io) => (await import('./commands/serve.ts')).serveCommand(a, io), help: serveHelp },
  demo: { run: async (a, io) => (await import('./commands/demo.ts')).demoCommand(a, io), help: demoHelp },
  policy: { run: async (a, io) => (await import('./commands/policy.ts')).policyCommand(a, io), help: policyHelp },
  replay: { run: async (a, io) => (await import('./commands/replay.ts')).replayCommand(a, io), help: replayHelp },
  suggest: { run: async (a, io) => (await import('./commands/suggest.ts')).suggestCommand(a, io), help: suggestHelp },
  audit: { run: async (a, io) => (await import('./commands/audit.ts')).auditCommand(a, io), help: auditHelp },
  agent: { run: async (a, io) => (await import('./commands/agent.ts')).agentCommand(a, io), help: agentHelp },
  config: { run: async (a, io) => (await import('./commands/config.ts')).configCommand(a, io), help: configHelp },
  approvals: { run: async (a, io) => (await import('./commands/approvals.ts')).approvalsCommand(a, io), help: approvalsHelp },
  kill: { run: async (a, io) => (await import('./commands/kill.ts')).killCommand(a, io), help: killHelp },
  unkill: { run: async (a, io) => (await import('./commands/kill.ts')).unkillCommand(a, io), help: killHelp },
  mcp: { run: async (a, io) => (await import('./commands/mcp.ts')).mcpCommand(a, io), help: mcpHelp },
  secret: { run: async (a, io) => (await import('./commands/secret.ts')).secretCommand(a, io), help: secretHelp },
  keys: { run: async (a, io) => (await import('./commands/keys.ts')).keysCommand(a, io), help: keysHelp },
  task: { run: async (a, io) => (await import('./commands/task.ts')).taskCommand(a, io), help: taskHelp },
  backup: { run: async (a, io) => (await import('./commands/backup.ts')).backupCommand(a, io), help: backupHelp },
  restore: { run: async (a, io) => (await import('./commands/restore.ts')).restoreCommand(a, io), help: restoreHelp },
};

/** A MandateError's code (subclasses too), told by its class name: importing @mandate/core to ask would load it for every command. */
function mandateErrorCode(e: unknown): string | undefined {
  if (!(e instanceof Error)) return undefined;
  for (let proto: unknown = Object.getPrototypeOf(e); proto !== null && proto !== Error.prototype; proto = Object.getPrototypeOf(proto)) {
    if ((proto as { constructor?: { name?: string } }).constructor?.name === 'MandateError') {
      const code = (e as { code?: unknown }).code;
      return typeof code === 'string' ? code : undefined;
    }
  }
  return undefined;
}

/** The installed package's version (its package.json: ../package.json from src/ and from dist/ alike). */
export function cliVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}

/** A server that cannot listen (port taken, not allowed): one readable line with a stable code, no stack. */
function listenError(e: unknown): string | undefined {
  const { code, syscall, address, port } = e as { code?: unknown; syscall?: unknown; address?: unknown; port?: unknown };
  if (syscall !== 'listen') return undefined;
  const where = `${typeof address === 'string' ? address : ''}:${typeof port === 'number' ? String(port) : ''}`;
  if (code === 'EADDRINUSE') return `PORT_IN_USE: ${where} is already in use by another process; stop it or choose another port (--port, or server.port in the config)`;
  if (code === 'EACCES') return `PORT_NOT_ALLOWED: this user may not listen on ${where}; choose a port above 1023 (--port, or server.port in the config)`;
  if (code === 'EADDRNOTAVAIL') return `ADDRESS_NOT_AVAILABLE: ${where} is not an address of this machine (server.host in the config)`;
  return undefined;
}

export const USAGE = `usage: mandate <command> [options]
       mandate --version

${[...new Set(Object.values(COMMANDS).map((c) => c.help))].join('\n\n')}

exit codes: 0 ok, 1 check failed, 2 usage, 3 configuration, 4 server unavailable, 70 internal`;

/** Runs one CLI invocation and returns its exit code; never calls process.exit itself. */
export async function runCli(argv: string[], io: CliIO): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--version' || name === '-v' || name === 'version') {
    io.out(cliVersion());
    return EXIT.OK;
  }
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
    const mandateCode = mandateErrorCode(e);
    if (mandateCode !== undefined) {
      io.err(`${mandateCode}: ${(e as Error).message}`);
      return mandateCode === 'CONFIG_INVALID' || mandateCode === 'KEK_MISMATCH' ? EXIT.CONFIG : EXIT.FAILED;
    }
    const code = (e as { code?: unknown }).code;
    const listen = listenError(e);
    if (listen !== undefined) {
      io.err(listen);
      return EXIT.CONFIG;
    }
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) {
      io.err(`${(e as Error).message}\n\n${cmd.help}`);
      return EXIT.USAGE;
    }
    io.err(`internal error: ${(e as Error).stack ?? String(e)}`);
    return EXIT.INTERNAL;
  }
}

if (import.meta.main) {
  // run directly (bin/mandate.js is the usual entry): cache at least the modules of the command
  enableCompileCache(new URL('../.cache/compile', import.meta.url).pathname);
  process.exitCode = await runCli(process.argv.slice(2), processIO);
}
