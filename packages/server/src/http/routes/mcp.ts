/**
 * The MCP gateway's edge: Streamable HTTP at /mcp (JSON-RPC errors, never the API's envelope,
 * for whatever an MCP client sends), and the operator endpoints for tool pins and secrets.
 */
import { MandateError } from '@mandate/core';
import { jsonRpcError, parseBounded, type Pin } from '@mandate/gateway';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { mcpResource, type MandateRuntime } from '../../compose.ts';
import { operatorFirst, requireOperator } from '../auth.ts';
import { requestProof } from '../dpop.ts';
import { STATUS_BY_CODE } from '../errors.ts';
import { parseBody } from '../validate.ts';

export const secretBody = z.strictObject({ value: z.string().min(1).max(16 * 1024) });
export const pinParams = z.strictObject({ server: z.string().min(1).max(100), tool: z.string().min(1).max(200) });

function pinView(p: Pin) {
  return {
    server: p.server,
    tool: p.tool,
    status: p.status,
    hash: p.hash,
    pending_hash: p.pendingHash ?? null,
    pinned_at: new Date(p.pinnedAt).toISOString(),
    changed_at: p.changedAt === undefined ? null : new Date(p.changedAt).toISOString(),
  };
}

/**
 * The gateway as an OAuth 2.1 protected resource (RFC 9728, as the MCP authorization spec asks):
 * what it is, how a token is presented, and where one comes from. Mandate is not an OAuth
 * authorization server, so none is named (`authorization_servers` is left out: a client must
 * not start an OAuth flow here); the token is a task token from Mandate's task start, named in
 * `mandate_task_start_endpoint`. Every value comes from the configuration, none from the request.
 */
export function protectedResourceMetadata(rt: MandateRuntime): Record<string, unknown> {
  const r = mcpResource(rt.config);
  return {
    resource: r.resource,
    resource_name: 'Mandate MCP gateway',
    bearer_methods_supported: ['header'],
    dpop_signing_alg_values_supported: ['EdDSA', 'ES256'],
    dpop_bound_access_tokens_required: false,
    mandate_task_start_endpoint: `${r.base}/v1/tasks`,
    mandate_token_instructions: `Start a task: POST ${r.base}/v1/tasks with your workload token (JWT-SVID or OIDC) as Bearer and {"mandate": {...}, "resource": "${r.resource}"}; present the returned task token as "Authorization: Bearer <token>" on every request to ${r.resource}.`,
  };
}

export function mcpRoutes(app: FastifyInstance, rt: MandateRuntime): void {
  const limits = rt.mcp.limits;
  const metadata = protectedResourceMetadata(rt);
  // RFC 9728 §3.1: the path of the resource (/mcp) is inserted after the well-known name; the bare one serves clients that look there
  app.get('/.well-known/oauth-protected-resource/mcp', async () => metadata);
  app.get('/.well-known/oauth-protected-resource', async () => metadata);
  void app.register(async (scope) => {
    // the body is parsed here, so that a malformed message gets a JSON-RPC error
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: limits.maxBytes }, (_req, body, done) => done(null, body));
    scope.setErrorHandler((err, req, reply) => {
      if ((err as { code?: string }).code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
        return reply.code(413).send(jsonRpcError(null, -32600, `Invalid Request: message larger than ${limits.maxBytes} bytes`, 'LIMIT_EXCEEDED'));
      }
      if (err instanceof MandateError) {
        const status = STATUS_BY_CODE[err.code];
        if (status >= 500) req.log.warn({ code: err.code, message: err.message }, 'gateway request failed');
        return reply.code(status).send(jsonRpcError(null, status >= 500 ? -32603 : -32600, err.message, err.code));
      }
      const status = (err as { statusCode?: number }).statusCode;
      if (status !== undefined && status >= 400 && status < 500) {
        return reply.code(400).send(jsonRpcError(null, -32600, `Invalid Request: ${(err as Error).message}`, 'MALFORMED_REQUEST'));
      }
      // a fault of ours is not the client's malformed request, and its message stays in the log
      req.log.error({ err }, 'gateway request failed');
      return reply.code(500).send(jsonRpcError(null, -32603, 'Internal error', 'INTERNAL_ERROR'));
    });
    const handle = (req: FastifyRequest, reply: FastifyReply) => rt.tracing.request('mandate.gateway', req.headers, { 'http.route': '/mcp', 'http.request.method': req.method }, async (span) => {
      let body: unknown;
      if (req.method === 'POST') {
        const parsed = parseBounded(typeof req.body === 'string' ? req.body : '', limits);
        if ('error' in parsed) return reply.code(400).send(parsed.error);
        body = parsed.value;
        const method = (body as { method?: unknown } | null)?.method;
        if (typeof method === 'string') span?.setAttribute('rpc.method', method);
        const tool = (body as { params?: { name?: unknown } } | null)?.params?.name;
        if (method === 'tools/call' && typeof tool === 'string') span?.setAttribute('mandate.tool', tool);
      }
      // proof of possession (RFC 9449) for this very request: htu = the public URL of /mcp
      const bearer = /^Bearer ([^\s]+)$/i.exec(req.headers.authorization ?? '')?.[1];
      const proof = bearer === undefined ? undefined : await requestProof(rt, req, reply, bearer);
      const nonce = reply.getHeader('dpop-nonce');
      reply.hijack();
      if (typeof nonce === 'string') reply.raw.setHeader('dpop-nonce', nonce);
      try {
        await rt.mcp.handleHttp(req.raw, reply.raw, body, proof);
      } catch (e) {
        // hijacked: Fastify's error handler can no longer answer, so the fault is answered here
        req.log.error({ err: e }, 'gateway request failed');
        if (!reply.raw.headersSent) {
          reply.raw.writeHead(500, { 'content-type': 'application/json' });
          reply.raw.end(JSON.stringify(jsonRpcError(null, -32603, 'Internal error', 'INTERNAL_ERROR')));
        } else reply.raw.destroy();
      }
    });
    scope.post('/mcp', handle);
    scope.get('/mcp', handle);
    scope.delete('/mcp', handle);
  });

  app.get('/v1/mcp/pins', async (req) => {
    await requireOperator(rt, req, 'viewer');
    return { pins: (await rt.mcp.pins.list()).map(pinView) };
  });

  app.post<{ Params: { server: string; tool: string } }>('/v1/mcp/pins/:server/:tool/approve', { onRequest: operatorFirst(rt, 'admin') }, async (req) => {
    const op = await requireOperator(rt, req, 'admin');
    const p = parseBody(pinParams, req.params, 'path');
    return pinView(await rt.mcp.pins.approve(p.server, p.tool, op.id));
  });

  app.get('/v1/secrets', async (req) => {
    await requireOperator(rt, req, 'viewer');
    return { secrets: (await rt.mcp.vault.names()).map((s) => ({ name: s.name, updated_at: new Date(s.updatedAt).toISOString() })) };
  });

  app.put<{ Params: { name: string } }>('/v1/secrets/:name', { onRequest: operatorFirst(rt, 'admin') }, async (req) => {
    const op = await requireOperator(rt, req, 'admin');
    const body = parseBody(secretBody, req.body);
    const now = rt.clock.now();
    try {
      await rt.mcp.vault.set(req.params.name, body.value, now);
    } catch (e) {
      if (e instanceof MandateError && e.code === 'INVALID_ARGUMENT') throw new MandateError('MALFORMED_REQUEST', e.message);
      throw e;
    }
    // the value is never returned, logged or audited
    await rt.audit.append([{ kind: 'secret.set', ts: now, data: { name: req.params.name, by: op.id } }]);
    // spare upstream connections decrypted the old value: they are started anew
    await rt.mcp.secretsChanged();
    return { name: req.params.name, updated_at: new Date(now).toISOString() };
  });

  app.delete<{ Params: { name: string } }>('/v1/secrets/:name', { onRequest: operatorFirst(rt, 'admin') }, async (req, reply) => {
    const op = await requireOperator(rt, req, 'admin');
    const now = rt.clock.now();
    let had: boolean;
    try {
      had = await rt.mcp.vault.delete(req.params.name, now);
    } catch (e) {
      if (e instanceof MandateError && e.code === 'INVALID_ARGUMENT') throw new MandateError('MALFORMED_REQUEST', e.message);
      throw e;
    }
    if (!had) throw new MandateError('NOT_FOUND', `secret ${req.params.name} is not set`);
    await rt.audit.append([{ kind: 'secret.deleted', ts: now, data: { name: req.params.name, by: op.id } }]);
    await rt.mcp.secretsChanged();
    return reply.code(204).send();
  });
}
