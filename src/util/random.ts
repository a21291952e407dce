/**
 * Seeded randomness that is the same in workflows and activities: every random choice of a run is a
 * pure function of the run seed and a label, so the same seed gives the same dataset.
 * (No Node imports: workflow code uses this too.)
 */
export function hash32(text: string): number {
  // FNV-1a, then a final avalanche so nearby labels give unrelated seeds.
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}

export type Rng = () => number;

/** mulberry32: small, fast, good enough for sampling. Returns floats in [0, 1). */
export function rngFrom(seed: number | string): Rng {
  let a = typeof seed === 'number' ? seed >>> 0 : hash32(seed);
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function pickIndex(rng: Rng, length: number): number {
  return Math.floor(rng() * length);
}

/** Index drawn with probability proportional to weights[i]. */
export function pickWeighted(rng: Rng, weights: number[]): number {
  const total = weights.reduce((a, b) => a + b, 0);
  let r = rng() * total;
  for (let i = 0; i < weights.length; i++) {
    r -= weights[i]!;
    if (r < 0) return i;
  }
  return weights.length - 1;
}
