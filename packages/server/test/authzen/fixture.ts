/**
 * A small generic policy domain for the AuthZEN tests, written to a temp folder. It is built so
 * that the AuthZEN 1.0 specification's own examples get the answers the specification shows:
 * alice@example.com may `read` documents 1 and 3 but not 2 (§7.1.2.1), and may `can_read` the
 * three documents of the boxcarring example (§7.1).
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import { startHarness, type Harness, type HarnessOptions } from '../support.ts';

export const ALICE = 'alice@example.com';
export const BOB = 'bob@example.com';

export const POLICIES = `
@id("docs.read")
permit (principal is App::User, action in [App::Action::"read", App::Action::"can_read"], resource is App::Document)
when { principal has email && resource has readers && resource.readers.contains(principal.email) };

@id("docs.edit")
permit (principal is App::User, action == App::Action::"can_edit", resource is App::Document)
when { principal has department && principal.department == "Engineering" };

@id("reports.view")
permit (principal, action == App::Action::"can_view_report", resource is App::Report)
when { principal has department && principal.department == "Sales" };

@id("printer.print")
permit (principal, action == App::Action::"can_print", resource)
when { context has location && context.location == "office" };

@id("accounts.read")
permit (principal is App::User, action == App::Action::"can_read", resource is App::Account);
`;

export const ENTITIES = [
  { uid: { type: 'App::User', id: ALICE }, attrs: { email: ALICE, department: 'Sales' }, parents: [] },
  { uid: { type: 'App::User', id: BOB }, attrs: { email: BOB, department: 'Engineering' }, parents: [] },
  ...['1', '3', 'boxcarring.md', 'subject-search.md', 'resource-search.md'].map((id) => ({ uid: { type: 'App::Document', id }, attrs: { readers: [ALICE] }, parents: [] })),
  { uid: { type: 'App::Document', id: '2' }, attrs: { readers: [BOB] }, parents: [] },
];

/** a PEP token configured in authzen.clients (only its hash is in the config) */
export const PEP_TOKEN = 'pep-token-for-the-tests-0123456789';
export const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');

export interface AuthzenFixture {
  readonly dir: string;
  readonly config: Record<string, unknown>;
  cleanup(): void;
}

/** Writes a policy folder (and optionally schema and entities) for authzen.* and returns the config section. */
export function writeDomain(files: { policies?: Record<string, string>; schema?: string; entities?: unknown } = {}, extra: Record<string, unknown> = {}): AuthzenFixture {
  const dir = mkdtempSync(join(tmpdir(), 'mandate-authzen-'));
  const pdir = join(dir, 'policies');
  mkdirSync(pdir);
  for (const [name, text] of Object.entries(files.policies ?? { 'docs.cedar': POLICIES })) writeFileSync(join(pdir, name), text);
  const config: Record<string, unknown> = { policies_dir: pdir, clients: [{ name: 'test-pep', token_sha256: sha256(PEP_TOKEN) }], ...extra };
  if (files.schema !== undefined) {
    writeFileSync(join(dir, 'schema.cedarschema'), files.schema);
    config['schema_file'] = join(dir, 'schema.cedarschema');
  }
  const entities = files.entities === undefined ? ENTITIES : files.entities;
  writeFileSync(join(dir, 'entities.json'), JSON.stringify(entities));
  config['entities_file'] = join(dir, 'entities.json');
  return { dir, config, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface AuthzenHarness extends Harness {
  readonly fixture: AuthzenFixture;
  /** POST as the configured PEP (Bearer PEP_TOKEN) */
  pep(url: string, body: unknown, headers?: Record<string, string>): Promise<LightMyRequestResponse>;
  evaluation(body: unknown, headers?: Record<string, string>): Promise<LightMyRequestResponse>;
  evaluations(body: unknown, headers?: Record<string, string>): Promise<LightMyRequestResponse>;
}

export async function startAuthzen(fixture: AuthzenFixture = writeDomain(), opts: HarnessOptions = {}): Promise<AuthzenHarness> {
  const h = await startHarness({ ...opts, config: { ...opts.config, authzen: fixture.config as never } });
  const pep = (url: string, body: unknown, headers: Record<string, string> = {}) =>
    h.inject({ method: 'POST', url, headers: { authorization: `Bearer ${PEP_TOKEN}`, 'content-type': 'application/json', ...headers }, payload: JSON.stringify(body) });
  return {
    ...h,
    fixture,
    pep,
    evaluation: (body, headers) => pep('/access/v1/evaluation', body, headers),
    evaluations: (body, headers) => pep('/access/v1/evaluations', body, headers),
    async close() {
      try {
        await h.close();
      } finally {
        fixture.cleanup();
      }
    },
  };
}
