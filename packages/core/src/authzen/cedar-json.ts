/**
 * From AuthZEN's JSON to Cedar's: entity types, action uids and attribute values.
 *
 * Properties and context are read as Cedar's JSON attribute format (the format of a Cedar
 * entities file), so `{"__entity": {"type", "id"}}` and `{"__extn": …}` keep their Cedar meaning.
 * What Cedar cannot hold is handled here, before Cedar sees it: a `null` member is omitted (an
 * absent property, as §11 of AuthZEN asks), a fractional number becomes a Cedar `decimal` when it
 * has at most four fractional digits, and anything else is an error naming the value.
 */
import { MandateError } from '../errors.ts';
import type { JsonObject, JsonValue } from '../json.ts';

export interface EntityUid {
  readonly type: string;
  readonly id: string;
}

export const CEDAR_IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
const CEDAR_PATH = /^[A-Za-z_][A-Za-z0-9_]*(::[A-Za-z_][A-Za-z0-9_]*)*$/;
const DECIMAL = /^-?\d{1,15}\.\d{1,4}$/;

export function isCedarTypeName(name: string): boolean {
  return CEDAR_PATH.test(name) && !name.split('::').includes('__cedar');
}

/** `user` -> `User`, `api_key` -> `ApiKey`, `user-group` -> `UserGroup`; undefined when not expressible. */
export function pascalCase(type: string): string | undefined {
  const name = type
    .split(/[^A-Za-z0-9]+/)
    .filter((p) => p.length > 0)
    .map((p) => p[0]?.toUpperCase() + p.slice(1))
    .join('');
  return CEDAR_IDENT.test(name) ? name : undefined;
}

/**
 * AuthZEN `type` -> Cedar entity type: an explicit mapping first, then a type that already is a
 * Cedar path (`App::User`) as it is, else `<namespace>::<PascalCase(type)>`.
 */
export class TypeMapper {
  readonly namespace: string;
  private readonly explicit: ReadonlyMap<string, string>;
  private readonly cache = new Map<string, string | undefined>();

  constructor(namespace: string, explicit: Readonly<Record<string, string>> = {}) {
    if (namespace !== '' && !isCedarTypeName(namespace)) throw new MandateError('CONFIG_INVALID', `"${namespace}" is not a Cedar namespace`);
    for (const [from, to] of Object.entries(explicit)) {
      if (!isCedarTypeName(to) || to.split('::').at(-1) === 'Action') throw new MandateError('CONFIG_INVALID', `type "${from}" maps to "${to}", which is not a Cedar entity type name`);
    }
    this.namespace = namespace;
    this.explicit = new Map(Object.entries(explicit));
  }

  /** the Cedar entity type of an AuthZEN type; throws MALFORMED_REQUEST when there is none */
  entityType(type: string): string {
    let mapped = this.cache.get(type);
    if (mapped === undefined && !this.cache.has(type)) {
      mapped = this.map(type);
      if (this.cache.size < 1024) this.cache.set(type, mapped);
    }
    if (mapped === undefined) throw new MandateError('MALFORMED_REQUEST', `type "${type}" has no Cedar entity type (configure authzen.types)`);
    return mapped;
  }

  actionUid(name: string): EntityUid {
    return { type: this.namespace === '' ? 'Action' : `${this.namespace}::Action`, id: name };
  }

  private map(type: string): string | undefined {
    const explicit = this.explicit.get(type);
    if (explicit !== undefined) return explicit;
    if (type.includes('::')) return isCedarTypeName(type) && type.split('::').at(-1) !== 'Action' ? type : undefined;
    const name = pascalCase(type);
    if (name === undefined || name === 'Action') return undefined;
    return this.namespace === '' ? name : `${this.namespace}::${name}`;
  }
}

function isEscape(o: JsonObject): boolean {
  const keys = Object.keys(o);
  return keys.length === 1 && (keys[0] === '__entity' || keys[0] === '__extn');
}

function number(v: number, path: string): JsonValue {
  if (Number.isSafeInteger(v)) return v;
  const text = String(v);
  if (!Number.isInteger(v) && DECIMAL.test(text)) return { __extn: { fn: 'decimal', arg: text } };
  throw new MandateError('MALFORMED_REQUEST', `${path} = ${text} cannot be a Cedar value (Cedar holds whole numbers up to 2^53 here, and decimals with at most 4 fractional digits)`);
}

/** One JSON value as a Cedar attribute value (see the file comment). */
export function cedarValue(v: JsonValue, path: string): JsonValue {
  if (v === null) throw new MandateError('MALFORMED_REQUEST', `${path} is null, which Cedar cannot hold`);
  if (typeof v === 'number') return number(v, path);
  if (typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map((x, i) => cedarValue(x, `${path}[${i}]`));
  if (isEscape(v)) return v;
  return cedarRecord(v, path);
}

/** A JSON object as a Cedar record; `null` members are omitted. */
export function cedarRecord(o: JsonObject, path: string, keep?: ReadonlySet<string>): JsonObject {
  const out: JsonObject = {};
  for (const [k, x] of Object.entries(o)) {
    if (x === null || (keep !== undefined && !keep.has(k))) continue;
    out[k] = cedarValue(x, `${path}.${k}`);
  }
  return out;
}

/** Every entity a Cedar value refers to (`{"__entity": …}`), for the entity slice of a request. */
export function entityRefs(v: JsonValue, out: EntityUid[] = []): EntityUid[] {
  if (v === null || typeof v !== 'object') return out;
  if (Array.isArray(v)) {
    for (const x of v) entityRefs(x, out);
    return out;
  }
  const e = v['__entity'];
  if (e !== undefined && typeof e === 'object' && e !== null && !Array.isArray(e) && typeof e['type'] === 'string' && typeof e['id'] === 'string') {
    out.push({ type: e['type'], id: e['id'] });
    return out;
  }
  for (const x of Object.values(v)) entityRefs(x, out);
  return out;
}

export function uidKey(uid: EntityUid): string {
  return `${uid.type}\u0000${uid.id}`;
}
