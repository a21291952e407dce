import type { MethodConfig } from '../schemas/config';
import type { Metadata, PoolEntry } from '../schemas/records';
import { pickIndex, pickWeighted, rngFrom } from '../util/random';
import { shares } from '../workflows/allocation';

/**
 * Mix-and-match (docs/method.md section 2). Each entry takes one use case drawn from the encoded use
 * cases with duplicates kept (frequent use cases are drawn more often) and k skills drawn without
 * replacement from the union of all skills, k uniform in [skillsPerEntryMin, skillsPerEntryMax].
 * Skills are weighted by how many seeds named them ('frequency', default) so the pool's skill
 * distribution follows the seeds', or uniformly ('uniform'). A pure function of its inputs and the
 * run seed, so a retried activity builds the same pool.
 */
export function mixAndMatch(encoded: Metadata[], method: MethodConfig): Metadata[] {
  if (encoded.length === 0) return [];
  const useCases = encoded.map((m) => m.use_case);
  const skillCounts = new Map<string, number>();
  for (const m of encoded) for (const s of m.skills) skillCounts.set(s, (skillCounts.get(s) ?? 0) + 1);
  const skills = [...skillCounts.keys()].sort();
  const rng = rngFrom(`${method.runSeed}:pool`);
  const pool: Metadata[] = [];
  for (let i = 0; i < method.poolSize; i++) {
    const useCase = useCases[pickIndex(rng, useCases.length)]!;
    const span = method.skillsPerEntryMax - method.skillsPerEntryMin + 1;
    const k = Math.min(skills.length, method.skillsPerEntryMin + pickIndex(rng, span));
    const remaining = [...skills];
    const chosen: string[] = [];
    while (chosen.length < k) {
      const weights = remaining.map((s) => (method.skillWeighting === 'uniform' ? 1 : skillCounts.get(s)!));
      chosen.push(remaining.splice(pickWeighted(rng, weights), 1)[0]!);
    }
    pool.push({ use_case: useCase, skills: chosen });
  }
  return pool;
}

/**
 * Equal shares of `total` instructions over the entries; `total mod n` of them, from `startIndex`
 * on, get one more.
 */
export function allocate(pool: Metadata[], total: number, startIndex = 0): PoolEntry[] {
  if (pool.length === 0) return [];
  // The same split the run workflow makes (src/workflows/allocation.ts).
  const counts = shares(pool.length, total, startIndex);
  return pool.map((metadata, i) => ({ index: i, metadata, instructions: counts[i]! }));
}
