/**
 * The CodecLM loop (docs/method.md) as durable Temporal workflows, readable top to bottom:
 *
 *   codeclmRun            seeds -> encode (fan-out) -> metadata pool -> per pool entry, round by round
 *   ├─ encodeSeeds        encode one chunk of seeds, one activity per seed
 *   └─ generateForEntry   Self-Rubrics once, then decode the entry's share in batches of
 *                         method.decodeBatch, and run each instruction's steps (refineSteps):
 *                         iterate: (improve) -> both answers -> judge both orders -> filter
 *
 * Texts live only in the histories of the entry workflows (each continues-as-new as its history
 * grows); the run sees counts and scores. Every LLM call is its own activity, so a crash repeats at
 * most the calls in flight. Every random choice comes from the run seed (src/util/random), so a
 * seed gives one dataset.
 *
 * Any size (issue 4): the tree is run -> entries -> instructions, each level with a bounded window;
 * the run and the entries continue-as-new at safe points (nothing in flight, nothing decoded but
 * not started) when their history grows, carrying counters and indexes only, never texts. Entries
 * report finished items to the run by signal (src/workflows/control.ts), so the run's progress
 * query and budget check are live and cheap. Pause, resume and the budget reach every running
 * workflow of the tree by `control` signals.
 */
import {
  ActivityFailure,
  allHandlersFinished,
  ApplicationFailure,
  CancellationScope,
  ChildWorkflowFailure,
  condition,
  ContinueAsNew,
  continueAsNew,
  defineQuery,
  defineSignal,
  isCancellation,
  makeContinueAsNewFunc,
  patched,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { ResolvedConfig } from '../schemas/config';
import type { DatasetRecord, JudgedIteration, Judgement, Metadata, Rubric, Usage } from '../schemas/records';
import { addUsage, usageInFailure, usageTotals } from '../schemas/records';
import {
  emptyCounters,
  type Counters,
  type Failure,
  type RunInput,
  type RunProgress,
  type RunResult,
} from '../schemas/run';
import { combineJudgements, keptSource } from '../tasks/judge';
import { hash32, pickIndex, rngFrom } from '../util/random';
import { dedupeSettings } from '../quality/settings';
import { failureMessage } from '../util/failure';
import { fileActivities, llmActivities } from './activities';
import { entryWindows, MAX_PER_ENTRY, shares, topUpAllocation, topUpSize } from './allocation';
import { windowRange } from './window';
import { encodeWorkflowId, entryWorkflowId } from './ids';
import { answerBoth, judgeBothOrders } from './contrast';
import {
  addFailures,
  Control,
  controlSignal,
  mergeCounters,
  Reporter,
  reportSignal,
  wantsContinueAsNew,
  type ControlState,
  type Tuning,
} from './control';

export { controlSignal, reportSignal, type ControlState, type ProgressReport, type Tuning } from './control';

export const progressQuery = defineQuery<RunProgress>('progress');
export const pauseSignal = defineSignal<[string?]>('pause');
/** Resume, optionally with raised budgets (a run paused by its budget needs them raised to go on). */
export interface ResumeOptions {
  budgetTokens?: number;
  budgetCalls?: number;
}
export const resumeSignal = defineSignal<[ResumeOptions?]>('resume');

/** Seeds per encodeSeeds child: keeps each child's history small at any seed count. */
export const ENCODE_CHUNK = 250;
/** Instructions per decode call when the config predates method.decodeBatch. */
const DEFAULT_DECODE_BATCH = 20;
/**
 * Workflow versions (Temporal patches). Histories from before a patch replay the old way; new
 * executions take the new one. INLINE_INSTRUCTIONS: an entry runs its instructions' steps itself
 * instead of starting one child workflow per instruction (child starts from one parent are recorded
 * one after another, which held the last of a batch back by up to 1.5 s per entry: bench/RESULTS.md),
 * with at most MAX_PER_ENTRY instructions of one entry in flight.
 */
const INLINE_INSTRUCTIONS = 'inline-instructions';
/**
 * STOP_WHEN_DONE: once the run has kept `size` pairs it starts no new entry, instruction or decode
 * batch (the run tells its entries by the control state's `enough`; in-flight instructions finish);
 * entries report a kept pair at once so the run knows in time; `instructions` counts instructions
 * started (decoded but unstarted ones are `notStarted`, cancelled ones in flight `leftInFlight`);
 * top-up rounds are sized by topUpSize.
 */
const STOP_WHEN_DONE = 'stop-when-done';
/**
 * JUDGEMENT_RECORDS: an instruction that is dropped saves its judged iterations for viewer.html (one
 * more file activity per dropped instruction; a kept one sends them with its record).
 */
const JUDGEMENT_RECORDS = 'judgement-records';
/**
 * QUALITY_SCREEN: with method.dedupe on or benchmark files given, the run prepares its quality index
 * once (prepareQuality, after the seeds) and each decode batch is screened by one activity
 * (screenInstructions: decontamination, exact and near duplicates; src/quality) instead of one
 * `claim` per instruction. Removed instructions count in `instructions` and per reason.
 */
const QUALITY_SCREEN = 'quality-screen';

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

/** What the run carries through continue-as-new: counters and positions, never texts. */
export interface RunCarry {
  progress: RunProgress;
  control: ControlState;
  budget: ResumeOptions;
  /** Next encode chunk to start. */
  encodeNext: number;
  round: number;
  /** Instructions shared over the pool in this round. */
  roundTotal: number;
  /** Next entry (position in the round's work list) to start. */
  nextEntry: number;
  /** Runs of this workflow id so far (continue-as-new count). */
  segments: number;
}

export interface RunWorkflowInput extends RunInput {
  carry?: RunCarry;
  tuning?: Tuning;
}

export async function codeclmRun(input: RunWorkflowInput): Promise<RunResult> {
  const { config, outDir, runId } = input;
  const queue = input.taskQueue ?? workflowInfo().taskQueue;
  const files = fileActivities(queue);
  const carry: RunCarry = input.carry ?? {
    progress: {
      runId,
      phase: 'starting',
      state: 'running',
      outDir,
      size: config.limits.size,
      counters: emptyCounters(),
      usage: {},
      failures: [],
      startedAt: Date.now(),
    },
    control: { paused: false, seq: 0 },
    budget: { budgetTokens: config.limits.budgetTokens, budgetCalls: config.limits.budgetCalls },
    encodeNext: 0,
    round: 1,
    roundTotal: config.limits.size,
    nextEntry: 0,
    segments: 1,
  };
  const progress = carry.progress;
  const c = progress.counters;
  const control = new Control(carry.control);
  // Decided before the first command, so a history from before the patch replays as it ran.
  const stopWhenDone = patched(STOP_WHEN_DONE);
  /** The run has kept its target size: nothing new starts. */
  const done = () => stopWhenDone && c.kept >= config.limits.size;
  const setPaused = (paused: boolean, reason?: string) => {
    control.set(paused, reason);
    progress.state = paused ? 'paused' : 'running';
    progress.pausedReason = paused ? reason : undefined;
  };
  const checkBudget = () => {
    if (progress.state !== 'running') return;
    const reason = budgetReached(progress, carry.budget);
    if (reason) setPaused(true, reason);
  };
  setHandler(progressQuery, () => progress);
  setHandler(pauseSignal, (reason) => {
    if (progress.state === 'running' || progress.state === 'paused')
      setPaused(true, reason ?? 'paused by user');
  });
  setHandler(resumeSignal, (opts) => {
    if (opts?.budgetTokens !== undefined) carry.budget.budgetTokens = opts.budgetTokens;
    if (opts?.budgetCalls !== undefined) carry.budget.budgetCalls = opts.budgetCalls;
    if (progress.state !== 'paused') return;
    // Still over the (unraised) budget: stays paused, with the budget's reason.
    const over = budgetReached(progress, carry.budget);
    setPaused(over !== undefined, over);
  });
  setHandler(reportSignal, (report) => {
    mergeCounters(c, report.counters);
    addUsage(progress.usage, report.usage);
    addFailures(progress.failures, report.failures);
    checkBudget();
    if (done()) control.finish();
  });
  const record = (usage: Usage | undefined, failures: Failure[] = []) => {
    addUsage(progress.usage, usage);
    addFailures(progress.failures, failures);
    checkBudget();
  };
  const stop = () => wantsContinueAsNew(input.tuning);
  const continueRun = async (): Promise<never> => {
    await condition(allHandlersFinished);
    carry.control = control.state;
    carry.segments++;
    const next = makeContinueAsNewFunc<typeof codeclmRun>({ memo: workflowInfo().memo });
    return next({ ...input, carry });
  };

  try {
    // 1. Seeds: a snapshot of the seed file, taken once per run.
    if (progress.phase === 'starting' || progress.phase === 'seeds') {
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
      // The quality index (benchmark n-grams; a schedule's earlier versions) before anything is decoded.
      if (needsScreening(config, input.decontaminate) && patched(QUALITY_SCREEN)) {
        const scheduled = (input as { scheduled?: { scheduleOutDir: string; version: string } }).scheduled;
        await files.prepareQuality({
          outDir,
          method: config.method,
          benchmarks: input.decontaminate,
          schedule: scheduled && { outDir: scheduled.scheduleOutDir, version: scheduled.version },
        });
      }
      progress.phase = 'encode';
    }

    // 2. Encode: every seed -> use case + skills, fanned out over child workflows.
    if (progress.phase === 'encode') {
      const chunks = Math.ceil(c.seeds / ENCODE_CHUNK);
      const encodeWindow = Math.max(1, Math.ceil(config.limits.concurrency / ENCODE_CHUNK));
      carry.encodeNext = await windowRange(
        carry.encodeNext,
        chunks,
        { limit: encodeWindow, gate: control.gate, stop },
        async (i) => {
          const start = i * ENCODE_CHUNK;
          const result = await control.child(encodeSeeds, {
            workflowId: encodeWorkflowId(runId, i),
            taskQueue: queue,
            input: (ctl) => ({
              outDir,
              start,
              end: Math.min(c.seeds, start + ENCODE_CHUNK),
              config,
              taskQueue: queue,
              control: ctl,
            }),
          });
          c.encoded += result.encoded;
          c.encodeFailed += result.failed;
          record(result.usage, result.failures);
        },
      );
      if (carry.encodeNext < chunks) return await continueRun();
      if (c.encoded === 0)
        throw ApplicationFailure.nonRetryable(
          'no seed could be encoded; see the failures in status',
          'NoMetadata',
        );
      progress.phase = 'pool';
    }

    // 3. Metadata pool by mix-and-match, written to pool.json; entries read their metadata from it.
    if (progress.phase === 'pool') {
      // (Histories from before recorded the whole pool as `entries`; only its size is used.)
      const built: { size?: number; entries?: unknown[] } = await files.buildPool({
        outDir,
        method: config.method,
        seeds: c.seeds,
        instructions: config.limits.size,
      });
      c.pool = built.size ?? built.entries?.length ?? 0;
      progress.phase = 'generate';
    }

    // 4-5. Decode, Self-Rubrics and Contrastive Filtering, per pool entry. Later rounds top up
    //      when the first kept fewer pairs than the target size.
    if (progress.phase === 'generate') {
      for (;;) {
        c.rounds = carry.round;
        const round = carry.round;
        const allocation =
          round === 1
            ? shares(c.pool, carry.roundTotal, 0)
            : topUpAllocation(c.pool, carry.roundTotal, round);
        const work: number[] = [];
        let smallest = Infinity;
        for (const [index, count] of allocation.entries()) {
          if (count > 0) {
            work.push(index);
            smallest = Math.min(smallest, count);
          }
        }
        // Before INLINE_INSTRUCTIONS, instructions were child workflows and an entry's window had no cap.
        const maxPerEntry = patched(INLINE_INSTRUCTIONS) ? MAX_PER_ENTRY : Infinity;
        const windows = entryWindows(config.limits.concurrency, smallest, maxPerEntry);
        const perEntryWindow = windows.perEntry;
        const entryWindow = windows.entries;
        carry.nextEntry = await windowRange(
          carry.nextEntry,
          work.length,
          { limit: entryWindow, gate: control.gate, stop: () => done() || stop() },
          async (k) => {
            const entry = work[k]!;
            // Counters, usage and failures arrive by report signals; the child returns nothing else.
            await control.child(generateForEntry, {
              workflowId: entryWorkflowId(runId, round, entry),
              taskQueue: queue,
              input: (ctl) => ({
                runId,
                outDir,
                round,
                entry,
                ...(stopWhenDone ? { needed: config.limits.size - c.kept } : {}),
                count: allocation[entry]!,
                window: perEntryWindow,
                config,
                taskQueue: queue,
                control: ctl,
                tuning: input.tuning,
                ...(input.decontaminate?.length ? { decontaminate: true } : {}),
              }),
            });
          },
        );
        if (carry.nextEntry < work.length && !done()) return await continueRun();
        const deficit = config.limits.size - c.kept;
        if (deficit <= 0 || round > config.limits.topUpRounds) break;
        // Ask for as many more as the observed keep rate says are needed (bounded, so a run whose
        // filter keeps almost nothing cannot explode).
        if (stopWhenDone) carry.roundTotal = topUpSize(deficit, c.kept, c.kept + c.dropped + c.failed);
        else {
          const keepRate = Math.max(0.1, c.kept / Math.max(1, c.kept + c.dropped + c.failed));
          carry.roundTotal = Math.min(Math.ceil(deficit / keepRate), 3 * deficit + c.pool);
        }
        carry.round = round + 1;
        carry.nextEntry = 0;
        if (stop()) return await continueRun();
      }
      progress.phase = 'finalize';
    }

    return await finish(progress, files, config);
  } catch (err) {
    if (err instanceof ContinueAsNew) throw err;
    if (isCancellation(err)) {
      // Keep what finished: once the children (cancelled with the run) have closed and reported,
      // write the dataset and report of the kept pairs, then end as cancelled.
      progress.state = 'cancelled';
      await CancellationScope.nonCancellable(async () => {
        await condition(() => control.running === 0);
        await finish(progress, files, config);
      });
    } else progress.state = 'failed';
    throw err;
  }
}

async function finish(
  progress: RunProgress,
  files: ReturnType<typeof fileActivities>,
  config: ResolvedConfig,
): Promise<RunResult> {
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

function budgetReached(progress: RunProgress, budget: ResumeOptions): string | undefined {
  const used = usageTotals(progress.usage);
  const { budgetCalls, budgetTokens } = budget;
  if (budgetCalls !== undefined && used.calls >= budgetCalls) {
    return `call budget reached: ${used.calls} of ${budgetCalls} calls used; raise it with \`codeclm resume RUN_ID --budget-calls N\``;
  }
  const tokens = used.promptTokens + used.completionTokens;
  if (budgetTokens !== undefined && tokens >= budgetTokens) {
    return `token budget reached: ${tokens} of ${budgetTokens} tokens used; raise it with \`codeclm resume RUN_ID --budget-tokens N\``;
  }
  return undefined;
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

// ---------------------------------------------------------------------------------------------
// Encode (docs/method.md section 1)
// ---------------------------------------------------------------------------------------------

export interface EncodeChunkInput {
  outDir: string;
  start: number;
  end: number;
  config: ResolvedConfig;
  taskQueue?: string;
  control?: ControlState;
}

export async function encodeSeeds(
  input: EncodeChunkInput,
): Promise<{ encoded: number; failed: number; usage: Usage; failures: Failure[] }> {
  const llm = llmActivities(input.config.limits, input.taskQueue);
  const control = new Control(input.control);
  setHandler(controlSignal, (state) => control.receive(state));
  const result = { encoded: 0, failed: 0, usage: {} as Usage, failures: [] as Failure[] };
  await windowRange(
    input.start,
    input.end,
    { limit: input.config.limits.concurrency, gate: control.gate },
    async (index) => {
      try {
        const r = await llm.encodeSeed({
          outDir: input.outDir,
          index,
          strong: input.config.roles.strong,
          method: input.config.method,
        });
        addUsage(result.usage, r.usage);
        result.encoded++;
      } catch (err) {
        if (!isItemFailure(err)) throw err;
        addUsage(result.usage, usageInFailure(err)); // the calls the failed attempts made
        result.failed++;
        result.failures.push({ item: `seed #${index}`, stage: 'encode', reason: failureMessage(err) });
      }
    },
  );
  // The run lists only the first failures; the rest are counted.
  result.failures = result.failures.slice(0, 100);
  return result;
}

// ---------------------------------------------------------------------------------------------
// Self-Rubrics for one pool entry, then decode in batches (sections 3-4), then each instruction
// ---------------------------------------------------------------------------------------------

export interface EntryInput {
  runId: string;
  outDir: string;
  round: number;
  entry: number;
  /** Instructions to decode for this entry in this round. */
  count: number;
  /** Instruction workflows in flight at once. */
  window: number;
  config: ResolvedConfig;
  taskQueue?: string;
  control?: ControlState;
  tuning?: Tuning;
  /** Set by continue-as-new: the first batch this run of the workflow decodes. */
  nextBatch?: number;
  /**
   * Pairs the run still needed when it started this entry (STOP_WHEN_DONE): once the entry has kept
   * that many itself it starts nothing new, without waiting for the run to say so.
   */
  needed?: number;
  /** The run has a benchmark index: screen decoded instructions against it. */
  decontaminate?: boolean;
}

/** Everything an entry finds is reported to the run by signal (see Reporter); the result is empty. */
export type EntryResult = Record<string, never>;

export async function generateForEntry(input: EntryInput): Promise<EntryResult> {
  const { config } = input;
  const queue = input.taskQueue ?? workflowInfo().taskQueue;
  const llm = llmActivities(config.limits, queue);
  const files = fileActivities(queue);
  const control = new Control(input.control);
  setHandler(controlSignal, (state) => control.receive(state));
  const batchSize = config.method.decodeBatch ?? DEFAULT_DECODE_BATCH;
  const reporter = new Reporter(input.runId, batchSize);
  const batches = Math.ceil(input.count / batchSize);
  const planned = (batch: number) => Math.min(batchSize, input.count - batch * batchSize);
  let nextBatch = input.nextBatch ?? 0;
  const entryName = `pool entry ${input.entry} round ${input.round}`;
  // Decided before the first command, so a history from before the patch replays as it ran.
  const inline = patched(INLINE_INSTRUCTIONS);
  /** Decode batches go through screenInstructions (src/quality) before any instruction starts. */
  const screen = needsScreening(config, input.decontaminate) && patched(QUALITY_SCREEN);
  const stopWhenDone = patched(STOP_WHEN_DONE);
  /** Pairs this entry has kept (this segment). */
  let keptHere = 0;
  /** The run has kept its target size (it said so by the control state, or this entry kept all the
   * run still needed when it started): start nothing new. */
  const enough = () =>
    stopWhenDone && (control.enough || (input.needed !== undefined && keptHere >= input.needed));
  /** Instructions of this entry being refined now (inline or as child workflows). */
  let inFlight = 0;
  // Decoded instructions waiting for a window slot. A batch is decoded when the queue runs low,
  // so the window never drains between batches.
  const queued: { index: number; text: string }[] = [];
  /** Decoded instructions that will never start (target reached, or cancelled) are counted, not lost. */
  const dropQueued = () => {
    if (!stopWhenDone) return;
    reporter.counters.notStarted = (reporter.counters.notStarted ?? 0) + queued.length;
    queued.length = 0;
  };

  // Counts a batch (or everything left) as failed, so that the counts still add up.
  const failBatches = (from: number, to: number, stage: string, err: unknown) => {
    let n = 0;
    for (let b = from; b < to; b++) n += planned(b);
    reporter.counters.instructions += n;
    reporter.counters.failed += n;
    const which = to - from === 1 ? `${entryName} batch ${from + 1}` : entryName;
    reporter.add(usageInFailure(err) ?? {}, [{ item: which, stage, reason: failureMessage(err) }], n);
  };

  let metadata: Metadata = { use_case: '', skills: [] };
  let rubrics: Rubric[] = [];
  try {
    // The entry's metadata from pool.json, and its rubrics (written once per entry, then read back).
    try {
      metadata = (await files.readPoolEntry({ outDir: input.outDir, entry: input.entry })).metadata;
      await control.gate();
      const written = await llm.writeRubrics({
        outDir: input.outDir,
        entry: input.entry,
        strong: config.roles.strong,
        method: config.method,
        metadata,
      });
      reporter.add(written.usage, [], 0);
      rubrics = written.rubrics;
    } catch (err) {
      if (!isItemFailure(err)) throw err;
      failBatches(nextBatch, batches, 'rubrics', err);
      await reporter.flush();
      return {};
    }

    let decoding = false;
    let stopping = false;
    let fatal: unknown;
    const decode = async (batch: number) => {
      try {
        const decoded = await llm.decodeInstructions({
          strong: config.roles.strong,
          method: config.method,
          metadata,
          count: planned(batch),
          // Distinct per round and batch, so no batch repeats another one's instructions.
          batch: (input.round - 1) * 100_000 + batch + 1,
          label: `decode ${entryName} batch ${batch + 1}`,
        });
        reporter.add(decoded.usage, [], 0);
        const kept = screen ? await screenBatch(batch, decoded.instructions) : undefined;
        // (With STOP_WHEN_DONE an instruction is counted when it starts.)
        if (!stopWhenDone) reporter.counters.instructions += decoded.instructions.length;
        for (const [j, text] of decoded.instructions.entries()) {
          const index = batch * batchSize + j;
          if (kept && !kept.has(index)) continue;
          if (!screen && config.method.dedupeInstructions) {
            const fresh = await files.claim({
              outDir: input.outDir,
              key: instructionKey(text),
              owner: recordId(input, index),
            });
            if (!fresh) {
              if (!stopWhenDone) reporter.counters.instructions--;
              reporter.counters.duplicatesRemoved++;
              continue;
            }
          }
          queued.push({ index, text });
        }
      } catch (err) {
        if (isItemFailure(err)) failBatches(batch, batch + 1, 'decode', err);
        else fatal ??= err;
      } finally {
        decoding = false;
      }
    };

    /**
     * Screens a decoded batch (decontamination, duplicates) in record id order; returns the indexes
     * kept. The decision is stored per batch, so a retried activity returns the same one.
     */
    const screenBatch = async (batch: number, texts: string[]): Promise<Set<number>> => {
      const ids = texts.map((_, j) => recordId(input, batch * batchSize + j));
      const decided = await files.screenInstructions({
        outDir: input.outDir,
        batch: `r${input.round}-e${pad(input.entry, 5)}-b${pad(batch, 4)}`,
        items: texts.map((text, j) => ({ id: ids[j]!, text })),
        method: config.method,
        decontaminate: input.decontaminate === true,
      });
      const c = reporter.counters;
      // Removed instructions are counted as worked on: kept + dropped + failed + removed = instructions.
      if (stopWhenDone) c.instructions += decided.removed.length;
      for (const r of decided.removed) {
        if (r.reason === 'exact-duplicate') c.duplicatesRemoved++;
        else if (r.reason === 'near-duplicate') c.nearDuplicatesRemoved = (c.nearDuplicatesRemoved ?? 0) + 1;
        else c.contaminatedRemoved = (c.contaminatedRemoved ?? 0) + 1;
      }
      const keep = new Set(decided.keep);
      return new Set(ids.flatMap((id, j) => (keep.has(id) ? [batch * batchSize + j] : [])));
    };

    for (;;) {
      if (fatal !== undefined) throw fatal;
      if (enough()) break; // the run has its pairs: what is in flight finishes, nothing new starts
      if (!decoding && !stopping && queued.length < input.window && nextBatch < batches) {
        await control.gate();
        decoding = true;
        void decode(nextBatch++);
      }
      if (queued.length === 0) {
        if (decoding) {
          await condition(() => !decoding || queued.length > 0 || enough());
          continue;
        }
        break; // all decoded and started, or stopping to continue-as-new
      }
      await condition(() => inFlight < input.window || fatal !== undefined || enough());
      if (fatal !== undefined || enough()) continue;
      await control.gate();
      if (enough()) continue;
      const item = queued.shift()!;
      if (stopWhenDone) reporter.counters.instructions++;
      inFlight++;
      refine(item.index, item.text).then(
        () => inFlight--,
        (err: unknown) => {
          inFlight--;
          fatal ??= err;
        },
      );
      // Continue-as-new only once everything decoded has started: no text is ever carried over.
      if (!stopping && wantsContinueAsNew(input.tuning)) stopping = true;
    }
    await condition(() => inFlight === 0 && !decoding);
    if (fatal !== undefined) throw fatal;
    if (enough()) dropQueued();
    await reporter.flush();
    if (nextBatch < batches && !enough()) {
      await condition(allHandlersFinished);
      return await continueAsNew<typeof generateForEntry>({
        ...input,
        nextBatch,
        control: control.state,
        ...(input.needed !== undefined ? { needed: input.needed - keptHere } : {}),
      });
    }
    return {};
  } catch (err) {
    // Cancelled (the run was cancelled): wait for the instructions (cancelled too; a record being
    // saved still finishes) to settle, then report what finished, so the run's counts match its files.
    if (isCancellation(err)) {
      await CancellationScope.nonCancellable(async () => {
        await condition(() => control.running === 0 && inFlight === 0);
        dropQueued();
        await reporter.flush();
      });
    }
    throw err;
  }

  async function refine(index: number, instruction: string): Promise<void> {
    const id = recordId(input, index);
    const instructionInput = (ctl?: ControlState): InstructionInput => ({
      runId: input.runId,
      outDir: input.outDir,
      recordId: id,
      metadata,
      rubrics,
      instruction,
      config,
      taskQueue: queue,
      control: ctl,
    });
    let outcome: InstructionOutcome;
    try {
      outcome = inline
        ? await refineSteps(instructionInput(), { llm, files, control })
        : await control.child(refineInstruction, {
            workflowId: `${input.runId}/${id}`,
            taskQueue: queue,
            input: instructionInput,
          });
    } catch (err) {
      // An instruction workflow (before INLINE_INSTRUCTIONS) itself failed (it catches item
      // failures, so this is rare): the item is failed with its reason rather than lost.
      // Cancellation, and a bug in workflow code, propagate.
      if (!isItemFailure(err)) {
        if (stopWhenDone && isCancellation(err))
          reporter.counters.leftInFlight = (reporter.counters.leftInFlight ?? 0) + 1;
        throw err;
      }
      outcome = {
        id,
        status: 'failed',
        iteration: 1,
        gaps: [],
        stage: 'refine',
        reason: failureMessage(err),
        usage: {},
      };
    }
    tally(reporter.counters, outcome);
    if (outcome.status === 'kept') keptHere++;
    const failures =
      outcome.status === 'failed'
        ? [{ item: id, stage: outcome.stage ?? 'refine', reason: outcome.reason ?? 'unknown' }]
        : [];
    // A kept pair is reported at once, so the run stops the others as soon as it has its size.
    reporter.add(outcome.usage, failures, 1, stopWhenDone && outcome.status === 'kept');
  }
}

/** Whether decoded instructions are screened (duplicates, benchmarks): see QUALITY_SCREEN. */
function needsScreening(
  config: ResolvedConfig,
  decontaminate: readonly unknown[] | boolean | undefined,
): boolean {
  const benchmarks = Array.isArray(decontaminate) ? decontaminate.length > 0 : decontaminate === true;
  return benchmarks || dedupeSettings(config.method).mode !== 'off';
}

function recordId(input: Pick<EntryInput, 'round' | 'entry'>, i: number): string {
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
  control?: ControlState;
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

/**
 * One instruction as its own workflow: how entries ran instructions before INLINE_INSTRUCTIONS.
 * Kept so that runs started by an older version finish on this one.
 */
export async function refineInstruction(input: InstructionInput): Promise<InstructionOutcome> {
  const llm = llmActivities(input.config.limits, input.taskQueue);
  const files = fileActivities(input.taskQueue);
  const control = new Control(input.control);
  setHandler(controlSignal, (state) => control.receive(state));
  return refineSteps(input, { llm, files, control });
}

/** What an instruction's steps need from the workflow that runs them. */
interface RefineContext {
  llm: ReturnType<typeof llmActivities>;
  files: ReturnType<typeof fileActivities>;
  /** Paused: no new LLM call starts (the calls in flight finish). */
  control: Control;
}

/** The Self-Rubrics iterations and Contrastive Filtering of one instruction. */
async function refineSteps(input: InstructionInput, ctx: RefineContext): Promise<InstructionOutcome> {
  const { config, metadata, rubrics } = input;
  const { method, roles } = config;
  const { llm, files, control } = ctx;
  const rng = rngFrom(`${method.runSeed}:${input.recordId}`);
  const usage: Usage = {};
  const gaps: number[] = [];
  const actions: string[] = [];
  /** Every judged iteration, for viewer.html (saved once the instruction is decided). */
  const judged: JudgedIteration[] = [];
  const judgement = (): Judgement => ({
    id: input.recordId,
    run_id: input.runId,
    metadata,
    theta: method.theta,
    minStrongScore: method.minStrongScore,
    iterations: judged,
  });
  let instruction = input.instruction;
  let stage = 'improve';
  let iteration = 1;

  try {
    for (; iteration <= method.maxIterations; iteration++) {
      // Self-Rubrics: from the second iteration on, apply one of the entry's actions at random.
      if (iteration > 1) {
        stage = 'improve';
        await control.gate();
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
      const contrast = { instruction, label: `${input.recordId} iteration ${iteration}`, method, usage };
      await control.gate();
      const answers = await answerBoth(llm, roles, contrast);

      // 2. The judge scores both answers, twice, in swapped order; scores are averaged.
      stage = 'judge';
      await control.gate();
      const judgements = await judgeBothOrders(llm, roles.judge, contrast, answers);
      const scores = combineJudgements(judgements.strongFirst, judgements.targetFirst);
      gaps.push(scores.gap);

      // 3. Keep when the gap is wide either way; otherwise it is too easy: iterate.
      const source = keptSource(scores, method);
      judged.push({
        iteration,
        instruction,
        actions: [...actions],
        answers,
        judge: { strongFirst: judgements.strongFirst, targetFirst: judgements.targetFirst },
        scores,
        decision: source ? `kept-${source}` : iteration < method.maxIterations ? 'iterated' : 'dropped',
      });
      if (source) {
        const record: DatasetRecord = {
          id: input.recordId,
          instruction,
          response: source === 'strong' ? answers.strong : answers.target,
          source,
          metadata,
          iteration,
          scores,
          run_id: input.runId,
          actions,
        };
        stage = 'save';
        // Once saved, the outcome is reported even if the run is being cancelled meanwhile.
        await CancellationScope.nonCancellable(() =>
          files.saveRecord({ outDir: input.outDir, record, judgement: judgement() }),
        );
        return { id: input.recordId, status: 'kept', iteration, source, gaps, usage };
      }
    }
    stage = 'save';
    if (patched(JUDGEMENT_RECORDS))
      await files.saveJudgement({ outDir: input.outDir, judgement: judgement() });
    return { id: input.recordId, status: 'dropped', iteration: method.maxIterations, gaps, usage };
  } catch (err) {
    if (!isItemFailure(err)) throw err;
    addUsage(usage, usageInFailure(err)); // the calls the failed attempts made are billed too
    // A poison item (e.g. output that never validates) ends as failed with its reason (also in
    // .work/failures/<id>.json); the run goes on.
    const reason = failureMessage(err);
    await files.saveFailure({
      outDir: input.outDir,
      id: input.recordId,
      failure: { item: input.recordId, stage, reason },
    });
    return { id: input.recordId, status: 'failed', iteration, gaps, stage, reason, usage };
  }
}
