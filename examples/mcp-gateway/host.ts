/**
 * A minimal MCP host: reads the `{"mcpServers": {...}}` configuration MCP hosts use, launches
 * each server over stdio as they do (command + args, env over the default environment), and runs
 * an agent's scripted session against the tools it is offered. Here the one server is Mandate's
 * gateway (`mandate mcp --stdio`), so every call is decided against the task's mandate.
 *
 *   node examples/mcp-gateway/host.ts examples/mcp-gateway/mcp.json     (from the repository root)
 *
 * Exits 1 when a decision differs from what the mandate says.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { getDefaultEnvironment, StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

interface HostConfig {
  mcpServers: Record<string, { command: string; args?: string[]; env?: Record<string, string> }>;
}

interface Step {
  readonly label: string;
  readonly tool: string;
  readonly args: Record<string, unknown>;
  /** allow, or the reason code Mandate must give */
  readonly expect: 'allow' | string;
}

export const FILES = resolve('examples/mcp-gateway/files');

export const SCRIPT: readonly Step[] = [
  { label: 'read the handbook', tool: 'fs__read_text_file', args: { path: `${FILES}/handbook.md` }, expect: 'allow' },
  { label: 'read outside the folder (path traversal)', tool: 'fs__read_text_file', args: { path: `${FILES}/../../../package.json` }, expect: 'ARG_CONSTRAINT_FAILED' },
  { label: 'write a file (not in the mandate)', tool: 'fs__write_file', args: { path: `${FILES}/x.md`, content: 'x' }, expect: 'TOOL_NOT_IN_MANDATE' },
  { label: 'remember the escalation rule', tool: 'mem__create_entities', args: { entities: [{ name: 'escalation', entityType: 'rule', observations: ['on-call lead'] }] }, expect: 'allow' },
  { label: 'search the memory', tool: 'mem__search_nodes', args: { query: 'escalation' }, expect: 'allow' },
];

/** The mandate this session's task declares (the host's operator starts the task with it). */
export const MANDATE = {
  purpose: 'Answer support questions from the handbook and keep notes.',
  environment: 'dev',
  ttl: '15m',
  tools: [{ name: 'fs__read_text_file', args: { path: { prefix: `${FILES}/` } } }, { name: 'mem__create_entities' }, { name: 'mem__search_nodes' }],
  data_classes: ['internal'],
  budgets: { calls: 50 },
};

export async function runHost(configFile: string, say: (line: string) => void = console.log): Promise<{ ok: boolean; tools: string[] }> {
  const config = JSON.parse(readFileSync(configFile, 'utf8')) as HostConfig;
  let ok = true;
  let tools: string[] = [];
  for (const [name, server] of Object.entries(config.mcpServers)) {
    const client = new Client({ name: 'example-host', version: '1.0.0' });
    await client.connect(new StdioClientTransport({ command: server.command, args: server.args ?? [], env: { ...getDefaultEnvironment(), ...(server.env ?? {}) }, stderr: 'inherit' }));
    try {
      tools = (await client.listTools()).tools.map((t) => t.name).sort();
      say(`${name}: offers ${tools.join(', ')}`);
      for (const step of SCRIPT) {
        const r = await client.callTool({ name: step.tool, arguments: step.args });
        const decision = (r._meta?.['mandate/decision'] ?? undefined) as { reasons?: string[] } | undefined;
        const got = r.isError && decision ? (decision.reasons ?? []).join(',') : 'allow';
        const pass = got === step.expect;
        ok &&= pass;
        say(`${pass ? 'ok  ' : 'FAIL'} ${step.tool.padEnd(22)} ${got.padEnd(22)} ${step.label}`);
      }
    } finally {
      await client.close();
    }
  }
  return { ok, tools };
}

if (import.meta.main) {
  const file = process.argv[2] ?? 'examples/mcp-gateway/mcp.json';
  const r = await runHost(file);
  process.exitCode = r.ok ? 0 : 1;
}
