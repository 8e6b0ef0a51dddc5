import { canonicalJson } from '../json.ts';
import { MandateError } from '../errors.ts';
import type { Hasher } from '../ports.ts';
import { compileConstraintRegex } from './constraints.ts';
import { ceilingSchema, mandateSchema, type Ceiling, type Constraint, type Mandate } from './schema.ts';

/** The first problems of a zod error as one line: `path: message; path: message`. */
export function zodIssues(error: { issues: readonly { path: readonly PropertyKey[]; message: string }[] }, root = '(root)', max = 10): string {
  return error.issues
    .slice(0, max)
    .map((i) => `${i.path.map(String).join('.') || root}: ${i.message}`)
    .join('; ');
}

function checkRegexes(constraints: Iterable<Constraint>, where: string): void {
  for (const c of constraints) {
    if ('regex' in c) {
      try {
        compileConstraintRegex(c.regex);
      } catch (e) {
        throw new MandateError('MANDATE_INVALID', `${where}: invalid regex: ${(e as Error).message}`);
      }
    }
  }
}

/** Parses and normalises a declared mandate; MANDATE_INVALID names the first problems. */
export function parseMandate(input: unknown): Mandate {
  const r = mandateSchema.safeParse(input);
  if (!r.success) throw new MandateError('MANDATE_INVALID', `mandate is invalid: ${zodIssues(r.error)}`);
  const m = r.data;
  for (const t of m.tools) checkRegexes(Object.values(t.args ?? {}), `tools.${t.name}`);
  for (const a of m.approvals ?? []) checkRegexes(Object.values(a.when ?? {}), `approvals.${a.tool}`);
  const tw = m.time_window;
  if (tw?.not_before && tw.not_after && Date.parse(tw.not_before) >= Date.parse(tw.not_after)) {
    throw new MandateError('MANDATE_INVALID', 'mandate is invalid: time_window.not_before must be before not_after');
  }
  return m;
}

export function parseCeiling(input: unknown): Ceiling {
  const r = ceilingSchema.safeParse(input);
  if (!r.success) throw new MandateError('INVALID_ARGUMENT', `ceiling is invalid: ${zodIssues(r.error)}`);
  return r.data;
}

/** The mandate's canonical hash: what task tokens and audit records bind to. */
export function mandateHash(m: Mandate, hasher: Hasher): string {
  return 'sha256:' + hasher.sha256Hex(canonicalJson(m));
}
