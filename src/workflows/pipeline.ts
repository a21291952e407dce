/**
 * The CodecLM loop (../shared/CODECLM.md) as durable Temporal workflows, readable top to bottom:
 *
 *   codeclmRun            seeds -> encode (fan-out) -> metadata pool -> per pool entry, round by round
 *   ├─ encodeSeeds        encode one chunk of seeds, one activity per seed
 *   └─ generateForEntry   decode N basic instructions + Self-Rubrics once, then per instruction:
 *      └─ refineInstruction   iterate: (improve) -> both answers -> judge both orders -> filter
 *
 * Texts live only in the histories of the small leaf workflows; parents see counts and scores.
 * Every random choice comes from the run seed (src/util/random), so a seed gives one dataset.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  ChildWorkflowFailure,
  condition,
  defineQuery,
  defineSignal,
  executeChild,
  isCancellation,
  setHandler,
} from '@temporalio/workflow';
import type { ResolvedConfig } from '../schemas/config';
import type { DatasetRecord, Metadata, Rubric, Usage } from '../schemas/records';
import { addUsage, usageTotals } from '../schemas/records';
import {
  emptyCounters,
  MAX_FAILURES_LISTED,
  type Counters,
  type Failure,
  type RunInput,
  type RunProgress,
  type RunResult,
} from '../schemas/run';
import { combineJudgements } from '../tasks/judge';
import { hash32, pickIndex, rngFrom } from '../util/random';
import { fileActivities, llmActivities } from './activities';
import { slidingWindow } from './window';

export const progressQuery = defineQuery<RunProgress>('progress');
export const pauseSignal = defineSignal<[string?]>('pause');
export const resumeSignal = defineSignal<[]>('resume');

/** Seeds per encodeSeeds child: keeps each child's history small at any seed count. */
const ENCODE_CHUNK = 250;

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

export async function codeclmRun(input: RunInput): Promise<RunResult> {
  const { config, outDir, runId } = input;
  const files = fileActivities(input.taskQueue);
  const progress: RunProgress = {
    runId,
    phase: 'starting',
    state: 'running',
    outDir,
    size: config.limits.size,
    counters: emptyCounters(),
    usage: {},
    failures: [],
    startedAt: Date.now(),
  };
  const c = progress.counters;
  setHandler(progressQuery, () => progress);
  setHandler(pauseSignal, (reason) => pause(progress, reason ?? 'paused by user'));
  setHandler(resumeSignal, () => {
    progress.state = 'running';
    progress.pausedReason = undefined;
  });
  const gate = () => waitWhilePaused(progress);
  const record = (usage: Usage | undefined, failures: Failure[] = []) => {
    addUsage(progress.usage, usage);
    for (const f of failures) if (progress.failures.length < MAX_FAILURES_LISTED) progress.failures.push(f);
    checkBudget(progress, config);
  };

  try {
    // 1. Seeds: a snapshot of the seed file, taken once per run.
    progress.phase = 'seeds';
    const seeds = await files.prepareSeeds({
      outDir,
      seedsFile: input.seedsFile,
      field: input.field,
      skipInvalid: input.skipInvalid,
      limits: config.limits,
    });
    c.seeds = seeds.count;
    for (const s of seeds.skipped) record({}, [{ item: s.origin, stage: 'seeds', reason: s.reason }]);

    // 2. Encode: every seed -> use case + skills, fanned out over child workflows.
    progress.phase = 'encode';
    const chunks: { start: number; end: number }[] = [];
    for (let start = 0; start < seeds.count; start += ENCODE_CHUNK) {
      chunks.push({ start, end: Math.min(seeds.count, start + ENCODE_CHUNK) });
    }
    const encodeWindow = Math.max(1, Math.ceil(config.limits.concurrency / ENCODE_CHUNK));
    await slidingWindow(
      chunks,
      encodeWindow,
      async ({ start, end }, i) => {
        const result = await executeChild(encodeSeeds, {
          workflowId: `${runId}/encode-${i}`,
          taskQueue: input.taskQueue,
          args: [{ outDir, start, end, config, taskQueue: input.taskQueue }],
        });
        c.encoded += result.encoded;
        c.encodeFailed += result.failed;
        record(result.usage, result.failures);
      },
      gate,
    );
    if (c.encoded === 0) throw ApplicationFailure.nonRetryable('no seed could be encoded; see the failures in status', 'NoMetadata');

    // 3. Metadata pool by mix-and-match, and each entry's share of the data budget.
    progress.phase = 'pool';
    const { entries } = await files.buildPool({
      outDir,
      method: config.method,
      seeds: seeds.count,
      instructions: config.limits.size,
    });
    c.pool = entries.length;

    // 4-5. Decode, Self-Rubrics and Contrastive Filtering, per pool entry. Later rounds top up
    //      when the first kept fewer pairs than the target size.
    progress.phase = 'generate';
    let allocation = entries.map((e) => e.instructions);
    for (let round = 1; round <= 1 + config.limits.topUpRounds; round++) {
      c.rounds = round;
      const work = entries.map((e, index) => ({ index, metadata: e.metadata, count: allocation[index]! })).filter((w) => w.count > 0);
      const perEntryWindow = Math.max(1, Math.min(config.limits.concurrency, ...work.map((w) => w.count)));
      const entryWindow = Math.max(1, Math.ceil(config.limits.concurrency / perEntryWindow));
      await slidingWindow(
        work,
        entryWindow,
        async (w) => {
          const result = await executeChild(generateForEntry, {
            workflowId: `${runId}/r${round}-e${pad(w.index, 5)}`,
            taskQueue: input.taskQueue,
            args: [{ runId, outDir, round, entry: w.index, metadata: w.metadata, count: w.count, window: perEntryWindow, config, taskQueue: input.taskQueue }],
          });
          mergeCounters(c, result.counters);
          record(result.usage, result.failures);
        },
        gate,
      );
      const deficit = config.limits.size - c.kept;
      if (deficit <= 0 || round > config.limits.topUpRounds) break;
      // Ask for as many more as the observed keep rate says are needed (bounded, so a run whose
      // filter keeps almost nothing cannot explode).
      const keepRate = Math.max(0.1, c.kept / Math.max(1, c.kept + c.dropped + c.failed));
      const more = Math.min(Math.ceil(deficit / keepRate), 3 * deficit + entries.length);
      allocation = topUpAllocation(entries.length, more, round);
    }

    progress.phase = 'finalize';
    return await finish(progress, files, config);
  } catch (err) {
    if (isCancellation(err)) {
      // Keep what finished: write the dataset and report of the kept pairs, then end as cancelled.
      progress.state = 'cancelled';
      await CancellationScope.nonCancellable(() => finish(progress, files, config));
    } else progress.state = 'failed';
    throw err;
  }
}

async function finish(progress: RunProgress, files: ReturnType<typeof fileActivities>, config: ResolvedConfig): Promise<RunResult> {
  progress.finishedAt = Date.now();
  const { dataset } = await files.finalizeRun({ progress, config });
  progress.phase = 'done';
  if (progress.state === 'running' || progress.state === 'paused') progress.state = 'completed';
  return {
    runId: progress.runId,
    outDir: progress.outDir,
    dataset,
    counters: progress.counters,
    usage: progress.usage,
    wallSeconds: (progress.finishedAt - progress.startedAt) / 1000,
  };
}

function pause(progress: RunProgress, reason: string): void {
  progress.state = 'paused';
  progress.pausedReason = reason;
}

async function waitWhilePaused(progress: RunProgress): Promise<void> {
  await condition(() => progress.state !== 'paused');
}

function checkBudget(progress: RunProgress, config: ResolvedConfig): void {
  const used = usageTotals(progress.usage);
  const { budgetCalls, budgetTokens } = config.limits;
  if (progress.state !== 'running') return;
  if (budgetCalls !== undefined && used.calls >= budgetCalls) {
    pause(progress, `call budget reached: ${used.calls} of ${budgetCalls} calls used; raise limits.budgetCalls and resume`);
  } else if (budgetTokens !== undefined && used.promptTokens + used.completionTokens >= budgetTokens) {
    pause(progress, `token budget reached: ${used.promptTokens + used.completionTokens} of ${budgetTokens} tokens used; raise limits.budgetTokens and resume`);
  }
}

function topUpAllocation(entries: number, total: number, round: number): number[] {
  const base = Math.floor(total / entries);
  const extra = total % entries;
  const offset = (round * 7919) % entries; // spread remainders over different entries each round
  return Array.from({ length: entries }, (_, i) => base + ((i - offset + entries) % entries < extra ? 1 : 0));
}

function mergeCounters(into: Counters, from: Counters): void {
  for (const key of Object.keys(from) as (keyof Counters)[]) {
    const value = from[key];
    if (typeof value === 'number') (into[key] as number) += key === 'rounds' ? 0 : value;
    else {
      const target = into[key] as Record<string, number>;
      for (const [k, v] of Object.entries(value)) target[k] = (target[k] ?? 0) + v;
    }
  }
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/**
 * An activity or child that failed for good fails its item, and the run goes on. Anything else
 * (a cancellation, or a bug in workflow code) propagates: a bug must fail the workflow task loudly
 * so it can be fixed and replayed, not be filed as a failed item.
 */
function isItemFailure(err: unknown): boolean {
  return (err instanceof ActivityFailure || err instanceof ChildWorkflowFailure) && !isCancellation(err);
}

function failureReason(err: unknown): string {
  let e = err;
  while (e instanceof ActivityFailure || e instanceof ChildWorkflowFailure) e = e.cause ?? e;
  if (e instanceof ActivityFailure || e instanceof ChildWorkflowFailure) return e.message;
  const type = e instanceof ApplicationFailure && e.type ? `${e.type}: ` : '';
  return `${type}${(e as Error)?.message ?? String(e)}`;
}

// ---------------------------------------------------------------------------------------------
// Encode (CODECLM.md section 1)
// ---------------------------------------------------------------------------------------------

export interface EncodeChunkInput {
  outDir: string;
  start: number;
  end: number;
  config: ResolvedConfig;
  taskQueue?: string;
}

export async function encodeSeeds(input: EncodeChunkInput): Promise<{ encoded: number; failed: number; usage: Usage; failures: Failure[] }> {
  const llm = llmActivities(input.config.limits, input.taskQueue);
  const result = { encoded: 0, failed: 0, usage: {} as Usage, failures: [] as Failure[] };
  const indexes = Array.from({ length: input.end - input.start }, (_, i) => input.start + i);
  await slidingWindow(indexes, input.config.limits.concurrency, async (index) => {
    try {
      const r = await llm.encodeSeed({ outDir: input.outDir, index, strong: input.config.roles.strong, method: input.config.method });
      addUsage(result.usage, r.usage);
      result.encoded++;
    } catch (err) {
      if (!isItemFailure(err)) throw err;
      result.failed++;
      result.failures.push({ item: `seed #${index}`, stage: 'encode', reason: failureReason(err) });
    }
  });
  return result;
}

// ---------------------------------------------------------------------------------------------
// Decode + Self-Rubrics for one pool entry (sections 3-4), then each instruction's loop
// ---------------------------------------------------------------------------------------------

export interface EntryInput {
  runId: string;
  outDir: string;
  round: number;
  entry: number;
  metadata: Metadata;
  count: number;
  window: number;
  config: ResolvedConfig;
  taskQueue?: string;
}

export interface EntryResult {
  counters: Counters;
  usage: Usage;
  failures: Failure[];
}

export async function generateForEntry(input: EntryInput): Promise<EntryResult> {
  const { config, metadata } = input;
  const llm = llmActivities(config.limits, input.taskQueue);
  const files = fileActivities(input.taskQueue);
  const result: EntryResult = { counters: emptyCounters(), usage: {}, failures: [] };
  const c = result.counters;
  const entryName = `pool entry ${input.entry} round ${input.round}`;

  let instructions: string[];
  let rubrics: Rubric[];
  try {
    // Decode and rubric writing do not depend on each other: issue both at once.
    const [decoded, written] = await Promise.all([
      llm.decodeInstructions({
        strong: config.roles.strong,
        method: config.method,
        metadata,
        count: input.count,
        batch: input.round,
        label: `decode ${entryName}`,
      }),
      llm.writeRubrics({ outDir: input.outDir, entry: input.entry, strong: config.roles.strong, method: config.method, metadata }),
    ]);
    addUsage(result.usage, decoded.usage);
    addUsage(result.usage, written.usage);
    instructions = decoded.instructions;
    rubrics = written.rubrics;
  } catch (err) {
    if (!isItemFailure(err)) throw err;
    // The whole entry's share is lost: count each planned instruction as failed so counts add up.
    c.instructions += input.count;
    c.failed += input.count;
    result.failures.push({ item: entryName, stage: 'decode', reason: failureReason(err) });
    return result;
  }
  c.instructions += instructions.length;

  if (config.method.dedupeInstructions) {
    const unique: string[] = [];
    for (const [i, text] of instructions.entries()) {
      const key = instructionKey(text);
      if (await files.claim({ outDir: input.outDir, key, owner: recordId(input, i) })) unique.push(text);
      else c.duplicatesRemoved++;
    }
    c.instructions -= instructions.length - unique.length;
    instructions = unique;
  }

  await slidingWindow(instructions, input.window, async (instruction, i) => {
    const id = recordId(input, i);
    const outcome = await executeChild(refineInstruction, {
      workflowId: `${input.runId}/${id}`,
      taskQueue: input.taskQueue,
      args: [{ runId: input.runId, outDir: input.outDir, recordId: id, metadata, rubrics, instruction, config, taskQueue: input.taskQueue }],
    });
    addUsage(result.usage, outcome.usage);
    tally(c, outcome);
    if (outcome.status === 'failed') result.failures.push({ item: id, stage: outcome.stage ?? 'refine', reason: outcome.reason ?? 'unknown' });
  });
  return result;
}

function recordId(input: EntryInput, i: number): string {
  return `r${input.round}-e${pad(input.entry, 5)}-i${pad(i, 4)}`;
}

/** Exact-duplicate key: case and spacing do not make an instruction new. */
function instructionKey(text: string): string {
  const norm = text.toLowerCase().replace(/\s+/g, ' ').trim();
  return `${hash32(norm).toString(16)}${hash32(`#${norm}`).toString(16)}`;
}

function tally(c: Counters, o: InstructionOutcome): void {
  if (o.status === 'kept') {
    c.kept++;
    c.keptByIteration[String(o.iteration)] = (c.keptByIteration[String(o.iteration)] ?? 0) + 1;
    if (o.source === 'target') c.keptFromTarget++;
  } else if (o.status === 'dropped') {
    c.dropped++;
    c.droppedAtCap++;
  } else c.failed++;
  for (const [i, gap] of o.gaps.entries()) {
    c.judgedByIteration[String(i + 1)] = (c.judgedByIteration[String(i + 1)] ?? 0) + 1;
    const bucket = String(Math.round(gap));
    c.gapHistogram[bucket] = (c.gapHistogram[bucket] ?? 0) + 1;
  }
}

// ---------------------------------------------------------------------------------------------
// One instruction through Self-Rubrics iterations and Contrastive Filtering (sections 4-5)
// ---------------------------------------------------------------------------------------------

export interface InstructionInput {
  runId: string;
  outDir: string;
  recordId: string;
  metadata: Metadata;
  rubrics: Rubric[];
  instruction: string;
  config: ResolvedConfig;
  taskQueue?: string;
}

export interface InstructionOutcome {
  id: string;
  status: 'kept' | 'dropped' | 'failed';
  iteration: number;
  source?: 'strong' | 'target';
  /** The gap of every iteration judged, for the histogram. */
  gaps: number[];
  stage?: string;
  reason?: string;
  usage: Usage;
}

export async function refineInstruction(input: InstructionInput): Promise<InstructionOutcome> {
  const { config, metadata, rubrics } = input;
  const { method, roles } = config;
  const llm = llmActivities(config.limits, input.taskQueue);
  const files = fileActivities(input.taskQueue);
  const rng = rngFrom(`${method.runSeed}:${input.recordId}`);
  const usage: Usage = {};
  const gaps: number[] = [];
  const actions: string[] = [];
  let instruction = input.instruction;
  let stage = 'improve';
  let iteration = 1;

  try {
    for (; iteration <= method.maxIterations; iteration++) {
      // Self-Rubrics: from the second iteration on, apply one of the entry's actions at random.
      if (iteration > 1) {
        stage = 'improve';
        const action = rubrics[pickIndex(rng, rubrics.length)]!.action;
        const improved = await llm.improveInstruction({
          strong: roles.strong,
          method,
          metadata,
          instruction,
          action,
          label: `improve ${input.recordId} iteration ${iteration}`,
        });
        addUsage(usage, improved.usage);
        instruction = improved.instruction;
        actions.push(action);
      }

      // Contrastive Filtering 1: both models answer.
      stage = 'answer';
      const label = `${input.recordId} iteration ${iteration}`;
      const [strong, target] = await Promise.all([
        llm.answer({ who: 'strong', cfg: roles.strong, method, instruction, label: `strong answer ${label}` }),
        llm.answer({ who: 'target', cfg: roles.target, method, instruction, label: `target answer ${label}` }),
      ]);
      addUsage(usage, strong.usage);
      addUsage(usage, target.usage);

      // 2. The judge scores both answers, twice, in swapped order; scores are averaged.
      stage = 'judge';
      const [strongFirst, strongSecond] = await Promise.all([
        llm.judge({ judge: roles.judge, method, instruction, answerA: strong.text, answerB: target.text, label: `judge ${label} (strong first)` }),
        llm.judge({ judge: roles.judge, method, instruction, answerA: target.text, answerB: strong.text, label: `judge ${label} (target first)` }),
      ]);
      addUsage(usage, strongFirst.usage);
      addUsage(usage, strongSecond.usage);
      const scores = combineJudgements(strongFirst.scores, strongSecond.scores);
      gaps.push(scores.gap);

      // 3. Keep when the gap is wide either way; otherwise it is too easy: iterate.
      const strongWins = scores.gap > method.theta && (method.minStrongScore === undefined || scores.strong >= method.minStrongScore);
      const targetWins = scores.gap < -method.theta;
      if (strongWins || targetWins) {
        const source = strongWins ? 'strong' : 'target';
        const record: DatasetRecord = {
          id: input.recordId,
          instruction,
          response: strongWins ? strong.text : target.text,
          source,
          metadata,
          iteration,
          scores,
          run_id: input.runId,
          actions,
        };
        stage = 'save';
        await files.saveRecord({ outDir: input.outDir, record });
        return { id: input.recordId, status: 'kept', iteration, source, gaps, usage };
      }
    }
    return { id: input.recordId, status: 'dropped', iteration: method.maxIterations, gaps, usage };
  } catch (err) {
    if (!isItemFailure(err)) throw err;
    // A poison item (e.g. output that never validates) ends as failed with its reason; the run goes on.
    return { id: input.recordId, status: 'failed', iteration, gaps, stage, reason: failureReason(err), usage };
  }
}
