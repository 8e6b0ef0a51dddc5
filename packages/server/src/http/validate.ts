import { MandateError, zodIssues } from '@mandate/core';
import type { z } from 'zod';

/** Parses a request part with a strict zod schema; MALFORMED_REQUEST names the first problems. */
export function parseBody<T extends z.ZodType>(schema: T, value: unknown, what = 'body'): z.output<T> {
  const r = schema.safeParse(value ?? {});
  if (!r.success) {
    throw new MandateError('MALFORMED_REQUEST', `invalid ${what}: ${zodIssues(r.error, what, 5)}`);
  }
  return r.data;
}
