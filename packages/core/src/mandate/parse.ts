import { canonicalJson } from '../json.ts';
import { MandateError } from '../errors.ts';
import type { Hasher } from '../ports.ts';
import { normaliseDomainEntry } from './hosts.ts';
import { REGEX_LIMITS, regexProblem, regexSize } from './regex.ts';
import { ceilingSchema, mandateSchema, type Ceiling, type Constraint, type Mandate } from './schema.ts';

/** The first problems of a zod error as one line: `path: message; path: message`. */
export function zodIssues(error: { issues: readonly { path: readonly PropertyKey[]; message: string }[] }, root = '(root)', max = 10): string {
  return error.issues
    .slice(0, max)
    .map((i) => `${i.path.map(String).join('.') || root}: ${i.message}`)
    .join('; ');
}

function invalid(message: string, details?: Record<string, unknown>): MandateError {
  return new MandateError('MANDATE_INVALID', `mandate is invalid: ${message}`, details);
}

/**
 * Patterns must be RE2 syntax with a bounded program, alone and together (regex.ts); domain
 * allow-list entries must be host names, IP addresses or `*.` host names (hosts.ts).
 */
function checkConstraints(m: Mandate): void {
  const places: [string, Constraint][] = [];
  for (const t of m.tools) for (const [arg, c] of Object.entries(t.args ?? {})) places.push([`tools.${t.name}.args.${arg}`, c]);
  for (const a of m.approvals ?? []) for (const [key, c] of Object.entries(a.when ?? {})) places.push([`approvals.${a.tool}.when.${key}`, c]);
  const patterns = new Set<string>();
  let program = 0;
  for (const [where, c] of places) {
    if ('regex' in c) {
      // the total first: nothing is compiled past it
      if (!patterns.has(c.regex)) {
        patterns.add(c.regex);
        program += Math.min(regexSize(c.regex), REGEX_LIMITS.maxProgram + 1);
        if (program > REGEX_LIMITS.maxMandateProgram) {
          throw invalid(`${where}: the mandate's regexes together are too large: their programs are estimated at more than ${REGEX_LIMITS.maxMandateProgram} instructions`, { path: where, pattern: c.regex, problem: 'too_large' });
        }
      }
      const problem = regexProblem(c.regex);
      if (problem) throw invalid(`${where}: ${problem.message}`, { path: where, pattern: c.regex, problem: problem.kind });
    }
    if ('domains' in c) {
      const bad = c.domains.find((d) => normaliseDomainEntry(d) === undefined);
      if (bad !== undefined) throw invalid(`${where}: domain ${JSON.stringify(bad)} is not a host name, an IP address or *.<host name>`, { path: where });
    }
  }
}

/** Parses and normalises a declared mandate; MANDATE_INVALID names the first problems. */
export function parseMandate(input: unknown): Mandate {
  const r = mandateSchema.safeParse(input);
  if (!r.success) throw new MandateError('MANDATE_INVALID', `mandate is invalid: ${zodIssues(r.error)}`);
  const m = r.data;
  checkConstraints(m);
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
