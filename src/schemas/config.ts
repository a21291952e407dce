import { z } from 'zod';

/**
 * The config file schema: the single source of truth for every tunable of a run.
 * Defaults are the CodecLM paper's (see docs/method.md) unless a comment says otherwise.
 */

/**
 * How structured output is asked of a server. The dialects: `json_schema` (OpenAI's response_format),
 * `json_object_schema` (`{"type": "json_object", "schema": ...}`, llama-cpp-python's server),
 * `json_object` (JSON mode, schema only in the prompt) and `text` (JSON asked for in the prompt).
 * `auto` finds the dialect from the server's own answers (src/llm/dialect.ts).
 */
export const structuredDialects = ['json_schema', 'json_object_schema', 'json_object', 'text'] as const;
export type StructuredDialect = (typeof structuredDialects)[number];
export const structuredOutputModes = ['auto', ...structuredDialects] as const;

export const callModes = ['online', 'batch'] as const;
export type CallMode = (typeof callModes)[number];
export const llmStages = ['encode', 'rubrics', 'decode', 'improve', 'answer', 'judge'] as const;

/**
 * An s3:// location as src/store/store.ts parses it: a valid bucket name (3-63 lower-case letters,
 * digits, dots, hyphens), no "." or ".." in the prefix. Checked when the config is read, because the
 * store would refuse it later, in a worker, after the run started. (Here, not by importing the store:
 * this schema is part of the workflow bundle.)
 */
function isS3LocationSyntax(v: string): boolean {
  const m = /^s3:\/\/([^/]*)(?:\/(.*))?$/.exec(v);
  if (!m) return false;
  const [, bucket = '', prefix = ''] = m;
  return (
    /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket) &&
    !prefix.split('/').some((p) => p === '.' || p === '..')
  );
}

/**
 * How a role's batch-mode requests are gathered into batch files (src/workflows/batcher.ts). A
 * file is flushed at `maxRequests`, at `maxBytes` or `maxWaitSeconds` after its first request,
 * within the Batch API's limits of 50,000 requests and 200 MB per file: request lines go through
 * the batch spool (src/batch/spool.ts), never through a workflow, so Temporal's payload limit does
 * not bound a file.
 */
export const batchSettingsSchema = z
  .object({
    maxRequests: z.number().int().min(1).max(50_000).default(10_000),
    maxBytes: z.number().int().min(1024).max(200_000_000).default(100_000_000),
    /**
     * Where request lines and outcomes are kept (a directory or s3://bucket/prefix; request bodies
     * only, never keys). Default: `<out>/.work/batches` of the run or evaluation, deleted when it
     * ends; a spool set here is never deleted by a run (other runs may share it).
     */
    spool: z
      .string()
      .refine(
        (v) => (v.startsWith('s3:') ? isS3LocationSyntax(v) : v.startsWith('/')),
        'an absolute directory or s3://bucket/prefix',
      )
      .optional(),
    maxWaitSeconds: z.number().positive().default(60),
    completionWindow: z.literal('24h').default('24h'),
    /** Hours to keep polling past the completion window before a batch counts as lost. */
    marginHours: z.number().nonnegative().default(2),
    /** Times a failed or expired request is put in a new batch before its item fails. */
    maxResubmits: z.number().int().min(0).max(10).default(3),
    /** First wait between polls of a batch; it doubles up to maxPollSeconds. */
    pollSeconds: z.number().positive().default(30),
    maxPollSeconds: z.number().positive().default(600),
    /** How often the batcher checks its run (pause holds new batches; a closed run cancels them). */
    runCheckSeconds: z.number().positive().default(30),
  })
  .strict();
export type BatchSettings = z.infer<typeof batchSettingsSchema>;
export const DEFAULT_BATCH_SETTINGS: BatchSettings = batchSettingsSchema.parse({});

export const roleSchema = z
  .object({
    baseURL: z.string().url().optional().describe('OpenAI-compatible endpoint; defaults to OPENAI_BASE_URL'),
    model: z.string().min(1).optional(),
    apiKeyEnv: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be the NAME of an environment variable, not a key')
      .default('OPENAI_API_KEY'),
    temperature: z.number().min(0).max(2).optional(),
    maxTokens: z.number().int().positive().default(1024),
    maxConcurrency: z.number().int().positive().default(16),
    rpm: z.number().positive().optional().describe('requests per minute for this role, whole cluster'),
    tpm: z.number().positive().optional().describe('tokens per minute for this role, whole cluster'),
    structuredOutput: z.enum(structuredOutputModes).default('auto'),
    timeoutMs: z.number().int().positive().default(120_000),
    /** Price per million tokens, for cost in reports. */
    pricePerMTokIn: z.number().nonnegative().optional(),
    pricePerMTokOut: z.number().nonnegative().optional(),
    /** Prices through the Batch API (src/batch); default half the online price. */
    batchPricePerMTokIn: z.number().nonnegative().optional(),
    batchPricePerMTokOut: z.number().nonnegative().optional(),
    /** `batch`: calls go through OpenAI's Files + Batches API (src/batch), `online`: one request each. */
    mode: z.enum(callModes).optional(),
    /** Per-stage override of `mode`, e.g. `{"encode": "online"}` with `mode: "batch"`. */
    stageModes: z.partialRecord(z.enum(llmStages), z.enum(callModes)).optional(),
    batch: batchSettingsSchema.optional(),
  })
  .strict();

export const dedupeModes = ['off', 'exact', 'near'] as const;
export const DEFAULT_DEDUPE_THRESHOLD = 0.8;
export const DEFAULT_SHINGLE = 3;
export const DEFAULT_NGRAM = 13;

export const methodSchema = z
  .object({
    poolSize: z.number().int().positive().default(200),
    skillsPerSeed: z.number().int().min(1).max(10).default(3),
    /** The paper does not say how many skills a pool entry combines; we draw 1..3, uniformly. */
    skillsPerEntryMin: z.number().int().min(1).default(1),
    skillsPerEntryMax: z.number().int().min(1).default(3),
    /** How skills are weighted when drawn for a pool entry: by seed frequency (default) or uniformly. */
    skillWeighting: z.enum(['frequency', 'uniform']).default('frequency'),
    rubrics: z.number().int().min(1).max(10).default(4),
    maxIterations: z.number().int().min(1).max(10).default(4),
    theta: z.number().nonnegative().default(3),
    decodeTemperature: z.number().min(0).max(2).default(0.7),
    improveTemperature: z.number().min(0).max(2).default(0.7),
    rubricTemperature: z.number().min(0).max(2).default(0.7),
    answerTemperature: z.number().min(0).max(2).default(0.7),
    judgeTemperature: z.number().min(0).max(2).default(0),
    encodeTemperature: z.number().min(0).max(2).default(0),
    /** Off by default (the paper has no floor); when set, kept strong answers must score at least this. */
    minStrongScore: z.number().min(1).max(10).optional(),
    /**
     * Duplicate removal right after decode (src/quality), within a run and across a schedule's
     * versions: "off" (the default: the paper has none), "exact" (same text once case, punctuation and
     * spacing are normalised), or "near" (also paraphrases: MinHash + LSH over word shingles, removed at
     * Jaccard >= threshold). The object form sets the threshold and shingle size.
     */
    dedupe: z
      .union([
        z.enum(dedupeModes),
        z
          .object({
            mode: z.enum(dedupeModes),
            /** Jaccard similarity of word-shingle sets at or above which an instruction is a near duplicate. */
            threshold: z.number().gt(0).max(1).default(DEFAULT_DEDUPE_THRESHOLD),
            /** Words per shingle. */
            shingle: z.number().int().min(1).max(10).default(DEFAULT_SHINGLE),
          })
          .strict(),
      ])
      .default('off'),
    /** Older configs: `true` is `dedupe: "exact"`. Still accepted; a `dedupe` other than "off" wins. */
    dedupeInstructions: z.boolean().optional(),
    /** Decontamination against the benchmark files given by `--decontaminate FILE...`: an instruction
     * sharing a word n-gram of this length with a benchmark item is removed right after decode. */
    decontaminate: z
      .object({ ngram: z.number().int().min(3).max(50).default(DEFAULT_NGRAM) })
      .strict()
      .default({ ngram: DEFAULT_NGRAM }),
    /** Instructions asked of the strong LLM per decode call; an entry's share is decoded in batches of this size. */
    decodeBatch: z.number().int().min(1).max(200).default(20),
    runSeed: z.number().int().default(42),
  })
  .strict();

/**
 * The default longest seed (and eval instruction), from what a model can take rather than a guess:
 * an eval instruction shares the judge's prompt with two answers of up to `maxTokens` (1,024 by
 * default) each, and all of it must fit CONTEXT_BUDGET_TOKENS, the context of the small open
 * instruct models people serve locally (SmolLM2, Llama 3 8B: 8,192 tokens), at about
 * CHARS_PER_TOKEN characters per token (English text):
 *   4 x (8,192 - 2 x 1,024 answer tokens - 512 tokens of prompt text) = 22,528 characters.
 * That is at most ~90 KB of UTF-8 per seed, far below Temporal's 2 MB payload limit, and it takes
 * every prompt of the four public evaluation sets (the longest Koala prompt has 14,245).
 */
export const CONTEXT_BUDGET_TOKENS = 8192;
export const CHARS_PER_TOKEN = 4;
export function maxSeedCharsFor(contextTokens: number, answerTokens: number): number {
  return CHARS_PER_TOKEN * (contextTokens - 2 * answerTokens - 512);
}
export const DEFAULT_MAX_SEED_CHARS = maxSeedCharsFor(CONTEXT_BUDGET_TOKENS, 1024);

export const limitsSchema = z
  .object({
    /** Target number of kept pairs (the data budget); `--size` overrides. */
    size: z.number().int().positive().default(200),
    /** Instructions in flight at once across the run (the sliding window). */
    concurrency: z.number().int().positive().default(32),
    /** Repair attempts after invalid LLM output, each feeding the validation error back. */
    repairAttempts: z.number().int().min(0).max(5).default(2),
    /** A run pauses (with a reason) when it has used this many tokens or calls. */
    budgetTokens: z.number().int().positive().optional(),
    budgetCalls: z.number().int().positive().optional(),
    /** Activity attempts for an LLM call failing transiently (429, 5xx, resets); 0 = no limit, so an
     * outage slows the run down instead of failing it. */
    llmMaxAttempts: z.number().int().min(0).default(0),
    /** Longest wait between retries of a failing LLM call (Retry-After may ask for less). */
    llmMaxRetryIntervalSeconds: z.number().positive().default(120),
    /** Extra decode rounds when the first round kept fewer pairs than `size`. */
    topUpRounds: z.number().int().min(0).default(2),
    /** Seeds (and eval instructions) longer than this (characters) are rejected as over-long;
     * the default follows from a model's context, see DEFAULT_MAX_SEED_CHARS. */
    maxSeedChars: z.number().int().positive().default(DEFAULT_MAX_SEED_CHARS),
    /** LLM outputs longer than this (characters) are rejected, so no activity result nears Temporal's
     * 2 MB payload limit (src/activities/stages.ts, checkOutput). */
    maxOutputChars: z.number().int().positive().default(20000),
    /** Start-to-close of an LLM activity, minutes (default 10; with a role in batch mode, its
     * completion window plus margin: the activity waits for its batch). */
    llmActivityTimeoutMinutes: z.number().positive().optional(),
  })
  .strict();

/**
 * The LLM result cache (src/cache): successful, validated results by content address, shared by the
 * workers of one machine. Off also with CODECLM_CACHE=off; the directory also from CODECLM_CACHE.
 */
export const cacheSchema = z
  .object({
    enabled: z.boolean().default(true),
    /** Default `.codeclm/cache` (under CODECLM_HOME), or the directory in CODECLM_CACHE. */
    dir: z.string().min(1).optional(),
    /** Evict least recently used entries when the directory grows over this size. */
    maxMegabytes: z.number().positive().optional(),
    /**
     * A shared tier every worker machine reads and writes (`s3://bucket/prefix`, or a directory on a
     * shared filesystem): looked up on a local miss, written on every new result. CODECLM_CACHE_STORE
     * overrides it.
     */
    store: z
      .string()
      .min(1)
      .refine((s) => !s.startsWith('s3:') || isS3LocationSyntax(s), {
        message: 'expected s3://bucket/prefix (or a directory)',
      })
      .optional(),
  })
  .strict();
export type CacheConfig = z.infer<typeof cacheSchema>;

const roleDefaults = roleSchema.parse({});

export const configSchema = z
  .object({
    roles: z
      .object({
        strong: roleSchema.default(roleDefaults),
        target: roleSchema.default(roleDefaults),
        /** Defaults to the strong role's endpoint and model (the paper's judge is the strong LLM). */
        judge: roleSchema.optional(),
      })
      .strict()
      .default({ strong: roleDefaults, target: roleDefaults }),
    method: methodSchema.default(methodSchema.parse({})),
    limits: limitsSchema.default(limitsSchema.parse({})),
    cache: cacheSchema.default(cacheSchema.parse({})),
  })
  .strict();

export type RoleConfig = z.infer<typeof roleSchema>;
export type MethodConfig = z.infer<typeof methodSchema>;
export type LimitsConfig = z.infer<typeof limitsSchema>;
export type ConfigFile = z.infer<typeof configSchema>;

export const roleNames = ['strong', 'target', 'judge'] as const;
export type RoleName = (typeof roleNames)[number];

/** A role with every endpoint detail resolved (env fallbacks applied). Safe to put in workflow input: no key. */
export const resolvedRoleSchema = roleSchema.extend({
  baseURL: z.string(),
  model: z.string(),
  temperature: z.number().optional(),
});
export type ResolvedRole = z.infer<typeof resolvedRoleSchema>;

export const resolvedConfigSchema = z.object({
  roles: z.object({ strong: resolvedRoleSchema, target: resolvedRoleSchema, judge: resolvedRoleSchema }),
  method: methodSchema,
  limits: limitsSchema,
  /** The worker-side LLM result cache; keyless paths and sizes only. */
  cache: cacheSchema.optional(),
});
export type ResolvedConfig = z.infer<typeof resolvedConfigSchema>;
