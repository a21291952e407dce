import { createHash } from 'node:crypto';
import { rngFrom } from '../util/random';

/**
 * Seeded randomness for the simulator. Content choices come from a hash of (seed, request), so the
 * same request always gets the same answer; fault injection uses a seeded stream, so a run with the
 * same seed and the same request order sees the same faults.
 */

/** A 32-bit hash of the parts (sha256-based: stable across Node versions and platforms). */
export function hash32(...parts: (string | number)[]): number {
  const h = createHash('sha256');
  for (const p of parts) h.update(`${String(p)}\u0000`);
  return h.digest().readUInt32BE(0);
}

/** The project's one seeded generator (src/util/random.ts), for a numeric seed. */
export function prng(seed: number): () => number {
  return rngFrom(seed);
}

/** A uniform [0,1) number fixed by the parts: one independent "coin" per named decision. */
export function unit(...parts: (string | number)[]): number {
  return hash32(...parts) / 4294967296;
}

export function pick<T>(items: readonly T[], rand: () => number): T {
  return items[Math.floor(rand() * items.length) % items.length]!;
}

/** Fisher-Yates on a copy. */
export function shuffled<T>(items: readonly T[], rand: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** A lognormal sample with the given mean (sigma fixed at 0.5: a realistic long-ish tail). */
export function lognormal(mean: number, rand: () => number, sigma = 0.5): number {
  if (mean <= 0) return 0;
  const mu = Math.log(mean) - (sigma * sigma) / 2;
  // Box-Muller; 1 - rand() keeps the log argument away from 0.
  const z = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  return Math.exp(mu + sigma * z);
}

/**
 * The simulated latency of the `nth` sending (0 first) of the request whose body hashes to
 * `requestKey`: fixed by those two alone, so it does not depend on what else arrives meanwhile.
 */
export function requestLatencyMs(meanMs: number, requestKey: number, nth: number): number {
  return lognormal(meanMs, prng(hash32(requestKey, nth)));
}
