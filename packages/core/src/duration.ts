import { z } from 'zod';

const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses "90s", "15m", "1h", "250ms" or a number of seconds into milliseconds. */
export function parseDuration(input: string | number): number {
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || input < 0) throw new RangeError(`invalid duration: ${input}`);
    return Math.round(input * 1000);
  }
  const m = /^(\d{1,9})(ms|s|m|h|d)$/.exec(input.trim());
  if (!m) throw new RangeError(`invalid duration "${input}" (use e.g. 90s, 15m, 1h)`);
  return Number(m[1]) * (UNITS[m[2] as string] as number);
}

/** zod type for a duration field: accepts "15m" or seconds, yields milliseconds. */
export const durationSchema = z.union([z.string(), z.number()]).transform((v, ctx) => {
  try {
    return parseDuration(v);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
    return z.NEVER;
  }
});

export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1_000 === 0) return `${ms / 1_000}s`;
  return `${ms}ms`;
}
