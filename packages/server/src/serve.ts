import { buildHttpApp, requestLogSerializers } from './http/app.ts';
import { createRuntime, isPostgres, type MandateRuntime, type RuntimeOptions } from './compose.ts';
import type { MandateConfig } from './config.ts';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';

export interface RunningServer {
  readonly runtime: MandateRuntime;
  readonly app: FastifyInstance;
  /** base URL, e.g. http://127.0.0.1:8787 */
  readonly url: string;
  close(): Promise<void>;
}

/** log lines are written to stdout in batches of this many bytes (or every LOG_FLUSH_MS) */
const LOG_BATCH_BYTES = 4096;
/** the longest a written line waits in the batch before it reaches stdout */
const LOG_FLUSH_MS = 100;

/**
 * stdout, written asynchronously in batches: one write(2) carries many access-log lines instead
 * of one each (per-line writes were about a tenth of a served decision's CPU). A line waits at
 * most LOG_FLUSH_MS; the batch is flushed at start-up, on close, and by pino when the process
 * exits (an uncaught error included). Only a SIGKILL can lose the last LOG_FLUSH_MS of lines.
 */
function logDestination(): ReturnType<typeof pino.destination> {
  return pino.destination({ dest: 1, sync: false, minLength: LOG_BATCH_BYTES, periodicFlush: LOG_FLUSH_MS });
}

/** Starts Mandate: runtime + HTTP API listening on the configured host and port. */
export async function serve(config: MandateConfig, opts: RuntimeOptions & { logger?: boolean | { level: string } } = {}): Promise<RunningServer> {
  // one logger for the request log and the runtime's own lines (a database outage, the change
  // feed, checkpoints), so an operator reads both in one stream
  const destination = opts.logger === false ? undefined : logDestination();
  const logger = destination === undefined ? undefined : pino({ level: typeof opts.logger === 'object' ? opts.logger.level : config.log.level, serializers: requestLogSerializers }, destination);
  const runtime = await createRuntime(config, { ...opts, ...(opts.log === undefined && logger !== undefined ? { log: logger } : {}) });
  let app: FastifyInstance;
  try {
    app = buildHttpApp(runtime, logger === undefined ? { logger: false } : { loggerInstance: logger });
    await app.listen({ host: config.server.host, port: config.server.port });
  } catch (e) {
    await runtime.close();
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
  // the start-up lines are out now, not at the next flush: whoever waits for "mandate started" sees it
  destination?.flush();
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
      destination?.flushSync();
    },
  };
}
