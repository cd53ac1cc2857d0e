/**
 * The closest of some known names to a misspelt one, by edit distance (Levenshtein:
 * insertions, deletions and substitutions each count 1), for "did you mean" hints.
 */

/** Edit distance between `a` and `b`. */
export function editDistance(a: string, b: string): number {
  if (a === b) return 0;
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min(previous[j]! + 1, current[j - 1]! + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length]!;
}

/** The candidate closest to `name` (the first of equals), or undefined when there is none. */
export function nearest(name: string, candidates: Iterable<string>): { readonly name: string; readonly distance: number } | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const candidate of candidates) {
    const distance = editDistance(name, candidate);
    if (best === undefined || distance < best.distance) best = { name: candidate, distance };
  }
  return best;
}

/** The candidate close enough to `name` to be a likely misspelling of it, if any. */
export function likelyMeant(name: string, candidates: Iterable<string>): string | undefined {
  const best = nearest(name, candidates);
  if (best === undefined) return undefined;
  return best.distance <= Math.max(2, Math.floor(name.length / 3)) ? best.name : undefined;
}
