import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REASON_CODES } from '@mandate/core';
import { configJsonSchema } from '../src/index.ts';

const ROOT = join(import.meta.dirname, '..', '..', '..');

describe('docs stay true', () => {
  it('docs/config.schema.json is generated from the current config schema (npm run docs)', () => {
    const committed = JSON.parse(readFileSync(join(ROOT, 'docs', 'config.schema.json'), 'utf8')) as unknown;
    expect(committed).toEqual(configJsonSchema());
  });

  it('the README documents every reason code', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const missing = REASON_CODES.filter((c) => !readme.includes(`\`${c}\``));
    expect(missing).toEqual([]);
  });
});
