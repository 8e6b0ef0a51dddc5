/** Runs every detector over one call. Pure: same input, same signals. */
import { detectChains } from './chains.ts';
import type { DetectorsConfig } from './config.ts';
import { detectDrift } from './drift.ts';
import { detectNovelty } from './novelty.ts';
import { detectRate } from './rate.ts';
import { detectRetry } from './retry.ts';
import type { DetectorInput, Signal } from './types.ts';
import { detectVolume } from './volume.ts';

export function runDetectors(input: DetectorInput, cfg: DetectorsConfig): Signal[] {
  return [
    ...detectDrift(input, cfg.drift),
    ...detectChains(input, cfg.chains),
    ...detectRate(input, cfg.rate),
    ...detectNovelty(input, cfg.novelty),
    ...detectVolume(input, cfg.volume),
    ...detectRetry(input, cfg.retry),
  ];
}
