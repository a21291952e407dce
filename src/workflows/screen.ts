/**
 * Screening of decoded instructions (QUALITY_SCREEN in patches.ts; src/quality): decontamination
 * against the benchmark files given to the run, exact and near duplicates; one activity per decode
 * batch.
 */
import { dedupeSettings } from '../quality/settings';
import type { ResolvedConfig } from '../schemas/config';
import type { Counters } from '../schemas/run';
import type { fileActivities } from './activities';

/** Whether decoded instructions are screened (duplicates, benchmarks): see QUALITY_SCREEN. */
export function needsScreening(
  config: ResolvedConfig,
  decontaminate: readonly unknown[] | boolean | undefined,
): boolean {
  const benchmarks = Array.isArray(decontaminate) ? decontaminate.length > 0 : decontaminate === true;
  return benchmarks || dedupeSettings(config.method).mode !== 'off';
}

/**
 * Screens a decoded batch in record id order, counts what it removed, and returns the ids kept.
 * The decision is stored per batch (named by `batch`), so a retried activity returns the same one.
 */
export async function screenBatch(
  files: ReturnType<typeof fileActivities>,
  b: {
    outDir: string;
    config: ResolvedConfig;
    decontaminate?: boolean;
    batch: string;
    ids: string[];
    texts: string[];
  },
  c: Counters,
  stopWhenDone: boolean,
): Promise<Set<string>> {
  const decided = await files.screenInstructions({
    outDir: b.outDir,
    batch: b.batch,
    items: b.texts.map((text, j) => ({ id: b.ids[j]!, text })),
    method: b.config.method,
    decontaminate: b.decontaminate === true,
  });
  // Removed instructions are counted as worked on: kept + dropped + failed + removed = instructions.
  if (stopWhenDone) c.instructions += decided.removed.length;
  for (const r of decided.removed) {
    if (r.reason === 'exact-duplicate') c.duplicatesRemoved++;
    else if (r.reason === 'near-duplicate') c.nearDuplicatesRemoved = (c.nearDuplicatesRemoved ?? 0) + 1;
    else c.contaminatedRemoved = (c.contaminatedRemoved ?? 0) + 1;
  }
  return new Set(decided.keep);
}
