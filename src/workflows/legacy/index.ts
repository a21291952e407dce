/**
 * LEGACY: code kept only so that runs started by earlier versions finish on this one
 * =================================================================================
 *
 * A Temporal worker must replay the history of every workflow still open (and of any closed one a
 * user replays) with the commands it recorded. The pipeline changed its commands four times
 * (src/workflows/patches.ts); the new way runs behind `patched(id)`, the old way is here, or, where
 * moving it would shift when a step is scheduled within a workflow task, marked inline with
 * "Legacy (src/workflows/legacy)":
 *
 * | patch                | old way kept                                                           |
 * |----------------------|------------------------------------------------------------------------|
 * | inline-instructions  | `refineInstruction`, one child workflow per instruction, started by    |
 * |                      | `startInstructionChild`; no per-entry cap (`perEntryCap`)              |
 * | quality-screen       | one `claim` activity per decoded instruction (`claimInstruction`)      |
 * | stop-when-done       | top-up rounds sized by keep rate (`keepRateRoundTotal`); instructions  |
 * |                      | counted when decoded (entry.ts, `!stopWhenDone` branches)              |
 * | judgement-records    | a dropped instruction saves nothing (instruction.ts, saveDropped)      |
 * | settle-pairs         | a pair of calls passes the first failure on at once (contrast.ts)      |
 * | batch-spool          | batch request lines inline in the batcher's signals, state and         |
 * |                      | activity inputs; outcomes held only by the batcher (./batcher.ts)      |
 * | batcher-carry-pending| the batcher continues-as-new only with nothing gathering               |
 * |                      | (batcherState.ts, wantsContinueAsNew)                                  |
 * | batcher-poll-refused | a refused poll (BatchApiRejected) fails the batcher workflow           |
 * |                      | (batcherState.ts, pollOrGiveUp)                                        |
 * | batcher-lost-batch   | a batch cancelled past its deadline is polled until it ends            |
 * |                      | (batcherState.ts, poll)                                                |
 * | batcher-batch-backoff| a batch failed as a whole counts as a resubmission of each request and |
 * |                      | the next flush is not held (batcherState.ts, poll and settle)          |
 * | (no patch)           | buildPool results that list `entries` instead of `size` (`poolSize`);  |
 * |                      | configs from before method.decodeBatch (`DEFAULT_DECODE_BATCH`)        |
 *
 * When to delete: once no execution started by a version before a patch can still be replayed,
 * that is, every run started before the patch landed has closed and the namespace's retention
 * period has passed since (a closed run's history is replayed only by `temporal workflow reset` or
 * by hand). Then: delete the old way here and its branch, replace `patched(id)` by
 * `deprecatePatch(id)` for one release (new histories still carry the marker), then drop the call;
 * delete the histories of that version from test/histories/ (pre-inline/ goes with
 * inline-instructions, batch-mode/ with batch-spool), and `refineInstruction` from
 * src/workflows/index.ts.
 */
import { setHandler } from '@temporalio/workflow';
import type { ResolvedConfig } from '../../schemas/config';
import type { Counters } from '../../schemas/run';
import type { Metadata, Rubric } from '../../schemas/records';
import { hash32 } from '../../util/random';
import type { fileActivities } from '../activities';
import { Control, controlSignal, type ControlState } from '../control';
import { activitySteps, instructionActivities } from '../instruction';
import { refine, type Decoded, type EntryRubrics, type InstructionOutcome } from '../loop';

/** Instructions per decode call when the config predates method.decodeBatch. */
export const DEFAULT_DECODE_BATCH = 20;

/** Before inline-instructions, instructions were child workflows and an entry's window had no cap. */
export function perEntryCap(inline: boolean, cap: number): number {
  return inline ? cap : Infinity;
}

/** The pool's size from buildPool: histories from before recorded the whole pool as `entries`. */
export function poolSize(built: { size?: number; entries?: unknown[] }): number {
  return built.size ?? built.entries?.length ?? 0;
}

/**
 * Before stop-when-done, a top-up round asked for `deficit` at the observed keep rate (at least
 * 0.1), capped at three times the deficit plus the pool.
 */
export function keepRateRoundTotal(deficit: number, c: Counters): number {
  const keepRate = Math.max(0.1, c.kept / Math.max(1, c.kept + c.dropped + c.failed));
  return Math.min(Math.ceil(deficit / keepRate), 3 * deficit + c.pool);
}

/**
 * Before quality-screen, with method.dedupeInstructions, each decoded instruction claimed its
 * exact-duplicate key; false: another instruction had it. (Returns the activity's promise itself.)
 */
export function claimInstruction(
  files: ReturnType<typeof fileActivities>,
  outDir: string,
  text: string,
  owner: string,
): Promise<boolean> {
  return files.claim({ outDir, key: instructionKey(text), owner });
}

/** Exact-duplicate key: case and spacing do not make an instruction new. */
function instructionKey(text: string): string {
  const norm = text.toLowerCase().replace(/\s+/g, ' ').trim();
  return `${hash32(norm).toString(16)}${hash32(`#${norm}`).toString(16)}`;
}

export interface InstructionInput {
  runId: string;
  outDir: string;
  recordId: string;
  metadata: Metadata;
  rubrics: Rubric[];
  instruction: string;
  config: ResolvedConfig;
  taskQueue?: string;
  control?: ControlState;
}

/** How an entry ran an instruction before inline-instructions: as a child workflow. */
export function startInstructionChild(
  control: Control,
  from: { runId: string; outDir: string; config: ResolvedConfig; taskQueue: string },
  entry: EntryRubrics,
  item: Decoded,
): Promise<InstructionOutcome> {
  return control.child(refineInstruction, {
    workflowId: `${from.runId}/${item.id}`,
    taskQueue: from.taskQueue,
    input: (ctl) => ({
      runId: from.runId,
      outDir: from.outDir,
      recordId: item.id,
      metadata: entry.metadata,
      rubrics: entry.rubrics,
      instruction: item.instruction,
      config: from.config,
      taskQueue: from.taskQueue,
      control: ctl,
    }),
  });
}

/** One instruction as its own workflow (the workflow type histories before inline-instructions name). */
export async function refineInstruction(input: InstructionInput): Promise<InstructionOutcome> {
  const { llm, files } = instructionActivities(input.config, input.taskQueue);
  const control = new Control(input.control);
  setHandler(controlSignal, (state) => control.receive(state));
  const steps = activitySteps({ ...input, llm, files, control });
  return refine(steps, input, { id: input.recordId, instruction: input.instruction });
}
