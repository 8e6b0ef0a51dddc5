import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../src/exit-codes.ts';
import { cli, EXAMPLE_POLICIES } from './support.ts';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mandate-cli-test-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function policyDir(name: string, files: Record<string, string>): Promise<string> {
  const d = join(dir, name);
  await mkdir(d);
  for (const [file, text] of Object.entries(files)) await writeFile(join(d, file), text);
  return d;
}

describe('mandate (no arguments, help, unknown commands)', () => {
  it('prints the usage and exits 2 without arguments', async () => {
    const r = await cli([]);
    expect(r.code).toBe(EXIT.USAGE);
    expect(r.code).toBe(2);
    expect(r.out).toContain('usage: mandate <command>');
    expect(r.out).toContain('exit codes:');
  });

  it('prints the usage and exits 0 for help', async () => {
    for (const arg of ['help', '--help', '-h']) {
      const r = await cli([arg]);
      expect(r.code, arg).toBe(0);
      expect(r.out).toContain('usage: mandate <command>');
    }
  });

  it('exits 2 for an unknown command and names it', async () => {
    const r = await cli(['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.err).toContain('unknown command "frobnicate"');
    expect(r.err).toContain('usage: mandate');
  });

  it('prints the version of its package with --version, -v and version, and exits 0', async () => {
    const { version } = JSON.parse(await readFile(join(import.meta.dirname, '..', 'package.json'), 'utf8')) as { version: string };
    expect(version).toMatch(/^\d+\.\d+\.\d+/);
    for (const arg of ['--version', '-v', 'version']) {
      const r = await cli([arg]);
      expect(r.code, arg).toBe(0);
      expect(r.out.trim(), arg).toBe(version);
      expect(r.err, arg).toBe('');
    }
  });

  it('prints a command’s help with --help and exits 0', async () => {
    const r = await cli(['audit', '--help']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('mandate audit verify');
  });
});

describe('mandate policy validate', () => {
  it('exits 0 for the example policies', async () => {
    const r = await cli(['policy', 'validate', EXAMPLE_POLICIES]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^ok: 6 policies, 6 classified tools, version sha256:[0-9a-f]{64}$/);
    expect(r.err).toBe('');
  });

  it('exits 1 and prints the problem for a policy that reads context.nonexistent', async () => {
    const d = await policyDir('bad-context', {
      'bad.cedar': `@id("bad.reads-nonexistent")
permit (principal, action == Mandate::Action::"call_tool", resource)
when { context.nonexistent == "x" };
`,
    });
    const r = await cli(['policy', 'validate', d]);
    expect(r.code).toBe(1);
    expect(r.err).toContain('bad.cedar');
    expect(r.err).toContain('bad.reads-nonexistent');
    expect(r.err).toContain('nonexistent');
    expect(r.err).toMatch(/invalid: \d+ problem\(s\)/);
    expect(r.out).toBe('');
  });

  it('exits 1 and lists every problem, not just the first', async () => {
    const d = await policyDir('two-problems', {
      'a.cedar': `@id("a.unknown-attr")
permit (principal, action == Mandate::Action::"call_tool", resource) when { resource.nope == 1 };`,
      'b.cedar': `@id("b.unknown-context")
forbid (principal, action == Mandate::Action::"call_tool", resource) when { context.missing == 1 };`,
    });
    const r = await cli(['policy', 'validate', d]);
    expect(r.code).toBe(1);
    expect(r.err).toContain('a.cedar [a.unknown-attr]');
    expect(r.err).toContain('b.cedar [b.unknown-context]');
    expect(r.err).toContain('invalid: 2 problem(s)');
  });

  it('exits 1 for a file that is not Cedar', async () => {
    const d = await policyDir('not-cedar', { 'c.cedar': 'permit (principal, action, resource) when { this is not cedar };' });
    const r = await cli(['policy', 'validate', d]);
    expect(r.code).toBe(1);
    expect(r.err).toContain('c.cedar');
  });

  it('exits 1 for a tool catalogue that is not YAML', async () => {
    const d = await policyDir('bad-yaml', { 'tools.yaml': 'tools: [unclosed' });
    const r = await cli(['policy', 'validate', d]);
    expect(r.code).toBe(1);
    expect(r.err).toContain('tools.yaml');
  });

  it('exits 1 for a folder that does not exist', async () => {
    const r = await cli(['policy', 'validate', join(dir, 'missing')]);
    expect(r.code).toBe(1);
    expect(r.err).toContain('cannot read policy folder');
  });

  it.each([
    ['an unknown option', ['policy', 'validate', '--bogus', EXAMPLE_POLICIES]],
    ['a missing folder argument', ['policy', 'validate']],
    ['two folders', ['policy', 'validate', EXAMPLE_POLICIES, EXAMPLE_POLICIES]],
    ['an unknown sub-command', ['policy', 'compile', EXAMPLE_POLICIES]],
  ])('exits 2 for %s', async (_what, argv) => {
    const r = await cli(argv);
    expect(r.code).toBe(2);
    expect(r.err).toContain('mandate policy validate');
  });
});

describe('mandate audit verify usage errors', () => {
  it('exits 2 for an unknown option', async () => {
    const r = await cli(['audit', 'verify', '--nope']);
    expect(r.code).toBe(2);
    expect(r.err).toContain('mandate audit verify');
  });

  it('exits 2 when there is no database', async () => {
    const r = await cli(['audit', 'verify', '--data-dir', join(dir, 'no-such-dir')]);
    expect(r.code).toBe(2);
    expect(r.err).toContain('no audit database');
  });

  it('exits 2 without the verify sub-command', async () => {
    expect((await cli(['audit'])).code).toBe(2);
    expect((await cli(['audit', 'check'])).code).toBe(2);
  });
});

describe('mandate config schema', () => {
  it('prints the configuration JSON Schema and exits 0', async () => {
    const r = await cli(['config', 'schema']);
    expect(r.code).toBe(0);
    const schema = JSON.parse(r.out) as { type?: string; properties?: Record<string, unknown>; additionalProperties?: unknown };
    expect(schema.type).toBe('object');
    expect(Object.keys(schema.properties ?? {})).toEqual(expect.arrayContaining(['environment', 'data_dir', 'server', 'tokens', 'identity', 'policies', 'audit', 'limits', 'log']));
    // unknown keys are rejected, so the schema says so
    expect(schema.additionalProperties).toBe(false);
  });

  it('exits 2 for extra arguments or a missing sub-command', async () => {
    expect((await cli(['config', 'schema', 'extra'])).code).toBe(2);
    expect((await cli(['config'])).code).toBe(2);
  });
});

describe('mandate agent', () => {
  it('exits 2 without an operator key anywhere', async () => {
    const r = await cli(['agent', 'list', '--data-dir', join(dir, 'no-key-here')]);
    expect(r.code).toBe(2);
    expect(r.err).toContain('no operator API key');
  });

  it('exits 4 when the server cannot be reached', async () => {
    const r = await cli(['agent', 'list', '--url', 'http://127.0.0.1:1', '--api-key', `mk_${'A'.repeat(43)}`]);
    expect(r.code).toBe(4);
    expect(r.err).toContain('cannot reach Mandate');
  });

  it('exits 2 for an unknown sub-command or a missing --id', async () => {
    const key = ['--api-key', `mk_${'A'.repeat(43)}`];
    expect((await cli(['agent', 'rename', ...key])).code).toBe(2);
    expect((await cli(['agent', 'disable', ...key])).code).toBe(2);
    expect((await cli(['agent', 'add', '--id', 'spiffe://x/y', ...key])).code).toBe(2);
  });
});
