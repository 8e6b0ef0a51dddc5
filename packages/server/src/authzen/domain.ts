/**
 * The generic policy domain in force: policies, optional schema and entities read from the
 * configured files, plus the entities operators add through the API (persisted as a JSON file in
 * the data folder). Every change builds a new domain and swaps it in whole; a reload that fails
 * keeps the domain as it was.
 */
import { existsSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { EntityStore, MandateError, PolicySet, SchemaInfo, TypeMapper, parseEntities, type CedarEntityJson, type EntityUid, type GenericDomain, type Hasher } from '@mandate/core';
import { readPolicyDir } from '../policies.ts';
import type { AuthzenConfig } from './config.ts';

/** the API layer of the entity store, in the data folder */
export const AUTHZEN_ENTITIES_FILE = 'authzen-entities.json';
const MAX_FILE = 64 * 1024 * 1024;
/** a decision holds its domain for milliseconds; a minute is a wide margin */
const RETIRE_AFTER_MS = 60_000;

function readText(file: string, what: string): string {
  try {
    if (statSync(file).size > MAX_FILE) throw new Error(`larger than ${MAX_FILE} bytes`);
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new MandateError('CONFIG_INVALID', `cannot read the AuthZEN ${what} ${file}: ${(e as Error).message}`);
  }
}

function readJson(file: string, what: string): unknown {
  const text = readText(file, what);
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new MandateError('CONFIG_INVALID', `the AuthZEN ${what} ${file} is not JSON: ${(e as Error).message}`);
  }
}

function asConfigError(e: unknown): never {
  if (e instanceof MandateError && e.code === 'INVALID_ARGUMENT') throw new MandateError('CONFIG_INVALID', e.message);
  throw e;
}

export class AuthzenDomainHolder {
  private domain: GenericDomain;
  private readonly cfg: AuthzenConfig;
  private readonly apiFile: string;
  private readonly hasher: Hasher;

  constructor(cfg: AuthzenConfig, dataDir: string, hasher: Hasher) {
    this.cfg = cfg;
    this.apiFile = join(dataDir, AUTHZEN_ENTITIES_FILE);
    this.hasher = hasher;
    this.domain = this.load();
  }

  get current(): GenericDomain {
    return this.domain;
  }

  /** Re-reads schema, policies and the entities file; keeps the API layer. */
  reload(): GenericDomain {
    const next = this.load(this.domain.entities.apiLayer());
    this.swap(next);
    return next;
  }

  /** Adds or replaces entities in the API layer; returns how many the layer holds. */
  upsert(input: unknown): number {
    const list = this.parse(input);
    return this.commit(this.domain.entities.upsert(list));
  }

  /** Replaces the whole API layer. */
  replace(input: unknown): number {
    return this.commit(this.domain.entities.replaceApi(this.parse(input)));
  }

  /** Removes one entity the API layer holds; NOT_FOUND for a file entity or an unknown uid. */
  remove(uid: EntityUid): number {
    const next = this.domain.entities.remove(uid);
    if (next === undefined) throw new MandateError('NOT_FOUND', `${uid.type}::${JSON.stringify(uid.id)} is not an entity added through the API`);
    return this.commit(next);
  }

  private parse(input: unknown): CedarEntityJson[] {
    return parseEntities(input, 'entities', this.domain.schema?.schema);
  }

  private commit(entities: EntityStore): number {
    const api = entities.apiLayer();
    if (api.length > this.cfg.max_api_entities) {
      throw new MandateError('LIMIT_EXCEEDED', `the API layer would hold ${api.length} entities; at most ${this.cfg.max_api_entities} (authzen.max_api_entities)`);
    }
    // persisted before it is in force: a restart never loses a change that was answered
    const tmp = `${this.apiFile}.tmp`;
    writeFileSync(tmp, JSON.stringify(api, null, 1) + '\n', { mode: 0o600 });
    renameSync(tmp, this.apiFile);
    this.domain = { ...this.domain, entities };
    return api.length;
  }

  private swap(next: GenericDomain): void {
    const old = this.domain;
    this.domain = next;
    if (old.policies !== next.policies) setTimeout(() => old.policies.dispose(), RETIRE_AFTER_MS).unref();
  }

  private load(api?: readonly CedarEntityJson[]): GenericDomain {
    const cfg = this.cfg;
    const types = new TypeMapper(cfg.namespace, cfg.types);
    let schema: SchemaInfo | undefined;
    if (cfg.schema_file !== undefined) {
      const file = resolve(cfg.schema_file);
      schema = SchemaInfo.parse(file.endsWith('.json') ? (readJson(file, 'schema') as never) : readText(file, 'schema'));
    }
    const sources = cfg.policies_dir === undefined ? [] : readPolicyDir(resolve(cfg.policies_dir)).sources;
    const policies = PolicySet.load(sources, {}, this.hasher, { schema: schema?.schema ?? null, actionAncestors: schema?.actionAncestors ?? new Map() });
    try {
      const file = cfg.entities_file === undefined ? [] : parseEntities(readJson(resolve(cfg.entities_file), 'entities file'), cfg.entities_file, schema?.schema);
      let apiLayer: CedarEntityJson[];
      if (api !== undefined) apiLayer = parseEntities(api, 'the API entities', schema?.schema);
      else apiLayer = existsSync(this.apiFile) ? parseEntities(readJson(this.apiFile, 'API entities'), this.apiFile, schema?.schema) : [];
      return { policies, schema, entities: EntityStore.of(file, apiLayer), types };
    } catch (e) {
      policies.dispose();
      return asConfigError(e);
    }
  }
}
