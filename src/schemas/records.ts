import { z } from 'zod';
import type { RoleName, StructuredDialect } from './config';

/** Records that flow between stages and into outputs. Types are derived from these schemas. */

export const seedSchema = z.object({
  id: z.string(),
  instruction: z.string().min(1),
  /** Where the seed came from, for error messages and reports: "file:line". */
  origin: z.string(),
});
export type Seed = z.infer<typeof seedSchema>;

export const metadataSchema = z.object({
  use_case: z.string().min(1),
  skills: z.array(z.string().min(1)),
});
export type Metadata = z.infer<typeof metadataSchema>;

export const encodedSeedSchema = z.object({ seedId: z.string(), metadata: metadataSchema });
export type EncodedSeed = z.infer<typeof encodedSeedSchema>;

export const poolEntrySchema = z.object({
  index: z.number().int().nonnegative(),
  metadata: metadataSchema,
  /** How many basic instructions decode writes for this entry (its share of the data budget). */
  instructions: z.number().int().nonnegative(),
});
export type PoolEntry = z.infer<typeof poolEntrySchema>;

export const rubricSchema = z.object({ rubric: z.string().min(1), action: z.string().min(1) });
export type Rubric = z.infer<typeof rubricSchema>;

export const scoresSchema = z.object({ strong: z.number(), target: z.number(), gap: z.number() });
export type Scores = z.infer<typeof scoresSchema>;

/** One line of dataset.jsonl (the README). */
export const datasetRecordSchema = z.object({
  id: z.string(),
  instruction: z.string(),
  response: z.string(),
  source: z.enum(['strong', 'target']),
  metadata: metadataSchema,
  iteration: z.number().int().min(1),
  scores: scoresSchema,
  run_id: z.string(),
  /** Provenance beyond the README's minimum: which Self-Rubrics actions produced the instruction. */
  actions: z.array(z.string()).default([]),
});
export type DatasetRecord = z.infer<typeof datasetRecordSchema>;

/** One order of the judge's pairwise verdict (answer A and answer B as shown to the judge). */
export const judgeOrderSchema = z.object({ score_a: z.number(), score_b: z.number() });

/**
 * What Contrastive Filtering decided for one judged iteration: keep the strong or the target answer
 * (the gap exceeds theta either way), iterate (too easy, another Self-Rubrics action comes next) or
 * drop (too easy at the last iteration).
 */
export const decisionSchema = z.enum(['kept-strong', 'kept-target', 'iterated', 'dropped']);
export type Decision = z.infer<typeof decisionSchema>;

export const judgedIterationSchema = z.object({
  iteration: z.number().int().min(1),
  instruction: z.string(),
  /** Self-Rubrics actions applied to reach this instruction (none at iteration 1). */
  actions: z.array(z.string()),
  answers: z.object({ strong: z.string(), target: z.string() }),
  /** `strongFirst` showed the strong answer as A; `targetFirst` showed it as B. */
  judge: z.object({ strongFirst: judgeOrderSchema, targetFirst: judgeOrderSchema }),
  scores: scoresSchema,
  decision: decisionSchema,
});
export type JudgedIteration = z.infer<typeof judgedIterationSchema>;

/**
 * Every judged iteration of one instruction, kept or not: `.work/judgements/<shard>/<id>.json`,
 * written once when the instruction is decided (with its record when kept), read by viewer.html.
 */
export const judgementSchema = z.object({
  id: z.string(),
  run_id: z.string(),
  metadata: metadataSchema,
  theta: z.number(),
  minStrongScore: z.number().optional(),
  iterations: z.array(judgedIterationSchema).min(1),
});
export type Judgement = z.infer<typeof judgementSchema>;

/** Token and call accounting: keyed "stage/role". */
export interface UsageCell {
  calls: number;
  promptTokens: number;
  completionTokens: number;
  /** Results served by the LLM cache (src/llm/cached.ts): no call made, no token spent. */
  cacheHits?: number;
  /** The structured-output dialect the latest call used (src/llm/dialect.ts); absent for text calls. */
  dialect?: StructuredDialect;
  /** True when `structuredOutput: "auto"` chose that dialect (false or absent: the config set it). */
  dialectAuto?: boolean;
  /** The part of calls and tokens above that went through the Batch API (src/batch), at its price. */
  batchCalls?: number;
  batchPromptTokens?: number;
  batchCompletionTokens?: number;
}
export type Usage = Record<string, UsageCell>;
export type { RoleName };

export function usageKey(stage: string, role: RoleName): string {
  return `${stage}/${role}`;
}

export function addUsage(into: Usage, from: Usage | undefined): Usage {
  if (!from) return into;
  for (const [key, cell] of Object.entries(from)) {
    const cur = (into[key] ??= { calls: 0, promptTokens: 0, completionTokens: 0 });
    cur.calls += cell.calls;
    cur.promptTokens += cell.promptTokens;
    cur.completionTokens += cell.completionTokens;
    if (cell.cacheHits) cur.cacheHits = (cur.cacheHits ?? 0) + cell.cacheHits;
    if (cell.batchCalls) cur.batchCalls = (cur.batchCalls ?? 0) + cell.batchCalls;
    if (cell.batchPromptTokens) cur.batchPromptTokens = (cur.batchPromptTokens ?? 0) + cell.batchPromptTokens;
    if (cell.batchCompletionTokens)
      cur.batchCompletionTokens = (cur.batchCompletionTokens ?? 0) + cell.batchCompletionTokens;
    if (cell.dialect) {
      cur.dialect = cell.dialect;
      cur.dialectAuto = cell.dialectAuto ?? false;
    }
  }
  return into;
}

/**
 * The usage a failed activity carried in its failure details (`details: [{usage}]`, keyed
 * "stage/role", src/activities/attemptUsage.ts), looked for along the error's cause chain. Pure, so
 * workflows can call it: calls made by failed attempts are billed, so they are counted too.
 */
export function usageInFailure(err: unknown): Usage | undefined {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 5; depth++) {
    const details = (e as { details?: unknown }).details;
    if (Array.isArray(details)) {
      for (const d of details) {
        const usage = (d as { usage?: unknown } | null)?.usage;
        if (isUsageMap(usage)) return usage;
      }
    }
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

function isUsageMap(value: unknown): value is Usage {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return false;
  return Object.values(value).every(
    (c) => !!c && typeof c === 'object' && typeof (c as UsageCell).calls === 'number',
  );
}

export function usageTotals(usage: Usage): UsageCell {
  const total: UsageCell = { calls: 0, promptTokens: 0, completionTokens: 0 };
  for (const cell of Object.values(usage)) {
    total.calls += cell.calls;
    total.promptTokens += cell.promptTokens;
    total.completionTokens += cell.completionTokens;
    if (cell.cacheHits) total.cacheHits = (total.cacheHits ?? 0) + cell.cacheHits;
  }
  return total;
}
