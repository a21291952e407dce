import { bandKeys, bandsFor, salts, signature, type MinHashParams } from './minhash';
import type { DedupeSettings, Removal } from './settings';
import { appendLine, lookup, qualityPaths, textOf } from './store';
import { exactKey, jaccard, key64, ngrams, normalise, shingles, words } from './text';
import { readBenchManifest, readBenchItem } from './benchmarks';

/**
 * Screening of one decode batch, right after decode and before any answer or judge call: each
 * instruction, in the order given (record id order), is removed when it overlaps a benchmark item
 * (decontamination), repeats a kept instruction exactly, or (near mode) is a paraphrase of one at
 * Jaccard >= threshold; otherwise it is kept and added to the index, so later instructions (of this
 * batch, of later batches, of later versions of a schedule) are screened against it.
 *
 * Candidates come from MinHash LSH buckets; the decision itself is the true Jaccard similarity of the
 * two shingle sets, so it does not depend on the luck of the hash draw once a pair is a candidate.
 */
export interface ScreenItem {
  id: string;
  text: string;
}

export interface ScreenOptions {
  dedupe: DedupeSettings;
  seed: number;
  /** Check against the run's benchmark index (built by prepareQuality). */
  decontaminate: boolean;
}

export interface ScreenResult {
  keep: string[];
  removed: Removal[];
}

/** Signature length: 128 hash functions, a standard size (standard error of the estimate ~0.04). */
export const PERMUTATIONS = 128;

export function minhashParams(d: DedupeSettings, seed: number): MinHashParams {
  return { perm: PERMUTATIONS, ...bandsFor(d.threshold, PERMUTATIONS), shingle: d.shingle, seed };
}

/** Index state reused within one screening (hash salts are the same for every text of a run). */
export class Indexer {
  readonly params: MinHashParams;
  private readonly salt: number[];

  constructor(
    private readonly outDir: string,
    private readonly dedupe: DedupeSettings,
    seed: number,
  ) {
    this.params = minhashParams(dedupe, seed);
    this.salt = salts(seed, this.params.perm);
  }

  private bands(text: string): string[] {
    return bandKeys(signature(text, this.params, this.salt), this.params);
  }

  /** Adds a kept instruction to the index. */
  add(item: ScreenItem): void {
    const p = qualityPaths(this.outDir);
    const ek = exactKey(item.text);
    appendLine(p.exact(ek), `${ek} ${item.id}`);
    appendLine(p.texts(item.id), JSON.stringify({ id: item.id, text: item.text }));
    if (this.dedupe.mode === 'near')
      for (const [b, k] of this.bands(item.text).entries()) appendLine(p.band(b, k), `${k} ${item.id}`);
  }

  /** The kept instruction this one repeats, if any. */
  duplicateOf(item: ScreenItem): Removal | undefined {
    const p = qualityPaths(this.outDir);
    const ek = exactKey(item.text);
    const exact = lookup(p.exact(ek), ek).find((id) => id !== item.id);
    if (exact) return { id: item.id, reason: 'exact-duplicate', text: item.text, of: exact };
    if (this.dedupe.mode !== 'near') return undefined;
    const candidates = new Set<string>();
    for (const [b, k] of this.bands(item.text).entries())
      for (const id of lookup(p.band(b, k), k)) if (id !== item.id) candidates.add(id);
    const mine = shingles(item.text, this.dedupe.shingle);
    let best: { id: string; similarity: number } | undefined;
    for (const id of [...candidates].sort()) {
      const other = textOf(this.outDir, id);
      if (other === undefined) continue;
      const similarity = jaccard(mine, shingles(other, this.dedupe.shingle));
      if (similarity >= this.dedupe.threshold && (!best || similarity > best.similarity))
        best = { id, similarity };
    }
    if (!best) return undefined;
    return {
      id: item.id,
      reason: 'near-duplicate',
      text: item.text,
      of: best.id,
      similarity: Math.round(best.similarity * 1000) / 1000,
    };
  }
}

/** The first benchmark item this instruction shares an n-gram with, if any. */
export function contamination(outDir: string, item: ScreenItem): Removal | undefined {
  const manifest = readBenchManifest(outDir);
  if (!manifest) return undefined;
  const p = qualityPaths(outDir);
  const padded = ` ${normalise(item.text)} `;
  const lengths = [manifest.ngram, ...manifest.shortLengths.filter((l) => l < manifest.ngram)];
  for (const n of lengths) {
    if (words(item.text).length < n) continue;
    for (const gram of ngrams(item.text, n)) {
      const k = key64(gram);
      for (const ref of lookup(p.bench(k), k)) {
        const bench = readBenchItem(outDir, Number(ref));
        // A hash match is confirmed on the texts themselves.
        if (bench && ` ${normalise(bench.text)} `.includes(` ${gram} `) && padded.includes(` ${gram} `))
          return {
            id: item.id,
            reason: 'contaminated',
            text: item.text,
            benchmark: { file: bench.file, id: bench.id, ngram: gram },
          };
      }
    }
  }
  return undefined;
}

/** Screens a batch; the caller holds the run's quality lock. */
export function screenBatch(outDir: string, items: ScreenItem[], opts: ScreenOptions): ScreenResult {
  const indexer = opts.dedupe.mode === 'off' ? undefined : new Indexer(outDir, opts.dedupe, opts.seed);
  const keep: string[] = [];
  const removed: Removal[] = [];
  for (const item of items) {
    const removal =
      (opts.decontaminate ? contamination(outDir, item) : undefined) ?? indexer?.duplicateOf(item);
    if (removal) {
      removed.push(removal);
      continue;
    }
    indexer?.add(item);
    keep.push(item.id);
  }
  return { keep, removed };
}
