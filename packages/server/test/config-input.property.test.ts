/**
 * Hostile configuration (issue 9): random and malicious config files and environment overrides
 * either load or fail with CONFIG_INVALID — never another error, never a polluted prototype,
 * never an alias bomb expanded.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { isMandateError } from '@mandate/core';
import { ENV_OVERRIDES, loadConfig } from '../src/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'mandate-config-fuzz-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

function load(text: string, env: Record<string, string> = {}): 'ok' | 'invalid' {
  const file = join(dir, `c${++n}.yaml`);
  writeFileSync(file, text);
  try {
    loadConfig(file, env);
    return 'ok';
  } catch (e) {
    if (isMandateError(e) && e.code === 'CONFIG_INVALID') return 'invalid';
    throw e;
  }
}

const SECTIONS = ['server', 'tokens', 'identity', 'policies', 'approvals', 'audit', 'limits', 'log', 'authzen', 'behaviour', 'mcp', 'tasks', 'postgres', 'environment', 'store', 'data_dir'];
const hostile = fc.oneof(fc.constantFrom('__proto__', 'constructor', 'prototype'), fc.string({ maxLength: 6 }));
const value: fc.Arbitrary<unknown> = fc.letrec<{ v: unknown }>((tie) => ({
  v: fc.oneof({ depthSize: 'small' }, fc.jsonValue({ maxDepth: 1 }), fc.array(tie('v'), { maxLength: 3 }), fc.dictionary(hostile, tie('v'), { maxKeys: 4 })),
})).v;

describe('hostile configuration', () => {
  it('loads or refuses with CONFIG_INVALID, for random files and environment overrides', () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.oneof(fc.constantFrom(...SECTIONS), hostile), value, { maxKeys: 5 }),
        fc.dictionary(fc.constantFrom(...Object.keys(ENV_OVERRIDES)), fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('-1', '1e309', 'true', '0x10', '{}', '999999999999')), { maxKeys: 3 }),
        (cfg, env) => {
          load(JSON.stringify(cfg), env);
          expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
        },
      ),
      { numRuns: 400, seed: 20261123 },
    );
  });

  it('refuses malformed YAML, duplicate keys, non-mappings, alias bombs and prototype keys', () => {
    const bomb = ['a: &a ["x","x","x","x","x","x","x","x","x"]', ...'bcdefghi'.split('').map((c, i) => `${c}: &${c} [${Array(9).fill('*' + 'abcdefgh'[i]).join(',')}]`), 'server: *i'].join('\n');
    for (const text of [
      'server: [unclosed',
      'server:\n  port: 1\nserver:\n  port: 2\n',
      '- a\n- b\n',
      '"just a string"',
      '42',
      bomb,
      '__proto__:\n  polluted: true\n',
      '{"__proto__": {"polluted": true}}',
      'constructor:\n  prototype:\n    polluted: true\n',
      'server:\n  port: 99999999\n',
      'server:\n  port: "8787; rm -rf /"\n',
      'log:\n  level: "debug\\u0000"\n',
      'unknown_section: {}\n',
      '\u0000\u0001\u0002',
    ]) {
      expect(load(text), text.slice(0, 40)).toBe('invalid');
      expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    }
    expect(load('')).toBe('ok');
  });
});
