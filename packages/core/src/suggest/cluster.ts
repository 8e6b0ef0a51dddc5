/**
 * Purpose clusters: tasks of one agent whose declared purposes use mostly the same words. A
 * purpose is read as policy reads it (purpose-words.ts: base forms, negated words left out),
 * without the words every request has ("please", "the", "can"…). Two purposes are alike when the
 * Jaccard similarity of their word sets is at least `clusterSimilarity`.
 *
 * Greedy and deterministic: tasks in purpose order, each joins the cluster whose seed (its first
 * task's words) is most alike, or seeds a new one. A later task is matched to a cluster the same way.
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

/** The index of the most alike seed at or above `similarity`, or -1. */
export function nearestSeed(words: ReadonlySet<string>, seeds: readonly ReadonlySet<string>[], similarity: number): number {
  let best = -1;
  let bestScore = -1;
  seeds.forEach((s, i) => {
    const j = jaccard(words, s);
    if (j >= similarity && j > bestScore) {
      best = i;
      bestScore = j;
    }
  });
  return best;
}

export function clusterPurposes(tasks: readonly ObservedTask[], opts: { readonly clusterSimilarity?: number; readonly maxClusters?: number } = {}): PurposeCluster[] {
  const similarity = opts.clusterSimilarity ?? 0.5;
  const max = opts.maxClusters ?? 32;
  const seeds: Set<string>[] = [];
  const members: ObservedTask[][] = [];
  const sorted = [...tasks].sort((a, b) => (a.purpose < b.purpose ? -1 : a.purpose > b.purpose ? 1 : a.task < b.task ? -1 : 1));
  const wordsByPurpose = new Map<string, Set<string>>();
  for (const t of sorted) {
    let words = wordsByPurpose.get(t.purpose);
    if (words === undefined) {
      words = clusterWords(t.purpose);
      wordsByPurpose.set(t.purpose, words);
    }
    const i = nearestSeed(words, seeds, similarity);
    if (i >= 0) (members[i] as ObservedTask[]).push(t);
    else if (seeds.length < max) {
      seeds.push(words);
      members.push([t]);
    }
  }
  const order = members.map((m, i) => i).sort((a, b) => (members[b] as ObservedTask[]).length - (members[a] as ObservedTask[]).length || a - b);
  return order.map((i, n) => {
    const m = members[i] as ObservedTask[];
    const freq = new Map<string, number>();
    for (const t of m) freq.set(t.purpose, (freq.get(t.purpose) ?? 0) + 1);
    const purpose = [...freq.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0]?.[0] ?? '';
    return { id: `c${n + 1}`, words: [...(seeds[i] as Set<string>)].sort(), purpose, tasks: m };
  });
}
