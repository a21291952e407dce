/**
 * The run workflow, phase by phase (docs/method.md): seeds -> encode (children of ENCODE_CHUNK
 * seeds) -> metadata pool -> per pool entry, round by round, one generateForEntry child running the
 * CodecLM loop (src/workflows/loop.ts). Its state and message handlers are in RunState
 * (src/workflows/runState.ts); each phase records where it got to in the carried state, so the run
 * can continue-as-new between children and pick up at the same phase.
 */
import {
  ApplicationFailure,
  CancellationScope,
  condition,
  ContinueAsNew,
  isCancellation,
  patched,
  workflowInfo,
} from '@temporalio/workflow';
import type { ResolvedConfig } from '../schemas/config';
import type { RunProgress, RunResult } from '../schemas/run';
import { fileActivities } from './activities';
import { entryWindows, MAX_PER_ENTRY, shares, topUpAllocation, topUpSize } from './allocation';
import { ENCODE_CHUNK, encodeSeeds } from './encode';
import { generateForEntry } from './entry';
import { needsScreening } from './screen';
import { encodeWorkflowId, entryWorkflowId } from './ids';
import { keepRateRoundTotal, perEntryCap, poolSize } from './legacy';
import { INLINE_INSTRUCTIONS, QUALITY_SCREEN } from './patches';
import { RunState, type RunWorkflowInput } from './runState';
import { windowRange } from './window';

/** What every phase of the run works with. */
interface Run {
  input: RunWorkflowInput;
  config: ResolvedConfig;
  queue: string;
  files: ReturnType<typeof fileActivities>;
  state: RunState;
}

export async function codeclmRun(input: RunWorkflowInput): Promise<RunResult> {
  const queue = input.taskQueue ?? workflowInfo().taskQueue;
  const files = fileActivities(queue);
  const state = new RunState(input);
  const run: Run = { input, config: input.config, queue, files, state };
  const { progress } = state;
  try {
    if (progress.phase === 'starting' || progress.phase === 'seeds') await seeds(run);
    if (progress.phase === 'encode' && !(await encode(run))) return await state.continueAsNew();
    if (progress.phase === 'pool') await pool(run);
    if (progress.phase === 'generate' && !(await generate(run))) return await state.continueAsNew();
    return await finish(progress, files, input.config);
  } catch (err) {
    if (err instanceof ContinueAsNew) throw err;
    if (isCancellation(err)) {
      // Keep what finished: once the children (cancelled with the run) have closed and reported,
      // write the dataset and report of the kept pairs, then end as cancelled.
      progress.state = 'cancelled';
      await CancellationScope.nonCancellable(async () => {
        await condition(() => state.control.running === 0);
        await finish(progress, files, input.config);
      });
    } else progress.state = 'failed';
    throw err;
  }
}

/** 1. Seeds: a snapshot of the seed file, taken once per run; the quality index before any decode. */
async function seeds({ input, config, files, state }: Run): Promise<void> {
  const { progress, counters: c } = state;
  const outDir = input.outDir;
  progress.phase = 'seeds';
  const seeds = await files.prepareSeeds({
    outDir,
    seedsFile: input.seedsFile,
    field: input.field,
    skipInvalid: input.skipInvalid,
    limits: config.limits,
  });
  c.seeds = seeds.count;
  for (const s of seeds.skipped) state.record({}, [{ item: s.origin, stage: 'seeds', reason: s.reason }]);
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

/** 2. Encode: every seed -> use case + skills, fanned out over child workflows. False: continue-as-new. */
async function encode({ input, config, queue, state }: Run): Promise<boolean> {
  const { carry, counters: c, control } = state;
  const chunks = Math.ceil(c.seeds / ENCODE_CHUNK);
  const encodeWindow = Math.max(1, Math.ceil(config.limits.concurrency / ENCODE_CHUNK));
  carry.encodeNext = await windowRange(
    carry.encodeNext,
    chunks,
    { limit: encodeWindow, gate: control.gate, stop: () => state.wantsContinueAsNew() },
    async (i) => {
      const start = i * ENCODE_CHUNK;
      const result = await control.child(encodeSeeds, {
        workflowId: encodeWorkflowId(input.runId, i),
        taskQueue: queue,
        input: (ctl) => ({
          outDir: input.outDir,
          start,
          end: Math.min(c.seeds, start + ENCODE_CHUNK),
          config,
          taskQueue: queue,
          control: ctl,
        }),
      });
      c.encoded += result.encoded;
      c.encodeFailed += result.failed;
      state.record(result.usage, result.failures);
    },
  );
  if (carry.encodeNext < chunks) return false;
  if (c.encoded === 0)
    throw ApplicationFailure.nonRetryable(
      'no seed could be encoded; see the failures in status',
      'NoMetadata',
    );
  state.progress.phase = 'pool';
  return true;
}

/** 3. Metadata pool by mix-and-match, written to pool.json; entries read their metadata from it. */
async function pool({ input, config, files, state }: Run): Promise<void> {
  const built = await files.buildPool({
    outDir: input.outDir,
    method: config.method,
    seeds: state.counters.seeds,
    instructions: config.limits.size,
  });
  state.counters.pool = poolSize(built);
  state.progress.phase = 'generate';
}

/**
 * 4-5. Decode, Self-Rubrics and Contrastive Filtering, per pool entry. Later rounds top up when the
 * first kept fewer pairs than the target size. False: continue-as-new.
 */
async function generate(run: Run): Promise<boolean> {
  const { config, state } = run;
  const { carry, counters: c } = state;
  for (;;) {
    if (!(await round(run))) return false;
    const deficit = config.limits.size - c.kept;
    if (deficit <= 0 || carry.round > config.limits.topUpRounds) break;
    // Ask for as many more as the observed keep rate says are needed (bounded, so a run whose
    // filter keeps almost nothing cannot explode).
    carry.roundTotal = state.stopWhenDone
      ? topUpSize(deficit, c.kept, c.kept + c.dropped + c.failed)
      : keepRateRoundTotal(deficit, c);
    carry.round++;
    carry.nextEntry = 0;
    if (state.wantsContinueAsNew()) return false;
  }
  state.progress.phase = 'finalize';
  return true;
}

/** One round: an entry workflow per pool entry with a share, in a window. False: continue-as-new. */
async function round({ input, config, queue, state }: Run): Promise<boolean> {
  const { carry, counters: c, control } = state;
  c.rounds = carry.round;
  const round = carry.round;
  const allocation =
    round === 1 ? shares(c.pool, carry.roundTotal, 0) : topUpAllocation(c.pool, carry.roundTotal, round);
  const work: number[] = [];
  let smallest = Infinity;
  for (const [index, count] of allocation.entries()) {
    if (count > 0) {
      work.push(index);
      smallest = Math.min(smallest, count);
    }
  }
  const maxPerEntry = perEntryCap(patched(INLINE_INSTRUCTIONS), MAX_PER_ENTRY);
  const windows = entryWindows(config.limits.concurrency, smallest, maxPerEntry);
  const stop = () => state.done() || state.wantsContinueAsNew();
  carry.nextEntry = await windowRange(
    carry.nextEntry,
    work.length,
    { limit: windows.entries, gate: control.gate, stop },
    async (k) => {
      const entry = work[k]!;
      // Counters, usage and failures arrive by report signals; the child returns nothing else.
      await control.child(generateForEntry, {
        workflowId: entryWorkflowId(input.runId, round, entry),
        taskQueue: queue,
        input: (ctl) => ({
          runId: input.runId,
          outDir: input.outDir,
          round,
          entry,
          ...(state.stopWhenDone ? { needed: config.limits.size - c.kept } : {}),
          count: allocation[entry]!,
          window: windows.perEntry,
          config,
          taskQueue: queue,
          control: ctl,
          tuning: input.tuning,
          ...(input.decontaminate?.length ? { decontaminate: true } : {}),
        }),
      });
    },
  );
  return !(carry.nextEntry < work.length && !state.done());
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
