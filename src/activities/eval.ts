import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { readText } from '../config/read';
import { describeConfig } from '../config/describe';
import type { ResolvedConfig } from '../schemas/config';
import type { Usage } from '../schemas/records';
import { loadSeeds, type LoadedSeeds } from '../seeds/load';
import { readRecords } from '../seeds/formats';
import { hash32 } from '../util/random';
import { listJsonFiles, readJson, writeFileAtomic, writeJsonAtomic } from '../store/files';
import type { EvalScores, Verdict } from '../report/crr';
import { buildEvalReport, renderEvalMarkdown, renderEvalSvg } from '../report/evalReport';
import { computeCost, pricesOf } from '../report/cost';
import type { CrrSummary } from '../report/crr';

/**
 * Activities of `codeclm eval` (CRR, docs/method.md section 7). The LLM calls reuse the pipeline's
 * `answer` and `judge` activities; these only handle files: a snapshot of the instruction set, one
 * result file per instruction (written atomically, so a retry or a replay replaces its own file),
 * and the final assembly of eval.jsonl and the eval report from those files.
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
  const { entries, format } = readRecords(file, readText(file, 'instruction file'));
  const out = new Map<string, string>();
  if (format === 'text') return out;
  const fields = categoryField ? [categoryField] : CATEGORY_FIELDS;
  for (const entry of entries) {
    const category = categoryOf(entry.value, fields);
    if (category !== undefined) out.set(`${file}:${entry.label}`, category);
  }
  return out;
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

// Instruction snapshots are read by every leaf workflow; cache the parsed file per worker process.
const snapshotCache = new Map<string, { mtimeMs: number; items: EvalInstruction[] }>();
function snapshot(outDir: string): EvalInstruction[] {
  const file = evalPaths(outDir).instructions;
  const { mtimeMs } = fs.statSync(file);
  const hit = snapshotCache.get(file);
  if (hit && hit.mtimeMs === mtimeMs) return hit.items;
  const items = fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as EvalInstruction);
  snapshotCache.set(file, { mtimeMs, items });
  if (snapshotCache.size > 16) snapshotCache.delete(snapshotCache.keys().next().value!);
  return items;
}

function readItems<T>(dir: string): T[] {
  return listJsonFiles(dir).map((f) => readJson<T>(f)!);
}

export function createEvalActivities() {
  return {
    /** Snapshot the instruction set into the out dir once; retries and replays reuse it. */
    async prepareEval(input: PrepareEvalInput): Promise<EvalSetInfo> {
      const paths = evalPaths(input.outDir);
      const existing = readJson<EvalSetInfo>(paths.info);
      let sha256: string;
      try {
        sha256 = crypto.createHash('sha256').update(fs.readFileSync(input.instructionsFile)).digest('hex');
      } catch (err) {
        // The file may be gone on a retry long after the snapshot was taken: the snapshot is what counts.
        if (existing && fs.existsSync(paths.instructions)) return existing;
        throw ApplicationFailure.nonRetryable((err as Error).message, 'InputError');
      }
      if (existing && fs.existsSync(paths.instructions)) {
        if (existing.sha256 === sha256) return existing;
        // Results in this out dir belong to another instruction set: never mix them.
        throw ApplicationFailure.nonRetryable(
          `${input.outDir} already holds an evaluation of a different instruction file; use a new --out directory`,
          'InputError',
        );
      }
      let set: InstructionSet;
      try {
        set = loadInstructionSet(input.instructionsFile, input);
      } catch (err) {
        throw ApplicationFailure.nonRetryable((err as Error).message, 'InputError');
      }
      writeFileAtomic(paths.instructions, set.instructions.map((i) => JSON.stringify(i)).join('\n') + '\n');
      const info: EvalSetInfo = {
        sha256,
        count: set.instructions.length,
        categorised: set.categorised,
        format: set.format,
        warnings: set.warnings,
        skipped: set.skipped,
      };
      writeJsonAtomic(paths.info, info);
      return info;
    },

    async loadEvalItem(input: { outDir: string; index: number }): Promise<EvalItemState> {
      const item = snapshot(input.outDir)[input.index];
      if (!item)
        throw ApplicationFailure.nonRetryable(`no instruction at index ${input.index}`, 'InputError');
      const done = readJson<EvalRecord>(evalPaths(input.outDir).resultFile(input.index));
      return done ? { item, done: { verdict: done.verdict, scores: done.scores } } : { item };
    },

    async saveEvalResult(input: { outDir: string; record: EvalRecord }): Promise<void> {
      const paths = evalPaths(input.outDir);
      writeJsonAtomic(paths.resultFile(input.record.index), input.record);
      fs.rmSync(paths.failureFile(input.record.index), { force: true });
    },

    async saveEvalFailure(input: { outDir: string; failure: EvalFailureRecord }): Promise<void> {
      writeJsonAtomic(evalPaths(input.outDir).failureFile(input.failure.index), input.failure);
    },

    /** eval.jsonl, eval-report.json, eval-report.md and eval-crr.svg, assembled from the per-item files. */
    async finalizeEval(input: FinalizeEvalInput): Promise<EvalFinal> {
      const paths = evalPaths(input.outDir);
      const byIndex = (a: { index: number }, b: { index: number }) => a.index - b.index;
      const records = readItems<EvalRecord>(paths.results).sort(byIndex);
      const judged = new Set(records.map((r) => r.index));
      const failures = readItems<EvalFailureRecord>(paths.failures)
        .filter((f) => !judged.has(f.index))
        .sort(byIndex);
      const info = readJson<EvalSetInfo>(paths.info);
      writeFileAtomic(
        paths.evalJsonl,
        records.map((r) => JSON.stringify(r)).join('\n') + (records.length ? '\n' : ''),
      );
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
      writeJsonAtomic(paths.reportJson, report);
      writeFileAtomic(paths.chartSvg, renderEvalSvg(report));
      writeFileAtomic(paths.reportMd, renderEvalMarkdown(report, path.basename(paths.chartSvg)));
      return {
        judged: report.judged,
        failed: report.failed,
        crr: report.crr,
        evalJsonl: paths.evalJsonl,
        reportJson: paths.reportJson,
        reportMd: paths.reportMd,
      };
    },
  };
}
