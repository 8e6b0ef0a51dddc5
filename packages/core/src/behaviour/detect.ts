/** Runs every detector over one call. Pure: same input, same signals. */
import { detectChains } from './chains.ts';
import type { DetectorsConfig } from './config.ts';
import { detectDrift } from './drift.ts';
import { detectNovelty } from './novelty.ts';
import { detectRate } from './rate.ts';
import { detectRetry } from './retry.ts';
import type { DetectorInput, Signal } from './types.ts';
import { detectVolume } from './volume.ts';

/** `chainHits`: the chain steps the call matches (chains.ts stepHits), when the caller has them already */
export function runDetectors(input: DetectorInput, cfg: DetectorsConfig, chainHits?: readonly number[]): Signal[] {
  return [
    ...detectDrift(input, cfg.drift),
    ...detectChains(input, cfg.chains, chainHits),
    ...detectRate(input, cfg.rate),
    ...detectNovelty(input, cfg.novelty),
    ...detectVolume(input, cfg.volume),
    ...detectRetry(input, cfg.retry),
  ];
}
