/**
 * The gateway's test bed: a real Mandate runtime (SQLite, the example policies) listening on a
 * real port, real MCP servers from npm behind it, and the MCP SDK's real client in front.
 */
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startHarness, type Harness, type ManualClock } from '../../server/test/support.ts';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const MODULES = join(ROOT, 'node_modules', '@modelcontextprotocol');
export const SERVERS = {
  filesystem: join(MODULES, 'server-filesystem', 'dist', 'index.js'),
  memory: join(MODULES, 'server-memory', 'dist', 'index.js'),
  everything: join(MODULES, 'server-everything', 'dist', 'index.js'),
};
export const CLI = join(ROOT, 'packages', 'cli', 'src', 'main.ts');
/** the tools a test agent may ever be granted */
export const GATEWAY_CEILING = { tools: ['fs__*', 'mem__*', 'ev__*', 'ev2__*', 'slow__*', 'mut__*', 'web__*', 'nowhere__*'], data_classes: ['internal'], environments: ['prod'], max_ttl: '1h', max_calls: 1000 };

export interface GatewayBed {
  readonly h: Harness;
  readonly url: string;
  /** the folder the filesystem server may serve (files: notes/hello.txt) */
  readonly files: string;
  readonly work: string;
  /** registers an agent and starts a task with these tool grants */
  task(tools: Record<string, unknown>[], extra?: Record<string, unknown>): Promise<{ id: string; token: string; agent: string }>;
  /** the SDK client over Streamable HTTP with this bearer token (or none) */
  http(token: string | undefined): Promise<Client>;
  close(): Promise<void>;
}

export interface BedOptions {
  readonly upstreams?: (work: string, files: string) => Record<string, unknown>[];
  readonly config?: Record<string, unknown>;
  /** the server's clock (default: the harness's manual clock) */
  readonly clock?: ManualClock;
  /** top-level server configuration besides mcp (e.g. tokens) */
  readonly serverConfig?: Record<string, unknown>;
  /** a policy folder instead of the example policies */
  readonly policiesDir?: (work: string) => Promise<string>;
  readonly log?: { debug?(o: object, m: string): void; info(o: object, m: string): void; warn(o: object, m: string): void; error(o: object, m: string): void };
}

export function defaultUpstreams(work: string, files: string): Record<string, unknown>[] {
  return [
    { name: 'fs', transport: 'stdio', command: process.execPath, args: [SERVERS.filesystem, files], trusted: true },
    { name: 'mem', transport: 'stdio', command: process.execPath, args: [SERVERS.memory], env: { MEMORY_FILE_PATH: join(work, 'memory.jsonl') } },
    { name: 'ev', transport: 'stdio', command: process.execPath, args: [SERVERS.everything] },
  ];
}

export async function startGatewayBed(opts: BedOptions = {}): Promise<GatewayBed> {
  const work = await mkdtemp(join(tmpdir(), 'mandate-gw-'));
  const files = join(work, 'files');
  await mkdir(join(files, 'notes'), { recursive: true });
  await writeFile(join(files, 'notes', 'hello.txt'), 'hello from the allowed folder\n');
  await writeFile(join(work, 'outside.txt'), 'not for the agent\n');
  const keyFile = join(work, 'secrets.key');
  await writeFile(keyFile, randomBytes(32).toString('base64'), { mode: 0o600 });
  const policies = opts.policiesDir ? await opts.policiesDir(work) : undefined;
  const h = await startHarness({
    config: {
      ...(opts.serverConfig ?? {}),
      ...(policies !== undefined ? { policies: { dir: policies } } : {}),
      // a busy machine starts an upstream in seconds: sessions here wait for theirs
      mcp: { upstreams: (opts.upstreams ?? defaultUpstreams)(work, files), secrets_key_file: keyFile, ...(opts.config ?? {}), limits: { connect_timeout: '60s', ...((opts.config?.['limits'] as object | undefined) ?? {}) } },
    } as never,
    ...(opts.log ? { log: opts.log } : {}),
    ...(opts.clock ? { clock: opts.clock } : {}),
  });
  await h.runtime.mcp.warmed(20_000);
  await h.app.listen({ host: '127.0.0.1', port: 0 });
  const addr = h.app.server.address();
  const url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  const clients: Client[] = [];
  let n = 0;
  return {
    h,
    url,
    files,
    work,
    async task(tools, extra = {}) {
      n += 1;
      const agent = await h.registerAgent(`mcp-agent-${n}`, GATEWAY_CEILING);
      const t = await h.startTask(agent, { purpose: 'Work with the notes folder.', environment: 'prod', ttl: '15m', tools, data_classes: ['internal'], budgets: { calls: 200 }, ...extra });
      return { id: t.id, token: t.token, agent };
    },
    async http(token) {
      const client = new Client({ name: 'mandate-test', version: '1.0.0' });
      const transport = new StreamableHTTPClientTransport(new URL(`${url}/mcp`), token === undefined ? {} : { requestInit: { headers: { authorization: `Bearer ${token}` } } });
      await client.connect(transport);
      clients.push(client);
      return client;
    },
    async close() {
      await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
      try {
        await h.close();
      } finally {
        await rm(work, { recursive: true, force: true });
      }
    },
  };
}

/** A direct SDK connection to an upstream, without the gateway: the reference results. */
export async function direct(args: string[], env: Record<string, string> = {}): Promise<Client> {
  const client = new Client({ name: 'mandate-test-direct', version: '1.0.0' });
  await client.connect(new StdioClientTransport({ command: process.execPath, args, env, stderr: 'pipe' }));
  return client;
}

/** The text of a tool result's first content item. */
export function textOf(r: unknown): string {
  const c = (r as { content?: { type: string; text?: string }[] }).content?.[0];
  return c?.type === 'text' ? (c.text ?? '') : '';
}

/** The decision Mandate attached to a refused call. */
export function decisionOf(r: unknown): { effect: string; reasons: string[]; call_id: string; approval_id?: string } | undefined {
  return (r as { _meta?: Record<string, unknown> })._meta?.['mandate/decision'] as never;
}

/**
 * The JSON-RPC answer in a raw /mcp response: the JSON body, or (a streamed answer) the last
 * message with an id among the SSE events.
 */
export async function rpcBody(res: Response): Promise<Record<string, unknown>> {
  const text = await res.text();
  if (!(res.headers.get('content-type') ?? '').includes('text/event-stream')) return JSON.parse(text) as Record<string, unknown>;
  const messages = text
    .split('\n')
    .filter((l) => l.startsWith('data:'))
    .map((l) => l.slice(5).trim())
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const answer = messages.filter((m) => 'id' in m && ('result' in m || 'error' in m)).at(-1);
  if (!answer) throw new Error(`no JSON-RPC answer in the stream: ${text.slice(0, 300)}`);
  return answer;
}
