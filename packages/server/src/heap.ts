/**
 * V8's young generation starts small and doubles (up to 32 MiB a semi-space, ~96 MiB resident)
 * whenever enough objects survive its collections, and it never shrinks back under steady load.
 * A server answering a stream of small requests, or a walk of the audit log, allocates fast but
 * keeps little: the doubling buys no throughput there and holds ~90 MiB of resident memory
 * (measured in bench/soak.ts --tasks and bench/audit-verify.ts). Keeping the young generation at
 * its starting size is a process-wide V8 setting, so only a command that owns its process sets it.
 */
import { setFlagsFromString } from 'node:v8';

export function keepYoungGenerationSmall(): void {
  setFlagsFromString('--semi-space-growth-factor=1');
}
