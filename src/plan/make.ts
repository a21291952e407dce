import type { ResolvedConfig } from '../schemas/config';
import type { RunProgress } from '../schemas/run';
import { loadSeeds } from '../seeds/load';
import { runKeys } from '../store/runDir';
import { openStore } from '../store/open';
import { resolveLocation, type Store } from '../store/store';
import { InputError } from '../util/errors';
import { estimatePlan, type Plan } from './estimate';
import { BENCH_FIGURES, type Figures } from './figures';
import { appendHistory, figuresFromRuns, historyFile, matchingRuns, readHistory } from './history';
import { planFile } from './compare';

/** The figures for a config: earlier runs of the same models and theta, else the bench's. */
export function figuresFor(config: ResolvedConfig, file = historyFile()): Figures {
  const models = {
    strong: config.roles.strong.model,
    target: config.roles.target.model,
    judge: config.roles.judge.model,
  };
  return figuresFromRuns(matchingRuns(readHistory(file), models, config.method.theta), BENCH_FIGURES);
}

/** Count and size of a seed file, loaded (and validated) exactly as `run` loads it. */
export function seedStats(
  seedsFile: string,
  config: ResolvedConfig,
  opts: { field?: string; skipInvalid?: boolean } = {},
): { count: number; chars: number; file: string; warnings: string[] } {
  const loaded = loadSeeds(seedsFile, {
    field: opts.field,
    skipInvalid: opts.skipInvalid,
    maxSeedChars: config.limits.maxSeedChars,
  });
  if (loaded.seeds.length === 0) throw new InputError(`${seedsFile}: no usable seed instructions`);
  return {
    count: loaded.seeds.length,
    chars: loaded.seeds.reduce((a, s) => a + s.instruction.length, 0),
    file: resolveLocation(seedsFile),
    warnings: [...loaded.warnings, ...loaded.skipped.map((s) => `skipped ${s.origin}: ${s.reason}`)],
  };
}

export function makePlan(opts: {
  seedsFile: string;
  config: ResolvedConfig;
  field?: string;
  skipInvalid?: boolean;
  runId?: string;
  historyFile?: string;
}): { plan: Plan; warnings: string[] } {
  const seeds = seedStats(opts.seedsFile, opts.config, opts);
  const plan = estimatePlan({
    seeds,
    config: opts.config,
    figures: figuresFor(opts.config, opts.historyFile),
    runId: opts.runId,
  });
  return { plan, warnings: seeds.warnings };
}

/**
 * Writes plan.json for a run about to start. Attaching to a run that already has its plan keeps
 * that plan (it was made before the run's first call, which is what the report compares with).
 */
export async function writeRunPlan(out: string | Store, plan: Plan): Promise<void> {
  const store = typeof out === 'string' ? openStore(out) : out;
  const key = planFile('');
  try {
    const existing = await store.readJson<Plan>(key);
    if (existing?.run_id === plan.run_id) return;
  } catch {
    // unreadable: write it
  }
  await store.writeJson(key, plan);
}

/**
 * Adds a finished run to this machine's history (finalize calls it), so later plans measure on it.
 * Only runs that completed: a cancelled run's keep rates and calls are cut short.
 */
export async function recordRunHistory(
  progress: RunProgress,
  config: ResolvedConfig,
  file = historyFile(),
  store: Store = openStore(progress.outDir),
): Promise<void> {
  if (progress.state !== 'running' && progress.state !== 'paused') return;
  let chars = 0;
  let seen = false;
  for await (const line of store.lines(runKeys.seeds)) {
    seen = true;
    if (line.trim())
      chars += String((JSON.parse(line) as { instruction?: unknown }).instruction ?? '').length;
  }
  if (!seen) return; // no seed snapshot: nothing sound to learn from
  // One object per pool entry that got rubrics (a listing at the end of a run, not per item).
  const rubricEntries = (await store.list(`${runKeys.work}/rubrics`)).filter((f) =>
    f.endsWith('.json'),
  ).length;
  const c = progress.counters;
  appendHistory(
    {
      run_id: progress.runId,
      finished_at: new Date(progress.finishedAt ?? Date.now()).toISOString(),
      models: {
        strong: config.roles.strong.model,
        target: config.roles.target.model,
        judge: config.roles.judge.model,
      },
      theta: config.method.theta,
      maxIterations: config.method.maxIterations,
      seeds: { count: c.seeds, chars },
      rubricEntries,
      counters: {
        seeds: c.seeds,
        encoded: c.encoded,
        instructions: c.instructions,
        kept: c.kept,
        dropped: c.dropped,
        failed: c.failed,
        keptByIteration: c.keptByIteration,
        judgedByIteration: c.judgedByIteration,
        duplicatesRemoved: c.duplicatesRemoved,
        nearDuplicatesRemoved: c.nearDuplicatesRemoved ?? 0,
        contaminatedRemoved: c.contaminatedRemoved ?? 0,
        ...(c.notStarted ? { notStarted: c.notStarted } : {}),
      },
      usage: progress.usage,
    },
    file,
  );
}
