/**
 * Purpose clusters: tasks of one agent whose declared purposes use mostly the same words. A
 * purpose is read as policy reads it (purpose-words.ts: base forms, negated words left out),
 * without the words every request has ("please", "the", "can"…). Two purposes are alike when the
 * Jaccard similarity of their word sets is at least `clusterSimilarity`.
 *
 * Deterministic, in two passes: tasks in purpose order seed a cluster when no seed yet is alike
 * (up to `maxClusters` seeds); then every task joins its nearest seed, exactly as a later task is
 * matched (`nearestSeed`, ties to the seed whose words sort first), so a task learnt from is
 * always judged by the template of the cluster it taught.
 */
import { readPurposeWords } from '../purpose-words.ts';
import type { ObservedTask } from './observe.ts';

const FILLER = new Set([
  'a', 'an', 'the', 'and', 'or', 'of', 'to', 'in', 'on', 'at', 'for', 'from', 'with', 'by', 'as', 'is', 'are', 'be', 'it', 'its', 'this', 'that', 'these', 'those',
  'i', 'me', 'my', 'you', 'your', 'we', 'our', 'us', 'can', 'could', 'would', 'will', 'please', 'do', 'does', 'did', 'what', 'which', 'who', 'how', 'all', 'any', 'some',
  'there', 'here', 'if', 'so', 'also', 'then', 'but', 'have', 'has', 'had', 'get', 'am',
]);

export interface PurposeCluster {
  readonly id: string;
  /** the seed's words */
  readonly words: readonly string[];
  /** the most frequent purpose text among its tasks */
  readonly purpose: string;
  readonly tasks: readonly ObservedTask[];
}

/** The words two purposes are compared on. */
export function clusterWords(purpose: string): Set<string> {
  const out = new Set<string>();
  for (const w of readPurposeWords(purpose.slice(0, 4000)).words) if (!FILLER.has(w) && w.length > 1) out.add(w);
  return out;
}

export function jaccard(a: ReadonlySet<string>, b: ReadonlySet<string>): number {
  if (a.size === 0 && b.size === 0) return 1;
  let both = 0;
  for (const w of a) if (b.has(w)) both += 1;
  return both / (a.size + b.size - both);
}

/** The index of the most alike seed at or above `similarity` (ties: the seed whose words sort first), or -1. */
export function nearestSeed(words: ReadonlySet<string>, seeds: readonly ReadonlySet<string>[], similarity: number): number {
  let best = -1;
  let bestScore = -1;
  let bestKey = '';
  seeds.forEach((s, i) => {
    const j = jaccard(words, s);
    if (j < similarity || j < bestScore) return;
    const key = [...s].sort().join(' ');
    if (j > bestScore || key < bestKey) {
      best = i;
      bestScore = j;
      bestKey = key;
    }
  });
  return best;
}

export function clusterPurposes(tasks: readonly ObservedTask[], opts: { readonly clusterSimilarity?: number; readonly maxClusters?: number } = {}): PurposeCluster[] {
  const similarity = opts.clusterSimilarity ?? 0.5;
  const max = opts.maxClusters ?? 32;
  const sorted = [...tasks].sort((a, b) => (a.purpose < b.purpose ? -1 : a.purpose > b.purpose ? 1 : a.task < b.task ? -1 : 1));
  const wordsByPurpose = new Map<string, Set<string>>();
  const wordsOf = (purpose: string): Set<string> => {
    let w = wordsByPurpose.get(purpose);
    if (w === undefined) {
      w = clusterWords(purpose);
      wordsByPurpose.set(purpose, w);
    }
    return w;
  };
  const seeds: Set<string>[] = [];
  for (const t of sorted) if (seeds.length < max && nearestSeed(wordsOf(t.purpose), seeds, similarity) < 0) seeds.push(wordsOf(t.purpose));
  const members: ObservedTask[][] = seeds.map(() => []);
  for (const t of sorted) {
    const i = nearestSeed(wordsOf(t.purpose), seeds, similarity);
    if (i >= 0) (members[i] as ObservedTask[]).push(t);
  }
  const order = members.map((_, i) => i).sort((a, b) => (members[b] as ObservedTask[]).length - (members[a] as ObservedTask[]).length || a - b);
  return order.map((i, n) => {
    const m = members[i] as ObservedTask[];
    const freq = new Map<string, number>();
    for (const t of m) freq.set(t.purpose, (freq.get(t.purpose) ?? 0) + 1);
    const purpose = [...freq.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0]?.[0] ?? '';
    return { id: `c${n + 1}`, words: [...(seeds[i] as Set<string>)].sort(), purpose, tasks: m };
  });
}
