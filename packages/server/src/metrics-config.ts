import { z } from 'zod';

/**
 * The Prometheus endpoint. Off by default; when on it answers only a scraper that presents the
 * bearer token held in `token_file` (never an operator key: a scraper needs to read counts, not
 * to act), on the main listener like every other route, so the same TLS and network policy
 * protect it.
 */
export const metricsConfigSchema = z
  .strictObject({
    enabled: z.boolean().default(false).describe('serve Prometheus metrics at GET /metrics (docs/metrics.md)'),
    token_file: z
      .string()
      .min(1)
      .optional()
      .describe('file holding the bearer token a scraper must present (at least 32 characters; surrounding whitespace is ignored); required when metrics are enabled'),
  })
  .refine((m) => !m.enabled || m.token_file !== undefined, { path: ['token_file'], message: 'is required when metrics.enabled is true: /metrics is never served without a token' })
  .prefault({})
  .describe('Prometheus metrics at GET /metrics, behind a bearer token read from a file');
