import {
  DEFAULT_DEDUPE_THRESHOLD,
  DEFAULT_NGRAM,
  DEFAULT_SHINGLE,
  type MethodConfig,
} from '../schemas/config';

/**
 * The data-quality settings of a run, resolved from its method config (old configs included: a
 * `dedupeInstructions: true` from before `method.dedupe` is exact dedupe). Pure: workflows use it to
 * decide whether a decode batch is screened at all.
 */
export type DedupeMode = 'off' | 'exact' | 'near';

export interface DedupeSettings {
  mode: DedupeMode;
  threshold: number;
  shingle: number;
}

type MethodLike = Pick<MethodConfig, 'dedupe' | 'dedupeInstructions' | 'decontaminate'>;

export function dedupeSettings(method: Partial<MethodLike>): DedupeSettings {
  const d = method.dedupe;
  const settings: DedupeSettings =
    typeof d === 'object'
      ? { mode: d.mode, threshold: d.threshold, shingle: d.shingle }
      : { mode: d ?? 'off', threshold: DEFAULT_DEDUPE_THRESHOLD, shingle: DEFAULT_SHINGLE };
  // (`dedupe` defaults to "off", so an old config's `dedupeInstructions: true` turns exact dedupe on.)
  if (settings.mode === 'off' && method.dedupeInstructions) settings.mode = 'exact';
  return settings;
}

export function ngramOf(method: Partial<MethodLike>): number {
  return method.decontaminate?.ngram ?? DEFAULT_NGRAM;
}

/** Removal reasons, as counted in the run's counters and listed in the report. */
export type RemovalReason = 'exact-duplicate' | 'near-duplicate' | 'contaminated';

export interface Removal {
  id: string;
  reason: RemovalReason;
  text: string;
  /** Duplicates: the id of the instruction it repeats (`<version>/<id>` for an earlier version's). */
  of?: string;
  /** Near duplicates: Jaccard similarity of the word-shingle sets. */
  similarity?: number;
  /** Contaminated: the benchmark item it overlaps. */
  benchmark?: { file: string; id: string; ngram: string };
}
