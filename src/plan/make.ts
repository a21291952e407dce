import fs from 'node:fs';
import path from 'node:path';
import type { ResolvedConfig } from '../schemas/config';
import type { RunProgress } from '../schemas/run';
import { loadSeeds } from '../seeds/load';
import { runPaths } from '../store/runDir';
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
    file: path.resolve(seedsFile),
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
export function writeRunPlan(outDir: string, plan: Plan): void {
  const file = planFile(outDir);
  try {
    const existing = JSON.parse(fs.readFileSync(file, 'utf8')) as Plan;
    if (existing.run_id === plan.run_id) return;
  } catch {
    // none yet, or unreadable: write it
  }
  fs.mkdirSync(outDir, { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(plan, null, 2)}\n`);
  fs.renameSync(tmp, file);
}

/**
 * Adds a finished run to this machine's history (finalize calls it), so later plans measure on it.
 * Only runs that completed: a cancelled run's keep rates and calls are cut short.
 */
export function recordRunHistory(progress: RunProgress, config: ResolvedConfig, file = historyFile()): void {
  if (progress.state !== 'running' && progress.state !== 'paused') return;
  const paths = runPaths(progress.outDir);
  let chars = 0;
  try {
    for (const line of fs.readFileSync(paths.seeds, 'utf8').split('\n')) {
      if (line.trim())
        chars += String((JSON.parse(line) as { instruction?: unknown }).instruction ?? '').length;
    }
  } catch {
    return; // no seed snapshot: nothing sound to learn from
  }
  let rubricEntries = 0;
  try {
    rubricEntries = fs
      .readdirSync(path.join(paths.work, 'rubrics'))
      .filter((f) => f.endsWith('.json')).length;
  } catch {
    rubricEntries = 0;
  }
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
