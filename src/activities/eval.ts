import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { readText } from '../config/read';
import { describeConfig } from '../config/describe';
import type { ResolvedConfig } from '../schemas/config';
import type { Usage } from '../schemas/records';
import {
  fetchedInput,
  holdRemoteInputs,
  InputUnavailableError,
  loadSeeds,
  type LoadedSeeds,
} from '../seeds/load';
import { readRecords } from '../seeds/formats';
import { hash32 } from '../util/random';
import { openStore } from '../store/open';
import { SnapshotCache } from '../store/snapshotCache';
import { isS3Location, readAllJson, type Store } from '../store/store';
import type { EvalScores, Verdict } from '../report/crr';
import { buildEvalReport, renderEvalMarkdown, renderEvalSvg } from '../report/evalReport';
import { computeCost, pricesOf } from '../report/cost';
import { removeDefaultSpool } from '../batch/spool';
import type { CrrSummary } from '../report/crr';

/**
 * Activities of `codeclm eval` (CRR, docs/method.md section 7). The LLM calls reuse the pipeline's
 * `answer` and `judge` activities; these only handle files: a snapshot of the instruction set, one
 * result file per instruction (written whole, so a retry or a replay replaces its own file), and the
 * final assembly of eval.jsonl and the eval report from those files. Every file goes through the
 * out dir's Store (src/store): a local directory or `s3://bucket/prefix`, as for a run.
 */

/** One instruction of an evaluation set, as snapshotted into the out dir. */
export interface EvalInstruction {
  index: number;
  id: string;
  instruction: string;
  category?: string;
  origin: string;
}

/** One line of eval.jsonl. */
export interface EvalRecord {
  index: number;
  id: string;
  category: string | null;
  instruction: string;
  target_answer: string;
  strong_answer: string;
  scores: EvalScores;
  verdict: Verdict;
  eval_id: string;
}

export interface EvalFailureRecord {
  index: number;
  id: string;
  category: string | null;
  stage: string;
  reason: string;
}

export function evalPaths(outDir: string) {
  const work = path.join(outDir, '.eval');
  const shard = (index: number) => (hash32(String(index)) % 64).toString(16).padStart(2, '0');
  const name = (index: number) => String(index).padStart(7, '0');
  return {
    outDir,
    work,
    instructions: path.join(work, 'instructions.jsonl'),
    info: path.join(work, 'instructions.info.json'),
    results: path.join(work, 'results'),
    resultFile: (index: number) => path.join(work, 'results', shard(index), `${name(index)}.json`),
    failures: path.join(work, 'failures'),
    failureFile: (index: number) => path.join(work, 'failures', shard(index), `${name(index)}.json`),
    evalJsonl: path.join(outDir, 'eval.jsonl'),
    reportJson: path.join(outDir, 'eval-report.json'),
    reportMd: path.join(outDir, 'eval-report.md'),
    chartSvg: path.join(outDir, 'eval-crr.svg'),
  };
}

/** The same layout as keys of the out dir's Store (relative, `/`-separated). */
export const evalKeys = evalPaths('');

// ---------------------------------------------------------------------------------------------
// Reading an instruction set (any seed format) with its categories
// ---------------------------------------------------------------------------------------------

/** Fields read as an instruction's category, in this order, unless --category-field names one. */
export const CATEGORY_FIELDS = [
  'category',
  'Category',
  'categories',
  'skills',
  'skill',
  'Skill',
  'domain',
  'task_category',
  'type',
];

export interface InstructionSet extends Omit<LoadedSeeds, 'seeds'> {
  instructions: EvalInstruction[];
  /** How many instructions carry a category. */
  categorised: number;
}

function categoryOf(value: unknown, fields: readonly string[]): string | undefined {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const record = value as Record<string, unknown>;
  for (const field of fields) {
    let v = record[field];
    if (Array.isArray(v)) v = v.find((x) => typeof x === 'string' && x.trim());
    if (typeof v === 'string' && v.trim()) return v.trim().replace(/\s+/g, ' ');
    if (typeof v === 'number') return String(v);
  }
  return undefined;
}

/**
 * The categories of a file's records, keyed by the seed origin `file:label` that loadSeeds gives
 * each instruction. Text files have no fields, so no categories.
 */
export function readCategories(file: string, categoryField?: string): Map<string, string> {
  const { entries, format } = readRecords(file, instructionText(file));
  const out = new Map<string, string>();
  if (format === 'text') return out;
  const fields = categoryField ? [categoryField] : CATEGORY_FIELDS;
  for (const entry of entries) {
    const category = categoryOf(entry.value, fields);
    if (category !== undefined) out.set(`${file}:${entry.label}`, category);
  }
  return out;
}

/**
 * The text of an instruction file: a path, or an s3:// URL fetched beforehand (prefetchRemoteInputs,
 * as `run --seeds s3://` is).
 */
function instructionText(file: string): string {
  if (!isS3Location(file)) return readText(file, 'instruction file');
  const text = fetchedInput(file);
  if (text === undefined)
    throw new Error(`${file}: an s3:// input must be fetched first (prefetchRemoteInputs)`);
  return text;
}

/**
 * What identifies an instruction set across attempts: sha256 of a local file's bytes, or of an
 * s3:// object's fetched text.
 */
export function instructionsSha256(file: string): string {
  const content = isS3Location(file) ? instructionText(file) : fs.readFileSync(file);
  return crypto.createHash('sha256').update(content).digest('hex');
}

/** loadSeeds (every seed format, field detection, per-line errors) plus each instruction's category. */
export function loadInstructionSet(
  file: string,
  opts: { field?: string; categoryField?: string; skipInvalid?: boolean; maxChars?: number } = {},
): InstructionSet {
  const loaded = loadSeeds(file, {
    field: opts.field,
    skipInvalid: opts.skipInvalid,
    maxSeedChars: opts.maxChars,
  });
  const categories = readCategories(file, opts.categoryField);
  const instructions = loaded.seeds.map((s, index) => {
    const category = categories.get(s.origin);
    return {
      index,
      id: s.id,
      instruction: s.instruction,
      origin: s.origin,
      ...(category ? { category } : {}),
    };
  });
  const { seeds: _seeds, ...rest } = loaded;
  return { ...rest, instructions, categorised: instructions.filter((i) => i.category).length };
}

// ---------------------------------------------------------------------------------------------
// Activities
// ---------------------------------------------------------------------------------------------

export interface PrepareEvalInput {
  outDir: string;
  instructionsFile: string;
  field?: string;
  categoryField?: string;
  skipInvalid?: boolean;
  maxChars?: number;
}

export interface EvalSetInfo {
  /** sha256 of the instruction file the snapshot was taken from. */
  sha256: string;
  count: number;
  categorised: number;
  format: string;
  warnings: string[];
  skipped: { origin: string; reason: string }[];
}

export interface EvalItemState {
  item: EvalInstruction;
  /** Set when a previous attempt already judged this item: its verdict and scores, no LLM calls needed. */
  done?: { verdict: Verdict; scores: EvalScores };
}

export interface FinalizeEvalInput {
  evalId: string;
  outDir: string;
  instructionsFile: string;
  config: ResolvedConfig;
  usage: Usage;
  startedAt: number;
  finishedAt: number;
  skipped: { origin: string; reason: string }[];
  state: string;
}

/** What the workflow gets back from finalizeEval: counts and CRR only, no texts. */
export interface EvalFinal {
  judged: number;
  failed: number;
  crr: CrrSummary;
  evalJsonl: string;
  reportJson: string;
  reportMd: string;
}

// Instruction snapshots are read by every leaf workflow: parsed once per worker process.
const instructionSnapshots = new SnapshotCache<EvalInstruction>(
  'instruction snapshot',
  (l) => JSON.parse(l) as EvalInstruction,
);
const snapshot = (store: Store) => instructionSnapshots.get(store, evalKeys.instructions);

/** Reads the instruction file (fetching an s3:// one first) and hashes it; bad input is not retried. */
async function readInstructionSet(
  input: PrepareEvalInput,
  existing: EvalSetInfo | undefined,
): Promise<{ sha256: string; set?: InstructionSet }> {
  const release = await holdRemoteInputs([input.instructionsFile]);
  try {
    const sha256 = instructionsSha256(input.instructionsFile);
    // The same set again (a retry, a re-attach): the snapshot stands, nothing to parse.
    if (existing?.sha256 === sha256) return { sha256 };
    return { sha256, set: loadInstructionSet(input.instructionsFile, input) };
  } finally {
    release();
  }
}

export function createEvalActivities() {
  return {
    /** Snapshot the instruction set into the out dir once; retries and replays reuse it. */
    async prepareEval(input: PrepareEvalInput): Promise<EvalSetInfo> {
      const store = openStore(input.outDir);
      const existing = (await store.exists(evalKeys.instructions))
        ? await store.readJson<EvalSetInfo>(evalKeys.info)
        : undefined;
      let read: Awaited<ReturnType<typeof readInstructionSet>>;
      try {
        read = await readInstructionSet(input, existing);
      } catch (err) {
        // The file may be gone on a retry long after the snapshot was taken: the snapshot is what counts.
        if (existing) return existing;
        // An unreachable store may heal: retried. Bad input will not get better by retrying.
        if (err instanceof InputUnavailableError) throw err;
        throw ApplicationFailure.nonRetryable((err as Error).message, 'InputError');
      }
      if (existing) {
        if (existing.sha256 === read.sha256) return existing;
        // Results in this out dir belong to another instruction set: never mix them.
        throw ApplicationFailure.nonRetryable(
          `${input.outDir} already holds an evaluation of a different instruction file; use a new --out directory`,
          'InputError',
        );
      }
      const set = read.set!;
      await store.write(
        evalKeys.instructions,
        set.instructions.map((i) => JSON.stringify(i)).join('\n') + '\n',
      );
      const info: EvalSetInfo = {
        sha256: read.sha256,
        count: set.instructions.length,
        categorised: set.categorised,
        format: set.format,
        warnings: set.warnings,
        skipped: set.skipped,
      };
      await store.writeJson(evalKeys.info, info);
      return info;
    },

    async loadEvalItem(input: { outDir: string; index: number }): Promise<EvalItemState> {
      const store = openStore(input.outDir);
      const item = (await snapshot(store))[input.index];
      if (!item)
        throw ApplicationFailure.nonRetryable(`no instruction at index ${input.index}`, 'InputError');
      const done = await store.readJson<EvalRecord>(evalKeys.resultFile(input.index));
      return done ? { item, done: { verdict: done.verdict, scores: done.scores } } : { item };
    },

    async saveEvalResult(input: { outDir: string; record: EvalRecord }): Promise<void> {
      const store = openStore(input.outDir);
      await store.writeJson(evalKeys.resultFile(input.record.index), input.record);
      await store.remove(evalKeys.failureFile(input.record.index));
    },

    async saveEvalFailure(input: { outDir: string; failure: EvalFailureRecord }): Promise<void> {
      await openStore(input.outDir).writeJson(evalKeys.failureFile(input.failure.index), input.failure);
    },

    /** eval.jsonl, eval-report.json, eval-report.md and eval-crr.svg, assembled from the per-item files. */
    async finalizeEval(input: FinalizeEvalInput): Promise<EvalFinal> {
      const store = openStore(input.outDir);
      const byIndex = (a: { index: number }, b: { index: number }) => a.index - b.index;
      // One listing per directory (pages of 1,000 keys), then the objects a few at a time.
      const records = (await readAllJson<EvalRecord>(store, evalKeys.results)).sort(byIndex);
      const judged = new Set(records.map((r) => r.index));
      const failures = (await readAllJson<EvalFailureRecord>(store, evalKeys.failures))
        .filter((f) => !judged.has(f.index))
        .sort(byIndex);
      const info = await store.readJson<EvalSetInfo>(evalKeys.info);
      // The records are in memory already (the report needs them all): one PUT.
      await store.write(evalKeys.evalJsonl, records.map((r) => `${JSON.stringify(r)}\n`).join(''));
      const report = buildEvalReport({
        evalId: input.evalId,
        instructionsFile: input.instructionsFile,
        instructions: info?.count ?? records.length + failures.length,
        records,
        failures,
        skipped: input.skipped,
        config: describeConfig(input.config),
        usage: input.usage,
        cost: computeCost(input.usage, pricesOf(input.config)),
        wallSeconds: (input.finishedAt - input.startedAt) / 1000,
        state: input.state,
      });
      await store.writeJson(evalKeys.reportJson, report);
      await store.write(evalKeys.chartSvg, renderEvalSvg(report));
      await store.write(evalKeys.reportMd, renderEvalMarkdown(report, path.basename(evalKeys.chartSvg)));
      await removeDefaultSpool(store);
      return {
        judged: report.judged,
        failed: report.failed,
        crr: report.crr,
        evalJsonl: store.where(evalKeys.evalJsonl),
        reportJson: store.where(evalKeys.reportJson),
        reportMd: store.where(evalKeys.reportMd),
      };
    },
  };
}
