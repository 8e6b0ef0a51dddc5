import { buildHttpApp, requestLogSerializers } from './http/app.ts';
import { createRuntime, isPostgres, type MandateRuntime, type RuntimeOptions } from './compose.ts';
import type { MandateConfig } from './config.ts';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { stdoutLines } from './log-lines.ts';

export interface RunningServer {
  readonly runtime: MandateRuntime;
  readonly app: FastifyInstance;
  /** base URL, e.g. http://127.0.0.1:8787 */
  readonly url: string;
  close(): Promise<void>;
}

/** Starts Mandate: runtime + HTTP API listening on the configured host and port. */
export async function serve(config: MandateConfig, opts: RuntimeOptions & { logger?: boolean | { level: string } } = {}): Promise<RunningServer> {
  // one logger for the request log and the runtime's own lines (a database outage, the change
  // feed, checkpoints), so an operator reads both in one stream: standard output, handed a turn
  // of the event loop's lines at a time (log-lines.ts)
  const out = opts.logger === false ? undefined : stdoutLines();
  const logger = out === undefined ? undefined : pino({ level: typeof opts.logger === 'object' ? opts.logger.level : config.log.level, serializers: requestLogSerializers }, out.stream);
  let app: FastifyInstance;
  let runtime: MandateRuntime;
  try {
    runtime = await createRuntime(config, { ...opts, ...(opts.log === undefined && logger !== undefined ? { log: logger } : {}) });
  } catch (e) {
    out?.close();
    throw e;
  }
  try {
    app = buildHttpApp(runtime, logger === undefined ? { logger: false } : { loggerInstance: logger });
    await app.listen({ host: config.server.host, port: config.server.port });
  } catch (e) {
    await runtime.close();
    out?.close();
    throw e;
  }
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : config.server.port;
  const host = config.server.host.includes(':') ? `[${config.server.host}]` : config.server.host;
  const url = `http://${host}:${port}`;
  const set = runtime.policies.current;
  app.log.info(
    { event: 'server.started', url, environment: config.environment, store: isPostgres(config) ? 'postgres' : 'sqlite', policyVersion: set.version, policies: set.policies.length, metrics: config.metrics.enabled },
    'mandate started',
  );
  // deny-all by accident is the trap: say it where an operator looks first
  if (set.policies.length === 0) app.log.warn({ event: 'policy.empty', policyDir: config.policies.dir ?? null }, 'no policy is loaded: every call is denied (set policies.dir)');
  let closed = false;
  return {
    runtime,
    app,
    url,
    async close() {
      if (closed) return;
      closed = true;
      await app.close();
      await runtime.close();
      out?.close();
    },
  };
}
