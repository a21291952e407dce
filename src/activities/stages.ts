import { ApplicationFailure } from '@temporalio/common';
import { log as activityLog } from '@temporalio/activity';
import type { LimitsConfig, MethodConfig, ResolvedRole } from '../schemas/config';
import type { Metadata, Rubric, Seed, Usage } from '../schemas/records';
import { seedSchema } from '../schemas/records';
import { runKeys } from '../store/runDir';
import { openStore } from '../store/open';
import { SnapshotCache } from '../store/snapshotCache';

import { encodeTask } from '../tasks/encode';
import { decodeTask } from '../tasks/decode';
import { rubricsTask } from '../tasks/rubrics';
import { improveTask } from '../tasks/improve';
import { answerStrongTask, answerTargetTask } from '../tasks/answer';
import { judgeTask, type JudgeOutput } from '../tasks/judge';
import { TaskOutputError, type Note, type StructuredTask, type TextTask } from '../tasks/task';
import { LlmFailure } from '../llm/types';
import { holdRemoteInputs, InputUnavailableError, loadSeeds } from '../seeds/load';
import { callStructured, callText, type ActivityDeps, type LlmCallInput } from './deps';
import { allocate, mixAndMatch } from './pool';
import { mapLimit, type Store } from '../store/store';

// --- Output bounds (issue 8, security/deployment) ---------------------------------------------
// Every LLM text that leaves an activity becomes a Temporal payload (2 MB hard limit per payload,
// 512 KB warning). A server that ignores max_tokens, or a config with a huge maxTokens, must not be
// able to blow that limit: over-long outputs are rejected (the item fails with this reason) or, for
// decoded instruction lists, dropped. The bound is limits.maxOutputChars; inputs carry it as
// `maxOutputChars` when the workflow passes it, else DEFAULT_MAX_OUTPUT_CHARS applies.
export const DEFAULT_MAX_OUTPUT_CHARS = 20_000;
export const OUTPUT_TOO_LONG = 'LlmOutputTooLong';
interface OutputBound {
  /** limits.maxOutputChars (characters); DEFAULT_MAX_OUTPUT_CHARS when absent. */
  maxOutputChars?: number;
}
function maxChars(input: OutputBound): number {
  return input.maxOutputChars ?? DEFAULT_MAX_OUTPUT_CHARS;
}
/** Throws a non-retryable failure naming what was too long; `size` is the text or its JSON length. */
function checkOutput(input: OutputBound, what: string, size: number): void {
  const max = maxChars(input);
  if (size > max) {
    throw ApplicationFailure.nonRetryable(
      `${what} is ${size} characters, over limits.maxOutputChars (${max}); rejected so it cannot exceed Temporal's payload limit`,
      OUTPUT_TOO_LONG,
    );
  }
}
function warnOutsideOrInActivity(message: string): void {
  try {
    activityLog.warn(message);
  } catch {
    // not running as an activity (direct calls in tests): nothing to log to
  }
}
// ----------------------------------------------------------------------------------------------

// --- Calling a task through its contract (src/tasks/task.ts) ------------------------------------
// The task renders its slots from a typed input and cleans the reply the LLM boundary parsed. A
// reply its clean-up rejects fails the item for good: a retry would get the same reply from the LLM
// cache. Notes (what a clean-up dropped) become warnings prefixed with the call's label.
type TaskCall = Omit<LlmCallInput, 'role'>;
function cleanOrFail<I, O>(
  task: { clean(raw: O, input: I, note: Note): O },
  raw: O,
  input: I,
  label: string,
): O {
  try {
    return task.clean(raw, input, (message) => warnOutsideOrInActivity(`${label}: ${message}`));
  } catch (err) {
    if (!(err instanceof TaskOutputError)) throw err;
    throw ApplicationFailure.nonRetryable(`${label}: ${err.message}`, LlmFailure.InvalidOutput);
  }
}
async function runStructured<I, O>(
  deps: ActivityDeps,
  task: StructuredTask<I, O>,
  input: I,
  call: TaskCall,
): Promise<{ value: O; usage: Usage }> {
  const { value, usage } = await callStructured(deps, task, { ...call, role: task.role }, task.slots(input));
  return { value: cleanOrFail(task, value, input, call.label), usage };
}
async function runText<I>(
  deps: ActivityDeps,
  task: TextTask<I>,
  input: I,
  call: TaskCall,
): Promise<{ value: string; usage: Usage }> {
  const { value, usage } = await callText(deps, task, { ...call, role: task.role }, task.slots(input));
  return { value: cleanOrFail(task, value, input, call.label), usage };
}
// ----------------------------------------------------------------------------------------------

/**
 * One activity per pipeline stage. Each is safe to retry: LLM calls have no side effects, and the
 * stages that keep state write it to one file per item, atomically (src/store).
 */

export interface PrepareSeedsInput {
  outDir: string;
  seedsFile: string;
  field?: string;
  skipInvalid: boolean;
  limits: LimitsConfig;
}
export interface SeedsInfo {
  count: number;
  format: string;
  field: string;
  warnings: string[];
  skipped: { origin: string; reason: string }[];
}

export interface EncodeInput extends OutputBound {
  outDir: string;
  index: number;
  strong: ResolvedRole;
  method: MethodConfig;
}
export interface EncodeResult {
  seedId: string;
  metadata: Metadata;
  usage: Usage;
}

export interface PoolInput {
  outDir: string;
  method: MethodConfig;
  seeds: number;
  /** Instructions to share over the pool. */
  instructions: number;
}

export interface DecodeInput extends OutputBound {
  strong: ResolvedRole;
  method: MethodConfig;
  metadata: Metadata;
  count: number;
  batch: number;
  label: string;
}

export interface RubricsInput extends OutputBound {
  outDir: string;
  entry: number;
  strong: ResolvedRole;
  method: MethodConfig;
  metadata: Metadata;
}

export interface ImproveInput extends OutputBound {
  strong: ResolvedRole;
  method: MethodConfig;
  metadata: Metadata;
  instruction: string;
  action: string;
  label: string;
}

export interface AnswerInput extends OutputBound {
  who: 'strong' | 'target';
  cfg: ResolvedRole;
  method: MethodConfig;
  instruction: string;
  label: string;
}

export interface JudgeInput extends OutputBound {
  judge: ResolvedRole;
  method: MethodConfig;
  instruction: string;
  answerA: string;
  answerB: string;
  label: string;
}

// Seeds are read from the run's own normalised copy, parsed once per worker process (all encode
// slots of a process ask at once at the start of a run).
const seedSnapshots = new SnapshotCache<Seed>('seed snapshot', (l) => seedSchema.parse(JSON.parse(l)));
const runSeeds = (store: Store) => seedSnapshots.get(store, runKeys.seeds);

export function createStageActivities(deps: ActivityDeps) {
  return {
    /** Snapshot the seed file into the run dir once; later attempts and replays reuse the snapshot. */
    async prepareSeeds(input: PrepareSeedsInput): Promise<SeedsInfo> {
      const store = openStore(input.outDir);
      const existing = await store.readJson<SeedsInfo>(runKeys.seedsInfo);
      if (existing && (await store.exists(runKeys.seeds))) return existing;
      let loaded;
      let release: (() => void) | undefined;
      try {
        release = await holdRemoteInputs([input.seedsFile]);
        loaded = loadSeeds(input.seedsFile, {
          field: input.field,
          skipInvalid: input.skipInvalid,
          maxSeedChars: input.limits.maxSeedChars,
        });
      } catch (err) {
        // An unreachable store may heal: retried. Bad input will not get better by retrying.
        if (err instanceof InputUnavailableError) throw err;
        throw ApplicationFailure.nonRetryable((err as Error).message, 'InputError');
      } finally {
        release?.();
      }
      await store.write(runKeys.seeds, loaded.seeds.map((s) => JSON.stringify(s)).join('\n') + '\n');
      const info: SeedsInfo = {
        count: loaded.seeds.length,
        format: loaded.format,
        field: loaded.field,
        warnings: loaded.warnings,
        skipped: loaded.skipped,
      };
      await store.writeJson(runKeys.seedsInfo, info);
      return info;
    },

    async encodeSeed(input: EncodeInput): Promise<EncodeResult> {
      const store = openStore(input.outDir);
      const file = runKeys.encodedFile(input.index);
      const done = await store.readJson<EncodeResult>(file);
      if (done) return { ...done, usage: {} };
      const seed = (await runSeeds(store))[input.index];
      if (!seed) throw ApplicationFailure.nonRetryable(`no seed at index ${input.index}`, 'InputError');
      const { value, usage } = await runStructured(
        deps,
        encodeTask,
        { instruction: seed.instruction, maxSkills: input.method.skillsPerSeed },
        { cfg: input.strong, temperature: input.method.encodeTemperature, label: `encode seed ${seed.id}` },
      );
      const result: EncodeResult = { seedId: seed.id, metadata: value, usage };
      checkOutput(input, `metadata for seed ${seed.id}`, JSON.stringify(result.metadata).length);
      await store.writeJson(file, { seedId: result.seedId, metadata: result.metadata });
      return result;
    },

    /** Writes pool.json; entries read their metadata from it, so only the size travels back. */
    async buildPool(input: PoolInput): Promise<{ size: number }> {
      const store = openStore(input.outDir);
      // Deterministic keys, read a few at a time: no listing, and seed order kept.
      const indexes = Array.from({ length: input.seeds }, (_, i) => i);
      const read = await mapLimit(indexes, 16, (i) =>
        store.readJson<{ metadata: Metadata }>(runKeys.encodedFile(i)),
      );
      // One object with them all, so the report (finalize) and a schedule's next version read one
      // object instead of one per seed.
      await store.write(
        runKeys.encodedIndex,
        read.map((e) => (e ? `${JSON.stringify({ metadata: e.metadata })}\n` : '')).join(''),
      );
      const encoded: Metadata[] = read
        .filter((e) => !!e && e.metadata.skills.length > 0)
        .map((e) => e!.metadata);
      const pool = mixAndMatch(encoded, input.method);
      const entries = allocate(pool, input.instructions);
      await store.writeJson(runKeys.pool, { entries });
      return { size: entries.length };
    },

    async decodeInstructions(input: DecodeInput): Promise<{ instructions: string[]; usage: Usage }> {
      // Over-long instructions are dropped by the task's clean-up, with a warning (output bound).
      const { value, usage } = await runStructured(
        deps,
        decodeTask,
        { metadata: input.metadata, count: input.count, batch: input.batch, maxChars: maxChars(input) },
        { cfg: input.strong, temperature: input.method.decodeTemperature, label: input.label },
      );
      return { instructions: value.instructions, usage };
    },

    /** Rubrics are written once per pool entry and reused by every instruction and top-up batch. */
    async writeRubrics(input: RubricsInput): Promise<{ rubrics: Rubric[]; usage: Usage }> {
      const store = openStore(input.outDir);
      const file = runKeys.rubricsFile(input.entry);
      const done = await store.readJson<Rubric[]>(file);
      if (done) return { rubrics: done, usage: {} };
      const { value, usage } = await runStructured(
        deps,
        rubricsTask,
        { metadata: input.metadata, count: input.method.rubrics },
        {
          cfg: input.strong,
          temperature: input.method.rubricTemperature,
          label: `rubrics for pool entry ${input.entry}`,
        },
      );
      const rubrics = value.rubrics;
      checkOutput(input, `rubrics for pool entry ${input.entry}`, JSON.stringify(rubrics).length);
      await store.writeJson(file, rubrics);
      return { rubrics, usage };
    },

    async improveInstruction(input: ImproveInput): Promise<{ instruction: string; usage: Usage }> {
      const { value, usage } = await runStructured(
        deps,
        improveTask,
        { useCase: input.metadata.use_case, action: input.action, instruction: input.instruction },
        { cfg: input.strong, temperature: input.method.improveTemperature, label: input.label },
      );
      checkOutput(input, `improved instruction (${input.label})`, value.instruction.length);
      return { instruction: value.instruction, usage };
    },

    async answer(input: AnswerInput): Promise<{ text: string; usage: Usage }> {
      const task = input.who === 'strong' ? answerStrongTask : answerTargetTask;
      const { value, usage } = await runText(
        deps,
        task,
        { instruction: input.instruction },
        { cfg: input.cfg, temperature: input.method.answerTemperature, label: input.label },
      );
      checkOutput(input, `${input.who} answer (${input.label})`, value.length);
      return { text: value, usage };
    },

    async judge(input: JudgeInput): Promise<{ scores: JudgeOutput; usage: Usage }> {
      const { value, usage } = await runStructured(
        deps,
        judgeTask,
        { instruction: input.instruction, answerA: input.answerA, answerB: input.answerB },
        { cfg: input.judge, temperature: input.method.judgeTemperature, label: input.label },
      );
      checkOutput(input, `judgement (${input.label})`, JSON.stringify(value).length);
      return { scores: value, usage };
    },
  };
}
