import {
  datasetRecordSchema,
  judgementSchema,
  type DatasetRecord,
  type Judgement,
  type Metadata,
} from '../schemas/records';
import type { RunProgress } from '../schemas/run';
import { runKeys } from '../store/runDir';
import { openStore } from '../store/open';
import { encodedMetadata, readAllJson, type Store } from '../store/store';
import { buildReport } from '../report/build';
import { writeRunOutputs } from '../report/write';
import { computeCost, pricesOf } from '../report/cost';
import { describeConfig } from '../config/describe';
import { collectRemovals } from '../report/removed';
import type { ResolvedConfig } from '../schemas/config';
import { readRunPlan } from '../plan/compare';
import { recordRunHistory } from '../plan/make';
import { judgementFile } from '../viewer/store';
import { writeViewer } from '../viewer/write';
import { removeDefaultSpool } from '../batch/spool';

async function saveJudgementFile(store: Store, judgement: Judgement): Promise<void> {
  const parsed = judgementSchema.parse(judgement);
  await store.writeJson(judgementFile('', parsed.id), parsed);
}

/** The kept records of a run (one object each), sorted by record id. */
export async function keptRecords(store: Store): Promise<DatasetRecord[]> {
  return (await readAllJson<unknown>(store, runKeys.records))
    .map((r) => datasetRecordSchema.parse(r))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/**
 * The dataset sink. A kept pair is one object (a file, or an S3 object) named by its record id, so
 * a retried or replayed write replaces itself instead of adding a second record; dataset.jsonl is
 * assembled from those objects at the end, streamed (a multipart upload on S3), and can be
 * assembled again at any time with the same result.
 */
export function createSinkActivities() {
  return {
    /**
     * `judgement` (every judged iteration of the instruction, for viewer.html) rides along with the
     * kept record, so keeping a pair costs no extra activity; absent from older callers.
     */
    async saveRecord(input: { outDir: string; record: DatasetRecord; judgement?: Judgement }): Promise<void> {
      const record = datasetRecordSchema.parse(input.record);
      const store = openStore(input.outDir);
      if (input.judgement) await saveJudgementFile(store, input.judgement);
      await store.writeJson(runKeys.recordFile(record.id), record);
    },

    /** The judged iterations of an instruction that was not kept (one file per id: retries replace it). */
    async saveJudgement(input: { outDir: string; judgement: Judgement }): Promise<void> {
      await saveJudgementFile(openStore(input.outDir), input.judgement);
    },

    /**
     * First claim of `key` wins; the same owner claiming again (a retry) also gets true. Used for
     * exact-duplicate instruction removal across concurrent workers.
     */
    async claim(input: { outDir: string; key: string; owner: string }): Promise<boolean> {
      const store = openStore(input.outDir);
      const key = runKeys.claimFile(input.key);
      if (await store.createIfAbsent(key, JSON.stringify({ owner: input.owner }))) return true;
      return (await store.readJson<{ owner: string }>(key))?.owner === input.owner;
    },

    /** `config` (optional, for older callers) adds models, parameters and cost to the report and card. */
    async finalizeRun(input: {
      progress: RunProgress;
      config?: ResolvedConfig;
    }): Promise<{ dataset: string; kept: number }> {
      const store = openStore(input.progress.outDir);
      const records = await keptRecords(store);
      await store.writeStream(
        runKeys.dataset,
        (async function* () {
          for (const r of records) yield `${JSON.stringify(r)}\n`;
        })(),
      );
      const seedMetadata = await encodedMetadata<Metadata>(store, runKeys.encodedIndex, runKeys.encoded);
      const pool =
        (await store.readJson<{ entries: { metadata: Metadata }[] }>(runKeys.pool))?.entries.map(
          (e) => e.metadata,
        ) ?? [];
      const report = buildReport({
        progress: input.progress,
        records,
        seedMetadata,
        pool,
        config: input.config ? describeConfig(input.config) : undefined,
        cost: input.config ? computeCost(input.progress.usage, pricesOf(input.config)) : null,
        plan: await readRunPlan(store, input.progress.runId),
        // Duplicates and contaminated instructions removed after decode; writes removed.jsonl.
        removed: await collectRemovals(store, input.progress.counters),
      });
      // This machine's run history, which `codeclm plan` measures later plans on.
      if (input.config) await recordRunHistory(input.progress, input.config, undefined, store);
      // report.json, report.md + charts/*.svg, report.html and the dataset card README.md.
      await writeRunOutputs(store, report);
      // viewer.html: every judged instruction, streamed from .work/judgements in bounded memory.
      await writeViewer(store, { runId: input.progress.runId });
      await removeDefaultSpool(store);
      return { dataset: store.where(runKeys.dataset), kept: records.length };
    },
  };
}
