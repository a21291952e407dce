import { ApplicationFailure } from '@temporalio/common';
import type { MethodConfig } from '../schemas/config';
import { buildBenchmarkIndex } from '../quality/benchmarks';
import { screenBatch, Indexer, type ScreenItem, type ScreenResult } from '../quality/screen';
import { dedupeSettings, ngramOf, type RemovalReason } from '../quality/settings';
import {
  IndexFiles,
  qualityKeys,
  readDecision,
  storedTexts,
  withLock,
  writeDecision,
} from '../quality/store';
import { publishedVersions } from '../schedule/activities';
import { versionsDir } from '../schedule/changes';
import { openStore } from '../store/open';
import { joinLocation } from '../store/store';
import { prefetchRemoteInputs } from '../seeds/load';
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
async function seedFromVersions(
  indexer: Indexer,
  schedule: { outDir: string; version: string },
): Promise<number> {
  let n = 0;
  for (const v of (await publishedVersions(schedule.outDir)).filter((x) => x < schedule.version)) {
    const dir = openStore(joinLocation(versionsDir(schedule.outDir), v));
    // Instructions as decoded (before Self-Rubrics changed them): a refresh decodes these again.
    for await (const rec of storedTexts(dir)) {
      if (rec.id.includes('/')) continue; // seeded there from an older version: added from its own dir
      await indexer.add({ id: `${v}/${rec.id}`, text: rec.text });
      n++;
    }
    // Instructions as kept in the dataset.
    for await (const line of dir.lines('dataset.jsonl')) {
      if (!line.trim()) continue;
      const rec = JSON.parse(line) as { id: string; instruction: string };
      await indexer.add({ id: `${v}/${rec.id}:kept`, text: rec.instruction });
      n++;
    }
  }
  return n;
}

export function createQualityActivities() {
  return {
    async prepareQuality(input: PrepareQualityInput): Promise<PrepareQualityResult> {
      const p = qualityKeys;
      const store = openStore(input.outDir);
      const done = await store.readJson<PrepareQualityResult>(p.prepared);
      if (done) return done;
      // Nothing is screened before this finishes, so a retry can start from scratch.
      for (const dir of ['exact', 'bands', 'texts', 'bench', 'decisions'])
        await store.removeAll(`${p.root}/${dir}`);
      let benchmarkItems = 0;
      if (input.benchmarks?.length) {
        try {
          await prefetchRemoteInputs(input.benchmarks);
          const manifest = await buildBenchmarkIndex(store, input.benchmarks, ngramOf(input.method));
          benchmarkItems = manifest.files.reduce((a, f) => a + f.items, 0);
        } catch (err) {
          if (err instanceof InputError) throw ApplicationFailure.nonRetryable(err.message, 'InputError');
          throw err;
        }
      }
      const dedupe = dedupeSettings(input.method);
      let previousInstructions = 0;
      if (input.schedule && dedupe.mode !== 'off') {
        const files = new IndexFiles(store);
        previousInstructions = await seedFromVersions(
          new Indexer(files, dedupe, input.method.runSeed),
          input.schedule,
        );
        await files.flush();
      }
      const result = { benchmarkItems, previousInstructions };
      await store.writeJson(p.prepared, result);
      return result;
    },

    async screenInstructions(input: ScreenInput): Promise<ScreenOutput> {
      const store = openStore(input.outDir);
      const decided = await withLock(store, qualityKeys.lock, async () => {
        const existing = await readDecision<ScreenResult>(store, input.batch);
        if (existing) return existing;
        const result = await screenBatch(store, input.items, {
          dedupe: dedupeSettings(input.method),
          seed: input.method.runSeed,
          decontaminate: input.decontaminate,
        });
        await writeDecision(store, input.batch, result);
        return result;
      });
      return { keep: decided.keep, removed: decided.removed.map((r) => ({ id: r.id, reason: r.reason })) };
    },
  };
}
