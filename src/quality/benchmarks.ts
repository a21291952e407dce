import path from 'node:path';
import { loadSeeds } from '../seeds/load';
import type { Store } from '../store/store';
import { openStore } from '../store/open';
import { IndexFiles, qualityKeys } from './store';
import { key64, ngrams, normalise, words } from './text';

/**
 * The benchmark n-gram index of a run (decontamination), built once per run by prepareQuality from
 * the files of `--decontaminate`. The files are read with the seed loaders (src/seeds/load.ts), so any
 * seed format works, the public evaluation sets (Vicuna, Self-Instruct, Koala, WizardLM) as they are.
 *
 * Each item contributes its word n-grams (normalised like instructions). An item shorter than n words
 * but at least MIN_SHORT_WORDS long contributes its whole text, so that short benchmark prompts (most
 * of Vicuna's) are still found when an instruction contains them whole; shorter ones would match
 * ordinary phrases and are left out (counted in the manifest).
 */
export const MIN_SHORT_WORDS = 6;

export interface BenchManifest {
  ngram: number;
  /** Lengths (in words) of the short items indexed whole. */
  shortLengths: number[];
  files: { file: string; items: number; tooShort: number }[];
}

export interface BenchItem {
  file: string;
  id: string;
  text: string;
}

export async function buildBenchmarkIndex(
  out: string | Store,
  files: string[],
  ngram: number,
): Promise<BenchManifest> {
  const store = typeof out === 'string' ? openStore(out) : out;
  const p = qualityKeys;
  await store.removeAll(p.benchDir);
  const index = new IndexFiles(store);
  const shortLengths = new Set<number>();
  const manifest: BenchManifest = { ngram, shortLengths: [], files: [] };
  let n = 0;
  const items: string[] = [];
  for (const file of files) {
    const { seeds } = loadSeeds(file, { skipInvalid: true, maxSeedChars: Number.MAX_SAFE_INTEGER });
    let tooShort = 0;
    for (const seed of seeds) {
      const count = words(seed.instruction).length;
      let grams = ngrams(seed.instruction, ngram);
      if (count < ngram) {
        if (count < MIN_SHORT_WORDS) {
          tooShort++;
          continue;
        }
        grams = [normalise(seed.instruction)];
        shortLengths.add(count);
      }
      const item = n++;
      items.push(
        JSON.stringify({ file: path.basename(file), path: file, id: seed.id, text: seed.instruction }),
      );
      for (const gram of new Set(grams)) {
        const k = key64(gram);
        await index.append(p.bench(k), `${k} ${item}`);
      }
    }
    manifest.files.push({ file, items: seeds.length - tooShort, tooShort });
  }
  await index.flush();
  await store.write(p.benchItems, items.join('\n') + (items.length ? '\n' : ''));
  manifest.shortLengths = [...shortLengths].sort((a, b) => a - b);
  await store.writeJson(p.benchManifest, manifest);
  return manifest;
}

/** The manifest, read once per screening (through its IndexFiles) or from a store. */
export async function readBenchManifest(from: IndexFiles | Store): Promise<BenchManifest | undefined> {
  if (from instanceof IndexFiles) {
    const lines = await from.lines(qualityKeys.benchManifest);
    return lines.length ? (JSON.parse(lines.join('\n')) as BenchManifest) : undefined;
  }
  return from.readJson<BenchManifest>(qualityKeys.benchManifest);
}

/** Benchmark item number `index` (items are few: a hit reads the items file, once per screening). */
export async function readBenchItem(files: IndexFiles, index: number): Promise<BenchItem | undefined> {
  const line = (await files.lines(qualityKeys.benchItems))[index];
  return line ? (JSON.parse(line) as BenchItem) : undefined;
}
