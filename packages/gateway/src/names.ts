/**
 * What clients, mandates and policies call an upstream's things. Tools and prompts are
 * `<prefix>__<name>`; resources (and resource templates) are `<prefix>+<uri>`, so that two
 * upstreams' same URI never hide each other and a read needs no prior list. Prefixes contain
 * neither `_` nor `+`, so the first `__` or `+` splits a name unambiguously.
 */

/** the separator between an upstream's prefix and its tool's name */
export const NAMESPACE_SEPARATOR = '__';
/** the separator between an upstream's prefix and one of its resource URIs */
export const RESOURCE_SEPARATOR = '+';

export function namespacedTool(prefix: string, tool: string): string {
  return `${prefix}${NAMESPACE_SEPARATOR}${tool}`;
}
/** The name a mandate grants to read an upstream's resources (the resource is the URI). */
export function resourceTool(prefix: string): string {
  return `${prefix}${NAMESPACE_SEPARATOR}resources/read`;
}
/** The name a mandate grants to get one of an upstream's prompts. */
export function promptTool(prefix: string, prompt: string): string {
  return `${prefix}${NAMESPACE_SEPARATOR}prompts/${prompt}`;
}
/** The name a mandate grants for an upstream to ask the client's model (`sampling/createMessage`). */
export function samplingTool(prefix: string): string {
  return `${prefix}${NAMESPACE_SEPARATOR}sampling/createMessage`;
}
/** The name a mandate grants for an upstream to ask the client's user (`elicitation/create`). */
export function elicitationTool(prefix: string): string {
  return `${prefix}${NAMESPACE_SEPARATOR}elicitation/create`;
}

export function namespacedUri(prefix: string, uri: string): string {
  return `${prefix}${RESOURCE_SEPARATOR}${uri}`;
}

/** `<prefix>__<name>` split, or undefined. */
export function splitName(name: string): { prefix: string; name: string } | undefined {
  const i = name.indexOf(NAMESPACE_SEPARATOR);
  if (i <= 0) return undefined;
  return { prefix: name.slice(0, i), name: name.slice(i + NAMESPACE_SEPARATOR.length) };
}

/** `<prefix>+<uri>` split, or undefined. */
export function splitUri(uri: string): { prefix: string; uri: string } | undefined {
  const i = uri.indexOf(RESOURCE_SEPARATOR);
  if (i <= 0) return undefined;
  return { prefix: uri.slice(0, i), uri: uri.slice(i + 1) };
}

/**
 * A tool result's or prompt's content with the upstream's resource URIs in the gateway's
 * namespace: `resource_link` items and embedded resources name `<prefix>+<uri>`, so a client
 * reads them through the gateway (decided like any read) as it reads listed resources.
 */
export function namespacedContent<T>(prefix: string, items: T): T {
  if (!Array.isArray(items)) return items;
  return items.map((item: unknown) => {
    if (item === null || typeof item !== 'object') return item;
    const c = item as { type?: unknown; uri?: unknown; resource?: { uri?: unknown } };
    if (c.type === 'resource_link' && typeof c.uri === 'string') return { ...c, uri: namespacedUri(prefix, c.uri) };
    if (c.type === 'resource' && c.resource !== null && typeof c.resource === 'object' && typeof c.resource.uri === 'string') return { ...c, resource: { ...c.resource, uri: namespacedUri(prefix, c.resource.uri) } };
    return item;
  }) as T;
}
