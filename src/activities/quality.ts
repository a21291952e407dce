import fs from 'node:fs';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import type { MethodConfig } from '../schemas/config';
import { buildBenchmarkIndex } from '../quality/benchmarks';
import { screenBatch, Indexer, type ScreenItem, type ScreenResult } from '../quality/screen';
import { dedupeSettings, ngramOf, type RemovalReason } from '../quality/settings';
import {
  fileLines,
  qualityPaths,
  readDecision,
  storedTexts,
  withLock,
  writeDecision,
} from '../quality/store';
import { readJson, writeJsonAtomic } from '../store/files';
import { publishedVersions } from '../schedule/activities';
import { versionsDir } from '../schedule/changes';
import { InputError } from '../util/errors';

/**
 * Data-quality activities (src/quality): the run's index is prepared once (benchmark n-grams, and a
 * schedule's earlier versions), then every decode batch is screened. The workflow passes ids and texts
 * of one batch and gets the survivors back; the index and every decision live in the out dir.
 */
type QualityMethod = Pick<MethodConfig, 'dedupe' | 'dedupeInstructions' | 'decontaminate' | 'runSeed'>;

export interface PrepareQualityInput {
  outDir: string;
  method: QualityMethod;
  /** Benchmark files (`--decontaminate`), any seed format. */
  benchmarks?: string[];
  /** A scheduled refresh: its earlier published versions seed the duplicate index. */
  schedule?: { outDir: string; version: string };
}

export interface PrepareQualityResult {
  benchmarkItems: number;
  previousInstructions: number;
}

export interface ScreenInput {
  outDir: string;
  /** Names the batch's decision file: the same batch retried reads its decision back. */
  batch: string;
  items: ScreenItem[];
  method: QualityMethod;
  decontaminate: boolean;
}

export interface ScreenOutput {
  keep: string[];
  removed: { id: string; reason: RemovalReason }[];
}

/** Adds the instructions of a schedule's earlier versions (kept pairs and decoded instructions). */
function seedFromVersions(
  outDir: string,
  indexer: Indexer,
  schedule: { outDir: string; version: string },
): number {
  let n = 0;
  for (const v of publishedVersions(schedule.outDir).filter((x) => x < schedule.version)) {
    const dir = path.join(versionsDir(schedule.outDir), v);
    // Instructions as decoded (before Self-Rubrics changed them): a refresh decodes these again.
    for (const rec of storedTexts(dir)) {
      if (rec.id.includes('/')) continue; // seeded there from an older version: added from its own dir
      indexer.add({ id: `${v}/${rec.id}`, text: rec.text });
      n++;
    }
    // Instructions as kept in the dataset.
    const dataset = path.join(dir, 'dataset.jsonl');
    if (!fs.existsSync(dataset)) continue;
    for (const line of fileLines(dataset)) {
      if (!line.trim()) continue;
      const rec = JSON.parse(line) as { id: string; instruction: string };
      indexer.add({ id: `${v}/${rec.id}:kept`, text: rec.instruction });
      n++;
    }
  }
  return n;
}

export function createQualityActivities() {
  return {
    async prepareQuality(input: PrepareQualityInput): Promise<PrepareQualityResult> {
      const p = qualityPaths(input.outDir);
      const done = readJson<PrepareQualityResult>(p.prepared);
      if (done) return done;
      // Nothing is screened before this finishes, so a retry can start from scratch.
      for (const dir of ['exact', 'bands', 'texts', 'bench', 'decisions'])
        fs.rmSync(path.join(p.root, dir), { recursive: true, force: true });
      let benchmarkItems = 0;
      if (input.benchmarks?.length) {
        try {
          const manifest = buildBenchmarkIndex(input.outDir, input.benchmarks, ngramOf(input.method));
          benchmarkItems = manifest.files.reduce((a, f) => a + f.items, 0);
        } catch (err) {
          if (err instanceof InputError) throw ApplicationFailure.nonRetryable(err.message, 'InputError');
          throw err;
        }
      }
      const dedupe = dedupeSettings(input.method);
      let previousInstructions = 0;
      if (input.schedule && dedupe.mode !== 'off')
        previousInstructions = seedFromVersions(
          input.outDir,
          new Indexer(input.outDir, dedupe, input.method.runSeed),
          input.schedule,
        );
      const result = { benchmarkItems, previousInstructions };
      writeJsonAtomic(p.prepared, result);
      return result;
    },

    async screenInstructions(input: ScreenInput): Promise<ScreenOutput> {
      const p = qualityPaths(input.outDir);
      const decided = await withLock(p.lock, () => {
        const existing = readDecision<ScreenResult>(input.outDir, input.batch);
        if (existing) return existing;
        const result = screenBatch(input.outDir, input.items, {
          dedupe: dedupeSettings(input.method),
          seed: input.method.runSeed,
          decontaminate: input.decontaminate,
        });
        writeDecision(input.outDir, input.batch, result);
        return result;
      });
      return { keep: decided.keep, removed: decided.removed.map((r) => ({ id: r.id, reason: r.reason })) };
    },
  };
}
