import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REASON_CODES } from '@mandate/core';
import { parse as parseYaml } from 'yaml';
import { configJsonSchema, configReference, parseConfig } from '../src/index.ts';

const ROOT = join(import.meta.dirname, '..', '..', '..');

describe('docs stay true', () => {
  it('docs/config.schema.json is generated from the current config schema (npm run docs)', () => {
    const committed = JSON.parse(readFileSync(join(ROOT, 'docs', 'config.schema.json'), 'utf8')) as unknown;
    expect(committed).toEqual(configJsonSchema());
  });

  it('docs/configuration.md is generated from the current config schema (npm run docs)', () => {
    expect(readFileSync(join(ROOT, 'docs', 'configuration.md'), 'utf8')).toBe(configReference());
  });

  it('the configuration reference has a row for every key of the schema, with its default', () => {
    const reference = configReference();
    expect(reference).toContain('| `server.port` | integer | `8787` |');
    expect(reference).toContain('| `audit.durability` | `"full"`, `"normal"` | `"full"` |');
    expect(reference).toContain('| `identity.trust_bundles[].spiffe_bundle_file` | string |');
    expect(reference).toContain('| `mcp.upstreams[].transport` | `"stdio"` / `"http"` |');
    // every leaf key of the JSON Schema is a row
    const leaves: string[] = [];
    const walk = (s: Record<string, unknown>, key: string): void => {
      const props = s['properties'] as Record<string, Record<string, unknown>> | undefined;
      if (props) for (const [k, c] of Object.entries(props)) walk(c, key === '' ? k : `${key}.${k}`);
      else leaves.push(key);
    };
    walk(configJsonSchema() as Record<string, unknown>, '');
    expect(leaves.length).toBeGreaterThan(100);
    expect(leaves.filter((k) => !reference.includes(`| \`${k}\` |`))).toEqual([]);
  });

  it('every key of the configuration schema has a description, at every depth (list items and maps included)', () => {
    type Node = { description?: string; properties?: Record<string, Node>; items?: Node; additionalProperties?: boolean | Node; anyOf?: Node[]; oneOf?: Node[] };
    const missing: string[] = [];
    let keys = 0;
    const walk = (s: Node, key: string): void => {
      if (key !== '') {
        keys += 1;
        if (s.description === undefined || s.description.trim() === '') missing.push(key);
      }
      for (const alt of [s, ...(s.anyOf ?? []), ...(s.oneOf ?? [])]) {
        for (const [k, c] of Object.entries(alt.properties ?? {})) walk(c, key === '' ? k : `${key}.${k}`);
        for (const item of alt.items ? [alt.items, ...(alt.items.anyOf ?? []), ...(alt.items.oneOf ?? [])] : []) {
          for (const [k, c] of Object.entries(item.properties ?? {})) walk(c, `${key}[].${k}`);
        }
        if (typeof alt.additionalProperties === 'object') for (const [k, c] of Object.entries(alt.additionalProperties.properties ?? {})) walk(c, `${key}.<name>.${k}`);
      }
    };
    walk(configJsonSchema() as Node, '');
    expect(keys).toBeGreaterThan(250);
    expect([...new Set(missing)]).toEqual([]);
  });

  it('the several-nodes example (docs/operations.md) is a valid configuration and starts each node on a data folder of its own', () => {
    const md = readFileSync(join(ROOT, 'docs', 'operations.md'), 'utf8');
    const section = md.slice(md.indexOf('## Several nodes'));
    const block = (lang: string): string => {
      const m = new RegExp('```' + lang + '[^\\n]*\\n([\\s\\S]*?)```').exec(section);
      if (m === null) throw new Error(`no ${lang} block in the several-nodes section`);
      return m[1] ?? '';
    };
    const config = parseConfig(parseYaml(block('yaml')));
    expect(config.data_dir).not.toBe(parseConfig({}).data_dir);
    const starts = block('sh').split('\n').filter((l) => l.includes('npm start'));
    expect(starts.length).toBeGreaterThanOrEqual(3);
    const dirs = starts.map((l) => /--data-dir (\S+)/.exec(l)?.[1]);
    expect(dirs.every((d) => d !== undefined)).toBe(true);
    expect(new Set(dirs).size).toBe(starts.length);
  });

  it('the HTTP API reference (docs/http-api.md) documents every reason code', () => {
    const reference = readFileSync(join(ROOT, 'docs', 'http-api.md'), 'utf8');
    const missing = REASON_CODES.filter((c) => !reference.includes(`\`${c}\``));
    expect(missing).toEqual([]);
  });

  it('docs/threat-model.md maps every THREATS.md row to an adversarial test named after it, and that test exists', () => {
    // the rows of THREATS.md (OWASP ASI / NHI, STRIDE T4 / T8, the traps paragraph, evasion of behaviour monitoring)
    const ROWS = ['ASI01', 'ASI02', 'ASI03', 'ASI04', 'ASI05', 'ASI07', 'ASI08', 'ASI09', 'ASI10', 'NHI1', 'NHI2/NHI7', 'NHI4', 'NHI5', 'NHI8/NHI9', 'T8', 'T4', 'traps', 'evasion'];
    const model = readFileSync(join(ROOT, 'docs', 'threat-model.md'), 'utf8');
    const titles: string[] = [];
    const walk = (d: string) => {
      for (const f of readdirSync(d)) {
        if (f === 'node_modules' || f.startsWith('.')) continue;
        const p = join(d, f);
        if (statSync(p).isDirectory()) walk(p);
        else if (f.endsWith('.test.ts')) for (const m of readFileSync(p, 'utf8').matchAll(/\bit\(\s*(['"`])(.*?)\1/g)) titles.push(m[2] ?? '');
      }
    };
    walk(join(ROOT, 'packages'));
    for (const row of ROWS) {
      expect(model, `threat-model.md has no row for ${row}`).toMatch(new RegExp(`^\\| ${row.replace('/', '\\/')}[ :]`, 'm'));
      expect(titles.filter((t) => t.startsWith(`${row} `) || t.startsWith(`${row}:`)), `no test named after ${row}`).not.toEqual([]);
    }
  });
});
