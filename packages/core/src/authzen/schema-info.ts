/**
 * What a generic-domain Cedar schema declares, as far as the AuthZEN mapping needs it: the
 * attributes of each entity type and of each action's context (so that properties a PEP sends
 * and the schema does not know are ignored, as AuthZEN ignores unknown fields, instead of
 * failing Cedar's strict request check), and the action hierarchy (so that evaluating only the
 * policies whose action scope can apply stays sound with action groups).
 */
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { MandateError } from '../errors.ts';

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

export class SchemaInfo {
  /** the schema as given (Cedar text or Cedar JSON), for PolicySet */
  readonly schema: cedar.Schema;
  private readonly entityAttrs = new Map<string, ReadonlySet<string>>();
  private readonly contextAttrs = new Map<string, ReadonlySet<string>>();
  /** action id -> ids of the action groups it is in, transitively */
  readonly actionAncestors = new Map<string, ReadonlySet<string>>();

  private constructor(schema: cedar.Schema, json: Record<string, Json>) {
    this.schema = schema;
    const common = new Map<string, unknown>();
    for (const [ns, def] of Object.entries(json)) {
      for (const [name, t] of Object.entries(isObj(def['commonTypes']) ? def['commonTypes'] : {})) common.set(ns === '' ? name : `${ns}::${name}`, t);
    }
    const attributesOf = (t: unknown, ns: string, depth = 0): ReadonlySet<string> => {
      if (!isObj(t) || depth > 16) return new Set();
      if (t['type'] === 'Record') return new Set(Object.keys(isObj(t['attributes']) ? t['attributes'] : {}));
      const name = typeof t['type'] === 'string' ? t['type'] : typeof t['name'] === 'string' ? t['name'] : undefined;
      if (name === undefined) return new Set();
      const ref = common.get(name) ?? common.get(ns === '' ? name : `${ns}::${name}`);
      return attributesOf(ref, ns, depth + 1);
    };
    const parents = new Map<string, string[]>();
    for (const [ns, def] of Object.entries(json)) {
      const q = (n: string) => (ns === '' || n.includes('::') ? n : `${ns}::${n}`);
      for (const [name, et] of Object.entries(isObj(def['entityTypes']) ? def['entityTypes'] : {})) {
        this.entityAttrs.set(q(name), isObj(et) && et['shape'] !== undefined ? attributesOf(et['shape'], ns) : new Set());
      }
      for (const [id, at] of Object.entries(isObj(def['actions']) ? def['actions'] : {})) {
        const uid = `${ns === '' ? 'Action' : `${ns}::Action`}::${JSON.stringify(id)}`;
        const applies = isObj(at) && isObj(at['appliesTo']) ? at['appliesTo'] : undefined;
        this.contextAttrs.set(uid, applies?.['context'] === undefined ? new Set() : attributesOf(applies['context'], ns));
        const memberOf = isObj(at) && Array.isArray(at['memberOf']) ? at['memberOf'] : [];
        parents.set(id, memberOf.filter(isObj).map((m) => String(m['id'])));
      }
    }
    for (const id of parents.keys()) {
      const seen = new Set<string>();
      const stack = [...(parents.get(id) ?? [])];
      while (stack.length > 0) {
        const p = stack.pop() as string;
        if (seen.has(p)) continue;
        seen.add(p);
        stack.push(...(parents.get(p) ?? []));
      }
      if (seen.size > 0) this.actionAncestors.set(id, seen);
    }
  }

  /** Parses Cedar schema text or Cedar JSON schema; CONFIG_INVALID names the problem. */
  static parse(schema: cedar.Schema): SchemaInfo {
    const text = typeof schema === 'string' ? schema : cedar.schemaToText(schema);
    if (typeof text !== 'string' && text.type !== 'success') {
      throw new MandateError('CONFIG_INVALID', `the AuthZEN Cedar schema does not parse: ${text.errors.map((e) => e.message).join('; ')}`);
    }
    const resolved = cedar.schemaToJsonWithResolvedTypes(typeof text === 'string' ? text : text.text);
    if (resolved.type !== 'success') {
      throw new MandateError('CONFIG_INVALID', `the AuthZEN Cedar schema does not parse: ${resolved.errors.map((e) => e.message).join('; ')}`);
    }
    return new SchemaInfo(schema, resolved.json as unknown as Record<string, Json>);
  }

  /** the attributes an entity type declares, or undefined when the schema does not know the type */
  attributesOf(entityType: string): ReadonlySet<string> | undefined {
    return this.entityAttrs.get(entityType);
  }

  /** the context attributes an action declares, or undefined when the schema does not know the action */
  contextOf(action: { type: string; id: string }): ReadonlySet<string> | undefined {
    return this.contextAttrs.get(`${action.type}::${JSON.stringify(action.id)}`);
  }
}
