/**
 * One connection to one upstream MCP server, for one session: a stdio child process (spawned
 * with the session's decrypted env: the secret lease lives exactly as long as the process) or a
 * Streamable HTTP client (with the session's decrypted headers).
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ToolListChangedNotificationSchema, type Prompt, type Resource, type Tool } from '@modelcontextprotocol/sdk/types.js';
import type { UpstreamConfig } from './config.ts';
import { SecretScrubber, type SecretVault } from './secrets.ts';

export interface UpstreamLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface UpstreamOptions {
  readonly timeoutMs: number;
  readonly maxItems: number;
  readonly log: UpstreamLog;
  /** called when the upstream says its tool list changed */
  readonly onToolsChanged: () => void;
}

const CLIENT_INFO = { name: 'mandate-gateway', version: '0.1.0' };
/** bytes of an upstream's stderr kept per line in the log */
const STDERR_LINE = 2000;

export class Upstream {
  readonly config: UpstreamConfig;
  readonly prefix: string;
  readonly client: Client;
  /** scrubs this upstream's leased secrets from what it sends back */
  readonly scrubber: SecretScrubber;
  private readonly opts: UpstreamOptions;
  private closed = false;

  private constructor(config: UpstreamConfig, client: Client, scrubber: SecretScrubber, opts: UpstreamOptions) {
    this.config = config;
    this.prefix = config.tool_prefix ?? config.name;
    this.client = client;
    this.scrubber = scrubber;
    this.opts = opts;
  }

  /** Connects (spawning a stdio server); secrets are decrypted here and only here. */
  static async connect(config: UpstreamConfig, vault: SecretVault, opts: UpstreamOptions): Promise<Upstream> {
    const client = new Client(CLIENT_INFO, { capabilities: {} });
    let scrubber: SecretScrubber;
    if (config.transport === 'stdio') {
      const env = await vault.resolve(config.env);
      scrubber = new SecretScrubber(env.secrets);
      const transport = new StdioClientTransport({
        command: config.command,
        args: config.args,
        env: env.values,
        ...(config.cwd !== undefined ? { cwd: config.cwd } : {}),
        // never inherited: an upstream printing its environment must not reach our logs unscrubbed
        stderr: 'pipe',
      });
      const stderr = transport.stderr;
      if (stderr) {
        let buf = '';
        stderr.on('data', (chunk: Buffer) => {
          buf += chunk.toString('utf8');
          let nl: number;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            if (line.trim() !== '') opts.log.info({ upstream: config.name, stderr: scrubber.scrubText(line.slice(0, STDERR_LINE)) }, 'upstream stderr');
          }
          if (buf.length > 64 * 1024) buf = '';
        });
      }
      await client.connect(transport, { timeout: opts.timeoutMs });
    } else {
      const headers = await vault.resolve(config.headers);
      scrubber = new SecretScrubber(headers.secrets);
      const transport = new StreamableHTTPClientTransport(new URL(config.url), { requestInit: { headers: headers.values } });
      await client.connect(transport, { timeout: opts.timeoutMs });
    }
    const up = new Upstream(config, client, scrubber, opts);
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => opts.onToolsChanged());
    return up;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private async pages<T>(fetchPage: (cursor: string | undefined) => Promise<{ items: T[]; nextCursor?: string | undefined }>): Promise<T[]> {
    const out: T[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 100; page++) {
      const r = await fetchPage(cursor);
      out.push(...r.items);
      if (out.length >= this.opts.maxItems) return out.slice(0, this.opts.maxItems);
      if (r.nextCursor === undefined) break;
      cursor = r.nextCursor;
    }
    return out;
  }

  async listTools(): Promise<Tool[]> {
    if (!this.client.getServerCapabilities()?.tools) return [];
    return this.pages(async (cursor) => {
      const r = await this.client.listTools(cursor === undefined ? {} : { cursor }, { timeout: this.opts.timeoutMs });
      return { items: r.tools, nextCursor: r.nextCursor };
    });
  }

  async listResources(): Promise<Resource[]> {
    if (!this.client.getServerCapabilities()?.resources) return [];
    return this.pages(async (cursor) => {
      const r = await this.client.listResources(cursor === undefined ? {} : { cursor }, { timeout: this.opts.timeoutMs });
      return { items: r.resources, nextCursor: r.nextCursor };
    });
  }

  async listPrompts(): Promise<Prompt[]> {
    if (!this.client.getServerCapabilities()?.prompts) return [];
    return this.pages(async (cursor) => {
      const r = await this.client.listPrompts(cursor === undefined ? {} : { cursor }, { timeout: this.opts.timeoutMs });
      return { items: r.prompts, nextCursor: r.nextCursor };
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.client.close();
    } catch (e) {
      this.opts.log.warn({ upstream: this.config.name, err: (e as Error).message }, 'closing an upstream failed');
    }
  }
}
