import { MandateError } from '@mandate/core';
import type { z } from 'zod';

/** Parses a request part with a strict zod schema; MALFORMED_REQUEST names the first problems. */
export function parseBody<T extends z.ZodType>(schema: T, value: unknown, what = 'body'): z.output<T> {
  const r = schema.safeParse(value ?? {});
  if (!r.success) {
    const msg = r.error.issues
      .slice(0, 5)
      .map((i) => `${i.path.map(String).join('.') || what}: ${i.message}`)
      .join('; ');
    throw new MandateError('MALFORMED_REQUEST', `invalid ${what}: ${msg}`);
  }
  return r.data;
}
