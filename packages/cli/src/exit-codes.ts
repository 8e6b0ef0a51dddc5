/** The CLI's exit codes. Scripts may rely on these. */
export const EXIT = {
  /** success */
  OK: 0,
  /** the command ran and found a problem: audit chain broken, policy invalid */
  FAILED: 1,
  /** wrong usage: unknown command or option, missing argument */
  USAGE: 2,
  /** the configuration is invalid */
  CONFIG: 3,
  /** the server could not be reached or answered with an error */
  UNAVAILABLE: 4,
  /** unexpected internal error */
  INTERNAL: 70,
} as const;

export class CliError extends Error {
  readonly exitCode: number;
  constructor(exitCode: number, message: string) {
    super(message);
    this.exitCode = exitCode;
  }
}

/** A usage error that names the required options missing from `values` (none missing: nothing thrown). */
export function requireOptions(values: Record<string, unknown>, names: readonly string[], help: string): void {
  const missing = names.filter((n) => {
    const v = values[n];
    return v === undefined || v === '' || (Array.isArray(v) && v.length === 0);
  });
  if (missing.length > 0) throw new CliError(EXIT.USAGE, `missing ${missing.map((n) => `--${n}`).join(', ')}\n\n${help}`);
}

/** A usage error unless exactly one of the options `names` is given: none is named as missing, several as conflicting. */
export function requireOneOf(values: Record<string, unknown>, names: readonly string[], help: string): void {
  const given = names.filter((n) => values[n] !== undefined && values[n] !== false);
  const flags = (ns: readonly string[]) => ns.map((n) => `--${n}`).join(', ');
  if (given.length === 0) throw new CliError(EXIT.USAGE, `missing one of ${flags(names)}\n\n${help}`);
  if (given.length > 1) throw new CliError(EXIT.USAGE, `only one of ${flags(names)} (got ${flags(given)})\n\n${help}`);
}

/** A usage error naming the positional argument `what` when it is missing, or the extra ones. */
export function requirePositional(positionals: readonly string[], what: string, help: string): string {
  const [first, ...extra] = positionals;
  if (first === undefined) throw new CliError(EXIT.USAGE, `missing ${what}\n\n${help}`);
  if (extra.length > 0) throw new CliError(EXIT.USAGE, `one ${what} only (also got ${extra.map((e) => JSON.stringify(e)).join(', ')})\n\n${help}`);
  return first;
}
