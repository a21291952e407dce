/**
 * One refresh of a scheduled dataset (`codeclm schedule create`, src/cli/schedule.ts). Each action of
 * the Temporal Schedule starts this workflow, which:
 *
 *   1. names this version `<UTC timestamp>-<short id>` and creates DIR/versions/<version>/;
 *   2. runs the whole CodecLM run (codeclmRun) into that directory with run id = this workflow's id.
 *      The run executes in this workflow itself (not as a child), so `codeclm status|wait|pause|
 *      resume|cancel <workflowId>` work on a scheduled run exactly as on any run: same `progress`
 *      query, same signals, and the run's children report to this workflow id;
 *   3. writes what changed against the previous version and moves DIR/latest to the new version.
 *
 * codeclmRun continues-as-new on long runs with its own input plus a `carry`; it spreads its input,
 * so the `scheduled` field travels along and the later segments (which arrive here, as this workflow
 * type) know they are a refresh whose version dir already exists, and publish it at the end.
 *
 * The seed file is read by the run's prepareSeeds activity, so each refresh sees the file as it is
 * then (and snapshots it into the version).
 */
import { proxyActivities, upsertMemo, workflowInfo } from '@temporalio/workflow';
import type { ResolvedConfig } from '../schemas/config';
import type { RunResult } from '../schemas/run';
import type { PublishResult, ScheduleActivities } from '../schedule/activities';
import { codeclmRun } from './run';
import type { RunWorkflowInput } from './runState';
import type { Tuning } from './control';

export interface ScheduledRunInput {
  scheduleId: string;
  /** The schedule's out dir (versions go under DIR/versions/). */
  outDir: string;
  seedsFile: string;
  field?: string;
  skipInvalid: boolean;
  /** Resolved when the schedule was created; keyless (workers read keys from their own env). */
  config: ResolvedConfig;
  taskQueue?: string;
  /** Advanced/tests: the run's history bound (continue-as-new). */
  tuning?: Tuning;
  /** Benchmark files (`--decontaminate`), read by each refresh. */
  decontaminate?: string[];
}

/** Which refresh a run segment belongs to: carried through codeclmRun's continue-as-new. */
export interface ScheduledVersion {
  scheduleId: string;
  /** The schedule's out dir. */
  scheduleOutDir: string;
  version: string;
}

type ScheduledRunSegment = RunWorkflowInput & { scheduled: ScheduledVersion };

export interface ScheduledRunResult extends RunResult {
  scheduleId: string;
  version: string;
  latest: boolean;
  changes: PublishResult['changes'];
}

/** `20250102T030405.678Z-1a2b3c4d`: sorts by start time; the suffix is this execution's own id. */
export function versionName(at: Date, runId: string): string {
  const stamp = at.toISOString().replace(/[-:]/g, '');
  const short = runId.replace(/[^A-Za-z0-9]/g, '').slice(0, 8) || 'x';
  return `${stamp}-${short}`;
}

export async function codeclmScheduledRun(
  input: ScheduledRunInput | ScheduledRunSegment,
): Promise<ScheduledRunResult> {
  const info = workflowInfo();
  const acts = proxyActivities<ScheduleActivities>({
    taskQueue: input.taskQueue,
    startToCloseTimeout: '5 minutes',
    retry: {
      initialInterval: '1 second',
      maximumInterval: '30 seconds',
      maximumAttempts: 10,
      nonRetryableErrorTypes: ['InputError'],
    },
  });
  let run: ScheduledRunSegment;
  if ('scheduled' in input && input.scheduled) {
    run = input; // a later segment of this refresh's run: the version dir exists already
  } else {
    const s = input as ScheduledRunInput;
    // Workflow time and the first execution's id: the same on replay and after continue-as-new.
    const version = versionName(new Date(), info.firstExecutionRunId);
    const { versionDir } = await acts.prepareVersion({
      outDir: s.outDir,
      version,
      workflowId: info.workflowId,
    });
    upsertMemo({ outDir: versionDir, version, scheduleOutDir: s.outDir });
    run = {
      runId: info.workflowId,
      seedsFile: s.seedsFile,
      outDir: versionDir,
      field: s.field,
      skipInvalid: s.skipInvalid,
      config: s.config,
      taskQueue: s.taskQueue,
      ...(s.tuning ? { tuning: s.tuning } : {}),
      ...(s.decontaminate?.length ? { decontaminate: s.decontaminate } : {}),
      scheduled: { scheduleId: s.scheduleId, scheduleOutDir: s.outDir, version },
    };
  }
  const result = await codeclmRun(run);
  const { scheduleId, scheduleOutDir, version } = run.scheduled;
  const published = await acts.publishVersion({
    outDir: scheduleOutDir,
    version,
    workflowId: info.workflowId,
  });
  return { ...result, scheduleId, version, latest: published.latest, changes: published.changes };
}
