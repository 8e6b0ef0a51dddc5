/**
 * Cedar policies compiled to JS closures, with cedar-wasm kept as the parser, the validator and
 * the oracle (issue 10). A compiled policy evaluates Cedar's JSON policy form (the EST that
 * cedar-wasm's `policyToJson` produces) with Cedar's semantics: `&&`/`||` short-circuit left to
 * right, `unless` negates, i64 arithmetic errors on overflow, attribute access on an entity that
 * is not in the request errors, `has`/`hasTag` on it are false.
 *
 * Never guess. Three escape hatches keep the answers exactly Cedar's:
 * - a policy using anything not compiled here (extension functions, slots, literals beyond
 *   2^53 that the JSON form cannot carry exactly) does not compile: its set uses cedar-wasm;
 * - a request that does not conform to the schema in the simple shapes checked here (see
 *   `requestChecker`) is answered by cedar-wasm, which validates it;
 * - an evaluation that meets a case whose Cedar outcome or message is not reproduced here (a
 *   runtime type error, a missing attribute, an entity id that Cedar would escape in its
 *   message) throws `Bail`, and the whole request is answered by cedar-wasm.
 * The differential test (test/policy-compile.differential.test.ts) holds this to cedar-wasm on
 * random policies, entities and contexts, errors included.
 */
import type { PolicyJson } from '@cedar-policy/cedar-wasm/nodejs';
import { likeMatcher } from './applicability.ts';

// ------------------------------------------------------------------------------------------------
// values

/** An entity reference. Other Cedar values: string, boolean, Long (number when safe, else bigint), Set (array), Record (plain object). */
export class EntityRef {
  readonly type: string;
  readonly id: string;
  constructor(type: string, id: string) {
    this.type = type;
    this.id = id;
  }
}

type Value = string | boolean | number | bigint | EntityRef | readonly Value[] | Rec;
interface Rec {
  readonly [k: string]: Value;
}

/** A policy's evaluation errored the way Cedar's would, with Cedar's message. */
export class EvalError extends Error {}

/** The compiled evaluator cannot answer this request exactly: ask cedar-wasm. */
export class Bail extends Error {}

const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;

function isRecord(v: unknown): v is Rec {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof EntityRef);
}

function isLong(v: unknown): v is number | bigint {
  return typeof v === 'number' || typeof v === 'bigint';
}

/** Cedar value equality: structural, sets as sets, different types unequal. */
export function valueEq(a: Value, b: Value): boolean {
  if (a === b) return true;
  const t = typeof a;
  if (t === 'number' || t === 'bigint') return isLong(b) && a == b; // number vs bigint by value
  if (t === 'string' || t === 'boolean') return false;
  if (a instanceof EntityRef) return b instanceof EntityRef && a.type === b.type && a.id === b.id;
  if (Array.isArray(a)) {
    if (!Array.isArray(b)) return false;
    const bs = b as readonly Value[];
    for (const x of a as readonly Value[]) if (!setHas(bs, x)) return false;
    for (const y of bs) if (!setHas(a as readonly Value[], y)) return false;
    return true;
  }
  if (!isRecord(b) || !isRecord(a)) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) {
    if (!Object.hasOwn(b, k) || !valueEq(a[k] as Value, b[k] as Value)) return false;
  }
  return true;
}

function setHas(set: readonly Value[], v: Value): boolean {
  if (typeof v === 'string' || typeof v === 'boolean' || typeof v === 'number') {
    if (set.includes(v)) return true;
    if (typeof v !== 'number') return false;
  }
  for (const x of set) if (valueEq(x, v)) return true;
  return false;
}

function long(r: bigint, what: string): number | bigint {
  if (r < I64_MIN || r > I64_MAX) throw new EvalError(what);
  return r >= -9007199254740991n && r <= 9007199254740991n ? Number(r) : r;
}

function add(a: number | bigint, b: number | bigint): number | bigint {
  if (typeof a === 'number' && typeof b === 'number') {
    const r = a + b;
    if (Number.isSafeInteger(r)) return r === 0 ? 0 : r;
  }
  return long(BigInt(a) + BigInt(b), `integer overflow while attempting to add the values \`${a}\` and \`${b}\``);
}

function sub(a: number | bigint, b: number | bigint): number | bigint {
  if (typeof a === 'number' && typeof b === 'number') {
    const r = a - b;
    if (Number.isSafeInteger(r)) return r === 0 ? 0 : r;
  }
  return long(BigInt(a) - BigInt(b), `integer overflow while attempting to subtract the values \`${a}\` and \`${b}\``);
}

function mul(a: number | bigint, b: number | bigint): number | bigint {
  if (typeof a === 'number' && typeof b === 'number') {
    const r = a * b;
    if (Number.isSafeInteger(r)) return r === 0 ? 0 : r;
  }
  return long(BigInt(a) * BigInt(b), `integer overflow while attempting to multiply the values \`${a}\` and \`${b}\``);
}

function neg(a: number | bigint): number | bigint {
  if (typeof a === 'number') return a === 0 ? 0 : -a;
  return long(-a, `integer overflow while attempting to negate the value \`${a}\``);
}

// ------------------------------------------------------------------------------------------------
// the request as the compiled policies see it

export interface StoredEntity {
  readonly attrs: Rec;
  readonly tags: Rec | undefined;
  readonly parents: readonly EntityRef[];
}

export interface Env {
  readonly principal: EntityRef;
  readonly action: EntityRef;
  readonly resource: EntityRef;
  readonly context: Rec;
  entity(ref: EntityRef): StoredEntity | undefined;
  /** is `ref` an action entity (from the schema), and if so its action groups */
  actionGroups(ref: EntityRef): ReadonlySet<string> | undefined;
}

const SIMPLE = /^[\x20-\x21\x23-\x26\x28-\x5b\x5d-\x7e]*$/;

/** Cedar's display of an entity uid, when it needs no escaping (else: Bail, never a guessed message). */
function uidText(e: EntityRef): string {
  if (!SIMPLE.test(e.id) || !SIMPLE.test(e.type)) throw new Bail('entity uid needs escaping');
  return `${e.type}::"${e.id}"`;
}

function entityKey(type: string, id: string): string {
  return `${type}\u0000${id}`;
}

function existing(env: Env, e: EntityRef): StoredEntity {
  const stored = env.entity(e);
  if (stored === undefined) {
    if (env.actionGroups(e) !== undefined) throw new Bail('attribute of an action entity');
    throw new EvalError(`entity \`${uidText(e)}\` does not exist`);
  }
  return stored;
}

/** `a in b` for one entity b: a == b, or b is an ancestor of a (transitively). */
function entityIn(env: Env, a: EntityRef, b: EntityRef): boolean {
  if (a.type === b.type && a.id === b.id) return true;
  const groups = env.actionGroups(a);
  if (groups !== undefined) return groups.has(entityKey(b.type, b.id));
  const start = env.entity(a);
  if (start === undefined || start.parents.length === 0) return false;
  const seen = new Set<string>();
  const todo = [...start.parents];
  while (todo.length > 0) {
    const p = todo.pop() as EntityRef;
    if (p.type === b.type && p.id === b.id) return true;
    const k = entityKey(p.type, p.id);
    if (seen.has(k)) continue;
    seen.add(k);
    const stored = env.entity(p);
    if (stored) todo.push(...stored.parents);
  }
  return false;
}

function inOp(env: Env, a: Value, b: Value): boolean {
  if (!(a instanceof EntityRef)) throw new Bail('type error: in');
  if (b instanceof EntityRef) return entityIn(env, a, b);
  if (!Array.isArray(b)) throw new Bail('type error: in');
  for (const x of b as readonly Value[]) {
    if (!(x instanceof EntityRef)) throw new Bail('type error: in');
  }
  for (const x of b as readonly EntityRef[]) if (entityIn(env, a, x)) return true;
  return false;
}

// ------------------------------------------------------------------------------------------------
// compilation

type Fn = (env: Env) => Value;
type Pred = (env: Env) => boolean;

/** The policy uses something this compiler does not handle: cedar-wasm evaluates its set. */
export class Unsupported extends Error {}

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function literal(v: unknown): Value {
  if (typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number') {
    // the JSON form carries Longs as doubles: beyond 2^53 the literal is no longer exact
    if (!Number.isSafeInteger(v)) throw new Unsupported(`Long literal ${v} is not exact in Cedar's JSON form`);
    return v === 0 ? 0 : v;
  }
  if (Array.isArray(v)) return v.map(literal);
  if (isObj(v)) {
    if (isObj(v['__entity'])) return entityLiteral(v['__entity']);
    if ('__extn' in v) throw new Unsupported('extension value');
    const r: Record<string, Value> = Object.create(null) as Record<string, Value>;
    for (const k of Object.keys(v)) r[k] = literal(v[k]);
    return r;
  }
  throw new Unsupported(`literal ${JSON.stringify(v)}`);
}

function entityLiteral(v: unknown): EntityRef {
  const e = isObj(v) && isObj(v['__entity']) ? v['__entity'] : v;
  if (!isObj(e) || typeof e['type'] !== 'string' || typeof e['id'] !== 'string') throw new Unsupported('entity literal');
  return new EntityRef(e['type'], e['id']);
}

function bool(v: Value): boolean {
  if (typeof v !== 'boolean') throw new Bail('type error: expected bool');
  return v;
}

function num(v: Value): number | bigint {
  if (typeof v !== 'number' && typeof v !== 'bigint') throw new Bail('type error: expected long');
  return v;
}

function str(v: Value): string {
  if (typeof v !== 'string') throw new Bail('type error: expected string');
  return v;
}

function set(v: Value): readonly Value[] {
  if (!Array.isArray(v)) throw new Bail('type error: expected set');
  return v as readonly Value[];
}

function ent(v: Value): EntityRef {
  if (!(v instanceof EntityRef)) throw new Bail('type error: expected entity');
  return v;
}

/** Code point order (Rust's string order), the order Cedar evaluates a record literal's fields in. */
function byCodePoint(a: string, b: string): number {
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const x = ia.next();
    const y = ib.next();
    if (x.done) return y.done ? 0 : -1;
    if (y.done) return 1;
    const d = (x.value.codePointAt(0) as number) - (y.value.codePointAt(0) as number);
    if (d !== 0) return d;
  }
}

function binary(node: Json): [Fn, Fn] {
  return [compileExpr(node['left']), compileExpr(node['right'])];
}

function getAttr(env: Env, v: Value, attr: string): Value {
  if (v instanceof EntityRef) {
    const stored = existing(env, v);
    if (!Object.hasOwn(stored.attrs, attr)) throw new Bail('missing entity attribute');
    return stored.attrs[attr] as Value;
  }
  if (!isRecord(v)) throw new Bail('type error: attribute access');
  if (!Object.hasOwn(v, attr)) throw new Bail('missing record attribute');
  return v[attr] as Value;
}

function hasAttr(env: Env, v: Value, attr: string): boolean {
  if (v instanceof EntityRef) {
    if (env.actionGroups(v) !== undefined && env.entity(v) === undefined) return false;
    const stored = env.entity(v);
    return stored !== undefined && Object.hasOwn(stored.attrs, attr);
  }
  if (!isRecord(v)) throw new Bail('type error: has');
  return Object.hasOwn(v, attr);
}

export function compileExpr(e: unknown): Fn {
  if (!isObj(e)) throw new Unsupported('expression');
  const keys = Object.keys(e);
  if (keys.length !== 1) throw new Unsupported('expression');
  const op = keys[0] as string;
  const node = e[op];
  switch (op) {
    case 'Value': {
      const v = literal(node);
      return () => v;
    }
    case 'Var': {
      switch (node) {
        case 'principal':
          return (env) => env.principal;
        case 'action':
          return (env) => env.action;
        case 'resource':
          return (env) => env.resource;
        case 'context':
          return (env) => env.context;
      }
      throw new Unsupported(`variable ${String(node)}`);
    }
    case '!': {
      const a = compileExpr((node as Json)['arg']);
      return (env) => !bool(a(env));
    }
    case 'neg': {
      const a = compileExpr((node as Json)['arg']);
      return (env) => neg(num(a(env)));
    }
    case '==': {
      const [l, r] = binary(node as Json);
      return (env) => {
        const a = l(env);
        return valueEq(a, r(env));
      };
    }
    case '!=': {
      const [l, r] = binary(node as Json);
      return (env) => {
        const a = l(env);
        return !valueEq(a, r(env));
      };
    }
    case '<':
    case '<=':
    case '>':
    case '>=': {
      const [l, r] = binary(node as Json);
      const cmp =
        op === '<'
          ? (a: number | bigint, b: number | bigint) => a < b
          : op === '<='
            ? (a: number | bigint, b: number | bigint) => a <= b
            : op === '>'
              ? (a: number | bigint, b: number | bigint) => a > b
              : (a: number | bigint, b: number | bigint) => a >= b;
      return (env) => {
        const a = num(l(env));
        return cmp(a, num(r(env)));
      };
    }
    case '+':
    case '-':
    case '*': {
      const [l, r] = binary(node as Json);
      const f = op === '+' ? add : op === '-' ? sub : mul;
      return (env) => {
        const a = num(l(env));
        return f(a, num(r(env)));
      };
    }
    case '&&': {
      const [l, r] = binary(node as Json);
      return (env) => bool(l(env)) && bool(r(env));
    }
    case '||': {
      const [l, r] = binary(node as Json);
      return (env) => bool(l(env)) || bool(r(env));
    }
    case 'in': {
      const [l, r] = binary(node as Json);
      return (env) => {
        const a = l(env);
        return inOp(env, a, r(env));
      };
    }
    case 'contains': {
      const [l, r] = binary(node as Json);
      return (env) => {
        const a = set(l(env));
        return setHas(a, r(env));
      };
    }
    case 'containsAll':
    case 'containsAny': {
      const [l, r] = binary(node as Json);
      const all = op === 'containsAll';
      return (env) => {
        const a = set(l(env));
        const b = set(r(env));
        if (all) {
          for (const x of b) if (!setHas(a, x)) return false;
          return true;
        }
        for (const x of b) if (setHas(a, x)) return true;
        return false;
      };
    }
    case 'isEmpty': {
      const a = compileExpr((node as Json)['arg']);
      return (env) => set(a(env)).length === 0;
    }
    case 'getTag': {
      const [l, r] = binary(node as Json);
      return (env) => {
        const e = ent(l(env));
        const tag = str(r(env));
        const stored = existing(env, e);
        if (stored.tags === undefined || !Object.hasOwn(stored.tags, tag)) {
          throw new EvalError(`\`${uidText(e)}\` does not have the tag \`${tag}\``);
        }
        return stored.tags[tag] as Value;
      };
    }
    case 'hasTag': {
      const [l, r] = binary(node as Json);
      return (env) => {
        const e = ent(l(env));
        const tag = str(r(env));
        const stored = env.entity(e);
        return stored !== undefined && stored.tags !== undefined && Object.hasOwn(stored.tags, tag);
      };
    }
    case '.': {
      const n = node as Json;
      const l = compileExpr(n['left']);
      const attr = n['attr'];
      if (typeof attr !== 'string') throw new Unsupported('attribute');
      return (env) => getAttr(env, l(env), attr);
    }
    case 'has': {
      const n = node as Json;
      const l = compileExpr(n['left']);
      const path = Array.isArray(n['attr']) ? (n['attr'] as unknown[]) : [n['attr']];
      if (path.length === 0 || !path.every((a): a is string => typeof a === 'string')) throw new Unsupported('has');
      // `e has a.b.c` is `e has a && e.a has b && e.a.b has c`
      return (env) => {
        let v = l(env);
        for (let i = 0; i < path.length; i++) {
          const a = path[i] as string;
          if (!hasAttr(env, v, a)) return false;
          if (i < path.length - 1) v = getAttr(env, v, a);
        }
        return true;
      };
    }
    case 'like': {
      const n = node as Json;
      const l = compileExpr(n['left']);
      const m = Array.isArray(n['pattern']) ? likeMatcher(n['pattern']) : undefined;
      if (m === undefined) throw new Unsupported('like pattern');
      return (env) => m(str(l(env)));
    }
    case 'is': {
      const n = node as Json;
      const l = compileExpr(n['left']);
      const type = n['entity_type'];
      if (typeof type !== 'string') throw new Unsupported('is');
      const inner = n['in'] === undefined ? undefined : compileExpr(n['in']);
      return (env) => {
        const a = ent(l(env));
        if (a.type !== type) return false;
        return inner === undefined ? true : inOp(env, a, inner(env));
      };
    }
    case 'if-then-else': {
      const n = node as Json;
      const c = compileExpr(n['if']);
      const t = compileExpr(n['then']);
      const f = compileExpr(n['else']);
      return (env) => (bool(c(env)) ? t(env) : f(env));
    }
    case 'Set': {
      if (!Array.isArray(node)) throw new Unsupported('set');
      const items = node.map(compileExpr);
      return (env) => items.map((f) => f(env));
    }
    case 'Record': {
      if (!isObj(node)) throw new Unsupported('record');
      const fields = Object.keys(node)
        .sort(byCodePoint)
        .map((k) => [k, compileExpr(node[k])] as const);
      return (env) => {
        const r: Record<string, Value> = Object.create(null) as Record<string, Value>;
        for (const [k, f] of fields) r[k] = f(env);
        return r;
      };
    }
  }
  // extension functions (ip, decimal, datetime, …) and slots: not compiled
  throw new Unsupported(`operator ${op}`);
}

function scopeEntity(c: Json): EntityRef {
  if ('slot' in c) throw new Unsupported('template slot');
  return entityLiteral(c['entity']);
}

type Scope = (env: Env, v: EntityRef) => boolean;

function compileScope(c: unknown): Scope | undefined {
  if (!isObj(c)) throw new Unsupported('scope');
  switch (c['op']) {
    case 'All':
      return undefined;
    case '==': {
      const e = scopeEntity(c);
      return (_env, v) => v.type === e.type && v.id === e.id;
    }
    case 'in': {
      if (Array.isArray(c['entities'])) {
        const list = c['entities'].map(entityLiteral);
        return (env, v) => list.some((e) => entityIn(env, v, e));
      }
      const e = scopeEntity(c);
      return (env, v) => entityIn(env, v, e);
    }
    case 'is': {
      const type = c['entity_type'];
      if (typeof type !== 'string') throw new Unsupported('is scope');
      const inner = c['in'];
      if (inner === undefined) return (_env, v) => v.type === type;
      if (!isObj(inner)) throw new Unsupported('is scope');
      const e = scopeEntity(inner);
      return (env, v) => v.type === type && entityIn(env, v, e);
    }
  }
  throw new Unsupported(`scope ${String(c['op'])}`);
}

/** true: satisfied; false: not; throws EvalError (the policy errors, Cedar's message) or Bail. */
export type CompiledPolicy = (env: Env) => boolean;

export function compilePolicy(policy: PolicyJson): CompiledPolicy {
  const principal = compileScope(policy.principal);
  const action = compileScope(policy.action);
  const resource = compileScope(policy.resource);
  const conditions = policy.conditions.map((c) => {
    const body = compileExpr(c.body);
    return c.kind === 'when' ? (env: Env) => bool(body(env)) : (env: Env) => !bool(body(env));
  });
  return (env) => {
    if (principal !== undefined && !principal(env, env.principal)) return false;
    if (action !== undefined && !action(env, env.action)) return false;
    if (resource !== undefined && !resource(env, env.resource)) return false;
    for (const c of conditions) if (!c(env)) return false;
    return true;
  };
}

/** Compiles, or says why not (then the policy's sets stay with cedar-wasm). */
export function tryCompilePolicy(policy: PolicyJson): CompiledPolicy | string {
  try {
    return compilePolicy(policy);
  } catch (e) {
    if (e instanceof Unsupported) return e.message;
    throw e;
  }
}

// ------------------------------------------------------------------------------------------------
// the schema: which requests the compiled path may answer

type Check = (v: unknown) => boolean;

const never: Check = () => false;

/** lone surrogates: cedar-wasm receives them replaced, so equality would differ; such requests go to cedar-wasm */
function isString(v: unknown): boolean {
  return typeof v === 'string' && (v as unknown as { isWellFormed(): boolean }).isWellFormed();
}

function isSafeLong(v: unknown): boolean {
  return typeof v === 'number' && Number.isSafeInteger(v) && !Object.is(v, -0);
}

function isBool(v: unknown): boolean {
  return typeof v === 'boolean';
}

function isPlainObject(v: unknown): v is Json {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

interface SchemaNs {
  readonly commonTypes?: Record<string, unknown>;
  readonly entityTypes?: Record<string, Json>;
  readonly actions?: Record<string, Json>;
}

interface EntityShape {
  readonly attrs: Check;
  readonly tags: Check | undefined;
  readonly memberOf: ReadonlySet<string>;
}

/**
 * Checks that a request is in the shapes the compiled path answers exactly: the principal and
 * resource types the action applies to, a context and entities exactly of the schema's record
 * types (every attribute present, none extra), strings well-formed, Longs safe integers, no
 * entity twice, no optional attributes, entity-typed or extension-typed attributes. Anything
 * else goes to cedar-wasm, which validates it and answers (or fails) as it does today.
 */
export class RequestShapes {
  private readonly entities = new Map<string, EntityShape>();
  private readonly actions = new Map<string, { principals: ReadonlySet<string>; resources: ReadonlySet<string>; context: Check }>();
  /** action entity key -> keys of its groups, transitively */
  readonly actionGroups = new Map<string, ReadonlySet<string>>();

  constructor(schemaJson: Record<string, SchemaNs>) {
    for (const [ns, def] of Object.entries(schemaJson)) {
      const q = (n: string) => (ns === '' ? n : `${ns}::${n}`);
      const common = def.commonTypes ?? {};
      const resolving = new Set<string>();
      const typeCheck = (t: unknown): Check => {
        if (!isObj(t)) return never;
        const kind = t['type'];
        const name = t['name'];
        if (kind === 'EntityOrCommon' || kind === 'Entity' || kind === 'Extension') {
          if (kind !== 'Extension' && typeof name === 'string') {
            if (kind === 'EntityOrCommon' && Object.hasOwn(common, name)) {
              if (resolving.has(name)) return never;
              resolving.add(name);
              const c = typeCheck(common[name]);
              resolving.delete(name);
              return c;
            }
            if (kind === 'EntityOrCommon' && (name === 'String' || name === '__cedar::String')) return isString;
            if (kind === 'EntityOrCommon' && (name === 'Long' || name === '__cedar::Long')) return isSafeLong;
            if (kind === 'EntityOrCommon' && (name === 'Bool' || name === 'Boolean' || name === '__cedar::Bool')) return isBool;
          }
          return never; // entity references and extension types: cedar-wasm
        }
        if (kind === 'String') return isString;
        if (kind === 'Long') return isSafeLong;
        if (kind === 'Boolean' || kind === 'Bool') return isBool;
        if (kind === 'Set') {
          const el = typeCheck(t['element']);
          return (v) => Array.isArray(v) && v.every(el);
        }
        if (kind === 'Record') {
          if (t['additionalAttributes'] === true) return never;
          const attrs = isObj(t['attributes']) ? t['attributes'] : {};
          const fields: [string, Check][] = [];
          for (const [k, at] of Object.entries(attrs)) {
            if (isObj(at) && at['required'] === false) return never; // optional attributes: cedar-wasm
            fields.push([k, typeCheck(at)]);
          }
          const n = fields.length;
          return (v) => {
            if (!isPlainObject(v)) return false;
            for (const [k, c] of fields) if (!Object.hasOwn(v, k) || !c(v[k])) return false;
            let count = 0;
            for (const k in v) if (Object.hasOwn(v, k)) count++;
            return count === n;
          };
        }
        return never;
      };
      for (const [name, et] of Object.entries(def.entityTypes ?? {})) {
        if ('enum' in et) continue; // enumerated entity types: cedar-wasm
        const memberOf = Array.isArray(et['memberOfTypes']) ? (et['memberOfTypes'] as string[]).map((m) => (m.includes('::') ? m : q(m))) : [];
        this.entities.set(q(name), {
          attrs: et['shape'] === undefined ? (v) => isPlainObject(v) && Object.keys(v).length === 0 : typeCheck(et['shape']),
          tags: et['tags'] === undefined ? undefined : typeCheck(et['tags']),
          memberOf: new Set(memberOf),
        });
      }
      const parentsOf = new Map<string, string[]>();
      for (const [name, a] of Object.entries(def.actions ?? {})) {
        const key = entityKey(q('Action'), name);
        const member = Array.isArray(a['memberOf']) ? (a['memberOf'] as Json[]) : [];
        parentsOf.set(
          key,
          member.map((m) => entityKey(typeof m['type'] === 'string' ? (m['type'].includes('::') ? m['type'] : q(m['type'])) : q('Action'), String(m['id']))),
        );
        const applies = isObj(a['appliesTo']) ? a['appliesTo'] : undefined;
        if (applies === undefined) continue;
        const types = (v: unknown) => new Set(Array.isArray(v) ? (v as string[]).map((t) => (t.includes('::') ? t : q(t))) : []);
        this.actions.set(key, {
          principals: types(applies['principalTypes']),
          resources: types(applies['resourceTypes']),
          context: applies['context'] === undefined ? (v) => isPlainObject(v) && Object.keys(v).length === 0 : typeCheck(applies['context']),
        });
      }
      for (const key of parentsOf.keys()) {
        const seen = new Set<string>();
        const todo = [...(parentsOf.get(key) ?? [])];
        while (todo.length > 0) {
          const p = todo.pop() as string;
          if (seen.has(p)) continue;
          seen.add(p);
          todo.push(...(parentsOf.get(p) ?? []));
        }
        this.actionGroups.set(key, seen);
      }
    }
  }

  /** An Env over the request when it is in the checked shapes, else undefined (ask cedar-wasm). */
  env(action: { type: string; id: string }, req: RequestLike): Env | undefined {
    const a = this.actions.get(entityKey(action.type, action.id));
    if (a === undefined) return undefined;
    const { principal, resource } = req;
    if (!a.principals.has(principal.type) || !a.resources.has(resource.type)) return undefined;
    if (!isString(principal.id) || !isString(resource.id) || !a.context(req.context)) return undefined;
    const list = req.entities;
    const stored: StoredEntity[] = [];
    const keys: string[] = [];
    for (const e of list) {
      if (!isPlainObject(e) || !isPlainObject(e.uid)) return undefined;
      const { type, id } = e.uid as { type: unknown; id: unknown };
      if (typeof type !== 'string' || typeof id !== 'string' || !isString(id)) return undefined;
      const shape = this.entities.get(type);
      if (shape === undefined || !shape.attrs(e.attrs)) return undefined;
      if (e.tags !== undefined && !(shape.tags === undefined ? isPlainObject(e.tags) && Object.keys(e.tags).length === 0 : isPlainObject(e.tags) && Object.values(e.tags).every(shape.tags))) return undefined;
      if (!Array.isArray(e.parents)) return undefined;
      const parents: EntityRef[] = [];
      for (const p of e.parents) {
        if (!isPlainObject(p) || typeof p['type'] !== 'string' || typeof p['id'] !== 'string' || !shape.memberOf.has(p['type']) || !isString(p['id'])) return undefined;
        parents.push(new EntityRef(p['type'], p['id']));
      }
      keys.push(entityKey(type, id));
      stored.push({ attrs: e.attrs as Rec, tags: shape.tags === undefined ? undefined : ((e.tags ?? {}) as Rec), parents });
    }
    let index: Map<string, StoredEntity> | undefined;
    if (list.length > 8) {
      index = new Map();
      for (let i = 0; i < keys.length; i++) index.set(keys[i] as string, stored[i] as StoredEntity);
      if (index.size !== keys.length) return undefined; // an entity twice
    } else if (new Set(keys).size !== keys.length) {
      return undefined;
    }
    const groups = this.actionGroups;
    return {
      principal: new EntityRef(principal.type, principal.id),
      action: new EntityRef(action.type, action.id),
      resource: new EntityRef(resource.type, resource.id),
      context: req.context as Rec,
      entity(ref) {
        if (index !== undefined) return index.get(entityKey(ref.type, ref.id));
        for (let i = 0; i < list.length; i++) {
          const uid = (list[i] as RequestLike['entities'][number]).uid;
          if (uid.type === ref.type && uid.id === ref.id) return stored[i];
        }
        return undefined;
      },
      actionGroups(ref) {
        return groups.get(entityKey(ref.type, ref.id));
      },
    };
  }
}

export interface RequestLike {
  readonly principal: { readonly type: string; readonly id: string };
  readonly resource: { readonly type: string; readonly id: string };
  readonly context: Readonly<Record<string, unknown>>;
  readonly entities: readonly { readonly uid: { readonly type: string; readonly id: string }; readonly attrs: unknown; readonly parents: readonly unknown[]; readonly tags?: unknown }[];
}

// ------------------------------------------------------------------------------------------------
// a set of compiled policies, answering like cedar-wasm's authorizer

export interface CompiledEntry {
  readonly id: string;
  readonly effect: 'permit' | 'forbid';
  readonly fn: CompiledPolicy;
}

/** Per-policy outcome of one evaluation: satisfied permits and forbids, and errors (sorted by id). */
export interface Outcome {
  readonly permits: string[];
  readonly forbids: string[];
  readonly errors: { policyId: string; message: string }[];
}

/** Evaluates every entry; throws Bail when cedar-wasm must answer instead. */
export function evaluateCompiled(entries: readonly CompiledEntry[], env: Env): Outcome {
  const permits: string[] = [];
  const forbids: string[] = [];
  let errors: { policyId: string; message: string }[] | undefined;
  for (const p of entries) {
    let ok: boolean;
    try {
      ok = p.fn(env);
    } catch (e) {
      if (e instanceof EvalError) {
        (errors ??= []).push({ policyId: p.id, message: e.message });
        continue;
      }
      if (e instanceof Bail) throw e;
      // anything else (a bug, a stack overflow on a deep expression): never guess
      throw new Bail((e as Error).message);
    }
    if (ok) (p.effect === 'permit' ? permits : forbids).push(p.id);
  }
  return { permits, forbids, errors: errors ?? [] };
}
