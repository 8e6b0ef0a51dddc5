/**
 * The HTTP API described as OpenAPI 3.1, built from the routes' own zod schemas (request bodies,
 * queries, path parameters) and the one table of error codes (errors.ts). Every route the app
 * registers must have an entry in ROUTES (a test registers every route and compares); the
 * document is served at GET /openapi.json and written to docs/openapi.json by `npm run docs`.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { STATUS_BY_CODE } from './errors.ts';
import * as agents from './routes/agents.ts';
import * as alerts from './routes/alerts.ts';
import * as approvals from './routes/approvals.ts';
import * as audit from './routes/audit.ts';
import * as authorize from './routes/authorize.ts';
import * as authzen from './routes/authzen.ts';
import * as dev from './routes/dev.ts';
import * as events from './routes/events.ts';
import * as keys from './routes/keys.ts';
import * as kill from './routes/kill.ts';
import * as mcp from './routes/mcp.ts';
import * as operators from './routes/operators.ts';
import * as policies from './routes/policies.ts';
import * as suggest from './routes/suggest.ts';
import * as tasks from './routes/tasks.ts';

type Role = 'viewer' | 'approver' | 'admin';
/** who may call a route: its credential in the Authorization header */
type Auth =
  | { kind: 'none' }
  | { kind: 'operator'; role: Role }
  | { kind: 'task' }
  | { kind: 'workload' }
  | { kind: 'task-or-operator'; role: Role }
  | { kind: 'pep' }
  | { kind: 'metrics' };

interface RouteDoc {
  readonly summary: string;
  readonly auth: Auth;
  readonly body?: z.ZodType;
  readonly query?: z.ZodType;
  /** the success status (default 200) */
  readonly status?: number;
  /** server-sent events instead of JSON */
  readonly stream?: boolean;
  /** the media type of a success that is not JSON */
  readonly produces?: string;
  /** only there when a setting enables it */
  readonly requires?: string;
}

const EMPTY = z.strictObject({});
const none: Auth = { kind: 'none' };
const op = (role: Role): Auth => ({ kind: 'operator', role });
const task: Auth = { kind: 'task' };

/** every route of the API, keyed "METHOD /path" as Fastify registers it */
export const ROUTES: Readonly<Record<string, RouteDoc>> = {
  'GET /healthz': { summary: 'Liveness: answers while the database is away', auth: none },
  'GET /readyz': { summary: 'Readiness: the store answers and can commit, the audit log matches its newest checkpoint, the change feed is connected', auth: none },
  'GET /openapi.json': { summary: 'This document: the shape of the API (no data)', auth: none },
  'GET /metrics': { summary: 'Prometheus metrics', auth: { kind: 'metrics' }, produces: 'text/plain', requires: 'metrics.enabled and metrics.token_file' },
  'GET /.well-known/jwks.json': { summary: 'Task-token verification keys', auth: none },
  'GET /v1/audit/jwks': { summary: 'Audit checkpoint signing keys, to pin for independent verification', auth: none },
  'POST /v1/keys/rotate': { summary: 'Rotate a signing key', auth: op('admin'), body: keys.rotateSchema },
  'POST /v1/agents': { summary: 'Register an agent', auth: op('admin'), body: agents.createSchema, status: 201 },
  'GET /v1/agents': { summary: 'List agents', auth: op('viewer'), query: agents.listSchema },
  'GET /v1/agents/{id}': { summary: 'One agent (URL-encode the SPIFFE ID)', auth: op('viewer') },
  'PATCH /v1/agents/{id}': { summary: 'Change an agent (status: disabled stops it at its next call)', auth: op('admin'), body: agents.patchSchema },
  'POST /v1/tasks': { summary: 'Start a task: the mandate in the body', auth: { kind: 'workload' }, body: tasks.startSchema, status: 201 },
  'POST /v1/tasks/{id}/delegate': { summary: 'Hand a narrower mandate to a sub-agent', auth: task, body: tasks.delegateSchema, status: 201 },
  'POST /v1/tasks/{id}/renew': { summary: 'A fresh task token; the old one is revoked', auth: task, body: tasks.renewSchema },
  'POST /v1/tasks/{id}/heartbeat': { summary: "The task's supervisor says it is still watched", auth: op('approver'), body: EMPTY },
  'POST /v1/tasks/{id}/complete': { summary: 'End the task; its tokens stop working at once', auth: { kind: 'task-or-operator', role: 'admin' }, body: EMPTY },
  'POST /v1/tasks/{id}/revoke': { summary: 'Revoke a task', auth: op('admin'), body: tasks.revokeSchema },
  'POST /v1/tasks/{id}/containment/lift': { summary: "Lift the task's behavioural restrictions (audited)", auth: op('admin'), body: tasks.liftSchema },
  'GET /v1/tasks': { summary: 'List tasks', auth: op('viewer'), query: tasks.listSchema },
  'GET /v1/tasks/{id}': { summary: 'One task with its behavioural containment', auth: op('viewer') },
  'GET /v1/tasks/{id}/audit': { summary: "The task's audit records", auth: op('viewer'), query: tasks.auditQuery },
  'GET /v1/tasks/{id}/events': { summary: "Server-sent events: the task's end and suspension", auth: { kind: 'task-or-operator', role: 'viewer' }, stream: true },
  'POST /v1/authorize': { summary: 'Decide one tool call (a deny is a 200)', auth: task, body: authorize.authorizeSchema },
  'POST /v1/outcomes': { summary: "Report an allowed call's result", auth: task, body: authorize.outcomeSchema },
  'GET /v1/audit': { summary: 'Read the audit chain', auth: op('viewer'), query: audit.rangeSchema },
  'GET /v1/audit/checkpoints': { summary: 'Signed audit checkpoints', auth: op('viewer') },
  'GET /v1/audit/verify': { summary: 'Verify the audit chain', auth: op('viewer') },
  'POST /v1/operators/keys': { summary: 'Create an operator API key (shown once)', auth: op('admin'), body: operators.createSchema, status: 201 },
  'GET /v1/operators/keys': { summary: 'List operator API keys', auth: op('admin') },
  'GET /v1/operators/me': { summary: "The calling operator key: its id, name, role, and which operator actions (kill, approve…) that role may take", auth: op('viewer'), query: operators.meQuery },
  'DELETE /v1/operators/keys/{id}': { summary: 'Revoke an operator API key', auth: op('admin'), status: 204 },
  'GET /v1/policies': { summary: 'The policy set in force', auth: op('viewer') },
  'POST /v1/policies/validate': { summary: 'Validate a draft policy set', auth: op('viewer'), body: policies.validateSchema },
  'POST /v1/policies/shadow': { summary: 'Evaluate a draft against recent decisions', auth: op('viewer'), body: policies.shadowSchema },
  'GET /v1/policies/shadow/divergences': { summary: 'Calls the shadow set would have decided differently', auth: op('viewer'), query: policies.divergenceQuery },
  'POST /v1/policies/reload': { summary: 'Re-read the policy folder (audited; an empty set is refused unless allow_empty)', auth: op('admin'), body: policies.reloadSchema },
  'POST /v1/dev/workload-tokens': { summary: 'Mint a workload token (development issuer)', auth: op('admin'), body: dev.mintSchema, requires: 'identity.dev_issuer.enabled' },
  'GET /v1/dev/bundle': { summary: "The development issuer's public keys", auth: none, requires: 'identity.dev_issuer.enabled' },
  'GET /.well-known/authzen-configuration': { summary: 'AuthZEN PDP metadata', auth: none, requires: 'authzen.enabled' },
  'POST /access/v1/evaluation': { summary: 'AuthZEN access evaluation', auth: { kind: 'pep' }, requires: 'authzen.enabled' },
  'POST /access/v1/evaluations': { summary: 'AuthZEN batch access evaluations', auth: { kind: 'pep' }, requires: 'authzen.enabled' },
  'GET /v1/authzen': { summary: 'AuthZEN settings and entity counts', auth: op('viewer'), requires: 'authzen.enabled' },
  'GET /v1/authzen/entities': { summary: 'List AuthZEN entities', auth: op('viewer'), query: authzen.entitiesQuery, requires: 'authzen.enabled' },
  'POST /v1/authzen/entities': { summary: 'Add or replace AuthZEN entities', auth: op('admin'), requires: 'authzen.enabled' },
  'PUT /v1/authzen/entities': { summary: 'Replace all AuthZEN entities', auth: op('admin'), requires: 'authzen.enabled' },
  'DELETE /v1/authzen/entities/{type}/{id}': { summary: 'Delete one AuthZEN entity', auth: op('admin'), requires: 'authzen.enabled' },
  'POST /v1/authzen/reload': { summary: 'Re-read the AuthZEN entity file', auth: op('admin'), requires: 'authzen.enabled' },
  'GET /v1/approvals': { summary: 'Step-up approval requests', auth: op('viewer'), query: approvals.listSchema },
  'GET /v1/approvals/{id}': { summary: 'One approval request', auth: op('viewer') },
  'POST /v1/approvals/{id}/approve': { summary: 'Approve a step-up request', auth: op('approver'), body: approvals.decideSchema },
  'POST /v1/approvals/{id}/deny': { summary: 'Deny a step-up request', auth: op('approver'), body: approvals.decideSchema },
  'POST /v1/kill': { summary: 'Kill an agent, a task or everything', auth: op('admin'), body: kill.killSchema },
  'POST /v1/unkill': { summary: 'Lift a kill of an agent or of everything', auth: op('admin'), body: kill.unkillSchema },
  'GET /v1/kill': { summary: 'Kills in force', auth: op('viewer') },
  'GET /v1/kill-hooks': { summary: 'Kill hooks and their delivery', auth: op('admin'), query: EMPTY },
  'GET /v1/events': { summary: 'Server-sent events: decision, approval, task, kill, alert', auth: op('viewer'), query: events.querySchema, stream: true },
  'GET /v1/alerts': { summary: 'Behavioural alerts', auth: op('viewer'), query: alerts.listSchema },
  'GET /v1/alerts/delivery': { summary: "Each alert webhook's durable delivery", auth: op('admin'), query: EMPTY },
  'GET /v1/alerts/{id}': { summary: 'One alert', auth: op('viewer') },
  'POST /v1/alerts/{id}/ack': { summary: 'Acknowledge an open alert (audited)', auth: op('approver'), body: alerts.ackSchema },
  'GET /v1/alerts/stream': { summary: 'Server-sent events: alert and alert.acknowledged', auth: op('viewer'), query: EMPTY, stream: true },
  'GET /.well-known/oauth-protected-resource': { summary: 'OAuth protected-resource metadata of the MCP gateway (RFC 9728)', auth: none },
  'GET /.well-known/oauth-protected-resource/mcp': { summary: 'OAuth protected-resource metadata of the MCP gateway (RFC 9728)', auth: none },
  'POST /mcp': { summary: 'MCP gateway (Streamable HTTP, JSON-RPC)', auth: task },
  'GET /mcp': { summary: 'MCP gateway: the server-to-client stream', auth: task },
  'DELETE /mcp': { summary: 'MCP gateway: end the session', auth: task },
  'GET /v1/mcp/pins': { summary: 'Pinned MCP tool descriptions', auth: op('viewer') },
  'POST /v1/mcp/pins/{server}/{tool}/approve': { summary: "Accept a changed tool description", auth: op('admin') },
  'GET /v1/secrets': { summary: 'Names of the stored upstream secrets (never values)', auth: op('viewer') },
  'PUT /v1/secrets/{name}': { summary: 'Store an upstream secret', auth: op('admin'), body: mcp.secretBody },
  'DELETE /v1/secrets/{name}': { summary: 'Delete an upstream secret', auth: op('admin'), status: 204 },
  'POST /v1/mandates/suggest': { summary: 'Suggest a mandate from audit records or traces', auth: op('viewer'), body: suggest.suggestSchema },
};

/** The least operator role a route ("METHOD /path", as in ROUTES) requires; undefined when no operator key may call it. */
export function leastOperatorRole(route: string): Role | undefined {
  const auth = ROUTES[route]?.auth;
  return auth?.kind === 'operator' || auth?.kind === 'task-or-operator' ? auth.role : undefined;
}

/** the dashboard's static files: a page, not the API */
export const UNDOCUMENTED = /^\/dashboard(\/|$)/;

/** Fastify's `/v1/tasks/:id` as OpenAPI's `/v1/tasks/{id}` */
export function openApiPath(url: string): string {
  return url.replace(/:(\w+)/g, '{$1}');
}

function jsonSchema(schema: z.ZodType): Record<string, unknown> {
  const { $schema: _drop, ...rest } = z.toJSONSchema(schema, { io: 'input', target: 'draft-2020-12', unrepresentable: 'any' }) as Record<string, unknown>;
  return rest;
}

function security(auth: Auth): Array<Record<string, string[]>> | undefined {
  switch (auth.kind) {
    case 'none': return [];
    case 'operator': return [{ operatorKey: [auth.role] }];
    case 'task': return [{ taskToken: [] }, { taskToken: [], dpop: [] }];
    case 'workload': return [{ workloadToken: [] }, { workloadToken: [], dpop: [] }];
    case 'task-or-operator': return [{ taskToken: [] }, { taskToken: [], dpop: [] }, { operatorKey: [auth.role] }];
    case 'pep': return [{ pepCredential: [] }];
    case 'metrics': return [{ metricsToken: [] }];
  }
}

/** error statuses a route can answer, each with the stable codes that share it */
function errorStatuses(d: RouteDoc, path: string): number[] {
  const out = new Set<number>([400, 500]);
  if (d.body !== undefined || d.auth.kind !== 'none') [413, 415].forEach((s) => out.add(s));
  if (d.auth.kind !== 'none') [401, 403, 429, 503].forEach((s) => out.add(s));
  if (path.includes('{') || d.auth.kind === 'operator' || d.auth.kind === 'task' || d.auth.kind === 'task-or-operator') [404, 409].forEach((s) => out.add(s));
  return [...out].sort((a, b) => a - b);
}

function codesFor(status: number): string[] {
  return Object.entries(STATUS_BY_CODE).filter(([, s]) => s === status).map(([c]) => c).sort();
}

/** The OpenAPI 3.1 document of the API. */
export function openApiDocument(): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const [key, d] of Object.entries(ROUTES)) {
    const [method = '', path = ''] = key.split(' ');
    const params: Array<Record<string, unknown>> = [...path.matchAll(/\{(\w+)\}/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
    if (d.query !== undefined) {
      const q = jsonSchema(d.query) as { properties?: Record<string, unknown>; required?: string[] };
      for (const [name, schema] of Object.entries(q.properties ?? {})) params.push({ name, in: 'query', required: (q.required ?? []).includes(name), schema });
    }
    const responses: Record<string, unknown> = {};
    const okContent = d.stream ? { 'text/event-stream': { schema: { type: 'string' } } } : d.produces !== undefined ? { [d.produces]: { schema: { type: 'string' } } } : { 'application/json': { schema: {} } };
    responses[String(d.status ?? 200)] = d.status === 204 ? { description: 'done, no content' } : { description: 'success', content: okContent };
    for (const s of errorStatuses(d, path)) responses[String(s)] = { $ref: `#/components/responses/E${s}` };
    const op: Record<string, unknown> = {
      operationId: `${method.toLowerCase()}${path.replace(/\{(\w+)\}/g, 'By_$1').replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ?? '').toUpperCase())}`,
      summary: d.summary,
      ...(d.requires !== undefined ? { description: `Registered only when ${d.requires}.` } : {}),
      security: security(d.auth),
      ...(params.length > 0 ? { parameters: params } : {}),
      ...(d.body !== undefined ? { requestBody: { required: true, content: { 'application/json': { schema: jsonSchema(d.body) } } } } : {}),
      responses,
    };
    (paths[path] ??= {})[method.toLowerCase()] = op;
  }
  const statuses = [...new Set(Object.values(STATUS_BY_CODE))].sort((a, b) => a - b);
  const errorResponses = Object.fromEntries(
    statuses.map((s) => [
      `E${s}`,
      {
        description: `error: one of ${codesFor(s).join(', ')}`,
        content: { 'application/json': { schema: { allOf: [{ $ref: '#/components/schemas/ErrorEnvelope' }, { properties: { error: { properties: { code: { enum: codesFor(s) } } } } }] } } },
      },
    ]),
  );
  return {
    openapi: '3.1.0',
    info: {
      title: 'Mandate HTTP API',
      version: '1',
      description: 'Generated from the route schemas (packages/server/src/http/openapi.ts). Bodies are JSON only, UTF-8, never compressed, free of duplicate and prototype-pollution keys; unknown fields are rejected. Every response carries x-request-id.',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    paths,
    components: {
      securitySchemes: {
        operatorKey: { type: 'http', scheme: 'bearer', description: 'An operator API key (mk_…), role viewer < approver < admin; the scope names the least role.' },
        taskToken: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'A task token issued by POST /v1/tasks. A key-bound token also needs a DPoP proof.' },
        workloadToken: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'A workload token (JWT-SVID or OIDC) naming the agent.' },
        dpop: { type: 'apiKey', in: 'header', name: 'DPoP', description: 'A DPoP proof (RFC 9449) over the request, binding the token to the agent key.' },
        pepCredential: { type: 'http', scheme: 'bearer', description: 'A credential of a configured AuthZEN enforcement point (authzen.peps).' },
        metricsToken: { type: 'http', scheme: 'bearer', description: 'The token in metrics.token_file.' },
      },
      schemas: {
        ErrorEnvelope: {
          type: 'object',
          required: ['error'],
          properties: {
            error: {
              type: 'object',
              required: ['code', 'message', 'requestId'],
              properties: { code: { type: 'string', enum: Object.keys(STATUS_BY_CODE).sort() }, message: { type: 'string' }, requestId: { type: 'string' }, details: {} },
            },
          },
        },
      },
      responses: errorResponses,
    },
  };
}

/** the document as written to docs/openapi.json and served */
export function openApiJson(): string {
  return `${JSON.stringify(openApiDocument(), null, 2)}\n`;
}

const registered = new WeakMap<FastifyInstance, Set<string>>();

/** Records every route the app registers from now on, as "METHOD /path" (HEAD, added by Fastify for each GET, left out). */
export function trackRoutes(app: FastifyInstance): void {
  const seen = new Set<string>();
  registered.set(app, seen);
  app.addHook('onRoute', (r) => {
    for (const m of Array.isArray(r.method) ? r.method : [r.method]) if (m !== 'HEAD') seen.add(`${m} ${openApiPath(r.url)}`);
  });
}

/** the routes `trackRoutes` saw */
export function registeredRoutes(app: FastifyInstance): string[] {
  return [...(registered.get(app) ?? [])].sort();
}

export function openApiRoutes(app: FastifyInstance): void {
  let text: string | undefined;
  app.get('/openapi.json', async (_req, reply) => reply.header('content-type', 'application/json; charset=utf-8').send((text ??= openApiJson())));
}
