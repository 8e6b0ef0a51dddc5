/**
 * Volume: records and bytes the task's results have added up to, against the scale its mandate
 * declares (`scale: {records, bytes}`), or, when it declares none, against a per-call allowance
 * times its call budget, or the configured default.
 */
import { z } from 'zod';
import type { DetectorInput, Signal } from './types.ts';

export const volumeConfigSchema = z.strictObject({
  enabled: z.boolean().default(true).describe('run the volume detector: results (records, bytes) larger than the mandate\'s declared scale'),
  records_per_call: z.number().int().min(1).max(1_000_000_000).default(100).describe('allowance per budgeted call, when the mandate declares no scale'),
  bytes_per_call: z.number().int().min(1).max(1_000_000_000_000).default(262_144).describe('bytes allowed per budgeted call, when the mandate declares no scale'),
  default_records: z.number().int().min(1).max(1_000_000_000).default(10_000).describe('used when the mandate declares neither a scale nor a call budget'),
  default_bytes: z.number().int().min(1).max(1_000_000_000_000).default(50 * 1024 * 1024).describe('bytes allowed when the mandate declares neither a scale nor a call budget'),
  high_factor: z.number().min(1).max(1000).default(3).describe('past this multiple of the scale the signal is high, not medium'),
});
export type VolumeConfig = z.output<typeof volumeConfigSchema>;

export function volumeLimits(input: DetectorInput, cfg: VolumeConfig): { records: number; bytes: number; basis: string } {
  const scale = input.task.declaredScale;
  const calls = input.task.declaredCalls;
  const records = scale?.records ?? (calls !== undefined ? calls * cfg.records_per_call : cfg.default_records);
  const bytes = scale?.bytes ?? (calls !== undefined ? calls * cfg.bytes_per_call : cfg.default_bytes);
  return { records, bytes, basis: scale !== undefined ? 'mandate scale' : calls !== undefined ? 'call budget' : 'default' };
}

export function detectVolume(input: DetectorInput, cfg: VolumeConfig): Signal[] {
  if (!cfg.enabled) return [];
  const v = input.volume;
  if (v.results === 0) return [];
  const lim = volumeLimits(input, cfg);
  const ratio = Math.max(v.records / lim.records, v.bytes / lim.bytes);
  if (ratio <= 1) return [];
  return [
    {
      detector: 'volume',
      severity: ratio > cfg.high_factor ? 'high' : 'medium',
      confidence: Math.min(0.95, 0.6 + (ratio - 1) / 10),
      evidence: { records: v.records, bytes: v.bytes, results: v.results, max_records: lim.records, max_bytes: lim.bytes, basis: lim.basis, ratio: Math.round(ratio * 100) / 100 },
    },
  ];
}
