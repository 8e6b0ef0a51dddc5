/**
 * `/v1/authorize` checks the usual body by hand and hands anything else to zod: for every JSON
 * body, near the shape or not, the answer (the parsed body, or the refusal's code and message)
 * is zod's, to the key order.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isMandateError } from '@mandate/core';
import { authorizeSchema, parseAuthorizeBody } from '../../src/http/routes/authorize.ts';
import { parseBody } from '../../src/http/validate.ts';

function outcome(parse: () => unknown): string {
  try {
    return JSON.stringify({ ok: parse() });
  } catch (e) {
    if (!isMandateError(e)) throw e;
    return JSON.stringify({ code: e.code, message: e.message });
  }
}

/** a JSON value as JSON.parse builds it (own `__proto__` keys included) */
const parsed = (arb: fc.Arbitrary<unknown>) => arb.map((v) => JSON.parse(JSON.stringify(v)) as unknown);

const text = (max: number) => fc.oneof(fc.string({ maxLength: 8 }), fc.string({ minLength: max - 2, maxLength: max + 2 }), fc.constant(''));
const field = (max: number) => fc.oneof({ weight: 6, arbitrary: text(max) }, { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 1 }) });
const argsValue = fc.oneof(
  { weight: 5, arbitrary: fc.dictionary(fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom('__proto__', 'constructor', 'path')), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
);
const nearShape = fc.record(
  {
    task_token: field(8192),
    task_id: field(200),
    call_id: field(128),
    tool: field(200),
    resource: field(1024),
    args: argsValue,
    extra: fc.jsonValue({ maxDepth: 1 }),
  },
  { requiredKeys: [] },
);

describe('the /v1/authorize body', () => {
  it('is parsed as zod parses authorizeSchema: the same body, or the same refusal', () => {
    fc.assert(
      fc.property(fc.oneof({ weight: 8, arbitrary: parsed(nearShape) }, { weight: 1, arbitrary: parsed(fc.jsonValue({ maxDepth: 3 })) }, { weight: 1, arbitrary: fc.constant(undefined) }), (body) => {
        expect(outcome(() => parseAuthorizeBody(body))).toBe(outcome(() => parseBody(authorizeSchema, body)));
      }),
      { numRuns: 3000 },
    );
  });

  it('takes the usual body without a copy of its arguments, and defaults absent arguments to {}', () => {
    const args = { path: '/srv/kb/refunds.md' };
    const body = parseAuthorizeBody(JSON.parse(JSON.stringify({ tool: 'fs.read_file', args, call_id: 'c-1' })) as unknown);
    expect(body).toEqual({ call_id: 'c-1', tool: 'fs.read_file', args });
    expect(parseAuthorizeBody({ tool: 't' })).toEqual({ tool: 't', args: {} });
  });
});
