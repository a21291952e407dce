import { createActivities, type ActivityDeps } from '../src/activities';
import type { DatasetRecord, Metadata, Rubric, Usage } from '../src/schemas/records';
import { addUsage } from '../src/schemas/records';
import { emptyCounters, type RunInput, type RunProgress } from '../src/schemas/run';
import { combineJudgements, keptSource } from '../src/tasks/judge';
import { entryWindows, shares } from '../src/workflows/allocation';
import { pickIndex, rngFrom } from '../src/util/random';

/**
 * The baseline a user gives up for durability: the same stage functions (createActivities with the
 * same LLM client factory) driven by a plain in-process async pool, in the same order and with the
 * same windows as the workflows (src/workflows/pipeline.ts): snapshot seeds, encode with
 * `limits.concurrency` in flight, build the pool, then per entry rubrics + decode in batches and
 * each instruction's improve -> two answers -> two judge orders loop, entryWindow x perEntryWindow
 * instructions in flight. No retries, no persistence of progress, no top-up rounds (the bench sets
 * topUpRounds 0 for both sides).
 */
export interface BaselineResult {
  kept: number;
  dropped: number;
  failed: number;
  usage: Usage;
  wallSeconds: number;
}

/** Runs `work` over 0..n-1 with at most `limit` in flight. */
async function pool(n: number, limit: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < n) await work(next++);
  };
  await Promise.all(Array.from({ length: Math.min(limit, n) }, lane));
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
  const batchSize = method.decodeBatch ?? 20;

  await pool(work.length, entryWindow, async (k) => {
    const { index: entry, count } = work[k]!;
    const { metadata } = await a.readPoolEntry({ outDir, entry });
    const written = await a.writeRubrics({ outDir, entry, strong: roles.strong, method, metadata });
    addUsage(usage, written.usage);
    for (let batch = 0; batch * batchSize < count; batch++) {
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
      await pool(decoded.instructions.length, perEntryWindow, async (j) => {
        const id = `r1-e${String(entry).padStart(5, '0')}-i${String(batch * batchSize + j).padStart(4, '0')}`;
        const status = await refine(id, metadata, written.rubrics, decoded.instructions[j]!);
        if (status === 'kept') counters.kept++;
        else if (status === 'dropped') counters.dropped++;
        else counters.failed++;
      });
    }
  });

  async function refine(id: string, metadata: Metadata, rubrics: Rubric[], text: string): Promise<string> {
    const rng = rngFrom(`${method.runSeed}:${id}`);
    const actions: string[] = [];
    let instruction = text;
    try {
      for (let iteration = 1; iteration <= method.maxIterations; iteration++) {
        if (iteration > 1) {
          const action = rubrics[pickIndex(rng, rubrics.length)]!.action;
          const improved = await a.improveInstruction({
            strong: roles.strong,
            method,
            metadata,
            instruction,
            action,
            label: `improve ${id}`,
          });
          addUsage(usage, improved.usage);
          instruction = improved.instruction;
          actions.push(action);
        }
        const [strong, target] = await Promise.all([
          a.answer({ who: 'strong', cfg: roles.strong, method, instruction, label: `strong answer ${id}` }),
          a.answer({ who: 'target', cfg: roles.target, method, instruction, label: `target answer ${id}` }),
        ]);
        addUsage(usage, strong.usage);
        addUsage(usage, target.usage);
        const [first, second] = await Promise.all([
          a.judge({
            judge: roles.judge,
            method,
            instruction,
            answerA: strong.text,
            answerB: target.text,
            label: `judge ${id}`,
          }),
          a.judge({
            judge: roles.judge,
            method,
            instruction,
            answerA: target.text,
            answerB: strong.text,
            label: `judge ${id}`,
          }),
        ]);
        addUsage(usage, first.usage);
        addUsage(usage, second.usage);
        const scores = combineJudgements(first.scores, second.scores);
        const source = keptSource(scores, method);
        if (source) {
          const record: DatasetRecord = {
            id,
            instruction,
            response: source === 'strong' ? strong.text : target.text,
            source,
            metadata,
            iteration,
            scores,
            run_id: runId,
            actions,
          };
          await a.saveRecord({ outDir, record });
          return 'kept';
        }
      }
      return 'dropped';
    } catch {
      return 'failed';
    }
  }

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
