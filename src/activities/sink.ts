import fs from 'node:fs';
import { datasetRecordSchema, type DatasetRecord, type Metadata } from '../schemas/records';
import type { RunProgress } from '../schemas/run';
import { runPaths } from '../store/runDir';
import { listJsonFiles, readJson, writeFileAtomic, writeJsonAtomic } from '../store/files';
import { buildReport } from '../report/build';
import { writeRunOutputs } from '../report/write';
import { computeCost, pricesOf } from '../report/cost';
import { describeConfig } from '../config/describe';
import type { ResolvedConfig } from '../schemas/config';

/**
 * The dataset sink. A kept pair is one file named by its record id, so a retried or replayed write
 * replaces itself instead of adding a second record; dataset.jsonl is assembled from those files
 * at the end (and can be assembled again at any time with the same result).
 */
export function createSinkActivities() {
  return {
    async saveRecord(input: { outDir: string; record: DatasetRecord }): Promise<void> {
      const record = datasetRecordSchema.parse(input.record);
      writeJsonAtomic(runPaths(input.outDir).recordFile(record.id), record);
    },

    /**
     * First claim of `key` wins; the same owner claiming again (a retry) also gets true. Used for
     * exact-duplicate instruction removal across concurrent workers.
     */
    async claim(input: { outDir: string; key: string; owner: string }): Promise<boolean> {
      const file = runPaths(input.outDir).claimFile(input.key);
      fs.mkdirSync(runPaths(input.outDir).claims, { recursive: true });
      try {
        fs.writeFileSync(file, JSON.stringify({ owner: input.owner }), { flag: 'wx' });
        return true;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        return readJson<{ owner: string }>(file)?.owner === input.owner;
      }
    },

    /** `config` (optional, for older callers) adds models, parameters and cost to the report and card. */
    async finalizeRun(input: {
      progress: RunProgress;
      config?: ResolvedConfig;
    }): Promise<{ dataset: string; kept: number }> {
      const paths = runPaths(input.progress.outDir);
      const records = listJsonFiles(paths.records)
        .map((f) => datasetRecordSchema.parse(readJson(f)))
        .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      writeFileAtomic(
        paths.dataset,
        records.map((r) => JSON.stringify(r)).join('\n') + (records.length ? '\n' : ''),
      );
      const seedMetadata: Metadata[] = listJsonFiles(paths.encoded).map(
        (f) => readJson<{ metadata: Metadata }>(f)!.metadata,
      );
      const pool =
        readJson<{ entries: { metadata: Metadata }[] }>(paths.pool)?.entries.map((e) => e.metadata) ?? [];
      const report = buildReport({
        progress: input.progress,
        records,
        seedMetadata,
        pool,
        config: input.config ? describeConfig(input.config) : undefined,
        cost: input.config ? computeCost(input.progress.usage, pricesOf(input.config)) : null,
      });
      // report.json, report.md + charts/*.svg, report.html and the dataset card README.md.
      writeRunOutputs(input.progress.outDir, report);
      return { dataset: paths.dataset, kept: records.length };
    },
  };
}
