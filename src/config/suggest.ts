/**
 * "Did you mean" suggestions for misspelt keys. Comparison ignores case, '_' and '-', so
 * `pool_size` and `PoolSize` both map to `poolSize`; beyond that a small edit distance is allowed.
 */

function squash(s: string): string {
  return s.toLowerCase().replace(/[_\-\s]/g, '');
}

/**
 * Edit distance counting a swap of adjacent letters as one edit (optimal string alignment), since
 * `modle` for `model` is the commonest typo; O(a*b), and keys are short.
 */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** The closest candidate to `key`, if it is close enough to be a plausible typo. */
export function suggest(key: string, candidates: readonly string[]): string | undefined {
  const k = squash(key);
  let best: { name: string; d: number } | undefined;
  for (const name of candidates) {
    const d = editDistance(k, squash(name));
    if (!best || d < best.d) best = { name, d };
  }
  if (!best) return undefined;
  // Allow roughly one typo per four characters, at least one.
  const allowed = Math.max(1, Math.floor(Math.max(k.length, 1) / 4));
  return best.d <= allowed ? best.name : undefined;
}
