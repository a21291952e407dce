import { hash32 } from '../util/random';
import { shingles } from './text';

/**
 * MinHash signatures and LSH banding (Broder 1997; Leskovec et al., Mining of Massive Datasets ch. 3).
 *
 * A signature holds, for each of `perm` seeded hash functions, the smallest hash over a text's
 * shingles; two texts agree at one position with probability equal to the Jaccard similarity of their
 * shingle sets. Banding cuts the signature into `bands` bands of `rows` rows: texts that agree on a
 * whole band share a bucket and become candidates, which happens with probability 1 - (1 - s^r)^b,
 * an S-curve that rises steeply around (1/b)^(1/r). The hash functions are drawn from the run seed,
 * so a run seed always gives the same signatures and the same candidates.
 */
export interface MinHashParams {
  /** Hash functions (signature length) = bands * rows. */
  perm: number;
  bands: number;
  rows: number;
  /** Words per shingle. */
  shingle: number;
  seed: number;
}

/** murmur3's 32-bit finaliser: spreads (x xor salt) over all bits. */
function mix(x: number, salt: number): number {
  let h = (x ^ salt) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export function salts(seed: number, perm: number): number[] {
  return Array.from({ length: perm }, (_, i) => hash32(`minhash:${seed}:${i}`));
}

export function signature(text: string, p: MinHashParams, salt = salts(p.seed, p.perm)): number[] {
  const sig = new Array<number>(p.perm).fill(0xffffffff);
  for (const s of shingles(text, p.shingle)) {
    const h = hash32(s);
    for (let i = 0; i < p.perm; i++) {
      const v = mix(h, salt[i]!);
      if (v < sig[i]!) sig[i] = v;
    }
  }
  return sig;
}

/** Share of positions where two signatures agree: an estimate of the Jaccard similarity. */
export function estimatedSimilarity(a: number[], b: number[]): number {
  let same = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
  return a.length ? same / a.length : 0;
}

/** One bucket key per band: the band number and a hash of its rows. */
export function bandKeys(sig: number[], p: Pick<MinHashParams, 'bands' | 'rows'>): string[] {
  const keys: string[] = [];
  for (let b = 0; b < p.bands; b++) {
    const rows = sig.slice(b * p.rows, (b + 1) * p.rows).join(',');
    keys.push(
      hash32(rows).toString(16).padStart(8, '0') + hash32(`${b}|${rows}`).toString(16).padStart(8, '0'),
    );
  }
  return keys;
}

/**
 * Bands and rows for a similarity threshold: the most rows (fewest false candidates) whose S-curve
 * midpoint (1/b)^(1/r) still sits at least 0.1 below the threshold, so pairs at the threshold are
 * found with high probability (misses cost a duplicate kept; false candidates cost only a check).
 */
export function bandsFor(threshold: number, perm = 128): { bands: number; rows: number } {
  let best = { bands: perm, rows: 1 };
  for (let rows = 1; rows <= perm; rows++) {
    if (perm % rows !== 0) continue;
    const bands = perm / rows;
    if (Math.pow(1 / bands, 1 / rows) <= threshold - 0.1) best = { bands, rows };
  }
  return best;
}

/** Probability that a pair of similarity s becomes a candidate. */
export function candidateProbability(s: number, p: { bands: number; rows: number }): number {
  return 1 - Math.pow(1 - Math.pow(s, p.rows), p.bands);
}
