/**
 * The AuthZEN entity store: the users, services, groups and resources operators load for the
 * generic PDP, in Cedar's entities JSON format. Two layers: the operator's file and the changes
 * made through the API (persisted by the server in the data folder); an API entity replaces a
 * file entity with the same uid. Immutable: a change builds a new store that is swapped in.
 *
 * A decision passes Cedar only the entities it can reach: principal, resource, their ancestors
 * and the entities their attributes refer to (Cedar's cost grows with every entity it converts).
 */
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { MandateError } from '../errors.ts';
import { checkJsonBounds, isJsonObject, type JsonLimits, type JsonObject, type JsonValue } from '../json.ts';
import { entityRefs, isCedarTypeName, uidKey, type EntityUid } from './cedar-json.ts';

export interface CedarEntityJson {
  readonly uid: EntityUid;
  readonly attrs: JsonObject;
  readonly parents: readonly EntityUid[];
  readonly tags?: JsonObject;
}

interface Stored {
  readonly entity: CedarEntityJson;
  /** uid keys of its parents and of the entities its attributes name */
  readonly refs: readonly string[];
}

export const ENTITY_LIMITS: JsonLimits = { maxDepth: 16, maxEntries: 10_000, maxStringLength: 65_536, maxNodes: 100_000 };
/** the most entities one decision passes to Cedar */
export const MAX_SLICE = 512;

function uidOf(v: unknown, where: string): EntityUid {
  const o = isJsonObject(v) && isJsonObject(v['__entity']) ? v['__entity'] : v;
  if (!isJsonObject(o) || typeof o['type'] !== 'string' || typeof o['id'] !== 'string') {
    throw new MandateError('INVALID_ARGUMENT', `${where} must be {"type": "…", "id": "…"}`);
  }
  if (!isCedarTypeName(o['type'])) throw new MandateError('INVALID_ARGUMENT', `${where}.type "${o['type']}" is not a Cedar entity type name`);
  return { type: o['type'], id: o['id'] };
}

/**
 * Checks the shape of a Cedar entities array (and, with a schema, Cedar's own parse against it).
 * Action entities are refused: the action hierarchy comes from the schema alone.
 */
export function parseEntities(input: unknown, label: string, schema?: cedar.Schema): CedarEntityJson[] {
  if (!Array.isArray(input)) throw new MandateError('INVALID_ARGUMENT', `${label} must be a JSON array of Cedar entities`);
  checkJsonBounds(input, { ...ENTITY_LIMITS, maxEntries: Math.max(ENTITY_LIMITS.maxEntries, input.length), maxNodes: Math.max(ENTITY_LIMITS.maxNodes, input.length * 64) }, label);
  const seen = new Set<string>();
  const out = input.map((raw: unknown, i): CedarEntityJson => {
    const where = `${label}[${i}]`;
    if (!isJsonObject(raw)) throw new MandateError('INVALID_ARGUMENT', `${where} must be an object`);
    const uid = uidOf(raw['uid'], `${where}.uid`);
    if (uid.type === 'Action' || uid.type.endsWith('::Action')) throw new MandateError('INVALID_ARGUMENT', `${where}: action entities come from the schema, not the entity store`);
    const key = uidKey(uid);
    if (seen.has(key)) throw new MandateError('INVALID_ARGUMENT', `${where}: ${uid.type}::${JSON.stringify(uid.id)} appears twice`);
    seen.add(key);
    const attrs = raw['attrs'] ?? {};
    if (!isJsonObject(attrs)) throw new MandateError('INVALID_ARGUMENT', `${where}.attrs must be an object`);
    const parents = raw['parents'] ?? [];
    if (!Array.isArray(parents)) throw new MandateError('INVALID_ARGUMENT', `${where}.parents must be an array`);
    const tags = raw['tags'];
    if (tags !== undefined && !isJsonObject(tags)) throw new MandateError('INVALID_ARGUMENT', `${where}.tags must be an object`);
    return { uid, attrs, parents: parents.map((p: unknown, j) => uidOf(p, `${where}.parents[${j}]`)), ...(tags === undefined ? {} : { tags }) };
  });
  if (out.length > 0) {
    const check = cedar.checkParseEntities({ entities: out as unknown as cedar.Entities, schema: schema ?? null });
    if (check.type !== 'success') throw new MandateError('INVALID_ARGUMENT', `${label}: ${check.errors.map((e) => e.message).join('; ')}`);
  }
  return out;
}

function stored(entity: CedarEntityJson): Stored {
  const refs = [...entity.parents, ...entityRefs(entity.attrs as JsonValue)].map(uidKey);
  return { entity, refs };
}

export class EntityStore {
  private readonly file: ReadonlyMap<string, Stored>;
  private readonly api: ReadonlyMap<string, Stored>;

  private constructor(file: ReadonlyMap<string, Stored>, api: ReadonlyMap<string, Stored>) {
    this.file = file;
    this.api = api;
  }

  static empty(): EntityStore {
    return new EntityStore(new Map(), new Map());
  }

  /** from already-parsed layers (see parseEntities) */
  static of(file: readonly CedarEntityJson[], api: readonly CedarEntityJson[] = []): EntityStore {
    const index = (list: readonly CedarEntityJson[]) => new Map(list.map((e) => [uidKey(e.uid), stored(e)]));
    return new EntityStore(index(file), index(api));
  }

  get size(): number {
    let n = this.file.size;
    for (const k of this.api.keys()) if (!this.file.has(k)) n += 1;
    return n;
  }

  get(uid: EntityUid): CedarEntityJson | undefined {
    return this.lookup(uidKey(uid))?.entity;
  }

  /** every entity in force (API layer over file layer), sorted by type then id */
  list(): CedarEntityJson[] {
    const all = new Map(this.file);
    for (const [k, v] of this.api) all.set(k, v);
    return [...all.values()].map((s) => s.entity).sort((a, b) => (uidKey(a.uid) < uidKey(b.uid) ? -1 : uidKey(a.uid) > uidKey(b.uid) ? 1 : 0));
  }

  apiLayer(): CedarEntityJson[] {
    return [...this.api.values()].map((s) => s.entity);
  }

  isApiEntity(uid: EntityUid): boolean {
    return this.api.has(uidKey(uid));
  }

  withFile(file: readonly CedarEntityJson[]): EntityStore {
    return new EntityStore(new Map(file.map((e) => [uidKey(e.uid), stored(e)])), this.api);
  }

  /** the API layer with these entities added or replaced */
  upsert(entities: readonly CedarEntityJson[]): EntityStore {
    const api = new Map(this.api);
    for (const e of entities) api.set(uidKey(e.uid), stored(e));
    return new EntityStore(this.file, api);
  }

  replaceApi(entities: readonly CedarEntityJson[]): EntityStore {
    return new EntityStore(this.file, new Map(entities.map((e) => [uidKey(e.uid), stored(e)])));
  }

  /** the API layer without this entity; undefined when the API layer does not hold it */
  remove(uid: EntityUid): EntityStore | undefined {
    const key = uidKey(uid);
    if (!this.api.has(key)) return undefined;
    const api = new Map(this.api);
    api.delete(key);
    return new EntityStore(this.file, api);
  }

  /**
   * The entities a request needs: the given ones (principal and resource as the request shaped
   * them), then everything reachable from them through parents and entity references, from
   * this store. Bounded: an entity past the bound is left out, and a policy that needs it fails
   * to evaluate, which is a deny.
   */
  slice(seeds: readonly CedarEntityJson[], max = MAX_SLICE): CedarEntityJson[] {
    const out = new Map<string, CedarEntityJson>();
    const queue: string[] = [];
    for (const e of seeds) {
      const key = uidKey(e.uid);
      if (out.has(key)) continue;
      out.set(key, e);
      queue.push(...stored(e).refs);
    }
    while (queue.length > 0 && out.size < max) {
      const key = queue.shift() as string;
      if (out.has(key)) continue;
      const s = this.lookup(key);
      if (s === undefined) continue;
      out.set(key, s.entity);
      queue.push(...s.refs);
    }
    return [...out.values()];
  }

  private lookup(key: string): Stored | undefined {
    return this.api.get(key) ?? this.file.get(key);
  }
}
