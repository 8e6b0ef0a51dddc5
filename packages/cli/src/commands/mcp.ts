import { parseArgs } from 'node:util';
// subpaths: an MCP host waits for this command to start, so it loads the relay alone
import { loadConfig } from '@mandate/server/config';
import { runStdioRelay, tokenSource } from '@mandate/gateway/stdio';
import { loadDpopKey } from '@mandate/gateway/dpop';
import { isMandateError } from '@mandate/core';
import { CliError, EXIT } from '../exit-codes.ts';
import type { CliIO } from '../io.ts';
import { mcpHelp } from '../help.ts';

export async function mcpCommand(args: string[], io: CliIO): Promise<number> {
  const { values } = parseArgs({ args, strict: true, options: { stdio: { type: 'boolean' }, url: { type: 'string' }, config: { type: 'string' } } });
  if (!values.stdio) throw new CliError(EXIT.USAGE, mcpHelp);
  const config = loadConfig(values.config ?? io.env['MANDATE_CONFIG'], io.env);
  const url = values.url ?? io.env['MANDATE_URL'] ?? `http://${config.server.host.includes(':') ? `[${config.server.host}]` : config.server.host}:${config.server.port}`;
  let token: () => string;
  try {
    token = tokenSource(io.env);
    token();
  } catch (e) {
    throw new CliError(EXIT.USAGE, isMandateError(e) ? `${e.code}: ${e.message}` : String(e));
  }
  const keyFile = io.env['MANDATE_DPOP_KEY_FILE'];
  let dpopKey;
  if (keyFile !== undefined && keyFile !== '') {
    try {
      dpopKey = await loadDpopKey(keyFile);
    } catch (e) {
      throw new CliError(EXIT.USAGE, isMandateError(e) ? `${e.code}: ${e.message}` : String(e));
    }
  }
  const publicUrl = config.server.public_url;
  await runStdioRelay({
    url,
    ...(dpopKey !== undefined ? { dpop: { key: dpopKey, htu: new URL('/mcp', publicUrl ?? url).href } } : {}),
    token,
    stdin: process.stdin,
    stdout: process.stdout,
    limits: { maxBytes: config.mcp.limits.max_message_bytes, maxDepth: config.mcp.limits.max_depth },
    log: (line) => io.err(line),
  });
  return EXIT.OK;
}
