import { fileURLToPath } from 'node:url';
import type { CliIO } from '../src/io.ts';
import { runCli } from '../src/main.ts';

export const EXAMPLE_POLICIES = fileURLToPath(new URL('../../../examples/policies', import.meta.url));

export interface CliRun {
  readonly code: number;
  readonly out: string;
  readonly err: string;
}

/** Runs one CLI invocation in-process with captured output and an explicit environment. */
export async function cli(argv: string[], env: Record<string, string | undefined> = {}): Promise<CliRun> {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIO = { out: (line) => out.push(line), err: (line) => err.push(line), env };
  const code = await runCli(argv, io);
  return { code, out: out.join('\n'), err: err.join('\n') };
}
