import fs from 'node:fs';
import path from 'node:path';
import { loadSeeds } from '../seeds/load';
import { readJson, writeJsonAtomic } from '../store/files';
import { appendLine, qualityPaths } from './store';
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

export function buildBenchmarkIndex(outDir: string, files: string[], ngram: number): BenchManifest {
  const p = qualityPaths(outDir);
  fs.rmSync(p.benchDir, { recursive: true, force: true });
  fs.mkdirSync(p.benchDir, { recursive: true });
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
      const index = n++;
      items.push(
        JSON.stringify({ file: path.basename(file), path: file, id: seed.id, text: seed.instruction }),
      );
      for (const gram of new Set(grams)) {
        const k = key64(gram);
        appendLine(p.bench(k), `${k} ${index}`);
      }
    }
    manifest.files.push({ file, items: seeds.length - tooShort, tooShort });
  }
  fs.writeFileSync(p.benchItems, items.join('\n') + (items.length ? '\n' : ''));
  manifest.shortLengths = [...shortLengths].sort((a, b) => a - b);
  writeJsonAtomic(p.benchManifest, manifest);
  return manifest;
}

export function readBenchManifest(outDir: string): BenchManifest | undefined {
  return readJson<BenchManifest>(qualityPaths(outDir).benchManifest);
}

/** Benchmark item number `index` (items are few: a hit reads the items file). */
export function readBenchItem(outDir: string, index: number): BenchItem | undefined {
  const line = fs.readFileSync(qualityPaths(outDir).benchItems, 'utf8').split('\n')[index];
  return line ? (JSON.parse(line) as BenchItem) : undefined;
}
