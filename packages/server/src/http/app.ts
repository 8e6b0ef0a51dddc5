import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyServerOptions, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { checkJsonBounds, checkJsonTextBounds, findDuplicateKey, isMandateError, MandateError, redactSecretsInText } from '@mandate/core';
import type { MandateRuntime } from '../compose.ts';
import { trustsHostHeader } from '../config.ts';
import { randomBase64url } from '../node-ports.ts';
import { accessFields, accessFieldsSlot } from './access-log.ts';
import { boundConnections, timeoutOptions, trustedProxies } from './edge.ts';
import { envelope, STATUS_BY_CODE } from './errors.ts';
import { agentRoutes } from './routes/agents.ts';
import { auditRoutes } from './routes/audit.ts';
import { authorizeRoutes } from './routes/authorize.ts';
import { healthRoutes } from './routes/health.ts';
import { keyRoutes } from './routes/keys.ts';
import { operatorRoutes } from './routes/operators.ts';
import { policyRoutes } from './routes/policies.ts';
import { taskRoutes } from './routes/tasks.ts';
import { taskEventRoutes } from './routes/task-events.ts';
import { devRoutes } from './routes/dev.ts';
import { authzenRoutes } from './routes/authzen.ts';
import { approvalRoutes } from './routes/approvals.ts';
import { killRoutes } from './routes/kill.ts';
import { killHookRoutes } from './routes/kill-hooks.ts';
import { eventRoutes } from './routes/events.ts';
import { dashboardRoutes } from './routes/dashboard.ts';
import { alertRoutes } from './routes/alerts.ts';
import { mcpRoutes } from './routes/mcp.ts';
import { countRequests, metricsRoutes } from './routes/metrics.ts';
import { suggestRoutes } from './routes/suggest.ts';
import { leastOperatorRole, openApiRoutes, trackRoutes } from './openapi.ts';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export interface HttpOptions {
  /** pino options: a level, and (tests) where the lines go; default stdout */
  readonly logger?: boolean | { level: string; stream?: { write(line: string): void } };
  /** a logger made elsewhere (pino), shared with the runtime; instead of `logger` */
  readonly loggerInstance?: FastifyBaseLogger;
  /** the dashboard's built files (default packages/dashboard/dist) */
  readonly dashboardDir?: string;
}

/** the headers every response carries, the router's own refusals included */
function everyResponseHeaders(reply: FastifyReply, requestId: string): void {
  reply.header('x-request-id', requestId).header('cache-control', 'no-store').header('x-content-type-options', 'nosniff');
}

/** the longest path parameter the router matches: a 2048-byte id, percent-encoded, with room */
const MAX_PATH_PARAM_CHARS = 6_400;

const FASTIFY_CODES: Record<string, { code: string; status: number }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { code: 'PAYLOAD_TOO_LARGE', status: 413 },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { code: 'UNSUPPORTED_MEDIA_TYPE', status: 415 },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { code: 'MALFORMED_REQUEST', status: 400 },
  FST_ERR_CTP_EMPTY_JSON_BODY: { code: 'MALFORMED_REQUEST', status: 400 },
  FST_ERR_CTP_INVALID_JSON_BODY: { code: 'MALFORMED_REQUEST', status: 400 },
};

/** A schema compiler that refuses: routes validate with zod (validate.ts), never with a JSON schema. */
function noSchemas(): never {
  throw new TypeError('routes validate their input with zod (http/validate.ts); JSON schemas on routes are not supported');
}

/**
 * One access-log line per request, written when it completes and naming the request (method, URL,
 * host, peer) and its outcome (status, time). Fastify's default writes two lines, an "incoming
 * request" and a "request completed", which at level info was a large share of a decision's cost.
 */
class OneLineRequestLog extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (this.isLogDisabled(request)) return;
    const known = accessFields(request);
    if (error) reply.log.error({ req: request, res: reply, err: error, responseTime: reply.elapsedTime, ...known }, 'request errored');
    else reply.log.info({ req: request, res: reply, responseTime: reply.elapsedTime, ...known }, 'request completed');
  }
}

/**
 * The request as the access log names it: Fastify's fields, with the path only (a query string
 * can carry anything, a token included: it is never logged) and a credential in the path
 * redacted like audited arguments are.
 */
function loggedRequest(req: FastifyRequest): Record<string, unknown> {
  const q = req.url.indexOf('?');
  return { method: req.method, url: redactSecretsInText(q === -1 ? req.url : req.url.slice(0, q)), host: req.host, remoteAddress: req.ip, remotePort: req.socket.remotePort };
}

/** the access log's serializers, for a logger made outside this app (serve.ts) as for its own */
export const requestLogSerializers = { req: loggedRequest as (req: unknown) => Record<string, unknown> };

function loggerOptions(logger: HttpOptions['logger']): NonNullable<FastifyServerOptions['logger']> {
  if (logger === undefined || logger === false) return false;
  return { ...(logger === true ? {} : logger), serializers: requestLogSerializers };
}

/**
 * Builds the HTTP API over a runtime. Routes only translate between HTTP and the core; every
 * decision is made by the core. Bodies are JSON only, never compressed (a compressed body would
 * otherwise slip past size and shape checks), bounded in size and nesting, and free of
 * prototype-pollution keys.
 */
export function buildHttpApp(rt: MandateRuntime, opts: HttpOptions = {}): FastifyInstance {
  const isTrustedProxy = trustedProxies(rt.config.server.trusted_proxies);
  const app = Fastify({
    ...timeoutOptions(rt.config.server),
    // X-Forwarded-* are believed only from the configured proxies (see edge.ts)
    trustProxy: isTrustedProxy === undefined ? false : (address: string) => isTrustedProxy(address),
    ...(opts.loggerInstance !== undefined ? { loggerInstance: opts.loggerInstance } : { logger: loggerOptions(opts.logger) }),
    logController: new OneLineRequestLog(),
    bodyLimit: rt.config.server.body_limit_bytes,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : `req_${randomBase64url(9)}`;
    },
    requestIdHeader: false,
    // no route declares a JSON schema (bodies are checked with zod in the route), so Fastify's
    // schema compilers (ajv, fast-json-stringify) are never loaded: they were a tenth of start-up
    schemaController: { compilersFactory: { buildValidator: noSchemas, buildSerializer: noSchemas } },
    return503OnClosing: true,
    forceCloseConnections: true,
    // a path id is bounded by its own rules (a SPIFFE ID may be 2048 bytes, three times that
    // percent-encoded), not by the router's default of 100 characters, which made a valid long
    // agent unreachable; past this bound, or with broken percent-encoding, the path is refused
    routerOptions: { maxParamLength: MAX_PATH_PARAM_CHARS },
    // the router's refusals are answered like every other error, with the envelope and headers
    frameworkErrors: (err, req, res) => {
      const reply = res as unknown as FastifyReply;
      everyResponseHeaders(reply, req.id);
      const why = err.code === 'FST_ERR_MAX_PARAM_LENGTH' ? `a path segment is longer than ${MAX_PATH_PARAM_CHARS} characters` : 'the path is not a valid URL path';
      void reply.code(400).send(envelope('MALFORMED_REQUEST', why, req.id));
    },
  });

  trackRoutes(app);
  accessFieldsSlot(app);
  boundConnections(app, rt.config.server.max_connections_per_ip, isTrustedProxy, app.log);
  countRequests(app, rt);
  if (rt.config.server.public_url === undefined && !trustsHostHeader(rt.config)) {
    const metadata = rt.authzen.config.enabled && rt.authzen.config.pdp_url === undefined;
    app.log.warn(
      { setting: 'server.public_url' },
      `server.public_url is not set: DPoP proofs are refused (key-bound task tokens cannot be used)${metadata ? ' and AuthZEN metadata is not published' : ''}, because outside development (the dev issuer) the Host header is not trusted to name this server. Set it to the address agents use.`,
    );
  }

  // a callback hook, not an async one: no promise per request
  app.addHook('onRequest', (req, reply, done) => {
    everyResponseHeaders(reply, req.id);
    const enc = req.headers['content-encoding'];
    if (enc !== undefined && enc !== 'identity') {
      done(new MandateError('UNSUPPORTED_MEDIA_TYPE', 'compressed request bodies are not accepted'));
      return;
    }
    done();
  });

  app.removeAllContentTypeParsers();
  app.addContentTypeParser(['application/json', 'application/authzen+json'], { parseAs: 'string' }, (req: FastifyRequest, body: string | Buffer, done) => {
    // JSON is UTF-8 (RFC 8259); a body declared in another charset would be read as something else
    const type = req.headers['content-type'] ?? '';
    const charset = type.includes(';') ? /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(type)?.[1]?.toLowerCase() : undefined;
    if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
      done(new MandateError('UNSUPPORTED_MEDIA_TYPE', `JSON bodies must be UTF-8, not ${charset.slice(0, 32)}`), undefined);
      return;
    }
    const text = typeof body === 'string' ? body : body.toString('utf8');
    const limits = { maxDepth: rt.config.server.max_json_depth, maxEntries: 10_000, maxStringLength: rt.config.server.body_limit_bytes, maxNodes: 200_000 };
    let parsed: unknown;
    try {
      // nesting and width are refused before JSON.parse builds the value: refusing a megabyte of
      // brackets after parsing it cost up to half a second of CPU, before any credential was checked
      checkJsonTextBounds(text, limits, 'body');
    } catch (e) {
      done(e as Error, undefined);
      return;
    }
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      // a blank body is never JSON: told apart only when it failed, not trimmed on every request
      const problem = text.trim() === '' ? 'empty JSON body' : `body is not valid JSON: ${(e as Error).message}`;
      done(new MandateError('MALFORMED_REQUEST', problem), undefined);
      return;
    }
    const duplicate = findDuplicateKey(text);
    if (duplicate !== undefined) {
      done(new MandateError('MALFORMED_REQUEST', `body has a duplicate key ${JSON.stringify(duplicate.slice(0, 64))}`), undefined);
      return;
    }
    try {
      checkJsonBounds(parsed, limits, 'body');
    } catch (e) {
      done(e as Error, undefined);
      return;
    }
    done(null, parsed);
  });

  app.setErrorHandler((err: FastifyError | MandateError | Error, req, reply) => {
    if (isMandateError(err)) {
      const status = STATUS_BY_CODE[err.code];
      // RFC 9449 §7.1 / §9: tell a DPoP client what to fix
      if (err.code.startsWith('DPOP_')) reply.header('www-authenticate', `DPoP error="${err.code === 'DPOP_NONCE_REQUIRED' ? 'use_dpop_nonce' : 'invalid_dpop_proof'}", algs="EdDSA ES256"`);
      // a store that is away is announced once by the runtime; each request it fails is a warning
      if (status === 503) req.log.warn({ code: err.code, message: err.message }, 'request failed: service unavailable');
      else if (status >= 500) req.log.error({ err }, 'request failed');
      return reply.code(status).send(envelope(err.code, err.message, req.id, err.details));
    }
    const code = (err as FastifyError).code;
    const mapped = code !== undefined ? FASTIFY_CODES[code] : undefined;
    if (mapped) return reply.code(mapped.status).send(envelope(mapped.code, err.message, req.id));
    const status = (err as FastifyError).statusCode;
    if (status !== undefined && status >= 400 && status < 500) {
      return reply.code(status).send(envelope('MALFORMED_REQUEST', err.message, req.id));
    }
    req.log.error({ err }, 'unhandled error');
    return reply.code(500).send(envelope('INTERNAL_ERROR', 'internal error', req.id));
  });

  app.setNotFoundHandler((req, reply) => reply.code(404).send(envelope('NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0] ?? ''}`, req.id)));

  healthRoutes(app, rt);
  keyRoutes(app, rt);
  agentRoutes(app, rt);
  taskRoutes(app, rt);
  taskEventRoutes(app, rt);
  authorizeRoutes(app, rt);
  auditRoutes(app, rt);
  operatorRoutes(app, rt, leastOperatorRole);
  policyRoutes(app, rt);
  devRoutes(app, rt);
  authzenRoutes(app, rt);
  approvalRoutes(app, rt);
  killRoutes(app, rt);
  killHookRoutes(app, rt);
  eventRoutes(app, rt);
  dashboardRoutes(app, opts.dashboardDir);
  alertRoutes(app, rt);
  mcpRoutes(app, rt);
  metricsRoutes(app, rt);
  suggestRoutes(app, rt);
  openApiRoutes(app);
  return app;
}
