import type { PolicyJson } from '@cedar-policy/cedar-wasm/nodejs';

/**
 * Which calls a policy can possibly apply to, read from its scope and its first condition.
 * Sound by construction: a policy is only ruled out for a (action, tool) pair when Cedar itself
 * would find it not applicable without evaluating anything that could error: a scope that does
 * not match, or a first `when` clause whose leftmost `&&` operand is a test on `resource.name`
 * that is false (`&&` short-circuits, so the rest is never evaluated).
 */
export interface Applicability {
  /** action ids, or undefined for any action */
  readonly actions: ReadonlySet<string> | undefined;
  /** a test on the tool name, or undefined for any tool */
  readonly tool: ((name: string) => boolean) | undefined;
}

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function entityOf(v: unknown): { type: string; id: string } | undefined {
  if (!isObj(v)) return undefined;
  const e = isObj(v['__entity']) ? v['__entity'] : v;
  return typeof e['type'] === 'string' && typeof e['id'] === 'string' ? { type: e['type'], id: e['id'] } : undefined;
}

function actionsOf(scope: PolicyJson['action']): ReadonlySet<string> | undefined {
  const s = scope as Json;
  if (s['op'] === '==') {
    const e = entityOf(s['entity']);
    return e ? new Set([e.id]) : undefined;
  }
  if (s['op'] === 'in') {
    const list = Array.isArray(s['entities']) ? s['entities'] : [s['entity']];
    const ids = list.map(entityOf);
    // an action group would need the schema's hierarchy; the schema declares none, but stay safe
    return ids.every((e) => e !== undefined) ? new Set(ids.map((e) => (e as { id: string }).id)) : undefined;
  }
  return undefined;
}

/** Cedar `like` pattern: literals and `*` wildcards, matched against the whole string. */
export function likeMatcher(pattern: readonly unknown[]): ((s: string) => boolean) | undefined {
  const parts: (string | null)[] = [];
  for (const p of pattern) {
    if (p === 'Wildcard') parts.push(null);
    else if (isObj(p) && typeof p['Literal'] === 'string') parts.push(p['Literal']);
    else return undefined;
  }
  // split into: prefix * seg * seg * … suffix (literal runs between wildcards)
  const runs: string[] = [''];
  for (const part of parts) {
    if (part === null) runs.push('');
    else runs[runs.length - 1] += part;
  }
  if (runs.length === 1) {
    const exact = runs[0] as string;
    return (s) => s === exact;
  }
  const prefix = runs[0] as string;
  const suffix = runs[runs.length - 1] as string;
  const middle = runs.slice(1, -1);
  return (s) => {
    if (s.length < prefix.length + suffix.length || !s.startsWith(prefix) || !s.endsWith(suffix)) return false;
    let i = prefix.length;
    const end = s.length - suffix.length;
    for (const seg of middle) {
      const at = s.indexOf(seg, i);
      if (at === -1 || at + seg.length > end) return false;
      i = at + seg.length;
    }
    return true;
  };
}

function isResourceName(expr: unknown): boolean {
  if (!isObj(expr) || !isObj(expr['.'])) return false;
  const dot = expr['.'];
  return dot['attr'] === 'name' && isObj(dot['left']) && dot['left']['Var'] === 'resource';
}

/** The leftmost operand of a chain of `&&`. */
function leftmost(body: unknown): unknown {
  let cur = body;
  while (isObj(cur) && isObj(cur['&&'])) cur = cur['&&']['left'];
  return cur;
}

function nameTest(expr: unknown): ((name: string) => boolean) | undefined {
  if (!isObj(expr)) return undefined;
  const like = expr['like'];
  if (isObj(like) && isResourceName(like['left']) && Array.isArray(like['pattern'])) return likeMatcher(like['pattern']);
  const eq = expr['=='];
  if (isObj(eq)) {
    const value = (side: unknown) => (isObj(side) && typeof side['Value'] === 'string' ? side['Value'] : undefined);
    if (isResourceName(eq['left']) && value(eq['right']) !== undefined) {
      const v = value(eq['right']);
      return (n) => n === v;
    }
    if (isResourceName(eq['right']) && value(eq['left']) !== undefined) {
      const v = value(eq['left']);
      return (n) => n === v;
    }
  }
  return undefined;
}

export function applicabilityOf(policy: PolicyJson): Applicability {
  const actions = actionsOf(policy.action);
  const res = policy.resource as Json;
  if (res['op'] === '==') {
    const e = entityOf(res['entity']);
    if (e && e.type === 'Mandate::Tool') return { actions, tool: (n) => n === e.id };
    if (e) return { actions, tool: () => false }; // an entity of another type is never a tool
  }
  const first = policy.conditions[0];
  if (res['op'] === 'All' && first && first.kind === 'when') {
    const test = nameTest(leftmost(first.body));
    if (test) return { actions, tool: test };
  }
  return { actions, tool: undefined };
}
