/**
 * `codeclm eval`: the Capacity Recovery Ratio (docs/method.md section 7) as durable workflows.
 *
 *   codeclmEval            snapshot the instruction set -> chunks (fan-out) -> assemble outputs
 *   └─ evalChunk           up to EVAL_CHUNK instructions, a sliding window of leaf workflows
 *      └─ evalInstruction  (evalItem.ts) both answers -> judge in both orders -> verdict
 *
 * Instruction and answer texts live only in the leaf histories (each leaf reads its instruction
 * from the snapshot by index and writes its result to its own file); chunks and the parent see
 * verdicts, counts, usage and failure reasons. The verdict and CRR are pure functions (src/report/crr).
 */
import {
  CancellationScope,
  defineQuery,
  executeChild,
  isCancellation,
  setHandler,
} from '@temporalio/workflow';
import type { ResolvedConfig } from '../schemas/config';
import type { Usage } from '../schemas/records';
import { addUsage } from '../schemas/records';
import { MAX_FAILURES_LISTED, type Failure } from '../schemas/run';
import { failureMessage } from '../util/failure';
import type { CrrSummary, Verdict } from '../report/crr';
import { fileActivities } from './activities';
import { evalInstruction, type EvalItemOutcome } from './evalItem';
import { slidingWindow } from './window';
import { isItemFailure } from './failures';
import { addFailures } from './control';
import { evalChunkWorkflowId, evalItemWorkflowId } from './ids';

export { evalInstruction } from './evalItem';

/** Instructions per evalChunk child: keeps every history small at any set size. */
const EVAL_CHUNK = 100;
/** Failures kept in workflow state for progress; every failure is also in its own file and in the report. */

export interface EvalInput {
  evalId: string;
  instructionsFile: string;
  outDir: string;
  field?: string;
  categoryField?: string;
  skipInvalid: boolean;
  config: ResolvedConfig;
  taskQueue?: string;
}

export interface EvalTally {
  judged: number;
  target_wins: number;
  ties: number;
  strong_wins: number;
  failed: number;
}

export interface EvalProgress extends EvalTally {
  evalId: string;
  phase: 'starting' | 'prepare' | 'judge' | 'finalize' | 'done';
  state: 'running' | 'completed' | 'failed' | 'cancelled';
  outDir: string;
  instructions: number;
  usage: Usage;
  failures: Failure[];
  startedAt: number;
  finishedAt?: number;
}

export interface EvalResult {
  evalId: string;
  outDir: string;
  instructions: number;
  judged: number;
  failed: number;
  crr: CrrSummary;
  usage: Usage;
  wallSeconds: number;
  files: { evalJsonl: string; reportJson: string; reportMd: string };
}

export const evalProgressQuery = defineQuery<EvalProgress>('evalProgress');

function emptyTally(): EvalTally {
  return { judged: 0, target_wins: 0, ties: 0, strong_wins: 0, failed: 0 };
}

function addTally(into: EvalTally, from: EvalTally): void {
  into.judged += from.judged;
  into.target_wins += from.target_wins;
  into.ties += from.ties;
  into.strong_wins += from.strong_wins;
  into.failed += from.failed;
}

function countVerdict(t: EvalTally, v: Verdict): void {
  t.judged++;
  if (v === 'target') t.target_wins++;
  else if (v === 'tie') t.ties++;
  else t.strong_wins++;
}

// ---------------------------------------------------------------------------------------------
// The evaluation
// ---------------------------------------------------------------------------------------------

export async function codeclmEval(input: EvalInput): Promise<EvalResult> {
  const { config, outDir, evalId } = input;
  const files = fileActivities(input.taskQueue);
  const progress: EvalProgress = {
    evalId,
    phase: 'starting',
    state: 'running',
    outDir,
    instructions: 0,
    ...emptyTally(),
    usage: {},
    failures: [],
    startedAt: Date.now(),
  };
  setHandler(evalProgressQuery, () => progress);
  let skipped: { origin: string; reason: string }[] = [];

  const finish = () => finishEval(input, files, progress, skipped);

  try {
    progress.phase = 'prepare';
    const info = await files.prepareEval({
      outDir,
      instructionsFile: input.instructionsFile,
      field: input.field,
      categoryField: input.categoryField,
      skipInvalid: input.skipInvalid,
      maxChars: config.limits.maxSeedChars,
    });
    progress.instructions = info.count;
    skipped = info.skipped;

    progress.phase = 'judge';
    const chunks: { start: number; end: number }[] = [];
    for (let start = 0; start < info.count; start += EVAL_CHUNK)
      chunks.push({ start, end: Math.min(info.count, start + EVAL_CHUNK) });
    const perChunk = Math.max(1, Math.min(config.limits.concurrency, EVAL_CHUNK));
    const chunkWindow = Math.max(1, Math.ceil(config.limits.concurrency / perChunk));
    await slidingWindow(chunks, chunkWindow, async ({ start, end }, i) => {
      const result = await executeChild(evalChunk, {
        workflowId: evalChunkWorkflowId(evalId, i),
        taskQueue: input.taskQueue,
        args: [{ evalId, outDir, start, end, window: perChunk, config, taskQueue: input.taskQueue }],
      });
      addTally(progress, result.tally);
      addUsage(progress.usage, result.usage);
      addFailures(progress.failures, result.failures);
    });
    return await finish();
  } catch (err) {
    if (isCancellation(err)) {
      // Keep what finished: assemble eval.jsonl and the report of the judged items, then end as cancelled.
      progress.state = 'cancelled';
      await CancellationScope.nonCancellable(finish);
    } else progress.state = 'failed';
    throw err;
  }
}

/** Assembles eval.jsonl and the reports from the judged items (also of a cancelled evaluation). */
async function finishEval(
  input: EvalInput,
  files: ReturnType<typeof fileActivities>,
  progress: EvalProgress,
  skipped: { origin: string; reason: string }[],
): Promise<EvalResult> {
  const { config, outDir, evalId } = input;
  progress.phase = 'finalize';
  progress.finishedAt = Date.now();
  const final = await files.finalizeEval({
    evalId,
    outDir,
    instructionsFile: input.instructionsFile,
    config,
    usage: progress.usage,
    startedAt: progress.startedAt,
    finishedAt: progress.finishedAt,
    skipped,
    state: progress.state === 'running' ? 'completed' : progress.state,
  });
  progress.phase = 'done';
  if (progress.state === 'running') progress.state = 'completed';
  return {
    evalId,
    outDir,
    instructions: progress.instructions,
    judged: final.judged,
    failed: final.failed,
    crr: final.crr,
    usage: progress.usage,
    wallSeconds: (progress.finishedAt - progress.startedAt) / 1000,
    files: { evalJsonl: final.evalJsonl, reportJson: final.reportJson, reportMd: final.reportMd },
  };
}

// ---------------------------------------------------------------------------------------------
// One chunk of instructions
// ---------------------------------------------------------------------------------------------

export interface EvalChunkInput {
  evalId: string;
  outDir: string;
  start: number;
  end: number;
  window: number;
  config: ResolvedConfig;
  taskQueue?: string;
}

export interface EvalChunkResult {
  tally: EvalTally;
  usage: Usage;
  failures: Failure[];
}

export async function evalChunk(input: EvalChunkInput): Promise<EvalChunkResult> {
  const result: EvalChunkResult = { tally: emptyTally(), usage: {}, failures: [] };
  const indexes = Array.from({ length: input.end - input.start }, (_, i) => input.start + i);
  await slidingWindow(indexes, input.window, async (index) => {
    let outcome: EvalItemOutcome;
    try {
      outcome = await executeChild(evalInstruction, {
        workflowId: evalItemWorkflowId(input.evalId, index),
        taskQueue: input.taskQueue,
        args: [
          {
            evalId: input.evalId,
            outDir: input.outDir,
            index,
            config: input.config,
            taskQueue: input.taskQueue,
          },
        ],
      });
    } catch (err) {
      if (!isItemFailure(err)) throw err;
      outcome = { index, status: 'failed', stage: 'workflow', reason: failureMessage(err), usage: {} };
    }
    addUsage(result.usage, outcome.usage);
    if (outcome.status === 'judged') countVerdict(result.tally, outcome.verdict!);
    else {
      result.tally.failed++;
      if (result.failures.length < MAX_FAILURES_LISTED) {
        result.failures.push({
          item: `instruction #${index}`,
          stage: outcome.stage ?? 'eval',
          reason: outcome.reason ?? 'unknown',
        });
      }
    }
  });
  return result;
}
