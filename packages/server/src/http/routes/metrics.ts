import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { MandateError } from '@mandate/core';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { MandateRuntime } from '../../compose.ts';
import { bearer } from '../auth.ts';

const MIN_TOKEN_LENGTH = 32;

/** the scrape token from metrics.token_file; a missing, unreadable or short file stops start-up */
export function readMetricsToken(file: string): Buffer {
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch (e) {
    throw new MandateError('CONFIG_INVALID', `cannot read metrics.token_file ${file}: ${(e as Error).message}`);
  }
  if (text.length < MIN_TOKEN_LENGTH || /\s/.test(text)) {
    throw new MandateError('CONFIG_INVALID', `metrics.token_file ${file} must hold one token of at least ${MIN_TOKEN_LENGTH} characters without spaces`);
  }
  return digest(text);
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * Every request is counted by method, route template and status, never by URL: a path holds ids
 * and a query string may hold anything, and neither belongs in a label.
 */
export function countRequests(app: FastifyInstance, rt: MandateRuntime): void {
  // metrics off: no hook at all, so a request pays nothing for counts nobody can scrape
  const metrics = rt.metrics;
  if (metrics === undefined) return;
  app.addHook('onResponse', (req, reply, done) => {
    metrics.request(req.method, routeOf(req), reply.statusCode, reply.elapsedTime / 1000);
    done();
  });
}

function routeOf(req: FastifyRequest): string {
  return req.routeOptions.url ?? 'unmatched';
}

/** GET /metrics, when metrics.enabled: Prometheus text, for the holder of the scrape token only. */
export function metricsRoutes(app: FastifyInstance, rt: MandateRuntime): void {
  const m = rt.config.metrics;
  const metrics = rt.metrics;
  if (!m.enabled || m.token_file === undefined || metrics === undefined) return;
  const expected = readMetricsToken(m.token_file);
  app.get('/metrics', async (req, reply) => {
    const given = bearer(req);
    // compared as digests: equal lengths, and no early exit that times how much of it matched
    if (given === undefined || !timingSafeEqual(digest(given), expected)) {
      reply.header('www-authenticate', 'Bearer realm="metrics"');
      throw new MandateError('UNAUTHENTICATED', 'a valid metrics token is required (Authorization: Bearer <metrics.token_file>)');
    }
    const text = await metrics.exposition();
    return reply.type(metrics.contentType).send(text);
  });
}
