import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { MandateError, PolicySet, type CrossChecker, type Hasher, type PolicySetOptions, type PolicySource, type ToolCatalogInput } from '@mandate/core';

const MAX_POLICY_FILE = 1024 * 1024;
/** a decision holds its policy set for milliseconds; a minute is a wide margin */
const RETIRE_AFTER_MS = 60_000;
const CATALOG_FILES = ['tools.yaml', 'tools.yml', 'tools.json'];

/** Reads a policy folder: every *.cedar file (sorted by name) and an optional tools.yaml. */
export function readPolicyDir(dir: string): { sources: PolicySource[]; catalog: ToolCatalogInput } {
  let names: string[];
  try {
    if (!statSync(dir).isDirectory()) throw new Error('not a folder');
    names = readdirSync(dir).sort();
  } catch (e) {
    throw new MandateError('POLICY_INVALID', `cannot read policy folder ${dir}: ${(e as Error).message}`);
  }
  const sources: PolicySource[] = [];
  for (const name of names.filter((n) => n.endsWith('.cedar'))) {
    const path = join(dir, name);
    if (statSync(path).size > MAX_POLICY_FILE) throw new MandateError('POLICY_INVALID', `${name} is larger than ${MAX_POLICY_FILE} bytes`);
    sources.push({ source: name, text: readFileSync(path, 'utf8') });
  }
  let catalog: ToolCatalogInput = {};
  const catalogName = CATALOG_FILES.find((n) => names.includes(n));
  if (catalogName !== undefined) {
    try {
      catalog = (parseYaml(readFileSync(join(dir, catalogName), 'utf8'), { uniqueKeys: true, maxAliasCount: 100 }) ?? {}) as ToolCatalogInput;
    } catch (e) {
      throw new MandateError('POLICY_INVALID', `${catalogName} is not valid YAML: ${(e as Error).message}`);
    }
  }
  return { sources, catalog };
}

/**
 * Reads several policy folders as one set: every folder's *.cedar files (each named
 * `<folder>/<file>` when there is more than one folder) and the union of their tools.yaml
 * entries. A tool classified in two folders is an error: its facts would depend on the order.
 * This is how an organisation's facts about its own tools join a shared rule set, such as the
 * shipped baseline in policies/agent-baseline.
 */
export function readPolicyDirs(dirs: readonly string[]): { sources: PolicySource[]; catalog: ToolCatalogInput } {
  if (dirs.length === 1) return readPolicyDir(dirs[0] as string);
  const sources: PolicySource[] = [];
  const tools: unknown[] = [];
  const classifiedIn = new Map<string, string>();
  for (const dir of dirs) {
    const one = readPolicyDir(dir);
    for (const s of one.sources) sources.push({ source: `${basename(dir)}/${s.source}`, text: s.text });
    const raw = one.catalog as { tools?: unknown };
    const keys = Object.keys(one.catalog as object);
    if (keys.some((k) => k !== 'tools')) throw new MandateError('POLICY_INVALID', `${dir}: tools.yaml may hold only \`tools\` (found ${keys.join(', ')})`);
    if (raw.tools === undefined || raw.tools === null) continue;
    if (!Array.isArray(raw.tools)) throw new MandateError('POLICY_INVALID', `${dir}: tools in tools.yaml must be a list`);
    for (const t of raw.tools as unknown[]) {
      const name = t !== null && typeof t === 'object' && typeof (t as { name?: unknown }).name === 'string' ? (t as { name: string }).name : undefined;
      if (name !== undefined) {
        const other = classifiedIn.get(name);
        if (other !== undefined) throw new MandateError('POLICY_INVALID', `tool ${name} is classified in both ${other} and ${dir}`);
        classifiedIn.set(name, dir);
      }
      tools.push(t);
    }
  }
  return { sources, catalog: { tools } as ToolCatalogInput };
}

/** One folder, several (see readPolicyDirs), or none: the empty set, which denies everything. */
export function loadPolicyDir(dir: string | readonly string[] | undefined, hasher: Hasher, options: PolicySetOptions = {}): PolicySet {
  const dirs = dir === undefined ? [] : typeof dir === 'string' ? [dir] : dir;
  if (dirs.length === 0) return PolicySet.load([], {}, hasher, options);
  const { sources, catalog } = readPolicyDirs(dirs);
  return PolicySet.load(sources, catalog, hasher, options);
}

/** How loaded sets evaluate: the engine and the live cross-check (shared by every reload). */
export interface PolicyEngineOptions {
  readonly engine?: 'compiled' | 'cedar';
  readonly crossCheck?: CrossChecker | undefined;
}

/** The policy set in force; reload swaps it atomically or keeps the old one on error. */
export class PolicyHolder {
  private set: PolicySet;
  private readonly dir: string | readonly string[] | undefined;
  private readonly hasher: Hasher;
  private readonly options: PolicyEngineOptions;

  constructor(dir: string | readonly string[] | undefined, hasher: Hasher, options: PolicyEngineOptions = {}) {
    this.dir = dir;
    this.hasher = hasher;
    this.options = options;
    this.set = loadPolicyDir(dir, hasher, options);
  }

  /** the live cross-check of compiled decisions against cedar-wasm, if on */
  get crossCheck(): CrossChecker | undefined {
    return this.options.crossCheck;
  }

  get current(): PolicySet {
    return this.set;
  }

  get folder(): string | readonly string[] | undefined {
    return this.dir;
  }

  reload(): PolicySet {
    return this.swap(this.read());
  }

  /** reads the folder again as a candidate set, without putting it in force (throws POLICY_INVALID) */
  read(): PolicySet {
    return loadPolicyDir(this.dir, this.hasher, this.options);
  }

  /** puts a set read by `read()` in force */
  swap(next: PolicySet): PolicySet {
    const old = this.set;
    this.set = next;
    // free the old set's WASM memory once no decision can still be holding it
    setTimeout(() => old.dispose(), RETIRE_AFTER_MS).unref();
    return next;
  }
}
