import fs from 'node:fs';
import {
  datasetRecordSchema,
  judgementSchema,
  type DatasetRecord,
  type Judgement,
  type Metadata,
} from '../schemas/records';
import type { RunProgress } from '../schemas/run';
import { runPaths } from '../store/runDir';
import { listJsonFiles, readJson, writeFileAtomic, writeJsonAtomic } from '../store/files';
import { buildReport } from '../report/build';
import { writeRunOutputs } from '../report/write';
import { computeCost, pricesOf } from '../report/cost';
import { describeConfig } from '../config/describe';
import { collectRemovals } from '../report/removed';
import type { ResolvedConfig } from '../schemas/config';
import { readRunPlan } from '../plan/compare';
import { recordRunHistory } from '../plan/make';
import { judgementFile, judgementsDir } from '../viewer/store';
import { writeViewer } from '../viewer/write';

function saveJudgementFile(outDir: string, judgement: Judgement): void {
  const parsed = judgementSchema.parse(judgement);
  writeJsonAtomic(judgementFile(outDir, parsed.id), parsed);
}

/**
 * The dataset sink. A kept pair is one file named by its record id, so a retried or replayed write
 * replaces itself instead of adding a second record; dataset.jsonl is assembled from those files
 * at the end (and can be assembled again at any time with the same result).
 */
export function createSinkActivities() {
  return {
    /**
     * `judgement` (every judged iteration of the instruction, for viewer.html) rides along with the
     * kept record, so keeping a pair costs no extra activity; absent from older callers.
     */
    async saveRecord(input: { outDir: string; record: DatasetRecord; judgement?: Judgement }): Promise<void> {
      const record = datasetRecordSchema.parse(input.record);
      if (input.judgement) saveJudgementFile(input.outDir, input.judgement);
      writeJsonAtomic(runPaths(input.outDir).recordFile(record.id), record);
    },

    /** The judged iterations of an instruction that was not kept (one file per id: retries replace it). */
    async saveJudgement(input: { outDir: string; judgement: Judgement }): Promise<void> {
      saveJudgementFile(input.outDir, input.judgement);
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
        plan: readRunPlan(input.progress.outDir, input.progress.runId),
        // Duplicates and contaminated instructions removed after decode; writes removed.jsonl.
        removed: collectRemovals(input.progress.outDir, input.progress.counters),
      });
      // This machine's run history, which `codeclm plan` measures later plans on.
      if (input.config) recordRunHistory(input.progress, input.config);
      // report.json, report.md + charts/*.svg, report.html and the dataset card README.md.
      writeRunOutputs(input.progress.outDir, report);
      // viewer.html: every judged instruction, streamed from .work/judgements in bounded memory.
      writeViewer(input.progress.outDir, judgementsDir(input.progress.outDir), {
        runId: input.progress.runId,
      });
      return { dataset: paths.dataset, kept: records.length };
    },
  };
}
