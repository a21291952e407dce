import type { ResolvedConfig } from './config';
import type { Usage } from './records';

/**
 * Workflow-facing shapes of a run: its input, its live counters, and its result. Plain types (no zod)
 * because workflow code imports them; none of them carries a secret or the dataset itself.
 */
export interface RunInput {
  runId: string;
  seedsFile: string;
  outDir: string;
  field?: string;
  skipInvalid: boolean;
  config: ResolvedConfig;
  /** Task queue for the child workflows and activities (defaults to the run's own queue). */
  taskQueue?: string;
  /** Benchmark files (`--decontaminate`, absolute paths): decoded instructions overlapping them are removed. */
  decontaminate?: string[];
}

export type RunPhase = 'starting' | 'seeds' | 'encode' | 'pool' | 'generate' | 'finalize' | 'done';
export type RunState = 'running' | 'paused' | 'completed' | 'failed' | 'cancelled';

export interface Failure {
  item: string;
  stage: string;
  reason: string;
}

export interface Counters {
  seeds: number;
  encoded: number;
  encodeFailed: number;
  pool: number;
  /**
   * Basic instructions worked on: every one ends kept, dropped or failed, or (cancelled run)
   * leftInFlight. Runs from before the stop-when-done patch count every decoded instruction here.
   */
  instructions: number;
  kept: number;
  dropped: number;
  failed: number;
  keptByIteration: Record<string, number>;
  /** Instructions judged at each iteration (kept + improved again + dropped at the cap). */
  judgedByIteration: Record<string, number>;
  droppedAtCap: number;
  keptFromTarget: number;
  /** Gap histogram, bucketed by whole points: key "-9".."9". */
  gapHistogram: Record<string, number>;
  /** Exact-duplicate instructions removed after decode (method.dedupe; src/quality). */
  duplicatesRemoved: number;
  /** Near duplicates (paraphrases) removed after decode (method.dedupe "near"); absent in older runs. */
  nearDuplicatesRemoved?: number;
  /** Instructions removed for sharing an n-gram with a benchmark item (--decontaminate). */
  contaminatedRemoved?: number;
  rounds: number;
  /** Started but not finished when the run was cancelled (absent in runs from older versions). */
  leftInFlight?: number;
  /** Decoded but never started: the run had kept its target size, or was cancelled. */
  notStarted?: number;
}

export interface RunProgress {
  runId: string;
  phase: RunPhase;
  state: RunState;
  pausedReason?: string;
  outDir: string;
  size: number;
  counters: Counters;
  usage: Usage;
  failures: Failure[];
  startedAt: number;
  finishedAt?: number;
}

export interface RunResult {
  runId: string;
  outDir: string;
  dataset: string;
  counters: Counters;
  usage: Usage;
  wallSeconds: number;
}

export function emptyCounters(): Counters {
  return {
    seeds: 0,
    encoded: 0,
    encodeFailed: 0,
    pool: 0,
    instructions: 0,
    kept: 0,
    dropped: 0,
    failed: 0,
    keptByIteration: {},
    judgedByIteration: {},
    droppedAtCap: 0,
    keptFromTarget: 0,
    gapHistogram: {},
    duplicatesRemoved: 0,
    nearDuplicatesRemoved: 0,
    contaminatedRemoved: 0,
    rounds: 0,
    leftInFlight: 0,
    notStarted: 0,
  };
}

/** Failures kept in workflow state for reports; the rest are only counted. */
export const MAX_FAILURES_LISTED = 100;
