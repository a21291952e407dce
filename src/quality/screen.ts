import { bandKeys, bandsFor, salts, signature, type MinHashParams } from './minhash';
import type { DedupeSettings, Removal } from './settings';
import { IndexFiles, qualityKeys, textOf } from './store';
import { exactKey, jaccard, key64, ngrams, normalise, shingles, words } from './text';
import { readBenchManifest, readBenchItem } from './benchmarks';
import type { Store } from '../store/store';
import { openStore } from '../store/open';

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
    private readonly files: IndexFiles,
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
  async add(item: ScreenItem): Promise<void> {
    const p = qualityKeys;
    const ek = exactKey(item.text);
    await this.files.append(p.exact(ek), `${ek} ${item.id}`);
    await this.files.append(p.texts(item.id), JSON.stringify({ id: item.id, text: item.text }));
    if (this.dedupe.mode === 'near')
      for (const [b, k] of this.bands(item.text).entries())
        await this.files.append(p.band(b, k), `${k} ${item.id}`);
  }

  /** The kept instruction this one repeats, if any. */
  async duplicateOf(item: ScreenItem): Promise<Removal | undefined> {
    const p = qualityKeys;
    const ek = exactKey(item.text);
    const exact = (await this.files.lookup(p.exact(ek), ek)).find((id) => id !== item.id);
    if (exact) return { id: item.id, reason: 'exact-duplicate', text: item.text, of: exact };
    if (this.dedupe.mode !== 'near') return undefined;
    const candidates = new Set<string>();
    const bands = this.bands(item.text);
    // The band shards are independent reads: fetch them together (one round trip on S3).
    const hits = await Promise.all(bands.map((k, b) => this.files.lookup(p.band(b, k), k)));
    for (const ids of hits) for (const id of ids) if (id !== item.id) candidates.add(id);
    const mine = shingles(item.text, this.dedupe.shingle);
    let best: { id: string; similarity: number } | undefined;
    for (const id of [...candidates].sort()) {
      const other = await textOf(this.files, id);
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
export async function contamination(
  from: IndexFiles | string,
  item: ScreenItem,
): Promise<Removal | undefined> {
  const files = typeof from === 'string' ? new IndexFiles(openStore(from)) : from;
  const manifest = await readBenchManifest(files);
  if (!manifest) return undefined;
  const p = qualityKeys;
  const padded = ` ${normalise(item.text)} `;
  const lengths = [manifest.ngram, ...manifest.shortLengths.filter((l) => l < manifest.ngram)];
  for (const n of lengths) {
    if (words(item.text).length < n) continue;
    for (const gram of ngrams(item.text, n)) {
      const k = key64(gram);
      for (const ref of await files.lookup(p.bench(k), k)) {
        const bench = await readBenchItem(files, Number(ref));
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

/**
 * Screens a batch against the index in `out` (an out dir or its store) and adds the survivors to it;
 * the caller holds the run's quality lock.
 */
export async function screenBatch(
  out: string | Store,
  items: ScreenItem[],
  opts: ScreenOptions,
): Promise<ScreenResult> {
  const files = new IndexFiles(typeof out === 'string' ? openStore(out) : out);
  const indexer = opts.dedupe.mode === 'off' ? undefined : new Indexer(files, opts.dedupe, opts.seed);
  const keep: string[] = [];
  const removed: Removal[] = [];
  for (const item of items) {
    const removal =
      (opts.decontaminate ? await contamination(files, item) : undefined) ??
      (await indexer?.duplicateOf(item));
    if (removal) {
      removed.push(removal);
      continue;
    }
    await indexer?.add(item);
    keep.push(item.id);
  }
  await files.flush();
  return { keep, removed };
}
