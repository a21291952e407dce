import { createActivities, type ActivityDeps } from '../src/activities';
import type { Usage } from '../src/schemas/records';
import { addUsage } from '../src/schemas/records';
import { emptyCounters, type Counters, type RunInput, type RunProgress } from '../src/schemas/run';
import { entryWindows, shares } from '../src/workflows/allocation';
import { answerBoth, judgeBothOrders } from '../src/workflows/contrast';
import { generateEntry, tally, type Decoded, type EntrySteps } from '../src/workflows/loop';

/**
 * The baseline a user gives up for durability: the same stage functions (createActivities with the
 * same LLM client factory) driven in-process, with the same windows as the workflows
 * (src/workflows/run.ts): snapshot seeds, encode with `limits.concurrency` in flight, build the
 * pool, then per entry the same CodecLM loop as the entry workflows (generateEntry,
 * src/workflows/loop.ts: rubrics, decode in batches, each instruction's improve -> two answers ->
 * two judge orders -> keep / iterate / drop, the same files saved), entryWindow x perEntryWindow
 * instructions in flight. No retries, no pause, no persistence of progress, no top-up rounds (the
 * bench sets topUpRounds 0 for both sides).
 */
export interface BaselineResult {
  kept: number;
  dropped: number;
  failed: number;
  usage: Usage;
  wallSeconds: number;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/** Runs `work` over 0..n-1 with at most `limit` in flight. */
async function pool(n: number, limit: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < n) await work(next++);
  };
  await Promise.all(Array.from({ length: Math.min(limit, n) }, lane));
}

/** What every entry of the in-process run shares. */
interface InProcessRun {
  a: ReturnType<typeof createActivities>;
  input: RunInput;
  usage: Usage;
  counters: Counters;
  perEntryWindow: number;
}

/** The loop's steps for one entry: the activity functions, called directly; no pause, no retries. */
function entrySteps(run: InProcessRun, entry: number, count: number): EntrySteps {
  const { a, usage, counters } = run;
  const { config, outDir, runId } = run.input;
  const { method, roles } = config;
  const batchSize = method.decodeBatch;
  return {
    runId,
    method,
    gate: async () => undefined,
    improve: (r) => a.improveInstruction({ strong: roles.strong, method, ...r }),
    answerBoth: (c) => answerBoth(a, roles, c, true),
    judgeBothOrders: (c, answers) => judgeBothOrders(a, roles.judge, c, answers, true),
    saveKept: (record, judgement) => a.saveRecord({ outDir, record, judgement }),
    saveDropped: (judgement) => a.saveJudgement({ outDir, judgement }),
    saveFailed: (id, failure) => a.saveFailure({ outDir, id, failure }),
    isItemFailure: () => true,
    writeRubrics: async () => {
      const { metadata } = await a.readPoolEntry({ outDir, entry });
      const written = await a.writeRubrics({ outDir, entry, strong: roles.strong, method, metadata });
      addUsage(usage, written.usage);
      return { metadata, rubrics: written.rubrics };
    },
    decode: async ({ metadata }, batch, found) => {
      const decoded = await a.decodeInstructions({
        strong: roles.strong,
        method,
        metadata,
        count: Math.min(batchSize, count - batch * batchSize),
        batch: batch + 1,
        label: `decode entry ${entry} batch ${batch + 1}`,
      });
      addUsage(usage, decoded.usage);
      counters.instructions += decoded.instructions.length;
      for (const [j, instruction] of decoded.instructions.entries())
        found({ id: `r1-e${pad(entry, 5)}-i${pad(batch * batchSize + j, 4)}`, instruction });
    },
    // Batch by batch: decode, then its instructions perEntryWindow at a time.
    decodeAhead: async (decode, refine) => {
      for (let batch = 0; batch * batchSize < count; batch++) {
        const found: Decoded[] = [];
        await decode(batch, (item) => found.push(item));
        await pool(found.length, run.perEntryWindow, (j) => refine(found[j]!));
      }
    },
    settle: async (_item, refineHere) => {
      const outcome = await refineHere();
      addUsage(usage, outcome.usage);
      tally(counters, outcome);
    },
  };
}

export async function runInProcess(input: RunInput, deps: ActivityDeps): Promise<BaselineResult> {
  const started = Date.now();
  const a = createActivities(deps);
  const { config, outDir, runId } = input;
  const { method, roles, limits } = config;
  const usage: Usage = {};
  const counters = emptyCounters();

  const seeds = await a.prepareSeeds({
    outDir,
    seedsFile: input.seedsFile,
    field: input.field,
    skipInvalid: input.skipInvalid,
    limits,
  });
  counters.seeds = seeds.count;
  await pool(seeds.count, limits.concurrency, async (index) => {
    const r = await a.encodeSeed({ outDir, index, strong: roles.strong, method });
    addUsage(usage, r.usage);
    counters.encoded++;
  });
  const { size: poolSize } = await a.buildPool({
    outDir,
    method,
    seeds: seeds.count,
    instructions: limits.size,
  });
  counters.pool = poolSize;
  const work = shares(poolSize, limits.size, 0)
    .map((count, index) => ({ index, count }))
    .filter((w) => w.count > 0);
  const smallest = Math.min(...work.map((w) => w.count));
  const { perEntry: perEntryWindow, entries: entryWindow } = entryWindows(limits.concurrency, smallest);
  const run: InProcessRun = { a, input, usage, counters, perEntryWindow };
  // The same loop as the entry workflows (src/workflows/loop.ts), its steps called in-process.
  await pool(work.length, entryWindow, (k) => generateEntry(entrySteps(run, work[k]!.index, work[k]!.count)));

  const progress: RunProgress = {
    runId,
    phase: 'finalize',
    state: 'completed',
    outDir,
    size: limits.size,
    counters,
    usage,
    failures: [],
    startedAt: started,
    finishedAt: Date.now(),
  };
  await a.finalizeRun({ progress, config });
  return {
    kept: counters.kept,
    dropped: counters.dropped,
    failed: counters.failed,
    usage,
    wallSeconds: (Date.now() - started) / 1000,
  };
}
