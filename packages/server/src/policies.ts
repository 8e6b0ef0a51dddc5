import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
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

export function loadPolicyDir(dir: string | undefined, hasher: Hasher, options: PolicySetOptions = {}): PolicySet {
  if (dir === undefined) return PolicySet.load([], {}, hasher, options);
  const { sources, catalog } = readPolicyDir(dir);
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
  private readonly dir: string | undefined;
  private readonly hasher: Hasher;
  private readonly options: PolicyEngineOptions;

  constructor(dir: string | undefined, hasher: Hasher, options: PolicyEngineOptions = {}) {
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

  get folder(): string | undefined {
    return this.dir;
  }

  reload(): PolicySet {
    const next = loadPolicyDir(this.dir, this.hasher, this.options);
    const old = this.set;
    this.set = next;
    // free the old set's WASM memory once no decision can still be holding it
    setTimeout(() => old.dispose(), RETIRE_AFTER_MS).unref();
    return next;
  }
}
