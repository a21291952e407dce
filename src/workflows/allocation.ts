/**
 * How a run splits its work: instructions over pool entries, and `limits.concurrency` over entries
 * and their instructions. Pure, so the workflows and the bench's in-process baseline
 * (bench/baseline.ts) share them.
 */

/** Equal shares of `total` over `entries`; remainders go to the entries from `offset` on. */
export function shares(entries: number, total: number, offset: number): number[] {
  const base = Math.floor(total / entries);
  const extra = total % entries;
  return Array.from({ length: entries }, (_, i) => base + ((i - offset + entries) % entries < extra ? 1 : 0));
}

/** A top-up round's shares: remainders spread over different entries each round. */
export function topUpAllocation(entries: number, total: number, round: number): number[] {
  return shares(entries, total, (round * 7919) % entries);
}

/**
 * How the run's `limits.concurrency` is split between pool entries and their instructions: each
 * entry runs up to `perEntry` instructions at once (never more than its smallest share, so no slot
 * sits idle for want of work, and never more than MAX_PER_ENTRY), and `entries` entries run side by
 * side.
 */
export const MAX_PER_ENTRY = 32;

export function entryWindows(
  concurrency: number,
  smallestShare: number,
  maxPerEntry = MAX_PER_ENTRY,
): { perEntry: number; entries: number } {
  // Instructions run inside their entry's workflow, so its history grows with the instructions in
  // flight; the cap keeps one entry's history between continue-as-new points bounded.
  const perEntry = Math.max(1, Math.min(concurrency, smallestShare, maxPerEntry));
  return { perEntry, entries: Math.max(1, Math.ceil(concurrency / perEntry)) };
}

/**
 * How many instructions a top-up round decodes, from what the run has seen: enough to keep the
 * `missing` pairs at the observed keep rate (kept / finished), with the rate taken as at least
 * TOP_UP_MIN_KEEP_RATE, so a round is never more than 1 / TOP_UP_MIN_KEEP_RATE (4) times the
 * missing pairs, however little the filter kept so far. The run also stops starting instructions
 * once it has kept its size, so a round sized generously does not mean work done needlessly.
 */
export const TOP_UP_MIN_KEEP_RATE = 0.25;

export function topUpSize(missing: number, kept: number, finished: number): number {
  if (missing <= 0) return 0;
  const keepRate = finished > 0 ? kept / finished : 0;
  // (The epsilon keeps float error from adding one: 3 / (1 / 3) is 9, not 10.)
  return Math.ceil(missing / Math.max(keepRate, TOP_UP_MIN_KEEP_RATE) - 1e-9);
}
